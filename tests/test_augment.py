"""Choice shuffling, the six label formats, rendering, and parsing free model output back to a choice."""

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aqa_utils.data.answers import parse_answer
from aqa_utils.data.augment import shuffle_choices, training_example
from aqa_utils.data.formats import EVAL_FORMAT, LABEL_FORMATS, eval_example, format_label, render_answer, render_question
from aqa_utils.data.dcase import Question

CHOICES = ["writing", "door knock", "laugh", "cough"]


def question(choices=CHOICES, answer=1):
    return Question(qid="dev_aqa_1", split="dev", question="What is the first sound?", choices=list(choices),
                    answer=answer, clip_id="c", audio_path=Path("c.wav"), subset="CQA", question_type="",
                    json_path=Path("q.json"), raw_choices=[f"{chr(65 + i)}. {c}" for i, c in enumerate(choices)])


def test_format_label_all_styles():
    assert [format_label(2, f) for f in LABEL_FORMATS] == ["C.", "(C)", "c.", "(c)", "3.", "(3)"]
    assert EVAL_FORMAT == "(A)" and format_label(5, EVAL_FORMAT) == "(F)"
    with pytest.raises(ValueError):
        format_label(0, "A)")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=8), min_size=2, max_size=6, unique=True), st.data(),
       st.integers(0, 2**32 - 1))
def test_shuffle_never_loses_the_answer(choices, data, seed):
    answer = data.draw(st.integers(0, len(choices) - 1))
    for rng in (random.Random(seed), np.random.default_rng(seed)):
        new, new_answer = shuffle_choices(choices, answer, rng)
        assert sorted(new) == sorted(choices) and new[new_answer] == choices[answer]


def test_shuffle_moves_the_answer_uniformly():
    rng = np.random.default_rng(0)
    slots = Counter(shuffle_choices(CHOICES, 0, rng)[1] for _ in range(4000))
    assert all(abs(slots[i] / 4000 - 0.25) < 0.03 for i in range(4))


def test_render_question_and_answer():
    assert render_question("What is it?", ["a bell", "a dog."], "(A)") == "What is it? (A) a bell. (B) a dog."
    assert render_question(" Which? ", ["x", "y?"], "1.") == "Which? 1. x. 2. y?"
    # The target is the option's text alone, whatever label format the prompt used.
    assert render_answer(["a bell", "a dog "], 1) == "a dog"
    assert render_answer(["a bell", "a dog"], 0) == "a bell"


def test_training_examples_use_all_six_formats_uniformly():
    rng = np.random.default_rng(1)
    q = question()
    draws = [training_example(q, rng) for _ in range(6000)]
    rates = Counter(ex.fmt for ex in draws)
    assert set(rates) == set(LABEL_FORMATS)
    assert all(abs(n / 6000 - 1 / 6) < 0.02 for n in rates.values())
    for ex in draws[:50]:
        assert ex.choices[ex.answer] == "door knock"
        assert ex.target == "door knock"
        assert ex.prompt == render_question(q.question, ex.choices, ex.fmt)
        assert parse_answer(ex.target, ex.choices, ex.fmt) == ex.answer


def test_training_example_needs_an_answer():
    with pytest.raises(ValueError):
        training_example(question(answer=None), random.Random(0))


def test_eval_example_fixed_format_and_permutation():
    ex = eval_example(question())
    assert ex.prompt == "What is the first sound? (A) writing. (B) door knock. (C) laugh. (D) cough."
    assert (ex.target, ex.answer, ex.fmt) == ("door knock", 1, "(A)")
    ex = eval_example(question(), order=[3, 1, 0, 2])
    assert ex.choices == ["cough", "door knock", "writing", "laugh"] and ex.answer == 1
    ex = eval_example(question(), order=[1, 0, 2, 3])
    assert ex.answer == 0 and ex.target == "door knock" and ex.prompt.startswith("What is the first sound? (A) door knock.")
    assert eval_example(question(answer=None)).target is None
    with pytest.raises(ValueError):
        eval_example(question(), order=[0, 0, 1, 2])


@pytest.mark.parametrize("text, expected", [
    # every label style, with and without the option text
    ("(B)", 1), ("B.", 1), ("b)", 1), ("[b]", 1), ("b", 1), ("B: door knock", 1), ("(b) door knock", 1),
    ("2.", 1), ("(2)", 1), ("2", 1), ("answer: C", 2), ("The answer is (C).", 2), ("option d", 3),
    ("Answer: (D) cough", 3), ("the correct answer is b. door knock", 1), ("i think it is (c)", 2),
    # the option text alone: case, punctuation, whitespace, containment
    ("Door   Knock!", 1), ("cough", 3), ("it sounds like someone laughing... no: a laugh", 2),
    ("a knock at the door", None), ("knock", 1), ("  WRITING.  ", 0),
    # trailing special tokens
    ("(b) door knock<|endofchunk|>", 1), ("cough<|endofchunk|><|endoftext|>", 3),
    # unparsable
    ("", None), ("   ", None), ("<|endofchunk|>", None), ("(E)", None), ("5.", None), ("(0)", None),
    ("(a) or (b)", None), ("A. writing B. door knock", None), ("(B)(A)(C)", None), ("writing and cough", None),
    ("(a) cough", None), ("no idea", None),
])
def test_parse_answer(text, expected):
    assert parse_answer(text, CHOICES) == expected


def test_parse_answer_bare_letter_after_prefix_may_be_an_article():
    assert parse_answer("answer: a bell", ["dog", "bell"]) == 1
    assert parse_answer("option b", ["dog", "bell"]) == 1


def test_parse_answer_format_family():
    numbers = ["2", "3", "4"]
    assert parse_answer("3", numbers) == 1  # a bare option text wins over label 3
    assert parse_answer("(1)", numbers) == 0  # a label when labels may be digits...
    assert parse_answer("(3)", numbers, fmt="(A)") == 1  # ...in a letter format, the option text "3"
    assert parse_answer("(1)", numbers, fmt="(A)") is None
    assert parse_answer("(3)", ["x", "y", "z"], fmt="1.") == 2
    assert parse_answer("b", ["x", "y", "z"], fmt="1.") is None  # letters are not labels in a digit format
    assert parse_answer("c. z", ["x", "y", "z"], fmt="a.") == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["bell", "dog bark", "two", "high pitch", "yes", "no", "siren wail", "engine"]),
                min_size=2, max_size=6, unique=True), st.data())
def test_rendered_answers_parse_back_in_every_format(choices, data):
    answer = data.draw(st.integers(0, len(choices) - 1))
    target = render_answer(choices, answer)
    for fmt in LABEL_FORMATS:
        assert parse_answer(target, choices, fmt) == answer
        assert parse_answer(target.lower() + "<|endofchunk|>", choices) == answer

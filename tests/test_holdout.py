"""The validation split carved out of train (``data.holdout``) and the tiny base's generic questions."""

from collections import Counter

import numpy as np
import pytest

from aqa_utils.data.dcase import load_split
from aqa_utils.data.holdout import EVERY, parse_split
from aqa_utils.data.mini import make_mini_benchmark
from aqa_utils.data.mini.generic import (
    ANSWER_VOCABULARIES, COPY_STATEMENTS, EITHER_STATEMENTS, PRESENCE_VOCABULARY, copy_question, fact_question,
    presence_question,
)
from aqa_utils.data.mini.vocabulary import PITCHES, SPECIES
from aqa_utils.data.mini.vocabulary import CHOICE_COUNTS


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return make_mini_benchmark(tmp_path_factory.mktemp("mini"), n_train=90, n_dev=9, n_eval=3, n_captions_train=3,
                               n_captions_dev=3, audio=False)


def test_train_is_carved_by_clip_into_fit_and_val(mini):
    train = load_split(mini, "train", check_audio=False).questions
    fit = load_split(mini, "train.fit", check_audio=False).questions
    val = load_split(mini, "train.val", check_audio=False)
    assert sorted(q.qid for q in fit + val.questions) == sorted(q.qid for q in train)
    clips = lambda qs: {q.audio_path.name for q in qs}  # noqa: E731
    assert not clips(fit) & clips(val.questions)  # no clip on both sides: its questions share the audio
    assert len(clips(val.questions)) == -(-len(clips(train)) // EVERY)
    assert val.split == "train.val" and val.skipped == 0
    # every subset is on both sides, and the carve is the same on every call
    assert {q.subset for q in val.questions} == {q.subset for q in fit} == {"BQA", "TSQA", "CQA"}
    assert [q.qid for q in load_split(mini, "train.val", check_audio=False).questions] == \
        [q.qid for q in val.questions]


def test_an_unknown_part_is_refused():
    assert parse_split("dev") == ("dev", None) and parse_split("train.val") == ("train", "val")
    with pytest.raises(ValueError, match=r"split 'train\.test'"):
        parse_split("train.test")


def test_presence_questions_ask_for_a_sound_of_the_clip_among_absent_ones():
    rng = np.random.default_rng(0)
    present = ["ridge seal", "siren"]
    for _ in range(200):
        question, choices, answer = presence_question(rng, present)
        assert choices[answer] in present and not set(choices) - {choices[answer]} & set(present)
        assert set(choices) <= set(PRESENCE_VOCABULARY) and len(set(choices)) == len(choices) >= 2


def test_copy_questions_state_their_answer_over_every_answer_vocabulary():
    rng = np.random.default_rng(0)
    draws = [copy_question(rng) for _ in range(2000)]
    used = Counter()
    for question, choices, answer in draws:
        vocab = next(v for v in ANSWER_VOCABULARIES if set(choices) <= set(v))  # one vocabulary per question
        assert choices[answer] in question.split(".")[0]
        assert len(choices) <= max(CHOICE_COUNTS) and len(set(choices)) == len(choices)
        used[vocab] += 1
    assert len(used) >= len(ANSWER_VOCABULARIES) - 1  # onsets and durations share "about 1 second"  # no answer word is left for LoRA to teach the LM to say


def test_half_the_copy_questions_state_a_second_candidate_that_is_not_listed():
    rng = np.random.default_rng(1)
    either = 0
    for _ in range(2000):
        question, choices, answer = copy_question(rng)
        words = {w for v in ANSWER_VOCABULARIES if set(choices) <= set(v) for w in v}  # "about 1 second": two
        pairs = [(a, b) for a in words for b in words if a != b
                 for t in EITHER_STATEMENTS if question.startswith(t.format(a=a, b=b) + " ")]
        if pairs:  # the answer and a decoy of the same vocabulary are stated; only the answer is listed
            either += 1
            (stated,) = {frozenset(p) for p in pairs}
            assert choices[answer] in stated and not (stated - {choices[answer]}) & set(choices)
        else:
            assert any(question.startswith(t.format(x=choices[answer]) + " ") for t in COPY_STATEMENTS)
    assert 0.45 < either / 2000 < 0.55


def test_fact_questions_name_a_species_and_offer_its_pitch_or_one_of_its_calls():
    rng = np.random.default_rng(0)
    asked, kinds = Counter(), Counter()
    for _ in range(600):
        question, choices, answer = fact_question(rng)
        species = next(sp for sp in SPECIES if sp.name in question)
        assert len(set(choices)) == len(choices) >= 2  # the caller's augmentation shuffles them
        if "pitch" in question:  # no benchmark template: the species is named, and every pitch is offered
            assert choices[answer] == species.pitch and sorted(choices) == sorted(PITCHES)
        else:  # one of its calls, against shapes it never makes (its other call would be right too)
            assert choices[answer] in species.calls and not set(choices[1:]) & set(species.calls)
        asked[species.name] += 1
        kinds["pitch" in question] += 1
    assert len(asked) == len(SPECIES) and min(asked.values()) > 50
    assert 0.55 < kinds[True] / 600 < 0.78  # two draws in three ask the pitch

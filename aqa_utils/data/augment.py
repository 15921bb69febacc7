"""The report's training augmentation: shuffled choices and one of six label formats per example."""

from __future__ import annotations

import random

import numpy as np

from aqa_utils.data.dcase import Question
from aqa_utils.data.formats import LABEL_FORMATS, MCExample, render_answer, render_question

Rng = random.Random | np.random.Generator


def _permutation(n: int, rng: Rng) -> list[int]:
    if isinstance(rng, np.random.Generator):
        return [int(i) for i in rng.permutation(n)]
    return rng.sample(range(n), n)


def _randrange(n: int, rng: Rng) -> int:
    return int(rng.integers(n)) if isinstance(rng, np.random.Generator) else rng.randrange(n)


def shuffle_choices(choices: list[str], answer: int, rng: Rng) -> tuple[list[str], int]:
    """Choices in a random order and where the answer went; ``rng`` is a ``random.Random`` or numpy Generator."""
    order = _permutation(len(choices), rng)
    return [choices[i] for i in order], order.index(answer)


def training_example(q: Question, rng: Rng) -> MCExample:
    """The report's augmentation: shuffled options and one of the six label formats, drawn uniformly."""
    if q.answer is None:
        raise ValueError(f"{q.qid}: no answer to train on")
    return augmented_example(q.question, q.choices, q.answer, rng)


def augmented_example(question: str, choices: list[str], answer: int, rng: Rng) -> MCExample:
    """``training_example`` for any question text, option texts and answer index."""
    choices, answer = shuffle_choices(choices, answer, rng)
    fmt = LABEL_FORMATS[_randrange(len(LABEL_FORMATS), rng)]
    return MCExample(render_question(question, choices, fmt), render_answer(choices, answer),
                     choices, answer, fmt)

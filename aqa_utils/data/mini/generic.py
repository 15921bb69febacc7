"""The generic questions the tiny base pretrains on besides captions: none is of a benchmark question type.

Why they exist (results/experiments/lora_gain.md): the released AF2's LLM already reads a question's options and
can say any of them; af2-tiny's LM is trained from scratch here, and LoRA on q/k/v cannot teach a frozen, tied
embedding to emit a first answer word it never emitted. So the base learns, from questions that teach no
benchmark convention:

- ``presence_question``: "which of these sounds can be heard?" (one sound of the clip vs absent ones), the generic
  audio QA every audio LLM sees;
- ``copy_question``: a text-only question whose answer the prompt states ("the answer is two. which option is
  right?"), over every answer vocabulary the benchmark uses: it teaches reading the options and answering with
  one of them, nothing about audio.

- ``fact_question``: a text-only fact about a species, asked open ("what pitch are a glass shrimp's calls?" ->
  "high"; "which calls does a glass shrimp make?" -> "click train and trill"): what an LLM knows about the world
  before it hears anything. The benchmark asks about the clip instead ("how high is the pitch of the calls?"), so
  its answer needs the species heard and the fact recalled together: that composition is left to fine-tuning, and
  on a base without the facts LoRA cannot learn it (``results/experiments/lora_gain.md``, fifth session).

Which question types the benchmark asks (pitch, counts, times, order) and what they mean is left for fine-tuning
to teach, as DCASE's question types were new to the released AF2.
"""

from __future__ import annotations

import numpy as np

from aqa_utils.data.mini.vocabulary import (
    CALLS, CHOICE_COUNTS, DURATION_WORDS, EVENTS, NUMBERS, OFFSETS, ONSETS, PITCHES, SPECIES, seconds,
)

PRESENCE_QUESTIONS = ("which of these sounds can be heard?", "what is heard in this recording?",
                      "which sound occurs in the clip?", "what can you hear?")
PRESENCE_VOCABULARY = tuple(s.name for s in SPECIES) + EVENTS
COPY_STATEMENTS = ("the answer is {x}.", "{x} is correct.", "it is {x}.", "hint: {x}.")
COPY_QUESTIONS = ("which option is right?", "pick the correct option.", "what is the answer?", "choose one.")
# Every vocabulary a benchmark answer is drawn from (vocabulary.py / scenes.py), so no answer word is new to the LM.
ANSWER_VOCABULARIES = (tuple(s.name for s in SPECIES), EVENTS, CALLS, PITCHES, NUMBERS,
                       tuple(seconds(t) for t in sorted(set(ONSETS + OFFSETS))), DURATION_WORDS, ("yes", "no"))


def _options(rng: np.random.Generator, answer: str, pool: list[str]) -> tuple[list[str], int]:
    """``answer`` plus distractors drawn from ``pool``, 2-6 options as the benchmark draws them; answer first (the
    caller's augmentation shuffles)."""
    k = min(int(rng.choice(CHOICE_COUNTS)), len(pool) + 1)
    return [answer] + [pool[i] for i in rng.permutation(len(pool))[: k - 1]], 0


def presence_question(rng: np.random.Generator, present: list[str]) -> tuple[str, list[str], int]:
    """(question, options, answer index): one of the ``present`` sounds against sounds absent from the clip."""
    answer = present[int(rng.integers(len(present)))]
    choices, index = _options(rng, answer, [v for v in PRESENCE_VOCABULARY if v not in present])
    return PRESENCE_QUESTIONS[int(rng.integers(len(PRESENCE_QUESTIONS)))], choices, index


def copy_question(rng: np.random.Generator) -> tuple[str, list[str], int]:
    """(question, options, answer index): options of one answer vocabulary, the answer stated in the question."""
    vocab = ANSWER_VOCABULARIES[int(rng.integers(len(ANSWER_VOCABULARIES)))]
    answer = vocab[int(rng.integers(len(vocab)))]
    choices, index = _options(rng, answer, [v for v in vocab if v != answer])
    statement = COPY_STATEMENTS[int(rng.integers(len(COPY_STATEMENTS)))].format(x=answer)
    return f"{statement} {COPY_QUESTIONS[int(rng.integers(len(COPY_QUESTIONS)))]}", choices, index


FACT_QUESTIONS = (("what pitch are a {s}'s calls?", lambda sp: sp.pitch),
                  ("fact: the pitch of a {s}'s calls.", lambda sp: sp.pitch),
                  ("which calls does a {s} make?", lambda sp: " and ".join(sp.calls)))


def fact_question(rng: np.random.Generator) -> tuple[str, str]:
    """(question, answer): a fact about a random species, no options, no audio needed."""
    species = SPECIES[int(rng.integers(len(SPECIES)))]
    template, answer = FACT_QUESTIONS[int(rng.integers(len(FACT_QUESTIONS)))]
    return template.format(s=species.name), answer(species)

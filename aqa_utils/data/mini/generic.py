"""The generic questions the tiny base pretrains on besides captions: none is of a benchmark question type.

Why they exist (results/experiments/lora_gain.md): the released AF2's LLM already reads a question's options and
can say any of them; af2-tiny's LM is trained from scratch here, and LoRA on q/k/v cannot teach a frozen, tied
embedding to emit a first answer word it never emitted. So the base learns, from questions that teach no
benchmark convention:

- ``presence_question``: "which of these sounds can be heard?" (one sound of the clip vs absent ones), the generic
  audio QA every audio LLM sees;
- ``call_shape_question``: the same presence question about the call shape heard in a clip of one animal (whistle,
  moan, click train, trill), sound tagging as every audio LLM pretrains on. Without it the base could name a call
  shape only in a caption, and LoRA learnt little of the vocalization question (tenth session);
- ``copy_question``: a text-only question whose answer the prompt states ("the answer is two. which option is
  right?"), over every answer vocabulary the benchmark uses: it teaches reading the options and answering with
  one of them, nothing about audio. Half of them state two candidates of which only one is listed ("it is two or
  four." with two among the options and four not): the answer is what is believed AND listed. Without them the
  adapters answered, in generation, with a class of the question's type that the options leave out, and 5-6% of
  their answers named no option (twelfth session). Every word of these lines is in af2-tiny's vocabulary
  (``test_vocabulary``): a template with "either" or "them" taught the base a tokenization AF2 would not give.

- ``fact_question``: a text-only fact about a species, asked as multiple choice ("what pitch are a glass shrimp's
  calls?" -> low / medium / high; "which calls does a glass shrimp make?" -> one of its two calls against shapes it
  never makes): what an LLM knows about the world before it hears anything, in the form it can answer in. The
  benchmark asks about the clip instead ("how high is the pitch of the calls?"), so its answer needs the species
  heard and the fact recalled together: that composition is left to fine-tuning. On a base without the facts LoRA
  cannot learn it (fifth session); on a base that learnt them as open answers it learns less of it (tenth session:
  that base chose a species' pitch among the three 67% of the time, against 100% once taught them so).

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
EITHER_STATEMENTS = ("it is {a} or {b}.", "{a} or {b}.", "the answer is {a} or {b}.", "hint: {a} or {b}.")
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


def call_shape_question(rng: np.random.Generator, shape: str) -> tuple[str, list[str], int]:
    """(question, options, answer index): the presence question asked about the call shape of a one-animal clip,
    against shapes absent from it (sound tagging, as AudioSet tags whistles and trills)."""
    choices, index = _options(rng, shape, [c for c in CALLS if c != shape])
    return PRESENCE_QUESTIONS[int(rng.integers(len(PRESENCE_QUESTIONS)))], choices, index


def stated_copy_question(rng: np.random.Generator) -> tuple[str, list[str], int]:
    """(question, options, answer index): options of one answer vocabulary, the answer alone stated in the question
    ("the answer is two. which option is right?")."""
    vocab = ANSWER_VOCABULARIES[int(rng.integers(len(ANSWER_VOCABULARIES)))]
    answer = vocab[int(rng.integers(len(vocab)))]
    choices, index = _options(rng, answer, [v for v in vocab if v != answer])
    statement = COPY_STATEMENTS[int(rng.integers(len(COPY_STATEMENTS)))].format(x=answer)
    return f"{statement} {COPY_QUESTIONS[int(rng.integers(len(COPY_QUESTIONS)))]}", choices, index


def either_copy_question(rng: np.random.Generator) -> tuple[str, list[str], int]:
    """(question, options, answer index): the answer and a second candidate of its vocabulary stated, only the
    answer among the options ("it is two or four. which option is right?" with four not listed)."""
    vocabs = [v for v in ANSWER_VOCABULARIES if len(v) >= 3]  # a decoy and at least one distractor
    vocab = vocabs[int(rng.integers(len(vocabs)))]
    answer, decoy = (vocab[i] for i in rng.permutation(len(vocab))[:2])
    choices, index = _options(rng, answer, [v for v in vocab if v not in (answer, decoy)])
    a, b = (answer, decoy) if rng.random() < 0.5 else (decoy, answer)
    statement = EITHER_STATEMENTS[int(rng.integers(len(EITHER_STATEMENTS)))].format(a=a, b=b)
    return f"{statement} {COPY_QUESTIONS[int(rng.integers(len(COPY_QUESTIONS)))]}", choices, index


def copy_question(rng: np.random.Generator) -> tuple[str, list[str], int]:
    """The base's copy question: ``stated_copy_question`` or, half the time, ``either_copy_question``."""
    return stated_copy_question(rng) if rng.random() < 0.5 else either_copy_question(rng)


FACT_PITCH_QUESTIONS = ("what pitch are a {s}'s calls?", "fact: the pitch of a {s}'s calls.")
FACT_CALLS_QUESTION = "which calls does a {s} make?"


def fact_question(rng: np.random.Generator) -> tuple[str, list[str], int]:
    """(question, options, answer index): a fact about a random species, no audio needed; two draws in three ask its
    pitch (options: every pitch), the others one of its calls against the call shapes it never makes (1 or 2 of
    them: its other call would be right too). The caller's augmentation shuffles the options."""
    species = SPECIES[int(rng.integers(len(SPECIES)))]
    if rng.random() < 2 / 3:
        template = FACT_PITCH_QUESTIONS[int(rng.integers(len(FACT_PITCH_QUESTIONS)))]
        return template.format(s=species.name), list(PITCHES), PITCHES.index(species.pitch)
    call = species.calls[int(rng.integers(2))]
    never = [c for c in CALLS if c not in species.calls]
    distractors = [never[i] for i in rng.permutation(len(never))[: int(rng.integers(1, len(never) + 1))]]
    return FACT_CALLS_QUESTION.format(s=species.name), [call] + distractors, 0

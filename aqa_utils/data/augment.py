"""The report's augmentation (shuffled choices, six label formats), the fixed eval format, and answer parsing.

A multiple-choice prompt is rendered in the style AF2 was trained on: ``Question? (A) xxx. (B) yyy. (C) zzz.``
The target answer repeats the chosen label in the same format plus the option text, e.g. ``(B) yyy``: a model then
learns to name the label (robust to paraphrase) and the text (so text matching still works if it drops the label).

AF2 lower-cases prompt and answer (``prompt.prompt_text``), so ``A.`` / ``a.`` and ``(A)`` / ``(a)`` become the
same string for the model; the six formats are kept as the report's recipe describes them.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import numpy as np

from aqa_utils.data.dcase import Question

LABEL_FORMATS = ("A.", "(A)", "a.", "(a)", "1.", "(1)")
EVAL_FORMAT = "(A)"

Rng = random.Random | np.random.Generator


def _symbol(fmt: str) -> str:
    if fmt not in LABEL_FORMATS:
        raise ValueError(f"unknown label format {fmt!r}; known: {LABEL_FORMATS}")
    return next(c for c in fmt if c.isalnum())


def format_label(index: int, fmt: str) -> str:
    """The label of option ``index`` (0-based) in ``fmt``: format_label(1, "(A)") == "(B)", (1, "1.") == "2."."""
    sym = _symbol(fmt)
    if not 0 <= index < 26:
        raise ValueError(f"option index {index} out of range")
    label = {"A": chr(ord("A") + index), "a": chr(ord("a") + index), "1": str(index + 1)}[sym]
    return fmt.replace(sym, label)


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


def render_question(question: str, choices: list[str], fmt: str = EVAL_FORMAT) -> str:
    """``Question? (A) xxx. (B) yyy.``: each option gets a period unless its text already ends in . ? or !."""
    parts = [question.strip()]
    for i, choice in enumerate(choices):
        text = choice.strip()
        parts.append(f"{format_label(i, fmt)} {text}" + ("" if text.endswith((".", "?", "!")) else "."))
    return " ".join(parts)


def render_answer(choices: list[str], answer: int, fmt: str = EVAL_FORMAT) -> str:
    """The target: the answer's label in the same format, a space, its text (``"(B) yyy"``)."""
    return f"{format_label(answer, fmt)} {choices[answer].strip()}"


@dataclass
class MCExample:
    """A rendered multiple-choice item; ``target`` is None when the answer is unknown (eval split)."""

    prompt: str
    target: str | None
    choices: list[str]
    """The options in the order shown."""
    answer: int | None
    """Index into ``choices`` as shown."""
    fmt: str


def training_example(q: Question, rng: Rng) -> MCExample:
    """The report's augmentation: shuffled options and one of the six label formats, drawn uniformly."""
    if q.answer is None:
        raise ValueError(f"{q.qid}: no answer to train on")
    return augmented_example(q.question, q.choices, q.answer, rng)


def augmented_example(question: str, choices: list[str], answer: int, rng: Rng) -> MCExample:
    """``training_example`` for any question text, option texts and answer index."""
    choices, answer = shuffle_choices(choices, answer, rng)
    fmt = LABEL_FORMATS[_randrange(len(LABEL_FORMATS), rng)]
    return MCExample(render_question(question, choices, fmt), render_answer(choices, answer, fmt),
                     choices, answer, fmt)


def eval_example(q: Question, order: list[int] | None = None) -> MCExample:
    """The fixed eval rendering, "(A)".."(F)"; ``order`` (a permutation of the options) tests shuffle robustness."""
    order = list(range(len(q.choices))) if order is None else list(order)
    if sorted(order) != list(range(len(q.choices))):
        raise ValueError(f"order {order} is not a permutation of {len(q.choices)} options")
    choices = [q.choices[i] for i in order]
    answer = None if q.answer is None else order.index(q.answer)
    target = None if answer is None else render_answer(choices, answer, EVAL_FORMAT)
    return MCExample(render_question(q.question, choices, EVAL_FORMAT), target, choices, answer, EVAL_FORMAT)


# --- answer parsing -------------------------------------------------------------------------------------------

_SPECIAL = re.compile(r"<\|[^|<>]*\|>|<sep>|<audio>|</?s>", re.I)
_PREFIX = re.compile(r"^(?:(?:the\s+)?(?:correct\s+|right\s+|best\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:\-]?\s*)+")
# A label opening the answer: (b)  [b]  b.  b)  b:  or the whole answer being one label.
_LEAD = re.compile(r"^(?:[(\[]\s*([a-z]|\d+)\s*[)\]]|([a-z]|\d+)\s*[.):](?=\s|$)|([a-z]|\d+)$)")
_LEAD_AFTER_PREFIX = re.compile(r"^([a-z]|\d+)(?=\W|$)")
# Labels later in the answer: a second, different one makes the answer ambiguous.
_BRACKETED = re.compile(r"[(\[]\s*([a-z]|\d+)\s*[)\]]")
_OTHER = re.compile(r"[(\[]\s*([a-z]|\d+)\s*[)\]]|(?:^|\s)([a-z]|\d)[.)]\s+\S")


def _light(text: str) -> str:
    return " ".join(text.casefold().split()).strip(" \"'`.,;:!?")


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def _label_index(label: str, n: int, families: str) -> int | None:
    """Index of a label token, or None if it is not a label of an allowed family or out of range."""
    if label.isdigit():
        idx = int(label) - 1 if "1" in families else None
    else:
        idx = ord(label) - ord("a") if "a" in families else None
    return idx if idx is not None and 0 <= idx < n else None


def _match_text(text: str, choices: list[str]) -> int | None:
    """A unique choice whose words equal, are contained in, or contain the answer's words."""
    t = _words(text)
    if not t:
        return None
    norm = [_words(c) for c in choices]
    exact = [i for i, c in enumerate(norm) if c == t]
    if len(exact) == 1:
        return exact[0]
    inside = [i for i, c in enumerate(norm) if c and f" {c} " in f" {t} "]
    # "bell" and "church bell" both inside "a church bell rings": the longer, more specific one wins.
    inside = [i for i in inside if not any(norm[i] != norm[j] and norm[i] in norm[j] for j in inside)]
    if inside:
        return inside[0] if len(inside) == 1 else None
    around = [i for i, c in enumerate(norm) if f" {t} " in f" {c} "]
    return around[0] if len(around) == 1 else None


def parse_answer(text: str, choices: list[str], fmt: str | None = None) -> int | None:
    """Map free model output to a choice index, or None ("unparsed").

    Accepts any label style (``A.`` ``(A)`` ``a)`` ``[A]`` ``answer: B`` ``option c`` ``1.`` ``(2)``), with or
    without the option text, or the option text alone (case, punctuation and whitespace ignored; exact match, or
    a unique containment). Special tokens such as ``<|endofchunk|>`` are ignored. None when empty, a label is out
    of range, two different labels appear, a label contradicts the text that follows it, or the text matches
    several options. ``fmt`` restricts labels to its family (letters or digits); None accepts both.
    """
    clean = " ".join(_SPECIAL.sub(" ", text or "").split()).casefold()
    if not clean:
        return None
    exact = [i for i, c in enumerate(choices) if _light(c) == _light(clean)]
    if len(exact) == 1:
        return exact[0]

    families = "a1" if fmt is None else ("1" if _symbol(fmt) == "1" else "a")
    body = _PREFIX.sub("", clean)
    lead = _LEAD.match(body) or (_LEAD_AFTER_PREFIX.match(body) if body != clean else None)
    label = next(g for g in lead.groups() if g) if lead else None
    if lead and label is not None and ("1" if label.isdigit() else "a") in families:
        idx = _label_index(label, len(choices), families)
        if idx is None:
            return None  # a label, but out of range
        rest = body[lead.end():].strip()
        if _other_labels(rest, len(choices), families) - {idx}:
            return None
        by_text = _match_text(rest, choices) if rest else None
        if lead.re is _LEAD_AFTER_PREFIX:  # "answer: a bell": a bare letter may be an article; the text decides
            return idx if by_text is None else by_text
        return idx if by_text in (None, idx) else None

    # No leading label: one bracketed label elsewhere ("i think it is (b)") still counts; two are ambiguous.
    bracketed = {_label_index(b, len(choices), families) for b in _BRACKETED.findall(clean)} - {None}
    if bracketed:
        return bracketed.pop() if len(bracketed) == 1 else None
    return _match_text(body, choices)


def _other_labels(text: str, n: int, families: str) -> set[int | None]:
    return {_label_index(a or b, n, families) for a, b in _OTHER.findall(text)} - {None}

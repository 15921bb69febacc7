"""How a multiple-choice question is written: the six label formats, the rendered prompt and its target.

A prompt is rendered in the style AF2 was trained on: ``Question? (A) xxx. (B) yyy. (C) zzz.`` The target answer
is the chosen option's text alone, e.g. ``yyy``, whatever label format the prompt used (``render_answer``).
Evaluation uses one fixed format, ``EVAL_FORMAT`` (the report's (A)-(F)).

AF2 lower-cases prompt and answer (``prompt.prompt_text``), so ``A.`` / ``a.`` and ``(A)`` / ``(a)`` become the
same string for the model; the six formats are kept as the report's recipe describes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from aqa_utils.data.dcase import Question

LABEL_FORMATS = ("A.", "(A)", "a.", "(a)", "1.", "(1)")
EVAL_FORMAT = "(A)"


def symbol(fmt: str) -> str:
    if fmt not in LABEL_FORMATS:
        raise ValueError(f"unknown label format {fmt!r}; known: {LABEL_FORMATS}")
    return next(c for c in fmt if c.isalnum())


def format_label(index: int, fmt: str) -> str:
    """The label of option ``index`` (0-based) in ``fmt``: format_label(1, "(A)") == "(B)", (1, "1.") == "2."."""
    sym = symbol(fmt)
    if not 0 <= index < 26:
        raise ValueError(f"option index {index} out of range")
    label = {"A": chr(ord("A") + index), "a": chr(ord("a") + index), "1": str(index + 1)}[sym]
    return fmt.replace(sym, label)


def render_question(question: str, choices: list[str], fmt: str = EVAL_FORMAT) -> str:
    """``Question? (A) xxx. (B) yyy.``: each option gets a period unless its text already ends in . ? or !."""
    parts = [question.strip()]
    for i, choice in enumerate(choices):
        text = choice.strip()
        parts.append(f"{format_label(i, fmt)} {text}" + ("" if text.endswith((".", "?", "!")) else "."))
    return " ".join(parts)


def render_answer(choices: list[str], answer: int) -> str:
    """The target: the answer's option text, whatever label format the prompt used (``"yyy"``)."""
    return choices[answer].strip()


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


def eval_example(q: Question, order: list[int] | None = None) -> MCExample:
    """The fixed eval rendering, "(A)".."(F)"; ``order`` (a permutation of the options) tests shuffle robustness."""
    order = list(range(len(q.choices))) if order is None else list(order)
    if sorted(order) != list(range(len(q.choices))):
        raise ValueError(f"order {order} is not a permutation of {len(q.choices)} options")
    choices = [q.choices[i] for i in order]
    answer = None if q.answer is None else order.index(q.answer)
    target = None if answer is None else render_answer(choices, answer)
    return MCExample(render_question(q.question, choices, EVAL_FORMAT), target, choices, answer, EVAL_FORMAT)

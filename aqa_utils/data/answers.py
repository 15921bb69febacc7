"""Free model output -> the option it names (``parse_answer``), or None: "unparsed"."""

from __future__ import annotations

import re

from aqa_utils.data.formats import symbol

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

    families = "a1" if fmt is None else ("1" if symbol(fmt) == "1" else "a")
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

"""Answering for the demo: one question about one clip by one system, and every system side by side.

Nothing here assumes the tiny model: a system is whatever its loader returns (the tiny base, the released AF2, an
adapter merged into either), answered through the evaluation engine exactly as ``evaluate`` answers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

from aqa_utils.audio import ClipCache
from aqa_utils.data.dcase import MAX_CHOICES, Question, strip_labels, subset_of
from aqa_utils.evaluation.engine import EncodedClips, Item, audio_config_of, core_of, run_items
from aqa_utils.evaluation.settings import EvalSettings


class DemoInputError(ValueError):
    """Input the demo refuses (the widget shows the message instead of answering)."""


def check_input(question: str, choices: Sequence[str], free_allowed: bool = False) -> list[str]:
    """The option texts (labels such as "A. " stripped) of a valid question; raises ``DemoInputError`` saying what
    is wrong. ``free_allowed``: no options at all is fine (free generation)."""
    if not question.strip():
        raise DemoInputError("the question is empty: type a question")
    texts = strip_labels([c for c in choices if c.strip()])
    if free_allowed and not texts:
        return texts
    if not 2 <= len(texts) <= MAX_CHOICES:
        more = " or none for a free answer" if free_allowed else ""
        raise DemoInputError(f"got {len(texts)} option(s): give 2 to {MAX_CHOICES} options, one per line{more}")
    return texts


def _demo_question(path: Path, question: str, texts: list[str]) -> Question:
    return Question(qid="demo", split="demo", question=question, choices=texts, answer=None, clip_id=path.stem,
                    audio_path=path, subset=subset_of(path.name), question_type="", json_path=path,
                    raw_choices=[f"{chr(ord('A') + i)}. {t}" for i, t in enumerate(texts)])


def predict_one(model: Any, tokenizer: Any, audio_path: str | Path, question: str, choices: Sequence[str],
                max_new_tokens: int = 256, generate: bool = True, order: Sequence[int] | None = None) -> dict[str, Any]:
    """Answer one question about one clip: option probabilities (score) and the generated answer.

    ``choices``: option texts, with or without "A. " labels. ``order``: show the options in this order (``order[p]``
    is the original index shown at position p; the shuffle probe); results stay in ORIGINAL option indices.
    Returns ``answer`` (index of the most likely option), ``answer_text``, ``choices``, ``order``, ``position``
    (where the answer was shown), ``probabilities`` (per option, softmax over the options' summed log-probs),
    ``logprobs``, ``generated`` (AF2's free answer; None with ``generate=False``), ``generated_answer`` (its
    parsed option index, None if unparsed) and ``seconds`` (measured time of this answer, audio read included).
    """
    texts = check_input(question, choices)
    order = tuple(range(len(texts))) if order is None else tuple(order)
    if sorted(order) != list(range(len(texts))):
        raise DemoInputError(f"order {list(order)} is not a permutation of {len(texts)} options")
    path = Path(audio_path)
    settings = EvalSettings(mode="both" if generate else "score", batch_size=1, max_new_tokens=max_new_tokens)
    t0 = time.perf_counter()
    clips = EncodedClips(ClipCache(audio_config_of(core_of(model)), 1), keep=1)  # the clip is encoded once
    item = Item(0, _demo_question(path, question, texts), order)
    (scored,), _ = run_items(model, tokenizer, [item], "score", settings, clips)
    generated = None
    if generate:
        (generated,), _ = run_items(model, tokenizer, [item], "generate", settings, clips)
    return {
        "answer": scored.pred, "answer_text": texts[scored.pred], "choices": texts, "order": list(order),
        "position": scored.position, "probabilities": scored.probs, "logprobs": scored.logprobs,
        "generated": None if generated is None else generated.text,
        "generated_answer": None if generated is None else generated.pred,
        "seconds": time.perf_counter() - t0,
    }


def free_answer(model: Any, tokenizer: Any, audio_path: str | Path, question: str,
                max_new_tokens: int = 256) -> dict[str, Any]:
    """AF2's free generation for a question without options (the prompt is the question alone): ``generated``
    and ``seconds``. Nothing is scored, so there is no chosen option and no probability."""
    check_input(question, [], free_allowed=True)
    path = Path(audio_path)
    settings = EvalSettings(mode="generate", batch_size=1, max_new_tokens=max_new_tokens)
    t0 = time.perf_counter()
    clips = EncodedClips(ClipCache(audio_config_of(core_of(model)), 1), keep=0)
    # With no options the eval rendering is the question alone, so the engine generates from it unchanged.
    (out,), _ = run_items(model, tokenizer, [Item(0, _demo_question(path, question, []), ())], "generate",
                          settings, clips)
    return {"generated": out.text, "seconds": time.perf_counter() - t0}


def probe_order(n: int) -> list[int]:
    """The shuffle probe's order: every option moves one place down, the last to the top (no option stays put)."""
    return [n - 1] + list(range(n - 1))


class Systems:
    """The systems the demo compares, each loaded on first use and kept: ``loaders`` {name: () -> model}.

    ``answer`` / ``free`` add ``load_seconds`` (the model's load time when this call loaded it, else 0) so the time
    of an answer is never mixed with a one-off load.
    """

    def __init__(self, loaders: dict[str, Callable[[], Any]], tokenizer: Any, max_new_tokens: int = 256,
                 scored: dict[str, dict[str, bool]] | None = None):
        if not loaders:
            raise ValueError("Systems: no system to load")
        self.loaders, self.tokenizer, self.max_new_tokens = dict(loaders), tokenizer, max_new_tokens
        self._models: dict[str, Any] = {}
        self._correct: dict[tuple[str, tuple[str, ...]], dict[str, bool]] = {}
        # {name: {qid: right}} from the evaluation's saved predictions (``workbook.saved_correctness``): the "where
        # wrong" filter reads them instead of scoring a split again with every system (minutes on 2 cores).
        self.scored = {name: dict(right) for name, right in (scored or {}).items()}

    @property
    def names(self) -> list[str]:
        return list(self.loaders)

    def model(self, name: str) -> tuple[Any, float]:
        if name not in self.loaders:
            raise KeyError(f"unknown system {name!r}; known: {self.names}")
        if name in self._models:
            return self._models[name], 0.0
        t0 = time.perf_counter()
        self._models[name] = self.loaders[name]()
        return self._models[name], time.perf_counter() - t0

    def answer(self, name: str, path: Path, question: str, choices: Sequence[str],
               order: Sequence[int] | None = None, generate: bool = True) -> dict:
        model, load = self.model(name)
        out = predict_one(model, self.tokenizer, path, question, choices, self.max_new_tokens, generate, order)
        return {**out, "load_seconds": load}

    def free(self, name: str, path: Path, question: str) -> dict:
        model, load = self.model(name)
        return {**free_answer(model, self.tokenizer, path, question, self.max_new_tokens), "load_seconds": load}

    def correctness(self, name: str, questions: list[Question]) -> dict[str, bool]:
        """{qid: whether ``name``'s scored answer is right}, for questions with a known answer: from ``scored`` when
        it holds every one of them, else evaluated once per question list (option scoring, as the evaluation)."""
        from aqa_utils.evaluation.evaluate import evaluate

        known = [q for q in questions if q.answer is not None]
        saved = self.scored.get(name, {})
        if all(q.qid in saved for q in known):
            return {q.qid: saved[q.qid] for q in known}
        key = (name, tuple(q.qid for q in known))
        if key not in self._correct:
            if not known:
                self._correct[key] = {}
            else:
                table = evaluate(self.model(name)[0], self.tokenizer, known,
                                 EvalSettings(mode="score", batch_size=8)).predictions
                self._correct[key] = dict(zip(table["qid"], table["correct"].astype(bool)))
        return self._correct[key]

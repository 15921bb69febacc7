"""The evaluation engine: AF2's generation protocol, option scoring, shuffle robustness, submission files.

Two ways to turn a model into an answer:

- ``generate`` (AF2's protocol, what the published numbers use): the fixed eval prompt ``question (A) x. (B) y.``
  through ``prompt_text``, greedy decoding until ``<|endoftext|>``, the text parsed back to an option
  (``augment.parse_answer``); text that names no option is "unparsed" and counts as wrong.
- ``score``: every option's training-format target (``render_answer`` -> ``(b) yyy``, lower-cased) is scored by
  its summed log-probability given the audio and the prompt, all options of a batch of questions in ONE forward
  pass; the argmax is the prediction (never unparsed), the softmax over the options gives probabilities.

Both share the audio path of the batching engine (``evaluation.engine``).

``evaluate`` returns an :class:`EvalResult` (one prediction row per question in the input order, accuracy reports
per mode, shuffle robustness, timing) and can write ``predictions.csv``, ``metrics.json`` and the challenge's
``submission.csv``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from aqa_utils import metrics
from aqa_utils.audio import ClipCache
from aqa_utils.data.dcase import Question
from aqa_utils.evaluation.engine import EncodedClips, Item, Out, audio_config_of, core_of, run_items
from aqa_utils.evaluation.results import EvalResult, write_result
from aqa_utils.evaluation.settings import EvalSettings


def _base_table(questions: list[Question]) -> pd.DataFrame:
    return pd.DataFrame({
        "qid": [q.qid for q in questions],
        "subset": [q.subset for q in questions],
        "question_type": [q.question_type for q in questions],
        "n_choices": [len(q.choices) for q in questions],
        "answer": pd.array([q.answer for q in questions], dtype="Int64"),
    })


def _preds(outs: list[Out]) -> pd.api.extensions.ExtensionArray:
    return pd.array([o.pred for o in outs], dtype="Int64")


def _report(table: pd.DataFrame) -> dict[str, Any]:
    """accuracy_report, or counts only when no answer is known (the eval split)."""
    if table["answer"].notna().any():
        return metrics.accuracy_report(table)
    return {"counts": {"rows": len(table), "scored": 0, "unscored": len(table),
                       "unparsed": int(table["pred"].isna().sum())}}


def _correct(answer: pd.Series, pred: pd.Series) -> pd.Series:
    """True/False where the answer is known (unparsed = False), NA where it is not."""
    out = (answer == pred).fillna(False).astype("boolean")
    out[answer.isna()] = pd.NA
    return out


def _robustness(model, tokenizer, questions: list[Question], settings: EvalSettings, clips: EncodedClips):
    mode = settings.robustness_mode
    items = []
    for i, q in enumerate(questions):
        if q.answer is None:
            continue
        n = len(q.choices)
        k = min(settings.permutations, math.factorial(n))  # 2 options have only 2 orderings
        for p, order in enumerate(metrics.permutations_for(n, k, settings.seed)):
            items.append(Item(i, q, tuple(order), p))
    if not items:
        return None, None, None, None
    outs, timing = run_items(model, tokenizer, items, mode, settings, clips, desc=f"robustness ({mode})")
    per_perm = pd.DataFrame({
        "qid": [it.question.qid for it in items],
        "perm": [it.perm_id for it in items],
        "order": [list(it.order) for it in items],
        "n_choices": [len(it.order) for it in items],
        "answer": [it.question.answer for it in items],
        "pred": pd.array([o.pred for o in outs], dtype="Int64"),
        "answer_position": [it.order.index(it.question.answer) for it in items],
        "pred_position": pd.array([o.position for o in outs], dtype="Int64"),
        "subset": [it.question.subset for it in items],
    })
    summary = metrics.shuffle_robustness(per_perm)
    summary = {"mode": mode, "k": settings.permutations, "seed": settings.seed, **summary}
    positions = metrics.position_distribution(per_perm)
    return summary, per_perm, positions, timing


def evaluate(model: Any, tokenizer: Any, questions: Sequence[Question], settings: EvalSettings | None = None,
             out_dir: str | Path | None = None) -> EvalResult:
    """Evaluate ``model`` on ``questions``.

    ``predictions`` columns, one row per question in the given order:
      qid, subset, question_type, n_choices, answer (Int64, NA = unknown), pred (Int64 original option index,
      NA = unparsed), pred_text (generated text, or the chosen option's text in score mode), correct (boolean,
      NA when the answer is unknown); per mode run: ``pred_generate`` / ``pred_score``; ``raw_output`` (generated
      text) when generating; ``probs`` and ``logprobs`` (per original option) when scoring.
    With ``out_dir``: ``predictions.csv``, ``metrics.json``, ``submission.csv`` (and ``robustness.csv``).
    """
    settings = settings or EvalSettings()
    questions = list(questions)[: settings.limit] if settings.limit is not None else list(questions)
    if not questions:
        raise ValueError("evaluate: no questions")
    dup = pd.Series([q.qid for q in questions]).duplicated()
    if dup.any():
        raise ValueError(f"evaluate: duplicate question id(s) {[q.qid for q, d in zip(questions, dup) if d][:5]}")
    clips = EncodedClips(ClipCache(audio_config_of(core_of(model)), settings.clip_cache_size), settings.encoded_cache_size)
    items = [Item(i, q, tuple(range(len(q.choices)))) for i, q in enumerate(questions)]

    table = _base_table(questions)
    results: dict[str, list[Out]] = {}
    timing: dict[str, Any] = {}
    for mode in settings.modes:
        results[mode], timing[mode] = run_items(model, tokenizer, items, mode, settings, clips)
        table[f"pred_{mode}"] = _preds(results[mode])
        if mode == "generate":
            table["raw_output"] = [o.text for o in results[mode]]
        else:
            table["probs"] = [o.probs for o in results[mode]]
            table["logprobs"] = [o.logprobs for o in results[mode]]
    primary = settings.primary_mode
    table.insert(5, "pred", table[f"pred_{primary}"])
    table.insert(6, "pred_text", [o.text for o in results[primary]])
    table.insert(7, "correct", _correct(table["answer"], table["pred"]))
    for mode in settings.modes:
        if mode != primary:
            table[f"correct_{mode}"] = _correct(table["answer"], table[f"pred_{mode}"])

    reports = {mode: _report(table.assign(pred=table[f"pred_{mode}"])) for mode in settings.modes}
    robustness = per_perm = positions = None
    if settings.permutations > 0:
        robustness, per_perm, positions, rob_timing = _robustness(model, tokenizer, questions, settings, clips)
        if rob_timing is not None:
            timing["robustness"] = rob_timing
    timing["audio"] = clips.stats()

    result = EvalResult(table, reports, robustness, timing, settings, per_perm, positions)
    if out_dir is not None:
        write_result(result, questions, Path(out_dir))
    return result

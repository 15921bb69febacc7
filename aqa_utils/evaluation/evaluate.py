"""The evaluation engine: AF2's generation protocol, option scoring, shuffle robustness, submission files.

Two ways to turn a model into an answer:

- ``generate`` (AF2's protocol, what the published numbers use): the fixed eval prompt ``question (A) x. (B) y.``
  through ``prompt_text``, greedy decoding until ``<|endoftext|>``, the text parsed back to an option
  (``augment.parse_answer``); text that names no option is "unparsed" and counts as wrong.
- ``score``: every option's training target (``render_answer``: its text, lower-cased) is scored by
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


def _items(questions: list[Question], settings: EvalSettings) -> list[Item]:
    """Every question in its original order (perm 0: the identity), then, for questions with a known answer, the
    other orderings of the shuffle check (``metrics.permutations_for``: K in all, fewer when fewer exist)."""
    items = []
    for i, q in enumerate(questions):
        n = len(q.choices)
        k = min(settings.permutations, math.factorial(n)) if q.answer is not None else 1
        for p, order in enumerate(metrics.permutations_for(n, max(k, 1), settings.seed)):
            items.append(Item(i, q, tuple(order), p))
    return items


def _per_perm(items: list[Item], outs: list[Out]) -> pd.DataFrame:
    """One row per (answered question, ordering): original-index answer and prediction, shown positions."""
    rows = [(it, o) for it, o in zip(items, outs) if it.question.answer is not None]
    return pd.DataFrame({
        "qid": [it.question.qid for it, _ in rows],
        "perm": [it.perm_id for it, _ in rows],
        "order": [list(it.order) for it, _ in rows],
        "n_choices": [len(it.order) for it, _ in rows],
        "answer": [it.question.answer for it, _ in rows],
        "pred": pd.array([o.pred for _, o in rows], dtype="Int64"),
        "answer_position": [it.order.index(it.question.answer) for it, _ in rows],
        "pred_position": pd.array([o.position for _, o in rows], dtype="Int64"),
        "subset": [it.question.subset for it, _ in rows],
    })


def evaluate(model: Any, tokenizer: Any, questions: Sequence[Question], settings: EvalSettings | None = None,
             out_dir: str | Path | None = None) -> EvalResult:
    """Evaluate ``model`` on ``questions``.

    ``predictions`` columns, one row per question in the given order:
      qid, subset, question_type, n_choices, answer (Int64, NA = unknown), pred (Int64 original option index,
      NA = unparsed), pred_text (generated text, or the chosen option's text in score mode), correct (boolean,
      NA when the answer is unknown); per mode run: ``pred_generate`` / ``pred_score``; ``raw_output`` (generated
      text) when generating; ``probs`` and ``logprobs`` (per original option) when scoring.
    With ``permutations`` K > 0 every answered question is also shown in K-1 other orders, in every mode run (the
    DCASE headline: accuracy averaged over shuffled orders); ``robustness``, ``per_perm`` and ``positions`` hold the
    results per mode. With ``out_dir``: ``predictions.csv``, ``metrics.json``, ``submission.csv`` (and
    ``robustness_<mode>.csv``).
    """
    settings = settings or EvalSettings()
    questions = list(questions)[: settings.limit] if settings.limit is not None else list(questions)
    if not questions:
        raise ValueError("evaluate: no questions")
    dup = pd.Series([q.qid for q in questions]).duplicated()
    if dup.any():
        raise ValueError(f"evaluate: duplicate question id(s) {[q.qid for q, d in zip(questions, dup) if d][:5]}")
    clips = EncodedClips(ClipCache(audio_config_of(core_of(model)), settings.clip_cache_size), settings.encoded_cache_size)
    items = _items(questions, settings)
    original = [it for it in items if it.perm_id == 0]  # one per question, in input order

    table = _base_table(questions)
    results: dict[str, list[Out]] = {}
    timing: dict[str, Any] = {}
    robustness: dict[str, Any] = {}
    per_perm: dict[str, pd.DataFrame] = {}
    positions: dict[str, pd.DataFrame] = {}
    for mode in settings.modes:
        # One pass per mode over every ordering: the original order is the shuffle check's first ordering.
        outs, timing[mode] = run_items(model, tokenizer, items, mode, settings, clips)
        results[mode] = [o for it, o in zip(items, outs) if it.perm_id == 0]
        table[f"pred_{mode}"] = _preds(results[mode])
        if mode == "generate":
            table["raw_output"] = [o.text for o in results[mode]]
        else:
            table["probs"] = [o.probs for o in results[mode]]
            table["logprobs"] = [o.logprobs for o in results[mode]]
        if settings.permutations > 0 and len(original) < len(items):
            per_perm[mode] = _per_perm(items, outs)
            robustness[mode] = {"mode": mode, "k": settings.permutations, "seed": settings.seed,
                                **metrics.shuffle_robustness(per_perm[mode]),
                                "position_tv": metrics.position_tv(per_perm[mode])}
            positions[mode] = metrics.position_distribution(per_perm[mode])
    primary = settings.primary_mode
    table.insert(5, "pred", table[f"pred_{primary}"])
    table.insert(6, "pred_text", [o.text for o in results[primary]])
    table.insert(7, "correct", _correct(table["answer"], table["pred"]))
    for mode in settings.modes:
        if mode != primary:
            table[f"correct_{mode}"] = _correct(table["answer"], table[f"pred_{mode}"])

    reports = {mode: _report(table.assign(pred=table[f"pred_{mode}"])) for mode in settings.modes}
    for mode, rob in robustness.items():  # the headline, as DCASE ranks: accuracy averaged over shuffled orders
        reports[mode].update(shuffle_mean=rob["mean_accuracy"], shuffle_mean_ci=rob["mean_accuracy_ci"])
    timing["audio"] = clips.stats()

    result = EvalResult(table, reports, robustness, timing, settings, per_perm, positions)
    if out_dir is not None:
        write_result(result, questions, Path(out_dir))
    return result

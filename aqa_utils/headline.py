"""The headline numbers of a run, as DCASE ranks systems: top-1 accuracy averaged over shuffled option orders.

From each system's evaluation (``metrics`` and ``robustness`` per answer mode, as ``evaluate`` returns and writes
them): per system and mode, accuracy in the original order, the shuffle-averaged accuracy with its 95% interval,
the share right under every order, the unparsed share and the position bias (total variation between predicted and
true answer positions); then LoRA against the base and higher ranks against the lowest, each as the mean over
training seeds of the per-question difference with a paired bootstrap 95% interval over questions.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

import numpy as np

from aqa_utils.metrics import bootstrap_mean_ci

MODES = ("score", "generate")


def mode_entry(metrics: Mapping[str, Any], robustness: Mapping[str, Any]) -> dict[str, Any]:
    """One system in one mode: ``original``, ``shuffle_mean``, ``consistent``, ``ci``, ``unparsed``, ``position_tv``."""
    return {"original": metrics["micro"], "shuffle_mean": robustness["mean_accuracy"],
            "consistent": robustness["consistent_accuracy"], "ci": list(robustness["mean_accuracy_ci"]),
            "unparsed": robustness["unparsed_rate"], "position_tv": robustness["position_tv"]}


def system_entry(rank: int, seed: int | None, evaluation) -> dict[str, Any]:
    """``evaluation``: anything with ``metrics`` {mode: accuracy report} and ``robustness`` {mode: summary}."""
    entry: dict[str, Any] = {"rank": rank, "seed": seed}
    for mode in MODES:
        if mode in evaluation.robustness:
            entry[mode] = mode_entry(evaluation.metrics[mode], evaluation.robustness[mode])
    first = next(m for m in MODES if m in entry)
    entry["position_tv"] = entry[first]["position_tv"]
    return entry


def _shares(evaluation, mode: str) -> dict[str, float]:
    return evaluation.robustness[mode]["per_question"]


def paired_gain(reference: Iterable, systems: Iterable, mode: str) -> dict[str, Any]:
    """Mean over ``systems`` (e.g. the seeds of one rank) of their shuffle-averaged accuracy minus the mean over
    ``reference`` (one evaluation or several seeds), per question, with a paired bootstrap 95% interval over
    questions. Every evaluation must cover the same questions."""
    refs, others = list(reference), list(systems)
    questions = sorted(_shares(refs[0], mode))
    for ev in refs + others:
        if sorted(_shares(ev, mode)) != questions:
            raise ValueError("paired_gain: the evaluations do not cover the same questions")

    def mean_over(evs):
        return np.mean([[_shares(ev, mode)[q] for q in questions] for ev in evs], axis=0)

    diff = mean_over(others) - mean_over(refs)
    return {"diff": float(diff.mean()), "ci": list(bootstrap_mean_ci(diff)), "n_questions": len(questions),
            "n_seeds": len(others)}


def headline(evaluations: Mapping[Any, Any]) -> dict[str, Any]:
    """``evaluations``: {system: evaluation}, a system having ``rank`` (0 = base), ``seed`` and ``key``.

    Returns ``systems`` {key: system_entry}, ``lora_vs_base`` {rank: {mode: paired_gain}} and ``rank_vs_lowest``
    {rank: {mode: paired_gain against the lowest rank}}."""
    by_rank: dict[int, list] = defaultdict(list)
    for system, ev in evaluations.items():
        by_rank[system.rank].append(ev)
    if 0 not in by_rank:
        raise ValueError("headline: no base system (rank 0) among the evaluations")
    modes = [m for m in MODES if all(m in ev.robustness for ev in evaluations.values())]
    ranks = sorted(r for r in by_rank if r > 0)
    out: dict[str, Any] = {
        "systems": {system.key: system_entry(system.rank, system.seed, ev) for system, ev in evaluations.items()},
        "lora_vs_base": {str(r): {m: paired_gain(by_rank[0], by_rank[r], m) for m in modes} for r in ranks},
        "rank_vs_lowest": {str(r): {m: paired_gain(by_rank[ranks[0]], by_rank[r], m) for m in modes}
                           for r in ranks[1:]},
    }
    return out


def _points(d: Mapping[str, Any]) -> str:
    return f"{100 * d['diff']:+.1f} points [{100 * d['ci'][0]:+.1f}, {100 * d['ci'][1]:+.1f}]"


def rank_verdict(rank_vs_lowest: Mapping[str, Mapping[str, Any]], lowest: int, mode: str = "score",
                 lowest_vs_base: Mapping[str, Any] | None = None) -> str:
    """"grows" when a higher rank beats the lowest with 95% confidence; else "saturates", unless the lowest rank
    does not beat the base with 95% confidence (``lowest_vs_base``: its ``lora_vs_base`` entry): then there is no
    gain to saturate, and the verdict says so. In words, with the numbers it rests on."""
    if not rank_vs_lowest:
        return "no higher rank was trained"
    better = [r for r, d in rank_vs_lowest.items() if d[mode]["ci"][0] > 0]
    parts = ", ".join(f"r={r} {_points(d[mode])}" for r, d in rank_vs_lowest.items())
    against = f"({mode}, shuffle-averaged, against r={lowest}: {parts})"
    if not better and lowest_vs_base is not None and lowest_vs_base[mode]["ci"][0] <= 0:
        return (f"nothing to saturate: r={lowest} does not beat the base ({_points(lowest_vs_base[mode])}) and no "
                f"higher rank beats r={lowest} {against}")
    return f"{'grows' if better else 'saturates'} above r={lowest} {against}"

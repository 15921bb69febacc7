"""``results/summary.json``: the run's headline numbers in one machine-readable file.

Schema (accuracies are fractions in [0, 1]; ``ci`` is the 95% interval of ``shuffle_mean``)::

    {"profile": "full", "dev_questions": N, "chance": c, "minutes": {"total": t, "<stage>": t, ...},
     "systems": {"base": S, "lora_r8_s0": S, ...},
     "lora_vs_base": {"8": {"score": D, "generate": D}, ...},
     "rank_vs_lowest": {"16": {"score": D, ...}, ...}, "rank_verdict": "...", "orders": K,
     "lr_sweep": {"grid", "chosen", "val_split", "val_questions", "runs"} or null}
    S = {"rank", "seed", "score": {"original", "shuffle_mean", "consistent", "ci", "unparsed", "position_tv"},
         "generate": {...}, "position_tv"}
    D = {"diff": mean over seeds of (LoRA - base) shuffle_mean, "ci": [lo, hi], "n_questions", "n_seeds"}

Beside it, ``results/goals.md``: the miniature's goals checked against these numbers (``analysis.goals``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from aqa_utils.headline import headline, rank_verdict
from aqa_utils.workbook.profile import Profile, profile


def run_summary(prof: Profile, evaluations: Mapping, minutes: Mapping[str, float] | None = None,
                split: str = "dev") -> dict[str, Any]:
    """The summary of ``evaluations`` ({System: evaluation with ``metrics`` and ``robustness``})."""
    head = headline(evaluations)
    base = next(ev for system, ev in evaluations.items() if system.rank == 0)
    first_mode = next(iter(base.metrics))
    ranks = sorted({system.rank for system in evaluations if system.rank > 0})
    sweep_path = prof.results_dir / "lr_sweep.json"
    return {
        "profile": prof.name,
        "model": prof.model,
        "data": "DCASE" if prof.real_data else "mini benchmark (generated)",
        "split": split,
        "dev_questions": base.metrics[first_mode]["counts"]["scored"],
        "chance": base.metrics[first_mode]["chance"],
        "seeds": list(prof.seeds),
        "minutes": dict(minutes or {}),
        **head,
        "rank_verdict": rank_verdict(head["rank_vs_lowest"], lowest=ranks[0],
                                     lowest_vs_base=head["lora_vs_base"].get(str(ranks[0]))) if ranks else None,
        "orders": prof.eval_permutations,
        "lr_sweep": json.loads(sweep_path.read_text()) if prof.lr_grid and sweep_path.exists() else None,
    }


def write_summary(prof: Profile, evaluations: Mapping, minutes: Mapping[str, float] | None = None,
                  split: str = "dev") -> Path:
    from aqa_utils.analysis.goals import goals_markdown

    path = prof.results_dir / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = run_summary(prof, evaluations, minutes, split)
    path.write_text(json.dumps(summary, indent=2) + "\n")
    if not prof.real_data:
        twin = {"full": "quick", "quick": "full"}.get(prof.name)  # same data and base: shared systems must agree
        twin_path = profile(twin).results_dir / "summary.json" if twin else None
        other = json.loads(twin_path.read_text()) if twin_path and twin_path.exists() else None
        (prof.results_dir / "goals.md").write_text(
            f"# The miniature's goals, checked against this run ({prof.name} profile)\n\nWritten by `make reproduce` "
            "from `summary.json` (`aqa_utils/analysis/goals.py`): each goal of the embedded default, what this run "
            "measured, the bar, and whether it is met. Nothing here is typed by hand.\n\n"
            + goals_markdown(summary, summary.get("lr_sweep"), other) + "\n")
    return path

"""``results/summary.json``: the run's headline numbers in one machine-readable file.

Schema (accuracies are fractions in [0, 1]; ``ci`` is the 95% interval of ``shuffle_mean``)::

    {"profile": "full", "dev_questions": N, "chance": c, "minutes": {"total": t, "<stage>": t, ...},
     "systems": {"base": S, "lora_r8_s0": S, ...},
     "lora_vs_base": {"8": {"score": D, "generate": D}, ...},
     "rank_vs_lowest": {"16": {"score": D, ...}, ...}, "rank_verdict": "..."}
    S = {"rank", "seed", "score": {"original", "shuffle_mean", "consistent", "ci", "unparsed", "position_tv"},
         "generate": {...}, "position_tv"}
    D = {"diff": mean over seeds of (LoRA - base) shuffle_mean, "ci": [lo, hi], "n_questions", "n_seeds"}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from aqa_utils.headline import headline, rank_verdict
from aqa_utils.workbook.profile import Profile


def run_summary(prof: Profile, evaluations: Mapping, minutes: Mapping[str, float] | None = None,
                split: str = "dev") -> dict[str, Any]:
    """The summary of ``evaluations`` ({System: evaluation with ``metrics`` and ``robustness``})."""
    head = headline(evaluations)
    base = next(ev for system, ev in evaluations.items() if system.rank == 0)
    first_mode = next(iter(base.metrics))
    ranks = sorted({system.rank for system in evaluations if system.rank > 0})
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
        "rank_verdict": rank_verdict(head["rank_vs_lowest"], lowest=ranks[0]) if ranks else None,
    }


def write_summary(prof: Profile, evaluations: Mapping, minutes: Mapping[str, float] | None = None,
                  split: str = "dev") -> Path:
    path = prof.results_dir / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run_summary(prof, evaluations, minutes, split), indent=2) + "\n")
    return path

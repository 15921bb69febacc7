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
from aqa_utils.workbook import lr_sweep
from aqa_utils.workbook.profile import Profile, profile


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
        "rank_verdict": rank_verdict(head["rank_vs_lowest"], lowest=ranks[0],
                                     lowest_vs_base=head["lora_vs_base"].get(str(ranks[0]))) if ranks else None,
        "orders": prof.eval_permutations,
        "lr_sweep": _read(prof.results_dir / lr_sweep.FILE) if prof.lr_grid else None,
    }


def write_summary(prof: Profile, evaluations: Mapping, minutes: Mapping[str, float] | None = None,
                  split: str = "dev") -> Path:
    path = prof.results_dir / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = run_summary(prof, evaluations, minutes, split)
    path.write_text(json.dumps(summary, indent=2) + "\n")
    if not prof.real_data:
        twin = twin_results_dir(prof)
        other = _read(twin / "summary.json") if twin else None
        write_goals(prof.results_dir, summary, other)
        if other:  # the twin's goal 8 was "one run" until this run existed: check it against this one too
            write_goals(twin, other, summary)
    return path


def twin_results_dir(prof: Profile) -> Path | None:
    """The results folder of the run that shares this one's data and base (full <-> quick), whose systems in common
    must give identical numbers (goal 8); None for a profile without one."""
    twin = {"full": "quick", "quick": "full"}.get(prof.name)
    return profile(twin).results_dir if twin else None


def write_goals(results_dir: Path, summary: Mapping, other: Mapping | None = None) -> Path:
    """``results_dir/goals.md``: the miniature's goals checked against ``summary`` (and ``other``, a second run)."""
    from aqa_utils.analysis.goals import goals_markdown

    path = results_dir / "goals.md"
    path.write_text(
        f"# The miniature's goals, checked against this run ({summary['profile']} profile)\n\nWritten by `make "
        "reproduce` from `summary.json` (`aqa_utils/analysis/goals.py`): each goal of the embedded default, what this "
        "run measured, the bar, and whether it is met. Nothing here is typed by hand.\n\n"
        + goals_markdown(summary, summary.get("lr_sweep"), other) + "\n")
    return path


def _read(path: Path) -> dict | None:
    """The JSON file at ``path``, or None when there is none."""
    return json.loads(path.read_text()) if path.exists() else None

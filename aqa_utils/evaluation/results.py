"""What ``evaluate`` measured (``EvalResult``) and the files it writes: predictions, metrics, submission."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from aqa_utils import metrics
from aqa_utils.data.dcase import Question
from aqa_utils.evaluation.settings import EvalSettings


@dataclass
class EvalResult:
    """What ``evaluate`` measured.

    ``predictions``: one row per question, in the input order (see ``evaluate``).
    ``metrics``: {mode: ``metrics.accuracy_report``} (or only counts when no answer is known).
    ``robustness``: per mode, ``metrics.shuffle_robustness`` plus run details and ``position_tv`` (empty when
    off); ``per_perm`` per mode, its rows; ``positions`` per mode, the ``metrics.position_distribution`` table.
    ``timing``: per mode, seconds, questions/s and the audio-loading share; ``audio`` cache statistics.
    """

    predictions: pd.DataFrame
    metrics: dict[str, Any]
    robustness: dict[str, dict[str, Any]]
    timing: dict[str, Any]
    settings: EvalSettings
    per_perm: dict[str, pd.DataFrame] = field(default_factory=dict)
    positions: dict[str, pd.DataFrame] = field(default_factory=dict)
    submission: dict[str, Any] | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> str:
        lines = []
        for mode, rep in self.metrics.items():
            if "micro" in rep:
                per = ", ".join(f"{k} {100 * v:.1f}" for k, v in rep["per_subset"].items())
                lines.append(f"{mode}: micro {100 * rep['micro']:.1f}%, domain avg {100 * rep['domain_average']:.1f}%"
                             f" ({per}); unparsed {100 * rep['unparsed_rate']:.1f}%")
            else:
                lines.append(f"{mode}: {rep['counts']['rows']} questions, no answers to score")
            t = self.timing.get(mode)
            if t:
                lines[-1] += f"; {t['questions_per_s']:.2f} q/s"
        for r in self.robustness.values():
            lines.append(f"shuffle robustness ({r['mode']}, K={r['k']}): mean {100 * r['mean_accuracy']:.1f}% "
                         f"+- {100 * r['std_accuracy']:.1f}, consistent {100 * r['consistent_accuracy']:.1f}%")
        return "\n".join(lines)


def _jsonable(obj: Any, digits: int = 6) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, digits) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return _jsonable(obj.reset_index().to_dict(orient="records"), digits)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return None if not math.isfinite(x) else round(x, digits)
    if obj is None or obj is pd.NA:
        return None
    return obj if isinstance(obj, str) else str(obj)


def submission_rows(questions: list[Question], preds: Iterable[int | None]) -> tuple[list[tuple[str, str]], int]:
    """(question id, verbatim option string) per question; an unparsed prediction becomes the first option.

    Returns the rows and how many were unparsed.
    """
    rows, unparsed = [], 0
    for q, p in zip(questions, preds):
        if p is None or pd.isna(p):
            unparsed += 1
            p = 0
        raw = q.raw_choices or [f"{chr(ord('A') + i)}. {c}" for i, c in enumerate(q.choices)]
        rows.append((q.qid, raw[int(p)]))
    return rows, unparsed


def write_result(result: EvalResult, questions: list[Question], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    table = result.predictions.copy()
    for col in ("probs", "logprobs"):
        if col in table.columns:
            table[col] = [None if v is None else json.dumps([round(x, 6) for x in v]) for v in table[col]]
    files = {"predictions": out_dir / "predictions.csv", "metrics": out_dir / "metrics.json",
             "submission": out_dir / "submission.csv"}
    table.to_csv(files["predictions"], index=False)
    rows, unparsed = submission_rows(questions, result.predictions["pred"])
    written = metrics.write_submission(files["submission"], rows)
    result.submission = {"rows": written, "unparsed_as_first_option": unparsed, "mode": result.settings.primary_mode}
    for mode, rows in result.per_perm.items():
        files[f"robustness_{mode}"] = out_dir / f"robustness_{mode}.csv"
        rows.to_csv(files[f"robustness_{mode}"], index=False)
    payload = {
        "settings": asdict(result.settings),
        "n_questions": len(questions),
        "metrics": result.metrics,
        "robustness": result.robustness,
        "position_distribution": result.positions,
        "timing": result.timing,
        "submission": result.submission,
    }
    files["metrics"].write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
    result.files = files

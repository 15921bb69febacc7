"""workbook.saved_evaluations / evaluations: notebook 06 reuses notebook 05's evaluation only while it is current."""

import json
import os
from dataclasses import replace

import pandas as pd
import pytest

from aqa_utils import workbook


@pytest.fixture()
def prof(tmp_path):
    """A CI profile whose base, adapters and evaluations live under tmp_path, with weights written at t=1000."""
    p = workbook.profile("ci")
    p = replace(p, base_dir=tmp_path / "base", runs_dir=tmp_path / "runs", results_dir=tmp_path / "results")
    weights = [p.base_dir / "safe_ckpt"] + [p.run_dir(r) / "final" for r in workbook.RANKS]
    for folder in weights:
        folder.mkdir(parents=True)
        os.utime(folder, (1000, 1000))
    return p


def write_evaluation(prof, name: str, modes=("score",), when: float = 2000.0) -> None:
    folder = workbook._system_dir(prof, "dev", name)
    folder.mkdir(parents=True, exist_ok=True)
    metrics = {mode: {"micro": 0.5, "system": name} for mode in modes}
    (folder / "metrics.json").write_text(json.dumps({"metrics": metrics}))
    pd.DataFrame({"qid": ["q1", "q2"], "correct": [True, False]}).to_csv(folder / "predictions.csv", index=False)
    for f in folder.iterdir():
        os.utime(f, (when, when))


def write_all(prof, **kwargs) -> None:
    for name in workbook.systems(prof):
        write_evaluation(prof, name, **kwargs)


def test_current_evaluations_are_read_back_per_system(prof):
    write_all(prof)
    saved = workbook.saved_evaluations(prof, "dev", "score")
    assert list(saved) == list(workbook.systems(prof))
    for name, ev in saved.items():
        assert ev.metrics["score"]["system"] == name
        assert ev.predictions["correct"].tolist() == [True, False]


def test_an_evaluation_older_than_its_adapter_is_not_reused(prof):
    write_all(prof)
    os.utime(prof.run_dir(16) / "final", (3000, 3000))  # r=16 retrained after the evaluation
    assert workbook.saved_evaluations(prof, "dev", "score") is None


def test_an_evaluation_older_than_the_base_is_not_reused(prof):
    write_all(prof)
    os.utime(prof.base_dir / "safe_ckpt", (3000, 3000))
    assert workbook.saved_evaluations(prof, "dev", "score") is None


def test_a_missing_system_or_mode_means_evaluating_again(prof):
    write_all(prof, modes=("generate",))
    assert workbook.saved_evaluations(prof, "dev", "score") is None
    write_all(prof)
    (workbook._system_dir(prof, "dev", "LoRA r=32") / "predictions.csv").unlink()
    assert workbook.saved_evaluations(prof, "dev", "score") is None


def test_evaluations_falls_back_to_evaluating(prof, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(workbook, "evaluate_systems", lambda p, split, mode, progress: calls.append(mode) or "fresh")
    assert workbook.evaluations(prof, "dev", "score") == "fresh" and calls == ["score"]
    write_all(prof)
    saved = workbook.evaluations(prof, "dev", "score")
    assert calls == ["score"] and set(saved) == set(workbook.systems(prof))
    assert "evaluating now" in capsys.readouterr().out

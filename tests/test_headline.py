"""aqa_utils.headline on hand-made evaluations whose answers are worked out in the comments."""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import pytest

from aqa_utils.headline import headline, paired_gain, rank_verdict, system_entry


def evaluation(shares: dict[str, float], micro: float = 0.5, tv: float = 0.1, unparsed: float = 0.0):
    """An evaluation in both modes with per-question shuffle shares ``shares``."""
    mean = sum(shares.values()) / len(shares)
    rob = {"mean_accuracy": mean, "mean_accuracy_ci": [mean - 0.1, mean + 0.1], "consistent_accuracy": 0.2,
           "unparsed_rate": unparsed, "position_tv": tv, "per_question": shares}
    return SimpleNamespace(metrics={"score": {"micro": micro}, "generate": {"micro": micro}},
                           robustness={"score": rob, "generate": rob})


class system(NamedTuple):
    rank: int
    seed: int | None = None

    @property
    def key(self) -> str:
        return "base" if self.rank == 0 else f"lora_r{self.rank}_s{self.seed}"


QS = [f"q{i}" for i in range(40)]


def test_system_entry_has_every_field_per_mode():
    e = system_entry(8, 1, evaluation({"q1": 1.0, "q2": 0.5}, micro=0.75, tv=0.05, unparsed=0.02))
    assert (e["rank"], e["seed"], e["position_tv"]) == (8, 1, 0.05)
    assert e["score"] == {"original": 0.75, "shuffle_mean": 0.75, "consistent": 0.2, "ci": [0.65, 0.85],
                          "unparsed": 0.02, "position_tv": 0.05}


def test_paired_gain_averages_seeds_and_pairs_questions():
    base = evaluation({q: 0.25 for q in QS})
    # seed 0 gains 0.5 on every question, seed 1 gains 0.25: mean gain 0.375, with no spread over questions
    seeds = [evaluation({q: 0.75 for q in QS}), evaluation({q: 0.5 for q in QS})]
    g = paired_gain([base], seeds, "score")
    assert g["diff"] == pytest.approx(0.375) and g["ci"] == pytest.approx([0.375, 0.375])
    assert (g["n_questions"], g["n_seeds"]) == (40, 2)
    # half the questions gain 1, half 0: the interval is wide and contains the mean
    mixed = evaluation({q: (1.0 if i % 2 else 0.0) for i, q in enumerate(QS)})
    g = paired_gain([evaluation({q: 0.0 for q in QS})], [mixed], "score")
    assert g["diff"] == pytest.approx(0.5) and g["ci"][0] < 0.5 < g["ci"][1]


def test_paired_gain_refuses_different_questions():
    with pytest.raises(ValueError, match="same questions"):
        paired_gain([evaluation({"q1": 1.0})], [evaluation({"q2": 1.0})], "score")


def test_headline_and_verdict():
    evs = {system(0): evaluation({q: 0.3 for q in QS})}
    for seed in (0, 1, 2):
        evs[system(8, seed)] = evaluation({q: 0.6 for q in QS})
        evs[system(16, seed)] = evaluation({q: 0.6 + (0.01 if i % 2 else -0.01) for i, q in enumerate(QS)})
        evs[system(32, seed)] = evaluation({q: 0.9 for q in QS})
    h = headline(evs)
    assert set(h["systems"]) == {"base"} | {f"lora_r{r}_s{s}" for r in (8, 16, 32) for s in (0, 1, 2)}
    assert h["lora_vs_base"]["8"]["score"]["diff"] == pytest.approx(0.3)
    assert h["rank_vs_lowest"]["16"]["generate"]["diff"] == pytest.approx(0.0, abs=1e-9)
    verdict = rank_verdict(h["rank_vs_lowest"], lowest=8)
    assert verdict.startswith("grows above r=8") and "r=32 +30.0 points" in verdict
    del h["rank_vs_lowest"]["32"]
    assert rank_verdict(h["rank_vs_lowest"], lowest=8).startswith("saturates above r=8")
    gain = h["lora_vs_base"]["8"]  # +30 points: a gain that stops growing saturates
    assert rank_verdict(h["rank_vs_lowest"], lowest=8, lowest_vs_base=gain).startswith("saturates above r=8")
    none = {m: {"diff": 0.004, "ci": [-0.02, 0.03]} for m in ("score", "generate")}
    assert rank_verdict(h["rank_vs_lowest"], lowest=8, lowest_vs_base=none).startswith(
        "nothing to saturate: r=8 does not beat the base (+0.4 points [-2.0, +3.0])")
    with pytest.raises(ValueError, match="base"):
        headline({system(8, 0): evaluation({"q": 1.0})})

"""aqa_utils.metrics on hand-made predictions whose right answers are worked out in the comments."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aqa_utils import metrics as m


def table(rows):
    return pd.DataFrame(rows, columns=["qid", "subset", "question_type", "n_choices", "answer", "pred"])


# 11 questions. "x" marks a correct prediction.
HAND = table(
    [
        ("b1", "BQA", "species", 4, 0, 0),  # x
        ("b2", "BQA", "species", 4, 1, None),  # unparsed -> wrong
        ("b3", "BQA", "vocalization", 4, 2, 2),  # x
        ("b4", "BQA", "vocalization", 4, 3, 3),  # x
        ("t1", "TSQA", "sound counting", 2, 0, 0),  # x
        ("t2", "TSQA", "sound counting", 2, 1, 1),  # x
        ("t3", "TSQA", "sound detection", 4, 1, -1),  # unparsed (-1) -> wrong
        ("c1", "CQA", "both", 4, 0, 1),
        ("c2", "CQA", "both", 3, None, 2),  # answer unknown -> not scored at all
        ("c3", "CQA", "remember", 4, 2, 2),  # x
        ("c4", "CQA", "remember", 4, 1, 0),
    ]
)


def test_accuracy_report_on_hand_computed_table():
    r = m.accuracy_report(HAND, n_boot=200, seed=0)
    # BQA 3/4, TSQA 2/3, CQA 1/3 (c2 is unscored)
    assert r["per_subset"] == pytest.approx({"BQA": 3 / 4, "TSQA": 2 / 3, "CQA": 1 / 3})
    # domain average = (3/4 + 2/3 + 1/3) / 3 = (9/12 + 8/12 + 4/12) / 3 = 21/36 = 7/12
    assert r["domain_average"] == pytest.approx(7 / 12)
    # micro = (3 + 2 + 1) / (4 + 3 + 3) = 6/10
    assert r["micro"] == pytest.approx(0.6)
    assert list(r["per_subset"]) == ["BQA", "TSQA", "CQA"]  # the published table's order
    # unparsed: b2 and t3 out of all 11 rows
    assert r["unparsed_rate"] == pytest.approx(2 / 11)
    assert r["counts"] == {
        "rows": 11, "scored": 10, "unscored": 1, "unparsed": 2, "correct": 6,
        "per_subset": {"BQA": 4, "TSQA": 3, "CQA": 3},
        "per_question_type": {"both": 1, "remember": 2, "sound counting": 2, "sound detection": 1,
                              "species": 2, "vocalization": 2},
    }
    # species 1/2, vocalization 2/2, sound counting 2/2, sound detection 0/1, both 0/1 (c2 unscored), remember 1/2
    assert r["per_question_type"] == pytest.approx(
        {"species": 0.5, "vocalization": 1.0, "sound counting": 1.0, "sound detection": 0.0, "both": 0.0,
         "remember": 0.5}
    )
    # chance over the 10 scored questions: eight 4-choice (1/4) and two 2-choice (1/2) -> (8/4 + 2/2) / 10 = 0.3
    assert r["chance"] == pytest.approx(0.3)


def test_chance_accuracy_micro_and_domain():
    # micro: as above, 0.3. domain: BQA 1/4; TSQA (1/2 + 1/2 + 1/4)/3 = 5/12; CQA 1/4 (c2 unscored)
    # -> (3/12 + 5/12 + 3/12) / 3 = 11/36
    assert m.chance_accuracy(HAND) == pytest.approx(0.3)
    assert m.chance_accuracy(HAND, average="domain") == pytest.approx(11 / 36)
    # without an answer column every row counts, c2 (3 choices) too: (8/4 + 2/2 + 1/3) / 11 = (10/3) / 11 = 10/33
    assert m.chance_accuracy(HAND.drop(columns="answer")) == pytest.approx(10 / 33)


def test_domain_average_is_a_mean_of_subsets_not_of_questions():
    # 1 BQA question right, 9 CQA questions wrong: micro 1/10, domain (1 + 0) / 2 = 0.5
    rows = [("b", "BQA", "species", 4, 0, 0)] + [(f"c{i}", "CQA", "both", 4, 0, 1) for i in range(9)]
    r = m.accuracy_report(table(rows), n_boot=100)
    assert r["micro"] == pytest.approx(0.1)
    assert r["domain_average"] == pytest.approx(0.5)
    # Stratified bootstrap: each subset keeps its size, and an all-right / all-wrong subset can only resample to
    # itself, so every replicate gives exactly these values (an unstratified bootstrap would not).
    assert r["domain_average_ci"] == pytest.approx((0.5, 0.5))
    assert r["micro_ci"] == pytest.approx((0.1, 0.1))
    assert r["per_subset_ci"] == {"BQA": pytest.approx((1.0, 1.0)), "CQA": pytest.approx((0.0, 0.0))}


def _random_table(n_per_subset, p_correct, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for subset in m.SUBSETS:
        for i in range(n_per_subset):
            answer = int(rng.integers(4))
            pred = answer if rng.random() < p_correct else (answer + 1) % 4
            rows.append((f"{subset}{i}", subset, "t", 4, answer, pred))
    return table(rows)


def test_bootstrap_ci_contains_the_estimate_and_shrinks_with_more_data():
    small = m.accuracy_report(_random_table(30, 0.6, seed=1), n_boot=1000, seed=0)
    large = m.accuracy_report(_random_table(3000, 0.6, seed=1), n_boot=1000, seed=0)
    for r in (small, large):
        for key in ("micro", "domain_average"):
            lo, hi = r[f"{key}_ci"]
            assert lo <= r[key] <= hi
        for name, (lo, hi) in r["per_subset_ci"].items():
            assert lo <= r["per_subset"][name] <= hi

    def width(ci):
        return ci[1] - ci[0]

    # 100x the questions -> about 1/10 the width (standard error ~ 1/sqrt(n)); ask for at least 1/4
    assert width(large["micro_ci"]) < width(small["micro_ci"]) / 4
    assert width(large["domain_average_ci"]) < width(small["domain_average_ci"]) / 4
    # ~95% interval of a proportion near 0.6 over 9000 questions: 2 * 1.96 * sqrt(0.24 / 9000) = 0.020
    assert width(large["micro_ci"]) == pytest.approx(0.020, abs=0.004)


def test_bootstrap_is_deterministic_in_its_seed():
    df = _random_table(50, 0.5, seed=3)
    assert m.accuracy_report(df, seed=7) == m.accuracy_report(df, seed=7)
    assert m.accuracy_report(df, seed=7)["micro_ci"] != m.accuracy_report(df, seed=8)["micro_ci"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(m.SUBSETS), st.integers(0, 3), st.sampled_from([0, 1, 2, 3, None])),
                min_size=1, max_size=40))
def test_report_invariants(rows):
    df = table([(f"q{i}", s, "t", 4, a, p) for i, (s, a, p) in enumerate(rows)])
    r = m.accuracy_report(df, n_boot=50)
    correct = sum(a == p for _, a, p in rows)
    assert r["micro"] == pytest.approx(correct / len(rows))
    assert min(r["per_subset"].values()) <= r["domain_average"] <= max(r["per_subset"].values())
    assert r["micro_ci"][0] <= r["micro"] <= r["micro_ci"][1]


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="duplicate qid"):
        m.accuracy_report(pd.concat([HAND, HAND.head(1)]))
    with pytest.raises(ValueError, match="unknown subset"):
        m.accuracy_report(HAND.assign(subset="AQA"))
    with pytest.raises(ValueError, match="missing column"):
        m.accuracy_report(HAND.drop(columns="pred"))
    with pytest.raises(ValueError, match="no question with a known answer"):
        m.accuracy_report(HAND.assign(answer=None))


# --- shuffle robustness ----------------------------------------------------------------------------------------

def test_permutations_for():
    perms = m.permutations_for(4, 4, seed=0)
    assert perms[0] == (0, 1, 2, 3)
    assert len(set(perms)) == 4 and all(sorted(p) == [0, 1, 2, 3] for p in perms)
    # k == n: every option sits at every position exactly once (a Latin square)
    for position in range(4):
        assert sorted(p[position] for p in perms) == [0, 1, 2, 3]
    assert m.permutations_for(4, 4, seed=0) == perms  # deterministic
    assert len(set(m.permutations_for(4, 24, seed=5))) == 24  # all orderings of 4, beyond the cyclic shifts
    assert len(set(m.permutations_for(8, 20, seed=5))) == 20
    assert m.permutations_for(2, 2, seed=9) == [(0, 1), (1, 0)]
    with pytest.raises(ValueError):
        m.permutations_for(3, 7, seed=0)  # only 3! = 6 exist


def _shuffled_runs(n_questions, k, policy, seed=0):
    """Rows (qid, perm, answer, pred, n_choices), answer/pred in original order, for a predictor that picks a
    displayed position with ``policy(displayed_answer_position, rng)``."""
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(n_questions):
        answer = int(rng.integers(4))
        for j, perm in enumerate(m.permutations_for(4, k, seed=q)):
            position = policy(perm.index(answer), rng)  # the model sees the options reordered by perm
            pred = None if position is None else perm[position]  # back to the original order
            rows.append((f"q{q}", j, answer, pred, 4))
    return pd.DataFrame(rows, columns=["qid", "perm", "answer", "pred", "n_choices"])


def test_always_first_position_scores_chance_under_shuffling():
    r = m.shuffle_robustness(_shuffled_runs(200, 4, lambda pos, rng: 0))
    # 4 cyclic orderings put each option first exactly once: right once in 4 for every question
    assert r["mean_accuracy"] == pytest.approx(0.25)
    assert r["mean_accuracy"] == pytest.approx(r["chance_mean_accuracy"])
    assert r["consistent_accuracy"] == 0.0
    assert r["chance_consistent_accuracy"] == pytest.approx(0.25**4)  # (1/4)^4 = 1/256
    assert r["n_questions"] == 200 and r["n_perms"] == 4


def test_oracle_is_consistent():
    r = m.shuffle_robustness(_shuffled_runs(50, 4, lambda pos, rng: pos))
    assert (r["mean_accuracy"], r["std_accuracy"], r["consistent_accuracy"]) == (1.0, 0.0, 1.0)


def test_random_guesser_is_near_chance():
    r = m.shuffle_robustness(_shuffled_runs(2000, 3, lambda pos, rng: int(rng.integers(4))))
    # 6000 independent guesses at 1/4: standard error sqrt(0.25 * 0.75 / 6000) = 0.0056; allow 4 of them
    assert r["mean_accuracy"] == pytest.approx(0.25, abs=0.023)
    # right three times in a row: (1/4)^3 = 1/64 = 0.0156; over 2000 questions se = 0.0028
    assert r["consistent_accuracy"] == pytest.approx(1 / 64, abs=0.012)


def test_shuffle_robustness_hand_computed():
    rows = pd.DataFrame(
        [  # q1 right in both orderings; q2 right in ordering 0 only; q3 unparsed in ordering 1
            ("q1", 0, 2, 2), ("q1", 1, 2, 2),
            ("q2", 0, 0, 0), ("q2", 1, 0, 3),
            ("q3", 0, 1, 1), ("q3", 1, 1, None),
        ],
        columns=["qid", "perm", "answer", "pred"],
    )
    r = m.shuffle_robustness(rows)
    # ordering 0: 3/3; ordering 1: 1/3 -> mean 2/3, population std |1 - 1/3| / 2 = 1/3
    assert r["per_perm_accuracy"] == pytest.approx({0: 1.0, 1: 1 / 3})
    assert r["mean_accuracy"] == pytest.approx(2 / 3)
    assert r["std_accuracy"] == pytest.approx(1 / 3)
    assert r["consistent_accuracy"] == pytest.approx(1 / 3)  # only q1
    assert r["chance_consistent_accuracy"] is None  # no n_choices column: no chance level
    assert r["per_question"] == pytest.approx({"q1": 1.0, "q2": 0.5, "q3": 0.5})
    lo, hi = r["mean_accuracy_ci"]
    assert 0.5 <= lo <= 2 / 3 <= hi <= 1.0


def test_shuffle_mean_weighs_every_question_the_same():
    """A 2-option question has only 2 orderings where 4-option ones have 4: per question, not per row."""
    rows = pd.DataFrame(
        [("q1", p, 0, 0) for p in range(4)] + [("q2", 0, 0, 1), ("q2", 1, 0, 1)],
        columns=["qid", "perm", "answer", "pred"],
    )
    r = m.shuffle_robustness(rows)
    assert r["mean_accuracy"] == pytest.approx(0.5)  # q1 always right, q2 never: not 4/6


def test_position_tv():
    always_a = pd.DataFrame({"pred_position": [0, 0, 0, 0], "answer_position": [0, 1, 2, 1], "n_choices": [4] * 4})
    assert m.position_tv(always_a) == pytest.approx(0.75)  # predicted A 100%, true A 25%
    perfect = always_a.assign(pred_position=always_a["answer_position"])
    assert m.position_tv(perfect) == 0.0
    unparsed = perfect.assign(pred_position=[0, 1, 2, None])
    assert m.position_tv(unparsed) == pytest.approx(0.25)  # a quarter moved from B to "unparsed"


def test_position_distribution_hand_computed():
    df = pd.DataFrame(
        {"pred_position": [0, 0, 1, None, -1], "answer_position": [0, 2, 1, 3, 1], "n_choices": [4, 4, 2, 4, 3]}
    )
    t = m.position_distribution(df)
    assert list(t.index) == ["A", "B", "C", "D", "unparsed"]
    assert t["predicted"].tolist() == [2, 1, 0, 0, 2]
    assert t["true"].tolist() == [1, 2, 1, 1, 0]
    # C exists where n_choices > 2 (4, 4, 4, 3: 4 questions), D where n_choices > 3 (4, 4, 4: 3 questions)
    assert t["offered"].tolist() == [5, 5, 4, 3, 0]
    assert t["predicted_share"].tolist() == pytest.approx([0.4, 0.2, 0.0, 0.0, 0.4])


# --- submission ------------------------------------------------------------------------------------------------

def test_submission_round_trip_keeps_commas_quotes_and_line_breaks(tmp_path):
    rows = [
        ("dev_aqa_0001", "A. Writing"),
        ("dev_aqa_0002", "B. Dog, then a car horn"),
        ("dev_aqa_0003", 'C. The "loudest" one, at the end'),
        ("dev_aqa_0004", "D. (B)(A)(C),"),  # a malformed option from the dev set, trailing comma included
        ("dev_aqa_0005", "A. two\nlines"),
        ("dev_aqa_0006", "B. Orca (Orcinus orca) — whistle"),
    ]
    path = tmp_path / "submission.csv"
    assert m.write_submission(path, rows) == 6
    assert path.read_text(encoding="utf-8").splitlines()[0] == "question,answer"
    assert m.read_submission(path) == dict(rows)


def test_submission_refuses_duplicates_and_bad_headers(tmp_path):
    with pytest.raises(ValueError, match="twice"):
        m.write_submission(tmp_path / "a.csv", [("q1", "A. x"), ("q1", "B. y")])
    bad = tmp_path / "b.csv"
    bad.write_text("id,answer\nq1,A. x\n")
    with pytest.raises(ValueError, match="header"):
        m.read_submission(bad)


# --- measured vs reported --------------------------------------------------------------------------------------

def test_reported_numbers_match_the_task_description():
    rep = m.REPORTED.set_index("system")
    assert rep.loc["Qwen2-Audio-7B", ["BQA", "TSQA", "CQA", "overall"]].tolist() == [30.0, 39.2, 49.6, 45.0]
    assert rep.loc["Audio Flamingo 2 (zero-shot)", ["BQA", "TSQA", "CQA", "overall"]].tolist() == [
        53.9, 31.7, 49.5, 45.7]
    assert rep.loc["Gemini-2.0-Flash", ["BQA", "TSQA", "CQA", "overall"]].tolist() == [42.0, 46.3, 56.6, 52.5]
    assert rep.loc[["AF2 + LoRA r=8", "AF2 + LoRA r=16", "AF2 + LoRA r=32"], "overall"].tolist() == [
        69.67, 68.91, 68.26]
    assert (rep["data"] == "DCASE dev").all() and (rep["source"] == "reported").all()
    assert rep["reference"].str.len().gt(0).all()


def test_measured_vs_reported_keeps_sources_apart():
    report = m.accuracy_report(HAND, n_boot=50)
    t = m.measured_vs_reported({"af2-tiny + LoRA r=8": report}, data="mini benchmark dev")
    assert set(t["source"]) == {"reported", "measured here"}
    measured = t[t["source"] == "measured here"].iloc[0]
    assert measured["data"] == "mini benchmark dev"
    # percent, from the report: BQA 3/4 -> 75, domain 7/12 -> 58.33, micro 0.6 -> 60
    assert measured[["BQA", "domain_average", "overall"]].tolist() == pytest.approx([75.0, 700 / 12, 60.0])
    assert measured["n"] == 10
    # one row per (system, data, source): reported rows are exactly REPORTED, untouched by the measurement
    reported = t[t["source"] == "reported"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        reported[["system", "BQA", "TSQA", "CQA", "overall"]], m.REPORTED[["system", "BQA", "TSQA", "CQA", "overall"]]
    )
    assert reported["n"].isna().all()
    assert not t.duplicated(["system", "data", "source"]).any()
    only = m.measured_vs_reported({"x": report, "y": report}, data={"x": "DCASE dev", "y": "mini benchmark dev"},
                                  include_reported=False)
    assert only["data"].tolist() == ["DCASE dev", "mini benchmark dev"]
    assert set(only["source"]) == {"measured here"}
    assert not math.isnan(only["overall"].iloc[0])

"""Tables the notebooks show: paired comparison, headline table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aqa_utils.analysis import headline_table, paired_difference
from aqa_utils.metrics import accuracy_report


def test_paired_difference_on_hand_made_predictions():
    a = np.array([1, 1, 0, 0, 1, 0, 1, 0])  # 4/8
    b = np.array([1, 1, 1, 0, 1, 1, 1, 0])  # 6/8: B fixes two of A's errors, breaks none
    d = paired_difference(a, b, n_boot=500)
    assert d["difference"] == 0.25
    assert d["ci"][0] >= 0.0 and d["ci"][1] <= 0.5  # every resample has B >= A
    assert d["p_b_better"] > 0.8
    same = paired_difference(a, a, n_boot=200)
    assert same["difference"] == 0 and same["ci"] == (0.0, 0.0) and same["p_b_better"] == 0


def test_headline_table_formats_percent_with_intervals():
    df = pd.DataFrame({"qid": [f"q{i}" for i in range(6)], "subset": ["BQA", "BQA", "TSQA", "TSQA", "CQA", "CQA"],
                       "question_type": ["x"] * 6, "n_choices": [4] * 6, "answer": [0, 1, 2, 3, 0, 1],
                       "pred": [0, 1, 2, 0, 0, None]})
    table = headline_table({"sys": accuracy_report(df, n_boot=200)})
    row = table.loc["sys"]
    assert row["BQA"].startswith("100.0 [") and row["TSQA"].startswith("50.0 [")
    assert row["micro"].startswith("66.7 [")  # 4 of 6
    assert row["unparsed %"] == round(100 / 6, 1) and row["n"] == 6

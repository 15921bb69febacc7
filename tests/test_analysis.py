"""What the notebooks show: tables, verdict rules and findings sentences on hand-made numbers, figures that draw
what they are given, the figure saver (inline in an executed notebook whatever the backend), the results README
and the HTML export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import pytest

from aqa_utils.analysis import (
    FigureSaver,
    findings,
    headline_table,
    paired_difference,
    position_test,
    rank_comparison,
    rank_table,
    seed_interval,
)
from aqa_utils.analysis.evaluation_figures import (
    accuracy_by_bins,
    plot_accuracy_by,
    plot_rank_saturation,
)
from aqa_utils.analysis.figures import wilson
from aqa_utils.analysis.tables import HEADLINE, expected_positions, metric_name
from aqa_utils.metrics import accuracy_report

REPO = Path(__file__).resolve().parents[1]


def headline_report(df: pd.DataFrame, **kwargs) -> dict:
    """``accuracy_report`` plus the headline keys ``evaluate`` adds (here every question shown in one order only, so
    the shuffle mean is the plain accuracy)."""
    rep = accuracy_report(df, **kwargs)
    return {**rep, "shuffle_mean": rep["micro"], "shuffle_mean_ci": rep["micro_ci"]}


def predictions(correct: list[bool], n_choices: int = 4) -> pd.DataFrame:
    """A prediction table with the given right/wrong pattern, subsets in turn."""
    n = len(correct)
    answer = [i % n_choices for i in range(n)]
    return pd.DataFrame({"qid": [f"q{i}" for i in range(n)], "subset": [("BQA", "TSQA", "CQA")[i % 3] for i in range(n)],
                         "question_type": ["t"] * n, "n_choices": [n_choices] * n, "answer": answer,
                         "pred": [a if c else (a + 1) % n_choices for a, c in zip(answer, correct)]})


# ---------------------------------------------------------------------------------------------------------- tables
def test_paired_difference_on_hand_made_predictions():
    a = np.array([1, 1, 0, 0, 1, 0, 1, 0])  # 4/8
    b = np.array([1, 1, 1, 0, 1, 1, 1, 0])  # 6/8: B fixes two of A's errors, breaks none
    d = paired_difference(a, b, n_boot=500)
    assert d["difference"] == 0.25 and d["disagree"] == 2
    assert d["ci"][0] >= 0.0 and d["ci"][1] <= 0.5  # every resample has B >= A
    assert d["p_b_better"] > 0.8
    same = paired_difference(a, a, n_boot=200)
    assert same["difference"] == 0 and same["ci"] == (0.0, 0.0) and same["p_b_better"] == 0 and same["disagree"] == 0
    with pytest.raises(ValueError, match="same questions"):
        paired_difference(a, b[:4])


def test_headline_table_formats_percent_with_intervals():
    df = pd.DataFrame({"qid": [f"q{i}" for i in range(6)], "subset": ["BQA", "BQA", "TSQA", "TSQA", "CQA", "CQA"],
                       "question_type": ["x"] * 6, "n_choices": [4] * 6, "answer": [0, 1, 2, 3, 0, 1],
                       "pred": [0, 1, 2, 0, 0, None]})
    table = headline_table({"sys": headline_report(df, n_boot=200)})
    row = table.loc["sys"]
    assert row["BQA"].startswith("100.0 [") and row["TSQA"].startswith("50.0 [")
    assert row["micro"].startswith("66.7 [")  # 4 of 6
    assert row["unparsed %"] == round(100 / 6, 1) and row["n"] == 6


def test_expected_positions_and_position_test():
    # Two 2-option questions and two 4-option ones: A and B get (1/2 + 1/2 + 1/4 + 1/4) / 4, C and D 1/8 each.
    expected = expected_positions([2, 2, 4, 4])
    assert expected.to_dict() == {"A": 0.375, "B": 0.375, "C": 0.125, "D": 0.125}
    skewed = position_test(["A"] * 40, [4] * 40)
    assert skewed["p_value"] < 1e-6 and skewed["observed"]["A"] == 1.0
    even = position_test(list("ABCD") * 10, [4] * 40)
    assert even["p_value"] > 0.99


def test_seed_interval():
    mean, lo, hi = seed_interval([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6) and lo < 0.5 and hi > 0.7  # t(2) = 4.30: wider than the range
    mean, lo, hi = seed_interval([0.4])
    assert mean == 0.4 and np.isnan(lo) and np.isnan(hi)


@pytest.fixture()
def runs(tmp_path):
    """Finished LoRA runs at ranks 8 and 16, two seeds each, with summaries and logged losses."""
    from aqa_utils.workbook import System

    systems = []
    for rank in (8, 16):
        for seed in (0, 1):
            run = tmp_path / f"lora_r{rank}_s{seed}"
            run.mkdir()
            (run / "summary.json").write_text(json.dumps({"val_loss": 1.0 / rank, "seconds": 3.0, "steps": 4}))
            (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 2.0 / s}) + "\n" for s in range(1, 5)))
            systems.append(System(rank, seed, run))
    return systems


def test_rank_table_one_row_per_rank_and_seed(runs):
    reports = {s: headline_report(predictions([True] * (s.rank // 4 + s.seed) + [False] * 6), n_boot=50) for s in runs}
    table = rank_table(reports, {8: 100, 16: 200}, "tiny-x", reported_params={8: 3, 16: 6})
    assert list(table.index) == [(8, 0), (8, 1), (16, 0), (16, 1)]
    assert table.loc[(16, 1), "trainable params (tiny-x)"] == 200
    assert table.loc[(8, 0), "trainable params (AF2-3B, report)"] == 3
    assert table.loc[(8, 1), f"{metric_name(HEADLINE)} %"] == round(100 * 3 / 9, 1)
    assert table.loc[(16, 0), "final val loss"] == round(1 / 16, 3)
    (runs[0].run_dir / "summary.json").unlink()
    with pytest.raises(FileNotFoundError, match="summary.json"):
        rank_table(reports, {8: 100, 16: 200}, "tiny-x")


def test_rank_comparison_counts_disagreements():
    same = np.array([1, 0, 1, 0], float)
    table = rank_comparison({8: same, 16: same, 32: np.ones(4)}, reference=8, n_boot=100)
    assert list(table.index) == ["r=16 minus r=8", "r=32 minus r=8"]
    assert table.loc["r=16 minus r=8", "questions answered differently"] == 0
    assert table.loc["r=32 minus r=8", "difference %"] == 50.0
    with pytest.raises(ValueError, match="reference rank 4"):
        rank_comparison({8: same}, reference=4)


# ---------------------------------------------------------------------------------------------- verdicts, findings
def test_verdict_rules():
    assert findings.versus_chance((0.30, 0.40), 0.25) == "above chance"
    assert findings.versus_chance((0.10, 0.20), 0.25) == "below chance"
    assert findings.versus_chance((0.20, 0.30), 0.25) == "at chance"
    assert findings.difference_verdict((0.01, 0.1)) == "helps"
    assert findings.difference_verdict((-0.1, -0.01)) == "hurts"
    assert findings.difference_verdict((0.0, 0.0)) == "no detectable difference"
    assert findings.listening_verdict({"matched": 1.0, "shuffled": 1.5})[0] == "listens"
    assert findings.listening_verdict({"matched": 1.0, "shuffled": 1.05})[0] == "barely listens"
    assert findings.listening_verdict({"matched": 10.86, "shuffled": 10.86})[0] == "ignores its audio"


def test_evaluation_findings_say_what_the_numbers_show():
    at_chance = headline_report(predictions([True, False, False, False] * 6), n_boot=200)  # 25% of 24, chance 25%
    strong = headline_report(predictions([True] * 22 + [False] * 2), n_boot=200)
    paired = {"good": paired_difference(np.array([1, 0, 0, 0] * 6), np.array([1] * 22 + [0] * 2))}
    text = findings.evaluation_findings({"base": at_chance, "good": strong}, "base", paired, None)
    assert "base 25.0%" in text and "**at chance**" in text
    assert "good 91.7%" in text and "**above chance**" in text
    assert "+66.7 points" in text and "**helps**" in text
    assert "above chance" not in text.split("good")[0]  # the base's verdict is not "above chance"


def test_rank_findings_verdicts():
    reported = {8: 69.67, 16: 68.91}
    base = np.zeros(40)
    r8 = np.r_[np.ones(30), np.zeros(10)]

    def verdict(r16, reference_vs_base):
        comparison = rank_comparison({8: r8, 16: r16}, reference=8, n_boot=300)
        return findings.rank_findings(comparison, 8, reference_vs_base, reported)

    identical = verdict(r8, paired_difference(base, r8))
    assert "**no verdict**" in identical and "saturates" not in identical
    assert "r=8 69.67%" in identical  # the published numbers, as given
    assert "**saturates**" in verdict(np.r_[np.ones(29), np.zeros(11)], paired_difference(base, r8))
    assert "**does not saturate**" in verdict(np.ones(40), paired_difference(base, r8))
    assert "**nothing about saturation**" in verdict(np.r_[np.ones(29), np.zeros(11)], paired_difference(r8, r8 * 0 + r8))


def test_data_findings():
    even = position_test(list("ABCD") * 10, [4] * 40)
    text = findings.data_findings(even, {"chance": 0.25, "always_first": 0.25, "answer_prior": 0.30}, n_dev=40,
                                  seconds=[5.0, 10.0, 25.0])
    assert "consistent with uniform placement" in text and "answer prior" in text and "at chance" in text
    assert "2 of 3 clips fit one 10 s window; the longest (25.0 s) needs 3 windows." in text
    skew = findings.data_findings(position_test(["A"] * 40, [4] * 40), {"chance": 0.25, "always_first": 1.0},
                                  n_dev=40, seconds=[5.0])
    assert "not uniform placement" in skew and "above chance" in skew and "gives answers away" in skew


def test_augmentation_and_lora_findings():
    text = findings.augmentation_findings(0.722, 4, {"A.": 0.16, "(A)": 0.17}, 4)
    assert "72.2% of draws" in text and "1 - 1/4 = 75.0%" in text and "4 distinct strings" in text
    summary = {"lora_parameters": {"total": 100}, "val_loss": 0.5, "steps": 3}
    text = findings.lora_findings("LoRA r=8", summary, 1.0, 100)
    assert "the same count" in text and "lower (-50.0%)" in text
    assert "DIFFERENT" in findings.lora_findings("LoRA r=8", summary, None, 99)


def test_wilson_interval():
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    assert all(np.isnan(wilson(0, 0)))


# ---------------------------------------------------------------------------------------------------------- figures
def test_accuracy_figures_draw_each_group_with_its_n_and_chance():
    table = predictions([True, False] * 6)
    rep = headline_report(table, n_boot=50)
    fig = plot_accuracy_by({"a": rep, "b": rep}, table, "subset", "title")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["BQA\nn=4", "TSQA\nn=4", "CQA\nn=4", "domain avg\nn=12"]
    assert len(ax.patches) == 8  # 4 groups x 2 systems
    assert ax.get_ylim() == (0, 100)
    chance = [line for line in ax.lines if line.get_linestyle() == ":" and len(line.get_xdata()) == 2]
    assert {tuple(line.get_ydata()) for line in chance} == {(25.0, 25.0)}
    plt.close(fig)
    bins = accuracy_by_bins(table, "n_choices")
    assert bins.loc[4, "n"] == 12 and bins.loc[4, "accuracy"] == 0.5 and bins.loc[4, "chance"] == 0.25


def test_rank_saturation_plot_shows_seeds_mean_base_and_chance(runs):
    reports = {s: headline_report(predictions([True] * (s.rank // 4 + s.seed) + [False] * 6), n_boot=50) for s in runs}
    table = rank_table(reports, {8: 100, 16: 200}, "tiny-x")
    base = headline_report(predictions([True] + [False] * 7), n_boot=50)
    fig = plot_rank_saturation(table, base, "tiny-x", "data", reported={8: 69.67, 16: 68.91}, reported_params={8: 3, 16: 6})
    ax, ax2 = fig.axes
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "trainable LoRA parameters (tiny-x)"
    markers = [line.get_marker() for line in ax.lines if line.get_marker() not in (None, "None", "")]
    assert markers.count("o") == 4 and markers.count("D") == 2  # each seed, and each rank's mean
    assert "2 seeds per rank" in ax.get_title()
    labels = ax.get_legend_handles_labels()[1]
    assert any(label.startswith("base 12.5%") for label in labels) and any(label.startswith("chance 25.0%") for label in labels)
    assert ax2.get_ylim() == (0, 100) and "reported" in ax2.get_title()
    plt.close(fig)


def test_figure_saver_writes_the_png_and_closes_the_figure(tmp_path):
    saver = FigureSaver(tmp_path / "figures")
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    assert saver.show(fig, "00_line") is None  # nothing for a notebook cell to echo
    path = tmp_path / "figures" / "00_line.png"
    assert saver.path("00_line") == path and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not plt.fignum_exists(fig.number)
    with pytest.raises(ValueError, match="plain file stem"):
        saver.show(plt.figure(), "a/b")


def test_an_executed_notebook_keeps_its_figures_under_agg(tmp_path):
    """Executed as ``make reproduce`` does (papermill, MPLBACKEND=Agg inherited from make): the saver's figure is
    an image output; a bare ``plt.show()`` under Agg gives none (the failure this guards against)."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\nfrom aqa_utils.analysis import FigureSaver\n"
        f"fig, ax = plt.subplots(); ax.plot([1, 2]); FigureSaver({str(tmp_path / 'figs')!r}).show(fig, 'saved');"),
        nbformat.v4.new_code_cell("fig, ax = plt.subplots(); ax.plot([1, 2]); plt.show()")]
    source, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO)}
    run = ("import papermill, sys; "
           "papermill.execute_notebook(sys.argv[1], sys.argv[2], kernel_name='python3', progress_bar=False)")
    subprocess.run([sys.executable, "-c", run, str(source), str(out)], env=env, check=True, cwd=tmp_path, timeout=300)
    images = [["image/png" in o.get("data", {}) for o in cell.outputs] for cell in nbformat.read(out, as_version=4).cells]
    assert images == [[True], []]
    assert (tmp_path / "figs" / "saved.png").exists()


# ----------------------------------------------------------------------------------------- results README and HTML
@pytest.fixture()
def prof(tmp_path):
    from aqa_utils import workbook

    return replace(workbook.profile("ci"), results_dir=tmp_path / "results", runs_dir=tmp_path / "runs")


def test_results_readme_embeds_figures_and_links_notebooks_where_they_are(prof, runs):
    from aqa_utils.workbook import write_results_readme
    from aqa_utils.workbook.report import export_html

    figures = prof.results_dir / "figures"
    reports = {s: headline_report(predictions([True] * 5 + [False] * 7), n_boot=50) for s in runs}
    table = rank_table(reports, {8: 1, 16: 2}, prof.model)
    comparison = rank_comparison({8: np.ones(4), 16: np.zeros(4)}, n_boot=50)
    named = {s.name: r for s, r in reports.items()}
    first = write_results_readme(prof, named, table, comparison, {}).read_text()
    assert "No figures yet" in first and f"{metric_name(HEADLINE).capitalize()} against chance (95% interval): LoRA r=8: at chance" in first
    figures.mkdir(parents=True)
    for name in ("01_subsets", "05_accuracy_per_subset", "06_rank_saturation"):
        (figures / f"{name}.png").write_bytes(b"png")
    path = write_results_readme(prof, named, table, comparison, {"Rank saturation": "- a computed sentence"})
    text = path.read_text()
    assert "![06_rank_saturation](figures/06_rank_saturation.png)" in text
    assert "![01_subsets]" not in text and "[01_subsets](figures/01_subsets.png)" in text  # linked, not embedded
    assert "### Rank saturation\n\n- a computed sentence" in text
    # Nothing executed by reproduce yet: the in-place notebooks, linked relative to the README.
    assert f"({os.path.relpath(REPO / 'notebooks', prof.results_dir)}/01_data_exploration.ipynb)" in text
    assert str(prof.results_dir) not in text  # no absolute path of this machine

    executed = prof.results_dir / "notebooks"
    executed.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# hello")]
    nbformat.write(nb, executed / "05_evaluation.ipynb")
    (executed / "broken.ipynb").write_text("{not json")
    with pytest.raises(ValueError, match="broken.ipynb: not a readable notebook"):
        export_html(prof)
    (executed / "broken.ipynb").unlink()
    nbformat.write(nb, executed / "06_rank_saturation.ipynb")
    written = export_html(prof)
    assert [p.name for p in written] == ["05_evaluation.html", "06_rank_saturation.html"]
    page = written[0].read_text()
    # nbconvert's theme is written once, beside the pages, and each page links it instead of carrying a copy
    css = (prof.results_dir / "html" / "notebook.css").read_text()
    assert "hello" in page and len(css) > 10_000 and '<link rel="stylesheet" href="notebook.css">' in page
    assert len(page) < len(css) and "<style" not in page.split("<body")[0].split("notebook.css")[1]
    assert "jp-Mermaid" not in page  # no diagram here, so no mermaid loader either (without_unused_mermaid)
    text = path.read_text()
    assert "(notebooks/05_evaluation.ipynb) ([static HTML](html/05_evaluation.html))" in text
    (executed / "06_rank_saturation.ipynb").unlink()
    assert [p.name for p in export_html(prof)] == ["05_evaluation.html"]  # the export of a removed notebook goes
    assert "01_data_exploration" not in text.split("The executed notebooks")[1]


def test_export_html_needs_executed_notebooks(prof):
    from aqa_utils.workbook.report import export_html

    with pytest.raises(FileNotFoundError, match="no executed notebooks"):
        export_html(prof)


def test_base_findings_timings_are_hidden_from_nbval_and_the_rest_compared():
    """The findings cell is compared by nbval: its training times must be sanitized, its measurements not."""
    import re

    from nbval.plugin import get_sanitize_patterns  # the parser nbval itself uses

    patterns = get_sanitize_patterns((REPO / "tests" / "nbval_sanitize.cfg").read_text())

    def sanitized(seconds: float, val_map: float) -> str:
        text = findings.base_findings("m", {"matched": 1.0, "shuffled": 2.0},
                                      {"stage 0": {"seconds": seconds, "val_map": val_map, "val_ap": {"x": 0.5}},
                                       "stage 1": {"seconds": 2 * seconds}})
        for regex, replacement in patterns:
            text = re.sub(regex, replacement, text)
        return text

    assert sanitized(28, 0.5) == sanitized(31.4, 0.5)
    assert sanitized(28, 0.5) != sanitized(28, 0.6)
    assert "**listens**" in sanitized(28, 0.5) and "+100%" in sanitized(28, 0.5)


def test_evaluation_findings_name_ties_and_equal_unparsed_rates():
    rep = headline_report(predictions([True, False] * 6), n_boot=50)
    unparsed = {"unparsed_rate": 1.0}
    text = findings.evaluation_findings({"a": rep, "b": rep}, "a", {}, {"a": unparsed, "b": unparsed})
    assert "Every system ties at the top" in text and "100.0% of answers for every system unparsed" in text
    assert "between" not in text


@pytest.mark.parametrize("path", sorted((REPO / "notebooks").glob("0[1-6]_*.ipynb")), ids=lambda p: p.name)
def test_every_drawing_cell_of_the_stored_notebooks_has_its_figure(path):
    """The CI copies nbval re-executes: each cell that draws (``figures.show``) holds an image output, and each
    finding is a computed Markdown output, not typed prose."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    drawing = [c for c in code if "figures.show(" in c.source]
    assert drawing, f"{path.name}: no figure drawn"
    missing = [c.source.splitlines()[0] for c in drawing
               if not any("image/png" in o.get("data", {}) for o in c.outputs)]
    assert missing == [], f"{path.name}: drawing cells without an image output"
    assert any("text/markdown" in o.get("data", {}) for c in code if "findings" in c.source for o in c.outputs)


def test_goals_pass_only_when_every_bar_is_met():
    """``analysis.goals``: a run meeting every bar reads "yes" everywhere but the one goal a single run cannot check;
    moving one number past its bar flips that row alone."""
    from copy import deepcopy

    from aqa_utils.analysis.goals import goal_rows

    def mode(acc, unparsed=0.0, tv=0.02):
        return {"original": acc, "shuffle_mean": acc, "consistent": acc - 0.05, "ci": [acc - 0.03, acc + 0.03],
                "unparsed": unparsed, "position_tv": tv}

    systems = {"base": {"rank": 0, "seed": None, "score": mode(0.40), "generate": mode(0.30, 0.3, 0.1)}}
    for rank in (8, 16, 32):
        for seed in (0, 1, 2):
            systems[f"lora_r{rank}_s{seed}"] = {"rank": rank, "seed": seed, "score": mode(0.55),
                                                "generate": mode(0.52, 0.03, 0.05)}
    gain = {"diff": 0.14, "ci": [0.10, 0.18], "n_seeds": 3}
    summary = {"profile": "full", "split": "dev", "dev_questions": 600, "orders": 4, "systems": systems,
               "lora_vs_base": {"8": {"score": gain, "generate": gain}}, "rank_verdict": "saturates above r=8",
               "minutes": {"total": 39.0}}
    sweep = {"chosen": 3e-3, "grid": [1e-3, 3e-3], "val_questions": 300, "val_split": "train.val"}
    met = {r["goal"]: r["met"] for r in goal_rows(summary, sweep)}
    assert [g for g, m in met.items() if m != "yes"] == ["8. two runs on one machine give identical numbers"]
    worse = deepcopy(summary)
    worse["systems"]["lora_r16_s2"]["generate"]["unparsed"] = 0.06
    changed = {r["goal"] for r in goal_rows(worse, sweep) if r["met"] != met[r["goal"]]}
    assert changed == {"3a. unparsed generations, every fine-tuned system"}
    # A second run on this machine (the quick profile's: base and seed-0 adapters again) checks goal 8 too.
    again = {"profile": "quick", "systems": {k: deepcopy(v) for k, v in systems.items() if v["seed"] in (None, 0)}}
    rows = {r["goal"]: r for r in goal_rows(summary, sweep, again)}
    assert all(r["met"] == "yes" for r in rows.values())
    assert "4 systems trained and evaluated again by the quick profile's run: every number identical" in \
        rows["8. two runs on one machine give identical numbers"]["measured"]
    again["systems"]["lora_r16_s0"]["score"]["original"] += 1e-6
    row = next(r for r in goal_rows(summary, sweep, again) if r["goal"].startswith("8."))
    assert row["met"] == "**no**" and "1 differ (lora_r16_s0)" in row["measured"]
    # ... and its time is checked against the quick bar, beside this run's own.
    again["minutes"] = {"total": 21.0}
    rows = {r["goal"]: r for r in goal_rows(summary, sweep, again)}
    assert rows["9. time of the other `make reproduce` (quick profile)"] == {
        "goal": "9. time of the other `make reproduce` (quick profile)", "measured": "21.0 min", "bar": "<= 20 min",
        "met": "**no**"}
    assert rows["9. time of this `make reproduce` (full profile)"]["met"] == "yes"
    worse = deepcopy(summary)
    worse["minutes"]["total"] = 41.0
    assert {r["goal"] for r in goal_rows(worse, sweep) if r["met"] == "**no**"} == \
        {"9. time of this `make reproduce` (full profile)"}


def test_the_mermaid_loader_stays_only_in_a_page_with_a_diagram():
    from aqa_utils.workbook.report import without_unused_mermaid

    loader = '<script type="module">\n  document.querySelectorAll(".jp-Mermaid > pre.mermaid");\n</script>\n'
    other = '<script type="module">\n  console.log("kept");\n</script>\n'
    head = f"<html><head>{loader}{other}</head><body>"
    assert without_unused_mermaid(head + "<p>x</p></body></html>") == f"<html><head>{other}</head><body><p>x</p></body></html>"
    with_diagram = head + '<div class="jp-Mermaid jp-RenderedMermaid"><pre class="mermaid">a-->b</pre></div></body></html>'
    assert without_unused_mermaid(with_diagram) == with_diagram

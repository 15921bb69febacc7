"""Figures of the evaluation (notebook 05) and of rank saturation (notebook 06).

They read ``metrics.accuracy_report`` dicts (``reports``: {system name: report}) and the prediction tables
``evaluate`` writes; ``metric`` names the report key shown (``tables.HEADLINE`` unless told), so a new headline
metric of the same shape drops in. Chance is always drawn: per group where groups differ in option counts.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from aqa_utils import metrics
from aqa_utils.analysis.figures import percent_axis, rank_colour, wilson
from aqa_utils.analysis.tables import HEADLINE, metric_name, seed_interval
from aqa_utils.data.layout import SUBSETS


def _chance(predictions: pd.DataFrame, column: str) -> pd.Series:
    scored = predictions[predictions["answer"].notna()]
    return (1.0 / scored["n_choices"].astype(float)).groupby(scored[column]).mean()


def _bars(ax, groups: list[str], values: dict[str, list], errors: dict[str, np.ndarray], counts: list[int],
          chance: list[float], colours: dict[str, str]):
    width = 0.8 / max(1, len(values))
    x = np.arange(len(groups))
    for i, (name, vals) in enumerate(values.items()):
        ax.bar(x + (i - (len(values) - 1) / 2) * width, vals, width, yerr=errors[name], capsize=2, label=name,
               color=colours.get(name))
    for xi, c in zip(x, chance):
        ax.plot([xi - 0.45, xi + 0.45], [100 * c] * 2, color="k", linestyle=":", linewidth=1.2)
    ax.plot([], [], color="k", linestyle=":", label="chance (mean 1/options)")
    ax.set_xticks(x, [f"{g}\nn={n}" for g, n in zip(groups, counts)], fontsize=8)


def plot_accuracy_by(reports: dict[str, dict], predictions: pd.DataFrame, by: str, title: str,
                     colours: dict[str, str] | None = None):
    """Accuracy per subset (``by="subset"``, bootstrap CIs from the report, plus the domain average) or per
    question type (``by="question_type"``, Wilson 95% intervals from the counts), every system side by side,
    n under each group and each group's chance level. ``predictions``: any system's table (same questions)."""
    colours = colours or {}
    first = next(iter(reports.values()))
    chance = _chance(predictions, by)
    if by == "subset":
        groups = [s for s in SUBSETS if s in first["per_subset"]]
        counts = [first["counts"]["per_subset"][g] for g in groups]
        values = {n: [100 * r["per_subset"][g] for g in groups] + [100 * r["domain_average"]] for n, r in reports.items()}
        cis = {n: [r["per_subset_ci"][g] for g in groups] + [r["domain_average_ci"]] for n, r in reports.items()}
        chance_levels = [chance[g] for g in groups] + [float(chance.reindex(groups).mean())]
        groups, counts = groups + ["domain avg"], counts + [sum(counts)]
    elif by == "question_type":
        groups = sorted(first["per_question_type"])
        counts = [first["counts"]["per_question_type"][g] for g in groups]
        values = {n: [100 * r["per_question_type"][g] for g in groups] for n, r in reports.items()}
        cis = {n: [wilson(r["per_question_type"][g] * k, k) for g, k in zip(groups, counts)] for n, r in reports.items()}
        chance_levels = [chance[g] for g in groups]
    else:
        raise ValueError(f"plot_accuracy_by: by must be 'subset' or 'question_type', not {by!r}")
    errors = {n: np.array([[v - 100 * c[0], 100 * c[1] - v] for v, c in zip(values[n], cis[n])]).T.clip(min=0)
              for n in reports}
    fig, ax = plt.subplots(figsize=(min(15.0, max(6.0, 0.45 * len(groups) * len(reports) ** 0.5 + 2)), 3.8))
    _bars(ax, groups, values, errors, counts, chance_levels, colours)
    percent_axis(ax, "accuracy % (95% CI)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: bars reach 100%
    if by == "question_type":
        plt.setp(ax.get_xticklabels(), rotation=40, ha="right")
    fig.tight_layout()
    return fig


def plot_positions(positions: dict[str, pd.DataFrame], title: str, colours: dict[str, str] | None = None):
    """Predicted against true answer position (shares over every question and ordering asked), per system;
    ``positions``: {system: ``metrics.position_distribution`` table}. A position-biased system leans on one bar."""
    colours = colours or {}
    first = next(iter(positions.values()))
    labels = list(first.index)
    x = np.arange(len(labels))
    width = 0.8 / (len(positions) + 1)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.bar(x - 0.4 + width / 2, 100 * first["true_share"], width, facecolor="white", edgecolor="k", hatch="..",
           label="true answer")
    for i, (name, table) in enumerate(positions.items(), start=1):
        ax.bar(x - 0.4 + (i + 0.5) * width, 100 * table["predicted_share"].reindex(labels, fill_value=0), width,
               label=f"{name} predicted", color=colours.get(name))
    ax.set_xticks(x, labels)
    ax.set_xlabel("displayed position")
    ax.set_ylabel("% of answers")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def accuracy_by_bins(predictions: pd.DataFrame, column: str, bins=None) -> pd.DataFrame:
    """Accuracy, n, Wilson CI and chance per value of ``column`` (or per bin of it, ``bins`` edges) over scored
    questions (``metrics.score``: an unparsed answer is wrong); ``predictions`` also needs ``n_choices``."""
    scored = metrics.score(predictions)
    scored = scored[scored["scored"]]
    key = pd.cut(scored[column], bins, include_lowest=True) if bins is not None else scored[column]
    grouped = scored.assign(correct=scored["correct"].astype(float), inv=1.0 / scored["n_choices"]).groupby(key, observed=True)
    out = grouped.agg(accuracy=("correct", "mean"), n=("correct", "size"), chance=("inv", "mean"))
    cis = [wilson(a * n, n) for a, n in zip(out["accuracy"], out["n"])]
    return out.assign(ci_low=[c[0] for c in cis], ci_high=[c[1] for c in cis])


def plot_accuracy_vs(tables: dict[str, pd.DataFrame], title: str, colours: dict[str, str] | None = None,
                     length_bins: int = 4):
    """Accuracy against clip length (quantile bins) and against the number of options, per system, with Wilson
    95% intervals and chance. ``tables``: {system: predictions with a ``seconds`` column}."""
    colours = colours or {}
    first = next(iter(tables.values()))
    edges = np.unique(np.quantile(first["seconds"].dropna(), np.linspace(0, 1, length_bins + 1)))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, column, bins, xlabel in ((axes[0], "seconds", edges, "clip length (s), quantile bins"),
                                     (axes[1], "n_choices", None, "options offered")):
        offset = np.linspace(-0.15, 0.15, len(tables)) if len(tables) > 1 else [0.0]
        for dx, (name, table) in zip(offset, tables.items()):
            acc = accuracy_by_bins(table, column, bins)
            x = np.arange(len(acc)) + dx
            ax.errorbar(x, 100 * acc["accuracy"], yerr=[100 * (acc["accuracy"] - acc["ci_low"]),
                        100 * (acc["ci_high"] - acc["accuracy"])], marker="o", capsize=2, linestyle="none",
                        label=name, color=colours.get(name))
        ax.plot(np.arange(len(acc)), 100 * acc["chance"], "k:", label="chance")
        ticks = [f"{iv.left:.0f}-{iv.right:.0f}" for iv in acc.index] if bins is not None else [str(v) for v in acc.index]
        ax.set_xticks(np.arange(len(acc)), [f"{t}\nn={n}" for t, n in zip(ticks, acc["n"])], fontsize=8)
        ax.set_xlabel(xlabel)
        percent_axis(ax, "accuracy % (95% CI)")
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_robustness(robustness: dict[str, dict], title: str, colours: dict[str, str] | None = None):
    """Shuffle robustness per system: accuracy under each option ordering (dots), their mean (bar), and the share
    right under every ordering (hatched), each beside a random guesser's level."""
    colours = colours or {}
    names = list(robustness)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5.5, 1.4 * len(names) + 2), 3.6))
    for i, name in enumerate(names):
        r = robustness[name]
        ax.bar(i - 0.2, 100 * r["mean_accuracy"], 0.38, color=colours.get(name), alpha=0.8)
        ax.bar(i + 0.2, 100 * r["consistent_accuracy"], 0.38, color=colours.get(name), alpha=0.45, hatch="//")
        per = list(r["per_perm_accuracy"].values())
        ax.scatter([i - 0.2] * len(per), [100 * v for v in per], color="k", s=12, zorder=3)
        for dx, key in ((-0.2, "chance_mean_accuracy"), (0.2, "chance_consistent_accuracy")):
            if r.get(key) is not None:
                ax.plot([i + dx - 0.19, i + dx + 0.19], [100 * r[key]] * 2, "k:", linewidth=1.2)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="0.5", label="mean over orderings (dots: each ordering)"),
                       Patch(facecolor="0.8", hatch="//", label="right under every ordering"),
                       Line2D([], [], color="k", linestyle=":", label="random guesser")], fontsize=7, loc="upper right")
    ax.set_xticks(x, names, fontsize=8)
    percent_axis(ax, "accuracy %")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_rank_saturation(table: pd.DataFrame, base: dict, model: str, data: str, reported: dict[int, float] | None = None,
                         reported_params: dict[int, int] | None = None, metric: str = HEADLINE):
    """Accuracy against trainable parameters (log axis): each seed's point with its bootstrap CI, the mean over
    seeds with a 95% t-interval when there are several, the base and chance as lines. The report's numbers get
    their own panel (AF2-3B on DCASE dev: another model and other data). Both on the full 0..100% axis.

    ``table``: ``rank_table`` output; ``base``: the base's accuracy report."""
    acc_col = f"{metric_name(metric)} %"
    params_col = f"trainable params ({model})"
    fig, axes = plt.subplots(1, 2 if reported else 1, figsize=(12 if reported else 6, 4.4), squeeze=False)
    ax = axes[0, 0]
    for rank, rows in table.groupby(level="rank"):
        p = float(rows[params_col].iloc[0])
        accs = rows[acc_col].to_numpy()
        spread = np.linspace(-0.04, 0.04, len(accs)) if len(accs) > 1 else [0.0]
        for dx, a, ci in zip(spread, accs, rows["95% CI"]):
            ax.errorbar(p * 10 ** dx, a, yerr=[[a - ci[0]], [ci[1] - a]], fmt="o", color=rank_colour(rank),
                        alpha=0.5 if len(accs) > 1 else 1, capsize=3, markersize=5)
        if len(accs) > 1:
            mean, lo, hi = seed_interval(accs)
            ax.errorbar(p, mean, yerr=[[mean - lo], [hi - mean]], fmt="D", color=rank_colour(rank), markersize=9,
                        markeredgecolor="k", capsize=6, linewidth=2)
        top = max(ci[1] for ci in rows["95% CI"])
        ax.annotate(f"r={rank}", (p, top), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=8)
    ax.axhline(100 * base[metric], color=rank_colour(0), linestyle="--", label=f"base {100 * base[metric]:.1f}%")
    ax.axhline(100 * base["chance"], color="k", linestyle=":", label=f"chance {100 * base['chance']:.1f}%")
    ax.set_xscale("log")
    ax.margins(x=0.15)
    ax.set_xlabel(f"trainable LoRA parameters ({model})")
    percent_axis(ax, f"{metric_name(metric)} %\n(95% CI)")
    n_seeds = int(table.groupby(level="rank").size().max())
    seeds = "one seed per rank" if n_seeds == 1 else f"{n_seeds} seeds per rank: points, and mean with 95% t-interval"
    ax.set_title(f"measured here: {model}, {data}\n({seeds})", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    if reported:
        ax2 = axes[0, 1]
        ranks = sorted(reported)
        xs = [reported_params[r] for r in ranks] if reported_params else ranks
        ax2.plot(xs, [reported[r] for r in ranks], "s-", color="tab:gray")
        for r, xv in zip(ranks, xs):
            ax2.annotate(f"r={r}: {reported[r]:.2f}%", (xv, reported[r]), textcoords="offset points", xytext=(4, -14),
                         fontsize=8)
        ax2.set_xscale("log")
        ax2.margins(x=0.15)
        ax2.set_xlabel("trainable LoRA parameters (AF2-3B)" if reported_params else "rank")
        percent_axis(ax2, "overall accuracy % (reported)")
        ax2.set_title("reported: AF2-3B + LoRA, DCASE dev\n(not comparable with the left)", fontsize=9)
    fig.tight_layout()
    return fig

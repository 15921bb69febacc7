"""Figures of training runs: each base stage's losses (notebook 03), the listening check, LoRA losses per rank and
seed against the base's own validation loss (notebooks 04, 06). Runs are read from their ``metrics.jsonl`` and
``summary.json``; a missing file is an error naming it."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt

from aqa_utils.analysis.figures import rank_colour, smooth


def read_run(run_dir: str | Path) -> tuple[list[dict], dict]:
    """A finished run's logged rows (``metrics.jsonl``) and its ``summary.json``."""
    run_dir = Path(run_dir)
    files = [run_dir / "metrics.jsonl", run_dir / "summary.json"]
    for f in files:
        if not f.exists():
            raise FileNotFoundError(f"{f}: missing; the run in {run_dir.name} has not finished")
    rows = [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]
    return rows, json.loads(files[1].read_text())


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def plot_stages(stages: dict[str, str | Path], model: str):
    """One panel per training stage: train loss per step (faint) and its moving average; validation loss where
    logged, and validation mAP (stage 0's tagging) on a right-hand axis."""
    fig, axes = plt.subplots(1, len(stages), figsize=(5.2 * len(stages), 3.5), squeeze=False)
    for ax, (name, run) in zip(axes[0], stages.items()):
        rows, summary = read_run(run)
        steps, loss = _series(rows, "loss")
        ax.plot(steps, loss, color="tab:blue", alpha=0.25, linewidth=0.8)
        ax.plot(steps, smooth(loss, max(1, len(loss) // 20)), color="tab:blue", label="train loss (moving avg)")
        vs, vl = _series(rows, "val_loss")
        if summary.get("val_loss") is not None and (not vs or vs[-1] != summary["steps"]):
            vs, vl = vs + [summary["steps"]], vl + [summary["val_loss"]]
        if vl:
            ax.plot(vs, vl, "o--", color="tab:red", label="validation loss")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        ms, mv = _series(rows, "val_map")
        if mv:
            twin = ax.twinx()
            twin.plot(ms, mv, "s--", color="tab:green", label="validation mAP")
            twin.set_ylim(0, 1)
            twin.set_ylabel("mAP (sound tags)")
            twin.legend(loc="upper right", fontsize=8)
        ax.legend(loc="upper left" if mv else "best", fontsize=8)
        ax.set_title(f"{name} ({model})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_listening(listening: dict[str, float], model: str):
    """The listening check as bars: loss per answer token with each line's own clip and with another clip."""
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    names = list(listening)
    labels = {"matched": "own clip", "shuffled": "another clip"}
    ax.bar([labels.get(n, n) for n in names], [listening[n] for n in names], color=["tab:blue", "tab:gray"][:len(names)])
    for i, n in enumerate(names):
        ax.annotate(f"{listening[n]:.2f}", (i, listening[n]), ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("loss per answer token (nats)")
    ax.set_ylim(0, 1.15 * max(listening.values()))  # room for the value labels
    ax.set_title(f"Does the {model} base listen?", fontsize=10)
    fig.tight_layout()
    return fig


def base_validation_loss(cfg) -> float:
    """The base's validation loss on a LoRA run's validation set: a fresh adapter (B = 0, so the model equals the
    base) validated before any step, by the same code as the trained adapter's final validation loss."""
    from aqa_utils.training import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        out = Trainer(replace(cfg, out_dir=tmp, progress=False)).validate()
    if "val_loss" not in out:
        raise ValueError(f"{cfg.out_dir}: the LoRA recipe has no validation split (val_split={cfg.val_split!r})")
    return float(out["val_loss"])


def plot_lora_losses(systems: list, model: str, base_val_loss: float | None = None, highlight: int | None = None):
    """Train loss (moving average) of every finished LoRA system on one axis, colour per rank and line style per
    seed; each run's final validation loss as a marker; the base's validation loss as a reference line.
    ``highlight``: the rank this notebook trained (drawn thicker). Systems without a finished run are skipped."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    styles = ["-", "--", ":", "-."]
    seeds = sorted({s.seed for s in systems if s.rank})
    for system in systems:
        if system.rank == 0 or not (Path(system.run_dir) / "summary.json").exists():
            continue
        rows, summary = read_run(system.run_dir)
        steps, loss = _series(rows, "loss")
        colour = rank_colour(system.rank)
        width = 2.2 if system.rank == highlight else 1.2
        ax.plot(steps, smooth(loss, max(1, len(loss) // 15)), styles[seeds.index(system.seed) % 4], color=colour,
                linewidth=width, label=f"{system.name} train")
        vs, vl = _series(rows, "val_loss")
        if summary.get("val_loss") is not None:
            vs, vl = vs + [summary["steps"]], vl + [summary["val_loss"]]
        if vl:
            ax.plot(vs, vl, "o", color=colour, markersize=7, markeredgecolor="k", label=f"{system.name} validation")
    if base_val_loss is not None:
        ax.axhline(base_val_loss, color="k", linestyle=":", label="base validation (before LoRA)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss per answer token (nats)")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.05)  # from 0, with room above the highest line
    ax.set_title(f"LoRA on {model}: train loss (moving average) and validation loss", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig



def plot_lr_sweep(record: dict, model: str):
    """The learning-rate sweep (``workbook.lr_sweep``): validation shuffle-mean accuracy with its 95% interval per
    rate (log axis), the chosen rate marked."""
    runs = sorted(record["runs"].values(), key=lambda r: r["lr"])
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    lrs, acc = [r["lr"] for r in runs], [100 * r["shuffle_mean"] for r in runs]
    err = [[a - 100 * r["ci"][0] for a, r in zip(acc, runs)], [100 * r["ci"][1] - a for a, r in zip(acc, runs)]]
    ax.errorbar(lrs, acc, yerr=err, fmt="o-", color="tab:blue", capsize=4)
    ax.axvline(record["chosen"], color="tab:green", linestyle="--", label=f"chosen: {record['chosen']:g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"{record['val_split']} accuracy (%), shuffle mean")
    ax.set_title(f"LoRA r={record['rank']} on {model}: the rate chosen on {record['val_questions']} validation "
                 "questions", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

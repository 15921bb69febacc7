"""Tables and figures the notebooks show: headline accuracy with CIs, rank saturation, loss curves.

Numbers measured here and numbers reported by papers never share a row (see ``metrics.measured_vs_reported``).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from aqa_utils.data.layout import SUBSETS
from aqa_utils.reported import REPORTED_LORA_PARAMS


def headline_table(reports: dict[str, dict]) -> pd.DataFrame:
    """One row per system: accuracy per subset, domain average and micro (percent) with 95% CIs."""
    rows = []
    for system, rep in reports.items():
        row = {"system": system}
        for name in SUBSETS:
            if name in rep["per_subset"]:
                lo, hi = rep["per_subset_ci"][name]
                row[name] = f"{100 * rep['per_subset'][name]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
        lo, hi = rep["domain_average_ci"]
        row["domain average"] = f"{100 * rep['domain_average']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
        lo, hi = rep["micro_ci"]
        row["micro"] = f"{100 * rep['micro']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
        row["unparsed %"] = round(100 * rep["unparsed_rate"], 1)
        row["n"] = rep["counts"]["scored"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("system")


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict:
    """Accuracy of B minus A on the same questions, with a paired bootstrap 95% CI and P(B > A).

    Pairing matters: two adapters answer the same questions, so their errors are correlated and an unpaired
    comparison of two CIs would be far too conservative.
    """
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    if a.shape != b.shape:
        raise ValueError("paired_difference needs predictions for the same questions")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    diffs = (b[idx] - a[idx]).mean(axis=1)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"difference": float(b.mean() - a.mean()), "ci": (float(lo), float(hi)),
            "p_b_better": float((diffs > 0).mean()), "n": len(a)}


def rank_table(runs: dict[int, Path], reports: dict[int, dict], tiny_params: dict[int, int]) -> pd.DataFrame:
    """Accuracy against rank and trainable parameters (tiny, measured; af2-3b, exact counts)."""
    rows = []
    for rank in sorted(reports):
        rep = reports[rank]
        summary = json.loads((Path(runs[rank]) / "summary.json").read_text())
        rows.append({
            "rank": rank,
            "trainable params (af2-tiny)": tiny_params[rank],
            "trainable params (af2-3b)": REPORTED_LORA_PARAMS[rank],
            "micro acc %": round(100 * rep["micro"], 1),
            "micro 95% CI": tuple(round(100 * v, 1) for v in rep["micro_ci"]),
            "domain avg %": round(100 * rep["domain_average"], 1),
            "final val loss": round(summary["val_loss"], 3) if summary.get("val_loss") is not None else None,
            "train seconds": summary["seconds"],
        })
    return pd.DataFrame(rows).set_index("rank")


def plot_rank_saturation(table: pd.DataFrame, reported: dict[int, float] | None = None):
    """Accuracy (with CI) against rank, measured here; the report's numbers on a second panel, labelled."""
    fig, axes = plt.subplots(1, 2 if reported else 1, figsize=(10 if reported else 5, 3.6), squeeze=False)
    ax = axes[0, 0]
    ranks = table.index.to_numpy()
    acc = table["micro acc %"].to_numpy()
    lo = np.array([c[0] for c in table["micro 95% CI"]])
    hi = np.array([c[1] for c in table["micro 95% CI"]])
    ax.errorbar(ranks, acc, yerr=[acc - lo, hi - acc], marker="o", capsize=4)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ranks, [f"r={r}\n{table.loc[r, 'trainable params (af2-tiny)']:,}" for r in ranks])
    ax.set_ylabel("micro accuracy % (95% CI)")
    ax.set_title("measured here: af2-tiny, mini benchmark dev")
    if reported:
        ax2 = axes[0, 1]
        r = sorted(reported)
        ax2.plot(r, [reported[k] for k in r], marker="s", color="tab:gray")
        ax2.set_xscale("log", base=2)
        ax2.set_xticks(r, [f"r={k}\n{REPORTED_LORA_PARAMS[k] / 1e6:.2f}M" for k in r])
        ax2.set_title("reported: AF2-3B, DCASE dev")
    fig.tight_layout()
    return fig


def plot_loss_curves(runs: dict[str, Path]):
    """Training loss per step (and validation loss where logged) of several runs."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, run in runs.items():
        rows = [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines() if line]
        steps = [r["step"] for r in rows]
        ax.plot(steps, [r["loss"] for r in rows], label=f"{name} train", alpha=0.8)
        val = [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
        if val:
            ax.plot(*zip(*val), marker="o", linestyle="--", label=f"{name} val")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (answer tokens)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_subset_bars(reports: dict[str, dict]):
    """Accuracy per subset and system with 95% CIs."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / max(1, len(reports))
    for i, (system, rep) in enumerate(reports.items()):
        names = [n for n in SUBSETS if n in rep["per_subset"]] + ["domain avg"]
        vals = [100 * rep["per_subset"][n] for n in names[:-1]] + [100 * rep["domain_average"]]
        cis = [rep["per_subset_ci"][n] for n in names[:-1]] + [rep["domain_average_ci"]]
        err = np.array([[v - 100 * c[0], 100 * c[1] - v] for v, c in zip(vals, cis)]).T
        ax.bar(np.arange(len(names)) + i * width, vals, width, yerr=err, capsize=2, label=system)
    ax.set_xticks(np.arange(len(names)) + width * (len(reports) - 1) / 2, names)
    ax.set_ylabel("accuracy % (95% CI)")
    chance = next(iter(reports.values())).get("chance")
    if chance:
        ax.axhline(100 * chance, color="k", linestyle=":", label="chance")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------- data exploration
def question_table(questions) -> pd.DataFrame:
    """One row per question: id, subset, type, number of choices, answer position, clip."""
    return pd.DataFrame([{
        "qid": q.qid, "split": q.split, "subset": q.subset, "question_type": q.question_type,
        "n_choices": len(q.choices), "answer_position": None if q.answer is None else "ABCDEF"[q.answer],
        "clip": q.audio_path.name, "question": q.question,
    } for q in questions])


def clip_table(paths) -> pd.DataFrame:
    """Per audio file: container format found by content (not by extension), rate, channels, duration."""
    import soundfile as sf

    rows = []
    for path in sorted(set(paths)):
        info = sf.info(str(path))
        rows.append({"clip": Path(path).name, "extension": Path(path).suffix, "format": info.format,
                     "sample_rate": info.samplerate, "channels": info.channels,
                     "seconds": round(info.frames / info.samplerate, 2)})
    return pd.DataFrame(rows)


def plot_clip_lengths(clips: pd.DataFrame, window_seconds: float = 10.0):
    """Histogram of clip lengths with the 10 s window boundaries AF2 cuts at."""
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(clips["seconds"], bins=30)
    for k in range(1, int(clips["seconds"].max() // window_seconds) + 1):
        ax.axvline(k * window_seconds, color="k", linestyle=":", linewidth=0.8)
    ax.set_xlabel("clip length (s); dotted: 10 s window boundaries")
    ax.set_ylabel("clips")
    fig.tight_layout()
    return fig


def label_mask_table(tokenizer, prompt: str, target: str) -> pd.DataFrame:
    """Token by token: what the model reads and which tokens carry loss under AF2's masking rule."""
    from aqa_utils.data.prompt import TrainCollator

    batch = TrainCollator(tokenizer)([(prompt, target)])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    return pd.DataFrame({"token": [tokenizer.decode([i]) for i in ids], "id": ids,
                         "in loss": [label != -100 for label in labels]})


def rank_comparison(correct: dict[int, np.ndarray], reference: int = 8, n_boot: int = 2000) -> tuple[pd.DataFrame, bool]:
    """Each higher rank against ``reference`` on the same questions (paired bootstrap), and the saturation verdict:
    True when no higher rank beats the reference with 95% confidence (every interval reaches 0 or below)."""
    rows = {}
    for rank in sorted(r for r in correct if r > reference):
        d = paired_difference(correct[reference], correct[rank], n_boot=n_boot)
        rows[f"r={rank} minus r={reference}"] = {
            "difference %": round(100 * d["difference"], 1), "95% CI": tuple(round(100 * v, 1) for v in d["ci"]),
            "P(higher rank better)": round(d["p_b_better"], 2), "n": d["n"]}
    table = pd.DataFrame(rows).T
    return table, all(row["95% CI"][0] <= 0 for row in rows.values())

"""Session-16 summary (#15, goal 3a): every LoRA design tried against the unparsed generations since the fifteenth
session, on the same base (V2; DL on a base of its own) and `train.val` (296 questions, K=4, both modes), one row per run, from each run's
result.json under EXP: results/experiments/unparsed_designs.csv. A run whose folder is not under EXP keeps its row
from the CSV (a later session's work dir holds only its own runs). Then the figure unparsed_designs.png:
accuracy (scoring, and generation) against the unparsed share of generations, one point per run, with the bar.
usage: EXP=work/exp15 python session16_frontier.py"""
import json, os
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

EXP = Path(os.environ.get("EXP", "work/exp15"))
OUT = Path(__file__).resolve().parent.parent
DESIGNS = {  # name in EXP: what it changes against the control C (6 epochs, lr 1e-3, SpecAugment off)
    "C": "control", "E4": "4 epochs", "E8": "8 epochs", "U": "unlikelihood on unlisted classes",
    "D": "clip swap 20%", "N3": "3,000 questions x 3 epochs", "N4": "2,250 questions x 4 epochs",
    "S": "option label smoothing 0.1", "Sa": "option label smoothing 0.03", "RX": "copy-line replay",
    "T": "SpecAugment time stripes", "G": "batches grouped by clip", "XA": "adapters on the cross-attention too",
    "A": "adapters on the audio side only",
    "LB": "labelled answers, base too", "L": "labelled answers",
    "M": "same-type clip swap 20%, set target",
    "P": "presence questions on the clip 20%",
    "Pa": "presence questions on the clip, 20% added",
    "DL": "a base of its own, with a 6-layer LM",
}

rows = []
for name, change in DESIGNS.items():
    for seed in range(3):
        f = EXP / f"{name}_s{seed}" / "result.json"
        if f.exists():
            r = json.loads(f.read_text())
            rows.append({"design": name, "change": change, "seed": seed,
                         "score": r["score"]["mean_accuracy"], "generate": r["generate"]["mean_accuracy"],
                         "unparsed": r["generate"]["unparsed_rate"], "position_tv_score": r["score"]["position_tv"]})
kept = pd.read_csv(OUT / "unparsed_designs.csv") if (OUT / "unparsed_designs.csv").exists() else pd.DataFrame(rows)
measured = {(r["design"], r["seed"]) for r in rows}
kept = kept[[(d, s) not in measured for d, s in zip(kept.design, kept.seed)]]
runs = pd.concat([kept, pd.DataFrame(rows)], ignore_index=True)
runs["order"] = runs.design.map(list(DESIGNS).index)
runs = runs.sort_values(["order", "seed"], kind="stable").drop(columns="order").reset_index(drop=True)
runs.to_csv(OUT / "unparsed_designs.csv", index=False)

shown = runs[runs.unparsed < 0.1]  # A, L, LB and DL (over 10% unparsed) are in the table, off this chart
colours = dict(zip(DESIGNS, plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]))
markers = dict(zip(DESIGNS, "*osD^vPXhp<>d8H*1p+P"))
fig, axes = plt.subplots(1, 2, figsize=(11, 5.8), sharex=True)
for ax, mode in zip(axes, ("score", "generate")):
    for name, group in shown.groupby("design", sort=False):
        ax.scatter(group.unparsed * 100, group[mode] * 100, s=90 if name == "C" else 28, color=colours[name],
                   marker=markers[name], label=f"{name}: {DESIGNS[name]}", zorder=3 if name == "C" else 2)
        every = runs[runs.design == name]
        if len(every) == len(group):  # a design with runs off the chart has its mean in the table, not here
            ax.annotate(name, (group.unparsed.mean() * 100, group[mode].mean() * 100), fontsize=8,
                        color=colours[name], xytext=(3, 3), textcoords="offset points")
    ax.axvline(5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("generations unparsed, % (goal 3a: at most 5)")
    ax.set_ylabel(f"{mode} accuracy, mean over K=4 orders, %")
    ax.set_title(f"{mode} mode (points: seeds; labels: design means)", fontsize=9)
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
fig.suptitle("Designs against the unparsed generations: LoRA r=8 on the pipeline's base V2 (DL: a base of its own), "
             "train.val (296 questions)",
             fontsize=10)
fig.tight_layout(rect=(0, 0.19, 1, 1))
fig.savefig(OUT / "unparsed_designs.png", dpi=110)
print(runs.groupby("design", sort=False)[["score", "generate", "unparsed"]].mean().round(3).to_string())

# The README's table of these designs, between its markers: written from the CSV, never typed.
BEGIN, END = "<!-- unparsed-designs:begin -->", "<!-- unparsed-designs:end -->"
control = runs[runs.design == "C"][["score", "generate"]].mean()
lines = [BEGIN, "", "| design | what it changes against the control | seeds | score, mean % | generate, mean % | "
         "score - C's, points | unparsed per seed % | every seed at most 5% unparsed |", "|---|---|---|---|---|---|---|---|"]
for name, group in runs.groupby("design", sort=False):
    per_seed = " / ".join(f"{100 * u:.2f}" for u in group.unparsed)
    lines.append(f"| {name} | {DESIGNS[name]} | {len(group)} | {100 * group.score.mean():.1f} | "
                 f"{100 * group.generate.mean():.1f} | {100 * (group.score.mean() - control.score):+.1f} | {per_seed} | {'yes' if (group.unparsed <= 0.05).all() else 'no'} |")
lines += ["", END]
readme = OUT.parents[1] / "README.md"
text = readme.read_text()
start, stop = text.index(BEGIN), text.index(END) + len(END)
readme.write_text(text[:start] + "\n".join(lines) + text[stop:])

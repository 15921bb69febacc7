"""Figures of the data (notebook 01) and of the augmentation (notebook 02).

Titles name the data they show (``data``: e.g. "DCASE dev" or the generated benchmark), never a fixed one.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from aqa_utils.analysis.tables import expected_positions
from aqa_utils.config import AudioConfig
from aqa_utils.data.layout import SUBSETS


def _subsets(df: pd.DataFrame) -> list[str]:
    return [s for s in SUBSETS if s in set(df["subset"])]


def plot_subset_distributions(questions: pd.DataFrame, data: str, window_seconds: float = 10.0):
    """Per subset (columns): clip lengths (one count per clip) with the 10 s window boundaries AF2 cuts at, and
    the number of options per question. ``questions``: ``with_clip_seconds`` rows."""
    subsets = _subsets(questions)
    fig, axes = plt.subplots(2, len(subsets), figsize=(3.4 * len(subsets), 5.2), squeeze=False)
    longest = float(questions["seconds"].max())
    bins = np.linspace(0, max(longest, window_seconds) * 1.02, 25)
    options = np.arange(questions["n_choices"].min(), questions["n_choices"].max() + 1)
    for col, subset in enumerate(subsets):
        rows = questions[questions["subset"] == subset]
        clips = rows.drop_duplicates("path")
        ax = axes[0, col]
        ax.hist(clips["seconds"], bins=bins, color="tab:blue")
        for k in range(1, int(longest // window_seconds) + 1):
            ax.axvline(k * window_seconds, color="k", linestyle=":", linewidth=0.8)
        ax.set_title(f"{subset}: {len(clips)} clips, {len(rows)} questions", fontsize=10)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("clip length (s); dotted: 10 s windows")
        ax = axes[1, col]
        counts = rows["n_choices"].value_counts().reindex(options, fill_value=0)
        ax.bar(options, counts.to_numpy(), color="tab:orange")
        ax.set_xticks(options)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("options per question")
    axes[0, 0].set_ylabel("clips")
    axes[1, 0].set_ylabel("questions")
    fig.suptitle(f"{data}: clip lengths and option counts per subset", fontsize=11)
    fig.tight_layout()
    return fig


def _position_bars(groups: dict[str, pd.Series], expected: pd.Series, ylabel: str, title: str):
    """Grouped bars: per group (label -> answer positions), the share at each position, against the uniform
    placement ``expected`` (the mean of 1/n per position) drawn as black ticks."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    width = 0.8 / len(groups)
    x = np.arange(len(expected))
    for i, (label, positions) in enumerate(groups.items()):
        share = positions.value_counts(normalize=True).reindex(expected.index, fill_value=0)
        ax.bar(x + (i - (len(groups) - 1) / 2) * width, 100 * share.to_numpy(), width, label=label)
    ax.scatter(x, 100 * expected.to_numpy(), marker="_", s=900, color="k", zorder=3, label="uniform placement")
    ax.set_xticks(x, expected.index)
    ax.set_xlabel("answer position")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_answer_positions(questions: pd.DataFrame, data: str):
    """Share of answers at each position per split, against uniform placement (the mean of 1/n per position)."""
    answered = questions.dropna(subset=["answer_position"])
    groups = {f"{split} (n={(answered['split'] == split).sum()})": answered.loc[answered["split"] == split,
                                                                                "answer_position"]
              for split in sorted(answered["split"].unique())}
    return _position_bars(groups, expected_positions(answered["n_choices"]), "% of questions",
                          f"{data}: where the answer sits")


def plot_question_types(questions: pd.DataFrame, data: str):
    """Questions per type, one panel per subset, split by split."""
    subsets = _subsets(questions)
    counts = questions.groupby(["subset", "question_type", "split"]).size().unstack(fill_value=0)
    tallest = max(len(counts.loc[s]) for s in subsets)
    fig, axes = plt.subplots(1, len(subsets), figsize=(3.6 * len(subsets), 0.35 * tallest + 1.6), squeeze=False)
    for ax, subset in zip(axes[0], subsets):
        table = counts.loc[subset].sort_values(list(counts.columns), ascending=True)
        left = np.zeros(len(table))
        for split in table.columns:
            ax.barh(table.index, table[split], left=left, label=split)
            left += table[split].to_numpy()
        ax.set_title(subset, fontsize=10)
        ax.set_xlabel("questions")
        ax.tick_params(axis="y", labelsize=8)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"{data}: question types per subset", fontsize=11)
    fig.tight_layout()
    return fig


AF2_AUDIO = AudioConfig()


def log_mel(wave, audio: AudioConfig = AF2_AUDIO) -> np.ndarray:
    """The log-mel spectrogram (dB, 80 dB range) of AF2's front-end settings: what the audio encoder reads."""
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=audio.sample_rate, n_fft=audio.n_fft, hop_length=audio.hop_length, f_min=audio.f_min,
        f_max=audio.f_max, n_mels=audio.n_mels)(wave)
    return torchaudio.transforms.AmplitudeToDB(top_db=80)(mel).numpy()


def plot_clips(examples: dict[str, object], audio: AudioConfig = AF2_AUDIO):
    """One clip per subset (``{subset: Question}``): waveform over log-mel spectrogram, after AF2's loading
    (16 kHz mono, peak-normalised); the title gives the question and its answer."""
    from aqa_utils.audio import load_clip

    names = [s for s in SUBSETS if s in examples] + [s for s in examples if s not in SUBSETS]
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 4.6), squeeze=False,
                             gridspec_kw={"height_ratios": [1, 2]})
    for col, subset in enumerate(names):
        q = examples[subset]
        wave = load_clip(q.audio_path, audio)
        seconds = wave.shape[0] / audio.sample_rate
        t = np.arange(wave.shape[0]) / audio.sample_rate
        axes[0, col].plot(t, wave.numpy(), linewidth=0.4, color="tab:blue")
        axes[0, col].set_xlim(0, seconds)
        answer = "" if q.answer is None else f" -> {q.choices[q.answer]}"
        axes[0, col].set_title(f"{subset}: {q.question}{answer}", fontsize=8, wrap=True)
        axes[1, col].imshow(log_mel(wave, audio), origin="lower", aspect="auto", extent=(0, seconds, 0, audio.n_mels),
                            cmap="magma")
        axes[1, col].set_xlabel("time (s)")
    axes[0, 0].set_ylabel("amplitude")
    axes[1, 0].set_ylabel("mel bin")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------- augmentation
def plot_label_formats(q, draws: dict[str, object]):
    """The question's options as the model sees them: the evaluation format in the original order, then one
    training draw per label format (``draws``: {format: MCExample}, each with its own shuffle); the answer is
    green."""
    from aqa_utils.data.formats import eval_example, format_label

    columns = {"eval (A)": eval_example(q), **{f"train {fmt}": ex for fmt, ex in draws.items()}}
    n = len(q.choices)
    cells, colours = [], []
    for position in range(n):
        row, row_colours = [], []
        for ex in columns.values():
            row.append(f"{format_label(position, ex.fmt)} {ex.choices[position]}")
            row_colours.append("#b8e0b8" if position == ex.answer else "white")
        cells.append(row)
        colours.append(row_colours)
    fig, ax = plt.subplots(figsize=(1.55 * len(columns), 0.3 * n + 0.7))
    ax.axis("off")
    table = ax.table(cellText=cells, cellColours=colours, colLabels=list(columns),
                     rowLabels=[f"position {p + 1}" for p in range(n)], loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.4)
    ax.set_title(f"{q.question} (green: the answer)", fontsize=9)
    fig.tight_layout()
    return fig


def shuffled_positions(questions, draws: int = 20, seed: int = 0) -> pd.DataFrame:
    """Answer position of each question before and after the training shuffle (``draws`` draws per question);
    columns ``when`` ("original" / "shuffled"), ``answer_position``, ``n_choices``."""
    from aqa_utils.data.augment import training_example

    rng = np.random.default_rng(seed)
    rows = []
    for q in questions:
        if q.answer is None:
            continue
        rows.append(("original", "ABCDEF"[q.answer], len(q.choices)))
        rows += [("shuffled", "ABCDEF"[training_example(q, rng).answer], len(q.choices)) for _ in range(draws)]
    return pd.DataFrame(rows, columns=["when", "answer_position", "n_choices"])


def plot_position_shift(positions: pd.DataFrame, data: str):
    """Answer-position shares before and after shuffling, against uniform placement."""
    groups = {when: positions.loc[positions["when"] == when, "answer_position"] for when in ("original", "shuffled")}
    expected = expected_positions(positions.loc[positions["when"] == "original", "n_choices"])
    return _position_bars(groups, expected, "% of training examples",
                          f"{data} train: answer positions before and after the shuffle")

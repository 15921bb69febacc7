"""What the demo draws: the clip as the model hears it (waveform, log-mel spectrogram, its 10 s windows) and the
per-option probabilities of every system. Each function returns a matplotlib figure, so a notebook shows it
inline and the app shows it in an output widget."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from aqa_utils.audio import load_clip, num_windows
from aqa_utils.config import AudioConfig


def clip_summary(path: Path, audio: AudioConfig = AudioConfig()) -> dict:
    """How long the file is and what the model hears of it: ``file_seconds`` (None when the container does not
    say), ``heard_seconds`` (after the cut at ``max_windows`` windows) and ``windows``."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        file_seconds = info.frames / info.samplerate if info.frames > 0 else None
    except (sf.SoundFileError, RuntimeError):
        file_seconds = None
    samples = load_clip(path, audio).shape[0]
    return {"file_seconds": file_seconds, "heard_seconds": samples / audio.sample_rate,
            "windows": num_windows(samples, audio)}


def clip_figure(path: Path, audio: AudioConfig = AudioConfig(), name: str | None = None):
    """Waveform and log-mel spectrogram (the model's front end: 16 kHz, its mel settings) of what the model hears,
    with the evaluation's window boundaries; titled ``name`` (default: the file's). Raises ``AudioError`` for a clip
    that cannot be read."""
    import torch

    from aqa_utils.analysis.data_figures import log_mel

    wave = load_clip(path, audio)
    db = log_mel(wave, audio)
    seconds = wave.shape[0] / audio.sample_rate
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 3.4), sharex=True, height_ratios=(1, 2))
    step = max(1, wave.shape[0] // 4000)  # a few thousand points draw the envelope as well as all of them
    t = torch.arange(0, wave.shape[0], step) / audio.sample_rate
    top.plot(t.numpy(), wave[::step].numpy(), linewidth=0.5, color="tab:blue")
    top.set_ylim(-1.05, 1.05)
    top.set_ylabel("amplitude")
    bottom.imshow(db, origin="lower", aspect="auto", extent=(0, seconds, 0, audio.n_mels), cmap="magma")
    bottom.set_xlabel("time (s)")
    bottom.set_ylabel("mel bin")
    windows = num_windows(wave.shape[0], audio)
    for w in range(1, windows):
        for ax in (top, bottom):
            ax.axvline(w * audio.window_seconds, color="white" if ax is bottom else "grey", linestyle="--",
                       linewidth=0.8)
    top.set_title(f"{name or Path(path).name}: {windows} window(s) of {audio.window_seconds:g} s", fontsize=9)
    fig.tight_layout()
    return fig


def probabilities_figure(answers: dict[str, dict], shuffled: dict[str, dict] | None = None):
    """Per-option probabilities of each system (one panel per system, options in their original order); with
    ``shuffled``, the same systems' probabilities with the options reordered, side by side (position bias shows as
    bars that move with the position rather than with the option)."""
    names = list(answers)
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names) + 1.6, 0.45 * len(
        next(iter(answers.values()))["choices"]) + 1.2), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        out = answers[name]
        labels = [f"({chr(65 + i)}) {t}" for i, t in enumerate(out["choices"])]
        y = np.arange(len(labels))
        height = 0.4 if shuffled else 0.8
        ax.barh(y - (height / 2 if shuffled else 0), out["probabilities"], height=height, label="as given")
        if shuffled:
            ax.barh(y + height / 2, shuffled[name]["probabilities"], height=height, label="reordered")
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("probability")
        ax.set_title(name, fontsize=9)
    if shuffled:
        axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def wav_bytes(path: Path, audio: AudioConfig = AudioConfig()) -> bytes:
    """What the model hears as 16 kHz mono 16-bit WAV bytes, playable by any browser whatever the source format."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, load_clip(path, audio).numpy(), audio.sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def png_bytes(fig, dpi: int = 80) -> bytes:
    """The figure as PNG bytes (for an Image widget: shown the same in a kernel, a browser and a test), closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()

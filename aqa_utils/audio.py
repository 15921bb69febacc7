"""AF2's audio preprocessing, step for step as NVIDIA's inference code does it.

file -> first ``max_windows * window_seconds`` seconds -> (if any |x| > 1) divide by the peak -> one channel
(AF2 keeps the FIRST channel) -> 16 kHz -> AF2 peak normalisation -> int16 round trip -> 10 s windows + mask.

Files are read with soundfile, which recognises the format by content, so MP3 data behind a ``.wav`` name
decodes (the DCASE dev set has ~800 such files). torchaudio is used for resampling only.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from aqa_utils.config import AudioConfig

AUDIO_REASONS = ("missing", "unreadable", "empty", "silent")


class AudioError(ValueError):
    """A clip that cannot become model input.

    ``reason`` is one of ``AUDIO_REASONS``; ``detail`` says more (e.g. libsndfile's message).
    """

    def __init__(self, path: str | Path | None, reason: str, detail: str = ""):
        self.path = Path(path) if path is not None else None
        self.reason = reason
        self.detail = detail
        where = str(path) if path is not None else "audio"
        super().__init__(f"{where}: {reason}" + (f" ({detail})" if detail else ""))


def read_audio(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a file by its content.

    Returns ``(data, rate)``: ``data`` float32 of shape (channels, samples), at most ``max_seconds`` long.
    Raises ``AudioError`` if the file is missing, cannot be decoded, or holds 0 samples.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "missing")
    try:
        with sf.SoundFile(path) as f:
            rate = f.samplerate
            frames = f.frames if max_seconds is None else min(f.frames, int(max_seconds * rate))
            data = f.read(frames, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, ValueError) as e:
        raise AudioError(path, "unreadable", str(e)) from e
    if data.shape[0] == 0:
        raise AudioError(path, "empty")
    return np.ascontiguousarray(data.T), rate


def load_clip(path: str | Path, cfg: AudioConfig = AudioConfig(), mono: str = "first") -> torch.Tensor:
    """A clip as AF2 sees it: float32 tensor (samples,) at ``cfg.sample_rate``, peak-normalised, int16-quantised.

    ``mono="first"`` keeps channel 0 (what AF2 does); ``mono="mean"`` averages the channels instead.
    Raises ``AudioError`` (missing / unreadable / empty / silent).
    """
    if mono not in ("first", "mean"):
        raise ValueError(f"mono must be 'first' or 'mean', got {mono!r}")
    data, rate = read_audio(path, max_seconds=cfg.max_windows * cfg.window_seconds)
    # Official: only float files can exceed [-1, 1]; they are scaled by their peak before anything else.
    peak = float(np.abs(data).max())
    if peak > 1.0:
        data = data / peak
    wave = torch.from_numpy(data[0] if mono == "first" else data.mean(axis=0))
    if not bool(wave.abs().max() > 0):
        raise AudioError(path, "silent")
    if rate != cfg.sample_rate:
        wave = AF.resample(wave, rate, cfg.sample_rate)
    return _af2_normalise(wave)


def _af2_normalise(wave: torch.Tensor) -> torch.Tensor:
    """AF2's peak normalisation, then the float -> int16 -> float round trip its data loader applies."""
    lo, hi = wave.min(), wave.max()
    if lo >= 0:
        # Official quirk: an all-non-negative signal is stretched to [-1, 1].
        wave = 2 * wave / hi.abs() - 1.0
    else:
        wave = wave / torch.maximum(hi.abs(), lo.abs())
    return (wave.clamp(-1.0, 1.0) * 32767.0).to(torch.int16).to(torch.float32) / 32767.0


def num_windows(samples: int, cfg: AudioConfig = AudioConfig()) -> int:
    """Windows a clip of ``samples`` samples gets: 1 up to one window, then one per started window, capped."""
    w = cfg.window_samples
    if samples <= w:
        return 1
    return min(cfg.max_windows, 1 + math.ceil((samples - w) / w))


def split_windows(wave: torch.Tensor, cfg: AudioConfig = AudioConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a clip (S,) into non-overlapping windows.

    Returns ``(windows, mask)``: windows (L, W) with W = ``cfg.window_samples``, the last zero-padded and audio
    beyond ``max_windows`` dropped; mask (L,) bool, all True (padding windows only appear in batches).
    """
    if wave.ndim != 1:
        raise ValueError(f"expected a 1-D wave, got shape {tuple(wave.shape)}")
    if wave.numel() == 0:
        raise AudioError(None, "empty", "0 samples")
    n, w = num_windows(wave.numel(), cfg), cfg.window_samples
    padded = torch.zeros(n * w, dtype=wave.dtype)
    keep = min(wave.numel(), n * w)
    padded[:keep] = wave[:keep]
    return padded.view(n, w), torch.ones(n, dtype=torch.bool)


def pad_window_batch(windows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch clips with different window counts (also used for clips' encoded tokens, (N_i, D) each).

    ``windows``: list of B tensors (L_i, W). Returns ``(batch, mask)``: batch (B, Lmax, W) zero-padded,
    mask (B, Lmax) bool on the CPU, True where a window is real.
    """
    if not windows:
        raise ValueError("empty batch")
    width = windows[0].shape[1]
    if any(w.ndim != 2 or w.shape[1] != width for w in windows):
        raise ValueError(f"all items must be (L_i, {width}); got {[tuple(w.shape) for w in windows]}")
    lmax = max(w.shape[0] for w in windows)
    batch = windows[0].new_zeros(len(windows), lmax, width)
    mask = torch.zeros(len(windows), lmax, dtype=torch.bool)
    for i, w in enumerate(windows):
        batch[i, : w.shape[0]] = w
        mask[i, : w.shape[0]] = True
    return batch, mask


class ClipCache:
    """Windows of clips keyed by path, each decoded once: LRU up to ``max_clips`` (None: keep all; 0: keep none,
    re-reading every time as NVIDIA's per-question scripts do). Counts loads, hits and loading time."""

    def __init__(self, cfg: AudioConfig = AudioConfig(), max_clips: int | None = None):
        self.cfg, self.max_clips = cfg, max_clips
        self._items: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.loads = self.hits = 0
        self.load_seconds = 0.0

    def get(self, path: str | Path) -> torch.Tensor:
        """(L, window_samples) windows of the clip."""
        key = str(path)
        if key in self._items:
            self.hits += 1
            self._items.move_to_end(key)
            return self._items[key]
        start = time.perf_counter()
        windows, _ = split_windows(load_clip(path, self.cfg), self.cfg)
        self.load_seconds += time.perf_counter() - start
        self.loads += 1
        if self.max_clips != 0:
            self._items[key] = windows
            if self.max_clips is not None and len(self._items) > self.max_clips:
                self._items.popitem(last=False)
        return windows

    def stats(self) -> dict:
        return {"loads": self.loads, "hits": self.hits, "load_s": self.load_seconds}

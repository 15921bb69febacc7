"""AF2's audio preprocessing, step for step as NVIDIA's inference code does it.

The official loader (``inference_HF_pretrained/inference.py``: ``read_audio`` + ``load_audio``) has two branches,
chosen by the file NAME, and this module follows both:

* any name not ending in ``.mp3`` (DCASE's files, including its MP3 data behind ``.wav`` names): soundfile
  decodes by content, as float64; the first ``max_windows * window_seconds`` seconds are read; if any sample of
  any channel exceeds [-1, 1] everything is divided by the peak; the FIRST channel is kept; it is resampled to
  16 kHz with ``librosa.resample``'s default, i.e. soxr at quality "HQ" (we call soxr directly, with librosa's
  output length);
* names ending in ``.mp3`` (case-sensitive): pydub/ffmpeg decode to 16-bit integers; the first 2 min are kept;
  pydub resamples all channels with ``audioop.ratecv`` (linear interpolation on integers) and then MIXES the
  channels (``audioop.tomono``, 0.5 each, floored); samples are divided by 32767 as float32. We decode with
  soundfile instead of ffmpeg (ffmpeg is not a dependency) and reproduce the integer steps exactly.

Then, for both: AF2's peak normalisation (an all-non-negative signal is stretched to [-1, 1]), zero padding to
whole 10 s windows, and the float -> int16 (truncating) -> float round trip.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from aqa_utils.config import AudioConfig

AUDIO_REASONS = ("missing", "unreadable", "empty", "silent")
MONO_CHOICES = ("af2", "first", "mean")


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


def read_audio(path: str | Path, max_seconds: float | None = None, dtype: str = "float32",
               seek_start: bool = True) -> tuple[np.ndarray, int]:
    """Decode a file by its content.

    Returns ``(data, rate)``: ``data`` of shape (channels, samples) in ``dtype`` ("float32", "float64" as the
    official loader reads, or "int16"), at most ``max_seconds`` long. ``seek_start``: seek to 0 before reading,
    as the official soundfile branch does (see below).
    Raises ``AudioError`` if the file is missing, cannot be decoded, or holds 0 samples.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "missing")
    try:
        with sf.SoundFile(path) as f:
            rate = f.samplerate
            frames = f.frames if max_seconds is None else min(f.frames, int(max_seconds * rate))
            # The official loader seeks to its start (0) before reading. That is not a no-op: for MPEG-2 MP3 data
            # (16 / 22.05 / 24 kHz) libsndfile's decoder then returns slightly different samples (~1e-7).
            if seek_start:
                f.seek(0)
            data = f.read(frames, dtype=dtype, always_2d=True)
    except (sf.SoundFileError, RuntimeError, ValueError) as e:
        raise AudioError(path, "unreadable", str(e)) from e
    if data.shape[0] == 0:
        raise AudioError(path, "empty")
    return np.ascontiguousarray(data.T), rate


def official_branch(path: str | Path) -> str:
    """Which branch of the official loader a file takes: "pydub" for names ending in ``.mp3``, else "soundfile"."""
    return "pydub" if str(path).endswith(".mp3") else "soundfile"


def resample_soxr_hq(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``librosa.resample(x, orig_sr=rate, target_sr=target)`` with its defaults, for a 1-D signal: soxr "HQ",
    output cut or zero-padded to ``ceil(len(x) * target / rate)`` samples, same dtype as ``x``."""
    if rate == target:
        return x
    n_out = int(np.ceil(x.shape[-1] * (float(target) / rate)))
    y = soxr.resample(x, rate, target, quality="HQ")
    if y.shape[-1] >= n_out:
        y = y[:n_out]
    else:
        y = np.concatenate([y, np.zeros(n_out - y.shape[-1], dtype=y.dtype)])
    return np.asarray(y, dtype=x.dtype)


def ratecv_int16(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """CPython's ``audioop.ratecv(data, 2, channels, rate, target, None)`` (what pydub's ``set_frame_rate``
    calls) on int16 samples (channels, S): linear interpolation on 32-bit-scaled integers, truncated.

    Output k reads input n = ceil(k*I/O) and n-1 (I, O = the rates divided by their gcd; sample -1 is 0) with
    weights (O-d, d)/O, d = n*O - k*I; there are floor((S-1)*O/I) + 1 outputs.
    """
    if rate == target:
        return x
    g = math.gcd(rate, target)
    step_in, step_out = rate // g, target // g
    n_in = x.shape[-1]
    if n_in == 0:
        return x[..., :0]
    k = np.arange((n_in - 1) * step_out // step_in + 1, dtype=np.int64)
    n = (k * step_in + step_out - 1) // step_out
    d = (n * step_out - k * step_in).astype(np.float64)
    wide = x.astype(np.int64) << 16  # audioop works on samples scaled to 32 bits
    cur = wide[..., n].astype(np.float64)
    prev = np.where(n > 0, wide[..., np.maximum(n - 1, 0)], 0).astype(np.float64)
    out = np.trunc((prev * d + cur * (step_out - d)) / step_out).astype(np.int64)
    return (out >> 16).astype(np.int16)


def mix_to_mono_int16(x: np.ndarray) -> np.ndarray:
    """pydub's ``set_channels(1)`` on int16 (channels, S): stereo via ``audioop.tomono(.., 0.5, 0.5)`` (floor of
    the mean); more channels: the sum of each channel floor-divided by the channel count."""
    if x.shape[0] == 1:
        return x[0]
    if x.shape[0] == 2:
        return np.floor(x[0].astype(np.float64) * 0.5 + x[1].astype(np.float64) * 0.5).astype(np.int16)
    return (x.astype(np.int64) // x.shape[0]).sum(axis=0).astype(np.int16)


def _decode_soundfile_branch(path: Path, cfg: AudioConfig, mono: str) -> np.ndarray:
    data, rate = read_audio(path, max_seconds=cfg.max_windows * cfg.window_seconds, dtype="float64")
    # Only float files can exceed [-1, 1]; they are scaled by their peak over all channels before anything else.
    peak = float(np.abs(data).max())
    if peak > 1.0:
        data = data / peak
    wave = data[0] if mono in ("af2", "first") else data.mean(axis=0)
    if not np.any(wave):
        raise AudioError(path, "silent")
    return resample_soxr_hq(np.ascontiguousarray(wave), rate, cfg.sample_rate)


def _decode_pydub_branch(path: Path, cfg: AudioConfig, mono: str) -> np.ndarray:
    max_seconds = cfg.max_windows * cfg.window_seconds
    # A little more than max_seconds is enough to apply pydub's rule below.
    # No seek: ffmpeg decodes the stream from its start.
    data, rate = read_audio(path, max_seconds=max_seconds + 0.01, dtype="float32", seek_start=False)
    # pydub keeps the first max_seconds only when the clip is longer (its length in ms, rounded).
    if round(1000 * data.shape[1] / rate) > 1000 * max_seconds:
        data = data[:, : int(1000 * max_seconds * (rate / 1000.0))]
    # ffmpeg's float -> s16 conversion: round to nearest (even) of x * 2^15, clipped.
    ints = np.clip(np.rint(data * np.float32(32768)), -32768, 32767).astype(np.int16)
    ints = ratecv_int16(ints, rate, cfg.sample_rate)
    if mono == "af2":
        ints = mix_to_mono_int16(ints)
    else:
        ints = ints[0] if mono == "first" else mix_to_mono_int16(ints)
    if ints.size == 0:
        raise AudioError(path, "empty")
    if not np.any(ints):
        raise AudioError(path, "silent")
    return ints.astype(np.float32) / np.iinfo(np.int16).max


def load_clip(path: str | Path, cfg: AudioConfig = AudioConfig(), mono: str = "af2") -> torch.Tensor:
    """A clip as AF2 sees it: float32 tensor (samples,) at ``cfg.sample_rate``, peak-normalised, int16-quantised.

    ``mono="af2"`` does what the official loader does for this file name (the first channel, or for ``.mp3``
    names pydub's channel mix); ``"first"`` keeps channel 0, ``"mean"`` averages the channels.
    Raises ``AudioError`` (missing / unreadable / empty / silent).
    """
    if mono not in MONO_CHOICES:
        raise ValueError(f"mono must be one of {MONO_CHOICES}, got {mono!r}")
    path = Path(path)
    if official_branch(path) == "pydub":
        wave = _decode_pydub_branch(path, cfg, mono)
    else:
        wave = _decode_soundfile_branch(path, cfg, mono)
    return torch.from_numpy(af2_normalise(wave))


def af2_normalise(wave: np.ndarray) -> np.ndarray:
    """AF2's peak normalisation (in the wave's own dtype, as the official code), then the float -> int16 -> float
    round trip of its window loader (on float64, truncating toward zero). Returns float32."""
    lo, hi = wave.min(), wave.max()
    if lo >= 0:
        # Official quirk: an all-non-negative signal is stretched to [-1, 1].
        wave = 2 * wave / abs(hi) - 1.0
    else:
        wave = wave / max(abs(hi), abs(lo))
    ints = (np.clip(wave.astype(np.float64), -1.0, 1.0) * 32767.0).astype(np.int16)
    return (ints / 32767.0).astype(np.float32)


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


def pad_to_longest(windows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack sequences of different lengths: clips' windows (L_i, W), their log-mels (L_i, frames, n_mels) or
    clips' encoded tokens (N_i, D).

    ``windows``: list of B tensors (L_i, ...). Returns ``(batch, mask)``: batch (B, Lmax, ...) zero-padded,
    mask (B, Lmax) bool on the CPU, True where an entry is real.
    """
    if not windows:
        raise ValueError("empty batch")
    item = tuple(windows[0].shape[1:])
    if not item or any(tuple(w.shape[1:]) != item for w in windows):
        raise ValueError(f"all items must be (L_i, {', '.join(map(str, item)) or '...'}); got "
                         f"{[tuple(w.shape) for w in windows]}")
    lmax = max(w.shape[0] for w in windows)
    batch = windows[0].new_zeros(len(windows), lmax, *item)
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

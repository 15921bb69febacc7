"""Sound synthesis: each sound of a scene rendered as a signal, mixed over noise, written with DCASE's file quirks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from aqa_utils.data.mini.scenes import Scene, Sound
from aqa_utils.data.mini.vocabulary import SPECIES_BY_NAME

RATES = (16_000, 22_050, 44_100, 48_000)
RATE_WEIGHTS = (0.4, 0.2, 0.2, 0.2)  # mostly 16 kHz keeps the benchmark small; the others exercise resampling


def _fade(x: np.ndarray, n: int) -> np.ndarray:
    n = min(n, len(x) // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
        x[:n] *= ramp
        x[len(x) - n:] *= ramp[::-1]
    return x


def _sweep(freq: np.ndarray, sr: int) -> np.ndarray:
    return np.sin(2 * np.pi * np.cumsum(freq) / sr)


def _pulses(n: int, sr: int, period: float, pulse: np.ndarray) -> np.ndarray:
    """A train of ``pulse`` every ``period`` seconds over n samples."""
    out = np.zeros(n)
    for start in range(int(0.02 * sr), n - len(pulse), max(1, int(period * sr))):
        out[start: start + len(pulse)] += pulse
    return out


def _shaped_noise(rng: np.random.Generator, n: int, sr: int, gain) -> np.ndarray:
    """White noise shaped by ``gain(frequencies)`` in the FFT domain, unit peak. The FFT runs on a power-of-two
    length (arbitrary lengths can have large prime factors and be 100x slower), then is cropped."""
    size = 1 << max(1, (n - 1).bit_length())
    spec = np.fft.rfft(rng.standard_normal(size)) * gain(np.fft.rfftfreq(size, 1 / sr))
    x = np.fft.irfft(spec, size)[:n]
    return x / (np.abs(x).max() + 1e-9)


def _harmonics(f0: np.ndarray | float, t: np.ndarray, sr: int, amps) -> np.ndarray:
    """Sum of harmonics of f0 (a constant or a per-sample track), dropping those above 7 kHz or Nyquist."""
    track = np.broadcast_to(f0, t.shape)
    top = min(7000.0, 0.45 * sr)
    return sum(a * _sweep(h * track, sr) for h, a in enumerate(amps, 1) if h * float(np.max(track)) < top)


def _synth(rng: np.random.Generator, s: Sound, sr: int) -> np.ndarray:
    n = max(1, int(s.duration * sr))
    t = np.arange(n) / sr
    if s.call:
        band = SPECIES_BY_NAME[s.name].band * rng.uniform(0.95, 1.05)
        if s.call == "whistle":
            x = _sweep(band * (0.8 + 0.45 * t / s.duration), sr)
        elif s.call == "moan":
            x = _harmonics(band * (1 + 0.03 * np.sin(2 * np.pi * 3 * t)), t, sr, (1.0, 0.5, 0.25))
        elif s.call == "click train":
            m = max(int(3 * sr / band), int(0.0015 * sr))
            x = 2.0 * _pulses(n, sr, 1 / 15, np.hanning(m) * np.sin(2 * np.pi * band * np.arange(m) / sr))
        else:  # trill: 60 ms down-chirps, ten per second
            m = int(0.06 * sr)
            chirp = np.hanning(m) * _sweep(band * np.linspace(1.3, 1.0, m), sr)
            x = _pulses(n, sr, 0.1, chirp)
    elif s.name == "knock":
        decay = np.exp(-np.arange(int(0.05 * sr)) / (0.012 * sr))
        x = 2.0 * _shaped_noise(rng, n, sr, lambda f: (f > 150) & (f < 600)) * _pulses(n, sr, 0.2, decay)
    elif s.name == "horn":
        x = 0.5 * _harmonics(400.0, t, sr, [h ** -0.5 for h in range(1, 11)])
    elif s.name == "siren":
        tri = 2 * np.abs((t / 0.6) % 1 - 0.5)
        x = _sweep(900 + 600 * tri, sr)
    elif s.name == "bell":
        strike = np.exp(-np.arange(int(0.3 * sr)) / (0.08 * sr))
        ring = sum(np.sin(2 * np.pi * f * np.arange(len(strike)) / sr) for f in (2200, 3100, 4300)) / 2
        x = _pulses(n, sr, 0.3, strike * ring)
    else:  # beep: steady 6 kHz (kept below the ~7 kHz low-pass of 16 kHz MP3)
        x = _sweep(np.full(n, 6000.0), sr)
    return _fade(np.asarray(x, dtype=np.float64), int(0.02 * sr)) * rng.uniform(0.3, 0.5)


def _render(scene: Scene, rng: np.random.Generator, plain: bool) -> tuple[np.ndarray, int, str]:
    """(samples x channels float array, rate, soundfile format); ``plain``: 16 kHz mono WAV, no quirks."""
    sr = RATES[0] if plain else int(rng.choice(RATES, p=RATE_WEIGHTS))
    n = int(scene.duration * sr)
    noise = _shaped_noise(rng, n, sr, lambda f: 1 / np.sqrt(1 + f / 300))  # moderate pink-ish background
    x = noise / (noise.std() + 1e-9) * rng.uniform(0.01, 0.03)
    for s in scene.sounds:
        seg = _synth(rng, s, sr)
        start = int(s.onset * sr)
        seg = seg[: n - start]
        x[start: start + len(seg)] += seg
    x *= rng.uniform(0.5, 0.9) / np.abs(x).max()
    if not plain and rng.random() < 0.2:  # stereo: the second channel is a weaker, delayed, differently noisy copy
        other = 0.6 * np.roll(x, int(rng.integers(5, 40))) + 0.01 * rng.standard_normal(n)
        x = np.stack([x, np.clip(other, -1, 1)], axis=1)
    else:
        x = x[:, None]
    return x, sr, "MP3" if not plain and rng.random() < 0.15 else "WAV"


def write_audio(path: Path, scene: Scene, rng: np.random.Generator, plain: bool = False) -> None:
    data, sr, fmt = _render(scene, rng, plain)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, format=fmt, subtype="MPEG_LAYER_III" if fmt == "MP3" else "PCM_16")

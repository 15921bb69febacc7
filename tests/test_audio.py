"""AF2 audio preprocessing: decoding by content, channel choice, normalisation, windowing."""

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from aqa_utils.audio import (
    AudioError, load_clip, mix_to_mono_int16, num_windows, official_branch, pad_to_longest, ratecv_int16,
    read_audio, resample_soxr_hq, split_windows,
)
from aqa_utils.config import AudioConfig

CFG = AudioConfig()


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)


def dominant_hz(wave: torch.Tensor, sr: int = 16_000) -> float:
    spec = np.abs(np.fft.rfft(wave.numpy()))
    return float(np.fft.rfftfreq(len(wave), 1 / sr)[spec.argmax()])


def test_mp3_data_behind_wav_name_decodes(tmp_path):
    path = tmp_path / "really_mp3.wav"
    sf.write(path, tone(440, 2.0, 22_050), 22_050, format="MP3")
    assert path.read_bytes()[:4] != b"RIFF"
    data, sr = read_audio(path)
    assert sr == 22_050 and data.shape == (1, 44_100) and data.dtype == np.float32
    wave = load_clip(path)
    assert wave.shape == (32_000,) and wave.dtype == torch.float32
    assert abs(dominant_hz(wave) - 440) < 2


def test_48k_stereo_keeps_first_channel(tmp_path):
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([tone(440, 3.0, 48_000), tone(1500, 3.0, 48_000, 0.9)], axis=1), 48_000)
    data, sr = read_audio(path)
    assert (sr, data.shape) == (48_000, (2, 144_000))
    first = load_clip(path)
    assert first.shape == (48_000,)
    assert abs(dominant_hz(first) - 440) < 2
    mean = load_clip(path, mono="mean")
    assert abs(dominant_hz(mean) - 1500) < 2  # the louder second channel dominates the average
    assert torch.equal(load_clip(path, mono="first"), first)  # "af2" (default) = first channel for this name
    with pytest.raises(ValueError):
        load_clip(path, mono="left")


def test_mp3_name_mixes_channels_as_pydub_does(tmp_path):
    # The official loader sends names ending in ".mp3" through pydub, which averages the channels.
    stereo = np.stack([tone(440, 3.0, 48_000), tone(1500, 3.0, 48_000, 0.9)], axis=1)
    path = tmp_path / "stereo.mp3"
    sf.write(path, stereo, 48_000, format="WAV", subtype="PCM_16")  # WAV data behind an .mp3 name
    assert official_branch(path) == "pydub" and official_branch(tmp_path / "x.MP3") == "soundfile"
    mixed = load_clip(path)
    assert abs(dominant_hz(mixed) - 1500) < 2
    spec = np.abs(np.fft.rfft(mixed.numpy()))
    freqs = np.fft.rfftfreq(len(mixed), 1 / 16_000)
    assert spec[np.abs(freqs - 440).argmin()] > 0.3 * spec.max()  # both channels are in the mix
    assert abs(dominant_hz(load_clip(path, mono="first")) - 440) < 2


def test_af2_normalisation_and_int16_round_trip(tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(path, tone(300, 1.0, 16_000, amp=0.1), 16_000, subtype="FLOAT")
    wave = load_clip(path)
    assert torch.isclose(wave.abs().max(), torch.tensor(1.0), atol=1e-4)  # peak-normalised
    assert torch.equal(wave, torch.round(wave * 32767) / 32767)  # on the int16 grid


def test_positive_only_signal_is_stretched_to_minus_one_one(tmp_path):
    # AF2's quirk: if min >= 0 the clip becomes 2 * x / max - 1.
    path = tmp_path / "positive.wav"
    x = np.linspace(0.0, 0.5, 16_000)
    sf.write(path, x, 16_000, subtype="FLOAT")
    wave = load_clip(path)
    assert wave[0].item() == pytest.approx(-1.0, abs=1e-4) and wave[-1].item() == pytest.approx(1.0, abs=1e-4)


def test_float_file_over_full_scale_is_scaled_by_peak(tmp_path):
    path = tmp_path / "hot.wav"
    sf.write(path, tone(300, 1.0, 16_000, amp=3.0), 16_000, subtype="FLOAT")
    wave = load_clip(path)
    assert wave.abs().max().item() == pytest.approx(1.0, abs=1e-4)


def test_only_first_max_windows_are_read(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(200, 3.0, 8_000), 8_000)
    cfg = AudioConfig(window_seconds=1.0, max_windows=2)
    data, _ = read_audio(path, max_seconds=2.0)
    assert data.shape == (1, 16_000)
    assert load_clip(path, cfg).shape == (32_000,)


@pytest.mark.parametrize("write, reason", [
    (None, "missing"),
    (lambda p: p.write_bytes(b"not audio at all" * 20), "unreadable"),
    (lambda p: sf.write(p, np.zeros(0), 16_000), "empty"),
    (lambda p: sf.write(p, np.zeros(16_000), 16_000), "silent"),
])
def test_bad_files_raise_audio_error_naming_file(tmp_path, write, reason):
    path = tmp_path / f"{reason}.wav"
    if write:
        write(path)
    with pytest.raises(AudioError) as err:
        load_clip(path)
    assert err.value.reason == reason
    assert str(path) in str(err.value) and reason in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("seconds, windows", [(9.99, 1), (10.0, 1), (10.01, 2), (25.0, 3), (130.0, 12)])
def test_window_counts(seconds, windows):
    wave = torch.ones(int(round(seconds * 16_000)))
    out, mask = split_windows(wave, CFG)
    assert out.shape == (windows, 160_000) and mask.shape == (windows,) and bool(mask.all())
    assert num_windows(wave.numel()) == windows
    kept = min(wave.numel(), windows * 160_000)
    assert out.flatten()[:kept].sum().item() == kept  # audio first, zero padding after
    assert out.flatten()[kept:].abs().sum().item() == 0


def test_zero_second_clip_is_an_error(tmp_path):
    with pytest.raises(AudioError, match="empty"):
        split_windows(torch.zeros(0), CFG)
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0), 16_000)
    with pytest.raises(AudioError, match="empty"):
        load_clip(path)


def test_pad_to_longest():
    a, b = torch.ones(1, 8), torch.full((3, 8), 2.0)
    batch, mask = pad_to_longest([a, b])
    assert batch.shape == (2, 3, 8) and mask.tolist() == [[True, False, False], [True, True, True]]
    assert batch[0, 1:].abs().sum() == 0 and torch.equal(batch[1], b)
    with pytest.raises(ValueError):
        pad_to_longest([torch.ones(1, 8), torch.ones(1, 9)])
    mels, mask = pad_to_longest([torch.ones(2, 5, 3), torch.ones(1, 5, 3)])  # log-mels (L_i, frames, n_mels)
    assert mels.shape == (2, 2, 5, 3) and mask.tolist() == [[True, True], [True, False]] and mels[1, 1].sum() == 0
    with pytest.raises(ValueError):
        pad_to_longest([torch.ones(1, 5, 3), torch.ones(1, 5, 4)])


# ---------------------------------------------------------------------------------------------------------------
# Equality with NVIDIA's loader (inference_HF_pretrained/inference.py, read_audio + load_audio), rebuilt here from
# its steps with the libraries it calls (soundfile, librosa.resample; pydub's audioop calls for ".mp3" names).

def _pydub_branch_reference(path, seconds: float) -> np.ndarray:
    audioop = pytest.importorskip("audioop")  # stdlib up to Python 3.12; pydub's set_frame_rate / set_channels
    with sf.SoundFile(path) as f:
        rate, channels = f.samplerate, f.channels
        decoded = f.read(dtype="float32", always_2d=True)
    # ffmpeg (not installed here) hands pydub 16-bit samples: the decoder's floats x 2^15, rounded, clipped.
    raw = np.clip(np.rint(decoded * 32768), -32768, 32767).astype("<i2").tobytes()
    if round(1000 * len(decoded) / rate) > seconds * 1000:  # pydub: audio[0 : seconds * 1000] (milliseconds)
        raw = raw[: int(seconds * 1000 * (rate / 1000.0)) * 2 * channels]
    if rate != 16_000:
        raw, _ = audioop.ratecv(raw, 2, channels, rate, 16_000, None)
    if channels == 2:
        raw = audioop.tomono(raw, 2, 0.5, 0.5)
    return np.frombuffer(raw, dtype=np.int16).astype(np.float32) / np.iinfo(np.int16).max


def official_windows(path, max_windows: int = 12, window: int = 160_000) -> np.ndarray:
    seconds = max_windows * 10.0
    if str(path).endswith(".mp3"):
        data = _pydub_branch_reference(path, seconds)
    else:
        with sf.SoundFile(path) as f:
            rate, channels = f.samplerate, f.channels
            f.seek(0)
            data = f.read(min(int(seconds * rate), len(f)))  # float64, 1-D when mono
            if data.max() > 1 or data.min() < -1:
                data = data / max(abs(data.max()), abs(data.min()))
        if rate != 16_000:
            if channels == 1:
                data = librosa.resample(data.flatten(), orig_sr=rate, target_sr=16_000)
            else:
                data = librosa.resample(data.T, orig_sr=rate, target_sr=16_000)[0]
        elif channels != 1:
            data = data.T[0]
    if data.min() >= 0:
        data = 2 * data / abs(data.max()) - 1.0
    else:
        data = data / max(abs(data.max()), abs(data.min()))
    n = len(data)
    count = 1 if n <= window else min(max_windows, 1 + int(np.ceil((n - window) / window)))
    if count * window > n:
        data = np.append(data, np.zeros(count * window - n))
    quantised = ((np.clip(data, -1.0, 1.0) * 32767.0).astype(np.int16) / 32767.0).astype(np.float32)
    return quantised[: count * window].reshape(count, window)


def _test_signal(rate: int, seconds: float, channels: int, peak: float, seed: int) -> np.ndarray:
    """Tones up to just below 8 kHz (where resamplers differ most) plus noise; channel 1 louder than channel 0."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    chans = []
    for c in range(channels):
        x = np.sin(2 * np.pi * 440 * (c + 1) * t) + 0.6 * np.sin(2 * np.pi * 7_900 * t + c) \
            + 0.3 * np.sin(2 * np.pi * min(11_000, 0.45 * rate) * t) + 0.2 * rng.standard_normal(t.size)
        chans.append(x / np.abs(x).max() * peak * (1.0 if c == 0 else 1.3))
    return np.stack(chans, axis=1)


# (file name, soundfile format, subtype, peak of channel 0): the name decides the official branch, not the data.
FORMATS = {
    "wav16": ("clip.wav", "WAV", "PCM_16", 0.7),
    "wavfloat_over_full_scale": ("clip.wav", "WAV", "FLOAT", 1.6),
    "flac24": ("clip.flac", "FLAC", "PCM_24", 0.7),
    "ogg": ("clip.ogg", "OGG", "VORBIS", 0.6),
    "mp3_named_wav": ("clip.wav", "MP3", "MPEG_LAYER_III", 0.6),
    "mp3": ("clip.mp3", "MP3", "MPEG_LAYER_III", 0.6),
    "wav_named_mp3": ("clip.mp3", "WAV", "PCM_16", 0.7),
}


def max_window_difference(path) -> float:
    ours, mask = split_windows(load_clip(path))
    ref = official_windows(path)
    assert tuple(ours.shape) == ref.shape and bool(mask.all())
    return float(np.abs(ours.numpy() - ref).max())


@pytest.mark.parametrize("rate", [16_000, 22_050, 44_100, 48_000])
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("channels", [1, 2])
def test_windows_equal_official_loader(tmp_path, rate, fmt, channels):
    name, container, subtype, peak = FORMATS[fmt]
    path = tmp_path / name
    sf.write(path, _test_signal(rate, 10.6, channels, peak, seed=rate + channels), rate, format=container,
             subtype=subtype)
    assert max_window_difference(path) <= 1e-4


@pytest.mark.parametrize("name", ["long.wav", "long.mp3"])
def test_long_clip_cut_like_official_loader(tmp_path, name):
    path = tmp_path / name
    sf.write(path, _test_signal(44_100, 125.0, 1, 0.7, seed=1), 44_100, format="WAV", subtype="PCM_16")
    assert len(load_clip(path)) == 120 * 16_000
    assert max_window_difference(path) <= 1e-4


def test_positive_only_resampled_clip_equals_official(tmp_path):
    path = tmp_path / "positive.flac"
    sf.write(path, np.abs(_test_signal(22_050, 3.0, 1, 0.5, seed=2)), 22_050, format="FLAC", subtype="PCM_16")
    assert max_window_difference(path) <= 1e-4


def test_resampler_is_librosa_default_soxr_hq():
    x = np.random.default_rng(0).standard_normal(3 * 44_100 + 7)
    for rate in (8_000, 22_050, 44_100, 48_000):
        assert np.array_equal(resample_soxr_hq(x, rate, 16_000), librosa.resample(x, orig_sr=rate, target_sr=16_000))
    assert resample_soxr_hq(x.astype(np.float32), 44_100, 16_000).dtype == np.float32


@pytest.mark.parametrize("rate, target", [(44_100, 16_000), (48_000, 16_000), (22_050, 16_000), (8_000, 16_000),
                                          (11_025, 16_000), (32_000, 16_000)])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_ratecv_equals_audioop(rate, target, channels):
    audioop = pytest.importorskip("audioop")
    rng = np.random.default_rng(rate + channels)
    for n in (1, 2, 5, 4_411):
        x = rng.integers(-32_768, 32_768, size=(n, channels)).astype(np.int16)
        ref, _ = audioop.ratecv(x.tobytes(), 2, channels, rate, target, None)
        ref = np.frombuffer(ref, dtype=np.int16).reshape(-1, channels).T
        ours = ratecv_int16(np.ascontiguousarray(x.T), rate, target)
        assert ours.shape == ref.shape and np.array_equal(ours, ref)


def test_channel_mix_equals_audioop_tomono():
    audioop = pytest.importorskip("audioop")
    x = np.random.default_rng(3).integers(-32_768, 32_768, size=(5_000, 2)).astype(np.int16)
    ref = np.frombuffer(audioop.tomono(x.tobytes(), 2, 0.5, 0.5), dtype=np.int16)
    assert np.array_equal(mix_to_mono_int16(np.ascontiguousarray(x.T)), ref)

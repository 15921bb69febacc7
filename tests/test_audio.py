"""AF2 audio preprocessing: decoding by content, channel choice, normalisation, windowing."""

import numpy as np
import pytest
import soundfile as sf
import torch

from aqa_utils.audio import AudioError, load_clip, num_windows, pad_window_batch, read_audio, split_windows
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
    with pytest.raises(ValueError):
        load_clip(path, mono="left")


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


def test_pad_window_batch():
    a, b = torch.ones(1, 8), torch.full((3, 8), 2.0)
    batch, mask = pad_window_batch([a, b])
    assert batch.shape == (2, 3, 8) and mask.tolist() == [[True, False, False], [True, True, True]]
    assert batch[0, 1:].abs().sum() == 0 and torch.equal(batch[1], b)
    with pytest.raises(ValueError):
        pad_window_batch([torch.ones(1, 8), torch.ones(1, 9)])

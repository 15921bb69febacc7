"""How far our 10 s windows are from NVIDIA's loader, per sample rate, format and channel count.

For each generated clip (tones up to 7.9 kHz plus noise, 10.6 s, the file name decides the official branch),
the official windows are rebuilt from the official steps (``official_windows`` in ``tests/test_audio.py``:
soundfile + ``librosa.resample``, or pydub's ``audioop`` calls for ``.mp3`` names) and compared with

  ours:      ``aqa_utils.audio`` (``split_windows(load_clip(path))``);
  previous:  the loader before issue 17 (soundfile float32, first channel, torchaudio's resampler, float32
             normalisation), kept here only as the baseline.

Reports the max absolute difference of the windows (full scale 1.0). Not a timing benchmark.

    .venv/bin/python benchmarks/front_end_parity.py           # 4 rates x 7 formats x mono/stereo
    .venv/bin/python benchmarks/front_end_parity.py --quick   # 44.1 kHz only
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import common  # noqa: F401  (sys.path, offline switches)
import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from common import ROOT, add_common_args, apply_common_args, out_dir_for, quiet_warnings, write_result

sys.path.insert(0, str(ROOT / "tests"))
from test_audio import FORMATS, _test_signal, official_windows  # noqa: E402  (the tests' reference)

from aqa_utils.audio import load_clip, split_windows  # noqa: E402


def previous_windows(path: Path) -> np.ndarray:
    """The pre-issue-17 loader, for the baseline column."""
    with sf.SoundFile(path) as f:
        rate = f.samplerate
        data = f.read(min(f.frames, 120 * rate), dtype="float32", always_2d=True).T
    peak = float(np.abs(data).max())
    if peak > 1.0:
        data = data / peak
    wave = torch.from_numpy(np.ascontiguousarray(data[0]))
    if rate != 16_000:
        wave = AF.resample(wave, rate, 16_000)
    lo, hi = wave.min(), wave.max()
    wave = 2 * wave / hi.abs() - 1.0 if lo >= 0 else wave / torch.maximum(hi.abs(), lo.abs())
    wave = (wave.clamp(-1.0, 1.0) * 32767.0).to(torch.int16).to(torch.float32) / 32767.0
    return split_windows(wave)[0].numpy()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    args = p.parse_args(argv)
    load_before = apply_common_args(args)
    rates = [44_100] if args.quick else [16_000, 22_050, 44_100, 48_000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, quiet_warnings():
        for rate in rates:
            for fmt, (name, container, subtype, peak) in FORMATS.items():
                for channels in (1, 2):
                    path = Path(tmp) / f"{rate}_{channels}_{fmt}" / name
                    path.parent.mkdir()
                    sf.write(path, _test_signal(rate, 10.6, channels, peak, seed=rate + channels), rate,
                             format=container, subtype=subtype)
                    ref = official_windows(path)
                    ours = split_windows(load_clip(path))[0].numpy()
                    prev = previous_windows(path)
                    row = {"rate": rate, "format": fmt, "name": name, "channels": channels,
                           "ours_max_abs_diff": float(np.abs(ours - ref).max()) if ours.shape == ref.shape else None,
                           "previous_max_abs_diff": float(np.abs(prev - ref).max()) if prev.shape == ref.shape
                           else None}
                    rows.append(row)
                    print(f"{rate:>6} {fmt:<26} ch={channels}  ours {row['ours_max_abs_diff']}  "
                          f"previous {row['previous_max_abs_diff']}", file=sys.stderr)
    worst = max(r["ours_max_abs_diff"] for r in rows)
    notes = [
        "The reference decodes .mp3 names with soundfile (mpg123) where pydub would call ffmpeg, which is not "
        "installed here: the integer steps after decoding are compared, the two MP3 decoders are not.",
        "A previous_max_abs_diff of null means the previous loader produced a different number of windows.",
    ]
    path = write_result("front_end_parity", {"rates": rates, "formats": list(FORMATS), "seconds": 10.6,
                                             "quick": args.quick},
                        {"rows": rows, "ours_worst": worst, "tolerance": 1e-4}, "cpu", notes, load_before,
                        out_dir_for(args))
    print(f"worst ours {worst}  -> {path}")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())

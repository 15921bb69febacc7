"""``download dcase``: the gated DCASE 2025 Task 5 dataset, unpacked into the reader's layout, then validated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from .archives import AUDIO_DIR, QUESTION_DIR, SPLITS, unpack_archives, unpacked_size_needed
from .hub import DownloadError, Hub, HfHub, ensure_space, free_bytes, hub_errors, missing_bytes

DCASE_REPO = "PeacefulData/2025_DCASE_AudioQA_Official"
# The dataset's head commit as the hub API reported it (huggingface.co/api/datasets/<repo>, "sha", lastModified
# 2026-06-04), read through this project's search tools; not verified by a download from here.
DCASE_REVISION = "4334c85189ad01178e0e64eef9272210f8cc4f89"
RECORD_FILE = ".aqa_download.json"
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg")


def check_dcase_layout(root: str | Path, splits: tuple[str, ...] = SPLITS) -> list[str]:
    """What is missing for the reader: question files and audio files in every split."""
    root = Path(root)
    problems = []
    for split in splits:
        qdir, adir = root / QUESTION_DIR / split, root / AUDIO_DIR / split
        if not (qdir.is_dir() and any(qdir.glob("*.json"))):
            problems.append(f"{QUESTION_DIR}/{split}/ has no *.json")
        if not (adir.is_dir() and any(p.suffix.lower() in AUDIO_SUFFIXES for p in adir.iterdir())):
            problems.append(f"{AUDIO_DIR}/{split}/ has no audio files")
    return problems


def download_dcase(dest: str | Path, revision: str | None = None, hub: Hub | None = None,
                   free: Callable[[Path], int] = free_bytes, check_audio: bool = True, log=print) -> int:
    """Fetch, unpack, check the layout and print ``validate-data``'s report. 0 when the layout is complete.

    Validation problems do not fail the command: the real data has known ones (see DCASE2025_TASK5.md), which
    ``--skip-bad-data`` leaves out at train/evaluate time.
    """
    from ..data.dcase import validate_data_cli

    dest = Path(dest)
    hub = hub or HfHub()
    rev = revision or DCASE_REVISION
    token = hub.has_token()
    with hub_errors(DCASE_REPO, "dataset", token, dest):
        listing = hub.listing(DCASE_REPO, "dataset", rev)
        if listing.gated:
            hub.check_access(DCASE_REPO, "dataset")
    need = missing_bytes(dest, listing.files)
    unpack_room = unpacked_size_needed(dest, {f.path: f.size or 0 for f in listing.files})
    log(f"{DCASE_REPO} @ {rev}: {len(listing.files)} files, {need / 1024**3:.1f} GiB to fetch "
        f"+ {unpack_room / 1024**3:.1f} GiB to unpack into {dest}")
    ensure_space(dest, need + unpack_room, free)
    dest.mkdir(parents=True, exist_ok=True)
    with hub_errors(DCASE_REPO, "dataset", token, dest):
        hub.download(DCASE_REPO, "dataset", listing.commit, dest, None)
        unpack_archives(dest, log=log)
    (dest / RECORD_FILE).write_text(json.dumps(
        {"repo": DCASE_REPO, "revision": rev, "commit": listing.commit, "files": len(listing.files)}, indent=1) + "\n")
    problems = check_dcase_layout(dest, ("train", "dev"))
    if problems:
        raise DownloadError(f"{dest} lacks what the reader needs after unpacking: {'; '.join(problems)}")
    for problem in check_dcase_layout(dest, ("eval",)):
        log(f"warning: {problem} (the eval split is needed only for a challenge submission)")
    log("")
    status = validate_data_cli(dest, as_json=False, check_audio=check_audio)
    log(f"\nDCASE data ready in {dest}" + ("" if status == 0 else
        " (the problems above are the data's own: pass --skip-bad-data to train/evaluate to leave them out)")
        + f"\n  export AQA_DCASE_ROOT={dest}")
    return 0

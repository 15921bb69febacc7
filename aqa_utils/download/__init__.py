"""Fetch the released AF2 weights and the DCASE 2025 Task 5 data (the only commands that go online).

``python -m aqa_utils download af2 --size 3b --to DIR`` and ``python -m aqa_utils download dcase --to DIR``.
Modules: ``hub`` (the seam to the Hugging Face Hub and its error messages), ``af2``, ``dcase``, ``archives``
(idempotent unpacking).
"""

from __future__ import annotations

import sys

from .af2 import AF2_PATTERNS, AF2_PRESETS, AF2_REPOS, AF2_REVISIONS, check_af2_layout, download_af2
from .archives import find_archives, unpack_archives
from .dcase import DCASE_REPO, DCASE_REVISION, check_dcase_layout, download_dcase
from .hub import DownloadError, HfHub, Hub, Listing, RemoteFile

__all__ = [
    "AF2_PATTERNS", "AF2_PRESETS", "AF2_REPOS", "AF2_REVISIONS", "DCASE_REPO", "DCASE_REVISION", "DownloadError",
    "HfHub", "Hub", "Listing", "RemoteFile", "check_af2_layout", "check_dcase_layout", "download_af2",
    "download_dcase", "download_cli", "find_archives", "unpack_archives",
]


def download_cli(args, hub: Hub | None = None) -> int:
    """``python -m aqa_utils download``: 0 on success; 1 with a one-line ``error:`` on stderr otherwise."""
    try:
        if args.what == "af2":
            download_af2(args.size, args.to, revision=args.revision, hub=hub)
            return 0
        return download_dcase(args.to, revision=args.revision, hub=hub, check_audio=not args.no_audio_check)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume (finished files are kept)", file=sys.stderr)
        return 130

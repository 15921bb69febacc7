"""Facts that one notebook computes and later ones read back instead of recomputing (the base's validation loss,
parameter counts): each needs torch, peft and laion-clap imported and a model built, which is most of a light
notebook's time.

An entry is keyed by everything that determines it: the caller's inputs, plus this package's source and the
versions of the libraries that build the models. So a changed input, a changed line of code or an upgraded library
computes afresh; nothing stale is read back.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

_LIBRARIES = ("torch", "transformers", "peft", "laion_clap", "safetensors")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of every ``.py`` file of ``aqa_utils`` and of the model libraries' versions."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    for name in _LIBRARIES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{name}={version}\0".encode())
    return digest.hexdigest()


def folder_fingerprint(folder: str | Path) -> list:
    """What identifies a folder of weights without reading them: each file's relative path, size and mtime."""
    root = Path(folder)
    return [[str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns]
            for p in sorted(root.rglob("*")) if p.is_file()]


def remembered(path: Path | None, kind: str, inputs: Any, compute: Callable[[], Any]) -> Any:
    """``compute()``'s JSON-able value, read from ``path`` when an entry of ``kind`` with the same ``inputs`` (and the
    same code) is there, else computed and added. ``path`` None: always computed, nothing written."""
    if path is None:
        return compute()
    key = hashlib.sha256(json.dumps([kind, inputs, code_fingerprint()], sort_keys=True, default=str).encode())
    key = f"{kind}:{key.hexdigest()[:24]}"
    path = Path(path)
    entries = _read(path)
    if key in entries:
        return entries[key]
    value = compute()
    entries = _read(path)  # another notebook may have added entries meanwhile
    entries[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entries, indent=1) + "\n")  # unsorted: a value reads back in its own order
    os.replace(tmp, path)  # a reader never sees half a file
    return value


def _read(path: Path) -> dict:
    """The memo's entries; an unreadable file (cut short by a kill) is treated as empty and rewritten."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}

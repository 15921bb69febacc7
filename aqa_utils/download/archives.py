"""Unpack the DCASE audio archives into the layout the reader expects, idempotently.

Each archive (zip, tar, tar.gz/tgz/xz/bz2; also split into numbered parts such as ``dev.zip.001`` or
``dev.tar.gz.partaa``) is extracted into a temporary folder under the data root, its files are moved into place
with ``os.replace``, and only then is a marker written. An interrupted unpack leaves no marker, so the next run
throws the temporary folder away and redoes that archive; an archive whose marker matches its size and time is
skipped.

Where a file goes: a path inside the archive that already contains ``dcase_2025_question_path/``,
``local_audio_path/`` or ``submission_example/`` keeps its path from there; otherwise ``*.json`` goes to
``dcase_2025_question_path/<split>/`` and audio to ``local_audio_path/<split>/``, the split taken from a folder
inside the archive or else from the archive's own path or name (``train``, ``dev``, ``eval``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..data.layout import AUDIO_DIR, QUESTION_DIR, SPLITS, SUBMISSION_DIR
from .hub import DownloadError

SPLIT_ALIASES = {"development": "dev", "evaluation": "eval", "training": "train"}
AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".m4a"}
MARKER_DIR = ".aqa_unpacked"
TMP_DIR = ".aqa_unpack_tmp"
_SKIP_DIRS = {".cache", MARKER_DIR, TMP_DIR, ".git"}

_ARCHIVE = r"(?:zip|tar|tar\.gz|tgz|tar\.xz|tar\.bz2)"
_WHOLE = re.compile(rf"^.+\.{_ARCHIVE}$", re.I)
_PART = re.compile(rf"^(?P<base>.+\.{_ARCHIVE})\.(?:part)?(?P<n>\d+|[a-z]{{2}})$", re.I)
_SPANNED_ZIP = re.compile(r"^.+\.z\d\d$", re.I)


@dataclass
class Archive:
    """One archive: its name relative to the data root and the file(s) that hold it, in order."""

    name: str
    parts: list[Path]

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.parts)

    @property
    def mtime_ns(self) -> int:
        return max(p.stat().st_mtime_ns for p in self.parts)

    @property
    def is_zip(self) -> bool:
        return self.name.lower().endswith(".zip")


def find_archives(root: Path) -> list[Archive]:
    """Every archive under ``root`` (not inside the hub's cache or our own folders), parts grouped."""
    whole: dict[str, list[Path]] = {}
    parts: dict[str, list[tuple[str, Path]]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if _SPANNED_ZIP.match(name):
                raise DownloadError(f"{rel} is part of a spanned zip (.z01...): join it with `zip -s 0 <name>.zip "
                                    f"--out joined.zip` and rerun, or unpack it by hand into {AUDIO_DIR}/<split>/")
            if _WHOLE.match(name):
                whole[rel] = [path]
            elif m := _PART.match(rel):
                parts.setdefault(m.group("base"), []).append((m.group("n").lower().zfill(8), path))
    found = {name: paths for name, paths in whole.items()}
    for base, numbered in parts.items():
        found[base] = [p for _, p in sorted(numbered)]
    return [Archive(name, paths) for name, paths in sorted(found.items())]


def _split_of(words: list[str]) -> str | None:
    for word in words:
        for token in re.split(r"[^a-z]+", word.lower()):
            if token in SPLITS:
                return token
            if token in SPLIT_ALIASES:
                return SPLIT_ALIASES[token]
    return None


def destination(member: PurePosixPath, archive_name: str) -> PurePosixPath | None:
    """Where an archive member goes, relative to the data root; None for files to leave out (macOS/hidden)."""
    parts = member.parts
    if any(p == "__MACOSX" or p.startswith(".") for p in parts):
        return None
    for anchor in (QUESTION_DIR, AUDIO_DIR, SUBMISSION_DIR):
        if anchor in parts:
            return PurePosixPath(*parts[parts.index(anchor):])
    suffix = member.suffix.lower()
    kind = QUESTION_DIR if suffix == ".json" else AUDIO_DIR if suffix in AUDIO_SUFFIXES else None
    if kind is None:
        return PurePosixPath(f"{Path(archive_name).name}.other", *parts)
    # a folder inside the archive names the split first; else the archive's own folders and name do
    archive_words = list(PurePosixPath(archive_name).parts)
    split = _split_of(list(parts[:-1])) or _split_of(archive_words[::-1])
    if split is None:
        raise DownloadError(f"cannot tell which split {member} in {archive_name} belongs to: unpack that archive "
                            f"by hand into {kind}/<train|dev|eval>/ and rerun")
    return PurePosixPath(kind, split, member.name)


def _marker(root: Path, archive: Archive) -> Path:
    return root / MARKER_DIR / (archive.name.replace("/", "__") + ".json")


def _stamp(archive: Archive) -> dict:
    return {"archive": archive.name, "size": archive.size, "mtime_ns": archive.mtime_ns}


def is_unpacked(root: Path, archive: Archive) -> bool:
    marker = _marker(root, archive)
    try:
        done = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return all(done.get(k) == v for k, v in _stamp(archive).items())


def _extract(archive: Archive, into: Path) -> None:
    source = archive.parts[0]
    if len(archive.parts) > 1:  # numbered parts are byte ranges of one archive: join them first
        source = into.parent / (into.name + ".joined")
        with open(source, "wb") as out:
            for part in archive.parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 16 * 1024**2)
    try:
        if archive.is_zip:
            with zipfile.ZipFile(source) as zf:  # zipfile drops absolute paths and ".." components
                zf.extractall(into)
        else:
            with tarfile.open(source) as tf:
                tf.extractall(into, filter="data")  # refuses links and paths that leave ``into``
    except tarfile.FilterError as err:
        raise DownloadError(f"refused to unpack {archive.name}: {err}; unpack it by hand if you trust it") from err
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise DownloadError(f"{archive.name} is not a readable archive ({err}): delete it and rerun to fetch it "
                            "again") from err
    finally:
        if source != archive.parts[0]:
            source.unlink(missing_ok=True)


def unpack_one(root: Path, archive: Archive) -> int:
    """Extract, move into place, then mark done. Returns the number of files placed."""
    tmp = root / TMP_DIR / archive.name.replace("/", "__")
    shutil.rmtree(tmp, ignore_errors=True)  # the leftovers of an interrupted run
    tmp.mkdir(parents=True)
    try:
        _extract(archive, tmp)
        placed = 0
        for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
            rel = destination(PurePosixPath(path.relative_to(tmp).as_posix()), archive.name)
            if rel is None:
                continue
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)  # atomic on one filesystem; replaces a copy from an interrupted run
            placed += 1
        marker = _marker(root, archive)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({**_stamp(archive), "files": placed}) + "\n")
        return placed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def unpack_archives(root: str | Path, log=print) -> dict[str, int]:
    """Unpack every archive under ``root`` not already unpacked; {archive name: files placed (0 = skipped)}."""
    root = Path(root)
    done: dict[str, int] = {}
    for archive in find_archives(root):
        if is_unpacked(root, archive):
            log(f"  {archive.name}: already unpacked")
            done[archive.name] = 0
            continue
        log(f"  {archive.name}: unpacking ({archive.size / 1024**2:,.0f} MiB)")
        done[archive.name] = unpack_one(root, archive)
    shutil.rmtree(root / TMP_DIR, ignore_errors=True)
    return done


def unpacked_size_needed(root: Path, sizes: dict[str, int]) -> int:
    """Room for unpacking the archives among ``sizes`` (repo path -> bytes) not yet unpacked: about their size."""
    total = 0
    for path, size in sizes.items():
        if _WHOLE.match(Path(path).name):
            name = path
        elif m := _PART.match(path):
            name = m.group("base")
        else:
            continue
        if not (root / MARKER_DIR / (name.replace("/", "__") + ".json")).exists():
            total += size
    return total

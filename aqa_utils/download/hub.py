"""The seam between the download commands and the Hugging Face Hub, and what its failures mean to a user.

Everything that talks to the network goes through a ``Hub``: ``HfHub`` is the real one (huggingface_hub), and the
tests replace it with one that serves local folders or raises the hub's own exceptions. ``hub_errors`` turns those
exceptions (and a full disk) into one-line ``DownloadError`` messages that say what to do.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

GIB = 1024**3
HEADROOM = 512 * 1024**2
"""Free space kept beyond the files themselves (partial files, hub metadata, the filesystem's own needs)."""


class DownloadError(RuntimeError):
    """A download or layout problem; the message is one line that names what to do."""


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int | None = None


@dataclass
class Listing:
    """A repository at one revision: the commit it resolves to and its files."""

    commit: str
    files: list[RemoteFile] = field(default_factory=list)
    gated: bool = False


class Hub(Protocol):
    """What the download commands need from the hub (the tests' seam)."""

    def has_token(self) -> bool: ...

    def listing(self, repo_id: str, repo_type: str, revision: str) -> Listing: ...

    def check_access(self, repo_id: str, repo_type: str) -> None: ...

    def download(self, repo_id: str, repo_type: str, revision: str, local_dir: Path,
                 allow_patterns: list[str] | None) -> None: ...


@contextlib.contextmanager
def _online() -> Iterator[None]:
    """Lift the package's offline switch (``aqa_utils`` sets HF_HUB_OFFLINE=1 on import) for one hub call only."""
    from huggingface_hub import constants

    saved_env = os.environ.get("HF_HUB_OFFLINE")
    saved_const = constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "0"
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved_const
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env


class HfHub:
    """The real hub: huggingface_hub with the usual token (``hf auth login`` / ``HF_TOKEN``)."""

    def has_token(self) -> bool:
        from huggingface_hub import get_token

        return get_token() is not None

    def listing(self, repo_id: str, repo_type: str, revision: str) -> Listing:
        from huggingface_hub import HfApi

        with _online():
            info = HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision, files_metadata=True)
        files = [RemoteFile(s.rfilename, s.size) for s in (info.siblings or [])]
        return Listing(commit=info.sha, files=files, gated=bool(getattr(info, "gated", False)))

    def check_access(self, repo_id: str, repo_type: str) -> None:
        from huggingface_hub import HfApi

        with _online():
            HfApi().auth_check(repo_id, repo_type=repo_type)

    def download(self, repo_id: str, repo_type: str, revision: str, local_dir: Path,
                 allow_patterns: list[str] | None) -> None:
        from huggingface_hub import snapshot_download

        # local_dir: files land at their repo paths; an interrupted file resumes from local_dir/.cache/huggingface.
        with _online():
            snapshot_download(repo_id, repo_type=repo_type, revision=revision, local_dir=local_dir,
                              allow_patterns=allow_patterns)


def _network_error_types() -> tuple[type, ...]:
    """Connection failures of whichever HTTP stack the installed huggingface_hub uses (imported ones only)."""
    kinds: list[type] = [ConnectionError, TimeoutError, socket.gaierror]
    for module, names in (("httpx2", ("TransportError",)), ("httpx", ("TransportError",)),
                          ("requests", ("ConnectionError", "Timeout"))):
        mod = sys.modules.get(module)
        kinds += [getattr(mod, n) for n in names if mod is not None and hasattr(mod, n)]
    try:
        from huggingface_hub.errors import LocalEntryNotFoundError  # snapshot_download's "could not reach the hub"

        kinds.append(LocalEntryNotFoundError)
    except ImportError:
        pass
    return tuple(kinds)


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def explain(err: BaseException, repo_id: str, repo_type: str, has_token: bool, dest: Path) -> str | None:
    """The one-line message for a failure of a hub call, or None if it is none of the known kinds."""
    from huggingface_hub import errors as hf

    url = f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"
    resume = "rerun the same command: finished files are kept and partial ones resume"
    network = _network_error_types()
    for e in _chain(err):
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return f"disk full while writing under {dest}: free space there (or choose another --to), then {resume}"
        if isinstance(e, hf.GatedRepoError):
            if not has_token:
                return (f"{repo_id} is gated and no Hugging Face token was found: run `hf auth login` (or set "
                        f"HF_TOKEN), accept the conditions at {url}, then rerun")
            return (f"access to the gated {repo_id} is not granted to your token: accept the conditions at {url} "
                    f"(logged in as the token's user), then rerun")
        if isinstance(e, hf.RevisionNotFoundError):
            return f"{repo_id} has no such revision: pass --revision with a branch or commit listed at {url}/commits"
        if isinstance(e, hf.RepositoryNotFoundError):
            if not has_token:
                return (f"{repo_id} not found or not visible without a token: run `hf auth login` (or set HF_TOKEN) "
                        f"and check {url}")
            return f"{repo_id} not found or not visible to your token: check the name and your access at {url}"
        if isinstance(e, hf.HfHubHTTPError) and getattr(getattr(e, "response", None), "status_code", None) == 401:
            return "the Hugging Face token was refused: run `hf auth login` again (or fix HF_TOKEN), then rerun"
        if isinstance(e, network):
            return (f"cannot reach the Hugging Face Hub for {repo_id}: check the internet connection "
                    f"(proxy: HTTPS_PROXY; mirror: HF_ENDPOINT), then {resume}")
    return None


@contextlib.contextmanager
def hub_errors(repo_id: str, repo_type: str, has_token: bool, dest: Path) -> Iterator[None]:
    """Re-raise a known failure of the enclosed hub call as a one-line ``DownloadError``."""
    try:
        yield
    except DownloadError:
        raise
    except Exception as err:  # noqa: BLE001 - unknown errors are re-raised unchanged below
        message = explain(err, repo_id, repo_type, has_token, dest)
        if message is None:
            raise
        raise DownloadError(message) from err


def matches(path: str, patterns: list[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatch(path, p) for p in patterns)


def missing_bytes(dest: Path, files: list[RemoteFile]) -> int:
    """Bytes still to fetch: files absent under ``dest`` or of another size (sizes the hub did not give count 0)."""
    total = 0
    for f in files:
        local = dest / f.path
        if f.size and not (local.is_file() and local.stat().st_size == f.size):
            total += f.size
    return total


def free_bytes(path: Path) -> int:
    """Free space on the filesystem that will hold ``path`` (its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def ensure_space(dest: Path, needed: int, free: Callable[[Path], int] = free_bytes) -> None:
    """Refuse to start when ``needed`` bytes (plus headroom) will not fit under ``dest``."""
    available = free(dest)
    if needed and available < needed + HEADROOM:
        raise DownloadError(
            f"not enough disk space under {dest}: about {(needed + HEADROOM) / GIB:.1f} GiB needed, "
            f"{available / GIB:.1f} GiB free; free space there or choose another --to"
        )

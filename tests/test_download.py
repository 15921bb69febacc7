"""``python -m aqa_utils download``: layout checks, unpacking, error messages and the CLI, all offline.

The hub is replaced by ``LocalHub`` (serves a folder the test made, like a hub repository) or by hubs that raise the
hub's own exception classes; nothing here reaches the network.
"""

from __future__ import annotations

import errno
import io
import json
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from aqa_utils.__main__ import build_parser, main
from aqa_utils.download import (
    AF2_REPOS, DCASE_REPO, DownloadError, Listing, RemoteFile, check_af2_layout, check_dcase_layout, download_af2,
    download_cli, download_dcase, find_archives, unpack_archives,
)
from aqa_utils.download import archives, hub as hubmod
from aqa_utils.download.hub import matches

PLENTY = lambda path: 10**13  # noqa: E731 - free space that always suffices


class LocalHub:
    """A hub repository served from a local folder; ``fail`` maps a method name to the exception it raises."""

    def __init__(self, repo_dir: Path, token: bool = True, gated: bool = False, fail: dict | None = None,
                 drop: tuple[str, ...] = ()):
        self.repo_dir, self.token, self.gated, self.fail, self.drop = repo_dir, token, gated, fail or {}, drop
        self.calls: list[str] = []

    def _maybe_fail(self, name):
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    def has_token(self):
        return self.token

    def listing(self, repo_id, repo_type, revision):
        self._maybe_fail("listing")
        files = [RemoteFile(p.relative_to(self.repo_dir).as_posix(), p.stat().st_size)
                 for p in sorted(self.repo_dir.rglob("*")) if p.is_file()]
        return Listing(commit="0123456789abcdef0123456789abcdef01234567", files=files, gated=self.gated)

    def check_access(self, repo_id, repo_type):
        self._maybe_fail("check_access")

    def download(self, repo_id, repo_type, revision, local_dir, allow_patterns):
        self._maybe_fail("download")
        for path in sorted(self.repo_dir.rglob("*")):
            rel = path.relative_to(self.repo_dir).as_posix()
            if path.is_file() and matches(rel, allow_patterns) and rel not in self.drop:
                (local_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, local_dir / rel)


def hub_http_error(code: str, status: int, url: str = "https://huggingface.co/api/datasets/a/b"):
    """The exception huggingface_hub itself raises for a response with this X-Error-Code (built offline)."""
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import hf_raise_for_status

    http = sys.modules[HfHubHTTPError.__mro__[1].__module__.split(".")[0]]
    if http.__name__ == "requests":
        response = http.Response()
        response.status_code, response.url = status, url
        response.headers["X-Error-Code"] = code
        response.request = http.Request("GET", url).prepare()
    else:  # httpx / httpx2
        response = http.Response(status, headers={"X-Error-Code": code}, request=http.Request("GET", url))
    try:
        hf_raise_for_status(response)
    except HfHubHTTPError as err:
        return err
    raise AssertionError("hf_raise_for_status did not raise")


def network_errors() -> list[BaseException]:
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    errs: list[BaseException] = [ConnectionError("[Errno 101] Network is unreachable"),
                                 OfflineModeIsEnabled("offline"), LocalEntryNotFoundError("cannot reach the hub")]
    for name in ("httpx2", "httpx"):
        if name in sys.modules:
            errs.append(sys.modules[name].ConnectError("[Errno -3] Temporary failure in name resolution"))
    return errs


# --- AF2: layout check ---------------------------------------------------------------------------------------


def make_release(folder: Path, chunks=("model_chunk_0", "model_chunk_1"), extras: bool = True) -> Path:
    (folder / "clap_ckpt").mkdir(parents=True)
    (folder / "safe_ckpt").mkdir()
    (folder / "clap_ckpt" / "epoch_16.pt").write_bytes(b"clap" * 10)
    (folder / "safe_ckpt" / "metadata.json").write_text(json.dumps({c: ["some.key"] for c in chunks}))
    for c in chunks:
        (folder / "safe_ckpt" / f"{c}.safetensors").write_bytes(b"x" * 64)
    if extras:
        (folder / "README.md").write_text("card")
        (folder / "LICENSE.md").write_text("licence")
        (folder / "assets").mkdir()
        (folder / "assets" / "af2_arch.png").write_bytes(b"png")
    return folder


def test_layout_constants_match_the_loader():
    from aqa_utils.download import af2
    from aqa_utils.model import checkpoint

    assert af2.CLAP_FILE == checkpoint.CLAP_FILE.as_posix()
    assert af2.SAFE_DIR == checkpoint.SAFE_DIR.as_posix()
    assert af2.CONFIG_FILE == checkpoint.CONFIG_FILE


def test_af2_layout_complete(tmp_path):
    assert check_af2_layout(make_release(tmp_path / "r")) == []


def test_af2_layout_names_every_missing_file(tmp_path):
    folder = make_release(tmp_path / "r")
    (folder / "safe_ckpt" / "model_chunk_1.safetensors").unlink()
    (folder / "clap_ckpt" / "epoch_16.pt").unlink()
    problems = check_af2_layout(folder)
    assert problems == ["clap_ckpt/epoch_16.pt missing",
                        "safe_ckpt/model_chunk_1.safetensors missing (named in safe_ckpt/metadata.json)"]
    (folder / "safe_ckpt" / "metadata.json").unlink()
    assert "safe_ckpt/metadata.json missing" in check_af2_layout(folder)
    assert check_af2_layout(tmp_path / "nothing") == ["clap_ckpt/epoch_16.pt missing",
                                                      "safe_ckpt/metadata.json missing"]


def test_af2_layout_against_the_hub_listing_finds_short_files(tmp_path):
    folder = make_release(tmp_path / "r")
    listed = [RemoteFile("safe_ckpt/model_chunk_0.safetensors", 100), RemoteFile("LICENSE_extra.md", 3)]
    problems = check_af2_layout(folder, listed)
    assert problems == ["safe_ckpt/model_chunk_0.safetensors is 64 bytes, the hub lists 100 (incomplete?)",
                        "LICENSE_extra.md missing"]


def test_af2_layout_unreadable_metadata(tmp_path):
    folder = make_release(tmp_path / "r")
    (folder / "safe_ckpt" / "metadata.json").write_text("{not json")
    assert any(p.startswith("safe_ckpt/metadata.json unreadable") for p in check_af2_layout(folder))


# --- AF2: download through the seam ----------------------------------------------------------------------------


def test_download_af2_from_a_local_hub(tmp_path):
    hub = LocalHub(make_release(tmp_path / "repo"))
    out = tmp_path / "af2"
    assert download_af2("1.5b", out, hub=hub, free=PLENTY, log=lambda *a: None) == out
    assert check_af2_layout(out) == []
    assert (out / "README.md").exists() and (out / "LICENSE.md").exists()
    assert not (out / "assets").exists()  # the card's images are not fetched
    assert json.loads((out / "af2_config.json").read_text())["name"] == "af2-1.5b"
    record = json.loads((out / ".aqa_download.json").read_text())
    assert record["repo"] == AF2_REPOS["1.5b"] and record["commit"] == "0123456789abcdef0123456789abcdef01234567"
    # a rerun is a no-op that still checks the layout
    assert download_af2("1.5b", out, hub=hub, free=PLENTY, log=lambda *a: None) == out


def test_download_af2_reports_what_an_interrupted_download_left_out(tmp_path):
    hub = LocalHub(make_release(tmp_path / "repo"), drop=("safe_ckpt/model_chunk_1.safetensors",))
    with pytest.raises(DownloadError, match=r"safe_ckpt/model_chunk_1.safetensors missing.*rerun to resume"):
        download_af2("3b", tmp_path / "af2", hub=hub, free=PLENTY, log=lambda *a: None)
    assert not (tmp_path / "af2" / "af2_config.json").exists()


def test_download_af2_refuses_a_repo_without_the_release_layout(tmp_path):
    repo = make_release(tmp_path / "repo")
    shutil.rmtree(repo / "clap_ckpt")
    hub = LocalHub(repo)
    with pytest.raises(DownloadError, match=r"has no clap_ckpt/epoch_16.pt: the release layout changed"):
        download_af2("0.5b", tmp_path / "af2", hub=hub, free=PLENTY, log=lambda *a: None)
    assert "download" not in hub.calls


def test_download_af2_checks_free_space_before_downloading(tmp_path):
    hub = LocalHub(make_release(tmp_path / "repo"))
    with pytest.raises(DownloadError, match=r"^not enough disk space under .*GiB free; free space there"):
        download_af2("3b", tmp_path / "af2", hub=hub, free=lambda p: 1000, log=lambda *a: None)
    assert "download" not in hub.calls


# --- error messages, raised by fake hubs with the hub's own exception classes ----------------------------------


@pytest.mark.parametrize("err", network_errors(), ids=lambda e: type(e).__name__)
def test_no_network(tmp_path, err):
    hub = LocalHub(make_release(tmp_path / "repo"), fail={"listing": err})
    with pytest.raises(DownloadError, match=r"^cannot reach the Hugging Face Hub for nvidia/audio-flamingo-2: "
                                            r"check the internet connection") as info:
        download_af2("3b", tmp_path / "af2", hub=hub, free=PLENTY, log=lambda *a: None)
    assert "\n" not in str(info.value)


def test_no_token_for_the_gated_dataset(tmp_path):
    hub = LocalHub(tmp_path, token=False, gated=True, fail={"check_access": hub_http_error("GatedRepo", 401)})
    with pytest.raises(DownloadError, match=r"is gated and no Hugging Face token was found: run `hf auth login`"):
        download_dcase(tmp_path / "d", hub=hub, free=PLENTY, log=lambda *a: None)


def test_gated_access_not_granted(tmp_path):
    hub = LocalHub(tmp_path, token=True, gated=True, fail={"check_access": hub_http_error("GatedRepo", 403)})
    with pytest.raises(DownloadError, match=r"^access to the gated PeacefulData/2025_DCASE_AudioQA_Official is not "
                                            r"granted to your token: accept the conditions at https://huggingface"
                                            r".co/datasets/PeacefulData/2025_DCASE_AudioQA_Official"):
        download_dcase(tmp_path / "d", hub=hub, free=PLENTY, log=lambda *a: None)


def test_gated_af2_repo_not_granted(tmp_path):
    refused = hub_http_error("GatedRepo", 403, url="https://huggingface.co/api/models/a/b")
    hub = LocalHub(make_release(tmp_path / "repo"), gated=True, fail={"check_access": refused})
    with pytest.raises(DownloadError, match=r"accept the conditions at https://huggingface.co/nvidia/audio-flamingo-2 "):
        download_af2("3b", tmp_path / "af2", hub=hub, free=PLENTY, log=lambda *a: None)
    assert "download" not in hub.calls


def test_gated_refusal_during_the_download_itself(tmp_path):
    hub = LocalHub(tmp_path / "repo", token=True, fail={"download": hub_http_error("GatedRepo", 403)})
    (tmp_path / "repo").mkdir()
    with pytest.raises(DownloadError, match=r"is not granted to your token"):
        download_dcase(tmp_path / "d", hub=hub, free=PLENTY, log=lambda *a: None)


def test_unknown_revision_and_repo(tmp_path):
    repo = make_release(tmp_path / "repo")
    hub = LocalHub(repo, fail={"listing": hub_http_error("RevisionNotFound", 404)})
    with pytest.raises(DownloadError, match=r"has no such revision: pass --revision"):
        download_af2("3b", tmp_path / "af2", revision="nope", hub=hub, free=PLENTY, log=lambda *a: None)
    hub = LocalHub(repo, fail={"listing": hub_http_error("RepoNotFound", 404)})
    with pytest.raises(DownloadError, match=r"not found or not visible to your token"):
        download_af2("3b", tmp_path / "af2", hub=hub, free=PLENTY, log=lambda *a: None)


def test_disk_full_while_downloading(tmp_path):
    full = OSError(errno.ENOSPC, "No space left on device")
    hub = LocalHub(make_release(tmp_path / "repo"), fail={"download": full})
    with pytest.raises(DownloadError, match=r"^disk full while writing under .* rerun the same command: finished "
                                            r"files are kept and partial ones resume$"):
        download_af2("3b", tmp_path / "af2", hub=hub, free=PLENTY, log=lambda *a: None)


def test_unknown_errors_pass_through_unchanged(tmp_path):
    hub = LocalHub(make_release(tmp_path / "repo"), fail={"download": ValueError("something else")})
    with pytest.raises(ValueError, match="something else"):
        download_af2("3b", tmp_path / "af2", hub=hub, free=PLENTY, log=lambda *a: None)


def test_the_real_hub_goes_online_only_inside_its_calls():
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    assert before  # the test plugin (and aqa_utils) switch the hub offline
    with hubmod._online():
        assert constants.HF_HUB_OFFLINE is False
    assert constants.HF_HUB_OFFLINE == before


# --- DCASE: unpacking ------------------------------------------------------------------------------------------


def wav_bytes(seconds: float = 0.3, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 440 * t), rate, format="WAV")
    return buf.getvalue()


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def write_tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def question(split: str, clip: str, answer: bool = True) -> bytes:
    q = {"question": "What is heard?", "choice": ["A. Tone", "B. Speech"], "id": clip.removesuffix(".wav"),
         "audio_url": f"../../local_audio_path/{split}/{clip}", "question_type": "audio tagging"}
    if answer:
        q["answer"] = "A. Tone"
    return json.dumps(q).encode()


def make_dcase_repo(repo: Path) -> Path:
    """A hub-like copy of the dataset: questions as plain JSON, audio in zip / tar.gz / two-part zip archives."""
    wav = wav_bytes()
    for split, clip in (("train", "fold1_a.wav"), ("dev", "audio_0001.wav"), ("eval", "whale_01.wav")):
        qdir = repo / "dcase_2025_question_path" / split
        qdir.mkdir(parents=True)
        (qdir / f"{split}_aqa_1.json").write_bytes(question(split, clip, answer=split != "eval"))
    write_tar(repo / "local_audio_path" / "train.tar.gz", {"fold1_a.wav": wav})  # flat: split from the name
    write_zip(repo / "local_audio_path" / "dev_audio.zip", {"dev/audio_0001.wav": wav, "__MACOSX/._x": b"junk"})
    write_zip(tmp := repo / "eval_whole.zip", {"local_audio_path/eval/whale_01.wav": wav})
    data = tmp.read_bytes()
    tmp.unlink()
    (repo / "local_audio_path" / "eval.zip.001").write_bytes(data[: len(data) // 2])
    (repo / "local_audio_path" / "eval.zip.002").write_bytes(data[len(data) // 2:])
    (repo / "submission_example").mkdir()
    (repo / "submission_example" / "submission.csv").write_text("question,answer\n")
    return repo


def test_destination_rules():
    from pathlib import PurePosixPath as P

    d = archives.destination
    assert d(P("dev/a.wav"), "local_audio_path/audio.zip") == P("local_audio_path/dev/a.wav")
    assert d(P("a.wav"), "local_audio_path/dev_audio.zip") == P("local_audio_path/dev/a.wav")
    assert d(P("x/y/a.WAV"), "local_audio_path/train/part1.tar") == P("local_audio_path/train/a.WAV")
    assert d(P("evaluation/q.json"), "q.zip") == P("dcase_2025_question_path/eval/q.json")
    assert d(P("root/local_audio_path/dev/a.wav"), "all.zip") == P("local_audio_path/dev/a.wav")
    assert d(P("__MACOSX/dev/._a.wav"), "dev.zip") is None
    assert d(P("notes.txt"), "dev.zip") == P("dev.zip.other/notes.txt")
    with pytest.raises(DownloadError, match=r"cannot tell which split a.wav in audio.zip belongs to"):
        d(P("a.wav"), "audio.zip")


def test_find_archives_groups_parts(tmp_path):
    repo = make_dcase_repo(tmp_path / "repo")
    found = {a.name: [p.name for p in a.parts] for a in find_archives(repo)}
    assert found == {"local_audio_path/dev_audio.zip": ["dev_audio.zip"],
                     "local_audio_path/eval.zip": ["eval.zip.001", "eval.zip.002"],
                     "local_audio_path/train.tar.gz": ["train.tar.gz"]}


def test_unpack_zip_and_tar_into_the_reader_layout_then_rerun_is_a_no_op(tmp_path):
    root = make_dcase_repo(tmp_path / "repo")
    placed = unpack_archives(root, log=lambda *a: None)
    assert placed == {"local_audio_path/dev_audio.zip": 1, "local_audio_path/eval.zip": 1,
                      "local_audio_path/train.tar.gz": 1}
    for rel in ("local_audio_path/train/fold1_a.wav", "local_audio_path/dev/audio_0001.wav",
                "local_audio_path/eval/whale_01.wav"):
        assert (root / rel).read_bytes() == wav_bytes()
    assert not (root / "__MACOSX").exists() and not (root / archives.TMP_DIR).exists()
    assert check_dcase_layout(root) == []
    stamp = (root / "local_audio_path/dev/audio_0001.wav").stat().st_mtime_ns
    assert unpack_archives(root, log=lambda *a: None) == dict.fromkeys(placed, 0)
    assert (root / "local_audio_path/dev/audio_0001.wav").stat().st_mtime_ns == stamp


def test_a_changed_archive_is_unpacked_again(tmp_path):
    root = make_dcase_repo(tmp_path / "repo")
    unpack_archives(root, log=lambda *a: None)
    write_zip(root / "local_audio_path" / "dev_audio.zip", {"dev/audio_0001.wav": b"new", "dev/audio_0002.wav": b"2"})
    placed = unpack_archives(root, log=lambda *a: None)
    assert placed["local_audio_path/dev_audio.zip"] == 2 and placed["local_audio_path/train.tar.gz"] == 0
    assert (root / "local_audio_path/dev/audio_0001.wav").read_bytes() == b"new"


def test_an_interrupted_unpack_is_redone_cleanly(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    write_zip(root / "local_audio_path" / "dev.zip", {f"c{i}.wav": bytes([i]) * 10 for i in range(4)})
    real_replace, moved = archives.os.replace, []

    def crash_after_two(src, dst):
        if len(moved) == 2:
            raise KeyboardInterrupt
        moved.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(archives.os, "replace", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        unpack_archives(root, log=lambda *a: None)
    monkeypatch.setattr(archives.os, "replace", real_replace)
    markers = root / archives.MARKER_DIR
    assert not markers.exists() or not any(markers.iterdir())  # no marker: the archive counts as not unpacked
    # a hard kill would also leave the temporary folder behind, with half-extracted files in it
    stale = root / archives.TMP_DIR / "local_audio_path__dev.zip"
    stale.mkdir(parents=True)
    (stale / "c9.wav").write_bytes(b"half")
    assert unpack_archives(root, log=lambda *a: None) == {"local_audio_path/dev.zip": 4}
    assert sorted(p.name for p in (root / "local_audio_path" / "dev").iterdir()) == [f"c{i}.wav" for i in range(4)]
    assert (root / "local_audio_path/dev/c3.wav").read_bytes() == bytes([3]) * 10
    assert not (root / archives.TMP_DIR).exists()


def test_a_corrupt_archive_says_to_fetch_it_again(tmp_path):
    (tmp_path / "local_audio_path").mkdir()
    (tmp_path / "local_audio_path" / "dev.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DownloadError, match=r"dev.zip is not a readable archive .*delete it and rerun"):
        unpack_archives(tmp_path, log=lambda *a: None)


def test_tar_members_that_leave_the_folder_are_refused(tmp_path):
    write_tar(tmp_path / "local_audio_path" / "dev.tar", {"../../evil.wav": b"x"}, mode="w")
    with pytest.raises(DownloadError, match=r"refused to unpack local_audio_path/dev.tar: .*evil"):
        unpack_archives(tmp_path, log=lambda *a: None)
    assert not (tmp_path.parent / "evil.wav").exists()


# --- DCASE: the whole command through the seam -----------------------------------------------------------------


def test_download_dcase_end_to_end_and_rerun(tmp_path, capsys):
    hub = LocalHub(make_dcase_repo(tmp_path / "repo"), gated=True)
    out = tmp_path / "dcase"
    assert download_dcase(out, hub=hub, free=PLENTY) == 0
    text = capsys.readouterr().out
    assert "dev: 1 question files, 1 loadable" in text and "No problems found." in text
    assert f"DCASE data ready in {out}" in text
    assert hub.calls == ["listing", "check_access", "download"]
    assert json.loads((out / ".aqa_download.json").read_text())["repo"] == DCASE_REPO
    from aqa_utils.data.dcase import load_split

    assert [q.qid for q in load_split(out, "dev").questions] == ["dev_aqa_1"]
    assert download_dcase(out, hub=hub, free=PLENTY) == 0
    assert text.count("unpacking") == 3 and "already unpacked" in capsys.readouterr().out


def test_download_dcase_prints_the_data_problems_but_succeeds(tmp_path, capsys):
    repo = make_dcase_repo(tmp_path / "repo")
    bad = json.loads(question("dev", "audio_0001.wav"))
    (repo / "dcase_2025_question_path" / "dev" / "dev_aqa_2.json").write_text(json.dumps({**bad, "answer": "Cat"}))
    assert download_dcase(tmp_path / "d", hub=LocalHub(repo), free=PLENTY, check_audio=False) == 0
    text = capsys.readouterr().out
    assert "answer_not_in_choices: 1" in text and "--skip-bad-data" in text


def test_download_dcase_names_a_split_the_unpacking_did_not_provide(tmp_path):
    repo = make_dcase_repo(tmp_path / "repo")
    (repo / "local_audio_path" / "train.tar.gz").unlink()
    with pytest.raises(DownloadError, match=r"lacks what the reader needs after unpacking: local_audio_path/train/ "
                                            r"has no audio files"):
        download_dcase(tmp_path / "d", hub=LocalHub(repo), free=PLENTY, log=lambda *a: None)


def test_download_dcase_counts_unpacking_room_in_the_space_check(tmp_path):
    repo = make_dcase_repo(tmp_path / "repo")
    total = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file())
    archived = sum(p.stat().st_size for p in (repo / "local_audio_path").iterdir())
    free = lambda p: total + archived // 2 + hubmod.HEADROOM  # noqa: E731 - enough to fetch, not to unpack
    hub = LocalHub(repo)
    with pytest.raises(DownloadError, match="not enough disk space"):
        download_dcase(tmp_path / "d", hub=hub, free=free, log=lambda *a: None)
    assert "download" not in hub.calls


def test_disk_full_while_unpacking(tmp_path, monkeypatch):
    hub = LocalHub(make_dcase_repo(tmp_path / "repo"))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(archives, "_extract", full)
    with pytest.raises(DownloadError, match="^disk full while writing under"):
        download_dcase(tmp_path / "d", hub=hub, free=PLENTY, log=lambda *a: None)


# --- CLI ---------------------------------------------------------------------------------------------------------


def test_cli_arguments():
    parser = build_parser()
    args = parser.parse_args(["download", "af2", "--size", "1.5b", "--to", "w", "--revision", "abc"])
    assert (args.command, args.what, args.size, args.to, args.revision) == ("download", "af2", "1.5b", "w", "abc")
    args = parser.parse_args(["download", "af2", "--to", "w"])
    assert args.size == "3b" and args.revision is None
    args = parser.parse_args(["download", "dcase", "--to", "d", "--no-audio-check"])
    assert (args.what, args.to, args.no_audio_check, args.revision) == ("dcase", "d", True, None)
    for bad in (["download"], ["download", "af2"], ["download", "af2", "--size", "7b", "--to", "w"],
                ["download", "dcase"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_cli_prints_one_error_line_and_exits_1(tmp_path, capsys, monkeypatch):
    from aqa_utils.download import af2

    class Offline(LocalHub):
        def __init__(self):
            super().__init__(tmp_path, fail={"listing": ConnectionError("unreachable")})

    monkeypatch.setattr(af2, "HfHub", Offline)  # what the CLI builds when no hub is given
    assert main(["download", "af2", "--size", "0.5b", "--to", str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the Hugging Face Hub for nvidia/audio-flamingo-2-0.5B")
    assert err.count("\n") == 1


def test_cli_download_dcase_with_a_local_hub(tmp_path, capsys):
    args = build_parser().parse_args(["download", "dcase", "--to", str(tmp_path / "d"), "--no-audio-check"])
    hub = LocalHub(make_dcase_repo(tmp_path / "repo"))
    assert download_cli(args, hub=hub) == 0
    assert "No problems found." in capsys.readouterr().out

"""``aqa_utils.memo``: a fact computed once is read back while its inputs and the code are the same, and computed
afresh otherwise; a damaged memo file loses only its entries."""

from __future__ import annotations

import json

from aqa_utils import memo


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {"value": self.calls}


def test_a_fact_is_computed_once_per_inputs(tmp_path):
    path, compute = tmp_path / "memo.json", Counter()
    assert memo.remembered(path, "loss", {"split": "val"}, compute) == {"value": 1}
    assert memo.remembered(path, "loss", {"split": "val"}, compute) == {"value": 1}  # read back, not computed
    assert memo.remembered(path, "loss", {"split": "dev"}, compute) == {"value": 2}  # other inputs
    assert memo.remembered(path, "count", {"split": "val"}, compute) == {"value": 3}  # another kind of fact
    assert compute.calls == 3 and len(json.loads(path.read_text())) == 3


def test_a_value_reads_back_as_computed_in_its_own_key_order(tmp_path):
    value = {"clap": 2, "audio_transformer": 1, "lm": {"z": 1, "a": 2}}
    assert memo.remembered(tmp_path / "memo.json", "table", 1, lambda: value) == value
    back = memo.remembered(tmp_path / "memo.json", "table", 1, lambda: None)
    assert back == value and list(back) == list(value) and list(back["lm"]) == ["z", "a"]


def test_changed_code_computes_afresh(tmp_path, monkeypatch):
    path, compute = tmp_path / "memo.json", Counter()
    memo.remembered(path, "loss", 1, compute)
    monkeypatch.setattr(memo, "code_fingerprint", lambda: "another version of the package")
    assert memo.remembered(path, "loss", 1, compute) == {"value": 2}


def test_the_code_fingerprint_follows_the_package_source(tmp_path, monkeypatch):
    fingerprint = memo.code_fingerprint()
    assert len(fingerprint) == 64 and fingerprint == memo.code_fingerprint()
    package = tmp_path / "aqa_utils"
    package.mkdir()
    (package / "memo.py").write_text("x = 1\n")
    monkeypatch.setattr(memo, "__file__", str(package / "memo.py"))
    memo.code_fingerprint.cache_clear()
    try:
        before = memo.code_fingerprint()
        (package / "memo.py").write_text("x = 2\n")
        memo.code_fingerprint.cache_clear()
        assert memo.code_fingerprint() != before
    finally:
        monkeypatch.undo()
        memo.code_fingerprint.cache_clear()


def test_a_damaged_file_is_rewritten_and_no_path_means_no_memo(tmp_path):
    path, compute = tmp_path / "memo.json", Counter()
    path.write_text('{"loss:')  # cut short by a kill
    assert memo.remembered(path, "loss", 1, compute) == {"value": 1}
    assert memo.remembered(path, "loss", 1, compute) == {"value": 1}
    assert memo.remembered(None, "loss", 1, compute) == {"value": 2}
    assert memo.remembered(None, "loss", 1, compute) == {"value": 3}
    assert not list(tmp_path.glob("*.tmp"))


def test_a_folder_fingerprint_changes_with_its_files(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "a.bin").write_bytes(b"12")
    before = memo.folder_fingerprint(tmp_path / "w")
    (tmp_path / "w" / "a.bin").write_bytes(b"123")
    assert memo.folder_fingerprint(tmp_path / "w") != before

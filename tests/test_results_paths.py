"""Nothing committed under results/ holds an absolute path of the machine that wrote it, and the writers store
repo-relative paths (``config.portable``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from aqa_utils.config import portable

REPO = Path(__file__).resolve().parents[1]
# An absolute path under the usual roots of a machine (a word or dot just before the slash is not a path start).
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:tmp|work|home|root|Users)/")


def committed_results() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "results"], cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / line for line in out.stdout.splitlines()]


def machine_paths(text: str) -> list[str]:
    hits = [m.start() for pattern in (MACHINE_PATH, re.compile(re.escape(str(REPO)))) for m in pattern.finditer(text)]
    return sorted({text[i:i + 60].split('"')[0] for i in hits})


def test_the_scan_sees_a_machine_path():
    assert machine_paths('{"out_dir": "/home/user/aqa/results/runs/lora_r8"}') == ["/home/user/aqa/results/runs/lora_r8"]
    assert machine_paths(f'"{REPO}/data/mini"') != [] and machine_paths('"x": "/tmp/abc"') == ["/tmp/abc"]
    assert machine_paths('{"out_dir": "results/runs/lora_r8", "ratio": "3/work/4", "url": "a.b/home/c"}') == []


def test_no_committed_result_holds_a_machine_path():
    files = committed_results()
    assert any(f.name == "config.json" for f in files)  # the scan sees the run files
    found = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # figures, adapter weights
            continue
        hits = machine_paths(text)
        if hits:
            found[path.relative_to(REPO).as_posix()] = hits[:3]
    assert found == {}, "absolute paths in committed results (python tools/relativise_results.py fixes run files)"


def test_portable_writes_paths_under_the_repo_relative_and_leaves_the_rest(tmp_path):
    root = tmp_path / "repo"
    value = {"out_dir": str(root / "results" / "runs" / "r8"), "data_root": "/data/dcase",
             "nested": [str(root / "work" / "base" / "af2-tiny"), "runs/x", 3, None], "name": "af2-tiny"}
    assert portable(value, root) == {"out_dir": "results/runs/r8", "data_root": "/data/dcase",
                                     "nested": ["work/base/af2-tiny", "runs/x", 3, None], "name": "af2-tiny"}
    assert portable(str(tmp_path / "repository"), root) == str(tmp_path / "repository")  # a prefix, not a parent


def test_a_run_written_with_relative_paths_is_still_recognised_as_finished(tmp_path, monkeypatch, capfd):
    """The trainer writes config.json through ``portable``; the workbook's reuse check compares the same way."""
    from aqa_utils import config as config_module
    from aqa_utils.config import ModelConfig, TrainConfig
    from aqa_utils.data.mini import make_mini_benchmark
    from aqa_utils.training.examples import corpus_fingerprint
    from aqa_utils.workbook import finished_with

    monkeypatch.setattr(config_module, "repo_root", lambda: tmp_path)
    make_mini_benchmark(tmp_path / "data" / "mini", n_train=30, n_dev=6, n_eval=3, n_captions_train=3,
                        n_captions_dev=3, audio=False)
    run = tmp_path / "results" / "runs" / "lora_r8"
    run.mkdir(parents=True)
    cfg = TrainConfig(data_root=str(tmp_path / "data" / "mini"), out_dir=str(run))
    model = ModelConfig.preset(cfg.model)
    capfd.readouterr()
    corpus = corpus_fingerprint(cfg)
    assert capfd.readouterr().err == ""  # a silent look: no progress bar in a notebook that only reuses runs
    (run / "config.json").write_text(json.dumps({"train": portable(cfg.to_dict()), "model": model.to_dict(),
                                                 "corpus": corpus}))
    (run / "summary.json").write_text("{}")
    assert json.loads((run / "config.json").read_text())["train"]["out_dir"] == "results/runs/lora_r8"
    assert not finished_with(run, cfg)  # a record without its weights (a clean clone's base stages)
    (run / "final").mkdir()
    assert finished_with(run, cfg)
    assert not finished_with(run, TrainConfig(data_root=cfg.data_root, out_dir=cfg.out_dir, lr=cfg.lr / 2))
    # From random weights, the run is also tied to the preset's architecture: a run of the same name with AF2's whole
    # vocabulary (af2-tiny before its vocabulary was trimmed) is another run.
    model.lm.vocab_size, model.lm.vocabulary = 151_669, None
    (run / "config.json").write_text(json.dumps({"train": portable(cfg.to_dict()), "model": model.to_dict(),
                                                 "corpus": corpus}))
    assert not finished_with(run, cfg)


def test_a_run_of_other_corpus_code_or_without_a_corpus_record_is_not_reused(tmp_path, monkeypatch):
    """Same settings, other corpus: the tiny base's stage-3 corpus once changed its lines (b05557c) without a setting
    changing, and an old base was then reused silently. The run's recorded corpus fingerprint now tells them apart;
    a record from before fingerprints is not reused either."""
    from aqa_utils.config import ModelConfig, TrainConfig
    from aqa_utils.data.mini import make_mini_benchmark
    from aqa_utils.training import examples
    from aqa_utils.workbook import finished_with

    root = make_mini_benchmark(tmp_path / "mini", n_train=30, n_dev=6, n_eval=3, n_captions_train=8,
                               n_captions_dev=3, audio=False)
    run = tmp_path / "base_facts"
    (run / "final").mkdir(parents=True)
    (run / "summary.json").write_text("{}")
    cfg = TrainConfig(mode="full", corpus="captions+copy+facts", data_root=str(root), out_dir=str(run))
    record = {"train": portable(cfg.to_dict()), "model": ModelConfig.preset(cfg.model).to_dict()}
    (run / "config.json").write_text(json.dumps(record))
    assert not finished_with(run, cfg)  # no corpus recorded: nothing proves it the same
    (run / "config.json").write_text(json.dumps({**record, "corpus": examples.corpus_fingerprint(cfg)}))
    assert finished_with(run, cfg)
    assert examples.corpus_fingerprint(cfg) != examples.corpus_fingerprint(TrainConfig(
        mode="full", corpus="captions+copy", data_root=str(root)))  # the fingerprint sees the lines, not a name
    # The fact lines asked as open questions again (the design before b05557c): the same settings, another corpus.
    monkeypatch.setattr(examples, "fact_question", lambda rng: ("what is the pitch?", ["low", "high"], 0))
    examples._fingerprint.cache_clear()  # computed once per process; new code comes with a new process
    try:
        assert not finished_with(run, cfg)
    finally:
        monkeypatch.undo()
        examples._fingerprint.cache_clear()
    assert finished_with(run, cfg)


def test_executed_notebooks_record_repo_relative_paths(tmp_path, monkeypatch):
    import nbformat

    from aqa_utils import config as config_module
    from aqa_utils.workbook.reproduce import _tidy_executed

    monkeypatch.setattr(config_module, "repo_root", lambda: tmp_path)
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"input_path": str(tmp_path / "notebooks" / "05.ipynb"), "duration": 1.5,
                                "output_path": str(tmp_path / "results" / "notebooks" / "05.ipynb")}
    nb.metadata["widgets"] = {"state": "bytes"}
    path = tmp_path / "05.ipynb"
    nbformat.write(nb, path)
    _tidy_executed(path)
    meta = nbformat.read(path, as_version=4).metadata
    assert "widgets" not in meta and meta["papermill"] == {"input_path": "notebooks/05.ipynb", "duration": 1.5,
                                                           "output_path": "results/notebooks/05.ipynb"}


def test_the_fix_script_rewrites_only_paths_under_the_old_root():
    sys.path.insert(0, str(REPO / "tools"))
    import relativise_results

    value = {"a": "/old/repo/results/x", "b": ["/old/repository/y", "/old/repo"], "c": 1}
    assert relativise_results.relativise(value, "/old/repo") == {"a": "results/x", "b": ["/old/repository/y",
                                                                                          "/old/repo"], "c": 1}

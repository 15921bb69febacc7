"""``make reproduce`` as a user lives it: an interrupted stage resumes to the same weights, a changed one starts over,
the notebook kernels talk over IPC (no unencrypted-TCP warning) and relay their text bars (widgets when run by hand),
Ctrl-C stops the kernel, and the summary is read from the evaluation files.

Cost: the training tests pretrain the CI profile's tiny base twice (4 + 4 + 2 steps each; a full-mode step takes
seconds) and run its 3-step LoRA five times (two of them the learning-rate sweep); the kernel tests start two
Python kernels.
"""

from __future__ import annotations

import _thread
import io
import json
import os
import shutil
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import torch
from safetensors.torch import load_file

from aqa_utils import workbook
from aqa_utils.training import Trainer, read_metrics
from aqa_utils.workbook import steps

reproduce = sys.modules["aqa_utils.workbook.reproduce"]  # the package re-exports the function under the same name


def ci_profile(root: Path, mini: Path):
    """The CI profile with its base, runs and results under ``root`` and a shared mini benchmark."""
    return replace(workbook.profile("ci"), mini_root=mini, base_dir=root / "base" / "af2-tiny",
                   runs_dir=root / "runs", results_dir=root / "results", memo_path=root / "memo.json")


class CtrlC:
    """Patches ``Trainer.train_step`` to raise KeyboardInterrupt (what Ctrl-C raises) before step ``at`` of the
    runs on ``corpus``, once; counts the trainers built per corpus."""

    def __init__(self, monkeypatch, corpus: str | None = None, at: int = 0):
        self.built, self.fired = [], False
        real_step, real_init = Trainer.train_step, Trainer.__init__

        def train_step(trainer, step):
            if not self.fired and trainer.cfg.corpus == corpus and step == at:
                self.fired = True
                raise KeyboardInterrupt
            return real_step(trainer, step)

        def init(trainer, cfg, **kw):
            self.built.append(cfg.corpus)
            real_init(trainer, cfg, **kw)

        monkeypatch.setattr(Trainer, "train_step", train_step)
        monkeypatch.setattr(Trainer, "__init__", init)


def tensors(folder: Path) -> dict[str, torch.Tensor]:
    return {f"{f.name}:{k}": v for f in sorted(folder.rglob("*.safetensors")) for k, v in load_file(str(f)).items()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a and a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The CI base and a LoRA r=8 run, trained without interruption."""
    root = tmp_path_factory.mktemp("reference")
    prof = ci_profile(root, root / "mini")
    steps.ensure_base(prof)
    steps.train_lora(prof, prof.lora_system(8))
    return prof


def test_base_interrupted_in_pretraining_resumes_to_the_same_weights(uninterrupted, tmp_path, monkeypatch):
    prof = ci_profile(tmp_path, uninterrupted.mini_root)
    stage1 = Path(prof.base_config().out_dir)
    assert prof.base_config().save_every == 2 and prof.base_config().max_steps == 4
    with pytest.raises(KeyboardInterrupt):
        CtrlC(monkeypatch, corpus="captions", at=3)  # stage 1 has saved step 2 and trained step 3
        steps.ensure_base(prof)
    assert (stage1 / "checkpoints" / "latest").read_text() == "step_000002"
    assert not (stage1 / "summary.json").exists() and not prof.base_dir.exists()
    assert (Path(prof.encoder_config().out_dir) / "summary.json").exists()

    again = CtrlC(monkeypatch)
    steps.ensure_base(prof)
    # stage 0 reused, stage 1 resumed, stages 2 and 3 trained
    assert again.built == ["captions", "captions+copy", "captions+copy+facts"]
    assert json.loads((stage1 / "summary.json").read_text())["resumed"]
    assert not (stage1 / "checkpoints").exists()  # a finished run keeps only final/
    assert_same(tensors(uninterrupted.base_dir), tensors(prof.base_dir))
    assert read_metrics(stage1) == read_metrics(uninterrupted.base_config().out_dir)


def test_a_clean_clone_retrains_base_stages_whose_record_is_committed_without_weights(uninterrupted, tmp_path,
                                                                                       monkeypatch):
    """A clone has each base stage's config.json, metrics.jsonl and summary.json (committed) but not its final/
    (ignored: too large). Such a record is not a finished stage: every stage trains again, to the same weights and
    a rewritten (not appended) log."""
    prof = ci_profile(tmp_path, uninterrupted.mini_root)
    for done, cfg in zip(uninterrupted.base_stages(), prof.base_stages()):
        Path(cfg.out_dir).mkdir(parents=True)
        for name in ("config.json", "metrics.jsonl", "summary.json"):  # as a clone has them: in its own folders
            text = (Path(done.out_dir) / name).read_text()
            for ref, here in ((uninterrupted.runs_dir, prof.runs_dir), (uninterrupted.base_dir, prof.base_dir)):
                text = text.replace(str(ref), str(here))
            (Path(cfg.out_dir) / name).write_text(text)
        assert steps.same_config(Path(cfg.out_dir), cfg) and not steps.finished_with(Path(cfg.out_dir), cfg)
    built = CtrlC(monkeypatch)
    steps.ensure_base(prof)
    assert built.built == [cfg.corpus for cfg in prof.base_stages()]
    assert_same(tensors(uninterrupted.base_dir), tensors(prof.base_dir))
    for done, cfg in zip(uninterrupted.base_stages(), prof.base_stages()):
        assert read_metrics(cfg.out_dir) == read_metrics(done.out_dir)


def test_the_base_validation_loss_is_computed_once_per_base_for_every_rank(uninterrupted, monkeypatch):
    """Each rank's notebook and notebook 06 draw the base's validation loss: the first computes it, the others read
    it back. A fresh adapter is the base exactly (B = 0), so every rank's config gives the same loss; new base weights
    compute it afresh."""
    from aqa_utils.analysis import training_figures

    prof = replace(uninterrupted, memo_path=uninterrupted.runs_dir.parent / "memo_val.json")
    r8, r16 = prof.lora_system(8), prof.lora_system(16)
    direct = {s: training_figures.base_validation_loss(prof.lora_config(s)) for s in (r8, r16)}
    assert direct[r8] == direct[r16]
    calls = []
    real = training_figures.base_validation_loss
    monkeypatch.setattr(training_figures, "base_validation_loss", lambda cfg: calls.append(cfg) or real(cfg))
    assert workbook.base_validation_loss(prof, r8) == direct[r8] and len(calls) == 1
    assert workbook.base_validation_loss(prof, r16) == direct[r8] and len(calls) == 1  # read back
    weights = next((prof.base_dir / "safe_ckpt").rglob("*.safetensors"))
    times = (weights.stat().st_atime_ns, weights.stat().st_mtime_ns)
    os.utime(weights, ns=(times[0], times[1] + 1_000_000))  # rewritten weights
    try:
        assert workbook.base_validation_loss(prof, r16) == direct[r8] and len(calls) == 2  # another base: computed
    finally:
        os.utime(weights, ns=times)  # the fixture's base, as the later tests expect it


def test_the_sweep_run_at_the_chosen_rate_becomes_the_first_system(uninterrupted):
    """The fixture's LoRA r=8 seed 0 was not trained twice: the learning-rate sweep's run at the chosen rate (same
    base, data, recipe, rank and seed) was adopted as it, its recorded run folder renamed."""
    from aqa_utils.config import portable
    from aqa_utils.workbook.lr_sweep import sweep_system

    prof = uninterrupted
    sweep = workbook.choose_lr(prof)  # the saved sweep, current: nothing is trained again
    assert sweep["chosen"] in prof.lr_grid and set(sweep["runs"]) == {f"{lr:g}" for lr in prof.lr_grid}
    first = prof.lora_system(prof.ranks[0], prof.seeds[0])
    assert_same(tensors(sweep_system(prof, sweep["chosen"]).adapter), tensors(first.adapter))
    saved = json.loads((first.run_dir / "config.json").read_text())["train"]
    assert saved["out_dir"] == portable(str(first.run_dir)) and saved["lr"] == sweep["chosen"]
    assert steps.finished_with(first.run_dir, prof.lora_config(first, sweep["chosen"]))
    assert not (first.run_dir / "checkpoints").exists()


def test_lora_interrupted_resumes_and_a_changed_config_starts_over(uninterrupted, tmp_path, monkeypatch):
    # Its finished base is reused; the adapter goes to a run folder of its own. The recipe's rate is fixed at the
    # sweep's choice (no sweep: a run folder of the sweep's rank and seed would otherwise adopt the sweep's run).
    chosen = workbook.choose_lr(uninterrupted)["chosen"]
    prof = replace(uninterrupted, lr_grid=(), lora_recipe=replace(uninterrupted.lora_recipe, lr=chosen))
    system = workbook.System(8, 0, tmp_path / "lora_r8")
    with pytest.raises(KeyboardInterrupt):
        CtrlC(monkeypatch, corpus="questions", at=2)  # after the checkpoint of step 2
        steps.train_lora(prof, system)
    assert (system.run_dir / "checkpoints" / "latest").read_text() == "step_000002"
    summary = steps.train_lora(prof, system)
    assert summary["resumed"] and summary["steps"] == 3
    assert_same(tensors(uninterrupted.lora_system(8).adapter), tensors(system.adapter))

    # A new learning rate: the interrupted run of the old one is thrown away, not resumed.
    with pytest.raises(KeyboardInterrupt):
        CtrlC(monkeypatch, corpus="questions", at=2)
        steps.train_lora(prof, system, retrain=True)
    changed = replace(prof, lora_recipe=replace(prof.lora_recipe, lr=prof.lora_recipe.lr / 2))
    summary = steps.train_lora(changed, system)
    assert not summary["resumed"] and summary["steps"] == 3
    # Checkpointing more or less often is not a change of what is trained: the finished run is reused.
    sparser = replace(changed, lora_recipe=replace(changed.lora_recipe, save_every=0))
    assert steps.finished_with(system.run_dir, sparser.lora_config(system))


def test_runs_and_evaluations_side_by_side_equal_those_made_one_at_a_time(uninterrupted, tmp_path, monkeypatch):
    """Workers (AQA_JOBS=2) train the same adapter bytes as this process did (the fixture's r=8, one job at a time)
    and measure the same predictions: every job runs on one torch thread wherever it runs."""
    chosen = workbook.choose_lr(uninterrupted)["chosen"]
    prof = replace(uninterrupted, lr_grid=(), lora_recipe=replace(uninterrupted.lora_recipe, lr=chosen),
                   ranks=(8, 16), seeds=(0,), runs_dir=tmp_path / "runs", results_dir=tmp_path / "side")
    monkeypatch.setenv("AQA_JOBS", "2")
    runs = steps.train_loras(prof)
    assert [s.rank for s in runs] == [8, 16] and all(r["steps"] == 3 for r in runs.values())
    assert_same(tensors(uninterrupted.lora_system(8).adapter), tensors(prof.lora_system(8).adapter))
    side = steps.evaluate_systems(prof, split="dev", mode="score", progress=False)
    monkeypatch.setenv("AQA_JOBS", "1")
    alone = steps.evaluate_systems(replace(prof, results_dir=tmp_path / "alone"), split="dev", mode="score",
                                   progress=False)
    assert list(side) == list(alone) == prof.systems()
    for system in side:
        assert side[system].predictions.equals(alone[system].predictions)
        assert side[system].metrics == alone[system].metrics


# ------------------------------------------------------------------------------------------------ the kernels
def tiny_notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell("STEPS = 1")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


def kernel_environment(monkeypatch) -> None:
    """``reproduce._kernel_environment``, undone after the test."""
    for name in ("AQA_PROGRESS", "PYTHONPATH"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    reproduce._kernel_environment()


def test_kernels_talk_over_ipc_and_relay_their_text_bars(tmp_path, capfd, monkeypatch):
    kernel_environment(monkeypatch)
    src = tiny_notebook(
        tmp_path / "t.ipynb",
        "import sys, aqa_utils\nfrom ipykernel.kernelapp import IPKernelApp\n"
        "print(IPKernelApp.instance().transport, aqa_utils.__file__)\nprint('a kernel warning', file=sys.stderr)",
        "from aqa_utils.progress import tqdm\nfor _ in tqdm(range(STEPS), desc='steps', mininterval=0):\n    pass",
        "import os\nfrom tqdm.notebook import tqdm_notebook\ndel os.environ['AQA_PROGRESS']  # as in JupyterLab\n"
        "print('widget' if isinstance(tqdm(total=1), tqdm_notebook) else 'text')")
    seconds = reproduce.run_notebook(src, tmp_path / "out.ipynb", {"STEPS": 5}, "[1/1] t.ipynb")
    err = capfd.readouterr().err
    assert seconds > 0
    assert "without encryption" not in err and "TCP" not in err
    assert "a kernel warning" in err and "steps: 100%" in err and "5/5" in err  # the kernel's stderr, relayed
    assert "[1/1] t.ipynb: 100%" in err and "5/5" in err  # the cell bar: parameters, injected parameters, 3 cells
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    transport, package = out.cells[2].outputs[0]["text"].split()
    assert transport == "ipc"
    assert Path(package).resolve() == Path(workbook.__file__).resolve().parents[1] / "__init__.py"
    bar = [o for o in out.cells[3].outputs if o.get("name") == "stderr"]
    assert len(bar) == 1 and "\r" not in bar[0]["text"] and bar[0]["text"].startswith("steps: 100%")
    assert [o["text"] for o in out.cells[4].outputs if o.get("name") == "stdout"] == ["widget\n"]


def test_ctrl_c_stops_the_kernel(tmp_path, monkeypatch):
    # Ctrl-C as a terminal delivers it: Python's own SIGINT handler raising KeyboardInterrupt in the main thread.
    # Pinned here because a Python started with SIGINT ignored (e.g. a background job of a non-interactive shell)
    # keeps it ignored, and ``_thread.interrupt_main`` then does nothing: started that way, this test without the
    # pin fails with "DID NOT RAISE" (measured), as the whole suite did twice on clean clones.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    kernel_environment(monkeypatch)
    pid_file = tmp_path / "kernel.pid"
    src = tiny_notebook(tmp_path / "t.ipynb", f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))",
                        "time.sleep(120)")

    def ctrl_c_once_the_kernel_sleeps():
        while not pid_file.exists() or not pid_file.read_text():
            threading.Event().wait(0.1)
        threading.Event().wait(1.0)
        _thread.interrupt_main()

    threading.Thread(target=ctrl_c_once_the_kernel_sleeps, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            reproduce.run_notebook(src, tmp_path / "out.ipynb", {}, "t", file=io.StringIO())
    finally:
        signal.signal(signal.SIGINT, previous)
    with pytest.raises(ProcessLookupError):  # killed and reaped before run_notebook returned
        os.kill(int(pid_file.read_text()), 0)


def test_kernel_stderr_keeps_finished_lines_and_shows_the_redrawn_one():
    live, out = SimpleNamespace(shown=[]), io.StringIO()
    live.set_description_str = live.shown.append
    relay = reproduce.KernelStderr(live, out)
    for chunk in ("\rsteps:  10%", "\rsteps:  20%", "|##  |\r", "steps: 100%\n", "plain line\n", "\rbatches 1/2",
                  "\r     \r"):
        relay.write(chunk)
    assert out.getvalue().splitlines() == ["steps: 100%", "plain line"]
    assert live.shown == ["steps:  10%", "steps:  20%", "steps:  20%|##  |", "", "", "batches 1/2", ""]


# ------------------------------------------------------------------------------------------------ the summary
def test_summary_reads_the_run_summary(tmp_path):
    from aqa_utils.workbook.summary import write_summary

    prof = ci_profile(tmp_path, tmp_path / "mini")
    qs = [f"q{i}" for i in range(40)]

    def ev(k):  # system k answers a share 0.5 + k / 10 of every question's orderings right
        share = 0.5 + k / 10
        rob = {"mean_accuracy": share, "mean_accuracy_ci": [share - 0.1, share + 0.1], "consistent_accuracy": share,
               "unparsed_rate": 0.0, "position_tv": 0.0, "per_question": {q: share for q in qs}}
        rep = {"micro": share, "counts": {"scored": len(qs)}, "chance": 0.3}
        return SimpleNamespace(metrics={"score": rep}, robustness={"score": rob})

    write_summary(prof, {system: ev(k) for k, system in enumerate(prof.systems())})
    (prof.results_dir / "README.md").write_text("# results\n")
    text = "\n".join(reproduce.summary(prof, 125.0))
    rows = {line.split("  ")[0]: line for line in text.splitlines()}
    assert "50.0 [40.0, 60.0]" in rows["base"] and "80.0 [70.0, 90.0]" in rows["lora_r32_s0"]
    assert "LoRA r=8 minus base (mean over seeds, paired 95% interval): score +10.0 [+10.0, +10.0]" in text
    assert "rank saturation: grows above r=8" in text  # r=16 and r=32 answer more of every question
    assert "total time: 2 min 05 s" in text
    assert f"results: {prof.results_dir / 'README.md'}" in text
    assert "figures:" not in text and "HTML:" not in text  # printed only once they exist
    (prof.results_dir / "figures").mkdir()
    assert "figures:" in "\n".join(reproduce.summary(prof, 1.0))


def test_summary_without_evaluations_says_so(tmp_path):
    text = "\n".join(reproduce.summary(ci_profile(tmp_path, tmp_path / "mini"), 3.0))
    assert "no evaluation summary at" in text and "rank saturation" not in text


@pytest.mark.parametrize("profile_name", ["quick", "ci"])
def test_papermill_parameters_reach_every_notebook(profile_name):
    """What papermill injects must win over the notebook's defaults: it puts its cell after the one tagged
    "parameters" (at the top when none is), so an untagged defaults cell would reset PROFILE and run the stage with
    the wrong profile (07 once ran the full profile's base pretraining inside a quick run)."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    for name, _, params in reproduce.stages(workbook.profile(profile_name)):
        nb = parameterize_notebook(load_notebook_node(str(reproduce.repo_root() / "notebooks" / name)), params)
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        # Run the cells up to the last parameters cell (the notebook's and papermill's both start so).
        last = max(i for i, src in enumerate(code) if src.startswith("# Parameters"))
        scope: dict = {}
        for src in code[: last + 1]:
            exec(src, scope)
        assert {k: scope.get(k) for k in params} == params, name


def test_make_help_lists_every_target_with_a_line():
    import re
    import subprocess

    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.M).group(1).split()
    shown = subprocess.run(["make", "-s", "help"], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    described = {line.split()[1]: line.split(None, 2)[2] for line in shown}
    assert sorted(described) == sorted(phony)
    assert all(len(text) > 10 for text in described.values())


def test_reproduce_numbers_the_stages_times_them_and_stops_cleanly_on_ctrl_c(tmp_path, monkeypatch, capsys):
    prof = ci_profile(tmp_path, tmp_path / "mini")
    monkeypatch.setattr(reproduce, "profile", lambda name: prof)
    for name in ("AQA_PROGRESS", "PYTHONPATH"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    labels = []

    def run_notebook(src, dst, parameters, label):
        labels.append((label, src.name, parameters))
        if interrupt_at == len(labels):
            raise KeyboardInterrupt
        nbformat.write(nbformat.v4.new_notebook(), dst)  # what papermill leaves: the executed copy
        return 2.0

    monkeypatch.setattr(reproduce, "run_notebook", run_notebook)
    interrupt_at = 3
    assert reproduce.reproduce("ci") == 130
    assert "interrupted in 03_base_pretraining.ipynb" in capsys.readouterr().err
    assert not (prof.results_dir / "reproduce_timings.json").exists()

    labels.clear()
    interrupt_at = None
    assert reproduce.reproduce("ci") == 0
    assert [label for label, _, _ in labels][2:5] == ["[3/9] 03_base_pretraining.ipynb",
                                                      "[4/9] 04_lora_finetuning_r8.ipynb",
                                                      "[5/9] 04_lora_finetuning_r16.ipynb"]
    assert labels[3][1:] == ("04_lora_finetuning.ipynb", {"PROFILE": "ci", "RANK": 8})
    timings = json.loads((prof.results_dir / "reproduce_timings.json").read_text())
    assert len(timings) == 9 and set(timings.values()) == {2.0}
    assert "== summary (ci profile" in capsys.readouterr().out
    assert len(list((prof.results_dir / "html").glob("*.html"))) == 9  # the static export of every copy


def test_a_failing_notebook_names_its_cell_and_executed_copy(tmp_path, monkeypatch, capsys):
    from papermill.exceptions import PapermillExecutionError

    prof = ci_profile(tmp_path, tmp_path / "mini")
    monkeypatch.setattr(reproduce, "profile", lambda name: prof)
    for name in ("AQA_PROGRESS", "PYTHONPATH"):
        monkeypatch.setenv(name, os.environ.get(name, ""))

    def run_notebook(src, dst, parameters, label):
        if src.name.startswith("02_"):
            raise PapermillExecutionError(3, 4, "NameError: name 'x' is not defined", "NameError",
                                          "name 'x' is not defined", [])
        return 1.0

    monkeypatch.setattr(reproduce, "run_notebook", run_notebook)
    assert reproduce.reproduce("ci") == 1
    err = capsys.readouterr().err
    assert "02_augmentation.ipynb failed in cell [4]" in err and "name 'x' is not defined" in err
    assert str(prof.results_dir / "notebooks" / "02_augmentation.ipynb") in err


def test_a_lost_base_folder_is_rebuilt_from_its_finished_stages_keeping_the_adapters(uninterrupted):
    """Deleting work/base (or a fresh machine with the runs copied over) is not a new base: the copy is made again from
    the stages' final/ weights, and the LoRA runs and the sweep trained on it are kept (they were deleted once)."""
    from aqa_utils.workbook.lr_sweep import FILE

    prof = uninterrupted
    system = prof.lora_system(8)
    before, adapter = tensors(prof.base_dir), tensors(system.adapter)
    assert (prof.results_dir / FILE).exists()
    shutil.rmtree(prof.base_dir)
    steps.ensure_base(prof)
    assert_same(before, tensors(prof.base_dir))
    assert_same(adapter, tensors(system.adapter)) and (prof.results_dir / FILE).exists()
    assert steps.finished_with(system.run_dir, prof.lora_config(system, workbook.choose_lr(prof)["chosen"]))

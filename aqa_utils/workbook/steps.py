"""The workbook's steps, shared by the notebooks and ``python -m aqa_utils reproduce``: data, base, LoRA, evaluation.

Each step reuses what an earlier run finished with exactly the same configuration and corpus, so rerunning a
notebook (or ``make reproduce``) only does what changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from aqa_utils.config import ModelConfig, portable
from aqa_utils.parallel import one_thread, run_jobs
from aqa_utils.workbook.profile import Profile, System

if TYPE_CHECKING:
    import pandas as pd


def ensure_mini_benchmark(prof: Profile) -> Path:
    """Generate the mini benchmark for this profile (reused when already there with the same manifest); the data
    root the questions are read from (the real DCASE folder when the profile points at it)."""
    if prof.real_data and prof.real_checkpoint:
        return prof.data_root
    from aqa_utils.data.mini import make_mini_benchmark

    try:
        make_mini_benchmark(prof.mini_root, seed=0, **prof.mini_sizes)  # the tiny base's caption corpus lives here
    except FileExistsError:
        # A benchmark of another version or size, written by an older workbook: everything trained or measured on
        # it is stale (a run's config names the data folder, not what is in it), so it goes with the data.
        print(f"{portable(str(prof.mini_root))}: a different mini benchmark; regenerating it and dropping the runs "
              "and evaluations made on it", file=sys.stderr)
        for stale in (prof.runs_dir, prof.base_dir, prof.results_dir / "eval"):
            shutil.rmtree(stale, ignore_errors=True)
        make_mini_benchmark(prof.mini_root, seed=0, overwrite=True, **prof.mini_sizes)
    return prof.data_root


# How often a run checkpoints and whether it draws a bar do not change what it trains.
_NOT_RESULTS = ("save_every", "progress")


def _result_settings(train: dict) -> dict:
    return {k: v for k, v in json.loads(json.dumps(train)).items() if k not in _NOT_RESULTS}


def same_config(run: Path, cfg) -> bool:
    """``run`` was started with ``cfg`` (up to settings that do not change the result) on the same corpus. A run
    from random weights must also have the architecture its preset names today (af2-tiny's vocabulary once changed
    under that name); a run from a checkpoint inherits the checkpoint's, and ``ensure_base`` retrains every stage
    after a retrained one. The corpus is compared by what it renders (``corpus_fingerprint``): new corpus code
    under the same settings (the tiny base's corpus changed so in b05557c) is another run."""
    from aqa_utils.training.examples import corpus_fingerprint

    path = run / "config.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    # the trainer writes repo-relative paths (config.portable)
    if saved.get("train") is None or _result_settings(saved["train"]) != _result_settings(portable(cfg.to_dict())):
        return False
    preset = json.loads(json.dumps(ModelConfig.resolve(cfg.model).to_dict()))
    if cfg.checkpoint is None and saved.get("model") != preset:
        return False
    try:
        return saved.get("corpus") == corpus_fingerprint(cfg)
    except (OSError, ValueError):  # no data yet to render the corpus from (DataError is a ValueError): not proven
        return False


def finished_with(run: Path, cfg) -> bool:
    """A run folder holds a finished run of this configuration (``same_config``) and its weights, so reusing it is
    safe. The weights are checked because a clean clone has the committed record of a base stage (config, metrics,
    summary) without its ``final/``, which is too large to commit."""
    return (run / "summary.json").exists() and (run / "final").is_dir() and same_config(run, cfg)


def _fit(cfg, clap_tokens=None) -> Path:
    """Train ``cfg`` to the end; its ``final/``. A run of the same configuration that was interrupted (Ctrl-C, a
    kill) continues from its last checkpoint (``Trainer.fit`` resumes exactly); anything else in the folder (another
    configuration, or a record without a checkpoint to resume) is thrown away. A finished run keeps only
    ``final/``: the checkpoints served only to resume it. ``clap_tokens``: see ``Trainer``."""
    from aqa_utils.training import Trainer

    run = Path(cfg.out_dir)
    if not same_config(run, cfg) or not (run / "checkpoints" / "latest").exists():
        shutil.rmtree(run, ignore_errors=True)  # nothing to resume: a record left here would describe another run
    else:
        print(f"{run.name}: resuming the interrupted run from {(run / 'checkpoints' / 'latest').read_text()}",
              file=sys.stderr)  # a status line: make reproduce relays the kernels' stderr to the terminal
    Trainer(cfg, clap_tokens=clap_tokens).fit()
    shutil.rmtree(run / "checkpoints", ignore_errors=True)
    return run / "final"


def ensure_base(prof: Profile, retrain: bool = False) -> Path:
    """The base checkpoint (release layout): the real AF2 when given, else the tiny base pretrained here in four
    stages (``Profile.base_stages``; stage 0: CLAP learns to tag sounds; stage 1: CLAP frozen, the rest learns
    captions and generic presence questions; stage 2: the same mixed with text-only copy questions; stage 3: and
    with text-only species facts). A finished stage is reused, an interrupted one resumed (see ``_fit``)."""
    if prof.real_checkpoint:
        return prof.base_dir
    stages = prof.base_stages()
    if (prof.base_dir / "safe_ckpt" / "metadata.json").exists() and not retrain and \
            all(finished_with(Path(cfg.out_dir), cfg) for cfg in stages):
        return prof.base_dir
    ensure_mini_benchmark(prof)
    from aqa_utils.training.objectives import FrozenClapTokens

    final, trained = None, retrain
    clap_tokens = FrozenClapTokens()  # stages 1-3 share stage 0's frozen CLAP: its tokens are computed once
    if retrain:
        _forget_adapters(prof)
    for cfg in stages:
        # A stage trained now invalidates the next one, whose config names the same path for its starting point.
        if trained or not finished_with(Path(cfg.out_dir), cfg):
            if trained:
                shutil.rmtree(cfg.out_dir, ignore_errors=True)
            else:
                _forget_adapters(prof)
            trained = True
            _fit(cfg, clap_tokens)
        final = Path(cfg.out_dir) / "final"
    # Copied beside and renamed: an interrupted copy never looks like a finished base.
    tmp = prof.base_dir.with_name(prof.base_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(final, tmp)
    shutil.rmtree(prof.base_dir, ignore_errors=True)
    os.replace(tmp, prof.base_dir)
    return prof.base_dir


def _forget_adapters(prof: Profile) -> None:
    """Remove the sweep and every adapter: they were trained on a base that is about to change (only then: a base
    folder rebuilt from finished stages is the same base, and its adapters stay)."""
    from aqa_utils.workbook.lr_sweep import forget_sweep

    forget_sweep(prof)
    for system in prof.systems()[1:]:
        shutil.rmtree(system.run_dir, ignore_errors=True)


def base_audio_reliance(prof: Profile, checkpoint: str | Path | None = None, examples: int = 48) -> dict[str, float]:
    """``training.audio_reliance`` of the base on the first ``examples`` caption-corpus dev items that are about
    their clip (captions and presence questions; copy questions answer from the text): loss per answer token with
    their own clips and with other clips'; a model that ignores its audio scores the same on both."""
    from aqa_utils.loading import load_model
    from aqa_utils.training import audio_reliance
    from aqa_utils.training.examples import CaptionExamples

    data = CaptionExamples(prof.mini_root, "dev", train=False)
    about_clip = [i for i in range(len(data)) if data.KINDS[i % len(data.KINDS)] != "copy"][:examples]
    model = load_model(checkpoint or prof.base_dir, device="cpu")
    return audio_reliance(model, [data.get(i, 0) for i in about_clip])


def miniature(prof: Profile) -> bool:
    """The profile's runs are the tiny model's (CPU-sized: run side by side, one thread each); the released AF2's
    fill a GPU and run one at a time."""
    return not prof.real_checkpoint


def run_profile_jobs(prof: Profile, fn: Callable, jobs: dict[str, tuple], desc: str, progress: bool) -> dict:
    """``parallel.run_jobs`` for ``prof``'s runs: the miniature's side by side (alike: a study's runs take about
    equally long), the released AF2's one at a time. Each job's arguments get one more, its own bar flag: on only
    when jobs run one at a time (workers side by side would draw over each other's bars; the overall bar counts
    finished jobs)."""
    side_by_side = miniature(prof)
    bar = progress and not side_by_side
    return run_jobs(fn, {name: (*args, bar) for name, args in jobs.items()}, desc=desc, progress=progress,
                    side_by_side=side_by_side, alike=True)


def train_lora(prof: Profile, system: System, retrain: bool = False) -> dict:
    """LoRA fine-tuning of ``system`` at the recipe's rate, or the one its validation sweep chose
    (``workbook.lr_sweep``); returns the run summary (reuses a finished run unless ``retrain``, resumes an
    interrupted one)."""
    from aqa_utils.workbook.lr_sweep import adopt_sweep_run, recipe_lr

    lr = recipe_lr(prof)
    cfg = prof.lora_config(system, lr)
    if not retrain and lr is not None and not finished_with(system.run_dir, cfg):
        if system.run_dir.exists() and not same_config(system.run_dir, cfg):
            shutil.rmtree(system.run_dir)  # another rate's or base's run: never resumed (see _fit)
        adopt_sweep_run(prof, system, lr)
    if not retrain and finished_with(system.run_dir, cfg):
        return json.loads((system.run_dir / "summary.json").read_text())
    ensure_base(prof)
    if retrain:
        shutil.rmtree(system.run_dir, ignore_errors=True)
    # One thread, as in train_loras' workers, so a run gives the same bits either way (aqa_utils.parallel); the
    # released model's runs keep every thread (and run one at a time).
    with one_thread() if miniature(prof) else contextlib.nullcontext():
        _fit(cfg)
    return json.loads((system.run_dir / "summary.json").read_text())


def _train_job(prof: Profile, system: System, bar: bool) -> dict:
    """``train_lora``, with its step bar or without (side by side, workers would draw over each other's)."""
    recipe = prof.lora_recipe
    return train_lora(replace(prof, lora_recipe=replace(recipe, progress=recipe.progress and bar)), system)


def train_loras(prof: Profile, systems: list[System] | None = None, progress: bool = True) -> dict[System, dict]:
    """Every LoRA system of the profile (or ``systems``) trained, ``parallel.workers`` runs side by side; finished
    runs are reused as by ``train_lora``, which each run is. {system: run summary}."""
    from aqa_utils.workbook.lr_sweep import recipe_lr

    systems = prof.systems()[1:] if systems is None else list(systems)
    ensure_base(prof)
    lr = recipe_lr(prof)  # chosen here, once: the workers only read the base and the sweep's record
    todo = [s for s in systems if not finished_with(s.run_dir, prof.lora_config(s, lr))]
    run_profile_jobs(prof, _train_job, {s.name: (prof, s) for s in todo}, desc="LoRA runs", progress=progress)
    return {s: train_lora(prof, s) for s in systems}  # every run finished now: this only reads the summaries


# The fields of a LoRA run's config that its validation before the first step does not read: the adapter (B = 0, so
# the model is the base exactly), the optimisation and the bookkeeping.
_NOT_VALIDATION = ("lora", "epochs", "max_steps", "grad_accum", "lr", "weight_decay", "warmup_steps", "schedule",
                   "grad_clip", "gradient_checkpointing", "log_every", "eval_every", "eval_per_epoch", "save_every",
                   "skip_bad_data", "out_dir", "progress", "recipe", "train_split")


def base_validation_loss(prof: Profile, system: System) -> float:
    """The base's loss on ``system``'s LoRA validation set (``analysis.training_figures.base_validation_loss``),
    computed once per base and read back by later notebooks (``Profile.memo_path``): each rank's notebook and the
    rank-saturation notebook draw it as their reference line."""
    from aqa_utils.analysis.training_figures import base_validation_loss as compute
    from aqa_utils.memo import folder_fingerprint, remembered

    cfg = prof.lora_config(system)
    inputs = {k: v for k, v in portable(cfg.to_dict()).items() if k not in _NOT_VALIDATION}
    return remembered(prof.memo_path, "base_validation_loss", [inputs, folder_fingerprint(prof.base_dir)],
                      lambda: compute(cfg))


def parameter_table(prof: Profile, model_name: str, lora_rank: int | None = None) -> dict:
    """``params.parameter_table``, read back by later notebooks (``Profile.memo_path``). The first call counts the
    model without LoRA and at every rank of the profile: each rank's notebook asks for its own, and building the
    models costs little once their libraries are imported."""
    from aqa_utils.memo import remembered

    def count(rank: int | None) -> dict:
        from aqa_utils import params  # builds models: torch, peft and laion-clap

        return params.parameter_table(model_name, rank)

    config = ModelConfig.resolve(model_name).to_dict()
    tables = {rank: remembered(prof.memo_path, "parameter_table", [config, rank], lambda rank=rank: count(rank))
              for rank in dict.fromkeys((lora_rank, None, *prof.ranks))}
    return tables[lora_rank]


def load_system(prof: Profile, system: System):
    """The system's model: the base with the system's adapter merged in."""
    from aqa_utils.loading import load_model  # torch, peft and laion-clap: only notebooks that load a model pay

    return load_model(prof.base_dir, system.adapter, model=prof.model if prof.real_checkpoint else None)


def base_tokenizer(prof: Profile):
    """The tokenizer of the profile's base (every system of a profile shares it), without loading any weights; the
    profile's model preset before the base is trained."""
    from aqa_utils.data.prompt import tokenizer_for
    from aqa_utils.model.checkpoint import CONFIG_FILE, folder_config

    saved = not prof.real_checkpoint and (prof.base_dir / CONFIG_FILE).exists()
    return tokenizer_for(folder_config(prof.base_dir, None if saved else prof.model))


def evaluation_dir(prof: Profile, split: str, system: System) -> Path:
    return prof.results_dir / "eval" / split / system.key


def evaluate_systems(prof: Profile, split: str = "dev", mode: str = "both", progress: bool = True) -> dict:
    """Evaluate every system on ``split``, ``parallel.workers`` systems side by side; writes each one's outputs
    under results; {System: EvalResult}."""
    if split == prof.train_split:
        raise ValueError(f"the adapters of recipe {prof.recipe!r} were trained on the {split!r} split: evaluating them "
                         "there measures memory, not skill. Evaluate a held-out split (the local recipe trains on "
                         "train and evaluates dev), or answer the eval split with `python -m aqa_utils evaluate "
                         "--recipe report` for a submission.")
    from aqa_utils.data.dcase import load_split

    questions = load_split(prof.data_root, split).questions  # read and checked once, handed to every job
    systems = prof.systems()
    done = run_profile_jobs(prof, _evaluate_system, {s.name: (prof, s, questions, split, mode) for s in systems},
                            desc=f"evaluating on {split}", progress=progress)
    return {s: done[s.name] for s in systems}


def _evaluate_system(prof: Profile, system: System, questions: list, split: str, mode: str, bar: bool):
    """One system's ``evaluate`` of ``split``'s ``questions``, written to its ``evaluation_dir``: a job of
    ``evaluate_systems`` (``bar``: its batch bar)."""
    from aqa_utils.data.prompt import tokenizer_for
    from aqa_utils.evaluation import EvalSettings, evaluate

    settings = EvalSettings(mode=mode, permutations=prof.eval_permutations, limit=prof.eval_limit,
                            max_new_tokens=prof.eval_max_new_tokens, progress=bar, primary="score")
    model = load_system(prof, system)
    return evaluate(model, tokenizer_for(model), questions, settings,
                    out_dir=evaluation_dir(prof, split, system))


@dataclass
class SavedEvaluation:
    """What ``evaluate`` wrote for one system: ``metrics`` and ``robustness`` {mode: report}, the ``predictions``."""

    metrics: dict
    robustness: dict
    predictions: pd.DataFrame


def saved_evaluations(prof: Profile, split: str = "dev", mode: str = "score") -> dict[System, SavedEvaluation] | None:
    """The evaluations ``evaluate_systems`` last wrote, when every system has one in ``mode`` that is newer than its
    weights (base and adapter); None otherwise."""
    import pandas as pd

    out = {}
    for system in prof.systems():
        folder = evaluation_dir(prof, split, system)
        files = [folder / "metrics.json", folder / "predictions.csv"]
        weights = [prof.base_dir / "safe_ckpt"] + ([] if system.adapter is None else [system.adapter])
        if not all(f.exists() for f in files + weights):
            return None
        if min(f.stat().st_mtime for f in files) < max(w.stat().st_mtime for w in weights):
            return None
        saved = json.loads(files[0].read_text())
        if mode not in saved["metrics"]:
            return None
        out[system] = SavedEvaluation(saved["metrics"], saved.get("robustness") or {}, pd.read_csv(files[1]))
    return out


def saved_correctness(prof: Profile, split: str = "dev") -> dict[str, dict[str, bool]]:
    """{system name: {qid: whether its scored answer is right}} from the current saved evaluations of ``split``
    (``saved_evaluations``, option scoring in the original order); {} when there are none (the demo then scores)."""
    saved = saved_evaluations(prof, split, "score")
    if saved is None:
        return {}
    out = {}
    for system, ev in saved.items():
        table = ev.predictions
        known = table["answer"].notna()
        out[system.name] = dict(zip(table["qid"][known], (table["answer"] == table["pred_score"])[known].astype(bool)))
    return out


def evaluations(prof: Profile, split: str = "dev", mode: str = "score") -> dict:
    """Every system's evaluation in ``mode``: the saved one when it is current (``saved_evaluations``: notebook 05
    has just written it), else evaluated now. Each value has ``metrics`` and ``predictions``."""
    saved = saved_evaluations(prof, split, mode)
    if saved is not None:
        print(f"read the {split} evaluations saved by evaluate_systems (newer than every system's weights)")
        return saved
    print(f"no current saved {split} evaluation for every system: evaluating now")
    return evaluate_systems(prof, split=split, mode=mode, progress=False)

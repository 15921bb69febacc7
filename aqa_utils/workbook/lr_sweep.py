"""The learning rate, chosen on a validation split: never on the split that is reported.

A recipe may list ``lr_grid``. Then the first rank at the first seed is trained once per rate on the recipe's
``train_split`` and each adapter answers the recipe's ``val_split`` (for the mini benchmark ``train.val``, a fifth
of the train clips carved off by ``data.holdout``) in option-scoring mode under the evaluation's K orders; the rate
with the best shuffle-averaged accuracy (the headline metric) trains every system. What was tried and measured is
written to ``results/lr_sweep.json``; a finished sweep is reused while its runs and the base are unchanged.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

from aqa_utils.workbook.profile import Profile, System

FILE = "lr_sweep.json"


def sweep_system(prof: Profile, lr: float) -> System:
    """The run that tries ``lr``: the first rank and seed, in ``runs/lr_sweep/lr_<lr>``."""
    return System(prof.ranks[0], prof.seeds[0], prof.runs_dir / "lr_sweep" / f"lr_{lr:g}")


def forget_sweep(prof: Profile) -> None:
    """Remove the sweep's runs and record (the base changed: they belong to the old one)."""
    shutil.rmtree(prof.runs_dir / "lr_sweep", ignore_errors=True)
    (prof.results_dir / FILE).unlink(missing_ok=True)


def _current(prof: Profile, saved: dict) -> bool:
    from aqa_utils.workbook.steps import finished_with

    path = prof.results_dir / FILE
    runs = [sweep_system(prof, lr) for lr in prof.lr_grid]
    return (saved.get("grid") == list(prof.lr_grid) and saved.get("val_split") == prof.lora_recipe.val_split
            and all(finished_with(s.run_dir, prof.lora_config(s, lr)) for s, lr in zip(runs, prof.lr_grid))
            and all(path.stat().st_mtime >= (s.run_dir / "summary.json").stat().st_mtime for s in runs))


def choose_lr(prof: Profile, progress: bool = True) -> dict:
    """The sweep's record: ``grid``, per rate its ``val`` shuffle-mean accuracy with CI and the run's final
    validation loss, and ``chosen``. Runs the sweep (or what is missing of it) unless a current one is saved."""
    from aqa_utils.data.dcase import load_split
    from aqa_utils.workbook.steps import ensure_base, run_profile_jobs

    if not prof.lr_grid:
        raise ValueError(f"recipe {prof.recipe!r} has no lr_grid: its learning rate is fixed")
    path = prof.results_dir / FILE
    if path.exists():
        saved = json.loads(path.read_text())
        if _current(prof, saved):
            return saved
    ensure_base(prof)
    split = prof.lora_recipe.val_split
    if split is None or split == prof.train_split:
        raise ValueError(f"recipe {prof.recipe!r}: choosing the learning rate needs a val_split other than the "
                         f"train split (e.g. 'train.val' beside 'train.fit')")
    questions = load_split(prof.data_root, split).questions  # read and checked once, handed to every rate
    record: dict = {"grid": list(prof.lr_grid), "val_split": split, "val_questions": len(questions),
                    "rank": prof.ranks[0], "seed": prof.seeds[0], "metric": "score shuffle_mean"}
    record["runs"] = run_profile_jobs(prof, _try_rate, {f"{lr:g}": (prof, lr, questions) for lr in prof.lr_grid},
                                      desc="learning-rate sweep", progress=progress)
    best = max(record["runs"].values(), key=lambda r: r["shuffle_mean"])
    record["chosen"] = best["lr"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def _try_rate(prof: Profile, lr: float, questions: list, bars: bool) -> dict:
    """The sweep's run at ``lr`` (trained unless finished) and its answers to the validation split's ``questions``:
    one job of ``choose_lr`` (``bars``: the run's and the evaluation's own bars)."""
    from aqa_utils.data.prompt import tokenizer_for
    from aqa_utils.evaluation import EvalSettings, evaluate
    from aqa_utils.workbook.steps import _fit, finished_with, load_system

    system = sweep_system(prof, lr)
    cfg = prof.lora_config(system, lr)
    cfg = replace(cfg, progress=cfg.progress and bars)
    if not finished_with(system.run_dir, cfg):
        _fit(cfg)
    settings = EvalSettings(mode="score", permutations=prof.eval_permutations, progress=bars)
    model = load_system(prof, system)
    report = evaluate(model, tokenizer_for(model), questions, settings).metrics["score"]
    summary = json.loads((system.run_dir / "summary.json").read_text())
    return {"lr": lr, "shuffle_mean": report["shuffle_mean"], "ci": report["shuffle_mean_ci"],
            "val_loss": summary.get("val_loss")}


def recipe_lr(prof: Profile) -> float | None:
    """The rate every system trains with: the sweep's choice when the recipe has a grid, else None (the recipe's)."""
    return choose_lr(prof)["chosen"] if prof.lr_grid else None


def adopt_sweep_run(prof: Profile, system: System, lr: float) -> bool:
    """When ``system`` is the sweep's rank and seed and its run folder holds no run, the sweep's run at ``lr`` is
    that run exactly (same base, data, recipe and seed): it is copied over instead of trained again, its recorded
    run folder renamed. Returns whether it was."""
    from aqa_utils.config import portable

    source = sweep_system(prof, lr).run_dir
    if (system.rank, system.seed) != (prof.ranks[0], prof.seeds[0]) or system.run_dir.exists() \
            or not (source / "summary.json").exists():
        return False
    tmp = system.run_dir.with_name(system.run_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("checkpoints"))
    old, new = portable(str(source)), portable(str(system.run_dir))
    for name in ("config.json", "summary.json"):
        path = tmp / name
        path.write_text(path.read_text().replace(f'"{old}', f'"{new}'))
    tmp.rename(system.run_dir)
    return True

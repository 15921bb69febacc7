"""Recipes: every hyperparameter of one way to train and evaluate, in one YAML file under ``configs/``.

- ``configs/report.yaml``: the report's recipe for the released AF2 (LoRA on DCASE dev, predictions on the eval
  split, the submission CSV checked against the dataset's ``submission_example/``);
- ``configs/local.yaml``: the honest local one (LoRA on train, every metric on dev);
- ``configs/tiny/full.yaml``, ``configs/tiny/quick.yaml``, ``configs/tiny/ci.yaml``: the embedded default's LoRA
  recipe per workbook profile.

``python -m aqa_utils train|evaluate --recipe NAME`` and the workbook's profile read them. A recipe states every
hyperparameter: a missing one is an error naming the file, so no value of a recipe comes silently from a default
in the code. Paths (checkpoint, data, run folder) are not part of a recipe; the command line or profile gives them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from aqa_utils.config import LoraSettings, TrainConfig, _from_dict, _Serialisable, portable, repo_root
from aqa_utils.yaml_file import read_yaml

RECIPES_DIR = "configs"
RUN_FIELDS = ("checkpoint", "data_root", "out_dir", "progress", "recipe")
"""TrainConfig fields that say where a run reads and writes (or how it shows progress), not how it trains."""
OPTIONAL_LORA = ("targets",)
"""LoRA fields a recipe may leave out: the targets default to the report's q/k/v patterns (``config.LORA_TARGETS``)."""


@dataclass
class EvalRecipe(_Serialisable):
    """How a recipe evaluates (the fields of ``evaluation.EvalSettings`` it fixes, and the split)."""

    split: str
    """Split to answer: ``eval`` (answers withheld: predictions and the submission only) or ``dev``."""
    mode: str
    """"generate" (AF2's protocol), "score" (option log-likelihood) or "both"."""
    primary: str | None
    """Mode whose answers fill the submission in mode "both" (None: "generate")."""
    batch_size: int
    max_new_tokens: int
    permutations: int
    """Orderings per question for the shuffle-robustness check (0: off; it needs answers, so 0 on eval)."""
    limit: int | None
    skip_bad_data: bool
    """Leave out questions with data problems (they would then be missing from a submission)."""
    check_submission: bool
    """Check the written submission.csv against the data's ``submission_example/`` file (``submission.py``)."""

    def settings(self) -> dict[str, Any]:
        """Keyword arguments of ``EvalSettings``."""
        return dict(mode=self.mode, primary=self.primary, batch_size=self.batch_size,
                    max_new_tokens=self.max_new_tokens, permutations=self.permutations, limit=self.limit)


@dataclass
class Recipe:
    """One recipe file: its name (the path under ``configs/`` without ``.yaml``), what it is for, the LoRA ranks
    it trains, the training config (paths left to the caller) and the evaluation."""

    name: str
    path: Path
    description: str
    ranks: tuple[int, ...]
    train: TrainConfig
    evaluate: EvalRecipe
    seeds: tuple[int, ...] = (0,)
    """Training seeds per rank (optional in the file; one seed when absent)."""
    lr_grid: tuple[float, ...] = ()
    """Learning rates to choose from on ``train.val_split`` (optional; ``workbook.lr_sweep``). The recipe's
    ``train.lr`` must be one of them: the rate used when no sweep runs (a single ``train`` command)."""

    @classmethod
    def load(cls, name_or_path: str | Path) -> "Recipe":
        path = recipe_path(name_or_path)
        data = _read(path)
        top = {"description", "ranks", "train", "evaluate"}
        _require(data, top, path, "")
        top |= {"seeds", "lr_grid"}
        if set(data) - top:
            raise ValueError(f"{path}: unknown key(s) {sorted(set(data) - top)}; known: {sorted(top)}")
        train, evaluate = data["train"], data["evaluate"]
        _require(train, {f.name for f in fields(TrainConfig)} - set(RUN_FIELDS), path, "train")
        _require(train.get("lora"), {f.name for f in fields(LoraSettings)} - set(OPTIONAL_LORA), path, "train.lora")
        _require(evaluate, {f.name for f in fields(EvalRecipe)}, path, "evaluate")
        set_here = sorted(set(train) & set(RUN_FIELDS))
        if set_here:
            raise ValueError(f"{path}: train: {set_here} say where a run lives, not how it trains: give them on the "
                             "command line (or let the profile derive them)")
        try:
            cfg = _from_dict(TrainConfig, {**train, "recipe": portable(str(path.resolve()))}, f"{path}: train")
            ev = _from_dict(EvalRecipe, evaluate, f"{path}: evaluate")
        except TypeError as err:  # a value of the wrong shape (e.g. a list where a mapping belongs)
            raise ValueError(f"{path}: {err}") from None
        ranks = tuple(int(r) for r in data["ranks"])
        if cfg.lora.rank not in ranks:
            raise ValueError(f"{path}: train.lora.rank {cfg.lora.rank} is not among ranks {list(ranks)}")
        seeds = tuple(int(x) for x in data.get("seeds", [0]))
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"{path}: seeds must be distinct integers, got {data.get('seeds')}")
        lr_grid = tuple(float(x) for x in data.get("lr_grid", []))
        if lr_grid and (cfg.lr not in lr_grid or cfg.val_split in (None, cfg.train_split)):
            raise ValueError(f"{path}: with lr_grid {list(lr_grid)}, train.lr ({cfg.lr}) must be one of its rates and "
                             f"train.val_split a split other than train.train_split, to choose on")
        return cls(recipe_name(path), path, str(data["description"]).strip(), ranks, cfg, ev, seeds, lr_grid)


def recipe_path(name_or_path: str | Path) -> Path:
    """A recipe name (``report``, ``tiny/ci``: a file under ``configs/``) or a path to a recipe file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    named = repo_root() / RECIPES_DIR / f"{name_or_path}.yaml"
    if named.is_file():
        return named
    raise ValueError(f"no recipe {str(name_or_path)!r}: neither a file nor one of {available()} "
                     f"(under {RECIPES_DIR}/)")


def recipe_name(path: Path) -> str:
    """``configs/tiny/ci.yaml`` -> ``tiny/ci``; a file elsewhere is named by its stem."""
    folder = (repo_root() / RECIPES_DIR).resolve()
    path = path.resolve()
    return path.relative_to(folder).with_suffix("").as_posix() if path.is_relative_to(folder) else path.stem


def available() -> list[str]:
    folder = repo_root() / RECIPES_DIR
    return sorted(recipe_name(p) for p in folder.rglob("*.yaml"))


def _read(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = read_yaml(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _require(section: Any, keys: set[str], path: Path, where: str) -> None:
    label = f"{path}: {where}" if where else str(path)
    if not isinstance(section, dict):
        raise ValueError(f"{label}: expected a mapping, got {type(section).__name__}")
    missing = sorted(keys - set(section))
    if missing:
        raise ValueError(f"{label}: missing {missing}: a recipe states every hyperparameter (say null where "
                         "none applies)")

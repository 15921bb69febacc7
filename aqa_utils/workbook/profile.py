"""A workbook profile: sizes and recipes of one run, where its data and results live, and the systems it compares.

- ``full`` (default): the embedded default at its real size, results under ``results/``.
- ``quick``: the same data, base and evaluation with one training seed per rank and the full profile's chosen
  learning rate instead of a sweep (``configs/tiny/quick.yaml``), under ``work/quick/``: a first look in less time.
- ``ci``: the same chain with a few steps each, under ``work/ci/``, for nbval in ``make test``.

Pointing the workbook at the real thing needs no code change, only environment variables (or the same keys in a
YAML file named by ``AQA_CONFIG``): ``AQA_DCASE_ROOT`` (the folder holding ``dcase_2025_question_path/`` and
``local_audio_path/``) and ``AQA_AF2_CHECKPOINT`` (the downloaded release folder with ``clap_ckpt/`` and
``safe_ckpt/``). With a checkpoint, the base is loaded instead of pretrained and the model is ``af2-3b`` unless
``AQA_MODEL`` says otherwise. Each path is held once here; every stage's ``TrainConfig`` is derived from it.

The LoRA recipe (hyperparameters, ranks, evaluation settings) is a YAML file under ``configs/`` (``recipe.py``):
``tiny/full`` or ``tiny/ci`` for the embedded default, and with the released weights ``AQA_RECIPE`` (``local``,
the default, or ``report``) in the full profile; the ci profile always runs its short ``tiny/ci`` recipe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from aqa_utils.config import TrainConfig, repo_root
from aqa_utils.recipe import Recipe
from aqa_utils.yaml_file import read_yaml

__all__ = ["PROFILES", "Profile", "System", "profile", "repo_root"]

PROFILES = ("full", "quick", "ci")


@dataclass(frozen=True)
class System:
    """One system the evaluation compares: the base (rank 0) or a LoRA adapter of one rank and training seed."""

    rank: int
    """LoRA rank; 0 for the zero-shot base."""
    seed: int | None = None
    """Training seed of the adapter; None for the base."""
    run_dir: Path | None = None
    """The adapter's run folder (config, metrics, final/); None for the base."""

    @property
    def name(self) -> str:
        """Display name: "base (zero-shot)", "LoRA r=8" (seed 0) or "LoRA r=8 seed 1"."""
        if self.rank == 0:
            return "base (zero-shot)"
        return f"LoRA r={self.rank}" + (f" seed {self.seed}" if self.seed else "")

    @property
    def key(self) -> str:
        """Its name in files and folders: "base" or "lora_r8_s0" (rank and seed)."""
        return "base" if self.rank == 0 else f"lora_r{self.rank}_s{self.seed}"

    @property
    def adapter(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "final"


@dataclass
class Profile:
    """Everything a workbook run needs to know; see the module docstring."""

    name: str
    mini_root: Path
    """The generated mini benchmark and caption corpus (the tiny base always pretrains on its captions)."""
    base_dir: Path
    """The base in the release layout: the tiny base trained here, or the released AF2."""
    runs_dir: Path
    results_dir: Path
    mini_sizes: dict
    encoder_stage: TrainConfig
    """Stage 0 of the tiny base (hyperparameters only): CLAP learns the captions' sound tags."""
    base_stage: TrainConfig
    """Stage 1 of the tiny base (hyperparameters only): CLAP frozen, the rest learns captions and generic presence
    questions (``training.examples.CaptionExamples``)."""
    copy_stage: TrainConfig
    """Stage 2 of the tiny base (hyperparameters only): stage 1's corpus mixed half and half with text-only copy
    questions, so the LM learns to answer with any option's text (``data.mini.generic``)."""
    facts_stage: TrainConfig
    """Stage 3 of the tiny base (hyperparameters only): stage 2's corpus with text-only facts about the species
    (``data.mini.generic.fact_question``), what an LLM would know before hearing anything."""
    lora_recipe: TrainConfig
    """The LoRA recipe's training config (hyperparameters only); each system's config is derived by
    ``lora_config``."""
    eval_permutations: int
    eval_limit: int | None
    eval_max_new_tokens: int
    ranks: tuple[int, ...] = (8, 16, 32)
    seeds: tuple[int, ...] = (0,)
    lr_grid: tuple[float, ...] = ()
    """Learning rates tried on the recipe's validation split (``workbook.lr_sweep``); empty: the recipe's own."""
    dcase_root: Path | None = None
    """Real DCASE data (``AQA_DCASE_ROOT``); None: the mini benchmark."""
    model: str = "af2-tiny"
    """Model preset of the base (the release: ``af2-3b``, or ``AQA_MODEL``)."""
    real_checkpoint: bool = False
    train_split: str = "train"
    recipe: str = "tiny/full"
    """Name of the recipe file (``configs/<recipe>.yaml``) the LoRA settings were read from."""
    notes: list[str] = field(default_factory=list)
    memo_path: Path | None = None
    """Facts one notebook computes and later ones read back (``aqa_utils.memo``): under work/, never committed; None:
    always computed."""

    @property
    def real_data(self) -> bool:
        return self.dcase_root is not None

    @property
    def data_root(self) -> Path:
        """Where the questions that LoRA trains on and the evaluation reads live."""
        return self.dcase_root if self.dcase_root is not None else self.mini_root

    # -- derived training configs
    def encoder_config(self) -> TrainConfig:
        return replace(self.encoder_stage, data_root=str(self.mini_root), out_dir=str(self.runs_dir / "base_audio_encoder"))

    def _after(self, stage: TrainConfig, folder: str, previous: TrainConfig) -> TrainConfig:
        """``stage`` run in ``runs_dir/folder``, starting from ``previous``'s ``final/``."""
        return replace(stage, data_root=str(self.mini_root), out_dir=str(self.runs_dir / folder),
                       checkpoint=str(Path(previous.out_dir) / "final"))

    def base_config(self) -> TrainConfig:
        return self._after(self.base_stage, "base_pretrain", self.encoder_config())

    def copy_config(self) -> TrainConfig:
        return self._after(self.copy_stage, "base_copy", self.base_config())

    def facts_config(self) -> TrainConfig:
        return self._after(self.facts_stage, "base_facts", self.copy_config())

    def base_stages(self) -> tuple[TrainConfig, ...]:
        """The tiny base's training stages in order, each starting from the previous one's ``final/``."""
        return self.encoder_config(), self.base_config(), self.copy_config(), self.facts_config()

    def lora_config(self, system: System, lr: float | None = None) -> TrainConfig:
        """The training config of ``system``: the recipe's, at learning rate ``lr`` (None: the recipe's ``lr``)."""
        if system.run_dir is None:
            raise ValueError("the base is not trained by LoRA")
        return replace(self.lora_recipe, data_root=str(self.data_root), train_split=self.train_split,
                       lr=self.lora_recipe.lr if lr is None else lr,
                       model=self.model, checkpoint=str(self.base_dir), out_dir=str(system.run_dir),
                       seed=system.seed, lora=replace(self.lora_recipe.lora, rank=system.rank),
                       gradient_checkpointing=self.real_checkpoint or self.lora_recipe.gradient_checkpointing,
                       cache_audio=not self.real_data and self.lora_recipe.cache_audio)

    # -- the systems
    def lora_system(self, rank: int, seed: int = 0) -> System:
        return System(rank, seed, self.runs_dir / System(rank, seed).key)

    def systems(self) -> list[System]:
        """The base, then every rank at every seed."""
        return [System(0)] + [self.lora_system(r, s) for r in self.ranks for s in self.seeds]


def _settings() -> dict[str, str]:
    """AQA_* settings: the YAML file named by ``AQA_CONFIG``, overridden by the environment."""
    out: dict[str, str] = {}
    path = os.environ.get("AQA_CONFIG")
    if path:
        data = read_yaml(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of AQA_* keys")
        out = {str(k).upper(): str(v) for k, v in data.items()}
    return {**out, **{k: v for k, v in os.environ.items() if k.startswith("AQA_")}}


def profile(name: str | None = None) -> Profile:
    """The profile named, else ``AQA_PROFILE``, else ``full``; real data/weights and the recipe from the settings."""
    settings = _settings()
    name = name or settings.get("AQA_PROFILE", "full")
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: one of {PROFILES}")
    real_weights = bool(settings.get("AQA_AF2_CHECKPOINT"))
    rec = Recipe.load(settings.get("AQA_RECIPE", "local") if name == "full" and real_weights else f"tiny/{name}")
    recipe = dict(lora_recipe=rec.train, ranks=rec.ranks, seeds=rec.seeds, train_split=rec.train.train_split,
                  lr_grid=rec.lr_grid,
                  recipe=rec.name,
                  model=rec.train.model,
                  eval_permutations=rec.evaluate.permutations, eval_limit=rec.evaluate.limit,
                  eval_max_new_tokens=rec.evaluate.max_new_tokens)
    root = repo_root()
    if name in ("full", "quick"):
        # quick: the full profile's data, base and evaluation with one seed and no sweep, in a folder of its own.
        quick = root / "work" / "quick"
        copy_stage = TrainConfig(mode="full", corpus="captions+copy", frozen=("clap",), max_steps=300, batch_size=8,
                                 lr=1e-3, warmup_steps=10, val_split="dev", eval_every=100, max_val_examples=48,
                                 save_every=100)
        prof = Profile(
            name=name, mini_root=root / "data" / "mini",
            base_dir=(quick / "base" if name == "quick" else root / "work" / "base") / "af2-tiny",
            runs_dir=quick / "runs" if name == "quick" else root / "results" / "runs",
            results_dir=quick / "results" if name == "quick" else root / "results",
            memo_path=(quick if name == "quick" else root / "work") / "memo.json",
            # 700 dev questions: a 95% interval of one system's accuracy is at most +-3.7 points wide there (600 gave
            # +-4.0 at 50%, twelfth session). 1500 train questions: a fifth of their clips is carved off as the
            # validation split (train.val, ~300 questions) that picks the learning rate, and LoRA sees ~80 questions
            # of each type in the rest (train.fit).
            mini_sizes=dict(n_train=1500, n_dev=700, n_eval=60, n_captions_train=600, n_captions_dev=100),
            # save_every: a checkpoint every ~20-40 s on 2 cores, so an interrupted `make reproduce` loses little.
            encoder_stage=_encoder_stage(epochs=10, batch_size=16, lr=3e-4, save_every=50),
            base_stage=TrainConfig(mode="full", corpus="captions", frozen=("clap",), epochs=7, batch_size=8, lr=3e-3,
                                   warmup_steps=20, val_split="dev", eval_every=100, max_val_examples=48,
                                   save_every=100),
            copy_stage=copy_stage,
            # Stage 2 again, twice as long, with two fact lines in every six (multiple choice): the base then
            # recalls every species' pitch and LoRA can compose it with the species it hears (lora_gain.md, fifth
            # and tenth sessions).
            facts_stage=replace(copy_stage, corpus="captions+copy+facts", max_steps=600),
            **recipe)
    else:
        ci = root / "work" / "ci"
        copy_stage = TrainConfig(mode="full", corpus="captions+copy", frozen=("clap",), max_steps=2, batch_size=4,
                                 lr=1e-3, warmup_steps=1, val_split="dev", max_val_examples=8, save_every=1)
        prof = Profile(
            name=name, mini_root=ci / "mini", base_dir=ci / "base" / "af2-tiny", runs_dir=ci / "runs",
            results_dir=ci / "results", memo_path=ci / "memo.json",
            mini_sizes=dict(n_train=48, n_dev=24, n_eval=6, n_captions_train=32, n_captions_dev=8),
            # Checkpoints mid-stage here too, so that interrupting a CI run exercises the resume path.
            encoder_stage=_encoder_stage(epochs=1, batch_size=8, lr=3e-4, progress=False, save_every=2),
            base_stage=TrainConfig(mode="full", corpus="captions", frozen=("clap",), max_steps=4, batch_size=4,
                                   lr=3e-3, warmup_steps=1, val_split="dev", max_val_examples=8, save_every=2),
            copy_stage=copy_stage,
            facts_stage=replace(copy_stage, corpus="captions+copy+facts"),
            **recipe)
    if settings.get("AQA_DCASE_ROOT"):
        prof.dcase_root = Path(settings["AQA_DCASE_ROOT"])
        prof.train_split = settings.get("AQA_TRAIN_SPLIT", prof.train_split)
        prof.notes.append(f"real DCASE data from {prof.dcase_root}")
    if real_weights:
        prof.base_dir = Path(settings["AQA_AF2_CHECKPOINT"])
        prof.real_checkpoint = True
        prof.model = settings.get("AQA_MODEL", "af2-3b")
        prof.notes.append(f"released AF2 weights ({prof.model}) from {prof.base_dir}, recipe configs/{rec.name}.yaml")
    return prof


def _encoder_stage(**kw) -> TrainConfig:
    """Stage 0: only CLAP (and the tagging head) trains, without SpecAugment, validated by dev mAP every epoch."""
    return TrainConfig(mode="full", corpus="tags", frozen=("audio_transformer", "xattn", "lm"), spec_augment=False,
                       warmup_steps=10, val_split="dev", eval_per_epoch=True, max_val_examples=10**9, **kw)

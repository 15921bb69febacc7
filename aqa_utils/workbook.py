"""The workbook's steps, shared by the notebooks and ``python -m aqa_utils reproduce``.

A *profile* fixes sizes and where things go:

- ``full`` (default): the embedded default at its real size, results under ``results/``.
- ``ci``: the same chain with a few steps each, under ``work/ci/``, for nbval in ``make test``.

Pointing the workbook at the real thing needs no code change, only environment variables (or the same keys in a
YAML file named by ``AQA_CONFIG``): ``AQA_DCASE_ROOT`` (the folder holding ``dcase_2025_question_path/`` and
``local_audio_path/``) and ``AQA_AF2_CHECKPOINT`` (the downloaded release folder with ``clap_ckpt/`` and
``safe_ckpt/``). With a checkpoint given, the base is loaded instead of pretrained and the model is ``af2-3b``
unless ``AQA_MODEL`` says otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .config import AudioPretrainConfig, LoraSettings, TrainConfig

if TYPE_CHECKING:
    import pandas as pd

RANKS = (8, 16, 32)


def repo_root() -> Path:
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


@dataclass
class Profile:
    """Everything a workbook run needs to know; see the module docstring."""

    name: str
    data_root: Path
    base_dir: Path
    runs_dir: Path
    results_dir: Path
    mini_sizes: dict
    audio_pretrain: AudioPretrainConfig
    """Stage 0 of the tiny base: the audio encoder learns to tag the captions' sounds."""
    pretrain: TrainConfig
    """Stage 1 of the tiny base: CLAP frozen, the rest learns captions and multiple-choice questions."""
    finetune: TrainConfig
    eval_permutations: int
    eval_limit: int | None
    eval_max_new_tokens: int
    real_data: bool = False
    real_checkpoint: bool = False
    notes: list[str] = field(default_factory=list)

    def run_dir(self, rank: int) -> Path:
        return self.runs_dir / f"lora_r{rank}"

    def finetune_config(self, rank: int) -> TrainConfig:
        return replace(self.finetune, lora=LoraSettings(rank=rank), out_dir=str(self.run_dir(rank)),
                       checkpoint=str(self.base_dir))


def _settings_file() -> dict:
    path = os.environ.get("AQA_CONFIG")
    if not path:
        return {}
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of AQA_* keys")
    return {str(k).upper(): str(v) for k, v in data.items()}


def profile(name: str | None = None) -> Profile:
    """The profile named, else ``AQA_PROFILE``, else ``full``; real data/weights from the environment."""
    settings = {**_settings_file(), **{k: v for k, v in os.environ.items() if k.startswith("AQA_")}}
    name = name or settings.get("AQA_PROFILE", "full")
    root = repo_root()
    if name == "full":
        base = dict(data_root=root / "data" / "mini", base_dir=root / "work" / "base" / "af2-tiny",
                    runs_dir=root / "results" / "runs", results_dir=root / "results",
                    mini_sizes=dict(n_train=480, n_dev=240, n_eval=60, n_captions_train=600, n_captions_dev=100))
        audio_pretrain = AudioPretrainConfig(epochs=10, batch_size=16, lr=3e-4)
        pretrain = TrainConfig(mode="full", corpus="captions", frozen=("clap",), epochs=7, batch_size=8, lr=3e-3,
                               warmup_steps=20, val_split="dev", eval_every=100, max_val_examples=48)
        finetune = TrainConfig(mode="lora", corpus="questions", epochs=8, batch_size=8, lr=3e-3, warmup_steps=10,
                               val_split="dev", eval_every=0, max_val_examples=48)
        # AF2 allows 256 new tokens; answers here are under 16 tokens, so 48 loses nothing and keeps a
        # rambling zero-shot base from dominating the run time (it is unparsed either way).
        eval_permutations, eval_limit, eval_max_new_tokens = 4, None, 48
    elif name == "ci":
        ci = root / "work" / "ci"
        base = dict(data_root=ci / "mini", base_dir=ci / "base" / "af2-tiny", runs_dir=ci / "runs",
                    results_dir=ci / "results",
                    mini_sizes=dict(n_train=48, n_dev=24, n_eval=6, n_captions_train=32, n_captions_dev=8))
        audio_pretrain = AudioPretrainConfig(epochs=1, batch_size=8, progress=False)
        pretrain = TrainConfig(mode="full", corpus="captions", frozen=("clap",), max_steps=4, batch_size=4, lr=3e-3,
                               warmup_steps=1, val_split="dev", max_val_examples=8)
        finetune = TrainConfig(mode="lora", corpus="questions", max_steps=3, batch_size=4, lr=2e-3, warmup_steps=1,
                               val_split="dev", max_val_examples=8)
        eval_permutations, eval_limit, eval_max_new_tokens = 2, None, 12
    else:
        raise ValueError(f"unknown profile {name!r}: 'full' or 'ci'")
    prof = Profile(name=name, audio_pretrain=audio_pretrain, pretrain=pretrain, finetune=finetune,
                   eval_permutations=eval_permutations,
                   eval_limit=eval_limit, eval_max_new_tokens=eval_max_new_tokens, **base)
    prof.audio_pretrain = replace(prof.audio_pretrain, data_root=str(prof.data_root),
                                  out_dir=str(prof.runs_dir / "base_audio_encoder"))
    prof.pretrain = replace(prof.pretrain, data_root=str(prof.data_root), out_dir=str(prof.runs_dir / "base_pretrain"),
                            checkpoint=str(Path(prof.audio_pretrain.out_dir) / "final"))
    prof.finetune = replace(prof.finetune, data_root=str(prof.data_root))
    if settings.get("AQA_DCASE_ROOT"):
        prof.data_root = Path(settings["AQA_DCASE_ROOT"])
        prof.real_data = True
        # The report fine-tuned on DCASE dev; evaluation then needs its own held-out split.
        prof.finetune = replace(prof.finetune, data_root=str(prof.data_root),
                                train_split=settings.get("AQA_TRAIN_SPLIT", "train"), cache_audio=False)
        prof.notes.append(f"real DCASE data from {prof.data_root}")
    if settings.get("AQA_AF2_CHECKPOINT"):
        prof.base_dir = Path(settings["AQA_AF2_CHECKPOINT"])
        prof.real_checkpoint = True
        model = settings.get("AQA_MODEL", "af2-3b")
        prof.finetune = replace(prof.finetune, model=model, gradient_checkpointing=True)
        prof.notes.append(f"released AF2 weights ({model}) from {prof.base_dir}")
    return prof


# ----------------------------------------------------------------------------------------------------- steps
def ensure_mini_benchmark(prof: Profile) -> Path:
    """Generate the mini benchmark for this profile (reused when already there with the same manifest)."""
    if prof.real_data:
        return prof.data_root
    from .data.mini import make_mini_benchmark

    return make_mini_benchmark(prof.data_root, seed=0, **prof.mini_sizes)


def _finished_with(run: Path, cfg, key: str) -> bool:
    """A run folder holds a finished run of exactly this configuration (so reusing it is safe)."""
    if not (run / "summary.json").exists() or not (run / "config.json").exists():
        return False
    saved = json.loads((run / "config.json").read_text()).get(key)
    return saved == json.loads(json.dumps(cfg.to_dict()))


def ensure_base(prof: Profile, retrain: bool = False) -> Path:
    """The base checkpoint (release layout): the real AF2 when given, else the tiny base pretrained here in two
    stages (``audio_pretrain``: the audio encoder learns to tag sounds; then CLAP frozen, the rest learns captions
    and multiple-choice questions)."""
    from .audio_pretrain import pretrain_audio_encoder
    from .train import Trainer

    if prof.real_checkpoint:
        return prof.base_dir
    stages = ((prof.audio_pretrain, "audio_pretrain"), (prof.pretrain, "train"))
    if (prof.base_dir / "safe_ckpt" / "metadata.json").exists() and not retrain and \
            all(_finished_with(Path(cfg.out_dir), cfg, key) for cfg, key in stages):
        return prof.base_dir
    ensure_mini_benchmark(prof)
    for rank in RANKS:  # adapters of an older base would otherwise be reused with the new one
        shutil.rmtree(prof.run_dir(rank), ignore_errors=True)
    pretrain_audio_encoder(prof.audio_pretrain)
    shutil.rmtree(prof.pretrain.out_dir, ignore_errors=True)
    summary = Trainer(prof.pretrain).fit()
    prof.base_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(prof.base_dir, ignore_errors=True)
    shutil.copytree(summary["final"], prof.base_dir)
    return prof.base_dir


def listening_check(prof: Profile, checkpoint: str | Path | None = None, examples: int = 48) -> dict[str, float]:
    """Loss per answer token on the first ``examples`` caption-corpus dev items with their own clips and with other
    clips' (``train.audio_reliance``); a model that ignores its audio scores the same on both."""
    from .train import CaptionExamples, audio_reliance

    data = CaptionExamples(Path(prof.data_root), "dev", train=False)
    model = load_model(checkpoint or prof.base_dir, device="cpu")
    return audio_reliance(model, [data.get(i, 0) for i in range(min(examples, len(data)))])


def finetune(prof: Profile, rank: int, retrain: bool = False) -> dict:
    """LoRA fine-tuning at ``rank``; returns the run summary (reuses a finished run unless ``retrain``)."""
    from .train import Trainer

    run = prof.run_dir(rank)
    if not retrain and _finished_with(run, prof.finetune_config(rank), "train"):
        return json.loads((run / "summary.json").read_text())
    shutil.rmtree(run, ignore_errors=True)
    ensure_base(prof)
    return Trainer(prof.finetune_config(rank)).fit()


def load_model(checkpoint: str | Path, adapter: str | Path | None = None, model: str | None = None,
               device: str | torch.device | None = None):
    """A base (release layout) with an optional LoRA adapter merged in, in eval mode."""
    from .lora import load_adapter, merge
    from .model import checkpoint as release

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    base, _ = release.load(checkpoint, model, device=device, dtype=dtype)
    if adapter is None:
        return base.eval()
    return merge(load_adapter(base, adapter)).eval()


def systems(prof: Profile) -> dict[str, Path | None]:
    """Name -> adapter folder (None for the base) of every system the evaluation compares."""
    out: dict[str, Path | None] = {"base (zero-shot)": None}
    for rank in RANKS:
        out[f"LoRA r={rank}"] = prof.run_dir(rank) / "final"
    return out


def evaluate_systems(prof: Profile, split: str = "dev", mode: str = "both", progress: bool = True) -> dict:
    """Evaluate the base and the three adapters on ``split``; writes each system's outputs under results."""
    from .data.dcase import load_split
    from .data.prompt import build_tokenizer
    from .evaluate import EvalSettings, evaluate

    questions = load_split(prof.data_root, split).questions
    tokenizer = build_tokenizer()
    results = {}
    for name, adapter in systems(prof).items():
        model = load_model(prof.base_dir, adapter, model=None if not prof.real_checkpoint else prof.finetune.model)
        settings = EvalSettings(mode=mode, permutations=prof.eval_permutations, limit=prof.eval_limit,
                                max_new_tokens=prof.eval_max_new_tokens, progress=progress, primary="score")
        results[name] = evaluate(model, tokenizer, questions, settings, out_dir=_system_dir(prof, split, name))
    return results


@dataclass
class SavedEvaluation:
    """What ``evaluate`` wrote for one system: ``metrics`` {mode: report} and the ``predictions`` table."""

    metrics: dict
    predictions: pd.DataFrame


def _system_dir(prof: Profile, split: str, name: str) -> Path:
    slug = name.split(" ")[0].lower() if systems(prof)[name] is None else f"lora_r{name.split('=')[1]}"
    return prof.results_dir / "eval" / split / slug


def saved_evaluations(prof: Profile, split: str = "dev", mode: str = "score") -> dict[str, SavedEvaluation] | None:
    """The evaluations ``evaluate_systems`` last wrote, when every system has one in ``mode`` that is newer than its
    weights (base and adapter); None otherwise."""
    import pandas as pd

    out = {}
    for name, adapter in systems(prof).items():
        folder = _system_dir(prof, split, name)
        files = [folder / "metrics.json", folder / "predictions.csv"]
        weights = [prof.base_dir / "safe_ckpt"] + ([] if adapter is None else [Path(adapter)])
        if not all(f.exists() for f in files + weights):
            return None
        if min(f.stat().st_mtime for f in files) < max(w.stat().st_mtime for w in weights):
            return None
        metrics = json.loads(files[0].read_text())["metrics"]
        if mode not in metrics:
            return None
        out[name] = SavedEvaluation(metrics, pd.read_csv(files[1]))
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


# ----------------------------------------------------------------------------------------------------- reproduce
NOTEBOOKS = (
    "01_data_exploration.ipynb",
    "02_augmentation.ipynb",
    "03_base_pretraining.ipynb",
    "04_lora_finetuning.ipynb",
    "05_evaluation.ipynb",
    "06_rank_saturation.ipynb",
    "07_demo.ipynb",
)


def _drop_widget_state(path: Path) -> None:
    """Saved widget state repeats every clip the demo loaded as bytes; the executed copy does not need it."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if nb.metadata.pop("widgets", None) is not None:
        nbformat.write(nb, path)


def reproduce(profile: str = "full") -> int:
    """Run every notebook top to bottom with papermill (04 once per rank); executed copies land in results/."""
    import papermill

    prof = globals()["profile"](profile)
    nb_dir = repo_root() / "notebooks"
    out_dir = prof.results_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    timings = {}
    for name in NOTEBOOKS:
        runs = [(f"{Path(name).stem}_r{r}.ipynb", {"PROFILE": profile, "RANK": r}) for r in RANKS] \
            if name.startswith("04_") else [(name, {"PROFILE": profile})]
        for out_name, params in runs:
            start = time.perf_counter()
            papermill.execute_notebook(str(nb_dir / name), str(out_dir / out_name), parameters=params,
                                       cwd=str(nb_dir), progress_bar=False, kernel_name="python3")
            _drop_widget_state(out_dir / out_name)
            timings[out_name] = round(time.perf_counter() - start, 1)
            print(f"{out_name}: {timings[out_name]} s")
    (prof.results_dir / "reproduce_timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    return 0


def write_results_readme(prof: Profile, results: dict, rank_table, comparison) -> Path:
    """results/README.md: the headline table of the last run, beside the published numbers, with the verdict."""
    from .analysis import headline_table
    from .metrics import REPORTED

    scored = {name: r.metrics["score"] for name, r in results.items()}
    data = "DCASE dev" if prof.real_data else "mini benchmark dev (generated, seed 0)"
    model = prof.finetune.model if prof.real_checkpoint else "af2-tiny (pretrained here)"
    reported = REPORTED[["system", "BQA", "TSQA", "CQA", "overall"]].copy()
    lines = [
        f"# Results ({prof.name} profile)",
        "",
        f"Measured here: {model}, {data}, option scoring, accuracy % with bootstrap 95% intervals. "
        "Regenerate with `make reproduce`; the executed notebooks are in `notebooks/`.",
        "",
        headline_table(scored).to_markdown(),
        "",
        f"Chance level (mean of 1 / number of options): {100 * next(iter(scored.values()))['chance']:.1f}%. "
        + "Above chance with 95% confidence (micro CI lower bound > chance): "
        + ", ".join(f"{name}: {'yes' if rep['micro_ci'][0] > rep['chance'] else 'no'}" for name, rep in scored.items())
        + ".",
        "",
        "## Rank saturation (measured here)",
        "",
        rank_table.drop(columns=["train seconds"]).to_markdown(),
        "",
        comparison.to_markdown(),
        "",
        "## Reported (published, DCASE dev; AF2-3B, not comparable to the tiny model's numbers above)",
        "",
        reported.to_markdown(index=False),
        "",
    ]
    path = prof.results_dir / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path

"""The training recipe: set up, train, save; the same code on a laptop CPU, one GPU or many (accelerate / torchrun).

``Trainer(cfg).fit()`` runs LoRA fine-tuning on multiple-choice questions (the report's recipe: shuffled options,
one of six label formats per example) or, with ``mode="full"`` and ``corpus="captions"``, pretrains a base model.

Exact resume: the data order of epoch e is a permutation seeded by (seed, e) and each example's augmentation is
seeded by (seed, epoch, index), so they do not depend on when a run stopped; the checkpoint stores the trainable
weights, the buffers (batch-norm statistics), optimizer, scheduler, every RNG state and the step. A run killed and
resumed ends bit-identical to an uninterrupted one on CPU. Checkpoints are written to a temporary folder and
renamed, so a kill during a save never leaves a half checkpoint behind.

Multi-process (DDP through accelerate): each optimizer step consumes one global batch of
``batch_size * grad_accum * processes`` examples; every process takes its share, and the loss is the sum over
answer tokens divided by the global batch's token count, so the gradient equals a single process's on the same
global batch.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from .audio import ClipCache, pad_window_batch
from .config import ModelConfig, TrainConfig
from .data.augment import augmented_example, eval_example, render_answer, render_question, training_example
from .data.dcase import Question, load_split
from .data.mini import read_captions
from .data.prompt import TrainCollator, build_tokenizer
from .lora import COMPONENTS, apply_lora, component_of, lora_parameter_counts, save_adapter
from .model import build_model
from .model import checkpoint as release

CAPTION_PROMPT = "describe the sound."


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; the last good checkpoint is kept."""


# ------------------------------------------------------------------------------------------------------- data
@dataclass
class Example:
    audio_path: Path
    prompt: str
    target: str


class QuestionExamples:
    """Multiple-choice questions -> examples; ``train=True`` applies the report's augmentation."""

    def __init__(self, questions: list[Question], seed: int, train: bool):
        self.questions, self.seed, self.train = questions, seed, train

    def __len__(self) -> int:
        return len(self.questions)

    def get(self, index: int, epoch: int) -> Example:
        q = self.questions[index]
        if self.train:
            mc = training_example(q, np.random.default_rng([self.seed, epoch, index]))
        else:
            mc = eval_example(q)
        return Example(q.audio_path, mc.prompt, mc.target)


class CaptionExamples:
    """The caption corpus: per clip, its caption (under a fixed prompt) and its multiple-choice question, rendered
    with the report's augmentation (shuffled options, one of six label formats) when ``train`` is True, else in
    the fixed eval format."""

    def __init__(self, root: Path, split: str, seed: int = 0, train: bool = True):
        self.seed, self.train = seed, train

        def examples(row: dict) -> list:
            audio = root / row["audio"]
            return [Example(audio, CAPTION_PROMPT, row["text"]),
                    (audio, row["question"], list(row["choices"]), row["choices"].index(row["answer"]))]

        self.items: list[Example | tuple[Path, str, list[str], int]] = [
            item for pair in read_captions(root, split, examples) for item in pair]

    def __len__(self) -> int:
        return len(self.items)

    def get(self, index: int, epoch: int) -> Example:
        item = self.items[index]
        if isinstance(item, Example):
            return item
        audio, question, choices, answer = item
        if self.train:
            mc = augmented_example(question, choices, answer, np.random.default_rng([self.seed, epoch, index]))
            return Example(audio, mc.prompt, mc.target)
        return Example(audio, render_question(question, choices), render_answer(choices, answer))


def load_examples(cfg: TrainConfig, split: str, train: bool):
    root = Path(cfg.data_root)
    if cfg.corpus == "captions":
        return CaptionExamples(root, split, cfg.seed, train)
    if cfg.corpus != "questions":
        raise ValueError(f"corpus must be 'questions' or 'captions', not {cfg.corpus!r}")
    loaded = load_split(root, split, skip_problems=cfg.skip_bad_data)
    if loaded.skipped:
        print(f"{split}: skipped {loaded.skipped} questions with data problems: {loaded.summary()}")
    return QuestionExamples(loaded.questions, cfg.seed, train)


def freeze_components(model, frozen: tuple[str, ...]) -> None:
    """Stop the gradient of every parameter of the named components (see ``lora.COMPONENTS``)."""
    unknown = sorted(set(frozen) - set(COMPONENTS))
    if unknown:
        raise ValueError(f"frozen: unknown component(s) {unknown}; known: {list(COMPONENTS)}")
    for name, param in model.named_parameters():
        if component_of(name) in frozen:
            param.requires_grad_(False)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


# ------------------------------------------------------------------------------------------------------- schedule
def lr_lambda(cfg: TrainConfig, total_steps: int):
    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
        if cfg.schedule == "linear":
            return 1.0 - progress
        if cfg.schedule == "cosine":
            return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))
        raise ValueError(f"schedule must be cosine, linear or constant, not {cfg.schedule!r}")

    return factor


# ------------------------------------------------------------------------------------------------------- trainer
class Trainer:
    """setup() in the constructor, ``fit()`` trains (resuming from the run folder's latest checkpoint), saves."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        precision = cfg.precision
        if precision == "auto":
            precision = "bf16" if torch.cuda.is_available() else "fp32"
        # A launcher's WORLD_SIZE with no accelerator device: accelerate sets up multi-process CPU training (gloo)
        # only when told the run is CPU-only; otherwise every torchrun process would get world size 1 and train
        # the whole run on its own (N independent runs writing into one folder).
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        self.accelerator = Accelerator(mixed_precision="bf16" if precision == "bf16" else "no",
                                       cpu=launched > 1 and not _has_accelerator_device())
        self.world = self.accelerator.num_processes
        self.rank = self.accelerator.process_index
        if launched > 1 and self.world != launched:
            raise RuntimeError(f"launched with WORLD_SIZE={launched} but accelerate set up {self.world} process(es)")
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)

        if cfg.checkpoint:
            model_cfg = None if (Path(cfg.checkpoint) / release.CONFIG_FILE).exists() else cfg.model
            model, report = release.load(cfg.checkpoint, model_cfg, device=self.accelerator.device)
            self.load_report = report.summary()
        else:
            model = build_model(ModelConfig.resolve(cfg.model), device=self.accelerator.device)
            self.load_report = "random initialisation"
        self.model_config = model.config
        model.set_gradient_checkpointing(cfg.gradient_checkpointing)
        if cfg.mode == "lora":
            model = apply_lora(model, cfg.lora)
        elif cfg.mode != "full":
            raise ValueError(f"mode must be 'lora' or 'full', not {cfg.mode!r}")
        freeze_components(model, cfg.frozen if cfg.mode == "full" else ())
        self.tokenizer = build_tokenizer()
        self.collate = TrainCollator(self.tokenizer)
        self.clips = ClipCache(self.model_config.audio, max_clips=None if cfg.cache_audio else 0)
        self.clap_frozen = cfg.mode == "full" and "clap" in cfg.frozen
        self.clap_tokens: dict[str, torch.Tensor] | None = {} if cfg.cache_clap_tokens and self.clap_frozen else None
        self.train_data = load_examples(cfg, cfg.train_split, train=True)
        self.val_data = load_examples(cfg, cfg.val_split, train=False) if cfg.val_split else None

        self.global_batch = cfg.batch_size * cfg.grad_accum * self.world
        steps_per_epoch = max(1, len(self.train_data) // self.global_batch)
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = cfg.max_steps or max(1, int(round(cfg.epochs * steps_per_epoch)))
        params = [p for p in model.parameters() if p.requires_grad]
        # fused AdamW: one kernel over all tensors (the tiny model's 151,669-row embedding dominates otherwise).
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(cfg, self.total_steps))
        self.model, self.optimizer = self.accelerator.prepare(model, self.optimizer)
        self.step = 0

    # -- helpers
    @property
    def unwrapped(self):
        return self.accelerator.unwrap_model(self.model)

    def _batch(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        """Model inputs: ``audio`` (the forward's keyword arguments for the audio) plus the collated text."""
        device = self.accelerator.device
        text = {k: v.to(device) for k, v in self.collate([(e.prompt, e.target) for e in examples]).items()}
        if self.clap_tokens is not None:
            tokens = [self._frozen_clap_tokens(e.audio_path) for e in examples]
            batch = torch.nn.utils.rnn.pad_sequence(tokens, batch_first=True)
            mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(t), dtype=torch.bool) for t in tokens],
                                                   batch_first=True)
            return {"audio": {"clap_tokens": (batch, mask.to(device))}, **text}
        w, wm = pad_window_batch([self.clips.get(e.audio_path) for e in examples])
        return {"audio": {"windows": w.to(device), "window_mask": wm.to(device)}, **text}

    @torch.no_grad()
    def _frozen_clap_tokens(self, path: Path) -> torch.Tensor:
        """(L * tokens_per_window, D) CLAP tokens of a clip, computed once by the frozen (eval-mode) CLAP."""
        key = str(path)
        if key not in self.clap_tokens:
            windows = self.clips.get(path).to(self.accelerator.device)
            clap = self.unwrapped.clap.eval()
            with self.accelerator.autocast():
                self.clap_tokens[key] = clap(windows).flatten(0, 1)
        return self.clap_tokens[key]

    def _global_batch_indices(self, step: int) -> list[int]:
        """Indices of the examples optimizer step ``step`` consumes (every process computes the same list)."""
        per_epoch = self.steps_per_epoch
        epoch, within = divmod(step, per_epoch)
        order = epoch_order(len(self.train_data), self.cfg.seed, epoch)
        return order[within * self.global_batch:(within + 1) * self.global_batch], epoch

    # -- one optimizer step
    def train_step(self, step: int) -> dict[str, float]:
        indices, epoch = self._global_batch_indices(step)
        examples = [self.train_data.get(i, epoch) for i in indices]
        # Tokens of the whole global batch: the loss is normalised by it on every process.
        n_global = int((self.collate([(e.prompt, e.target) for e in examples])["labels"][:, 1:] != -100).sum())
        mine = examples[self.rank::self.world]
        micro = [mine[i::self.cfg.grad_accum] for i in range(self.cfg.grad_accum)]
        self.model.train()
        if self.clap_frozen:
            self.unwrapped.clap.eval()
        total = 0.0
        for k, chunk in enumerate(micro):
            batch = self._batch(chunk)
            sync = k == len(micro) - 1
            with self.accelerator.no_sync(self.model) if not sync else contextlib.nullcontext():
                with self.accelerator.autocast():
                    out = self.model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"],
                                     **batch["audio"])
                # DDP averages gradients over processes, hence the factor `world`.
                loss = out.loss_sum * self.world / n_global
                self.accelerator.backward(loss)
            total += float(out.loss_sum.detach())
        # Summed over processes BEFORE the check, so that every process sees the same value and all of them stop
        # (a process whose own share is finite would otherwise step the optimizer on NaN gradients and then block).
        summed = torch.tensor([total], device=self.accelerator.device)
        summed = self.accelerator.reduce(summed, reduction="sum") if self.world > 1 else summed
        if not math.isfinite(float(summed)):
            raise NonFiniteLossError(
                f"non-finite loss at step {step}; stopped. The last good checkpoint is kept in {self.out / 'checkpoints'}"
            )
        grad_norm = 0.0
        if self.cfg.grad_clip:
            grad_norm = float(self.accelerator.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], self.cfg.grad_clip))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"loss": float(summed) / n_global, "lr": self.scheduler.get_last_lr()[0], "grad_norm": grad_norm,
                "tokens": n_global, "epoch": epoch}

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        if self.val_data is None:
            return None
        self.model.eval()
        n = min(len(self.val_data), self.cfg.max_val_examples)
        loss_sum, tokens = 0.0, 0
        for start in range(self.rank * self.cfg.batch_size, n, self.cfg.batch_size * self.world):
            batch = self._batch([self.val_data.get(i, 0) for i in range(start, min(n, start + self.cfg.batch_size))])
            with self.accelerator.autocast():
                out = self.model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"],
                                 **batch["audio"])
            loss_sum += float(out.loss_sum)
            tokens += out.n_tokens
        totals = torch.tensor([loss_sum, float(tokens)], device=self.accelerator.device)
        if self.world > 1:
            totals = self.accelerator.reduce(totals, reduction="sum")
        return float(totals[0] / max(totals[1], 1))

    # -- checkpoints
    def _trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().cpu().clone() for n, p in self.unwrapped.named_parameters() if p.requires_grad}

    def _buffer_state(self) -> dict[str, torch.Tensor]:
        """Persistent buffers: CLAP's batch-norm running statistics move in full training (frozen under LoRA)."""
        persistent = set(self.unwrapped.state_dict())
        return {n: b.detach().cpu().clone() for n, b in self.unwrapped.named_buffers() if n in persistent}

    def save_checkpoint(self) -> Path:
        """Atomically write checkpoints/step_<N>/ and point checkpoints/latest at it."""
        final = self.out / "checkpoints" / f"step_{self.step:06d}"
        if not self.accelerator.is_main_process:
            self.accelerator.wait_for_everyone()
            return final
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        torch.save(self._trainable_state(), tmp / "trainable.pt")
        torch.save(self._buffer_state(), tmp / "buffers.pt")
        torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(self.scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save({"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps({"step": self.step, "total_steps": self.total_steps}))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        pointer = self.out / "checkpoints" / "latest.tmp"
        pointer.write_text(final.name)
        os.replace(pointer, self.out / "checkpoints" / "latest")
        self.accelerator.wait_for_everyone()
        return final

    def resume(self) -> bool:
        pointer = self.out / "checkpoints" / "latest"
        if not pointer.exists():
            return False
        folder = pointer.parent / pointer.read_text().strip()
        state = torch.load(folder / "trainable.pt", map_location="cpu")
        named = dict(self.unwrapped.named_parameters())
        missing = set(state) ^ {n for n, p in named.items() if p.requires_grad}
        if missing:
            raise RuntimeError(f"{folder}: checkpoint does not match this run's trainable parameters: {sorted(missing)[:5]}")
        with torch.no_grad():
            for name, value in state.items():
                named[name].copy_(value)
        if (folder / "buffers.pt").exists():  # checkpoints written before buffers were saved have none
            buffers = torch.load(folder / "buffers.pt", map_location="cpu")
            own = dict(self.unwrapped.named_buffers())
            unknown = set(buffers) - set(own)
            if unknown:
                raise RuntimeError(f"{folder}: checkpoint buffers unknown to this model: {sorted(unknown)[:5]}")
            with torch.no_grad():
                for name, value in buffers.items():
                    own[name].copy_(value)
        self.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location="cpu"))
        self.scheduler.load_state_dict(torch.load(folder / "scheduler.pt", map_location="cpu"))
        rng = torch.load(folder / "rng.pt", map_location="cpu", weights_only=False)
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.step = json.loads((folder / "state.json").read_text())["step"]
        return True

    def save_final(self) -> Path:
        final = self.out / "final"
        if self.accelerator.is_main_process:
            shutil.rmtree(final, ignore_errors=True)
            if self.cfg.mode == "lora":
                save_adapter(self.unwrapped, final)
            else:
                release.save(self.unwrapped, final)
        self.accelerator.wait_for_everyone()
        return final

    # -- the loop
    def fit(self, stop_after: int | None = None) -> dict:
        """Train to ``total_steps`` (or stop early after ``stop_after`` steps, as a kill would); returns a summary."""
        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.resume()
        main = self.accelerator.is_main_process
        if main:
            (self.out / "config.json").write_text(json.dumps(
                {"train": self.cfg.to_dict(), "model": self.model_config.to_dict()}, indent=2))
        if main and resumed:
            _truncate_log(self.out / "metrics.jsonl", self.step)
        log = open(self.out / "metrics.jsonl", "a" if resumed else "w") if main else None
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (main and self.cfg.progress),
                   desc=f"{self.cfg.mode} {self.model_config.name}")
        start, done_here = time.perf_counter(), 0
        try:
            while self.step < self.total_steps:
                if stop_after is not None and done_here >= stop_after:
                    break
                row = self.train_step(self.step)
                self.step += 1
                done_here += 1
                row["step"] = self.step
                if self.cfg.eval_every and self.step % self.cfg.eval_every == 0:
                    row["val_loss"] = self.validation_loss()
                if log is not None and (self.step % self.cfg.log_every == 0 or self.step == self.total_steps):
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.1e}")
                bar.update(1)
                if self.cfg.save_every and self.step % self.cfg.save_every == 0:
                    self.save_checkpoint()
        finally:
            bar.close()
            if log is not None:
                log.close()
        summary = {"steps": self.step, "total_steps": self.total_steps, "resumed": resumed,
                   "seconds": round(time.perf_counter() - start, 2), "load": self.load_report,
                   "examples": len(self.train_data), "global_batch": self.global_batch}
        if self.step >= self.total_steps:
            summary["val_loss"] = self.validation_loss()
            if self.cfg.mode == "lora":
                summary["lora_parameters"] = lora_parameter_counts(self.unwrapped)
            summary["final"] = str(self.save_final())
            if main:
                (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary


@torch.no_grad()
def audio_reliance(model, examples: list[Example], batch_size: int = 8, seed: int = 0) -> dict[str, float]:
    """Does a model listen? Mean loss per answer token with each example's own clip ("matched") and with the clip
    of another example whose audio differs ("shuffled", a seeded derangement). Equal losses: the audio is ignored.

    ``model``: an AF2Model (eval mode is set here); ``examples``: at least two, not all with the same clip.
    """
    paths = [e.audio_path for e in examples]
    if max(Counter(paths).values()) > len(paths) / 2:
        raise ValueError("audio_reliance: no clip may be used by more than half of the examples (no derangement)")
    rng = random.Random(seed)
    while True:  # a derangement of the clips: no example keeps audio identical to its own
        others = paths[:]
        rng.shuffle(others)
        if all(a != b for a, b in zip(paths, others)):
            break
    model.eval()
    collate = TrainCollator(build_tokenizer())
    clips = ClipCache(model.config.audio)
    device = model.device
    totals = {}
    for name, audio in (("matched", paths), ("shuffled", others)):
        loss_sum, tokens = 0.0, 0
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            text = collate([(e.prompt, e.target) for e in chunk])
            windows, mask = pad_window_batch([clips.get(p) for p in audio[start:start + batch_size]])
            out = model(text["input_ids"].to(device), text["attention_mask"].to(device), windows=windows.to(device),
                        window_mask=mask.to(device), labels=text["labels"].to(device))
            loss_sum += float(out.loss_sum)
            tokens += out.n_tokens
        totals[name] = loss_sum / max(tokens, 1)
    return totals


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past the resumed step (written after the last checkpoint by the interrupted run)."""
    lines = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in lines))


def _has_accelerator_device() -> bool:
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6: CUDA, MPS, XPU, ...
    return accelerator.is_available() if accelerator is not None else torch.cuda.is_available()


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The per-step metrics of a run folder."""
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if line]

"""The training loop: set up, train, save; the same code on a laptop CPU, one GPU or many (accelerate / torchrun).

One loop serves every stage: LoRA fine-tuning on multiple-choice questions (the report's recipe: shuffled options,
one of six label formats per example), full training of a base on captions, and the tiny base's stage 0 (sound
tags, CLAP only). What differs is the objective (``training.objectives``) and which components train.

Exact resume: the data order of epoch e is a permutation seeded by (seed, e) and each example's augmentation is
seeded by (seed, epoch, index), so they do not depend on when a run stopped; ``training.checkpointer`` stores
everything else. A run killed and resumed ends bit-identical to an uninterrupted one on CPU.

Multi-process (DDP through accelerate): each optimizer step consumes one global batch of
``batch_size * grad_accum * processes`` examples; every process takes its share, and the loss is the sum over
the objective's units (answer tokens) divided by the global batch's count, so the gradient equals a single
process's on the same global batch.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn

from aqa_utils.audio import ClipCache
from aqa_utils.config import ModelConfig, TrainConfig, portable
from aqa_utils.data.prompt import TrainCollator, tokenizer_for
from aqa_utils.lora import COMPONENTS, apply_lora, base_model_name, component_of, lora_parameter_counts, save_adapter
from aqa_utils.model import build_model
from aqa_utils.model_card import write_card
from aqa_utils.model import checkpoint as release
from aqa_utils.progress import tqdm
from aqa_utils.training.checkpointer import Checkpointer
from aqa_utils.training.examples import corpus_fingerprint, load_examples
from aqa_utils.training.objectives import FrozenClapTokens, LanguageModelling, Tagging
from aqa_utils.training.schedule import epoch_order, lr_lambda


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; the last good checkpoint is kept."""


def freeze_components(model, frozen: tuple[str, ...]) -> None:
    """Stop the gradient of every parameter of the named components (see ``lora.COMPONENTS``)."""
    unknown = sorted(set(frozen) - set(COMPONENTS))
    if unknown:
        raise ValueError(f"frozen: unknown component(s) {unknown}; known: {list(COMPONENTS)}")
    for name, param in model.named_parameters():
        if component_of(name) in frozen:
            param.requires_grad_(False)


class Trainer:
    """setup() in the constructor, ``fit()`` trains (resuming from the run folder's latest checkpoint), saves."""

    def __init__(self, cfg: TrainConfig, clap_tokens: FrozenClapTokens | None = None):
        """``clap_tokens``: a frozen CLAP's tokens from an earlier run, reused where this run's CLAP is the same
        and frozen (``objectives.FrozenClapTokens``)."""
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
        if cfg.mode not in ("lora", "full"):
            raise ValueError(f"mode must be 'lora' or 'full', not {cfg.mode!r}")
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
        if not cfg.spec_augment:  # holds no weights: the saved model is the same with or without it
            model.clap.nvclap.spec_augmenter = nn.Identity()
        if cfg.mode == "lora":
            model = apply_lora(model, cfg.lora)
        freeze_components(model, cfg.frozen if cfg.mode == "full" else ())
        self.clap_frozen = cfg.mode == "full" and "clap" in cfg.frozen
        clips = ClipCache(self.model_config.audio, max_clips=None if cfg.cache_audio else 0)
        self.train_data = load_examples(cfg, cfg.train_split, train=True)
        self.val_data = load_examples(cfg, cfg.val_split, train=False) if cfg.val_split else None
        if cfg.corpus == "tags":
            self.objective = Tagging(clips, self.train_data.classes, cache_log_mels=cfg.cache_audio)
        else:
            self.objective = LanguageModelling(TrainCollator(tokenizer_for(self.model_config)), clips,
                                               cache_clap_tokens=cfg.cache_clap_tokens and self.clap_frozen,
                                               cache_log_mels=cfg.cache_audio, clap_tokens=clap_tokens)
        module = self.objective.trained_module(model)

        self.global_batch = cfg.batch_size * cfg.grad_accum * self.world
        self.steps_per_epoch = max(1, len(self.train_data) // self.global_batch)
        self.total_steps = cfg.max_steps or max(1, int(round(cfg.epochs * self.steps_per_epoch)))
        params = [p for p in module.parameters() if p.requires_grad]
        # fused AdamW: one kernel over all tensors (the tiny model's 151,669-row embedding dominates otherwise).
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(cfg, self.total_steps))
        self.model, self.optimizer = self.accelerator.prepare(module, self.optimizer)
        self.checkpointer = Checkpointer(self.out, self.accelerator.is_main_process, self.accelerator.wait_for_everyone)
        self.step = 0

    # -- helpers
    @property
    def unwrapped(self) -> nn.Module:
        """The trained module without DDP (the AF2 model, or the AF2 model with a tagging head)."""
        return self.accelerator.unwrap_model(self.model)

    @property
    def af2(self) -> nn.Module:
        """The AF2 model being trained (peft-wrapped under LoRA)."""
        return self.objective.af2(self.unwrapped)

    def global_batch_at(self, step: int) -> tuple[list[int], int]:
        """Indices of the examples optimizer step ``step`` consumes (the same on every process), and the epoch."""
        epoch, within = divmod(step, self.steps_per_epoch)
        order = epoch_order(len(self.train_data), self.cfg.seed, epoch)
        return order[within * self.global_batch:(within + 1) * self.global_batch], epoch

    @property
    def core(self) -> nn.Module:
        """The AF2 model itself (under LoRA: peft's base model, adapters injected)."""
        af2 = self.af2
        return af2.get_base_model() if hasattr(af2, "get_base_model") else af2

    # -- one optimizer step
    def train_step(self, step: int) -> dict[str, float]:
        indices, epoch = self.global_batch_at(step)
        examples = [self.train_data.get(i, epoch) for i in indices]
        n_global = self.objective.units(examples)  # the whole global batch's: the loss is normalised by it
        mine = examples[self.rank::self.world]
        micro = [mine[i::self.cfg.grad_accum] for i in range(self.cfg.grad_accum)]
        self.model.train()
        if self.clap_frozen:
            self.core.clap.eval()
        device, core, total = self.accelerator.device, self.core, 0.0
        for k, chunk in enumerate(micro):
            sync = k == len(micro) - 1
            with self.accelerator.no_sync(self.model) if not sync else contextlib.nullcontext():
                loss_sum = self.objective.loss_sum(self.model, core, chunk, device, self.accelerator.autocast)
                # DDP averages gradients over processes, hence the factor `world`.
                self.accelerator.backward(loss_sum * self.world / n_global)
            total += float(loss_sum.detach())
        # Summed over processes BEFORE the check, so that every process sees the same value and all of them stop
        # (a process whose own share is finite would otherwise step the optimizer on NaN gradients and then block).
        summed = torch.tensor([total], device=device)
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
    def validate(self) -> dict:
        """The objective's validation metrics on the first ``max_val_examples`` of the validation split."""
        if self.val_data is None:
            return {}
        self.model.eval()
        n, bs = min(len(self.val_data), self.cfg.max_val_examples), self.cfg.batch_size
        first = self.rank * bs if self.objective.shard_validation else 0
        stride = bs * self.world if self.objective.shard_validation else bs
        chunks = [[self.val_data.get(i, 0) for i in range(start, min(n, start + bs))] for start in range(first, n, stride)]
        reduce = (lambda t: self.accelerator.reduce(t, reduction="sum")) if self.world > 1 else (lambda t: t)
        return self.objective.validate(self.model, self.core, chunks, self.accelerator.device,
                                       self.accelerator.autocast, reduce)

    # -- checkpoints
    def save_checkpoint(self) -> Path:
        return self.checkpointer.save(self.step, self.total_steps, self.unwrapped, self.optimizer, self.scheduler)

    def resume(self) -> bool:
        step = self.checkpointer.restore(self.unwrapped, self.optimizer, self.scheduler)
        if step is not None:
            self.step = step
        return step is not None

    def save_final(self) -> Path:
        final = self.out / "final"
        if self.accelerator.is_main_process:
            shutil.rmtree(final, ignore_errors=True)
            if self.cfg.mode == "lora":
                base = base_model_name(self.cfg.checkpoint, self.model_config.name)
                save_adapter(self.af2, final, base_model=base)
            else:
                release.save(self.af2, final)
        self.accelerator.wait_for_everyone()
        return final

    # -- the loop
    def _validate_now(self) -> bool:
        every = self.cfg.eval_every and self.step % self.cfg.eval_every == 0
        epoch_end = self.cfg.eval_per_epoch and (self.step % self.steps_per_epoch == 0 or self.step == self.total_steps)
        return bool(every or epoch_end)

    def fit(self, stop_after: int | None = None) -> dict:
        """Train to ``total_steps`` (or stop early after ``stop_after`` steps, as a kill would); returns a summary."""
        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.resume()
        main = self.accelerator.is_main_process
        if main:  # the run's files hold repo-relative paths (config.portable): they are committed under results/
            (self.out / "config.json").write_text(json.dumps(
                portable({"train": self.cfg.to_dict(), "model": self.model_config.to_dict(),
                          "corpus": corpus_fingerprint(self.cfg)}), indent=2))
        if main and resumed:
            _truncate_log(self.out / "metrics.jsonl", self.step)
        log = open(self.out / "metrics.jsonl", "a" if resumed else "w") if main else None
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (main and self.cfg.progress),
                   desc=f"{self.cfg.mode} {self.cfg.corpus} {self.model_config.name}")
        start, done_here, last_val = time.perf_counter(), 0, {}
        try:
            while self.step < self.total_steps:
                if stop_after is not None and done_here >= stop_after:
                    break
                row = self.train_step(self.step)
                self.step += 1
                done_here += 1
                row["step"] = self.step
                if self._validate_now():
                    last_val = self.validate()
                    row.update({k: v for k, v in last_val.items() if isinstance(v, float)})
                if log is not None and (self.step % self.cfg.log_every == 0 or self.step == self.total_steps):
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                shown = {k: f"{v:.3f}" for k, v in row.items() if k in ("loss", "val_loss", "val_map")}
                bar.set_postfix(**shown, lr=f"{row['lr']:.1e}")
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
            validated_last = done_here > 0 and self._validate_now()
            summary.update(last_val if validated_last else self.validate())
            if self.cfg.mode == "lora":
                summary["lora_parameters"] = lora_parameter_counts(self.af2)
            summary["final"] = str(self.save_final())
            if main:
                (self.out / "summary.json").write_text(json.dumps(portable(summary), indent=2))
                if self.cfg.mode == "lora":
                    write_card(summary["final"])
        return summary


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

"""Stage 0 of the tiny base: teach af2-tiny's HTSAT to hear before the Flamingo stage.

AF2 never trains its audio encoder from scratch through the language loss: HTSAT was pretrained on AudioSet
tagging, then contrastively with text (AF-CLAP), and AF2's first stage keeps it frozen. Trained end to end from
random weights, af2-tiny learns to ignore its encoder instead (measured: the audio transformer's output collapsed to a
near-constant token within ~100 steps, and the loss was the same with the right clip and with another one's). So the
embedded base is made in two stages, both on the generated caption corpus:

0. ``pretrain_audio_encoder`` (here): HTSAT learns to tag the sound classes each caption names (species, events, call
   shapes). A linear head scores every CLAP token; a clip's score for a class is its best token's (max pooling, so
   each token has to say what sounds at its time and frequency); binary cross-entropy. The head is thrown away; the
   whole model (random apart from CLAP) is saved in the release layout.
1. ``train.Trainer`` with ``frozen=("clap",)``: the audio transformer, cross-attention and LM learn the captions and
   the multiple-choice questions from CLAP tokens computed once per clip (AF2's first stage).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .audio import ClipCache, pad_window_batch
from .config import AudioPretrainConfig, ModelConfig
from .data.mini import SOUND_CLASSES, read_captions
from .model import build_model
from .model import checkpoint as release
from .train import epoch_order, lr_lambda


class CaptionTags:
    """(clip path, multi-hot target over ``classes``) per line of ``captions/<split>.jsonl``: a class is present
    when the caption names it."""

    def __init__(self, root: str | Path, split: str, classes: tuple[str, ...] = SOUND_CLASSES):
        self.classes = classes

        def tags(row: dict) -> tuple[Path, torch.Tensor]:
            text = row["text"].lower()
            return Path(root) / row["audio"], torch.tensor([float(c in text) for c in classes])

        self.items: list[tuple[Path, torch.Tensor]] = read_captions(root, split, tags)
        if not self.items:
            raise ValueError(f"{Path(root) / 'captions' / f'{split}.jsonl'}: no captions")

    def __len__(self) -> int:
        return len(self.items)


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-class average precision of (N, C) scores against (N, C) 0/1 targets; NaN for a class with no positive."""
    order = scores.argsort(dim=0, descending=True)
    hits = targets.gather(0, order)
    precision_at = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=hits.dtype)[:, None]
    positives = hits.sum(0)
    return torch.where(positives > 0, (precision_at * hits).sum(0) / positives.clamp(min=1), torch.nan)


class TagHead(nn.Module):
    """CLAP tokens (B, N, D) with mask (B, N) -> clip logits (B, C): a linear score per token, max over the clip."""

    def __init__(self, dim: int, n_classes: int):
        super().__init__()
        self.proj = nn.Linear(dim, n_classes)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.proj(tokens).masked_fill(~mask[..., None], torch.finfo(tokens.dtype).min)
        return logits.max(dim=1).values


@contextmanager
def _without_spec_augment(clap_module: nn.Module, enabled: bool):
    """laion-clap's HTSAT applies SpecAugment in train mode; on a corpus this small it mostly hides the evidence.
    (It holds no weights, so swapping it out leaves the state dict as it is.)"""
    original = clap_module.spec_augmenter
    if not enabled:
        clap_module.spec_augmenter = nn.Identity()
    try:
        yield
    finally:
        clap_module.spec_augmenter = original


def pretrain_audio_encoder(cfg: AudioPretrainConfig) -> dict:
    """Train a fresh model's CLAP on caption tags; save the whole model to ``<out_dir>/final`` (release layout).

    Writes ``config.json``, ``metrics.jsonl`` (per step: loss, lr; per epoch: dev mAP) and ``summary.json`` in
    ``out_dir``; returns the summary (steps, seconds, final dev mAP and per-class AP).
    """
    out = Path(cfg.out_dir)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    model = build_model(ModelConfig.resolve(cfg.model), device=device)
    (out / "config.json").write_text(json.dumps({"audio_pretrain": cfg.to_dict(), "model": model.config.to_dict()},
                                                indent=2))
    train, dev = CaptionTags(cfg.data_root, "train"), CaptionTags(cfg.data_root, "dev")
    head = TagHead(model.config.audio_dim, len(train.classes)).to(device)
    params = [p for p in model.clap.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(train) // cfg.batch_size)
    total = max(1, int(round(cfg.epochs * steps_per_epoch)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, total))
    clips = ClipCache(model.config.audio)

    def clip_logits(items: list[tuple[Path, torch.Tensor]]) -> torch.Tensor:
        windows, mask = pad_window_batch([clips.get(path) for path, _ in items])
        tokens, token_mask = model.clap_tokens(windows.to(device), mask.to(device))
        return head(tokens, token_mask)

    @torch.no_grad()
    def dev_ap() -> torch.Tensor:
        model.clap.eval()
        scores = torch.cat([clip_logits(dev.items[i:i + cfg.batch_size]).cpu()
                            for i in range(0, len(dev), cfg.batch_size)])
        return average_precision(scores, torch.stack([t for _, t in dev.items]))

    log = open(out / "metrics.jsonl", "w")
    bar = tqdm(total=total, disable=not cfg.progress, desc=f"audio encoder {model.config.name}")
    start, step, ap = time.perf_counter(), 0, None
    try:
        with _without_spec_augment(model.clap.nvclap, cfg.spec_augment):
            while step < total:
                epoch, within = divmod(step, steps_per_epoch)
                order = epoch_order(len(train), cfg.seed, epoch)
                batch = [train.items[i] for i in order[within * cfg.batch_size:(within + 1) * cfg.batch_size]]
                model.clap.train()
                loss = F.binary_cross_entropy_with_logits(clip_logits(batch),
                                                          torch.stack([t for _, t in batch]).to(device))
                if not math.isfinite(loss.detach().item()):
                    raise FloatingPointError(f"non-finite tagging loss at step {step}; stopped")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                step += 1
                row = {"step": step, "loss": loss.detach().item(), "lr": scheduler.get_last_lr()[0]}
                if step % steps_per_epoch == 0 or step == total:
                    ap = dev_ap()
                    row.update(epoch=epoch + 1, val_map=float(ap.nanmean()))
                log.write(json.dumps(row) + "\n")
                bar.set_postfix(loss=f"{row['loss']:.3f}", **({"dev_mAP": f"{row['val_map']:.3f}"} if "val_map" in row else {}))
                bar.update(1)
    finally:
        bar.close()
        log.close()
    release.save(model, out / "final")
    summary = {"steps": step, "seconds": round(time.perf_counter() - start, 2), "examples": len(train),
               "val_map": float(ap.nanmean()), "val_ap": dict(zip(train.classes, [round(float(a), 4) for a in ap])),
               "final": str(out / "final")}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary

"""Reusing CLAP features when CLAP is not adapted: one training epoch with and without a CLAP-token cache.

With LoRA on the audio transformer and the LM only (``components=("audio_transformer", "lm")``), nothing in CLAP
trains, so each window's CLAP tokens (``AF2Model.clap_tokens``) are the same every epoch and can be computed once.

- epoch "encode": every step runs the whole model from the waveforms (``forward(windows=..., labels=...)``), as the
  Trainer does;
- epoch "cached": the CLAP tokens of all examples are computed once up front under ``torch.no_grad`` (the
  "precompute", timed separately), then each step runs ``memory_from_clap_tokens`` (audio transformer, with its
  LoRA) + the LM from those tokens.

Both: forward with labels + backward + AdamW step, ``--examples`` single-window examples in batches of
``--batch-size``. Reported: epoch times (median of ``--repeats``), the speed-up without and with the one-off
precompute, and a check that both paths give the same loss (eval mode, where CLAP is deterministic).

Caveat: in train mode HTSAT applies SpecAugment to its input; cached tokens are computed once in eval mode, so the
cached epochs train without CLAP's SpecAugment (and without any other train-mode randomness inside CLAP).

    .venv/bin/python benchmarks/clap_cache.py
    .venv/bin/python benchmarks/clap_cache.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import sys

import common  # noqa: F401
import torch
from common import (add_common_args, apply_common_args, out_dir_for, quiet_warnings, summarise, synthetic_batch,
                    time_call, write_result)
from tqdm.auto import tqdm

from aqa_utils.config import LoraSettings, ModelConfig
from aqa_utils.lora import apply_lora, lora_parameter_counts
from aqa_utils.model import build_model

COMPONENTS = ("audio_transformer", "lm")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=64, help="single-window examples per epoch (default 64)")
    p.add_argument("--batch-size", type=int, default=8, help="examples per step (default 8)")
    p.add_argument("--repeats", type=int, default=3, help="epochs of each kind, median reported (default 3)")
    p.add_argument("--text-len", type=int, default=64, help="tokens per example (default 64)")
    p.add_argument("--label-len", type=int, default=8, help="labelled tokens at the end (default 8)")
    p.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    p.add_argument("--model", default="af2-tiny", help="preset or config file (default af2-tiny)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    add_common_args(p)
    p.set_defaults(threads=1)
    args = p.parse_args(argv)
    if args.quick:
        args.examples, args.batch_size, args.repeats = 8, 4, 1
    load_before = apply_common_args(args)
    device = torch.device(args.device)
    cfg = ModelConfig.resolve(args.model)

    torch.manual_seed(args.seed)
    with quiet_warnings():
        base = build_model(cfg, device=device)
        model = apply_lora(base, LoraSettings(rank=args.rank, components=COMPONENTS))
    clap_trainable = sum(p.numel() for p in base.clap.parameters() if p.requires_grad)
    assert clap_trainable == 0, "CLAP must be frozen for its features to be cacheable"
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
    data = synthetic_batch(cfg, args.examples, 1, args.text_len, args.label_len, device, seed=args.seed)
    starts = list(range(0, args.examples, args.batch_size))

    def rows(i: int) -> slice:
        return slice(i, min(i + args.batch_size, args.examples))

    def step(loss: torch.Tensor) -> None:
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def epoch_encode() -> None:
        model.train()
        for i in starts:
            r = rows(i)
            out = model(data["input_ids"][r], data["attention_mask"][r], windows=data["windows"][r],
                        window_mask=data["window_mask"][r], labels=data["labels"][r])
            step(out.loss)

    def precompute() -> tuple[torch.Tensor, torch.Tensor]:
        was = base.clap.training
        base.clap.eval()  # the cache holds deterministic features (no SpecAugment)
        try:
            with torch.no_grad():
                parts = [base.clap_tokens(data["windows"][rows(i)], data["window_mask"][rows(i)]) for i in starts]
        finally:
            base.clap.train(was)
        return torch.cat([t for t, _ in parts]), torch.cat([m for _, m in parts])

    def epoch_cached(tokens: torch.Tensor, mask: torch.Tensor) -> None:
        model.train()
        for i in starts:
            r = rows(i)
            memory = base.memory_from_clap_tokens(tokens[r], mask[r])
            out = model(data["input_ids"][r], data["attention_mask"][r], memory=memory, labels=data["labels"][r])
            step(out.loss)

    # Same loss both ways (eval mode: CLAP deterministic, LoRA dropout off), before any training step.
    model.eval()
    with torch.no_grad(), quiet_warnings():
        r = rows(0)
        direct = model(data["input_ids"][r], data["attention_mask"][r], windows=data["windows"][r],
                       window_mask=data["window_mask"][r], labels=data["labels"][r]).loss
        tok, msk = base.clap_tokens(data["windows"][r], data["window_mask"][r])
        cached = model(data["input_ids"][r], data["attention_mask"][r], memory=base.memory_from_clap_tokens(tok, msk),
                       labels=data["labels"][r]).loss
    same = {"loss_encode": float(direct), "loss_cached": float(cached),
            "abs_diff": abs(float(direct) - float(cached))}

    times: dict[str, list[float]] = {"encode": [], "cached": [], "precompute": []}
    with quiet_warnings():
        # Warm-up: one step of each path (not timed).
        tokens, mask = precompute()
        r = rows(0)
        step(model(data["input_ids"][r], data["attention_mask"][r], windows=data["windows"][r],
                   window_mask=data["window_mask"][r], labels=data["labels"][r]).loss)
        step(model(data["input_ids"][r], data["attention_mask"][r],
                   memory=base.memory_from_clap_tokens(tokens[r], mask[r]), labels=data["labels"][r]).loss)
        # Alternate the two kinds so slow phases of the shared machine hit both alike.
        for _ in tqdm(range(args.repeats), desc="epochs"):
            t, _ = time_call(epoch_encode, device)
            times["encode"].append(t)
            t, (tokens, mask) = time_call(precompute, device)
            times["precompute"].append(t)
            t, _ = time_call(lambda: epoch_cached(tokens, mask), device)
            times["cached"].append(t)

    med = {k: statistics.median(v) for k, v in times.items()}
    results = {
        "epoch_encode": summarise(times["encode"]),
        "epoch_cached": summarise(times["cached"]),
        "precompute": summarise(times["precompute"]),
        "speedup_excluding_precompute": med["encode"] / med["cached"],
        "speedup_including_precompute": med["encode"] / (med["cached"] + med["precompute"]),
        "speedup_over_10_epochs_one_precompute": 10 * med["encode"] / (10 * med["cached"] + med["precompute"]),
        "cache_bytes": tokens.numel() * tokens.element_size(),
        "cache_bytes_per_window": tokens[0].numel() * tokens.element_size(),
        "same_loss_check": same,
        "lora_parameters": lora_parameter_counts(model),
    }
    settings = {"model": cfg.name, "device": str(device), "examples": args.examples, "windows_per_example": 1,
                "batch_size": args.batch_size, "steps_per_epoch": len(starts), "repeats": args.repeats,
                "text_len": args.text_len, "label_len": args.label_len, "rank": args.rank,
                "lora_components": list(COMPONENTS), "precision": "fp32", "quick": args.quick}
    notes = [
        "Shared machine: other processes ran concurrently; medians of epochs run alternately (encode, precompute, "
        "cached).",
        "torch threads default to 1 (2 OpenMP threads thrash when the cores are oversubscribed).",
        "The cached path trains without CLAP's train-mode SpecAugment (features computed once in eval mode).",
        "Not applicable to the report's configuration, which adapts CLAP's qkv too: then CLAP must run every step.",
    ]
    path = write_result("clap_cache", settings, results, device, notes, load_before, out_dir_for(args))
    print(f"epoch encode {med['encode']:.2f} s, cached {med['cached']:.2f} s (+ precompute {med['precompute']:.2f} s): "
          f"speed-up {results['speedup_excluding_precompute']:.2f}x excluding, "
          f"{results['speedup_including_precompute']:.2f}x including the precompute; "
          f"loss check diff {same['abs_diff']:.2e}\n-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

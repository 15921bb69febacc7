"""Cost of one LoRA training step on af2-tiny: step time and peak memory against audio length, rank, checkpointing.

One step = forward with labels (``AF2Model.forward(..., labels) -> LossOutput``) + backward + AdamW step, on a
peft-wrapped model (``apply_lora``; adapters on CLAP qkv, audio transformer w_qs/w_ks/w_vs, LM q/k/v, as the
report). Synthetic inputs: random audio in every window, random token ids, labels on the last ``--label-len``
tokens. Sweeps:

- windows of 10 s per clip (default 1, 3, 6, 12) at rank 8, checkpointing off;
- LoRA rank (default 8, 16, 32) at 1 window;
- gradient checkpointing on vs off at ``--ckpt-windows`` (default 1 and 12) at rank 8.

Time: median of ``--steps`` steps after ``--warmup`` steps, the configurations taking turns step by step. Memory (CPU): the resident-set peak of one further step
above the resident set before it (weights, optimizer state and inputs are in the baseline), measured after all
timings with glibc's mmap threshold pinned (see common.py); on CUDA ``torch.cuda.max_memory_allocated``.
A fit ``time = a + b * windows`` tells how the cost grows with audio length.

    .venv/bin/python benchmarks/train_cost.py            # ~1.5-3 min on 2 shared cores
    .venv/bin/python benchmarks/train_cost.py --quick
    .venv/bin/python benchmarks/train_cost.py --device cuda --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import common  # noqa: F401
import torch
from common import (MiB, PeakMemory, add_common_args, apply_common_args, cpu_memory_mode, linear_fit, out_dir_for,
                    quiet_warnings, summarise, synthetic_batch, time_call, write_result)
from tqdm.auto import tqdm

from aqa_utils.config import LoraSettings, ModelConfig
from aqa_utils.lora import apply_lora, lora_parameter_counts
from aqa_utils.model import build_model
from memory_full_scale import Bytes, activation_peak, activation_terms


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


class Setup:
    """af2-tiny + LoRA at one rank, with its AdamW (fused where the device supports it)."""

    def __init__(self, cfg: ModelConfig, rank: int, device: torch.device, seed: int):
        torch.manual_seed(seed)
        with quiet_warnings():
            base = build_model(cfg, device=device)
            self.model = apply_lora(base, LoraSettings(rank=rank))
        self.base = base
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-4, fused=True)
        self.model.train()
        self.lora = lora_parameter_counts(self.model)

    def step(self, batch: dict[str, torch.Tensor]) -> float:
        out = self.model(batch["input_ids"], batch["attention_mask"], windows=batch["windows"],
                         window_mask=batch["window_mask"], labels=batch["labels"])
        out.loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(out.loss.detach())


def memory_phase(args, configs: list[tuple[int, int, bool]]) -> dict:
    """Peak memory of one step per configuration, after a warm-up step (AdamW state exists), pinned allocator."""
    pinned = cpu_memory_mode()
    cfg = ModelConfig.resolve(args.model)
    device = torch.device(args.device)
    peaks, method = {}, ""
    setups: dict[int, Setup] = {}
    with quiet_warnings():
        for rank, windows, ckpt in configs:
            if rank not in setups:
                setups[rank] = Setup(cfg, rank, device, args.seed)
            s = setups[rank]
            s.base.set_gradient_checkpointing(ckpt)
            batch = synthetic_batch(cfg, args.batch_size, windows, args.text_len, args.label_len, device,
                                    seed=args.seed + windows)
            s.step(batch)
            with PeakMemory(device) as m:
                s.step(batch)
            peaks[json.dumps([rank, windows, ckpt])] = m.peak_bytes
            method = m.method
            print(f"memory r={rank} windows={windows} ckpt={ckpt}: +{m.peak_bytes / MiB:.0f} MiB", file=sys.stderr)
    return {"peaks": peaks, "method": method + ("" if pinned else " (allocator could not be pinned)")}


def memory_subprocess(args, configs) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-phase", json.dumps(configs),
           "--model", args.model, "--device", args.device, "--batch-size", str(args.batch_size),
           "--text-len", str(args.text_len), "--label-len", str(args.label_len), "--seed", str(args.seed)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    print("memory phase (separate process) ...", file=sys.stderr)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--windows", type=ints, default=[1, 3, 6, 12], help="windows per clip to sweep (default 1,3,6,12)")
    p.add_argument("--ranks", type=ints, default=[8, 16, 32], help="LoRA ranks to sweep at 1 window (default 8,16,32)")
    p.add_argument("--ckpt-windows", type=ints, default=[1, 12],
                   help="windows at which checkpointing on is compared with off (default 1,12)")
    p.add_argument("--batch-size", type=int, default=4, help="clips per step (default 4)")
    p.add_argument("--text-len", type=int, default=64, help="tokens per sequence (default 64)")
    p.add_argument("--label-len", type=int, default=8, help="labelled (answer) tokens at the end (default 8)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per configuration, median reported (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    p.add_argument("--model", default="af2-tiny", help="preset or config file (default af2-tiny)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory-phase", default=None, help=argparse.SUPPRESS)  # internal: JSON list of configs
    add_common_args(p)
    p.set_defaults(threads=1)
    args = p.parse_args(argv)
    if args.memory_phase is not None:
        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps(memory_phase(args, [tuple(c) for c in json.loads(args.memory_phase)])))
        return 0
    if args.quick:
        args.windows, args.ranks, args.ckpt_windows = [1, 2], [8, 16], [2]
        args.batch_size, args.steps, args.warmup = 2, 1, 1
    load_before = apply_common_args(args)
    device = torch.device(args.device)
    cfg = ModelConfig.resolve(args.model)

    # (rank, windows, checkpointing) configurations, in the order they run.
    configs = [(8, w, False) for w in args.windows]
    configs += [(r, 1, False) for r in args.ranks if (r, 1, False) not in configs]
    configs += [(8, w, True) for w in args.ckpt_windows]
    configs += [(8, w, False) for w in args.ckpt_windows if (8, w, False) not in configs]
    ranks = sorted({c[0] for c in configs})
    setups = {r: Setup(cfg, r, device, args.seed) for r in tqdm(ranks, desc="build models", leave=False)}
    batches: dict[int, dict] = {}

    def batch_for(windows: int) -> dict:
        if windows not in batches:
            batches[windows] = synthetic_batch(cfg, args.batch_size, windows, args.text_len, args.label_len, device,
                                               seed=args.seed + windows)
        return batches[windows]

    rows: dict[tuple, dict] = {}
    print(f"{len(configs)} configurations on {device}, batch {args.batch_size}, torch threads "
          f"{torch.get_num_threads()}", file=sys.stderr)
    times: dict[tuple, list[float]] = {c: [] for c in configs}
    mem: dict[tuple, int] = {c: 0 for c in configs}
    with quiet_warnings():
        for s in setups.values():  # process warm-up: lazy initialisation, allocator growth
            for _ in range(2):
                s.step(batch_for(min(args.windows)))
        for c in configs:
            setups[c[0]].base.set_gradient_checkpointing(c[2])
            for _ in range(args.warmup):
                setups[c[0]].step(batch_for(c[1]))
        # Round-robin: repeat i of every configuration before repeat i+1 of any, so slow phases of the shared
        # machine spread over all configurations instead of biasing the ones that happened to run then.
        with tqdm(total=len(configs) * args.steps, desc="timing") as bar:
            for _ in range(args.steps):
                for c in configs:
                    s, batch = setups[c[0]], batch_for(c[1])
                    s.base.set_gradient_checkpointing(c[2])
                    if device.type == "cuda":  # CUDA peaks are exact and free: measure during the timed steps
                        with PeakMemory(device) as m:
                            t, _ = time_call(lambda: s.step(batch), device)
                        mem[c] = max(mem[c], m.peak_bytes)
                    else:
                        t, _ = time_call(lambda: s.step(batch), device)
                    times[c].append(t)
                    bar.update()
        for c in configs:
            rows[c] = {"rank": c[0], "windows": c[1], "gradient_checkpointing": c[2], **summarise(times[c]),
                       "peak_memory_bytes": mem[c] or None}

        lora = {r: setups[r].lora for r in ranks}
        base_params = sum(p.numel() for p in setups[ranks[0]].base.parameters() if not p.requires_grad)
        method = None
        if device.type == "cpu":
            # In a fresh process: the pinned allocator makes steps slower (so not during timing), and memory
            # measured after the timing phase would count re-faulted pages of its fragmented heap as growth.
            setups.clear()  # free the timing phase's models before the other process builds its own
            measured = memory_subprocess(args, configs)
            for key, value in measured["peaks"].items():
                rank, windows, ckpt = json.loads(key)
                rows[(rank, windows, bool(ckpt))]["peak_memory_bytes"] = value
            method = measured["method"]
        else:
            method = PeakMemory(device).__enter__().method

    table = list(rows.values())
    for r in table:
        r["peak_memory_mib"] = r["peak_memory_bytes"] / MiB if r["peak_memory_bytes"] is not None else None
        # memory_full_scale.py's analytic estimate of the same step (CPU dropout masks are float: m=4)
        est = activation_peak(activation_terms(cfg, r["windows"], args.batch_size, args.text_len, args.label_len,
                                               r["rank"], b=Bytes(m=4 if device.type == "cpu" else 1)),
                              r["gradient_checkpointing"])
        r["formula_peak_mib"] = est["peak"] / MiB
        r["formula_kept_for_backward_mib"] = est["kept"] / MiB
        r["formula_mel_frontend_mib"] = est["frontend"] / MiB
        r["windows_per_s"] = args.batch_size * r["windows"] / r["median_s"]

    sweep = [rows[(8, w, False)] for w in args.windows]
    fits = {}
    if len(sweep) >= 2:
        fits["time_s_vs_windows"] = linear_fit([r["windows"] for r in sweep], [r["median_s"] for r in sweep])
        fits["peak_memory_mib_vs_windows"] = linear_fit([r["windows"] for r in sweep],
                                                        [r["peak_memory_mib"] for r in sweep])
        b = fits["time_s_vs_windows"]["b"]
        fits["step_seconds_per_extra_window_per_clip"] = b
        fits["seconds_per_10s_of_audio"] = b / args.batch_size
    ckpt_cmp = []
    for w in args.ckpt_windows:
        off, on = rows[(8, w, False)], rows[(8, w, True)]
        ckpt_cmp.append({"windows": w, "time_ratio_on_over_off": on["median_s"] / off["median_s"],
                         "memory_ratio_on_over_off": (on["peak_memory_mib"] / off["peak_memory_mib"]
                                                      if off["peak_memory_mib"] else None)})

    settings = {"model": cfg.name, "device": str(device), "batch_size": args.batch_size, "text_len": args.text_len,
                "label_len": args.label_len, "steps": args.steps, "warmup": args.warmup, "precision": "fp32",
                "optimizer": "AdamW (fused), zero_grad(set_to_none=True)", "lora_components": list(
                    LoraSettings().components), "memory_method": method, "quick": args.quick}
    results = {"steps": table, "fits": fits, "checkpointing": ckpt_cmp, "lora_parameters": lora,
               "frozen_base_parameters": base_params}
    notes = [
        "Shared machine: other processes ran concurrently (load averages in machine); each time is a median.",
        "torch threads default to 1 (2 OpenMP threads thrash when the cores are oversubscribed).",
        "CPU peak memory = resident-set high-water mark of one step above the resident set before it: activations "
        "kept for backward, gradients of the LoRA tensors and temporaries; the weights, AdamW states and the inputs "
        "are in the baseline. Not comparable with CUDA numbers (allocator differs).",
        "af2-tiny's step peak is set by the mel front end (the STFT of all B*L windows at once, ~10 MiB per 10 s "
        "window), not by the activations kept for backward (formula_kept_for_backward_mib), so gradient "
        "checkpointing does not lower it here; the formula_* columns are memory_full_scale.py's estimate.",
        "af2-tiny's cost is dominated by its audio encoder (HTSAT at spec_size 256, 4096 tokens per window in stage "
        "1), so time grows about linearly with windows; the LM part is tiny.",
    ]
    path = write_result("train_cost", settings, results, device, notes, load_before, out_dir_for(args))
    for r in table:
        print(f"r={r['rank']:>2} windows={r['windows']:>2} ckpt={'on ' if r['gradient_checkpointing'] else 'off'} "
              f"step {r['median_s']:.3f} s (min {r['min_s']:.3f})  peak +{r['peak_memory_mib']:.0f} MiB")
    if fits:
        f = fits["time_s_vs_windows"]
        print(f"time ~ {f['a']:.3f} + {f['b']:.3f} * windows s (R^2 {f['r2']:.3f})")
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

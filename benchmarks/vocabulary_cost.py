"""What af2-tiny's trimmed vocabulary buys: one training step with AF2's 151,669-token vocabulary against the
mini benchmark's (``LMConfig.vocabulary = "mini"``), everything else equal.

Two steps, as the workbook trains them, on synthetic inputs (``common.synthetic_batch``: token ids below the
specials of the smaller vocabulary, labels on the last ``--label-len`` tokens):

- **base**: a stage-1 step of the tiny base (every weight but CLAP trains; CLAP tokens precomputed, as the Trainer
  caches them for a frozen CLAP): forward from the tokens with labels, backward, gradient clipping, AdamW;
- **lora**: a LoRA r=8 step on all three components from the waveforms (CLAP runs, with its adapters).

The head and tied embedding scale with the vocabulary; nothing else does. Time: median of ``--steps`` steps after
``--warmup``, the two vocabularies taking turns step by step.

    .venv/bin/python benchmarks/vocabulary_cost.py      # ~2 min on 2 cores
    .venv/bin/python benchmarks/vocabulary_cost.py --quick
"""

from __future__ import annotations

import argparse
import copy
import sys

import common  # noqa: F401
import torch
from common import (add_common_args, apply_common_args, out_dir_for, quiet_warnings, summarise, synthetic_batch,
                    time_call, write_result)
from tqdm.auto import tqdm

from aqa_utils.config import AF2_VOCAB_SIZE, LoraSettings, ModelConfig
from aqa_utils.lora import apply_lora
from aqa_utils.model import build_model


def configs() -> dict[str, ModelConfig]:
    mini = ModelConfig.preset("af2-tiny")
    full = copy.deepcopy(mini)
    full.lm.vocab_size, full.lm.vocabulary = AF2_VOCAB_SIZE, None
    return {"af2 (151,669)": full, f"mini ({mini.lm.vocab_size})": mini}


class Step:
    """One kind of step (``kind`` "base" or "lora") on one model, with its optimizer and inputs."""

    def __init__(self, cfg: ModelConfig, kind: str, batch: dict, seed: int):
        torch.manual_seed(seed)
        with quiet_warnings():
            model = build_model(cfg)
            if kind == "lora":
                model = apply_lora(model, LoraSettings(rank=8))
            else:
                model.clap.requires_grad_(False)
                with torch.no_grad():
                    self.tokens = model.clap_tokens(batch["windows"], batch["window_mask"])
        self.model, self.kind, self.batch = model.train(), kind, batch
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-4)

    def __call__(self) -> float:
        b = self.batch
        audio = dict(clap_tokens=self.tokens) if self.kind == "base" else dict(windows=b["windows"],
                                                                               window_mask=b["window_mask"])
        loss = self.model(b["input_ids"], b["attention_mask"], labels=b["labels"], **audio).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=8, help="examples per step (default 8, as the base stages)")
    p.add_argument("--windows", type=int, default=1, help="10 s windows per clip (default 1)")
    p.add_argument("--text-len", type=int, default=64, help="tokens per example (default 64)")
    p.add_argument("--label-len", type=int, default=12, help="labelled tokens at the end (default 12)")
    p.add_argument("--steps", type=int, default=15, help="timed steps per configuration (default 15)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    add_common_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.batch_size = 2, 1, 2
    load_before = apply_common_args(args)
    cfgs = configs()
    smallest = min(cfgs.values(), key=lambda c: c.lm.vocab_size)
    batch = synthetic_batch(smallest, args.batch_size, args.windows, args.text_len, args.label_len, seed=args.seed)
    results = {}
    for kind in ("base", "lora"):
        steps = {name: Step(cfg, kind, batch, args.seed) for name, cfg in cfgs.items()}
        times: dict[str, list[float]] = {name: [] for name in steps}
        for i in tqdm(range(args.warmup + args.steps), desc=f"{kind} steps", file=sys.stderr):
            for name, step in steps.items():  # taking turns: a load change hits both alike
                t, _ = time_call(step)
                if i >= args.warmup:
                    times[name].append(t)
        rows = {name: {"trainable_parameters": sum(p.numel() for p in step.params), **summarise(times[name])}
                for name, step in steps.items()}
        full, mini = rows.values()
        results[kind] = {"by_vocabulary": rows, "speedup": full["median_s"] / mini["median_s"]}
        print(f"{kind}: " + ", ".join(f"{n} {r['median_s']:.3f} s" for n, r in rows.items())
              + f" -> {results[kind]['speedup']:.1f}x", file=sys.stderr)
    settings = {k: getattr(args, k) for k in ("batch_size", "windows", "text_len", "label_len", "steps", "warmup",
                                              "seed")} | {"model": "af2-tiny", "threads": torch.get_num_threads()}
    path = write_result("vocabulary_cost", settings, results, load_before=load_before, out_dir=out_dir_for(args))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

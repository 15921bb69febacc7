"""Greedy generation speed on af2-tiny and how often the cross-attention keys/values are computed.

The audio is fixed during generation, so each gated cross-attention block's keys/values (``to_kv`` of the
audio memory) are needed once per ``generate`` call. Issue 17 found them recomputed at every decoding step
(``cache.setdefault(key, keys_values(...))`` evaluates its argument each time). This script times
``AF2Model.generate`` (seeded random af2-tiny, a fixed random audio memory standing in for the audio
transformer's output, no stop token so every row decodes exactly ``--new-tokens`` tokens) at batch 1 and 8 with 1
and 12 windows, and counts ``keys_values`` calls per ``generate``. Two modes, timed in alternation so machine
load hits both alike:

  as_is:                the model's ``generate`` as the checked-out code runs it;
  recompute_each_step:  the same, with a key/value cache that never returns a hit, so every decoding step projects
                        the audio again (the cost of the code before the fix; same tokens).

Each run is stored under ``--label`` in ``results/bench/generation_kv_cache.json`` next to the runs already there
(the code before the fix was measured with ``--label before``, after it with ``--label after``; in ``before`` the
two modes cost the same).

    .venv/bin/python benchmarks/generation_kv_cache.py --label after --threads 1
    .venv/bin/python benchmarks/generation_kv_cache.py --quick
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys

import common  # noqa: F401  (sys.path, offline switches)
import torch
from common import ROOT, add_common_args, apply_common_args, git_head, out_dir_for, quiet_warnings, time_call, write_result

from aqa_utils.config import SPECIAL_TOKENS, ModelConfig
from aqa_utils.model import AudioMemory, build_model
from aqa_utils.model.xattn import MaskedCrossAttention


class _NeverHit(dict):
    """A key/value cache whose lookups always miss (entries are still stored)."""

    def get(self, key, default=None):
        return default


@contextlib.contextmanager
def recompute_each_step():
    """Within this block ``generate`` recomputes the cross-attention keys/values at every step."""
    original = AudioMemory.cached
    AudioMemory.cached = lambda self: AudioMemory(self.tokens, self.mask, _NeverHit())
    try:
        yield
    finally:
        AudioMemory.cached = original


class CountKeysValues:
    """Counts ``MaskedCrossAttention.keys_values`` calls while active."""

    def __enter__(self):
        self.calls, self.original = 0, MaskedCrossAttention.keys_values
        counter = self

        def counted(module, audio):
            counter.calls += 1
            return counter.original(module, audio)

        MaskedCrossAttention.keys_values = counted
        return self

    def __exit__(self, *exc):
        MaskedCrossAttention.keys_values = self.original


def measure(model, batch: int, windows: int, new_tokens: int, prompt_len: int, repeats: int) -> dict:
    g = torch.Generator().manual_seed(batch * 100 + windows)
    cfg = model.config
    tokens = torch.randn(batch, 64 * windows, cfg.audio_dim, generator=g)
    memory = AudioMemory(tokens, torch.ones(batch, 64 * windows, dtype=torch.bool))
    ids = torch.randint(0, cfg.lm.vocab_size - SPECIAL_TOKENS, (batch, prompt_len), generator=g)
    mask = torch.ones_like(ids)

    def run():
        return model.generate(memory, ids, mask, max_new_tokens=new_tokens, stop_ids=(),
                              pad_id=cfg.lm.vocab_size - 2)  # <|PAD_TOKEN|>, second to last

    def recomputing():
        with recompute_each_step():
            return run()

    modes = {"as_is": run, "recompute_each_step": recomputing}
    row = {"batch": batch, "windows": windows, "new_tokens": new_tokens, "prompt_tokens": prompt_len,
           "xattn_layers": sum(layer.gated_cross_attn_layer_sound is not None for layer in model.flamingo_layers)}
    outputs = {}
    for name, fn in modes.items():
        fn()  # warm-up
        with CountKeysValues() as counter:
            outputs[name] = fn()
        assert all(len(r) == new_tokens for r in outputs[name])
        row[name] = {"keys_values_calls_per_generate": counter.calls, "samples_s": []}
    assert outputs["as_is"] == outputs["recompute_each_step"]
    for _ in range(repeats):  # alternate the modes
        for name, fn in modes.items():
            row[name]["samples_s"].append(round(time_call(fn)[0], 5))
    for name in modes:
        median = statistics.median(row[name]["samples_s"])
        row[name].update(median_s=median, tokens_per_s=batch * new_tokens / median,
                         ms_per_step=1000 * median / new_tokens)
    row["recompute_over_as_is"] = row["recompute_each_step"]["median_s"] / row["as_is"]["median_s"]
    return row


def _blob(path) -> str | None:
    """git's hash of the file as it is on disk: which model code a run measured, even if uncommitted."""
    try:
        return subprocess.run(["git", "hash-object", str(path)], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--label", default="current", help="name of this run in the JSON (e.g. before / after)")
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--prompt-tokens", type=int, default=24)
    p.add_argument("--repeats", type=int, default=7, help="timed runs per mode, alternating (median reported)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads is None:
        args.threads = 1
    load_before = apply_common_args(args)
    settings_grid = [(1, 1), (8, 1), (1, 12), (8, 12)]
    if args.quick:
        settings_grid, args.new_tokens, args.repeats = [(1, 1), (2, 12)], 4, 1
    torch.manual_seed(args.seed)
    model = build_model(ModelConfig.preset("af2-tiny"), device="cpu").eval()
    rows = []
    with quiet_warnings():
        for batch, windows in settings_grid:
            row = measure(model, batch, windows, args.new_tokens, args.prompt_tokens, args.repeats)
            rows.append(row)
            a, r = row["as_is"], row["recompute_each_step"]
            print(f"[{args.label}] batch {batch:>2} windows {windows:>2}: as_is {a['tokens_per_s']:7.1f} tokens/s "
                  f"({a['keys_values_calls_per_generate']} keys_values calls), recompute_each_step "
                  f"{r['tokens_per_s']:7.1f} tokens/s ({r['keys_values_calls_per_generate']} calls): "
                  f"x{row['recompute_over_as_is']:.2f}", file=sys.stderr)
    out_dir = out_dir_for(args)
    previous = out_dir / "generation_kv_cache.json"
    runs = {}
    if previous.exists():
        runs = json.loads(previous.read_text()).get("results", {}).get("runs", {})
    runs[args.label] = {"git_head": git_head(), "flamingo_py_blob": _blob(ROOT / "aqa_utils" / "model" / "flamingo.py"),
                        "threads": torch.get_num_threads(), "load_average_before": load_before,
                        "rows": rows}
    results = {"runs": runs}
    settings = {"model": "af2-tiny (random weights, torch.manual_seed(%d))" % args.seed,
                "grid_batch_windows": settings_grid, "new_tokens": args.new_tokens,
                "prompt_tokens": args.prompt_tokens, "repeats": args.repeats, "quick": args.quick}
    notes = ["Every row decodes exactly new_tokens tokens (no stop token); the audio memory is random tokens of the "
             "audio transformer's output shape, so CLAP and the audio transformer are not timed.",
             "Compare modes within a run (alternated, same load); runs under different labels are separate "
             "processes whose machine load may differ (load averages in each run)."]
    path = write_result("generation_kv_cache", settings, results, "cpu", notes, load_before, out_dir)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

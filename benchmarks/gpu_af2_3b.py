"""af2-3b on one CUDA GPU: LoRA r=8 training step (1 and 12 windows, gradient checkpointing) and option scoring.

Random weights, built directly on the GPU (``build_model(cfg, device="cuda")``: no CPU copy of the 4.8 B
parameters), then cast to bf16 (``AF2Model.cast``; rotary tables stay fp32); if the fp32 build does not fit, it is
built with bf16 as the default dtype instead. LoRA r=8 on the report's targets (fp32 adapters, AdamW fused).
Measured:

- training step (forward with labels + backward + AdamW step) at ``--windows`` (default 1 and 12) with gradient
  checkpointing on: median time of ``--steps`` after ``--warmup``, text tokens/s and audio seconds/s, peak memory
  (``torch.cuda.max_memory_allocated``: all tensors incl. weights; also the part above the pre-step level, and
  ``max_memory_reserved``), beside memory_full_scale.py's estimate for the same setting;
- option scoring: questions/s for batches of ``--score-batch`` questions x 4 options, audio encoded in the same
  timed region (``encode_audio`` + ``option_logprobs``, inference mode), against per-question generation of the
  same questions (each clip encoded alone, batch 1, ``--gen-tokens`` new tokens), how NVIDIA's scripts answer.
  ``AF2Model.generate`` computes each cross-attention block's audio keys/values once per call (fixed in issue 17;
  before, every decoding step recomputed them): the JSON records the calls counted in one generate
  (``xattn_keys_values_calls_per_generate``, = ``xattn_layers`` when cached).

Everything runs in well under 8 minutes on an H100 (``--budget-s`` skips what would not fit) and writes
``results/bench/gpu_af2_3b.json``. Without a CUDA device it prints why and exits 0 (so ``make bench`` on a CPU
machine goes on; ``--require-cuda`` makes it exit 1). ``--smoke-cpu`` runs the same code path with af2-tiny on the
CPU (written under work/bench/ unless --out-dir).

laion-clap's AFF fusion pads with float32 zeros; the model's own hook (``model/clap.py``) hands it one dtype, so a
bf16-cast model trains as it is (tests/test_model.py checks the fusion path in train mode, cast and under autocast).

    .venv/bin/python benchmarks/gpu_af2_3b.py
    .venv/bin/python benchmarks/gpu_af2_3b.py --smoke-cpu
"""

from __future__ import annotations

import argparse
import functools
import gc
import sys
import time
from itertools import chain

import common  # noqa: F401
import torch
from common import (GiB, add_common_args, apply_common_args, out_dir_for, quiet_warnings,
                    summarise, synthetic_batch, sync, time_call, write_result)
from tqdm.auto import tqdm

from aqa_utils.config import LoraSettings, ModelConfig
from aqa_utils.data.prompt import AF2Tokens, build_tokenizer, encode_prompts, encode_scoring
from aqa_utils.lora import apply_lora, lora_parameter_counts
from aqa_utils.model import build_model
from generation_kv_cache import CountKeysValues  # noqa: E402  (benchmarks/ is on sys.path)


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def build_bf16(cfg: ModelConfig, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """Random weights created on ``device``, cast to bf16; reports how, and any tensor that was not on it."""
    info: dict = {}
    t0 = time.perf_counter()
    model = None
    try:
        with quiet_warnings():
            model = build_model(cfg, device=device)
        info["build"] = "fp32 on device, then AF2Model.cast(bfloat16)"
    except torch.cuda.OutOfMemoryError:
        pass
    if model is None:  # outside the except block, so the failed build's tensors can be freed
        gc.collect()
        torch.cuda.empty_cache()
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.bfloat16)  # inv_freq tables are still made in fp32 (explicit .float())
        try:
            with quiet_warnings():
                model = build_model(cfg, device=device)
        finally:
            torch.set_default_dtype(previous)
        info["build"] = "bf16 default dtype on device (fp32 build did not fit), then AF2Model.cast(bfloat16)"
    # Modules that build their tensors from numpy with the legacy ``torch.Tensor(...)`` constructor (torchlibrosa's
    # unused STFT/mel extractors inside HTSAT) ignore the device context and land on the CPU: list and move them.
    strays = [n for n, t in chain(model.named_parameters(), model.named_buffers()) if t.device.type != device.type]
    info["tensors_not_built_on_device"] = strays
    if strays:
        model.to(device)
    model.cast(torch.bfloat16)
    sync(device)
    info["build_s"] = time.perf_counter() - t0
    info["parameters"] = sum(p.numel() for p in model.parameters())
    info["weights_bytes"] = sum(p.numel() * p.element_size() for p in model.parameters())
    info["dtypes"] = sorted({str(p.dtype) for p in model.parameters()})
    return model, info


def memory_now(device: torch.device) -> int:
    return torch.cuda.memory_allocated(device) if device.type == "cuda" else 0


def train_steps(model, base, optimizer, cfg, device, windows: int, args, deadline: float) -> dict:
    batch = synthetic_batch(cfg, args.batch_size, windows, args.text_len, args.label_len, device, seed=windows)

    def step():
        out = model(batch["input_ids"], batch["attention_mask"], windows=batch["windows"],
                    window_mask=batch["window_mask"], labels=batch["labels"])
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return out.loss.detach()

    model.train()
    for _ in range(args.warmup):
        loss = step()
    sync(device)
    times, peak, peak_reserved = [], 0, 0
    start = memory_now(device)
    for _ in range(args.steps):
        if time.monotonic() > deadline and times:
            break
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t, loss = time_call(step, device)
        times.append(t)
        if device.type == "cuda":
            peak = max(peak, torch.cuda.max_memory_allocated(device))
            peak_reserved = max(peak_reserved, torch.cuda.max_memory_reserved(device))
    med = summarise(times)
    row = {"windows": windows, "batch": args.batch_size, "text_len": args.text_len, "gradient_checkpointing": True,
           **med, "steps_timed": len(times), "loss": float(loss),
           "text_tokens_per_s": args.batch_size * args.text_len / med["median_s"],
           "audio_seconds_per_s": args.batch_size * windows * cfg.audio.window_seconds / med["median_s"]}
    if device.type == "cuda":
        row.update({"peak_allocated_gib": peak / GiB, "peak_reserved_gib": peak_reserved / GiB,
                    "allocated_before_step_gib": start / GiB, "peak_above_before_step_gib": (peak - start) / GiB})
    return row


def score_throughput(base, cfg, device, args, deadline: float) -> dict:
    """Questions/s of option scoring: batches of questions with 4 options each, audio encoded in the timed region."""
    tok = build_tokenizer()
    B, n_opt = args.score_batch, 4
    prompts = [f"which sound is heard first in this recording number {i}? (a) knock. (b) horn. (c) siren. "
               f"(d) bell." for i in range(B)]
    options = [[f"({chr(97 + k)}) {w}" for k, w in enumerate(("knock", "horn", "siren", "bell"))]] * B
    enc = encode_scoring(prompts, options, tok)
    enc = {k: v.to(device) for k, v in enc.items()}
    g = torch.Generator().manual_seed(0)
    windows = (torch.rand(B, args.score_windows, cfg.audio.window_samples, generator=g) - 0.5).to(device)
    wmask = torch.ones(B, args.score_windows, dtype=torch.bool, device=device)
    base.eval()

    def run():
        with torch.inference_mode():
            memory = base.encode_audio(windows, wmask)
            lp = base.option_logprobs(memory, enc["input_ids"], enc["attention_mask"], enc["target_mask"],
                                      enc["row_to_question"])
            return lp.view(B, n_opt).argmax(-1)

    generation_prompts = encode_prompts(prompts, tok)

    def one_by_one():
        """Per question, its clip encoded alone and greedy decoding at batch 1; every answer is forced to
        ``--gen-tokens`` tokens (no stop token), about the length of a trained model's answers."""
        with torch.inference_mode():
            for i in range(B):
                memory = base.encode_audio(windows[i: i + 1], wmask[i: i + 1])
                ids = generation_prompts.input_ids[i][generation_prompts.attention_mask[i].bool()][None].to(device)
                base.generate(memory, ids, torch.ones_like(ids), max_new_tokens=args.gen_tokens, stop_ids=(),
                          pad_id=AF2Tokens.of(tok).pad)

    def timed(fn) -> dict:
        for _ in range(args.warmup):
            fn()
        times = []
        for _ in range(args.score_repeats):
            if time.monotonic() > deadline and times:
                break
            t, _ = time_call(fn, device)
            times.append(t)
        return summarise(times)

    def kv_calls_in_one_generate() -> int:
        """keys_values calls in one generate call (the cross-attention key/value cache at work)."""
        with CountKeysValues() as counter, torch.inference_mode():
            memory = base.encode_audio(windows[:1], wmask[:1])
            ids = generation_prompts.input_ids[0][generation_prompts.attention_mask[0].bool()][None].to(device)
            base.generate(memory, ids, torch.ones_like(ids), max_new_tokens=args.gen_tokens, stop_ids=(),
                          pad_id=AF2Tokens.of(tok).pad)
        return counter.calls

    med = timed(run)
    gen = timed(one_by_one) if time.monotonic() <= deadline else None
    xattn_layers = sum(layer.gated_cross_attn_layer_sound is not None for layer in base.flamingo_layers)
    per_question = None if gen is None else {
        "new_tokens": args.gen_tokens, **gen, "questions_per_s": B / gen["median_s"],
        "scoring_speedup": gen["median_s"] / med["median_s"],
        "xattn_keys_values_calls_per_generate": kv_calls_in_one_generate(), "xattn_layers": xattn_layers}
    return {"per_question_generation": per_question,
            "questions_per_batch": B, "options_per_question": n_opt, "windows_per_clip": args.score_windows,
            "rows_per_batch": int(enc["input_ids"].shape[0]), "row_tokens": int(enc["input_ids"].shape[1]), **med,
            "questions_per_s": B / med["median_s"]}


@functools.lru_cache(maxsize=None)
def _static_bytes(model_name: str, rank: int) -> int | None:
    try:
        from memory_full_scale import static_memory
    except ImportError:
        return None
    return static_memory(model_name, rank)["static_total_bytes"]


def formula_estimate(cfg, windows: int, args, rank: int) -> dict | None:
    """memory_full_scale.py's estimate for the same setting (GiB), for comparison with the measured peak."""
    try:
        from memory_full_scale import activation_peak, activation_terms
    except ImportError:
        return None
    act = activation_peak(activation_terms(cfg, windows, args.batch_size, args.text_len, args.label_len, rank), True)
    static = _static_bytes(cfg.name, rank)
    return {"activations_peak_gib": act["peak"] / GiB, "static_gib": None if static is None else static / GiB,
            "total_gib": None if static is None else (act["peak"] + static) / GiB}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke-cpu", action="store_true", help="af2-tiny on the CPU, same code path (logic check)")
    p.add_argument("--require-cuda", action="store_true", help="exit 1 (not 0) when there is no CUDA device")
    p.add_argument("--windows", type=ints, default=[1, 12], help="windows per clip for the step (default 1,12)")
    p.add_argument("--batch-size", type=int, default=1, help="clips per training step (default 1)")
    p.add_argument("--text-len", type=int, default=128)
    p.add_argument("--label-len", type=int, default=16)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--steps", type=int, default=5, help="timed steps per setting, median reported (default 5)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--score-batch", type=int, default=8, help="questions per scoring batch (default 8)")
    p.add_argument("--score-windows", type=int, default=1, help="windows per clip when scoring (default 1)")
    p.add_argument("--score-repeats", type=int, default=10)
    p.add_argument("--gen-tokens", type=int, default=8,
                   help="answer length of the per-question generation baseline (default 8: a trained answer)")
    p.add_argument("--budget-s", type=float, default=420.0, help="stop starting new measurements after this")
    add_common_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.windows, args.steps, args.warmup, args.score_repeats = [1, 2], 2, 1, 2
    t_start = time.monotonic()
    deadline = t_start + args.budget_s

    if args.smoke_cpu:
        device, model_name = torch.device("cpu"), "af2-tiny"
        if args.threads is None:
            args.threads = 1
    else:
        if not torch.cuda.is_available():
            print("gpu_af2_3b.py: SKIPPED, no CUDA device (torch.cuda.is_available() is False). This benchmark "
                  "needs one GPU with >= 24 GB; run it on a GPU machine, or pass --smoke-cpu to check its logic "
                  "with af2-tiny on the CPU.", file=sys.stderr)
            return 1 if args.require_cuda else 0
        device, model_name = torch.device("cuda"), "af2-3b"
    load_before = apply_common_args(args)
    cfg = ModelConfig.resolve(model_name)

    print(f"building {model_name} on {device} ...", file=sys.stderr)
    base, build = build_bf16(cfg, device)
    base.set_gradient_checkpointing(True)
    with quiet_warnings():
        model = apply_lora(base, LoraSettings(rank=args.rank))
    params = [q for q in model.parameters() if q.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True)
    build["lora"] = lora_parameter_counts(model)
    build["lora_dtypes"] = sorted({str(q.dtype) for q in params})
    build["memory_after_build_gib"] = memory_now(device) / GiB

    results: dict = {"build": build, "train": [], "skipped": []}
    with quiet_warnings():
        for windows in tqdm(args.windows, desc="train steps"):
            if time.monotonic() > deadline:
                results["skipped"].append(f"train windows={windows} (time budget)")
                continue
            try:
                row = train_steps(model, base, optimizer, cfg, device, windows, args, deadline)
            except torch.cuda.OutOfMemoryError as err:  # a small card: record it and go on
                row = {"windows": windows, "batch": args.batch_size, "error": "CUDA out of memory",
                       "detail": str(err).splitlines()[0]}
            if "error" in row:  # outside the except block, so the failed step's frames are gone
                optimizer.zero_grad(set_to_none=True)
                gc.collect()
                torch.cuda.empty_cache()
            row["formula_estimate"] = formula_estimate(cfg, windows, args, args.rank)
            results["train"].append(row)
            if "error" in row:
                print(f"windows {windows}: {row['error']}", file=sys.stderr)
                continue
            print(f"windows {windows}: step {row['median_s']:.3f} s, {row['text_tokens_per_s']:.0f} text tok/s"
                  + (f", peak {row['peak_allocated_gib']:.2f} GiB" if "peak_allocated_gib" in row else ""),
                  file=sys.stderr)
        if time.monotonic() <= deadline:
            optimizer.zero_grad(set_to_none=True)
            results["score"] = score_throughput(base, cfg, device, args, deadline)
            score, gen = results["score"], results["score"]["per_question_generation"]
            print(f"option scoring: {score['questions_per_s']:.1f} questions/s"
                  + (f"; per-question generation ({gen['new_tokens']} tokens): {gen['questions_per_s']:.1f} "
                     f"questions/s, scoring {gen['scoring_speedup']:.1f}x; cross-attention keys/values computed "
                     f"{gen['xattn_keys_values_calls_per_generate']} times per generate for "
                     f"{gen['xattn_layers']} blocks" if gen else ""), file=sys.stderr)
        else:
            results["skipped"].append("option scoring (time budget)")
    results["total_wall_s"] = time.monotonic() - t_start

    settings = {"model": model_name, "device": str(device), "dtype": "bfloat16 weights, fp32 LoRA", "rank": args.rank,
                "gradient_checkpointing": True, "batch_size": args.batch_size, "text_len": args.text_len,
                "label_len": args.label_len, "steps": args.steps, "warmup": args.warmup,
                "score_batch": args.score_batch, "score_windows": args.score_windows, "gen_tokens": args.gen_tokens,
                "smoke_cpu": args.smoke_cpu, "quick": args.quick}
    notes = ["Random weights; timings do not depend on the values.",
             "peak_allocated_gib includes the bf16 weights, LoRA weights, gradients and AdamW states."]
    if args.smoke_cpu:
        notes.append("--smoke-cpu: af2-tiny on the CPU, a logic check of the GPU script; no GPU numbers.")
    name = "gpu_af2_3b_smoke_cpu" if args.smoke_cpu else "gpu_af2_3b"
    out_dir = out_dir_for(args) if (args.out_dir or not args.smoke_cpu) else out_dir_for(
        argparse.Namespace(out_dir=None, quick=True))
    path = write_result(name, settings, results, device, notes, load_before, out_dir)
    print(f"done in {results['total_wall_s']:.0f} s -> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

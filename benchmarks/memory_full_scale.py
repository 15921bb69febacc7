"""Training memory of the full-size AF2 (af2-3b) with LoRA r = 8/16/32: which GPUs it fits, from the config alone.

Static memory is counted exactly from the meta-device model (``build_model("af2-3b", "meta")`` + ``apply_lora``):
base weights in bf16 (``AF2Model.cast``; rotary ``inv_freq`` stays fp32), LoRA tensors in fp32 (peft keeps adapter
weights fp32 on a bf16 base), their fp32 gradients and AdamW's two fp32 states.

Activation memory is an analytic estimate: what autograd keeps for backward, layer by layer, derived from the
config (``activation_terms``; the formula is written out in ``FORMULA`` and in the JSON). It follows what this
code's layers save with a frozen bf16 base and fp32 LoRA adapters, which was checked tensor by tensor with
``torch.autograd.graph.saved_tensors_hooks`` (``--validate`` re-runs that check on a full-width, reduced-depth
model on the CPU, and also compares the estimated step peak with the measured resident-set peak).

    .venv/bin/python benchmarks/memory_full_scale.py                 # table + validation (~1-2 min)
    .venv/bin/python benchmarks/memory_full_scale.py --no-validate   # table only (~30 s: three meta builds)
    .venv/bin/python benchmarks/memory_full_scale.py --quick         # r=8 only, no validation
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass

import common  # noqa: F401
import torch
from common import (GiB, MiB, PeakMemory, add_common_args, apply_common_args, cpu_memory_mode, out_dir_for,
                    quiet_warnings, synthetic_batch, write_result)
from tqdm.auto import tqdm

from aqa_utils.config import LoraSettings, ModelConfig
from aqa_utils.lora import apply_lora, lora_parameter_counts
from aqa_utils.model import build_model

GPUS_GIB = {"24 GB": 24, "40 GB": 40, "48 GB": 48, "80 GB": 80}
RESERVE_GIB = 1.5  # CUDA context (~0.5 GiB) + cuBLAS workspaces and caching-allocator fragmentation (~1 GiB)

FORMULA = r"""
Notation: L windows, B clips, T text tokens, n_lab labelled tokens; a = 2 (bf16 activation), f = 4 (fp32 LoRA input
copy), m = LoRA-dropout mask bytes per element (1 on CUDA: native_dropout's bool mask; 4 on CPU: a float mask);
r = LoRA rank. A frozen Linear keeps nothing for backward (its weight needs no gradient); a LoRA'd Linear keeps the
fp32 dropout output (f) and, when its input needs a gradient, the dropout mask (m), plus lora_A's output (f*r).
Nothing upstream of the first LoRA needs gradients, so the mel front end, bn0, SpecAugment, the patch embedding
and AFF fusion keep nothing, and the first Swin block's input LayerNorm keeps nothing and its qkv LoRA no mask.

HTSAT (per window; stage i has N_i = (spec_size/patch)^2 / 4^i tokens of width d_i = embed_dim*2^i, h_i heads,
w = window_size^2 tokens per attention window, MLP ratio R):
  Swin block  = N*d*(a [norm1 input] + (f+m) [qkv LoRA] + 3a [q, k, v] + a [norm2 input] + a*R [GELU input])
                + a*N*h*w [softmax output] + f*N*r
  patch merging (stages 0..2) = a*N*d [its LayerNorm input: N/4 tokens x 4d]; final norm = a*N_3*d_3
Audio transformer (N_a = 64*L tokens, width D, FFN width F): input LayerNorm a*N_a*D, then per layer
  N_a*D*(3(f+m) [w_qs/w_ks/w_vs LoRA] + 2a [q, k after rotary] + a [v] + a [SDPA output] + 2a [two LN inputs])
  + a*N_a*F [ReLU output] + 3f*N_a*r
Gated cross-attention (per LM layer; inner = heads*dim_head, LM width H, ff_mult M):
  a*N_a*2*inner [to_kv output] + 2a*T*inner [q, SDPA output] + a*T*H [attn.norm input; not in layer 0]
  + a*T*H [ff LayerNorm input] + a*T*H*M [GELU input]
Qwen2 decoder layer (I = intermediate, kv = kv_heads*head_dim):
  2*4*T*H [both RMSNorms keep an fp32 copy] + 3(f+m)*T*H [q/k/v LoRA] + 2a*T*H [q, SDPA output]
  + 2a*T*kv [k, v] + 3a*T*I [SwiGLU: gate, up, silu] + 3f*T*r
Head: final RMSNorm 4*T*H; log-softmax over the vocabulary for the labelled positions only f*n_lab*V.
Mel front end (before any of this, no gradient): 20 bytes x (n_fft/2+1) x frames per window (complex64 STFT 8,
its power 4, framing copies ~8; ~10 MiB per 10 s window, as measured on the CPU); it sets the peak only when the
activations are smaller (af2-tiny), never for af2-3b.
Everything is per clip (x B); SDPA keeps no T x T scores (flash / memory-efficient kernels); HTSAT's window
attention is explicit (softmax output kept). Stochastic depth, masks, rotary tables and log-sum-exp are negligible.

Without checkpointing: peak = sum of all the above + the largest single block (working set of its backward).
With checkpointing (this code: per HTSAT stage, per audio-transformer layer, per LM layer incl. its cross-attention):
kept = every segment's input (a*N_i*d_i per stage per window, a*N_a*D per audio layer, a*T*H per LM layer, the
audio memory a*N_a*D once) + non-checkpointed parts (final norms, head); peak = kept + the largest segment's full
activations (recomputed in its backward) + the largest single block. Peak = max(that, mel front end).
GPU total = bf16 weights + fp32 LoRA (weights, grads, 2 AdamW states) + peak activations; it fits a card when the
total is below its capacity minus a reserve of 1.5 GiB (CUDA context, workspaces, allocator fragmentation).
"""


@dataclass
class Bytes:
    a: int = 2  # bf16 activations
    f: int = 4  # fp32 LoRA input copy
    m: int = 1  # dropout mask (CUDA bool)


def activation_terms(cfg: ModelConfig, windows: int, batch: int, text_len: int, n_labels: int, rank: int,
                     components=("clap", "audio_transformer", "lm"), b: Bytes = Bytes()) -> dict:
    """Per-segment bytes kept for backward (see FORMULA). Returns segments (name -> kept bytes, input bytes,
    largest block bytes), for the whole batch."""
    a, f, m, r = b.a, b.f, b.m, rank
    L, B, T = windows, batch, text_len
    c, at, x, lm = cfg.clap, cfg.audio_transformer, cfg.xattn, cfg.lm
    segments: list[dict] = []  # {"name", "kept", "input", "largest_block", "checkpointed"}

    # HTSAT
    side = c.spec_size // c.patch_size
    w = c.window_size ** 2
    first = True
    for i, depth in enumerate(c.depths):
        N, d, h = side * side // 4 ** i, c.embed_dim * 2 ** i, c.num_heads[i]
        kept, largest = 0, 0
        if "clap" in components:
            for _ in range(depth):
                lora = (f + (0 if first else m)) * N * d + f * N * r
                block = N * d * ((0 if first else a) + 3 * a + a + a * c.mlp_ratio) + a * N * h * w + lora
                kept += block
                largest = max(largest, block)
                first = False
            if i < len(c.depths) - 1:
                kept += a * N * d
        segments.append({"name": f"clap.stage{i}", "kept": kept * L * B,
                         "input": (a * N * d * L * B if "clap" in components else 0),
                         "largest_block": largest * L * B, "checkpointed": True})
    N3, d3 = side * side // 4 ** (len(c.depths) - 1), c.out_dim
    segments.append({"name": "clap.norm", "kept": (a * N3 * d3 * L * B if "clap" in components else 0), "input": 0,
                     "largest_block": 0, "checkpointed": False})

    # Audio transformer
    D, F = cfg.audio_dim, at.d_inner
    Na = cfg.tokens_per_window * L
    grad_in = "clap" in components  # does the audio transformer's input need a gradient?
    segments.append({"name": "audio_transformer.input_norm", "kept": (a * Na * D if grad_in else 0) * B, "input": 0,
                     "largest_block": 0, "checkpointed": False})
    for j in range(at.n_layers):
        if "audio_transformer" in components:
            mask = m if (grad_in or j > 0) else 0
            layer = Na * D * (3 * (f + mask) + 2 * a + a + a + 2 * a) + a * Na * F + 3 * f * Na * r
        else:
            layer = (Na * D * 6 * a + a * Na * F) if grad_in else 0
        segments.append({"name": f"audio_transformer.layer{j}", "kept": layer * B, "input": a * Na * D * B,
                         "largest_block": layer * B, "checkpointed": True})

    # LM: cross-attention + decoder layer per layer (one checkpoint segment each)
    H, I = lm.hidden_size, lm.intermediate_size
    inner = x.heads * x.dim_head
    kv = lm.num_key_value_heads * (H // lm.num_attention_heads)
    segments.append({"name": "audio_memory", "kept": 0, "input": a * Na * D * B, "largest_block": 0,
                     "checkpointed": True})
    for k in range(lm.num_hidden_layers):
        has_x = (k + 1) % x.every_n_layers == 0
        xa = (a * Na * 2 * inner + 2 * a * T * inner + (a * T * H if k > 0 else 0) + a * T * H + a * T * H * x.ff_mult
              if has_x else 0)
        lora_lm = (3 * (f + m) * T * H + 3 * f * T * r) if "lm" in components else 0
        dec = 2 * 4 * T * H + lora_lm + 2 * a * T * H + 2 * a * T * kv + 3 * a * T * I
        segments.append({"name": f"lm.layer{k}", "kept": (xa + dec) * B, "input": a * T * H * B,
                         "largest_block": (xa + dec) * B, "checkpointed": True})
    segments.append({"name": "lm.head", "kept": (4 * T * H + f * n_labels * lm.vocab_size) * B, "input": 0,
                     "largest_block": 0, "checkpointed": False})
    # Mel front end (no gradient, but all windows at once): complex64 STFT, its power and the framing copy.
    au = cfg.audio
    frames = au.window_samples // au.hop_length + 1
    frontend = 20 * (au.n_fft // 2 + 1) * frames * L * B
    return {"segments": segments, "frontend": frontend}


def activation_peak(terms: dict, checkpointing: bool) -> dict:
    segs = terms["segments"]
    largest_block = max(s["largest_block"] for s in segs)
    if not checkpointing:
        kept = sum(s["kept"] for s in segs)
        transient = largest_block
    else:
        kept = sum(s["input"] if s["checkpointed"] else s["kept"] for s in segs)
        transient = max(s["kept"] for s in segs if s["checkpointed"]) + largest_block
    return {"kept": kept, "transient": transient, "frontend": terms["frontend"],
            "peak": max(kept + transient, terms["frontend"])}


def by_component(terms: dict) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for s in terms["segments"]:
        out[s["name"].split(".")[0]] += s["kept"]
    return dict(out)


def static_memory(model_name: str, rank: int) -> dict:
    """Exact counts from the meta-device model with LoRA."""
    with quiet_warnings():
        model = build_model(ModelConfig.resolve(model_name), device="meta")
        peft_model = apply_lora(model, LoraSettings(rank=rank))
    base_params = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" not in n)
    lora_params = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    buffers = 0
    for name, buf in model.named_buffers():
        if buf.is_floating_point():
            buffers += buf.numel() * (4 if name.endswith("inv_freq") else 2)
        else:
            buffers += buf.numel() * buf.element_size()
    return {
        "base_parameters": base_params, "lora_parameters": lora_params,
        "lora_per_component": lora_parameter_counts(peft_model),
        "weights_bf16_bytes": 2 * base_params, "buffers_bytes": buffers,
        "lora_weights_fp32_bytes": 4 * lora_params, "lora_grads_fp32_bytes": 4 * lora_params,
        "adamw_states_fp32_bytes": 8 * lora_params,
        "static_total_bytes": 2 * base_params + buffers + 16 * lora_params,
    }


# --- validation on the CPU: full widths, reduced depth --------------------------------------------------------------

def probe_config(depths=(2, 2, 2, 2), lm_layers: int = 2, at_layers: int = 2, vocab: int = 4096) -> ModelConfig:
    d = ModelConfig.preset("af2-3b").to_dict()
    d["name"] = f"af2-3b-widths-probe(depths={list(depths)}, lm_layers={lm_layers}, at_layers={at_layers})"
    d["clap"]["depths"] = list(depths)
    d["clap"]["drop_path_rate"] = 0.0
    d["lm"]["num_hidden_layers"] = lm_layers
    d["lm"]["vocab_size"] = vocab
    d["audio_transformer"]["n_layers"] = at_layers
    return ModelConfig.from_dict(d)


def validate(windows: int, text_len: int, n_labels: int, rank: int) -> dict:
    """Saved-for-backward bytes measured with saved_tensors_hooks vs the formula, on a full-width model (bf16, CPU),
    and the measured resident-set peak of a step with and without checkpointing vs the estimated peak."""
    cfg = probe_config()
    torch.manual_seed(0)
    with quiet_warnings():
        base = build_model(cfg, device="cpu")
        base.cast(torch.bfloat16)
        model = apply_lora(base, LoraSettings(rank=rank))
    model.train()
    batch = synthetic_batch(cfg, 1, windows, text_len, n_labels, seed=1)
    batch["input_ids"] %= cfg.lm.vocab_size
    batch["labels"] = torch.where(batch["labels"] >= 0, batch["labels"] % cfg.lm.vocab_size, batch["labels"])
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def run(measure_saved: bool):
        seen: dict[int, int] = {}

        def pack(t):
            ptr = t.untyped_storage().data_ptr()
            if ptr not in params and ptr not in seen:
                seen[ptr] = t.untyped_storage().nbytes()
            return t

        with quiet_warnings():
            if measure_saved:
                with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                    out = model(batch["input_ids"], batch["attention_mask"], windows=batch["windows"],
                                window_mask=batch["window_mask"], labels=batch["labels"])
            else:
                out = model(batch["input_ids"], batch["attention_mask"], windows=batch["windows"],
                            window_mask=batch["window_mask"], labels=batch["labels"])
            out.loss.backward()
        model.zero_grad(set_to_none=True)
        return sum(seen.values())

    cpu = Bytes(m=4)  # CPU dropout keeps a float mask
    terms = activation_terms(cfg, windows, 1, text_len, n_labels, rank, b=cpu)
    result = {"config": cfg.name, "windows": windows, "text_len": text_len, "labelled_tokens": n_labels,
              "rank": rank}
    # Peaks first, on a fresh allocator (an earlier pass under glibc's default thresholds leaves a fragmented heap
    # whose re-faulted pages would be counted as growth).
    cpu_memory_mode()
    run(False)  # warm-up under the pinned allocator
    for ckpt in (False, True):
        base.set_gradient_checkpointing(ckpt)
        with PeakMemory("cpu") as mem:
            run(False)
        est = activation_peak(terms, ckpt)
        key = "ckpt_on" if ckpt else "ckpt_off"
        result[f"{key}_peak_measured_bytes"] = mem.peak_bytes
        result[f"{key}_peak_formula_bytes"] = est["peak"]
        result[f"{key}_formula_over_measured"] = est["peak"] / mem.peak_bytes if mem.peak_bytes else None
    base.set_gradient_checkpointing(False)
    saved = run(True)
    result["saved_measured_bytes"] = saved
    result["saved_formula_bytes"] = sum(s["kept"] for s in terms["segments"])
    result["saved_formula_over_measured"] = result["saved_formula_bytes"] / saved
    result["peak_method"] = mem.method + " (includes the LoRA gradients and backward temporaries; weights excluded)"
    return result


# --- main ---------------------------------------------------------------------------------------------------------

def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="af2-3b")
    p.add_argument("--ranks", type=ints, default=[8, 16, 32])
    p.add_argument("--windows", type=ints, default=list(range(1, 13)))
    p.add_argument("--batch-sizes", type=ints, default=[1, 4, 8], help="clips per step (default 1,4,8)")
    p.add_argument("--text-len", type=int, default=128, help="T, text tokens (default 128)")
    p.add_argument("--labels", type=int, default=16, help="labelled answer tokens (default 16)")
    p.add_argument("--no-validate", action="store_true", help="skip the CPU check of the formula")
    p.add_argument("--validate-windows", type=int, default=2)
    add_common_args(p)
    p.set_defaults(threads=1)
    args = p.parse_args(argv)
    if args.quick:
        args.ranks, args.windows, args.batch_sizes, args.no_validate = [8], [1, 12], [1], True
    load_before = apply_common_args(args)
    cfg = ModelConfig.resolve(args.model)

    static = {r: static_memory(args.model, r) for r in tqdm(args.ranks, desc="meta models", leave=False)}
    table = []
    for r in args.ranks:
        for B in args.batch_sizes:
            for L in args.windows:
                terms = activation_terms(cfg, L, B, args.text_len, args.labels, r)
                for ckpt in (False, True):
                    act = activation_peak(terms, ckpt)
                    total = static[r]["static_total_bytes"] + act["peak"]
                    row = {"rank": r, "batch": B, "windows": L, "gradient_checkpointing": ckpt,
                           "activations_kept_gib": act["kept"] / GiB, "activations_peak_gib": act["peak"] / GiB,
                           "total_gib": total / GiB}
                    row["fits"] = {g: total / GiB + RESERVE_GIB <= cap for g, cap in GPUS_GIB.items()}
                    table.append(row)
    comp12 = {k: v / GiB for k, v in by_component(activation_terms(cfg, 12, 1, args.text_len, args.labels, 8)).items()}

    def row_for(r, B, L, ckpt):
        return next(x for x in table if (x["rank"], x["batch"], x["windows"], x["gradient_checkpointing"])
                    == (r, B, L, ckpt))

    verdict = None
    if 8 in args.ranks and 12 in args.windows and 1 in args.batch_sizes:
        on, off = row_for(8, 1, 12, True), row_for(8, 1, 12, False)
        verdict = {
            "question": "r=8 LoRA training with 12 windows fits a 24 GB GPU?",
            "ckpt_on_batch1_total_gib": on["total_gib"], "ckpt_off_batch1_total_gib": off["total_gib"],
            "fits_24gb_ckpt_on_batch1": on["fits"]["24 GB"], "fits_24gb_ckpt_off_batch1": off["fits"]["24 GB"],
            "settings": "bf16 weights (model.cast), fp32 LoRA + AdamW, batch 1, T=%d, gradient checkpointing on"
                        % args.text_len,
        }
        if 4 in args.batch_sizes:
            verdict["batch4_ckpt_on_total_gib"] = row_for(8, 4, 12, True)["total_gib"]
            verdict["batch4_ckpt_off_total_gib"] = row_for(8, 4, 12, False)["total_gib"]
            verdict["fits_24gb_batch4_ckpt_on"] = row_for(8, 4, 12, True)["fits"]["24 GB"]
            verdict["fits_24gb_batch4_ckpt_off"] = row_for(8, 4, 12, False)["fits"]["24 GB"]

    validation = None
    if not args.no_validate:
        print("validating the formula on a full-width, reduced-depth model (CPU, bf16) ...", file=sys.stderr)
        validation = validate(args.validate_windows, args.text_len, args.labels, 8)

    settings = {"model": args.model, "ranks": args.ranks, "windows": args.windows, "batch_sizes": args.batch_sizes,
                "text_len": args.text_len, "labelled_tokens": args.labels, "weights": "bf16 (model.cast)",
                "lora": "fp32 weights + fp32 grads + AdamW (2 fp32 states)", "dropout_mask_bytes": 1,
                "gpu_capacity_gib": GPUS_GIB, "reserve_gib": RESERVE_GIB, "quick": args.quick}
    results = {"formula": FORMULA.strip().splitlines(), "static": static,
               "activations_by_component_gib_r8_L12_B1_no_ckpt": comp12, "table": table, "verdict_24gb": verdict,
               "validation_cpu": validation}
    notes = [
        "Estimate, not a GPU measurement: gpu_af2_3b.py measures the real peak on a CUDA card.",
        "Weights must be bf16 for these numbers; fp32 weights alone (4.8 B parameters) need ~17.9 GiB.",
        "Assumes the CLAP fusion path works in bf16: laion-clap's AFF fusion pads with float32 zeros, and the "
        "model's own hook (model/clap.py) hands it one dtype.",
    ]
    path = write_result("memory_full_scale", settings, results, "cpu", notes, load_before, out_dir_for(args))

    for r in args.ranks:
        s = static[r]
        print(f"r={r}: weights {s['weights_bf16_bytes'] / GiB:.2f} GiB bf16, LoRA {s['lora_parameters']:,} params "
              f"-> weights+grads+AdamW {16 * s['lora_parameters'] / MiB:.0f} MiB")
    print("activation peak (GiB), batch 1:  L  ckpt-off  ckpt-on")
    for L in args.windows:
        if 8 in args.ranks and 1 in args.batch_sizes:
            print(f"                               {L:2d}  {row_for(8, 1, L, False)['activations_peak_gib']:7.2f}"
                  f"  {row_for(8, 1, L, True)['activations_peak_gib']:7.2f}")
    if verdict:
        print(f"24 GB verdict (r=8, 12 windows, batch 1): total {verdict['ckpt_on_batch1_total_gib']:.2f} GiB with "
              f"checkpointing -> fits: {verdict['fits_24gb_ckpt_on_batch1']}")
    if validation:
        print(f"validation: saved formula/measured {validation['saved_formula_over_measured']:.3f}; peak ckpt off "
              f"{validation['ckpt_off_formula_over_measured']:.2f}, on {validation['ckpt_on_formula_over_measured']:.2f}")
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

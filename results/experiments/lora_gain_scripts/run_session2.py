"""Issue-15 experiment driver of the second session (commit f325599 code; not part of the package): stage 1 variants, LoRA on train.fit, eval on dev/train.val.

Usage (from the repo root, venv active): python results/experiments/lora_gain_scripts/run_session2.py data | stage1 TAG [JSON] | lora BASE TAG [JSON] | eval BASE NAME SPLIT [K]
BASE "C" is design C's base of the first session (its final/ copied to work/exp/C/final)."""
import json, os, sys, time, shutil
from dataclasses import replace
from pathlib import Path
import torch
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
from aqa_utils.workbook.profile import profile
from aqa_utils.training import Trainer
from aqa_utils.data.mini import make_mini_benchmark
from aqa_utils.data.dcase import load_split
from aqa_utils.data.prompt import build_tokenizer
from aqa_utils.evaluation import EvalSettings, evaluate
from aqa_utils.loading import load_model

W = Path("work/exp")
MINI = W / "mini"
prof = profile("full")

def data():
    make_mini_benchmark(MINI, seed=0, **prof.mini_sizes)

def stage1(tag, **kw):
    out = W / tag
    if (out / "summary.json").exists():
        return out / "final"
    cfg = replace(prof.base_config(), data_root=str(MINI), out_dir=str(out), progress=False, eval_every=0,
                  checkpoint="results/runs/base_audio_encoder/final", save_every=0, **kw)
    t = time.time(); s = Trainer(cfg).fit(); print(tag, "stage1", round(time.time() - t), s.get("val_loss"), flush=True)
    return out / "final"

def lora(base_tag, tag, rank=8, seed=0, **kw):
    out = W / base_tag / tag
    if (out / "summary.json").exists():
        return out / "final"
    sysm = prof.lora_system(rank, seed)
    base_cfg = prof.lora_config(sysm)
    if "lora" in kw:
        kw["lora"] = replace(base_cfg.lora, **{k: tuple(v) if isinstance(v, list) else v for k, v in kw["lora"].items()})
    cfg = replace(base_cfg, data_root=str(MINI), checkpoint=str(W / base_tag / "final"), out_dir=str(out),
                  train_split="train.fit", val_split="train.val", progress=False, save_every=0, **kw)
    t = time.time(); s = Trainer(cfg).fit(); print(base_tag, tag, "lora", round(time.time() - t), s.get("val_loss"), flush=True)
    return out / "final"

def ev(base_tag, name, adapter, split="dev", k=4, mode="both"):
    path = W / base_tag / f"eval_{name}_{split}.json"
    if path.exists():
        return json.loads(path.read_text())
    qs = load_split(MINI, split).questions
    if adapter is not None and (Path(adapter) / "safe_ckpt").exists():  # a fully fine-tuned model
        model = load_model(adapter, None, device="cpu")
    else:
        model = load_model(W / base_tag / "final", adapter, device="cpu")
    st = EvalSettings(mode=mode, permutations=k, max_new_tokens=24, batch_size=16, progress=False, primary="score")
    t = time.time()
    r = evaluate(model, build_tokenizer(), qs, st, out_dir=W / base_tag / f"eval_{name}_{split}")
    out = {"n": len(qs), "seconds": round(time.time() - t)}
    for m in r.robustness:
        rb = {**r.robustness[m], **r.metrics[m]}
        out[m] = {k2: rb[k2] for k2 in rb if isinstance(rb[k2], (int, float)) or k2 in ("shuffle_mean_ci", "by_type")}
    path.write_text(json.dumps(out, indent=1, default=str))
    print(base_tag, name, split, json.dumps({m: {k2: out[m].get(k2) for k2 in ("micro", "shuffle_mean", "consistent_accuracy", "unparsed_rate", "position_tv")} for m in r.robustness}), out["seconds"], "s", flush=True)
    return out

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "data":
        data()
    elif cmd == "stage1":
        tag = sys.argv[2]; kw = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
        stage1(tag, **kw)
    elif cmd == "lora":
        base_tag, tag = sys.argv[2], sys.argv[3]; kw = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
        rank = kw.pop("rank", 8); seed = kw.pop("seed", 0)
        lora(base_tag, tag, rank, seed, **kw)
    elif cmd == "eval":
        base_tag, name, split = sys.argv[2], sys.argv[3], sys.argv[4]
        adapter = None if name == "base" else W / base_tag / name / "final"
        ev(base_tag, name, adapter, split, k=int(sys.argv[5]) if len(sys.argv) > 5 else 4)

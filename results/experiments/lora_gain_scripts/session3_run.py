"""Session-3 experiment driver (#15, commit 929cf24 code): LoRA variants from the pipeline's base (work/base/af2-tiny, as `make reproduce` left it; or JSON "base"), trained on train.fit, scored on train.val (K=4, both modes); outputs under work/exp3/.
usage: python results/experiments/lora_gain_scripts/session3_run.py TAG 'JSON overrides of the LoRA TrainConfig' [eval-split]   (TAG=ref: the committed lora_r8_s0; TAG=base)"""
import json, os, sys, time
from dataclasses import replace
from pathlib import Path
import torch
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
from aqa_utils.workbook.profile import profile
from aqa_utils.training import Trainer
from aqa_utils.data.dcase import load_split
from aqa_utils.data.prompt import build_tokenizer
from aqa_utils.evaluation import EvalSettings, evaluate
from aqa_utils.loading import load_model

W = Path("work/exp3"); prof = profile("full")
tag = sys.argv[1]; kw = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
split = sys.argv[3] if len(sys.argv) > 3 else "train.val"
base = kw.pop("base", str(prof.base_dir))
if tag == "ref":
    adapter = "results/runs/lora_r8_s0/final"
elif tag == "base" or tag.endswith("_zero"):  # the base itself, zero-shot
    adapter = None
else:
    out = W / tag
    if not (out / "summary.json").exists():
        rank = kw.pop("rank", 8)
        cfg = prof.lora_config(prof.lora_system(rank, kw.pop("seed", 0)))
        if "lora" in kw:
            kw["lora"] = replace(cfg.lora, **{k: tuple(v) if isinstance(v, list) else v for k, v in kw.pop("lora").items()})
        cfg = replace(cfg, checkpoint=base, out_dir=str(out), val_split="train.val", progress=False, save_every=0, **kw)
        t = time.time(); s = Trainer(cfg).fit(); print(tag, "train", round(time.time() - t), "s val_loss", s.get("val_loss"), flush=True)
    adapter = str(out / "final")
qs = load_split(prof.data_root, split).questions
model = load_model(adapter, None, device="cpu") if adapter and (Path(adapter) / "safe_ckpt").exists() else load_model(base, adapter, device="cpu")
st = EvalSettings(mode="both", permutations=4, max_new_tokens=24, batch_size=16, progress=False, primary="score")
t = time.time()
r = evaluate(model, build_tokenizer(), qs, st, out_dir=W / f"eval_{tag}_{split}")
res = {m: {k: round(r.robustness[m][k], 4) for k in ("mean_accuracy", "consistent_accuracy", "unparsed_rate", "position_tv")} for m in r.robustness}
print(tag, split, round(time.time() - t), "s", json.dumps(res), flush=True)
(W / f"res_{tag}_{split}.json").write_text(json.dumps(res, indent=1, default=str))

"""Session-5 experiment driver (#15): LoRA (or full fine-tuning) from the pipeline's base (work/base/af2-tiny), trained on
train.fit restricted to some question types, evaluated on train.val (K=4, both modes), per type. Outputs: work/exp5/.
usage: python session5_run.py TAG 'JSON: {"types": [...] or null, "drop": [...], any TrainConfig override}'
       (TAG=base or *_zero: the base zero-shot; "base": "path" picks another base)"""
import json, os, sys, time
from dataclasses import replace
from pathlib import Path
import torch
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
import pandas as pd
import aqa_utils.training.examples as examples
from aqa_utils.workbook.profile import profile
from aqa_utils.training import Trainer
from aqa_utils.data.dcase import load_split
from aqa_utils.data.prompt import build_tokenizer
from aqa_utils.evaluation import EvalSettings, evaluate
from aqa_utils.loading import load_model

W = Path("work/exp5"); W.mkdir(parents=True, exist_ok=True); prof = profile("full")
tag = sys.argv[1]; kw = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
keep, drop = kw.pop("types", None), set(kw.pop("drop", []))
base = kw.pop("base", str(prof.base_dir))  # another base (e.g. work/exp5/k_base/final): its own tags, e.g. k_*
if keep is not None or drop:  # the training split, restricted
    real = examples.load_split
    def restricted(root, split, **k):
        loaded = real(root, split, **k)
        if split == "train.fit":
            loaded.questions[:] = [q for q in loaded.questions
                                   if (keep is None or q.question_type in keep) and q.question_type not in drop]
            print(tag, "training questions", len(loaded.questions), flush=True)
        return loaded
    examples.load_split = restricted
adapter = None
if tag != "base" and not tag.endswith("_zero"):  # TAG=base or *_zero: the base itself
    out = W / tag
    if not (out / "summary.json").exists():
        rank = kw.pop("rank", 8)
        cfg = prof.lora_config(prof.lora_system(rank, kw.pop("seed", 0)))
        if "lora" in kw:  # e.g. {"lora": {"components": ["clap", "audio_transformer", "lm", "xattn"]}}
            kw["lora"] = replace(cfg.lora, **{k: tuple(v) if isinstance(v, list) else v for k, v in kw.pop("lora").items()})
        cfg = replace(cfg, train_split="train.fit", checkpoint=base, out_dir=str(out), val_split="train.val",
                      progress=False, save_every=0, **kw)
        t = time.time(); s = Trainer(cfg).fit()
        print(tag, "train", round(time.time() - t), "s val_loss", s.get("val_loss"), flush=True)
    adapter = str(out / "final")
qs = load_split(prof.data_root, "train.val").questions
model = (load_model(adapter, None, device="cpu") if adapter and (Path(adapter) / "safe_ckpt").exists()
         else load_model(base, adapter, device="cpu"))
st = EvalSettings(mode="both", permutations=4, max_new_tokens=24, batch_size=16, progress=False, primary="score")
t = time.time(); ev = W / f"eval_{tag}"
r = evaluate(model, build_tokenizer(), qs, st, out_dir=ev)
res = {m: {k: round(r.robustness[m][k], 4) for k in ("mean_accuracy", "consistent_accuracy", "unparsed_rate", "position_tv")}
       for m in r.robustness}
qt = pd.DataFrame({"qid": [q.qid for q in qs], "question_type": [q.question_type for q in qs]})
for m in ("score", "generate"):
    d = pd.read_csv(ev / f"robustness_{m}.csv").merge(qt, on="qid")
    res[m]["by_type"] = ((d.answer == d.pred).groupby(d.question_type).mean() * 100).round(0).to_dict()
print(tag, round(time.time() - t), "s", json.dumps({m: {k: v for k, v in res[m].items() if k != "by_type"} for m in res}), flush=True)
(W / f"res_{tag}.json").write_text(json.dumps(res, indent=1, default=str))

"""Session-10 driver (#15): LoRA r=8 (the full profile's recipe: lr 3e-3, 3 epochs, train.fit) from a given base,
or the base zero-shot (SEED=-1), evaluated on the 296 train.val questions (never dev), K=4 orders, both modes;
prints the headline and the per-type accuracy (all orders pooled).
usage: SEED=0 python session10_lora.py BASE_DIR OUT_DIR"""
import json, os, sys, time
from dataclasses import replace
from pathlib import Path
import pandas as pd
import torch
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
from aqa_utils.data.dcase import load_split
from aqa_utils.data.prompt import tokenizer_for
from aqa_utils.evaluation import EvalSettings, evaluate
from aqa_utils.loading import load_model
from aqa_utils.training import Trainer
from aqa_utils.workbook.profile import profile


def evaluate_val(base: str, adapter: str | None, out: Path) -> dict:
    """The base (with ``adapter``) on the train.val questions, K=4 orders, both modes: printed and in result.json."""
    prof = profile("full")
    qs = load_split(prof.data_root, "train.val").questions
    st = EvalSettings(mode="both", permutations=4, max_new_tokens=24, batch_size=16, progress=False, primary="score")
    t = time.time()
    model = load_model(base, adapter, device="cpu")
    r = evaluate(model, tokenizer_for(model), qs, st, out_dir=out / "eval")
    res = {m: {k: round(r.robustness[m][k], 4) for k in ("mean_accuracy", "consistent_accuracy", "unparsed_rate", "position_tv")}
           for m in r.robustness}
    qt = pd.DataFrame({"qid": [q.qid for q in qs], "type": [q.question_type for q in qs]})
    for mode in ("score", "generate"):
        d = pd.read_csv(out / "eval" / f"robustness_{mode}.csv").merge(qt, on="qid")
        res[mode]["by_type"] = ((d.answer == d.pred).groupby(d.type).mean() * 100).round(0).to_dict()
    print(out, "eval", round(time.time() - t), "s", json.dumps(res), flush=True)
    (out / "result.json").write_text(json.dumps(res, indent=1))
    return res


def main(base: str, out: Path, seed: int) -> None:
    prof = profile("full")
    adapter = None
    if seed >= 0:
        cfg = replace(prof.lora_config(prof.lora_system(8, seed)), checkpoint=base, out_dir=str(out / "lora"),
                      progress=False, save_every=0)
        if not (out / "lora" / "summary.json").exists():
            t = time.time(); s = Trainer(cfg).fit(); print(out, "lora", round(time.time() - t), "s val_loss", s.get("val_loss"), flush=True)
        adapter = str(out / "lora" / "final")
    evaluate_val(base, adapter, out)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(os.environ.get("SEED", "0")))

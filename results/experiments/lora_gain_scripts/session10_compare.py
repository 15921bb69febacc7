"""Session-10 comparison (#15): LoRA - zero-shot on train.val, per-question mean over the K orders, LoRA averaged
over its seeds, paired bootstrap over questions (2000 draws, 95%).
usage: EXP=work/exp10 python session10_compare.py DESIGN ...   (reads EXP/DESIGN_zero and EXP/DESIGN_s*, the OUT_DIRs of session10_lora.py)"""
import glob, os, sys
import numpy as np
import pandas as pd

EXP = os.environ.get("EXP", "work/exp10")


def per_question(folder: str, mode: str) -> pd.Series:
    d = pd.read_csv(f"{folder}/eval/robustness_{mode}.csv")
    return (d.answer == d.pred).groupby(d.qid).mean()


for design in sys.argv[1:]:
    seeds = sorted(s for s in glob.glob(f"{EXP}/{design}_s[0-9]") if os.path.exists(f"{s}/result.json"))
    for mode in ("score", "generate"):
        zero = per_question(f"{EXP}/{design}_zero", mode)
        lora = pd.concat([per_question(s, mode) for s in seeds], axis=1).mean(axis=1).loc[zero.index]
        diff = (lora - zero).to_numpy()
        rng = np.random.default_rng(0)
        boots = [diff[rng.integers(len(diff), size=len(diff))].mean() for _ in range(2000)]
        lo, hi = np.percentile(boots, [2.5, 97.5])
        print(f"{design:6s} {mode:8s} seeds {len(seeds)}: zero {zero.mean()*100:5.1f}  LoRA {lora.mean()*100:5.1f}  "
              f"diff {diff.mean()*100:+5.1f} [{lo*100:+5.1f}, {hi*100:+5.1f}]")

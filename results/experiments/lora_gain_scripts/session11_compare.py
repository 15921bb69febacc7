"""Session-11 comparison (#15): each LoRA variant against the recipe's LoRA (the control) on the same seeds, and
both against the zero-shot base, on train.val: per-question mean over the K orders and the seeds, paired bootstrap
over questions (2000 draws, 95%). Reads EXP/<name>_s<seed> and EXP/zero (session11_replay.py's OUT_DIRs).
usage: EXP=work/exp11 python session11_compare.py CONTROL VARIANT ..."""
import glob, os, sys
import numpy as np
import pandas as pd

EXP = os.environ.get("EXP", "work/exp11")


def per_question(folder: str, mode: str) -> pd.Series:
    d = pd.read_csv(f"{folder}/eval/robustness_{mode}.csv")
    return (d.answer == d.pred).groupby(d.qid).mean()


def seeds(name: str) -> list[str]:
    return sorted(s.rsplit("_s", 1)[1] for s in glob.glob(f"{EXP}/{name}_s[0-9]") if os.path.exists(f"{s}/result.json"))


def mean_over(name: str, which: list[str], mode: str) -> pd.Series:
    return pd.concat([per_question(f"{EXP}/{name}_s{s}", mode) for s in which], axis=1).mean(axis=1)


def interval(diff: np.ndarray) -> str:
    rng = np.random.default_rng(0)
    boots = [diff[rng.integers(len(diff), size=len(diff))].mean() for _ in range(2000)]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return f"{diff.mean() * 100:+5.1f} [{lo * 100:+5.1f}, {hi * 100:+5.1f}]"


if __name__ == "__main__":
    control = sys.argv[1]
    for name in sys.argv[2:]:
        common = [s for s in seeds(name) if s in seeds(control)]
        for mode in ("score", "generate"):
            zero = per_question(f"{EXP}/zero", mode)
            ctl, var = mean_over(control, common, mode).loc[zero.index], mean_over(name, common, mode).loc[zero.index]
            print(f"{name:8s} {mode:8s} seeds {','.join(common)}: {control} {ctl.mean() * 100:5.1f}  {name} "
                  f"{var.mean() * 100:5.1f}  {name} - {control} {interval((var - ctl).to_numpy())}  "
                  f"{name} - base {interval((var - zero).to_numpy())}")

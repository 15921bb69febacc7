"""Session-12 comparison (#15): each variant against the control on the same seeds (paired), and against its own
zero-shot base (EXP/<name>_zero when the variant has a base of its own, else EXP/zero), on train.val: per-question
mean over the K orders and the seeds, paired bootstrap over questions (2000 draws, 95%); then per seed the
unparsed share of generations and the position bias (total variation) in scoring, with the base's.
usage: EXP=work/exp12 python session12_compare.py CONTROL VARIANT ..."""
import json, os, sys
from session11_compare import EXP, interval, mean_over, per_question, seeds


def base_of(name: str) -> str:
    return f"{EXP}/{name}_zero" if os.path.exists(f"{EXP}/{name}_zero/result.json") else f"{EXP}/zero"


def result(folder: str) -> dict:
    return json.load(open(f"{folder}/result.json"))


control = sys.argv[1]
for name in sys.argv[1:]:
    common = [s for s in seeds(name) if s in seeds(control)]
    for mode in ("score", "generate"):
        zero = per_question(base_of(name), mode)
        ctl, var = mean_over(control, common, mode).loc[zero.index], mean_over(name, common, mode).loc[zero.index]
        print(f"{name:8s} {mode:8s} seeds {','.join(common)}: {name} {var.mean() * 100:5.1f}  "
              f"{name} - {control} {interval((var - ctl).to_numpy())}  "
              f"{name} - its base {interval((var - zero).to_numpy())}")
    base = result(base_of(name))
    rows = [f"s{s}: {result(f'{EXP}/{name}_s{s}')['generate']['unparsed_rate'] * 100:.1f}% / "
            f"{result(f'{EXP}/{name}_s{s}')['score']['position_tv']:.3f}" for s in seeds(name)]
    print(f"{name:8s} unparsed / position TV (score): base {base['generate']['unparsed_rate'] * 100:.1f}% / "
          f"{base['score']['position_tv']:.3f}; " + "; ".join(rows))

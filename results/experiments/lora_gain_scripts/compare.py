"""Paired bootstrap (95%) of LoRA - base on shuffle-mean per-question accuracy (score mode), mean over seeds.

python exp/compare.py TAG [seed ...]
"""
import json, sys
import numpy as np
tag, seeds = sys.argv[1], sys.argv[2:] or ["0"]
d = __import__('os').path.join(__import__('os').environ['AQA_OLD_CHECKOUT'], 'work', 'exp', tag)
base = json.load(open(f"{d}/eval_base.json"))
loras = [json.load(open(f"{d}/eval_lora_r8_s{s}.json")) for s in seeds]
for mode in ("score", "generate"):
    if mode not in base["per_question"]:
        continue
    qids = sorted(base["per_question"][mode])
    b = np.array([base["per_question"][mode][q] for q in qids])
    l = np.mean([[r["per_question"][mode][q] for q in qids] for r in loras], axis=0)
    diff = l - b
    rng = np.random.default_rng(0)
    boots = [diff[rng.integers(len(diff), size=len(diff))].mean() for _ in range(5000)]
    bb = [b[rng.integers(len(b), size=len(b))].mean() for _ in range(2000)]
    print(f"{tag} {mode} shuffle-mean: base {100*b.mean():.1f} [{100*np.percentile(bb,2.5):.1f}, "
          f"{100*np.percentile(bb,97.5):.1f}], LoRA (seeds {seeds}) {100*l.mean():.1f}, diff {100*diff.mean():+.1f} "
          f"[{100*np.percentile(boots, 2.5):+.1f}, {100*np.percentile(boots, 97.5):+.1f}]")
    for s, r in zip(seeds, loras):
        print(f"   seed {s}: {100*np.mean([r['per_question'][mode][q] for q in qids]):.1f}")

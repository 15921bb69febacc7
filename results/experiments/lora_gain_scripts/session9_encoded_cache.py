"""Session-9 check (#15, goal 9): does keeping every clip's encoded audio change an evaluation? One system evaluated
on mini dev in both modes (K=4 orders, the full profile's settings, one torch thread) with the encoded-audio cache
capped at CAP clips (256 was the old default) or holding every clip ("none"); compare the two output folders with
cmp (predictions.csv, robustness_*.csv) and read metrics.json's timing.
usage: python session9_encoded_cache.py BASE [ADAPTER|-] CAP OUT_DIR   (CAP: a number or "none")"""
import sys
import time

if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    from aqa_utils import workbook
    from aqa_utils.data.dcase import load_split
    from aqa_utils.data.prompt import tokenizer_for
    from aqa_utils.evaluation import EvalSettings, evaluate
    from aqa_utils.loading import load_model

    base, adapter, cap, out = sys.argv[1:5]
    full = workbook.profile("full")
    questions = load_split(full.data_root, "dev").questions
    model = load_model(base, None if adapter == "-" else adapter)
    settings = EvalSettings(mode="both", permutations=full.eval_permutations, max_new_tokens=full.eval_max_new_tokens,
                            primary="score", encoded_cache_size=None if cap == "none" else int(cap))
    start = time.perf_counter()
    evaluate(model, tokenizer_for(model), questions, settings, out_dir=out)
    print(f"cap {cap}: {time.perf_counter() - start:.1f} s")

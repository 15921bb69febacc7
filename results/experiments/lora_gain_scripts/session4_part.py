"""Session-4 ablation (#15): full fine-tuning of ONE part of the pipeline's base (parameters whose name matches a
regex; every other weight frozen), then the session-3 evaluation on train.val. It wraps session3_run.py, patching
the trainer's freezing step.
usage: TRAIN_ONLY='regex' [DRIVER=session5_run.py] python results/experiments/lora_gain_scripts/session4_part.py TAG '{"mode":"full","frozen":[],"lr":1e-3}'"""
import os, re, runpy, sys
import aqa_utils.training.trainer as trainer

keep = re.compile(os.environ["TRAIN_ONLY"])


def freeze_all_but(model, frozen):
    n = 0
    for name, param in model.named_parameters():
        param.requires_grad_(bool(keep.search(name)))
        n += param.numel() if param.requires_grad else 0
    print("trainable parameters:", n, flush=True)


trainer.freeze_components = freeze_all_but
# DRIVER: the session's evaluation driver it wraps (session 5: DRIVER=session5_run.py, its JSON keys included).
sys.argv = [os.path.join(os.path.dirname(__file__), os.environ.get("DRIVER", "session3_run.py"))] + sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")

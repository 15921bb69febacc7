"""Session-13 design W (#15, goals 2 and 3a): V's copy lines (half of them state two candidates and list one,
the package's ``generic.copy_question`` since a6702b9) in stage 2 only; stage 3 (the species facts) with the plain
copy lines of design G ("the answer is X.", ``generic.stated_copy_question``). Why: V's pipeline run and its
train.val seeds learnt the pitch question less than G's (pitch needs the species heard composed with the fact
recalled in stage 3); W asks whether V's lower unparsed share survives a stage 3 without the either-lines, and the
pitch with it.
Starts from the pipeline's stage-1 final; stages 2 and 3 with the pipeline's hyperparameters.
usage: python session13_stage3plain.py STAGE1_FINAL OUT_DIR   (then session12_lora.py OUT_DIR/base ...)"""
import os, sys
from pathlib import Path
import torch
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
import aqa_utils.training.examples as ex
from aqa_utils.data.mini import generic
from session10_calls import train_stages


def per_stage(name: str) -> None:
    ex.copy_question = generic.copy_question if name == "stage2" else generic.stated_copy_question


if __name__ == "__main__":
    train_stages(sys.argv[1], Path(sys.argv[2]), first=2, before=per_stage)

"""Session-15 driver (#15, goal 3a), a lab-only base design X: V's stages 2-3 with every text-only copy line in the
either form ("it is two or four. which option is right?" with four not listed), where V draws it half the time.
Why: of every design tried against the unparsed generations, only V's either-lines lowered them without a cost
(twelfth session, with the 3-epoch recipe); the 6-epoch recipe's adapters name unlisted classes again. X asks
whether more of the same base skill (answer what is believed AND listed) carries further.
From V2's stage-1 final (work/quick/runs/base_pretrain/final), stages 2-3 on THREADS threads as session10_calls.py;
compare with V3 (the same stage 1, V's stages 2-3 on one thread, fourteenth session) under the same LoRA recipe.
usage: THREADS=1 python session15_either.py STAGE1_FINAL OUT_DIR   (the base in OUT_DIR/base)"""
import sys
from pathlib import Path
import aqa_utils.training.examples as ex
from aqa_utils.data.mini.generic import either_copy_question
from session10_calls import train_stages

if __name__ == "__main__":
    ex.copy_question = either_copy_question  # the name CaptionExamples.get calls for its copy lines
    train_stages(sys.argv[1], Path(sys.argv[2]), first=2)

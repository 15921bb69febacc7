"""Session-16 driver (#15, goal 3a), a lab-only design RX: the control's recipe (session15_lora.py: 6 epochs, lr
1e-3, SpecAugment off) with REPLAY of the base's text-only copy lines mixed into each epoch (the base's own mix:
half stated, "it is two. which option is right?", half either, "it is two or four." with four not listed), drawn
anew each epoch from the caption train split, in the training augmentation. Why: X (fifteenth session) found that
the base's option reading does not survive six epochs of fine-tuning; the eleventh session's replay kept presence
and fact lines, never these. Each epoch gets REPLAY more lines (300: a quarter of train.fit), so a run costs more.
usage: SEED=0 [REPLAY=300] python session16_replay.py BASE_DIR OUT_DIR"""
import os
from pathlib import Path
import session15_lora
from aqa_utils.training import trainer as trainer_module
from aqa_utils.training.examples import CaptionExamples, load_examples
from session11_replay import Replay

N = int(os.environ.get("REPLAY", "300"))


class CopyReplay(Replay):
    def __init__(self, questions, captions, n, seed):
        super().__init__(questions, captions, n, seed)
        kinds = captions.KINDS
        self.pool = [i for i in range(len(captions)) if kinds[i % len(kinds)] == "copy"]


def examples(cfg, split, train, **kw):
    data = load_examples(cfg, split, train, **kw)
    if train and cfg.corpus == "questions" and N:
        caps = CaptionExamples(Path(cfg.data_root), "train", cfg.seed, train=True, copy=True, facts=False)
        data = CopyReplay(data, caps, N, cfg.seed)
    return data


trainer_module.load_examples = examples

if __name__ == "__main__":
    session15_lora.run()

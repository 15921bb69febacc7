"""Session-11 driver (#15): does LoRA forget the base's skills? LoRA r=8 (the full profile's recipe: lr 3e-3,
3 epochs, train.fit) with REPLAY lines of the base's own stage-3 corpus mixed into each epoch: the presence lines
(half of a one-animal clip's about its call shape) and the text-only species facts, in the training augmentation,
drawn anew each epoch from the caption train split. REPLAY=0 is the pipeline's LoRA (the control). Evaluated on
the 296 train.val questions (never dev), K=4 orders, both modes, as session10_lora.py.
EPOCHS, LR and BATCH override the recipe's 3 epochs, rate 3e-3 and batch 8 (is LoRA undertrained?).
Ran on the package of f5766c5 (design G; b3fd9b8 changes only when a run is reused).
usage: SEED=0 REPLAY=300 [EPOCHS=6] [LR=5e-3] [BATCH=4] python session11_replay.py BASE_DIR OUT_DIR"""
import os, sys, time
from dataclasses import replace
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
from aqa_utils.training import trainer as trainer_module
from aqa_utils.training.examples import CaptionExamples, load_examples
from aqa_utils.workbook.profile import profile
from session10_lora import evaluate_val


class Replay:
    """The question examples, then ``n`` replay lines per epoch (presence and fact lines of the caption corpus)."""

    def __init__(self, questions, captions: CaptionExamples, n: int, seed: int):
        self.q, self.c, self.n, self.seed = questions, captions, n, seed
        kinds = captions.KINDS
        self.pool = [i for i in range(len(captions)) if kinds[i % len(kinds)] in ("presence", "fact")]

    def __len__(self):
        return len(self.q) + self.n

    def get(self, index, epoch):
        if index < len(self.q):
            return self.q.get(index, epoch)
        pick = np.random.default_rng([self.seed, epoch, 4242]).permutation(len(self.pool))[index - len(self.q)]
        return self.c.get(self.pool[pick], epoch)


if __name__ == "__main__":
    prof = profile("full")
    base, out = sys.argv[1], Path(sys.argv[2])
    seed, n_replay = int(os.environ.get("SEED", "0")), int(os.environ.get("REPLAY", "0"))

    def examples(cfg, split, train):
        data = load_examples(cfg, split, train)
        if train and n_replay:
            caps = CaptionExamples(Path(cfg.data_root), "train", cfg.seed, train=True, copy=False, facts=True)
            data = Replay(data, caps, n_replay, cfg.seed)
        return data

    trainer_module.load_examples = examples
    adapter = None
    if seed >= 0:
        cfg = replace(prof.lora_config(prof.lora_system(8, seed)), checkpoint=base, out_dir=str(out / "lora"),
                      progress=False, save_every=0)
        cfg = replace(cfg, epochs=float(os.environ.get("EPOCHS", cfg.epochs)), lr=float(os.environ.get("LR", cfg.lr)),
                      batch_size=int(os.environ.get("BATCH", cfg.batch_size)))
        if not (out / "lora" / "summary.json").exists():
            t = time.time(); s = trainer_module.Trainer(cfg).fit()
            print(out, "lora", round(time.time() - t), "s val_loss", s.get("val_loss"), flush=True)
        adapter = str(out / "lora" / "final")
    evaluate_val(base, adapter, out)

"""Session-12 driver (#15, goal 3a): LoRA r=8 (the full profile's recipe: lr 3e-3, 3 epochs, train.fit) whose
training questions show, with probability DROP, only some of their options: the answer and a random subset of
the distractors (at least one), before the report's augmentation (shuffle, one of six label formats). In the mini
train split a question of a four-word type (counts, call shapes, times) nearly always lists every word of its
type, so an adapter can answer from the type alone; with some options left out it has to answer from the list
it is shown. SPEC=0 turns off laion-clap's train-mode SpecAugment in CLAP during LoRA (its time masks can erase a
whole call, or an onset, from a clip whose answer counts or times them). DROP=0 SPEC=1 is the recipe (the control).
Evaluated on the 296 train.val questions (never dev), K=4 orders, both modes, as session10_lora.py; SEED=-1 is
the base alone.
Ran on the package of 13698ef (design G), also for the runs from design E's base (session12_exclude.py).
usage: SEED=0 [DROP=0.5] [SPEC=0] python session12_lora.py BASE_DIR OUT_DIR"""
import dataclasses, os, sys
from pathlib import Path
import numpy as np
from aqa_utils.data.augment import training_example
from aqa_utils.data.dcase import Question
from aqa_utils.training import examples as examples_module
import session10_lora
from aqa_utils.training import trainer as trainer_module


def fewer_options(q: Question, rng: np.random.Generator, drop: float) -> Question:
    """``q`` with, with probability ``drop``, the answer and k - 1 of its distractors (k uniform in 2..n-1)."""
    n = len(q.choices)
    if drop == 0 or n <= 2 or rng.random() >= drop:  # drop 0 draws nothing: the recipe's stream
        return q
    k = int(rng.integers(2, n))
    others = [i for i in range(n) if i != q.answer]
    keep = sorted([q.answer] + [others[i] for i in rng.permutation(len(others))[: k - 1]])
    return dataclasses.replace(q, choices=[q.choices[i] for i in keep], answer=keep.index(q.answer))


if __name__ == "__main__":
    drop = float(os.environ.get("DROP", "0"))

    def example(q, rng):
        return training_example(fewer_options(q, rng, drop), rng)

    examples_module.training_example = example
    if os.environ.get("SPEC", "1") == "0":
        init = trainer_module.Trainer.__init__

        def without_spec_augment(self, cfg, *args, **kwargs):
            init(self, dataclasses.replace(cfg, spec_augment=False), *args, **kwargs)

        trainer_module.Trainer.__init__ = without_spec_augment
    session10_lora.main(sys.argv[1], Path(sys.argv[2]), int(os.environ.get("SEED", "0")))

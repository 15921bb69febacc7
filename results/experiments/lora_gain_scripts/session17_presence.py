"""Session-17 driver (#15, goal 3a), a lab-only design P ("the list decides"): the control's recipe
(session15_lora.py: 6 epochs, lr 1e-3, SpecAugment off) where each training question, with probability PRESENCE
(default 0.2, drawn anew per epoch from (seed, epoch, index)), is replaced by the base's generic presence question
on the same clip ("which of these sounds can be heard?"): ONE of the sounds the clip holds is listed, against sounds
it does not hold, and which one is listed is drawn anew each time.
Why: the control's unparsed answers are sounds, species and numbers heard in or near the clip at the wrong place of
its order ("bell" to "which sound is heard last?" listing horn, knock, beep and siren). A question whose answer
changes with the list while the clip stays the same cannot be fitted by remembering the clip: the adapters have to
find the heard sound that IS listed, the skill those answers lack, without being told to trust the clip less (M's
cost). The sounds each clip holds come from the generator's own scenes, rebuilt from its seed without audio.
usage: SEED=0 [PRESENCE=0.2] python session17_presence.py BASE_DIR OUT_DIR"""
import os
from pathlib import Path
import numpy as np
import session15_lora
from aqa_utils.data.augment import augmented_example
from aqa_utils.data.mini.benchmark import SPLIT_KEYS, seeded
from aqa_utils.data.mini.generic import presence_question
from aqa_utils.data.mini.scenes import plan_scenes
from aqa_utils.training import examples as examples_module
from aqa_utils.workbook.profile import profile

RATE = float(os.environ.get("PRESENCE", "0.2"))
SIZES = profile("full").mini_sizes
HEARD = {s.name: sorted({sound.name for sound in s.sounds})
         for s in plan_scenes(seeded(0, SPLIT_KEYS["train"]), SIZES["n_train"])}
plain_get = examples_module.QuestionExamples.get


def presence_example(clip, rng) -> examples_module.Example:
    """The presence question on ``clip``: one of its sounds against absent ones, in the training augmentation."""
    question, choices, answer = presence_question(rng, HEARD[Path(clip).stem])
    mc = augmented_example(question, choices, answer, rng)
    return examples_module.Example(clip, mc.prompt, mc.target)


def get(self, index, epoch):
    e = plain_get(self, index, epoch)
    if self.train:
        rng = np.random.default_rng([self.seed, epoch, index, 77])
        if rng.random() < RATE:
            e = presence_example(e.audio_path, rng)
    return e


if __name__ == "__main__":  # installed here only: session17_presence_added imports HEARD and presence_example
    examples_module.QuestionExamples.get = get
    session15_lora.run()

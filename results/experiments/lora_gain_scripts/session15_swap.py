"""Session-15 driver (#15, goal 3a), a lab-only design: the control's recipe (session15_lora.py: 6 epochs, lr 1e-3,
SpecAugment off) where each training question, with probability SWAP (default 0.2, drawn anew per epoch from
(seed, epoch, index)), is heard with another training question's clip. Why: the unparsed generations are held-out
questions where the model's belief about the clip is wrong and it names that belief whether or not it is listed.
On the training set its belief is right (6 epochs fit it), so nothing teaches it to fall back on the options when
the audio does not settle the answer. A mismatched clip is that situation: the answer is still one of the listed
options, and only the options say which classes are possible. (SpecAugment did something like it, with fewer
unparsed generations, but its masks hid the mel band that names a species and its pitch.)
usage: SEED=0 [SWAP=0.2] python session15_swap.py BASE_DIR OUT_DIR"""
import dataclasses, os
import numpy as np
import session15_lora
from aqa_utils.training import examples as examples_module

SWAP = float(os.environ.get("SWAP", "0.2"))
plain_get = examples_module.QuestionExamples.get


def get(self, index, epoch):
    e = plain_get(self, index, epoch)
    if self.train:
        rng = np.random.default_rng([self.seed, epoch, index, 99])
        if rng.random() < SWAP:
            other = self.questions[int(rng.integers(len(self.questions)))]
            if other.audio_path != e.audio_path:
                e = dataclasses.replace(e, audio_path=other.audio_path)
    return e


examples_module.QuestionExamples.get = get

if __name__ == "__main__":
    session15_lora.run()

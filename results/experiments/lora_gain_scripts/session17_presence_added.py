"""Session-17 driver (#15, goal 3a), a lab-only design P+: P's presence questions (session17_presence.py) ADDED to
each epoch instead of replacing training questions: EXTRA (default 0.2) x the train split's size more examples per
epoch, each the presence question on the clip of a training question drawn anew from (seed, epoch, index), so a
run takes that many more steps. Why: M, P and D each replaced a fifth of the questions and each lost 2.6-4.6
points of scoring accuracy; this asks whether the loss is the replaced questions or what is mixed in.
usage: SEED=0 [EXTRA=0.2] python session17_presence_added.py BASE_DIR OUT_DIR"""
import os
import numpy as np
import session15_lora
from session17_presence import presence_example
from aqa_utils.training import examples as examples_module

EXTRA = float(os.environ.get("EXTRA", "0.2"))
Questions = examples_module.QuestionExamples
plain_get, plain_len = Questions.get, Questions.__len__


def added(self) -> int:
    return round(EXTRA * plain_len(self)) if self.train else 0


def get(self, index, epoch):
    n = plain_len(self)
    if index < n:
        return plain_get(self, index, epoch)
    rng = np.random.default_rng([self.seed, epoch, index, 77])
    return presence_example(self.questions[int(rng.integers(n))].audio_path, rng)


Questions.__len__ = lambda self: plain_len(self) + added(self)
Questions.get = get

if __name__ == "__main__":
    session15_lora.run()

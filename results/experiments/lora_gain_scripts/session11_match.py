"""Session-11 design M (#15): design G (the pipeline's base since b05557c) plus caption matching in stages 1-3: on
a multi-event caption clip (TSQA: its caption opens "knock first, beep last: ..."), half the presence questions ask
which short description fits the clip, the caption's opening against the same with the order swapped or another
sound named (audio-text matching, a generic pretraining task, as audio LLMs match clips to captions). Why: the base
names a clip's first sound in its caption every time (sixth session) but answers first_event / last_event little
better than chance, and LoRA does not raise them; design F/G showed that a skill known in another form becomes
usable for LoRA once asked as multiple choice. The answer is a description, not the benchmark's sound name.
Starts from the pipeline's stage-0 final; stages 1, 2, 3 with the pipeline's hyperparameters (session10_calls).
Ran on the package of f5766c5 (design G; b3fd9b8 changes only when a run is reused).
usage: python session11_match.py STAGE0_FINAL OUT_DIR"""
import os, re, sys
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
import aqa_utils.training.examples as ex
from aqa_utils.data.augment import augmented_example
from aqa_utils.data.mini.generic import PRESENCE_QUESTIONS, _options
from aqa_utils.data.mini.vocabulary import EVENTS
from session10_calls import train_stages

HEAD = re.compile(r"^(\w+) first, (\w+) last:")
Base = ex.CaptionExamples


class Matching(Base):
    def get(self, index, epoch):
        clip, kind = divmod(index, len(self.KINDS))
        audio, caption, sounds = self.clips[clip]
        head = HEAD.match(caption)
        if self.KINDS[kind] != "presence" or head is None:
            return Base.get(self, index, epoch)
        rng = np.random.default_rng([self.seed, epoch, index, 17])
        if rng.random() < 0.5:
            return Base.get(self, index, epoch)
        a, b = head.groups()
        true = f"{a} first, {b} last"
        others = [f"{x} first, {y} last" for x in EVENTS for y in EVENTS if x != y and (x, y) != (a, b)]
        swapped = f"{b} first, {a} last"
        pool = [o for o in others if o != swapped]
        choices, answer = _options(rng, true, pool)
        if len(choices) > 1 and swapped not in choices:  # the order swapped is always a distractor
            choices[int(rng.integers(1, len(choices)))] = swapped
        question = PRESENCE_QUESTIONS[int(rng.integers(len(PRESENCE_QUESTIONS)))]
        if self.train:
            mc = augmented_example(question, choices, answer, rng)
            return ex.Example(audio, mc.prompt, mc.target)
        return ex.Example(audio, ex.render_question(question, choices), ex.render_answer(choices, answer))


if __name__ == "__main__":
    ex.CaptionExamples = Matching
    train_stages(sys.argv[1], Path(sys.argv[2]))

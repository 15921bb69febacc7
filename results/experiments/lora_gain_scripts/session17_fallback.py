"""Session-17 driver (#15, goal 3a), a lab-only design M ("fall back on the list"): the control's recipe
(session15_lora.py: 6 epochs, lr 1e-3, SpecAugment off) where each training question, with probability SWAP
(default 0.2, drawn anew per epoch from (seed, epoch, index)), is heard with the clip of another training question
of the SAME type, and its target is then a set, not an answer: at the first answer token the loss is
-log(sum of p over the first tokens of the shown options), and its other answer tokens carry no loss.
Why: the unparsed generations are held-out clips heard wrong, where the model names what it believes it heard
whether or not it is listed. On fitted training clips its belief is always listed, so nothing teaches it to stay
inside the list (U's penalty vanished there). A clip of the same type that the options do not describe is the
held-out failure made on purpose. D (session15_swap.py) made it too, but trained the listed answer as if the
clip said so, which teaches nonsense and cost 4.6 points; here no option is preferred, only the list is.
The validation loss is the plain one (swaps and the set target apply only while training).
usage: SEED=0 [SWAP=0.2] python session17_fallback.py BASE_DIR OUT_DIR"""
import os
from collections import defaultdict
import numpy as np
import torch
import session15_lora
from answer_states import loss_with, question_example
from session16_smooth import answer_ids
from aqa_utils.training import examples as examples_module, objectives

SWAP = float(os.environ.get("SWAP", "0.2"))
BY_TYPE: dict[int, dict[str, list[int]]] = {}


def get(self, index, epoch):
    e = question_example(self, index, epoch)
    e.swapped = False
    if self.train:
        if id(self) not in BY_TYPE:
            groups = defaultdict(list)
            for i, q in enumerate(self.questions):
                groups[q.question_type].append(i)
            BY_TYPE[id(self)] = groups
        rng = np.random.default_rng([self.seed, epoch, index, 99])
        if rng.random() < SWAP:
            same = BY_TYPE[id(self)][e.qtype]
            other = self.questions[same[int(rng.integers(len(same)))]]
            if other.audio_path != e.audio_path:
                e.audio_path, e.swapped = other.audio_path, True
    return e


examples_module.QuestionExamples.get = get


def fallback(self, core, batch, hidden, rows, cols, targets, tok, sep):
    keep = torch.tensor([not batch[int(r)].swapped for r in rows], dtype=torch.bool)
    loss = torch.nn.functional.cross_entropy(core.lang_encoder.lm_head(hidden[rows[keep], cols[keep]]).float(),
                                             targets[rows[keep], cols[keep]], reduction="sum")
    for i, e in enumerate(batch):
        if e.swapped:
            first = int(cols[rows == i].min())
            logp = core.lang_encoder.lm_head(hidden[i, first]).float().log_softmax(-1)
            listed = sorted({answer_ids(tok, sep, c)[0] for c in e.choices})
            loss = loss - torch.logsumexp(logp[listed], 0)
    return loss


objectives.LanguageModelling.loss_sum = loss_with(fallback)

if __name__ == "__main__":
    session15_lora.run()

"""Session-15 driver (#15, goal 3a), a lab-only design: the control's recipe (session15_lora.py: 6 epochs, lr 1e-3,
SpecAugment off) plus an unlikelihood term (Welleck et al., 2019) at the first answer token. For each training
question, the classes of its question type that are NOT among its shown options (their first tokens, less any first
token a shown option shares) get -log(1 - p) added to the loss, weighted by UL (default 1). Why: the unparsed
generations name a class of the question's type that the options leave out (an unlisted species, "four" where the
options stop at three, the sound named in a next_event question); plain next-token loss never says "not that one".
The validation loss is the plain one (the term is added only while gradients are on). A class vocabulary per type
is the union of the train split's options for that type.
usage: SEED=0 [UL=1] python session15_unlikely.py BASE_DIR OUT_DIR"""
import os
from collections import defaultdict
import torch
import session15_lora
from answer_states import loss_with, question_example
from aqa_utils.data.prompt import train_text, _ids
from aqa_utils.training import examples as examples_module, objectives

WEIGHT = float(os.environ.get("UL", "1"))
VOCAB: dict[str, set] = defaultdict(set)


def get(self, index, epoch):
    if not VOCAB.get("_filled_" + str(id(self))):
        for other in self.questions:
            VOCAB[other.question_type].update(c.strip() for c in other.choices)
        VOCAB["_filled_" + str(id(self))] = True
    return question_example(self, index, epoch)


examples_module.QuestionExamples.get = get
FIRST: dict[str, int] = {}


def first_token(tokenizer, sep, prompt, text):
    if text not in FIRST:
        ids = _ids(tokenizer, train_text(prompt, text))
        FIRST[text] = ids[ids.index(sep) + 1]
    return FIRST[text]


def unlikely(self, core, batch, hidden, rows, cols, targets, tok, sep):
    logits = core.lang_encoder.lm_head(hidden[rows, cols]).float()
    loss = torch.nn.functional.cross_entropy(logits, targets[rows, cols], reduction="sum")
    starts = [int(cols[rows == i].min()) for i in range(len(batch))]
    first_logits = core.lang_encoder.lm_head(hidden[torch.arange(len(batch)), torch.tensor(starts)]).float()
    logp = first_logits.log_softmax(-1)
    for i, e in enumerate(batch):
        shown = {first_token(tok, sep, e.prompt, c) for c in e.choices}
        banned = sorted({first_token(tok, sep, e.prompt, c) for c in VOCAB[e.qtype] if c not in e.choices} - shown)
        if banned:
            p = logp[i, banned].exp().clamp(max=1 - 1e-6)
            loss = loss - WEIGHT * torch.log1p(-p).sum()
    return loss


objectives.LanguageModelling.loss_sum = loss_with(unlikely)

if __name__ == "__main__":
    session15_lora.run()

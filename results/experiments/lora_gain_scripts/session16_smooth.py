"""Session-16 driver (#15, goal 3a), a lab-only design S: the control's recipe (session15_lora.py: 6 epochs, lr 1e-3,
SpecAugment off) with label smoothing restricted to the shown options. At each answer token where the shown options
could go on differently (the options whose tokens agree with the target so far), the target puts 1 - EPS on the
answer's token and spreads EPS over the other options' tokens there; elsewhere it is the plain next-token loss.
Why: the unparsed generations name a class the options leave out, and once the adapters fit a training clip the
options no longer matter to the loss. With the mass kept on the listed alternatives, every training step asks the
model to know which classes are listed, on fitted clips too (unlike U's penalty, which vanished once the unlisted
classes had no mass). The validation loss is the plain one.
usage: SEED=0 [EPS=0.1] python session16_smooth.py BASE_DIR OUT_DIR"""
import os
import torch
import session15_lora
from answer_states import loss_with, question_example
from aqa_utils.data.prompt import train_text, _ids
from aqa_utils.training import examples as examples_module, objectives

EPS = float(os.environ.get("EPS", "0.1"))


examples_module.QuestionExamples.get = question_example
ANSWER: dict[str, list[int]] = {}


def answer_ids(tokenizer, sep, text):
    """The tokens after <SEP> when ``text`` is the answer (the answer is tokenized apart from the prompt)."""
    if text not in ANSWER:
        ids = _ids(tokenizer, train_text("x", text))
        ANSWER[text] = ids[ids.index(sep) + 1:]
    return ANSWER[text]


def smoothed(self, core, batch, hidden, rows, cols, targets, tok, sep):
    logp = core.lang_encoder.lm_head(hidden[rows, cols]).float().log_softmax(-1)
    truth = targets[rows, cols]
    loss = -logp[torch.arange(len(truth)), truth]
    start = 0
    for i, e in enumerate(batch):
        n = int((rows == i).sum())
        mine = truth[start:start + n].tolist()
        assert mine == answer_ids(tok, sep, e.target), (mine, e.target)
        options = [answer_ids(tok, sep, c) for c in e.choices if c != e.target.strip()]
        for k in range(n):
            others = sorted({o[k] for o in options if len(o) > k and o[:k] == mine[:k]} - {mine[k]})
            if others:
                row = logp[start + k]
                loss[start + k] = -(1 - EPS) * row[mine[k]] - EPS * row[others].mean()
        start += n
    return loss.sum()


objectives.LanguageModelling.loss_sum = loss_with(smoothed)

if __name__ == "__main__":
    session15_lora.run()

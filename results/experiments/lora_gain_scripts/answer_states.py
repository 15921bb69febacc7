"""A lab loss over a training batch's answer positions, computed on the model's own loss path (AF2Model.forward
with labels), for losses that need more than the plain next-token loss (session15_unlikely.py, session16_smooth.py),
and the examples they read.
Steps without gradients (the validation loss) keep the package's loss."""
import numpy as np
import torch
from aqa_utils.data.augment import training_example
from aqa_utils.data.prompt import AF2Tokens
from aqa_utils.training import examples as examples_module


def question_example(self, index, epoch):
    """``QuestionExamples.get`` that also keeps, on the example, the options as shown (``choices``, stripped) and the
    question type (``qtype``), which the lab terms read."""
    q = self.questions[index]
    mc = training_example(q, np.random.default_rng([self.seed, epoch, index])) if self.train \
        else examples_module.eval_example(q)
    e = examples_module.Example(q.audio_path, mc.prompt, mc.target)
    e.choices, e.qtype = [c.strip() for c in mc.choices], q.question_type
    return e


def loss_with(term):
    """A ``LanguageModelling.loss_sum`` whose training steps return ``term(objective, core, batch, hidden, rows,
    cols, targets, tokenizer, sep)``, inside autocast: hidden (B, T, D); position (rows[k], cols[k]) predicts answer
    token targets[rows[k], cols[k]] (targets (B, T-1)); rows ascend, and within a row the columns do."""

    def loss_sum(self, module, core, batch, device, autocast):
        text = {k: v.to(device) for k, v in self.collate([(e.prompt, e.target) for e in batch]).items()}
        with autocast():
            if not torch.is_grad_enabled():
                return module(text["input_ids"], text["attention_mask"], labels=text["labels"],
                              **self._audio(core, batch, device, autocast)).loss_sum
            audio = self._audio(core, batch, device, autocast)
            memory = core.encode_audio(audio["windows"], audio["window_mask"])
            hidden, _ = core._hidden_states(text["input_ids"], text["attention_mask"], memory)
            targets = text["labels"][:, 1:]
            rows, cols = (targets != -100).nonzero(as_tuple=True)
            tok = self.collate.tokenizer
            return term(self, core, batch, hidden, rows, cols, targets, tok, AF2Tokens.of(tok).sep)

    return loss_sum

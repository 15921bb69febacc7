"""Session-16 driver (#15, goal 3a), design L: the control's recipe (session15_lora.py: 6 epochs, lr 1e-3,
SpecAugment off) with answer targets that carry the option's label in the prompt's format ("(b) yyy", "2. yyy"),
as the report's six label formats suggest; the option scoring of every system scores the same form ("(a) xxx", ...
in the fixed (A)-(F) format), so SEED=-1 gives the base zero-shot on that form. Why: the unparsed generations name a
class that the options leave out; a generation that opens with a listed label names a listed option first.
With BASE=1, the base's stages 1-3 are trained from a stage-0 final with every multiple-choice line of its corpus
(presence, call shape, copy, fact) answered in the same labelled form: design LB. Without it, the given base is
fine-tuned: design L on the pipeline's base (whose lines answer with the text alone), LB on LB's base.
usage: SEED=0 python session16_label.py BASE_DIR OUT_DIR;  BASE=1 THREADS=2 python session16_label.py STAGE0_FINAL OUT_DIR"""
import os, sys
from pathlib import Path
import aqa_utils.data.augment as augment
import aqa_utils.evaluation.engine as engine
import aqa_utils.training.examples as examples
from aqa_utils.data.formats import EVAL_FORMAT, MCExample, format_label, render_question
import session15_lora

plain_eval_example = examples.eval_example


def labelled(choices: list[str], answer: int, fmt: str) -> str:
    return f"{format_label(answer, fmt)} {choices[answer].strip()}"


def augmented_example(question, choices, answer, rng):
    choices, answer = augment.shuffle_choices(choices, answer, rng)
    fmt = augment.LABEL_FORMATS[augment._randrange(len(augment.LABEL_FORMATS), rng)]
    return MCExample(render_question(question, choices, fmt), labelled(choices, answer, fmt), choices, answer, fmt)


def eval_example(q, order=None):
    mc = plain_eval_example(q, order)
    if mc.answer is not None:
        mc.target = labelled(mc.choices, mc.answer, EVAL_FORMAT)
    return mc


augment.augmented_example = augmented_example  # training_example calls it by its module name
examples.augmented_example = augmented_example  # the base corpus, which imported it by name
examples.eval_example = eval_example  # the validation loss of a question run
examples.render_answer = lambda choices, answer: labelled(choices, answer, EVAL_FORMAT)  # ...of a base stage
engine.option_targets = lambda choices: [labelled(list(choices), i, EVAL_FORMAT) for i in range(len(choices))]

if __name__ == "__main__":
    if os.environ.get("BASE") == "1":
        from session10_calls import train_stages
        train_stages(sys.argv[1], Path(sys.argv[2]), first=1)
    else:
        session15_lora.run()

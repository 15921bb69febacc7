"""Session-12 design E (#15, goal 3a): the base's text-only copy lines (stages 2-3) teach, half the time, to answer
with the one stated candidate that is among the options: "it is the knock or the bell. which option is right?"
with the bell listed and the knock not ("the answer is X" otherwise, as the pipeline). Why: the adapters' unparsed
generations name a class of the question's type that the options leave out ("knock" to a first-event question
listing beep / bell / siren / horn): the LM answers from what it believes, not from the list. Intersecting what it
believes with what is listed is a reading skill no benchmark question type teaches.
Starts from the pipeline's stage-1 final; stages 2 and 3 with the pipeline's hyperparameters.
Ran on the package of 13698ef. The package of 2e65b16 had design E in its own copy_question (the same lines,
checked over 12,000 seeds; this patch would apply it twice there); it was taken back (lab record, twelfth session).
usage: [VOCAB=1] python session12_exclude.py STAGE1_FINAL OUT_DIR   (then session12_lora.py OUT_DIR/base ...)"""
import os, sys
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
import aqa_utils.training.examples as ex
from aqa_utils.data.mini import generic
from session10_calls import train_stages

EITHER = ("it is {a} or {b}.", "{a} or {b}, one of them.", "either {a} or {b}.", "hint: {a} or {b}.")
# VOCAB=1: templates whose every token is in af2-tiny's vocabulary (" them" and "either" are not; lab record).
if os.environ.get("VOCAB") == "1":
    EITHER = ("it is {a} or {b}.", "{a} or {b}.", "the answer is {a} or {b}.", "hint: {a} or {b}.")


def exclusion_copy_question(rng: np.random.Generator):
    """The pipeline's copy question, or (half the time, on its own stream) two candidates stated, one listed."""
    if rng.random() < 0.5:
        return generic.copy_question(rng)
    vocabs = [v for v in generic.ANSWER_VOCABULARIES if len(v) >= 3]
    vocab = vocabs[int(rng.integers(len(vocabs)))]
    answer, decoy = (vocab[i] for i in rng.permutation(len(vocab))[:2])
    choices, index = generic._options(rng, answer, [v for v in vocab if v not in (answer, decoy)])
    a, b = (answer, decoy) if rng.random() < 0.5 else (decoy, answer)
    statement = EITHER[int(rng.integers(len(EITHER)))].format(a=a, b=b)
    return f"{statement} {generic.COPY_QUESTIONS[int(rng.integers(len(generic.COPY_QUESTIONS)))]}", choices, index


if __name__ == "__main__":
    ex.copy_question = exclusion_copy_question
    train_stages(sys.argv[1], Path(sys.argv[2]), first=2)

"""Stage 1b: after a stage-1 base, a short full-training stage (CLAP frozen) mixing the stage-1 corpus with TEXT-ONLY
copy questions whose answer is stated in the prompt, over every answer vocabulary the benchmark uses (and generic
question wording): the LM learns to OUTPUT any option's text at the answer's start, without seeing the benchmark's
question types. Then LoRA (design.py) teaches which option the audio supports.

python exp/copy_stage.py SRC_TAG DST_TAG [--steps 300] [--lr 1e-3]
"""
import sys
sys.path[:0] = [__import__("os").environ["AQA_OLD_CHECKOUT"], __import__("os").path.dirname(__file__)]  # a checkout of d74bb32
from common import *  # noqa
import argparse, json, shutil, time
from dataclasses import replace
import numpy as np
import design as D
from aqa_utils import workbook
from aqa_utils.data import mini as M
from aqa_utils.data import augment

VOCABS = [tuple(s.name for s in M.SPECIES), M.EVENTS, M.CALLS, M.PITCHES, M.NUMBERS,
          tuple(M._seconds(t) for t in sorted(set(M.ONSETS + M.OFFSETS))), M.DURATION_WORDS, ("yes", "no")]
STATEMENTS = ("the answer is {x}.", "{x} is correct.", "it is {x}.", "hint: {x}.")
QUESTIONS = ("which option is right?", "pick the correct option.", "what is the answer?", "choose one.")


class CopyMix(D.GenericCaptions):
    def __init__(self, root, split, seed=0, train=True):
        super().__init__(root, split, seed, train)
        self.n_corpus = len(self.items)
        self.audio = [it.audio_path for it in self.items if isinstance(it, D.T.Example)]
        self.items = self.items + [("copy",)] * self.n_corpus

    def get(self, index, epoch):
        if index < self.n_corpus:
            return super().get(index, epoch)
        rng = np.random.default_rng([self.seed, epoch, index, 11])
        vocab = VOCABS[int(rng.integers(len(VOCABS)))]
        k = min(int(rng.choice(M.CHOICE_COUNTS)), len(vocab))
        choices = [vocab[i] for i in rng.permutation(len(vocab))[:k]]
        answer = int(rng.integers(k))
        stmt = STATEMENTS[int(rng.integers(len(STATEMENTS)))].format(x=choices[answer])
        q = f"{stmt} {QUESTIONS[int(rng.integers(len(QUESTIONS)))]}"
        mc = augment.augmented_example(q, choices, answer, rng)
        return D.T.Example(self.audio[int(rng.integers(len(self.audio)))], mc.prompt, mc.target)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("src"); ap.add_argument("dst")
    ap.add_argument("--steps", type=int, default=300); ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--style", default="text")
    a = ap.parse_args()
    D.set_style(a.style)
    D.CORPORA["copymix"] = CopyMix
    D.set_corpus("copymix")
    out = WORK / a.dst
    out.mkdir(parents=True, exist_ok=True)
    prof = workbook.profile("full")
    cfg = replace(prof.pretrain, data_root=str(DATA), checkpoint=str(WORK / a.src / "base"), out_dir=str(out / "stage1b"),
                  progress=False, eval_every=0, max_steps=a.steps, lr=a.lr, warmup_steps=10)
    t = time.time()
    s = D.T.Trainer(cfg).fit()
    s["wall"] = round(time.time() - t, 1)
    print("stage1b", json.dumps(s), flush=True)
    shutil.copytree(s["final"], out / "base")

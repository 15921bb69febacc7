"""Session-10 design F (#15): the pipeline's stage 3 (species facts) with the facts ALSO asked as text-only multiple
choice ("what pitch are a glass shrimp's calls?" with options low / medium / high, shuffled, one of the six label
formats, as the copy lines are). Why: the sixth-ninth sessions' dev runs learn pitch only half (base 39 -> LoRA 48%),
while the fifth session's K3 bases, whose LoRA composed species + pitch fact best, recalled the fact as multiple
choice only 67% of the time. The benchmark asks about the clip, never the species' fact, so composing the two is
still left to fine-tuning.
FACTS=open (the pipeline's stage 3, redone here as the control), mc (every fact line multiple choice), mix (half).
FACT_LINES: fact lines per caption clip (the pipeline: 2). Starts from the pipeline's stage-2 final.
Ran on the package of 2fde7a7, before b05557c made its stage-3 facts multiple choice and added the call-shape
presence questions: on a later package the subclassed `CaptionExamples` already has both, so FACTS=open/mix and
the stacking below no longer reproduce the measured controls (check out 2fde7a7 to rerun them).
usage: FACTS=mc python session10_facts.py STAGE2_FINAL OUT_DIR"""
import os, sys, time, shutil
from dataclasses import replace
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
import aqa_utils.training.examples as ex
from aqa_utils.data.augment import augmented_example
from aqa_utils.data.mini.generic import fact_question
from aqa_utils.data.mini.vocabulary import CALLS, PITCHES, SPECIES
from aqa_utils.training import Trainer
from aqa_utils.workbook.profile import profile

MODE, LINES = os.environ.get("FACTS", "mc"), int(os.environ.get("FACT_LINES", "2"))
Base = ex.CaptionExamples


def mc_fact(rng: np.random.Generator) -> tuple[str, list[str], int]:
    species = SPECIES[int(rng.integers(len(SPECIES)))]
    if rng.random() < 2 / 3:  # the two pitch templates of the open facts, one calls template
        q = ("what pitch are a {s}'s calls?", "fact: the pitch of a {s}'s calls.")[int(rng.integers(2))]
        return q.format(s=species.name), list(PITCHES), PITCHES.index(species.pitch)
    call = species.calls[int(rng.integers(2))]
    other = [c for c in CALLS if c not in species.calls]  # the species' other call is no distractor
    choices = [call] + [other[i] for i in rng.permutation(len(other))[: int(rng.integers(1, len(other) + 1))]]
    return f"which calls does a {species.name} make?", choices, 0


class Facts(Base):
    def __init__(self, *a, facts=False, **k):
        super().__init__(*a, facts=facts, **k)
        if facts:
            self.KINDS = tuple(x for x in self.KINDS if x != "fact") + ("fact",) * LINES

    def get(self, index, epoch):
        clip, kind = divmod(index, len(self.KINDS))
        if self.KINDS[kind] != "fact" or MODE == "open":
            return Base.get(self, index, epoch)
        rng = np.random.default_rng([self.seed, epoch, index, 7])
        audio = self.clips[int(rng.integers(len(self.clips)))][0]
        if MODE == "mix" and rng.random() < 0.5:
            question, answer = fact_question(rng)
            return ex.Example(audio, question, answer)
        question, choices, answer = mc_fact(rng)
        if self.train:
            mc = augmented_example(question, choices, answer, rng)
            return ex.Example(audio, mc.prompt, mc.target)
        return ex.Example(audio, ex.render_question(question, choices), ex.render_answer(choices, answer))


def main(stage2_final: str, out: Path) -> None:
    ex.CaptionExamples = Facts
    prof = profile("full")
    cfg = replace(prof.facts_config(), checkpoint=stage2_final, out_dir=str(out / "stage3"), save_every=0,
                  progress=False)
    if not (out / "stage3" / "summary.json").exists():
        t = time.time(); s = Trainer(cfg).fit()
        print("stage3", MODE, LINES, round(time.time() - t), "s", {k: v for k, v in s.items() if "val" in k}, flush=True)
    if not (out / "base" / "safe_ckpt").exists():
        shutil.copytree(out / "stage3" / "final", out / "base")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))

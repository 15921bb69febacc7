"""Session-10 design G (#15): design F (session10_facts.py, FACTS=mc) plus presence questions over CALL SHAPES in
stages 1-3: on a caption clip of one animal, half the presence questions ask which call shape is heard ("which of
these sounds can be heard?" -> "trill", against absent shapes), the generic sound-tagging QA an audio LLM
pretrains on (AudioSet has whistle and trill). Why: LoRA on the F base learns pitch (species heard + fact) but
vocalization stays near 50%: the facts narrow the call to two, and the base has no skill naming a call shape as
multiple choice (presence asked only about species and events).
Starts from the pipeline's stage-0 final; stages 1, 2, 3 with the pipeline's hyperparameters.
Ran on the package of 2fde7a7, before b05557c made its stage-3 facts multiple choice and added the call-shape
presence questions: on a later package the subclassed `CaptionExamples` already has both, so FACTS=open/mix and
the stacking below no longer reproduce the measured controls (check out 2fde7a7 to rerun them).
usage: FACTS=mc python session10_calls.py STAGE0_FINAL OUT_DIR"""
import os, sys, time, shutil
from dataclasses import replace
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
import aqa_utils.training.examples as ex
from aqa_utils.data.augment import augmented_example
from aqa_utils.data.mini.generic import PRESENCE_QUESTIONS, _options
from aqa_utils.data.mini.vocabulary import CALLS
from aqa_utils.training import Trainer
from aqa_utils.workbook.profile import profile
from session10_facts import Facts


class CallsToo(Facts):
    def get(self, index, epoch):
        clip, kind = divmod(index, len(self.KINDS))
        audio, caption, sounds = self.clips[clip]
        shape = [c for c in CALLS if f" {c} calls" in caption]
        if self.KINDS[kind] != "presence" or len(shape) != 1:
            return Facts.get(self, index, epoch)
        rng = np.random.default_rng([self.seed, epoch, index, 13])
        if rng.random() < 0.5:
            return Facts.get(self, index, epoch)
        choices, answer = _options(rng, shape[0], [c for c in CALLS if c != shape[0]])
        question = PRESENCE_QUESTIONS[int(rng.integers(len(PRESENCE_QUESTIONS)))]
        if self.train:
            mc = augmented_example(question, choices, answer, rng)
            return ex.Example(audio, mc.prompt, mc.target)
        return ex.Example(audio, ex.render_question(question, choices), ex.render_answer(choices, answer))


def train_stages(start: str, out: Path, first: int = 1, before=None) -> None:
    """Stages ``first`` .. 3 with the pipeline's hyperparameters from ``start`` (the final of stage ``first`` - 1)
    on whatever corpus ``aqa_utils.training.examples.CaptionExamples`` is at the time; the base in ``out/base``.
    ``before(name)``, if given, runs before each stage is trained (a lab script's per-stage corpus)."""
    prof = profile("full")
    previous = start
    stages = (("stage1", prof.base_config()), ("stage2", prof.copy_config()), ("stage3", prof.facts_config()))
    for name, cfg in stages[first - 1:]:
        cfg = replace(cfg, checkpoint=previous, out_dir=str(out / name), save_every=0, progress=False)
        if not (out / name / "summary.json").exists():
            if before:
                before(name)
            t = time.time(); s = Trainer(cfg).fit()
            print(name, round(time.time() - t), "s", {k: v for k, v in s.items() if "val" in k}, flush=True)
        previous = str(out / name / "final")
    if not (out / "base" / "safe_ckpt").exists():
        shutil.copytree(out / "stage3" / "final", out / "base")


if __name__ == "__main__":
    ex.CaptionExamples = CallsToo
    train_stages(sys.argv[1], Path(sys.argv[2]))

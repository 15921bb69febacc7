"""Session-6 design K4 (#15): the pipeline's stage 3 (species facts) with one more line per caption clip: an OPEN
question about the clip's ORDER ("name the sound heard at the start of the recording." -> "bell"), no options, in
words the benchmark's templates do not use. Stands for the open temporal QA of AF2's own pretraining data; the
benchmark's first/last/next questions stay multiple choice for fine-tuning to teach. Why: the pipeline's base writes
"bell first, siren last: ..." in its captions for 33 of 33 dev clips (session6 caption check), yet answers the
first_event question at about chance, LoRA or not.
Starts from the pipeline's stage-2 final (work/quick/runs/base_copy/final of a `make reproduce-quick`, identical to the
full profile's). Output: work/exp6/k4_base (its final/ is a base in the release layout).
usage: python session6_order.py STAGE2_FINAL"""
import os, sys, time
from dataclasses import replace
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(int(os.environ.get("THREADS", "2")))
import aqa_utils.training.examples as ex
from aqa_utils.training import Trainer
from aqa_utils.workbook.profile import profile
from session6_common import caption_scenes

ASK = {"first": ("name the sound heard at the start of the recording.", "what do you hear at the very beginning?"),
       "last": ("name the sound heard at the end of the recording.", "what do you hear at the very end?")}
prof = profile("full"); root = Path(prof.mini_root)
order = {str(root / line["audio"]): [s.name for s in sorted(scene.sounds, key=lambda s: s.onset)]  # clip -> names
         for split in ("train", "dev") for line, scene in caption_scenes(root, split)}
Base = ex.CaptionExamples


class WithOrder(Base):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.KINDS = self.KINDS + ("order",) * int(os.environ.get("ORDER_LINES", "1"))

    def get(self, index, epoch):
        clip, kind = divmod(index, len(self.KINDS))
        if self.KINDS[kind] != "order":
            return Base.get(self, index, epoch)
        rng = np.random.default_rng([self.seed, epoch, index, 11])
        audio = self.clips[clip][0]
        which = "first" if rng.random() < 0.5 else "last"
        names = order[str(audio)]
        return ex.Example(audio, ASK[which][int(rng.integers(2))], names[0] if which == "first" else names[-1])


ex.CaptionExamples = WithOrder
cfg = replace(prof.facts_config(), checkpoint=sys.argv[1], out_dir=os.environ.get("OUT", "work/exp6/k4_base"),
              save_every=0, progress=False)
if not (Path(cfg.out_dir) / "summary.json").exists():
    t = time.time(); s = Trainer(cfg).fit()
    print("stage3+order", round(time.time() - t), "s", {k: v for k, v in s.items() if "val" in k}, flush=True)

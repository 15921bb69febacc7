"""Session-5 design K (#15): the pipeline's base stages 1 and 2 with one more kind of line per caption clip: a
TEXT-ONLY fact about a species, asked open (no options), e.g. "what pitch are a glass frog's calls?" -> "high", or
"which calls does a glass frog make?" -> "trill and moan". It stands for what a pretrained LLM knows about the
world; the benchmark's own questions ask about the clip ("what is the pitch of the call?"), so answering them still
needs the species heard and the fact recalled together, which is what fine-tuning would have to compose.
Stage 0 is the pipeline's (results/runs/base_audio_encoder/final, identical bytes). Outputs: work/exp5/k_s1, k_base.
usage: python session5_knowledge.py            (K)
       ONLY_STAGE2=1 FACT_LINES=2 python session5_knowledge.py   (K2: facts in stage 2 only, 2 lines per clip)
       AFTER_BASE=600 FACT_LINES=2 python session5_knowledge.py  (K3: the pipeline's base + 600 steps of stage 2 with facts)"""
import os, time
from dataclasses import replace
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(int(os.environ.get("THREADS", "2")))
import aqa_utils.training.examples as ex
from aqa_utils.data.mini.vocabulary import SPECIES
from aqa_utils.training import Trainer
from aqa_utils.workbook.profile import profile

FACTS = (("what pitch are a {s}'s calls?", lambda sp: sp.pitch), ("fact: the pitch of a {s}'s calls.", lambda sp: sp.pitch),
         ("which calls does a {s} make?", lambda sp: " and ".join(sp.calls)))
Base = ex.CaptionExamples


class WithFacts(Base):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.KINDS = self.KINDS + ("fact",) * int(os.environ.get("FACT_LINES", "1"))

    def get(self, index, epoch):
        clip, kind = divmod(index, len(self.KINDS))
        if self.KINDS[kind] != "fact":
            return Base.get(self, index, epoch)
        rng = np.random.default_rng([self.seed, epoch, index, 7])
        sp = SPECIES[int(rng.integers(len(SPECIES)))]
        template, answer = FACTS[int(rng.integers(len(FACTS)))]
        audio = self.clips[int(rng.integers(len(self.clips)))][0]  # irrelevant: a text-only fact
        return ex.Example(audio, template.format(s=sp.name), answer(sp))


ex.CaptionExamples = WithFacts
W = Path("work/exp5"); prof = profile("full")
_, s1, s2 = prof.base_stages()
# K: facts in stages 1 and 2 (from the pipeline's stage 0). K2 (ONLY_STAGE2=1): the pipeline's stage 1 as it is
# (results/runs/base_pretrain/final), facts in stage 2 only.
if os.environ.get("AFTER_BASE"):  # K3: the pipeline's finished base, then one more stage 2 with the facts
    seed = int(os.environ.get("SEED", "0"))  # another realisation of the facts stage: SEED=1 -> k3s1_base
    plan = [(replace(s2, checkpoint="work/base/af2-tiny", out_dir=str(W / ("k3_base" if seed == 0 else f"k3s{seed}_base")),
                     max_steps=int(os.environ["AFTER_BASE"]), seed=seed), "stage2b")]
elif os.environ.get("ONLY_STAGE2"):
    plan = [(replace(s2, checkpoint="results/runs/base_pretrain/final", out_dir=str(W / "k2_base")), "stage2")]
else:
    plan = [(replace(s1, checkpoint="results/runs/base_audio_encoder/final", out_dir=str(W / "k_s1")), "stage1"),
            (replace(s2, checkpoint=str(W / "k_s1" / "final"), out_dir=str(W / "k_base")), "stage2")]
for cfg, tag in plan:
    cfg = replace(cfg, save_every=0, progress=False)
    if not (Path(cfg.out_dir) / "summary.json").exists():
        t = time.time(); s = Trainer(cfg).fit()
        print(tag, round(time.time() - t), "s", {k: v for k, v in s.items() if "val" in k}, flush=True)

"""Session-3 experiment (#15): a time-resolved stage 0. Besides the clip tags (max over CLAP tokens), every CLAP token
is trained to tag what sounds at its own time (from the caption clips' known onsets and offsets), so that the
tokens carry when and how often sounds occur. Then stages 1 and 2 as the pipeline's, into work/exp3/tb_*.
usage: python timebase.py"""
import os, sys, time, json
from dataclasses import replace
from pathlib import Path
import torch, torch.nn.functional as F
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
from aqa_utils.workbook.profile import profile
from aqa_utils.training import Trainer, objectives
from aqa_utils.audio import pad_to_longest
from aqa_utils.data.mini.scenes import plan_scenes, seeded, SPLIT_KEYS
from aqa_utils.data.mini.vocabulary import SOUND_CLASSES

prof = profile("full"); W = Path("work/exp3"); root = Path(prof.data_root)
TIME_STEPS, FREQ_ROWS, WINDOW = 32, 2, 10.0   # af2-tiny's 64 tokens per 10 s window: (frequency row, time step)
timeline = {}
for split in ("train", "dev"):
    lines = [json.loads(l) for l in (root / "captions" / f"{split}.jsonl").read_text().splitlines()]
    scenes = plan_scenes(seeded(0, 100 + SPLIT_KEYS[split]), len(lines), prefix="cap", per_clip=1)
    for line, scene in zip(lines, scenes):
        assert line["audio"].endswith(scene.name + ".wav")
        timeline[str(root / line["audio"])] = [(s.onset, s.offset, [c for c in (s.name, s.call) if c]) for s in scene.sounds]

def frame_targets(path, n_tokens):
    t = torch.zeros(n_tokens, len(SOUND_CLASSES))
    for k in range(n_tokens):
        step = k % (FREQ_ROWS * TIME_STEPS)
        at = (k // (FREQ_ROWS * TIME_STEPS)) * WINDOW + ((step % TIME_STEPS) + 0.5) * WINDOW / TIME_STEPS
        for on, off, names in timeline[str(path)]:
            if on <= at < off:
                for n in names:
                    t[k, SOUND_CLASSES.index(n)] = 1.0
    return t

def loss_sum(self, module, core, examples, device, autocast):
    targets = torch.stack([t for _, t in examples]).to(device)
    windows, mask = pad_to_longest([self.clips.get(path) for path, _ in examples])
    with autocast():
        tokens, tmask = module.af2.clap_tokens(windows.to(device), mask.to(device))
        frame_logits = module.head.proj(tokens).float()
    clip_logits = frame_logits.masked_fill(~tmask[..., None], torch.finfo(frame_logits.dtype).min).max(dim=1).values
    clip = F.binary_cross_entropy_with_logits(clip_logits, targets, reduction="sum")
    frames = 0.0
    for i, (path, _) in enumerate(examples):
        n = int(tmask[i].sum())
        frames = frames + F.binary_cross_entropy_with_logits(frame_logits[i, :n], frame_targets(path, n), reduction="sum") / n
    return clip + frames

objectives.Tagging.loss_sum = loss_sum

def fit(cfg, tag):
    if (Path(cfg.out_dir) / "summary.json").exists():
        return
    t = time.time(); s = Trainer(cfg).fit(); print(tag, round(time.time() - t), "s", {k: v for k, v in s.items() if k in ("val_loss", "val_map")}, flush=True)

s0, s1, s2 = prof.base_stages()
fit(replace(s0, out_dir=str(W / "tb_s0"), save_every=0, progress=False), "stage0")
fit(replace(s1, checkpoint=str(W / "tb_s0" / "final"), out_dir=str(W / "tb_s1"), save_every=0, progress=False), "stage1")
fit(replace(s2, checkpoint=str(W / "tb_s1" / "final"), out_dir=str(W / "tb_base"), save_every=0, progress=False), "stage2")

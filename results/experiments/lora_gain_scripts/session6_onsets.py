"""Session-6 probe (#15): does a stage 0 that marks each sound's ONSET token make the base count? Besides the clip
tags (max over CLAP tokens), the token whose time step holds a sound's onset is trained to tag that sound, every
other token not (so the number of marked tokens is the number of sounds, what counting needs; session 3's
time-resolved stage 0 tagged every token a sound covers instead). Then stage 1 exactly as the pipeline's. The check
is session6_captions.py on the stage-1 model: does it write the right count in its captions?
With COUNT=1 a count target too: per class, the sum over a window's time steps of the onset probabilities (the two
frequency rows averaged) regresses the number of that class's onsets in the clip (squared error); outputs
work/exp6/cnt_s0, cnt_s1; COUNT_WEIGHT=w scales that term (outputs cnt<w>_s0, cnt<w>_s1). STAGES=1 stops
after stage 0.
Output: work/exp6/on_s0, work/exp6/on_s1.  usage: [COUNT=1] [STAGES=1] python session6_onsets.py"""
import os, time
from dataclasses import replace
from pathlib import Path
import torch, torch.nn.functional as F
torch.set_num_threads(int(os.environ.get("THREADS", "2")))
from aqa_utils.workbook.profile import profile
from aqa_utils.training import Trainer, objectives
from aqa_utils.audio import pad_to_longest
from aqa_utils.data.mini.vocabulary import SOUND_CLASSES
from session6_common import caption_scenes

prof = profile("full"); W = Path("work/exp6"); COUNT = os.environ.get("COUNT") == "1"
WEIGHT = float(os.environ.get("COUNT_WEIGHT", "1")); root = Path(prof.data_root)
TIME_STEPS, FREQ_ROWS, WINDOW = 32, 2, 10.0   # af2-tiny's 64 tokens per 10 s window: (frequency row, time step)
timeline = {str(root / line["audio"]): [(s.onset, [c for c in (s.name, s.call) if c]) for s in scene.sounds]
            for split in ("train", "dev") for line, scene in caption_scenes(root, split)}


def onset_targets(path, n_tokens):
    t = torch.zeros(n_tokens, len(SOUND_CLASSES))
    step = WINDOW / TIME_STEPS
    for k in range(n_tokens):
        window, within = divmod(k, FREQ_ROWS * TIME_STEPS)
        start = window * WINDOW + (within % TIME_STEPS) * step
        for on, names in timeline[str(path)]:
            if start <= on < start + step:
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
    frames = counts = 0.0
    for i, (path, _) in enumerate(examples):
        n = int(tmask[i].sum())
        onsets = onset_targets(path, n)
        frames = frames + F.binary_cross_entropy_with_logits(frame_logits[i, :n], onsets, reduction="sum") / n
        if COUNT:  # (windows, frequency rows, time steps, classes); both rows carry the same onset targets
            grid = (n // (FREQ_ROWS * TIME_STEPS), FREQ_ROWS, TIME_STEPS, -1)
            per_step = frame_logits[i, :n].sigmoid().reshape(grid).mean(1)
            truth = onsets.reshape(grid)[:, 0].sum((0, 1))
            counts = counts + F.mse_loss(per_step.sum((0, 1)), truth, reduction="sum")
    return clip + frames + WEIGHT * counts


objectives.Tagging.loss_sum = loss_sum


def fit(cfg, tag):
    if (Path(cfg.out_dir) / "summary.json").exists():
        return
    t = time.time(); s = Trainer(cfg).fit(); print(tag, round(time.time() - t), "s", {k: v for k, v in s.items() if k in ("val_loss", "val_map")}, flush=True)


s0, s1 = prof.base_stages()[:2]
tag = ("cnt" if WEIGHT == 1 else f"cnt{WEIGHT:g}") if COUNT else "on"
fit(replace(s0, out_dir=str(W / f"{tag}_s0"), save_every=0, progress=False), "stage0")
if os.environ.get("STAGES") != "1":
    fit(replace(s1, checkpoint=str(W / f"{tag}_s0" / "final"), out_dir=str(W / f"{tag}_s1"), save_every=0, progress=False), "stage1")

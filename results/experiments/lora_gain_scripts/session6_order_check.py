"""Session-6 check (#15): does a base answer the OPEN order questions of design K4 on held-out (dev) caption clips?
Teacher-forced choice among the five event names as the answer to "name the sound heard at the start/end of the
recording." usage: python session6_order_check.py BASE"""
import sys, json, contextlib
from pathlib import Path
import torch
from aqa_utils.model.checkpoint import load
from aqa_utils.audio import ClipCache
from aqa_utils.data.prompt import TrainCollator, build_tokenizer
from aqa_utils.training.objectives import LanguageModelling
from aqa_utils.training.examples import Example
from aqa_utils.data.mini.scenes import plan_scenes, seeded, SPLIT_KEYS
from aqa_utils.data.mini.vocabulary import EVENTS
from aqa_utils.workbook.profile import profile

ASK = {"first": "name the sound heard at the start of the recording.", "last": "name the sound heard at the end of the recording."}


def main(base):
    root = Path(profile("full").mini_root)
    lines = [json.loads(l) for l in (root / "captions/dev.jsonl").read_text().splitlines()]
    scenes = plan_scenes(seeded(0, 100 + SPLIT_KEYS["dev"]), len(lines), prefix="cap", per_clip=1)
    model, _ = load(base, None, device="cpu"); model.eval()
    obj = LanguageModelling(TrainCollator(build_tokenizer()), ClipCache(model.config.audio), cache_clap_tokens=False)
    hits = {"first": [], "last": []}
    with torch.no_grad():
        for line, scene in zip(lines, scenes):
            names = [s.name for s in sorted(scene.sounds, key=lambda s: s.onset)]
            if scene.subset != "TSQA":
                continue
            for which, truth in (("first", names[0]), ("last", names[-1])):
                ls = [float(obj.loss_sum(model, model, [Example(root / line["audio"], ASK[which], e)], "cpu", contextlib.nullcontext)) for e in EVENTS]
                hits[which].append(EVENTS[min(range(len(EVENTS)), key=ls.__getitem__)] == truth)
    for k, v in hits.items():
        print(f"{base}: open '{k}' question on {len(v)} dev TSQA caption clips: {sum(v) / len(v):.2f} (chance {1 / len(EVENTS):.2f})")


if __name__ == "__main__":
    main(sys.argv[1])

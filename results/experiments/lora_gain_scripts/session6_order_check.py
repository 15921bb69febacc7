"""Session-6 check (#15): does a base answer the OPEN order questions of design K4 on held-out (dev) caption clips?
Teacher-forced choice among the five event names as the answer to "name the sound heard at the start/end of the
recording." usage: python session6_order_check.py BASE"""
import sys
from pathlib import Path
from aqa_utils.data.mini.vocabulary import EVENTS
from aqa_utils.workbook.profile import profile
from session6_common import Chooser, caption_scenes

ASK = {"first": "name the sound heard at the start of the recording.", "last": "name the sound heard at the end of the recording."}


def main(base):
    root = Path(profile("full").mini_root)
    chooser = Chooser(base)
    hits = {"first": [], "last": []}
    for line, scene in caption_scenes(root, "dev"):
        if scene.subset != "TSQA":
            continue
        names = [s.name for s in sorted(scene.sounds, key=lambda s: s.onset)]
        for which, truth in (("first", names[0]), ("last", names[-1])):
            hits[which].append(EVENTS[chooser.choose(root / line["audio"], ASK[which], list(EVENTS))] == truth)
    for k, v in hits.items():
        print(f"{base}: open '{k}' question on {len(v)} dev TSQA caption clips: {sum(v) / len(v):.2f} (chance {1 / len(EVENTS):.2f})")


if __name__ == "__main__":
    main(sys.argv[1])

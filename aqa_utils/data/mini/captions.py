"""The caption corpus the tiny base is pretrained on: one clip per line, its caption and the sounds it holds."""

from __future__ import annotations

import json
from pathlib import Path

from aqa_utils.data.mini.scenes import SPLIT_KEYS, plan_scenes, seeded
from aqa_utils.data.mini.synth import write_audio


def write_captions(root: Path, split: str, n: int, seed: int, audio: bool) -> int:
    """Caption corpus: n distinct clips from the same generators (every kind of scene the benchmark has), one line
    each, as 16 kHz mono WAV (pretraining needs no file-format quirks): the clip's caption and the names of the
    sounds in it (``sounds``, sorted; what the generic presence questions of ``generic`` ask about)."""
    rng = seeded(seed, 100 + SPLIT_KEYS[split])
    scenes = plan_scenes(rng, n, prefix="cap", per_clip=1)
    lines = []
    for index, scene in enumerate(scenes):
        rel = f"captions/audio/{split}/{scene.name}.wav"
        if audio:
            write_audio(root / rel, scene, seeded(seed, 100 + SPLIT_KEYS[split], 10, index), plain=True)
        lines.append(json.dumps({"audio": rel, "text": scene.caption, "subset": scene.subset,
                                 "sounds": sorted({s.name for s in scene.sounds})}))
    (root / "captions").mkdir(parents=True, exist_ok=True)
    (root / "captions" / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines))
    return len(lines)


def read_captions(root: str | Path, split: str, parse) -> list:
    """``parse(row)`` of every line of ``<root>/captions/<split>.jsonl``, in order (``row``: the line's JSON).

    A line that is not JSON, or that ``parse`` rejects (KeyError, TypeError, ValueError, AttributeError), is a
    problem; all problems are raised together, each naming the file and line.
    """
    path = Path(root) / "captions" / f"{split}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no caption corpus (generate the mini benchmark first)")
    items, problems = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            items.append(parse(json.loads(line)))
        except (KeyError, TypeError, ValueError, AttributeError) as err:  # json.JSONDecodeError is a ValueError
            problems.append(f"{path}:{n}: malformed caption line ({type(err).__name__}: {err})")
    if problems:
        raise ValueError(f"{len(problems)} malformed caption line(s):\n  " + "\n  ".join(problems))
    return items

"""Shared by the session-6 scripts (#15): the caption clips' scenes, and a base's choice among candidate targets."""
import contextlib, json
from pathlib import Path
import torch
from aqa_utils.audio import ClipCache
from aqa_utils.data.mini.scenes import plan_scenes, seeded, SPLIT_KEYS
from aqa_utils.data.prompt import TrainCollator, build_tokenizer
from aqa_utils.model.checkpoint import load
from aqa_utils.training.examples import Example
from aqa_utils.training.objectives import LanguageModelling


def caption_scenes(root: Path, split: str) -> list[tuple[dict, object]]:
    """(caption line, its Scene) of ``<root>/captions/<split>.jsonl``: the scenes planned again from the generator's
    seed (the lines keep the sounds' names, not their times)."""
    lines = [json.loads(l) for l in (root / "captions" / f"{split}.jsonl").read_text().splitlines()]
    scenes = plan_scenes(seeded(0, 100 + SPLIT_KEYS[split]), len(lines), prefix="cap", per_clip=1)
    for line, scene in zip(lines, scenes):
        assert line["audio"].endswith(scene.name + ".wav")
    return list(zip(lines, scenes))


class Chooser:
    """A base (release layout) that picks, for a clip and a prompt, the candidate target of least summed loss."""

    def __init__(self, base):
        self.model, _ = load(base, None, device="cpu")
        self.model.eval()
        self.objective = LanguageModelling(TrainCollator(build_tokenizer()), ClipCache(self.model.config.audio),
                                           cache_clap_tokens=False)

    @torch.no_grad()
    def choose(self, audio: Path, prompt: str, targets: list[str]) -> int:
        losses = [float(self.objective.loss_sum(self.model, self.model, [Example(audio, prompt, t)], "cpu",
                                                contextlib.nullcontext)) for t in targets]
        return min(range(len(targets)), key=losses.__getitem__)

"""Writing the mini benchmark to disk in the DCASE layout, with a manifest that makes it reusable."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

from aqa_utils.data.layout import AUDIO_DIR, QUESTION_DIR
from aqa_utils.data.mini.captions import write_captions
from aqa_utils.data.mini.scenes import SPLIT_KEYS, draw_choices, plan_scenes, seeded
from aqa_utils.data.mini.synth import write_audio
from aqa_utils.data.mini.vocabulary import CALLS, EVENTS, SPECIES
from aqa_utils.parallel import run_jobs

VERSION = 3


def _write_split(root: Path, split: str, n: int, seed: int, audio: bool) -> dict:
    rng = seeded(seed, SPLIT_KEYS[split])
    scenes = plan_scenes(rng, n)
    items = [(scene, qa) for scene in scenes for qa in scene.qas]
    order = rng.permutation(len(items))  # ids in random order, so the id says nothing about the domain
    positions: dict = {}
    qdir, key = root / QUESTION_DIR / split, []
    qdir.mkdir(parents=True, exist_ok=True)
    for number, i in enumerate(order):
        scene, qa = items[i]
        choices, slot = draw_choices(rng, qa, positions)
        record = {"question": qa.question, "choice": choices}
        if split != "eval":
            record["answer"] = choices[slot]
        record.update(id=scene.name, audio_url=f"../../{AUDIO_DIR}/{split}/{scene.name}.wav",
                      question_type=qa.qtype)
        qid = f"{split}_aqa_{number:04d}"
        (qdir / f"{qid}.json").write_text(json.dumps(record, indent=2) + "\n")
        key.append((qid, choices[slot]))
    for index, scene in enumerate(scenes if audio else []):
        write_audio(root / AUDIO_DIR / split / f"{scene.name}.wav", scene, seeded(seed, SPLIT_KEYS[split], 10, index))
    if split == "eval":
        with open(root / "eval_answers.csv", "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows([("question", "answer"), *sorted(key)])
    return {"questions": len(items), "clips": len(scenes),
            "subsets": dict(Counter(scene.subset for scene, _ in items))}


def _write_part(kind: str, root: Path, split: str, n: int, seed: int, audio: bool):
    """One split's questions (``_write_split``) or caption corpus (``write_captions``): a job of
    ``make_mini_benchmark``."""
    return (_write_split if kind == "questions" else write_captions)(root, split, n, seed, audio)


def make_mini_benchmark(root: str | Path, seed: int = 0, n_train: int = 480, n_dev: int = 240, n_eval: int = 60,
                        n_captions_train: int = 600, n_captions_dev: int = 100, overwrite: bool = False,
                        audio: bool = True, progress: bool = True) -> Path:
    """Write the mini benchmark under ``root`` (DCASE layout + ``captions/`` + ``manifest.json``).

    Sizes count questions (a clip carries 1-3 of them) and caption lines (one clip each). Same seed and sizes ->
    byte-identical files. ``audio=False`` writes only the text (questions, captions, manifest): a quick way to
    inspect the questions or run text-only analyses; the audio then does not exist.
    If ``root`` already holds a benchmark with the same manifest it is reused as is; a different one raises
    ``FileExistsError`` unless ``overwrite`` (which deletes only what this function writes).
    """
    root = Path(root)
    sizes = {"train": n_train, "dev": n_dev, "eval": n_eval, "captions_train": n_captions_train,
             "captions_dev": n_captions_dev, "audio": audio}
    manifest_path = root / "manifest.json"
    if manifest_path.exists() and not overwrite:
        old = json.loads(manifest_path.read_text())
        if (old.get("version"), old.get("seed"), old.get("sizes")) == (VERSION, seed, sizes):
            return root
        raise FileExistsError(f"{root} holds a different mini benchmark ({manifest_path}); pass overwrite=True")
    owned = (QUESTION_DIR, AUDIO_DIR, "captions", "manifest.json", "eval_answers.csv")
    if not overwrite and any((root / p).exists() for p in owned):
        raise FileExistsError(f"{root} already has DCASE-style data; pass overwrite=True to replace it")
    for p in owned:
        if (root / p).is_dir():
            shutil.rmtree(root / p)
        elif (root / p).exists():
            (root / p).unlink()

    # Each part draws from its own seeded generators, so writing them side by side gives the same bytes.
    parts = {f"{kind} {split}": (kind, root, split, n, seed, audio) for kind, split, n in
             (("questions", "train", n_train), ("questions", "dev", n_dev), ("questions", "eval", n_eval),
              ("captions", "train", n_captions_train), ("captions", "dev", n_captions_dev))}
    written = run_jobs(_write_part, parts, desc="mini benchmark", progress=progress)
    splits = {split: written[f"questions {split}"] for split in ("train", "dev", "eval")}
    captions = {split: written[f"captions {split}"] for split in ("train", "dev")}
    manifest = {"name": "aqa-mini", "version": VERSION, "seed": seed, "sizes": sizes, "splits": splits,
                "captions": captions, "species": [s.name for s in SPECIES], "calls": list(CALLS),
                "events": list(EVENTS), "eval_answers": "eval_answers.csv"}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")  # written last: marks a complete benchmark
    return root

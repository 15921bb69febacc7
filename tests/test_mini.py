"""The generated mini benchmark: determinism, DCASE layout and quirks, clean validation, no text-only shortcut."""

import csv
import json
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from aqa_utils.audio import load_clip
from aqa_utils.data.dcase import load_split, validate
from aqa_utils.data.baselines import text_only_baselines
from aqa_utils.data.mini import VERSION, make_mini_benchmark
from aqa_utils.data.mini.synth import RATES
from aqa_utils.data.mini.vocabulary import SOUND_CLASSES, SPECIES_BY_NAME

SMALL = dict(n_train=60, n_dev=45, n_eval=9, n_captions_train=9, n_captions_dev=3)


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return make_mini_benchmark(tmp_path_factory.mktemp("mini"), seed=0, **SMALL)


def files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(mini, tmp_path):
    again = make_mini_benchmark(tmp_path / "again", seed=0, **SMALL)
    assert files(again) == files(mini)
    tiny = dict(n_train=3, n_dev=3, n_eval=3, n_captions_train=3, n_captions_dev=3)
    seed0, seed1 = (files(make_mini_benchmark(tmp_path / str(s), seed=s, **tiny)) for s in (0, 1))
    assert seed0.keys() == seed1.keys() and seed0 != seed1


def test_validates_clean_and_loads(mini):
    assert validate(mini) == []
    manifest = json.loads((mini / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["version"] == VERSION and manifest["sizes"]["train"] == 60
    for split in ("train", "dev", "eval"):
        loaded = load_split(mini, split)
        questions = loaded.questions
        assert len(questions) == SMALL[f"n_{split}"] == manifest["splits"][split]["questions"]
        assert Counter(q.subset for q in questions) == {s: len(questions) // 3 for s in ("BQA", "TSQA", "CQA")}
        if split == "eval":
            assert all(q.answer is None for q in questions)
            with open(mini / "eval_answers.csv") as f:
                key = dict(list(csv.reader(f))[1:])
            assert set(key) == {q.qid for q in questions}
            assert all(key[q.qid] in q.raw_choices for q in questions)
        else:
            assert all(q.answer_text == q.raw_choices[q.answer] for q in questions)
        assert len({q.clip_id for q in questions}) < len(questions)  # some clips carry several questions


def test_exercises_the_real_quirks(mini):
    audio = sorted((mini / "local_audio_path").rglob("*.wav"))
    infos = [sf.info(p) for p in audio]
    assert {i.samplerate for i in infos} == set(RATES)
    assert any(i.channels == 2 for i in infos)
    assert any(p.read_bytes()[:4] != b"RIFF" and i.format == "MP3" for p, i in zip(audio, infos))
    assert any(i.duration > 15 and p.name.startswith("watkins") for p, i in zip(audio, infos))
    counts = Counter(len(q.choices) for split in ("train", "dev") for q in load_split(mini, split).questions)
    assert counts.most_common(1)[0][0] == 4 and min(counts) >= 2 and max(counts) <= 6 and len(counts) >= 3


def test_species_calls_sit_in_their_band(mini):
    questions = [q for q in load_split(mini, "train").questions if q.question_type == "species"]
    assert questions
    for q in questions:
        wave = load_clip(q.audio_path).numpy()
        spec = np.abs(np.fft.rfft(wave)) ** 2
        freqs = np.fft.rfftfreq(len(wave), 1 / 16_000)
        spec[freqs < 150] = 0  # below every band: background rumble only
        band = SPECIES_BY_NAME[q.choices[q.answer]].band
        assert 0.7 * band < freqs[spec.argmax()] < 1.4 * band, q.qid


def test_captions(mini):
    for split, n in (("train", 9), ("dev", 3)):
        lines = [json.loads(line) for line in (mini / "captions" / f"{split}.jsonl").read_text().splitlines()]
        assert len(lines) == n and Counter(line["subset"] for line in lines) == {"BQA": n // 3, "TSQA": n // 3,
                                                                                   "CQA": n // 3}
        for line in lines:
            info = sf.info(mini / line["audio"])
            assert (info.samplerate, info.channels) == (16_000, 1) and line["text"]
            # The sounds the presence questions ask about: every one is named in the caption (which describes
            # every sound), and no other sound class is.
            assert line["sounds"] == sorted(set(line["sounds"])) and line["sounds"]
            assert {c for c in SOUND_CLASSES if c in line["text"]} >= set(line["sounds"]), line
    clips = {line["audio"].rsplit("/", 1)[1] for line in
             map(json.loads, (mini / "captions" / "train.jsonl").read_text().splitlines())}
    assert not clips & {p.name for p in (mini / "local_audio_path").rglob("*.wav")}


def test_reuse_and_overwrite(mini, tmp_path):
    before = (mini / "manifest.json").stat().st_mtime_ns
    assert make_mini_benchmark(mini, seed=0, **SMALL) == mini  # same request: reused as is
    assert (mini / "manifest.json").stat().st_mtime_ns == before
    with pytest.raises(FileExistsError):
        make_mini_benchmark(mini, seed=3, **SMALL)
    root = make_mini_benchmark(tmp_path / "m", seed=0, n_train=6, n_dev=3, n_eval=3, n_captions_train=3,
                               n_captions_dev=3)
    make_mini_benchmark(root, seed=2, n_train=3, n_dev=3, n_eval=3, n_captions_train=3, n_captions_dev=3,
                        overwrite=True)
    assert len(list((root / "dcase_2025_question_path" / "train").glob("*.json"))) == 3
    assert validate(root) == []


def test_text_alone_scores_chance_on_default_dev(tmp_path):
    root = make_mini_benchmark(tmp_path, seed=0, audio=False)  # default sizes, questions only
    train = load_split(root, "train", check_audio=False).questions
    dev = load_split(root, "dev", check_audio=False).questions
    assert (len(train), len(dev)) == (480, 240)
    scores = text_only_baselines(dev, fit_on=train)
    chance = scores.pop("chance")
    assert 0.25 < chance < 0.35
    for name, accuracy in scores.items():
        assert abs(accuracy - chance) < 0.04, (name, accuracy, chance)
    positions = Counter(q.answer for q in dev if len(q.choices) == 4)
    assert max(positions.values()) - min(positions.values()) <= 2  # answer slots balanced

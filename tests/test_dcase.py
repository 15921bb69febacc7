"""The DCASE reader: parsing, every validation problem kind, loading with and without skipping, the CLI report."""

import json

import numpy as np
import pytest
import soundfile as sf

from aqa_utils.data.dcase import DataError, load_split, subset_of, validate, validate_data_cli

GOOD = {"question": "What is the first sound?", "choice": ["A. Writing", "B. Door,", "C. Laugh", "D. Cough"],
        "answer": "A. Writing", "question_type": "both"}


def add_audio(root, split, clip, data=None, sr=16_000, raw: bytes | None = None):
    path = root / "local_audio_path" / split / f"{clip}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    if raw is not None:
        path.write_bytes(raw)
    else:
        sf.write(path, np.sin(np.arange(sr) / 5.0) * 0.3 if data is None else data, sr)
    return path


def add_question(root, split, qid, clip, text: str | None = None, folder: str = "", **fields):
    path = root / "dcase_2025_question_path" / split / folder / f"{qid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**GOOD, "id": clip, "audio_url": f"../../local_audio_path/{split}/{clip}.wav", **fields}
    record = {k: v for k, v in record.items() if v is not None}
    path.write_text(text if text is not None else json.dumps(record))
    return path


@pytest.fixture
def clean_root(tmp_path):
    for clip in ("watkins_0001", "fold1_0002", "audio_0003"):
        add_audio(tmp_path, "dev", clip)
    add_question(tmp_path, "dev", "dev_aqa_1", "watkins_0001")
    add_question(tmp_path, "dev", "dev_aqa_2", "fold1_0002", answer="B. Door")
    add_question(tmp_path, "dev", "dev_aqa_3", "audio_0003", answer="C. Laugh")
    add_question(tmp_path, "dev", "dev_aqa_4", "audio_0003", answer="D. Cough")  # clips may be shared
    return tmp_path


def test_clean_split_parses_every_field(clean_root):
    assert validate(clean_root, splits=("dev",)) == []
    loaded = load_split(clean_root, "dev")
    assert loaded.skipped == 0 and loaded.problems == []
    q1, q2, q3, q4 = loaded.questions
    assert q1.qid == "dev_aqa_1" and q1.split == "dev" and q1.question == GOOD["question"]
    assert q1.choices == ["Writing", "Door", "Laugh", "Cough"]  # labels and trailing commas stripped
    assert q2.raw_choices[1] == "B. Door," and q2.answer == 1 and q2.answer_text == "B. Door,"
    assert q1.answer_text == "A. Writing" and q1.question_type == "both"
    assert [q.subset for q in (q1, q2, q3)] == ["BQA", "TSQA", "CQA"]
    assert q3.clip_id == q4.clip_id == "audio_0003" and q3.audio_path == q4.audio_path
    assert q3.audio_path == clean_root / "local_audio_path" / "dev" / "audio_0003.wav"
    assert q1.json_path.name == "dev_aqa_1.json"


def test_eval_questions_need_no_answer(tmp_path):
    add_audio(tmp_path, "eval", "audio_0009")
    add_question(tmp_path, "eval", "eval_aqa_1", "audio_0009", answer=None)
    (q,) = load_split(tmp_path, "eval").questions
    assert q.answer is None and q.answer_text is None


def test_subset_from_clip_name():
    assert subset_of("fold3_0001.wav") == "TSQA" and subset_of("audio_12.wav") == "CQA"
    assert subset_of("watkins_0012.wav") == subset_of("61025001.wav") == "BQA"


BAD_CASES = {
    "malformed_json": dict(text="{not json"),
    "missing_field": dict(answer=None),  # a dev question without an answer
    "bad_choices": dict(choice=["A. Only one"], answer="A. Only one"),
    "answer_not_in_choices": dict(answer="B. Piano"),
    "malformed_answer": dict(answer="D. (B)(A)(C)"),
}


@pytest.mark.parametrize("kind", sorted(BAD_CASES))
def test_question_problems(clean_root, kind):
    add_question(clean_root, "dev", "dev_aqa_9", "watkins_0001", **BAD_CASES[kind])
    problems = validate(clean_root, splits=("dev",))
    assert [(p.kind, p.path.name) for p in problems] == [(kind, "dev_aqa_9.json")]


@pytest.mark.parametrize("choice, why", [
    (["A. a", "B. b", "C. c", "D. d", "E. e", "F. f", "G. g"], "7 choices"),
    (["Writing", "Door"], "not labelled"),
    (["A. Writing", "C. Door"], "not labelled 'B."),
    (["A. Door", "B. door"], "duplicate"),
    ("A. Writing", "list of strings"),
])
def test_bad_choice_lists(clean_root, choice, why):
    add_question(clean_root, "dev", "dev_aqa_9", "watkins_0001", choice=choice)
    (problem,) = validate(clean_root, splits=("dev",), check_audio=False)
    assert problem.kind == "bad_choices" and why in problem.detail


def test_label_and_text_disagreeing_is_malformed(clean_root):
    add_question(clean_root, "dev", "dev_aqa_9", "watkins_0001", answer="A. Door")
    (problem,) = validate(clean_root, splits=("dev",))
    assert problem.kind == "malformed_answer"


def test_answer_differing_only_in_formatting_is_accepted(clean_root):
    add_question(clean_root, "dev", "dev_aqa_9", "watkins_0001", answer="C.  laugh ")
    add_question(clean_root, "dev", "dev_aqa_8", "watkins_0001", answer="Cough")
    questions = {q.qid: q for q in load_split(clean_root, "dev").questions}
    assert questions["dev_aqa_9"].answer == 2 and questions["dev_aqa_8"].answer == 3


def test_duplicate_question_ids_within_a_split(clean_root):
    add_question(clean_root, "dev", "dev_aqa_1", "watkins_0001", folder="copy")
    add_audio(clean_root, "train", "watkins_0001")
    add_question(clean_root, "train", "dev_aqa_1", "watkins_0001")  # another split: not a duplicate
    problems = validate(clean_root, splits=("dev", "train"), check_audio=False)  # the copy's url points nowhere
    assert sorted(p.kind for p in problems) == ["duplicate_id", "duplicate_id"]
    assert {p.path.parent.name for p in problems} == {"dev", "copy"}


@pytest.mark.parametrize("kind", ["missing_audio", "unreadable_audio", "empty_audio", "silent_audio"])
def test_audio_problems_checked_once_per_file(clean_root, kind):
    clip = "audio_0003"  # used by two questions
    path = clean_root / "local_audio_path" / "dev" / f"{clip}.wav"
    if kind == "missing_audio":
        path.unlink()
    elif kind == "unreadable_audio":
        add_audio(clean_root, "dev", clip, raw=b"garbage" * 50)
    elif kind == "empty_audio":
        add_audio(clean_root, "dev", clip, data=np.zeros(0))
    else:
        add_audio(clean_root, "dev", clip, data=np.zeros(8000))
    (problem,) = validate(clean_root, splits=("dev",))
    assert problem.kind == kind and problem.path == path
    assert "dev_aqa_3" in problem.detail and "dev_aqa_4" in problem.detail
    assert validate(clean_root, splits=("dev",), check_audio=False) == []


def test_missing_split_is_reported(tmp_path):
    (problem,) = validate(tmp_path, splits=("train",))
    assert problem.kind == "missing_split"


@pytest.fixture
def messy_root(clean_root):
    add_question(clean_root, "dev", "dev_aqa_5", "watkins_0001", answer="B. Piano")
    add_question(clean_root, "dev", "dev_aqa_6", "fold1_0404")  # no such audio
    add_question(clean_root, "dev", "dev_aqa_7", "watkins_0001", text="[]")
    return clean_root


def test_load_split_refuses_and_lists_every_problem(messy_root):
    with pytest.raises(DataError) as err:
        load_split(messy_root, "dev")
    message = str(err.value)
    for name, kind in [("dev_aqa_5", "answer_not_in_choices"), ("fold1_0404", "missing_audio"),
                       ("dev_aqa_7", "malformed_json")]:
        assert name in message and kind in message
    assert "3 problem(s)" in message and "skip_problems=True" in message


def test_load_split_can_skip_problems(messy_root, caplog):
    loaded = load_split(messy_root, "dev", skip_problems=True)
    assert [q.qid for q in loaded.questions] == ["dev_aqa_1", "dev_aqa_2", "dev_aqa_3", "dev_aqa_4"]
    assert loaded.skipped == 3 and len(loaded.problems) == 3
    summary = loaded.summary()
    assert "3 skipped" in summary and "1 missing_audio" in summary and "1 malformed_json" in summary
    assert summary in caplog.text


def test_cli_report(messy_root, capsys):
    assert validate_data_cli(messy_root, as_json=True) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["clean"] is False and report["splits"]["dev"] == {
        "files": 7, "loadable": 4, "subsets": {"BQA": 1, "TSQA": 1, "CQA": 2}}
    kinds = sorted(p["kind"] for p in report["problems"])
    assert kinds == ["answer_not_in_choices", "malformed_json", "missing_audio", "missing_split", "missing_split"]
    assert validate_data_cli(messy_root, as_json=False) == 1
    text = capsys.readouterr().out
    assert "missing_audio: 1" in text and "dev_aqa_5" in text

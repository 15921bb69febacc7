"""The submission check (aqa_utils/submission.py): a file written by evaluate passes against an example in either
quoting style; each way a file can differ from the example or the questions is named with the file and row."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from aqa_utils.data.dcase import Question
from aqa_utils.evaluation.results import submission_rows
from aqa_utils.metrics import write_submission
from aqa_utils.submission import SubmissionError, check_submission, example_file


def question(qid: str, raw: list[str]) -> Question:
    return Question(qid=qid, split="eval", question="What is heard?", choices=[r[3:] for r in raw], answer=None,
                    clip_id="c", audio_path=Path("c.wav"), subset="CQA", question_type="both",
                    json_path=Path(f"{qid}.json"), raw_choices=raw)


QUESTIONS = [
    question("eval_aqa_1", ["A. Writing", "B. Door", "C. Laugh", "D. Cough"]),
    question("eval_aqa_2", ["A. Rain, then thunder", 'B. A "dog" barks', "C. Silence"]),  # comma and quotes
    question("eval_aqa_3", ["A. Yes", "B. No"]),
]


def example(tmp_path: Path, quote_all: bool = False, bom: bool = False, ids=None) -> Path:
    """An example in the dataset's layout: every question with a placeholder answer."""
    ids = ids or [q.qid for q in QUESTIONS]
    quote = (lambda s: f'"{s}"') if quote_all else (lambda s: s)
    lines = [f"{quote('question')},{quote('answer')}"] + [f"{quote(i)},{quote('A. x')}" for i in ids]
    path = tmp_path / "submission_example" / "example.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + ("\n".join(lines) + "\n").encode())
    return path


def written(tmp_path: Path, preds=(1, 0, 1)) -> Path:
    rows, _ = submission_rows(QUESTIONS, list(preds))
    path = tmp_path / "submission.csv"
    write_submission(path, rows)
    return path


def test_what_evaluate_writes_passes(tmp_path):
    checked = check_submission(written(tmp_path), example(tmp_path), QUESTIONS)
    assert checked["rows"] == 3 and checked["quoting"] == "minimal" and checked["checked_answers"]
    assert check_submission(written(tmp_path), example(tmp_path))["rows"] == 3  # without questions: the example's ids


def errors(tmp_path: Path, text: str, ex: Path | None = None, questions=QUESTIONS) -> str:
    path = tmp_path / "mine.csv"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(SubmissionError) as err:
        check_submission(path, ex or example(tmp_path), questions)
    message = str(err.value)
    assert message.startswith(f"{path} does not match the submission format of ")
    return message


GOOD = 'question,answer\neval_aqa_1,B. Door\neval_aqa_2,"A. Rain, then thunder"\neval_aqa_3,B. No\n'


@pytest.mark.parametrize("text, expected", [
    (GOOD.replace("question,answer", "id,answer"), r"row 1: header \['id', 'answer'\] differs"),
    (GOOD.replace("B. No", "C. Maybe"), r"row 4 \(question eval_aqa_3\): answer 'C. Maybe' is not one of its options"),
    (GOOD.replace("B. Door", "Door"), r"row 2 \(question eval_aqa_1\): answer 'Door'"),
    (GOOD.replace("eval_aqa_3,B. No\n", ""),
     r"1 question\(s\) of the questions answered have no row, e.g. \['eval_aqa_3'\]"),
    (GOOD + "eval_aqa_9,A. Yes\n", r"row 5: question 'eval_aqa_9' is not in the questions answered"),
    (GOOD + "eval_aqa_1,B. Door\n", r"row 5: question 'eval_aqa_1' again \(first in row 2\)"),
    (GOOD.replace('"A. Rain, then thunder"', "A. Rain, then thunder"), r"row 3: 3 field\(s\), expected 2"),
    (GOOD.replace(",", ";").replace('"A. Rain; then thunder"', '"A. Rain, then thunder"'), r"row 1: delimiter ';'"),
    (GOOD.replace("eval_aqa_1,B. Door", 'eval_aqa_1,"B. Door"'), r"row 2: quoted differently from .*example\.csv, "
                                                                r"which quotes only where needed"),
    (codecs.BOM_UTF8 + GOOD.encode(), r"starts with a UTF-8 byte-order mark; .*example\.csv does not"),
    (GOOD.replace('"A. Rain, then thunder"', '"A. Rain, then thunder'),
     r"mine\.csv: row 3 \(line 4\): broken quoting: unexpected end"),
    ("question,answer\neval_aqa_1,\xff\n".encode("latin-1"), r"mine\.csv: not UTF-8 text"),
])
def test_each_difference_is_named_with_the_file_and_row(tmp_path, text, expected):
    with pytest.raises(SubmissionError, match=expected):
        path = tmp_path / "mine.csv"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        check_submission(path, example(tmp_path), QUESTIONS)


def test_every_problem_is_listed_not_only_the_first(tmp_path):
    message = errors(tmp_path, GOOD.replace("B. Door", "Z").replace("B. No", "Y"))
    assert "2 problem(s)" in message
    assert "row 2 (question eval_aqa_1)" in message and "row 4 (question eval_aqa_3)" in message


def test_an_example_quoting_every_field_asks_for_the_same(tmp_path):
    ex = example(tmp_path, quote_all=True, ids=["eval_aqa_1", "eval_aqa_3"])
    two = GOOD.replace('eval_aqa_2,"A. Rain, then thunder"\n', "")
    message = errors(tmp_path, two, ex, [QUESTIONS[0], QUESTIONS[2]])
    assert "row 1: quoted differently" in message and "which quotes every field" in message
    all_quoted = "".join(",".join(f'"{f}"' for f in line.split(",", 1)) + "\n"
                         for line in ['question,answer', 'eval_aqa_1,B. Door', 'eval_aqa_3,B. No'])
    ok = tmp_path / "quoted.csv"
    ok.write_text(all_quoted)
    assert check_submission(ok, ex, [QUESTIONS[0], QUESTIONS[2]])["quoting"] == "all"


def test_the_id_set_is_the_examples_without_questions_and_an_example_of_another_split_is_named(tmp_path):
    ex = example(tmp_path, ids=["eval_aqa_1", "eval_aqa_2", "eval_aqa_3", "eval_aqa_4"])
    message = errors(tmp_path, GOOD, ex, questions=None)
    assert f"1 question(s) of {ex} have no row, e.g. ['eval_aqa_4']" in message
    message = errors(tmp_path, GOOD, example(tmp_path, ids=["dev_aqa_1"]))
    assert "lists 1 question(s) not among the questions answered, e.g. ['dev_aqa_1'] (the example of another split?)" \
        in message


def test_the_example_file_is_the_one_csv_of_submission_example(tmp_path):
    with pytest.raises(SubmissionError, match=r"submission_example: expected exactly one example CSV, found no folder"):
        example_file(tmp_path)
    ex = example(tmp_path)
    assert example_file(tmp_path) == ex
    (ex.parent / "other.csv").write_text("question,answer\n")
    with pytest.raises(SubmissionError, match=r"found 2 CSV files \(example\.csv, other\.csv\); name the example"):
        example_file(tmp_path)

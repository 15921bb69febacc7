"""Check a written submission CSV against the dataset's example file (``<data root>/submission_example/``).

The challenge takes a CSV with the header ``question,answer``: one row per question of the split, the question id
(its JSON file's stem) and the verbatim text of the chosen option (``metrics.write_submission`` writes it).
``check_submission`` compares a file with the example, field by field of the format: byte-order mark, delimiter,
header, quoting (the example's style: every field quoted, or only where needed), two fields per row, unique ids,
the id set (the questions answered, and every id the example lists) and each answer being one of its question's
option strings. Every problem is listed, each with the file and the row (row 1 is the header; a row is one CSV
record). Line endings are not compared: CSV readers take both.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from aqa_utils.data.dcase import Question
from aqa_utils.evaluation.results import submission_rows

EXAMPLE_DIR = "submission_example"
SHOWN = 20
"""Problems listed in full; the rest are counted."""


class SubmissionError(ValueError):
    """A submission file does not match the example's format or the questions; the message lists every problem."""


@dataclass
class CsvFile:
    path: Path
    text: str
    """Decoded, without a byte-order mark, line endings as ``\\n``."""
    bom: bool
    delimiter: str
    records: list[list[str]]

    @property
    def quoting(self) -> str | None:
        """"all" (every field quoted), "minimal" (only where needed, as ``write_submission`` writes) or None."""
        for name, style in _STYLES.items():
            if _serialise(self.records, self.delimiter, style) == self.text:
                return name
        return None


_STYLES = {"all": csv.QUOTE_ALL, "minimal": csv.QUOTE_MINIMAL}


def example_file(data_root: str | Path) -> Path:
    """The one CSV in ``<data_root>/submission_example/``; an error names the folder when there is none or several."""
    folder = Path(data_root) / EXAMPLE_DIR
    found = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if len(found) != 1:
        what = "no folder" if not folder.is_dir() else f"{len(found)} CSV files" + (
            f" ({', '.join(p.name for p in found)})" if found else "")
        raise SubmissionError(f"{folder}: expected exactly one example CSV, found {what}; name the example with "
                              "--submission-example FILE")
    return found[0]


def read_csv(path: str | Path, delimiter: str | None = None) -> CsvFile:
    """Decode and parse; the delimiter is the header's (comma, tab or semicolon) unless given."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as err:
        raise SubmissionError(f"{path}: not UTF-8 text ({err})") from None
    if text and not text.endswith("\n"):
        text += "\n"
    delimiter = delimiter or _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records = []
    try:
        for record in reader:
            records.append(record)
    except csv.Error as err:
        raise SubmissionError(f"{path}: row {len(records) + 1} (line {reader.line_num}): broken quoting: {err}") \
            from None
    if not records:
        raise SubmissionError(f"{path}: empty file")
    return CsvFile(path, text, raw.startswith(codecs.BOM_UTF8), delimiter, records)


def check_submission(path: str | Path, example: str | Path,
                     questions: Sequence[Question] | None = None) -> dict:
    """Compare ``path`` with the ``example`` file (and, when given, the ``questions`` it answers); raises
    ``SubmissionError`` listing every problem, else returns what was checked."""
    ex = read_csv(example)
    ours = read_csv(path, ex.delimiter)
    name = ours.path
    problems = []
    if ours.bom != ex.bom:
        problems.append(f"{name}: {'starts' if ours.bom else 'does not start'} with a UTF-8 byte-order mark; "
                        f"{ex.path} {'does' if ex.bom else 'does not'}")
    if _delimiter(ours.text) != ex.delimiter:
        problems.append(f"{name}: row 1: delimiter {_delimiter(ours.text)!r}, {ex.path} uses {ex.delimiter!r}")
    if ours.records[0] != ex.records[0]:
        problems.append(f"{name}: row 1: header {ours.records[0]} differs from {ex.path}'s {ex.records[0]}")
    problems += _quoting(ours, ex)
    rows = list(enumerate(ours.records[1:], start=2))
    width = len(ex.records[0])
    problems += [f"{name}: row {n}: {len(r)} field(s), expected {width} (an answer holding "
                 f"{ours.delimiter!r} must be quoted)" for n, r in rows if len(r) != width]
    problems += _ids_and_answers(name, [(n, r) for n, r in rows if len(r) == width], ex, questions)
    if problems:
        shown = "\n  ".join(problems[:SHOWN])
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise SubmissionError(f"{name} does not match the submission format of {ex.path}: {len(problems)} "
                              f"problem(s):\n  {shown}{more}")
    return {"file": str(name), "example": str(ex.path), "rows": len(rows), "quoting": ex.quoting,
            "checked_answers": questions is not None}


def _quoting(ours: CsvFile, ex: CsvFile) -> list[str]:
    style = ex.quoting
    if style is None:  # the example mixes styles: only the parse (two fields per row) is compared
        return []
    pos = 0
    for n, record in enumerate(ours.records, start=1):
        line = _serialise([record], ours.delimiter, _STYLES[style])
        if not ours.text.startswith(line, pos):
            found = ours.text[pos:].split("\n", 1)[0]
            return [f"{ours.path}: row {n}: quoted differently from {ex.path}, which quotes "
                    f"{'every field' if style == 'all' else 'only where needed'}: expected {line.rstrip()!r}, "
                    f"found {found!r} (later rows not compared)"]
        pos += len(line)
    return []


def _ids_and_answers(name: Path, rows: list[tuple[int, list[str]]], ex: CsvFile,
                     questions: Sequence[Question] | None) -> list[str]:
    problems, seen = [], {}
    for n, (qid, *_rest) in rows:
        if qid in seen:
            problems.append(f"{name}: row {n}: question {qid!r} again (first in row {seen[qid]})")
        seen.setdefault(qid, n)
    example_ids = {r[0] for r in ex.records[1:] if r}
    if questions is None:
        expected, source = example_ids, str(ex.path)
    else:
        expected, source = {q.qid for q in questions}, "the questions answered"
        alien = sorted(example_ids - expected)
        if alien:
            problems.append(f"{ex.path}: lists {len(alien)} question(s) not among the questions answered, e.g. "
                            f"{alien[:5]} (the example of another split?)")
    missing = sorted(expected - set(seen))
    if missing:
        problems.append(f"{name}: {len(missing)} question(s) of {source} have no row, e.g. {missing[:5]}")
    problems += [f"{name}: row {n}: question {qid!r} is not in {source}" for qid, n in seen.items()
                 if qid not in expected]
    if questions is not None:
        by_id = {q.qid: q for q in questions}
        for n, (qid, answer, *_rest) in rows:
            if qid in by_id:
                q = by_id[qid]
                options = [submission_rows([q], [i])[0][0][1] for i in range(len(q.choices))]
                if answer not in options:
                    problems.append(f"{name}: row {n} (question {qid}): answer {answer!r} is not one of its "
                                    f"options {options}")
    return problems


def _delimiter(text: str) -> str:
    """The header's delimiter: comma, tab or semicolon (comma when the header has none)."""
    header = text.split("\n", 1)[0]
    return next((d for d in (",", "\t", ";") if d in header), ",")


def _serialise(records: list[list[str]], delimiter: str, quoting: int) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator="\n").writerows(records)
    return out.getvalue()

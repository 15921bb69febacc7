"""The DCASE 2025 Task 5 reader and its validation.

Layout under ``root``::

    dcase_2025_question_path/{train,dev,eval}/<qid>.json    one question per file
    local_audio_path/{train,dev,eval}/<clip>.wav             audio_url is relative to the JSON's folder

Every problem is collected (never only the first): ``validate`` lists them, ``load_split`` refuses a split that has
any unless told to skip the affected questions.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from aqa_utils.config import AudioConfig
from aqa_utils.data.layout import MAX_CHOICES, QUESTION_DIR, SPLITS
from aqa_utils.progress import tqdm

log = logging.getLogger(__name__)

PROBLEM_KINDS = (
    "missing_split", "malformed_json", "missing_field", "bad_choices", "answer_not_in_choices",
    "malformed_answer", "duplicate_id", "missing_audio", "unreadable_audio", "empty_audio", "silent_audio",
)

# "A. Writing" -> ("A", "Writing"); "B) Door" is accepted too.
_LABELED = re.compile(r"^\s*([A-Z])[.)]\s*(.*?)\s*$", re.S)
# Label fragments inside an answer's text, e.g. the "(B)(A)(C)" of "D. (B)(A)(C)".
_EMBEDDED_LABEL = re.compile(r"\([A-Z]\)")


@dataclass
class Question:
    """One DCASE question. ``answer`` indexes ``choices``; None for eval (answers withheld)."""

    qid: str
    """The JSON file's stem (e.g. ``dev_aqa_1106``): the submission's ``question`` column."""
    split: str
    question: str
    choices: list[str]
    """Option texts, label ("A. ") and trailing commas/space stripped."""
    answer: int | None
    clip_id: str
    """The JSON ``id`` field: names the clip; several questions may share one."""
    audio_path: Path
    subset: str
    """BQA / TSQA / CQA, inferred from the clip's file name."""
    question_type: str
    json_path: Path
    raw_choices: list[str] = field(default_factory=list)
    """The option strings verbatim, e.g. ``"A. Writing"``."""

    @property
    def answer_text(self) -> str | None:
        """The verbatim option string of the answer (what a submission CSV must contain)."""
        return None if self.answer is None else self.raw_choices[self.answer]


@dataclass
class Problem:
    """Something wrong with a question file (``path`` = its JSON) or an audio file (``path`` = the audio)."""

    path: Path
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.detail}"


class DataError(ValueError):
    """A split has problems and skipping them was not asked for."""


@dataclass
class LoadedSplit:
    """The loadable questions of a split, and what was left out."""

    split: str
    questions: list[Question]
    problems: list[Problem]
    skipped: int
    """Question files not loaded because of a problem."""

    def summary(self) -> str:
        kinds = Counter(p.kind for p in self.problems)
        why = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "no problems"
        return f"{self.split}: {len(self.questions)} questions loaded, {self.skipped} skipped ({why})"


@dataclass
class _SplitScan:
    questions: list[Question]
    """Questions free of every problem."""
    problems: list[Problem]
    n_files: int


def subset_of(clip_name: str) -> str:
    """The DCASE subset a clip belongs to, from its file name (there is no subset field)."""
    if clip_name.startswith("fold"):
        return "TSQA"
    if clip_name.startswith("audio"):
        return "CQA"
    return "BQA"


def _clean(text: str) -> str:
    return text.strip().rstrip(", \t\n")


def _norm(text: str) -> str:
    """Comparison form: case-folded, whitespace collapsed, trailing punctuation dropped."""
    return " ".join(text.casefold().split()).rstrip(".,;: ")


def _parse_choices(raw: object) -> tuple[list[str] | None, str]:
    """Option texts from the ``choice`` list, or (None, why not)."""
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        return None, f"'choice' must be a list of strings, got {raw!r}"
    if not 2 <= len(raw) <= MAX_CHOICES:
        return None, f"{len(raw)} choices (expected 2 to {MAX_CHOICES})"
    texts = []
    for i, option in enumerate(raw):
        m = _LABELED.match(option)
        expected = chr(ord("A") + i)
        if m is None or m.group(1) != expected:
            return None, f"choice {i} {option!r} is not labelled '{expected}. ...'"
        text = _clean(m.group(2))
        if not text:
            return None, f"choice {expected} is empty"
        texts.append(text)
    dup = [t for t, n in Counter(_norm(t) for t in texts).items() if n > 1]
    if dup:
        return None, f"duplicate option text {dup[0]!r}"
    return texts, ""


def _resolve_answer(answer: object, raw: list[str], texts: list[str]) -> tuple[int | None, str, str]:
    """(index, problem kind or "", detail). Verbatim match first; a labelled answer may differ in formatting only."""
    if not isinstance(answer, str) or not answer.strip():
        return None, "malformed_answer", f"answer {answer!r} is not a non-empty string"
    for i, option in enumerate(raw):
        if _clean(option) == _clean(answer):
            return i, "", ""
    m = _LABELED.match(answer)
    label_idx = ord(m.group(1)) - ord("A") if m else None
    text = _clean(m.group(2)) if m else _clean(answer)
    matches = [i for i, t in enumerate(texts) if _norm(t) == _norm(text)]
    if label_idx is not None and label_idx in matches:
        return label_idx, "", ""
    if label_idx is None and len(matches) == 1:
        return matches[0], "", ""
    if label_idx is not None and (matches or label_idx >= len(texts) or _EMBEDDED_LABEL.search(text)):
        return None, "malformed_answer", f"answer {answer!r}: its label and text do not name one option of {raw}"
    return None, "answer_not_in_choices", f"answer {answer!r} is none of {raw}"


def strip_labels(choices: Sequence[str]) -> list[str]:
    """Drop "A. " style labels when every option carries its own, in order (as DCASE files write them)."""
    matches = [_LABELED.match(c) for c in choices]
    if all(m and m.group(1) == chr(ord("A") + i) and m.group(2) for i, m in enumerate(matches)):
        return [m.group(2).rstrip(", ") for m in matches]  # type: ignore[union-attr]
    return [c.strip() for c in choices]


def _read_question(path: Path, split: str) -> tuple[Question | None, list[Problem], Path | None]:
    """Parse one question file: (question if clean, its problems, the audio path if one could be resolved)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, [Problem(path, "malformed_json", str(e))], None
    if not isinstance(data, dict):
        return None, [Problem(path, "malformed_json", f"top level is {type(data).__name__}, not an object")], None

    problems: list[Problem] = []
    required = ["question", "choice", "id", "audio_url"] + ([] if split == "eval" else ["answer"])
    missing = [k for k in required if k not in data]
    if missing:
        problems.append(Problem(path, "missing_field", f"missing {missing}"))
    for key in ("question", "audio_url"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            problems.append(Problem(path, "missing_field", f"{key!r} must be a non-empty string, got {data[key]!r}"))
    if "id" in data and not isinstance(data["id"], (str, int)):
        problems.append(Problem(path, "missing_field", f"'id' must be a string, got {data['id']!r}"))

    audio_path = None
    if isinstance(data.get("audio_url"), str) and data["audio_url"].strip():
        audio_path = Path(os.path.normpath(path.parent / data["audio_url"].strip()))

    texts, answer = None, None
    if "choice" in data:
        texts, why = _parse_choices(data["choice"])
        if texts is None:
            problems.append(Problem(path, "bad_choices", why))
        elif "answer" in data and (split != "eval" or data["answer"] is not None):
            answer, kind, why = _resolve_answer(data["answer"], data["choice"], texts)
            if kind:
                problems.append(Problem(path, kind, why))
    if problems:
        return None, problems, audio_path
    assert texts is not None and audio_path is not None
    q = Question(
        qid=path.stem, split=split, question=data["question"].strip(), choices=texts, answer=answer,
        clip_id=str(data["id"]), audio_path=audio_path, subset=subset_of(audio_path.name),
        question_type=str(data.get("question_type") or ""), json_path=path, raw_choices=list(data["choice"]),
    )
    return q, [], audio_path


def check_audio_file(path: Path, cfg: AudioConfig = AudioConfig()) -> Problem | None:
    """The problem that would stop ``audio.load_clip`` on this file, if any.

    Reads what AF2 reads (the first ``max_windows`` windows); silent means the channel AF2 keeps (the first) is
    all zeros there.
    """
    from aqa_utils.audio import AudioError, read_audio  # torch with it: reading questions alone needs neither
    try:
        data, _ = read_audio(path, max_seconds=cfg.max_windows * cfg.window_seconds)
    except AudioError as e:
        return Problem(path, f"{e.reason}_audio", e.detail or f"audio file {e.reason}")
    if not np.any(data[0]):
        return Problem(path, "silent_audio", "all samples of the first channel are zero")
    return None


def _scan_split(root: Path, split: str, check_audio: bool, progress: bool = True) -> _SplitScan:
    qdir = root / QUESTION_DIR / split
    files = sorted(p for p in qdir.rglob("*") if p.suffix.lower() == ".json" and p.is_file()) if qdir.is_dir() else []
    if not files:
        return _SplitScan([], [Problem(qdir, "missing_split", "no question files (*.json) in this folder")], 0)

    problems: list[Problem] = []
    clean: dict[Path, Question] = {}
    users: dict[Path, list[Path]] = defaultdict(list)  # audio file -> question files that use it
    for path in tqdm(files, desc=f"{split}: questions", leave=False, disable=not progress):
        q, probs, audio = _read_question(path, split)
        problems += probs
        if q is not None:
            clean[path] = q
        if audio is not None:
            users[audio].append(path)

    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        by_stem[path.stem].append(path)
    for stem, paths in by_stem.items():
        if len(paths) > 1:  # no way to tell which copy is right: all are reported and none is loaded
            for p in paths:
                others = [str(o) for o in paths if o != p]
                problems.append(Problem(p, "duplicate_id", f"question id {stem!r} also in {others}"))
                clean.pop(p, None)

    if check_audio:
        for audio in tqdm(sorted(users), desc=f"{split}: audio", leave=False, disable=not progress):
            problem = check_audio_file(audio)
            if problem is not None:
                names = sorted(p.stem for p in users[audio])
                problem.detail += f"; used by {len(names)} question(s): {', '.join(names)}"
                problems.append(problem)
                for p in users[audio]:
                    clean.pop(p, None)
    return _SplitScan(list(clean.values()), problems, len(files))


def validate(root: str | Path, splits: tuple[str, ...] = SPLITS, check_audio: bool = True) -> list[Problem]:
    """Every problem in the given splits (JSON structure, answers, duplicate ids; audio once per distinct file)."""
    return [p for split in splits for p in _scan_split(Path(root), split, check_audio).problems]


def load_split(root: str | Path, split: str, skip_problems: bool = False, check_audio: bool = True,
               progress: bool = True) -> LoadedSplit:
    """Read a split's questions (sorted by file name). ``split`` may name a carved part, "train.val" or
    "train.fit" (``data.holdout``).

    With any problem, raises ``DataError`` listing all of them, unless ``skip_problems``: then the affected
    questions are left out, counted in ``skipped`` and summarised in a warning.
    """
    from aqa_utils.data.holdout import carve, parse_split

    base, part = parse_split(split)
    scan = _scan_split(Path(root), base, check_audio, progress)
    skipped = scan.n_files - len(scan.questions)  # problems are counted over the whole split, before carving
    questions = scan.questions if part is None else carve(scan.questions, part)
    loaded = LoadedSplit(split, questions, scan.problems, skipped)
    if scan.problems and not skip_problems:
        lines = "\n".join(f"  {p}" for p in scan.problems)
        raise DataError(
            f"{len(scan.problems)} problem(s) in split {split!r} under {root}:\n{lines}\n"
            f"Fix them, or pass skip_problems=True to load the {len(questions)} unaffected questions."
        )
    if scan.problems:
        log.warning("%s", loaded.summary())
    return loaded


def validate_data_cli(root: str | Path, as_json: bool, check_audio: bool = True) -> int:
    """``python -m aqa_utils validate-data``: print a report (or JSON) of every split; 0 if clean, else 1."""
    root = Path(root)
    scans = {split: _scan_split(root, split, check_audio) for split in SPLITS}
    problems = [(split, p) for split, s in scans.items() for p in s.problems]
    if as_json:
        report = {
            "root": str(root),
            "clean": not problems,
            "splits": {
                split: {"files": s.n_files, "loadable": len(s.questions),
                        "subsets": dict(Counter(q.subset for q in s.questions))}
                for split, s in scans.items()
            },
            "problems": [{"split": split, **asdict(p), "path": str(p.path)} for split, p in problems],
        }
        print(json.dumps(report, indent=2))
    else:
        print(f"DCASE 2025 Task 5 data under {root}")
        for split, s in scans.items():
            subsets = ", ".join(f"{k} {n}" for k, n in sorted(Counter(q.subset for q in s.questions).items()))
            print(f"  {split}: {s.n_files} question files, {len(s.questions)} loadable ({subsets or 'none'})")
        if not problems:
            print("No problems found.")
        for kind, n in sorted(Counter(p.kind for _, p in problems).items()):
            print(f"\n{kind}: {n}")
            for split, p in problems:
                if p.kind == kind:
                    print(f"  [{split}] {p.path}: {p.detail}")
    return 1 if problems else 0

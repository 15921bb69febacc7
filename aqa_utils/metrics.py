"""Evaluation metrics for DCASE 2025 Task 5: pure functions over per-question predictions (no model code).

The prediction table every function here reads has one row per question:

    qid            the question's id (its JSON file's stem); unique
    subset         "BQA" | "TSQA" | "CQA"
    question_type  free text from the question file
    n_choices      number of options offered (2..6)
    answer         index of the correct option, or NaN/None when unknown (eval set, malformed answer)
    pred           index of the predicted option, or None/NaN/-1 when the model's output could not be parsed

Questions with an unknown answer are not scored (and are counted); an unparsed prediction is scored as wrong,
because a system that answers nothing must not look better than one that guesses.
Accuracies are fractions in [0, 1]; the tables that sit beside published numbers use percent.
"""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from aqa_utils.data.layout import SUBSETS
from aqa_utils.reported import REPORTED

CI_LEVEL = 0.95


# --- scoring one table ---------------------------------------------------------------------------------------------

def _index_or_nan(values: pd.Series) -> np.ndarray:
    """Option indices as floats; None, NaN and negative values (the "unparsed" marker) become NaN."""
    out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.where(out < 0, np.nan, out)  # a new array: to_numpy may hand back a read-only view


def _require(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; has {list(df.columns)}")


def score(df: pd.DataFrame) -> pd.DataFrame:
    """The table with three columns added: ``scored`` (answer known), ``unparsed`` and ``correct`` (bool)."""
    _require(df, ("qid", "subset", "answer", "pred"), "predictions")
    if df["qid"].duplicated().any():
        dup = df.loc[df["qid"].duplicated(), "qid"].head(5).tolist()
        raise ValueError(f"predictions: duplicate qid(s), e.g. {dup}; each question must be scored once")
    unknown = sorted(set(df["subset"]) - set(SUBSETS))
    if unknown:
        raise ValueError(f"predictions: unknown subset(s) {unknown}; expected {SUBSETS}")
    answer, pred = _index_or_nan(df["answer"]), _index_or_nan(df["pred"])
    out = df.copy()
    out["scored"] = ~np.isnan(answer)
    out["unparsed"] = np.isnan(pred)
    out["correct"] = out["scored"].to_numpy() & (pred == answer)  # NaN == x is False: unparsed is wrong
    return out


def chance_accuracy(df: pd.DataFrame, average: str = "micro") -> float:
    """Expected accuracy of a uniform random guesser: the mean of 1/n_choices.

    Taken over the questions with a known answer when the table has an ``answer`` column (so it is comparable
    with :func:`accuracy_report`'s numbers). ``average="domain"`` gives the chance level of the domain average:
    the mean over subsets of each subset's chance.
    """
    _require(df, ("n_choices",), "chance_accuracy")
    rows = df[~np.isnan(_index_or_nan(df["answer"]))] if "answer" in df.columns else df
    inv = 1.0 / rows["n_choices"].astype(float)
    if average == "micro":
        return float(inv.mean())
    if average == "domain":
        return float(inv.groupby(rows["subset"]).mean().mean())
    raise ValueError(f"average must be 'micro' or 'domain', not {average!r}")


def _percentile_ci(samples: np.ndarray) -> tuple[float, float]:
    tail = (1.0 - CI_LEVEL) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def accuracy_report(df: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Top-1 accuracy of a prediction table, as the challenge reports it, with bootstrap 95% intervals.

    Returns a dict:
      ``per_subset``          {subset: accuracy} for the subsets present
      ``domain_average``      mean of ``per_subset`` (the challenge's ranking score)
      ``micro``               accuracy over all scored questions (the baseline table's "overall")
      ``per_question_type``   {question_type: accuracy} (when the column exists)
      ``unparsed_rate``       share of all rows whose prediction could not be parsed (they count as wrong)
      ``chance``              :func:`chance_accuracy` (micro) when ``n_choices`` exists, else None
      ``*_ci``                (low, high) percentile intervals for micro, domain_average and each subset
      ``counts``              rows, scored, unscored, unparsed, correct; per subset and per question type
      ``n_boot``, ``seed``    how the intervals were drawn
    The bootstrap resamples questions within each subset (stratified), so every replicate keeps the subset
    sizes and the domain average stays a mean of three accuracies.
    """
    if n_boot < 1:
        raise ValueError(f"accuracy_report: n_boot must be >= 1, got {n_boot}")
    s = score(df)
    scored = s[s["scored"]]
    if scored.empty:
        raise ValueError("accuracy_report: no question with a known answer to score")
    by_subset = scored.groupby("subset", sort=False)["correct"]
    # Keep the canonical subset order so reports line up with the published table.
    present = [name for name in SUBSETS if name in by_subset.groups]
    n = {name: int(by_subset.size()[name]) for name in present}
    k = {name: int(by_subset.sum()[name]) for name in present}
    per_subset = {name: k[name] / n[name] for name in present}

    # Resampling n questions with replacement from a subset with k correct gives Binomial(n, k/n) correct
    # answers: drawing the counts directly is the same bootstrap, exactly, without materialising indices.
    rng = np.random.default_rng(seed)
    boot_k = {name: rng.binomial(n[name], k[name] / n[name], size=n_boot) for name in present}
    boot_subset = {name: boot_k[name] / n[name] for name in present}
    boot_domain = np.mean([boot_subset[name] for name in present], axis=0)
    boot_micro = np.sum([boot_k[name] for name in present], axis=0) / sum(n.values())

    report: dict[str, Any] = {
        "per_subset": per_subset,
        "domain_average": float(np.mean(list(per_subset.values()))),
        "micro": sum(k.values()) / sum(n.values()),
        "per_question_type": {},
        "unparsed_rate": float(s["unparsed"].mean()),
        "chance": chance_accuracy(df) if "n_choices" in df.columns else None,
        "micro_ci": _percentile_ci(boot_micro),
        "domain_average_ci": _percentile_ci(boot_domain),
        "per_subset_ci": {name: _percentile_ci(boot_subset[name]) for name in present},
        "counts": {
            "rows": len(s),
            "scored": len(scored),
            "unscored": int((~s["scored"]).sum()),
            "unparsed": int(s["unparsed"].sum()),
            "correct": sum(k.values()),
            "per_subset": n,
            "per_question_type": {},
        },
        "n_boot": n_boot,
        "seed": seed,
    }
    if "question_type" in scored.columns:
        by_type = scored.groupby("question_type")["correct"]
        report["per_question_type"] = {str(t): float(v) for t, v in by_type.mean().items()}
        report["counts"]["per_question_type"] = {str(t): int(v) for t, v in by_type.size().items()}
    return report


# --- robustness to answer shuffling --------------------------------------------------------------------------------

def permutations_for(n_choices: int, k: int, seed: int) -> list[tuple[int, ...]]:
    """``k`` distinct orderings of ``n_choices`` options, deterministic in ``seed``; the identity comes first.

    ``perm[p]`` is the ORIGINAL index of the option shown at position ``p``. The first ``min(k, n_choices)`` are
    cyclic shifts (in a seeded order), so each option visits each position at most once: a predictor with a
    position preference then cannot stay right by luck, and one that always picks the same position scores
    exactly chance when ``k == n_choices``. Beyond ``n_choices`` come seeded random permutations, all distinct.
    """
    if n_choices < 1 or k < 1:
        raise ValueError(f"need n_choices >= 1 and k >= 1, got {n_choices}, {k}")
    if k > math.factorial(n_choices):
        raise ValueError(f"only {math.factorial(n_choices)} orderings of {n_choices} options exist; asked for {k}")
    rng = np.random.default_rng(seed)
    shifts = [0] + [int(x) + 1 for x in rng.permutation(n_choices - 1)]
    perms = [tuple((p + s) % n_choices for p in range(n_choices)) for s in shifts[:k]]
    seen = set(perms)
    if len(perms) < k and math.factorial(n_choices) <= 720:  # up to 6 options: draw from the full list
        rest = [p for p in itertools.permutations(range(n_choices)) if p not in seen]
        perms += [rest[i] for i in rng.permutation(len(rest))[: k - len(perms)]]
    while len(perms) < k:  # more than 6 options: rejection sampling is fast, the space is huge
        cand = tuple(int(x) for x in rng.permutation(n_choices))
        if cand not in seen:
            seen.add(cand)
            perms.append(cand)
    return perms


def shuffle_robustness(per_perm: pd.DataFrame) -> dict[str, Any]:
    """How accuracy holds up when the options of each question are shown in several orders.

    ``per_perm`` has one row per (question, ordering): ``qid``, ``perm`` (int id of the ordering), ``answer`` and
    ``pred`` both as indices in the ORIGINAL option order (pred None/NaN/-1 = unparsed = wrong), and optionally
    ``n_choices`` (needed for the chance levels). Returns:
      ``mean_accuracy``                   the shuffle-averaged accuracy: mean over questions of the share of their
                                          orderings answered right (each question weighs the same, also when it
                                          has fewer orderings, as 2-option questions do)
      ``mean_accuracy_ci``                its 95% bootstrap interval over questions
      ``std_accuracy``                    population std of the per-ordering accuracies
      ``per_perm_accuracy``               {perm: accuracy}
      ``unparsed_rate``                   share of (question, ordering) rows with no parsable answer
      ``per_question``                    {qid: share of its orderings answered right} (for paired comparisons)
      ``consistent_accuracy``             share of questions answered right under EVERY ordering tried
      ``chance_mean_accuracy``            a uniform random guesser's expected accuracy (mean 1/n)
      ``chance_consistent_accuracy``      its chance of being right every time: mean over questions of (1/n)^m,
                                          m = orderings tried for that question (the guesses are independent)
      ``n_questions``, ``n_perms``
    """
    _require(per_perm, ("qid", "perm", "answer", "pred"), "shuffle_robustness")
    if per_perm.duplicated(["qid", "perm"]).any():
        raise ValueError("shuffle_robustness: a (qid, perm) pair appears twice")
    answer, pred = _index_or_nan(per_perm["answer"]), _index_or_nan(per_perm["pred"])
    if np.isnan(answer).any():
        raise ValueError("shuffle_robustness: every row needs a known answer")
    rows = per_perm.assign(correct=pred == answer)
    per_perm_acc = rows.groupby("perm")["correct"].mean()
    per_question = rows.groupby("qid")["correct"]
    shares = per_question.mean()
    result: dict[str, Any] = {
        "mean_accuracy": float(shares.mean()),
        "mean_accuracy_ci": list(bootstrap_mean_ci(shares.to_numpy(dtype=float))),
        "std_accuracy": float(per_perm_acc.std(ddof=0)),
        "per_perm_accuracy": {int(p): float(a) for p, a in per_perm_acc.items()},
        "consistent_accuracy": float(per_question.all().mean()),
        "chance_mean_accuracy": None,
        "chance_consistent_accuracy": None,
        "n_questions": int(per_question.ngroups),
        "n_perms": int(per_perm_acc.size),
        "unparsed_rate": float(np.isnan(pred).mean()),
        "per_question": {str(q): float(v) for q, v in shares.items()},
    }
    if "n_choices" in rows.columns:
        q = rows.groupby("qid").agg(n=("n_choices", "first"), m=("perm", "size"))
        result["chance_mean_accuracy"] = float((1.0 / rows["n_choices"].astype(float)).mean())
        result["chance_consistent_accuracy"] = float(((1.0 / q["n"].astype(float)) ** q["m"]).mean())
    return result


def bootstrap_mean_ci(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of ``values`` (resampled with replacement, seeded)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return (math.nan, math.nan)
    idx = np.random.default_rng(seed).integers(0, len(values), size=(n_boot, len(values)))
    return _percentile_ci(values[idx].mean(axis=1))


def position_tv(df: pd.DataFrame) -> float:
    """Total variation distance between the distribution of predicted positions and that of the true answers'
    positions (unparsed predictions are a category of their own): 0 = a model picks each position exactly as
    often as it is right there; a model that always answers A scores 1 - share of A answers."""
    table = position_distribution(df)
    return float(0.5 * (table["predicted_share"] - table["true_share"]).abs().sum())


def position_distribution(df: pd.DataFrame) -> pd.DataFrame:
    """How often each displayed position (A, B, ...) was predicted and was correct.

    Reads ``pred_position`` (None/NaN/-1 = unparsed), ``answer_position`` and ``n_choices``. One row per position
    label, plus a final row ``unparsed``; columns ``predicted`` and ``true`` (counts), ``offered`` (questions that
    show that position at all) and their shares of all rows. A model without position bias predicts each
    position about as often as it is the true one.
    """
    _require(df, ("pred_position", "answer_position", "n_choices"), "position_distribution")
    pred, true = _index_or_nan(df["pred_position"]), _index_or_nan(df["answer_position"])
    n_choices = df["n_choices"].astype(int).to_numpy()
    width = int(n_choices.max()) if len(df) else 0
    labels = [chr(ord("A") + i) for i in range(width)]
    table = pd.DataFrame(
        {
            "predicted": [int(np.sum(pred == i)) for i in range(width)] + [int(np.isnan(pred).sum())],
            "true": [int(np.sum(true == i)) for i in range(width)] + [int(np.isnan(true).sum())],
            "offered": [int(np.sum(n_choices > i)) for i in range(width)] + [0],
        },
        index=pd.Index(labels + ["unparsed"], name="position"),
    )
    for col in ("predicted", "true"):
        table[f"{col}_share"] = table[col] / max(len(df), 1)
    return table


# --- submission file -------------------------------------------------------------------------------------------------

SUBMISSION_HEADER = ("question", "answer")


def write_submission(path: str | Path, rows: Iterable[tuple[str, str]]) -> int:
    """Write the challenge CSV: header ``question,answer``, then question id and the verbatim chosen option text.

    Option texts may hold commas, quotes or line breaks; the csv module quotes them (RFC 4180), so they survive
    a round trip. Returns the number of rows written; a repeated question id is an error.
    """
    seen: set[str] = set()
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(SUBMISSION_HEADER)
        for qid, answer_text in rows:
            if qid in seen:
                raise ValueError(f"write_submission: question {qid!r} appears twice")
            if answer_text is None:
                raise ValueError(f"write_submission: question {qid!r} has no answer text")
            seen.add(qid)
            writer.writerow((qid, answer_text))
    return len(seen)


def read_submission(path: str | Path) -> dict[str, str]:
    """Read a submission CSV back into {question id: answer text}; checks the header and unique ids."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if tuple(header or ()) != SUBMISSION_HEADER:
            raise ValueError(f"{path}: header must be {','.join(SUBMISSION_HEADER)}, got {header}")
        out: dict[str, str] = {}
        for line_no, row in enumerate(reader, start=2):
            if len(row) != 2:
                raise ValueError(f"{path}:{line_no}: expected 2 fields, got {len(row)}")
            if row[0] in out:
                raise ValueError(f"{path}:{line_no}: question {row[0]!r} appears twice")
            out[row[0]] = row[1]
    return out


# --- measured here vs reported ------------------------------------------------------------------------------------

TABLE_COLUMNS = ["system", "data", "source", "BQA", "TSQA", "CQA", "domain_average", "overall", "n", "reference"]


def measured_vs_reported(
    measured: Mapping[str, Mapping[str, Any]],
    data: str | Mapping[str, str] = "mini benchmark dev",
    reference: str = "",
    include_reported: bool = True,
) -> pd.DataFrame:
    """Numbers measured here beside the published ones, in percent, one row per (system, data, source).

    ``measured`` maps a system name to its :func:`accuracy_report`; ``data`` names what it was measured on
    (e.g. "mini benchmark dev", "DCASE dev"), one string for all or a {system: data} mapping. Every row is either ``source == "reported"`` (copied from
    :data:`REPORTED`) or ``source == "measured here"``; a row never mixes the two, so a measured number can only
    be compared with a published one across rows, and the ``data`` column says whether that comparison is fair.
    """
    rows = []
    for system, rep in measured.items():
        per_subset = rep.get("per_subset", {})
        rows.append(
            {
                "system": system,
                "data": data if isinstance(data, str) else data[system],
                "source": "measured here",
                **{name: 100 * per_subset[name] if name in per_subset else np.nan for name in SUBSETS},
                "domain_average": 100 * rep["domain_average"],
                "overall": 100 * rep["micro"],
                "n": rep.get("counts", {}).get("scored", np.nan),
                "reference": reference,
            }
        )
    measured_df = pd.DataFrame(rows, columns=TABLE_COLUMNS).astype({"n": "Int64"})
    if not include_reported:
        return measured_df.reset_index(drop=True)
    reported = REPORTED.assign(n=pd.array([pd.NA] * len(REPORTED), dtype="Int64"))[TABLE_COLUMNS]
    if measured_df.empty:
        return reported.reset_index(drop=True)
    return pd.concat([reported, measured_df], ignore_index=True)

"""Tables the notebooks print: headline accuracy with CIs, paired comparisons, rank saturation, data statistics.

Every accuracy table reads ``metrics.accuracy_report`` dicts through a metric key (``HEADLINE``): a new headline
metric with the same shape (``<key>`` and ``<key>_ci`` in the report) drops in by changing the key. Numbers
measured here and published ones never share a row (see ``metrics.measured_vs_reported``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from aqa_utils.data.layout import SUBSETS

HEADLINE = "shuffle_mean"
"""The report key the figures and verdicts rank systems by (with ``<key>_ci``): top-1 accuracy averaged over
shuffled option orders, as DCASE ranks systems (``evaluate`` adds it to each mode's report)."""
METRIC_NAMES = {"micro": "micro accuracy (original order)", "domain_average": "domain average",
                "shuffle_mean": "accuracy averaged over shuffled option orders"}


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def _cell(value: float, ci) -> str:
    return f"{100 * value:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def headline_table(reports: dict[str, dict]) -> pd.DataFrame:
    """One row per system: accuracy per subset, domain average and micro (percent) with 95% CIs."""
    rows = []
    for system, rep in reports.items():
        row = {"system": system}
        for name in SUBSETS:
            if name in rep["per_subset"]:
                row[name] = _cell(rep["per_subset"][name], rep["per_subset_ci"][name])
        row["domain average"] = _cell(rep["domain_average"], rep["domain_average_ci"])
        row["micro"] = _cell(rep["micro"], rep["micro_ci"])
        if "shuffle_mean" in rep:
            row["shuffle mean"] = _cell(rep["shuffle_mean"], rep["shuffle_mean_ci"])
        row["unparsed %"] = round(100 * rep["unparsed_rate"], 1)
        row["n"] = rep["counts"]["scored"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("system")


def shuffle_shares(evaluation, mode: str = "score") -> np.ndarray:
    """Per question (in the predictions' order), the share of its shuffled orderings answered right in ``mode``: the
    per-question values paired comparisons of the headline metric use."""
    shares = evaluation.robustness[mode]["per_question"]
    return np.array([shares[str(q)] for q in evaluation.predictions["qid"]], dtype=float)


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict:
    """Accuracy of B minus A on the same questions, with a paired bootstrap 95% CI and P(B > A).

    Pairing matters: two adapters answer the same questions, so their errors are correlated and an unpaired
    comparison of two CIs would be far too conservative. ``disagree`` counts questions the two answer differently
    (right vs wrong): with none, no resample can tell them apart.
    """
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    if a.shape != b.shape:
        raise ValueError(f"paired_difference needs predictions for the same questions, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    diffs = (b[idx] - a[idx]).mean(axis=1)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"difference": float(b.mean() - a.mean()), "ci": (float(lo), float(hi)),
            "p_b_better": float((diffs > 0).mean()), "n": len(a), "disagree": int((a != b).sum())}


def seed_interval(values) -> tuple[float, float, float]:
    """Mean over training seeds and its 95% t-interval; one seed gives (v, nan, nan): no spread to estimate."""
    from scipy import stats

    v = np.asarray(values, float)
    if len(v) < 2:
        return float(v.mean()), float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def rank_table(reports: dict, params: dict[int, int], model: str, metric: str = HEADLINE,
               reported_params: dict[int, int] | None = None) -> pd.DataFrame:
    """One row per adapter (rank, seed): trainable parameters of ``model`` (measured count), the report's AF2-3B
    count, ``metric`` with its CI, final validation loss and training time from the run's summary.json.

    ``reports``: {System: accuracy report} for LoRA systems (the base, rank 0, is skipped).
    """
    rows = []
    for system, rep in reports.items():
        if system.rank == 0:
            continue
        summary_path = Path(system.run_dir) / "summary.json"
        if not summary_path.exists():
            raise FileNotFoundError(f"{summary_path}: no finished run for {system.name} (train it in notebook 04)")
        summary = json.loads(summary_path.read_text())
        row = {"rank": system.rank, "seed": system.seed, f"trainable params ({model})": params[system.rank]}
        if reported_params:
            row["trainable params (AF2-3B, report)"] = reported_params.get(system.rank)
        row.update({
            f"{metric_name(metric)} %": round(100 * rep[metric], 1),
            "95% CI": tuple(round(100 * v, 1) for v in rep[f"{metric}_ci"]),
            "final val loss": round(summary["val_loss"], 3) if summary.get("val_loss") is not None else None,
            "train seconds": summary["seconds"],
        })
        rows.append(row)
    return pd.DataFrame(rows).set_index(["rank", "seed"])


def rank_comparison(correct: dict[int, np.ndarray], reference: int = 8, n_boot: int = 2000) -> pd.DataFrame:
    """Each other rank against ``reference`` on the same questions (paired bootstrap); ``correct`` {rank: 0/1 per
    question}, one seed's (or seed-averaged) answers. Columns in percent; ``disagree`` as in ``paired_difference``."""
    if reference not in correct:
        raise ValueError(f"rank_comparison: reference rank {reference} not among {sorted(correct)}")
    rows = {}
    for rank in sorted(r for r in correct if r != reference):
        d = paired_difference(correct[reference], correct[rank], n_boot=n_boot)
        rows[f"r={rank} minus r={reference}"] = {
            "rank": rank, "difference %": round(100 * d["difference"], 1),
            "95% CI": tuple(round(100 * v, 1) for v in d["ci"]),
            "P(this rank better)": round(d["p_b_better"], 2), "questions answered differently": d["disagree"],
            "n": d["n"]}
    return pd.DataFrame.from_dict(rows, orient="index")


# ----------------------------------------------------------------------------------------------- data exploration
def question_table(questions) -> pd.DataFrame:
    """One row per question: id, subset, type, number of choices, answer position, clip (and its path)."""
    return pd.DataFrame([{
        "qid": q.qid, "split": q.split, "subset": q.subset, "question_type": q.question_type,
        "n_choices": len(q.choices), "answer_position": None if q.answer is None else "ABCDEF"[q.answer],
        "clip": q.audio_path.name, "path": str(q.audio_path), "question": q.question,
    } for q in questions])


def clip_table(paths) -> pd.DataFrame:
    """Per audio file: container format found by content (not by extension), rate, channels, duration."""
    import soundfile as sf

    rows = []
    for path in sorted({str(p) for p in paths}):
        try:
            info = sf.info(path)
        except Exception as err:  # soundfile's errors do not always name the file
            raise ValueError(f"{path}: cannot read the audio header ({err})") from err
        rows.append({"clip": Path(path).name, "path": path, "extension": Path(path).suffix, "format": info.format,
                     "sample_rate": info.samplerate, "channels": info.channels,
                     "seconds": round(info.frames / info.samplerate, 2)})
    return pd.DataFrame(rows)


def with_clip_seconds(questions: pd.DataFrame, clips: pd.DataFrame) -> pd.DataFrame:
    """``question_table`` rows with their clip's length (``seconds``), joined on the clip's path."""
    return questions.merge(clips[["path", "seconds"]], on="path", how="left", validate="many_to_one")


def label_mask_table(tokenizer, prompt: str, target: str) -> pd.DataFrame:
    """Token by token: what the model reads and which tokens carry loss under AF2's masking rule."""
    from aqa_utils.data.prompt import TrainCollator

    batch = TrainCollator(tokenizer)([(prompt, target)])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    return pd.DataFrame({"token": [tokenizer.decode([i]) for i in ids], "id": ids,
                         "in loss": [label != -100 for label in labels]})


def expected_positions(n_choices) -> pd.Series:
    """Share of answers at each position (A, B, ...) if every answer were placed uniformly among its options."""
    n = np.asarray(n_choices, int)
    width = int(n.max())
    return pd.Series([float(np.sum(1.0 / n[n > i])) / len(n) for i in range(width)],
                     index=[chr(ord("A") + i) for i in range(width)])


def position_test(positions, n_choices) -> dict:
    """Observed answer positions against uniform placement: shares, expected shares and a chi-square p-value."""
    from scipy import stats

    expected = expected_positions(n_choices)
    observed = pd.Series(list(positions)).value_counts().reindex(expected.index, fill_value=0)
    n = int(observed.sum())
    if n == 0:
        raise ValueError("position_test: no answered question")
    keep = expected > 0
    p = float(stats.chisquare(observed[keep], expected[keep] * n / expected[keep].sum()).pvalue)
    return {"observed": observed / n, "expected": expected, "p_value": p, "n": n}


def lr_sweep_table(record: dict) -> pd.DataFrame:
    """The learning-rate sweep (``workbook.lr_sweep``) per rate: validation accuracy (shuffle mean) with its 95%
    interval, in %, and the run's final validation loss."""
    return pd.DataFrame([{"learning rate": r["lr"],
                          f"{record['val_split']} accuracy %, shuffle mean": _cell(r["shuffle_mean"], r["ci"]),
                          "final val loss": round(r["val_loss"], 3)} for r in record["runs"].values()])

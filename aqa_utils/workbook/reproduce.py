"""``make reproduce``: every notebook executed top to bottom, and the results README written from the run's numbers."""

from __future__ import annotations

import json
import time
from pathlib import Path

from aqa_utils.config import portable
from aqa_utils.workbook.profile import Profile, profile, repo_root


NOTEBOOKS = (
    "01_data_exploration.ipynb",
    "02_augmentation.ipynb",
    "03_base_pretraining.ipynb",
    "04_lora_finetuning.ipynb",
    "05_evaluation.ipynb",
    "06_rank_saturation.ipynb",
    "07_demo.ipynb",
)


def _tidy_executed(path: Path) -> None:
    """Saved widget state repeats every clip the demo loaded as bytes: the executed copy does not need it. The
    notebook paths papermill records are made repo-relative: the copy is committed under results/."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    if "papermill" in nb.metadata:
        nb.metadata["papermill"] = portable(nb.metadata["papermill"])
    nbformat.write(nb, path)


def reproduce(profile_name: str = "full") -> int:
    """Run every notebook top to bottom with papermill (04 once per rank); executed copies land in results/."""
    import papermill

    prof = profile(profile_name)
    nb_dir = repo_root() / "notebooks"
    out_dir = prof.results_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    timings = {}
    for name in NOTEBOOKS:
        runs = [(f"{Path(name).stem}_r{r}.ipynb", {"PROFILE": profile_name, "RANK": r}) for r in prof.ranks] \
            if name.startswith("04_") else [(name, {"PROFILE": profile_name})]
        for out_name, params in runs:
            start = time.perf_counter()
            papermill.execute_notebook(str(nb_dir / name), str(out_dir / out_name), parameters=params,
                                       cwd=str(nb_dir), progress_bar=False, kernel_name="python3")
            _tidy_executed(out_dir / out_name)
            timings[out_name] = round(time.perf_counter() - start, 1)
            print(f"{out_name}: {timings[out_name]} s")
    (prof.results_dir / "reproduce_timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    return 0


def write_results_readme(prof: Profile, results: dict, rank_table, comparison) -> Path:
    """results/README.md: the headline table of the last run, beside the published numbers, with the verdict."""
    from aqa_utils.analysis import headline_table
    from aqa_utils.reported import REPORTED

    scored = {system.name: r.metrics["score"] for system, r in results.items()}
    data = "DCASE dev" if prof.real_data else "mini benchmark dev (generated, seed 0)"
    model = prof.model if prof.real_checkpoint else f"{prof.model} (pretrained here)"
    reported = REPORTED[["system", "BQA", "TSQA", "CQA", "overall"]].copy()
    lines = [
        f"# Results ({prof.name} profile)",
        "",
        f"Measured here: {model}, {data}, option scoring, accuracy % with bootstrap 95% intervals. "
        "Regenerate with `make reproduce`; the executed notebooks are in `results/notebooks/`.",
        "",
        headline_table(scored).to_markdown(),
        "",
        f"Chance level (mean of 1 / number of options): {100 * next(iter(scored.values()))['chance']:.1f}%. "
        + "Above chance with 95% confidence (micro CI lower bound > chance): "
        + ", ".join(f"{name}: {'yes' if rep['micro_ci'][0] > rep['chance'] else 'no'}" for name, rep in scored.items())
        + ".",
        "",
        "## Rank saturation (measured here)",
        "",
        rank_table.drop(columns=["train seconds"]).to_markdown(),
        "",
        comparison.to_markdown(),
        "",
        "## Reported (published, DCASE dev; AF2-3B, not comparable to the tiny model's numbers above)",
        "",
        reported.to_markdown(index=False),
        "",
    ]
    path = prof.results_dir / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path

"""``make reproduce``: every notebook executed top to bottom, and the results README written from the run's numbers."""

from __future__ import annotations

import json
import time
from pathlib import Path

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


def _drop_widget_state(path: Path) -> None:
    """Saved widget state repeats every clip the demo loaded as bytes; the executed copy does not need it."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if nb.metadata.pop("widgets", None) is not None:
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
            _drop_widget_state(out_dir / out_name)
            timings[out_name] = round(time.perf_counter() - start, 1)
            print(f"{out_name}: {timings[out_name]} s")
    (prof.results_dir / "reproduce_timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    # The results, readable without Jupyter.
    from aqa_utils.workbook.report import export_html

    print("static HTML:", len(export_html(prof)), "notebooks in", prof.results_dir / "html")
    return 0


# Notebooks whose figures results/README.md embeds (the rest are linked): the base, the evaluation, the ranks.
KEY_FIGURES = ("03_", "05_", "06_")


def write_results_readme(prof: Profile, reports: dict[str, dict], rank_table, comparison,
                         findings: dict[str, str]) -> Path:
    """results/README.md: the key figures, the headline table of this run beside the published numbers, the
    computed findings (``findings``: {section title: Markdown from ``analysis.findings``}), and links to every
    executed notebook. ``reports``: {system name: accuracy report} of the headline mode."""
    from aqa_utils.analysis import HEADLINE, data_name, headline_table
    from aqa_utils.analysis.findings import pct, versus_chance
    from aqa_utils.analysis.tables import metric_name
    from aqa_utils.reported import REPORTED
    from aqa_utils.workbook.report import notebook_index

    data = f"{data_name(prof.real_data)}, dev split"
    model = prof.model if prof.real_checkpoint else f"{prof.model} (pretrained here)"
    chance = next(iter(reports.values()))["chance"]
    figures = sorted((prof.results_dir / "figures").glob("*.png"))
    key = [f for f in figures if f.name.startswith(KEY_FIGURES)]
    lines = [
        f"# Results ({prof.name} profile)",
        "",
        (f"Measured here: {model}, {data}, option scoring, accuracy % with bootstrap 95% intervals. Written by "
         "notebook 06 from this run's numbers; regenerate with `make reproduce`."),
        "",
        "## Key figures",
        "",
        *[f"![{f.stem}](figures/{f.name})\n" for f in key],
        ("Every figure: " + ", ".join(f"[{f.stem}](figures/{f.name})" for f in figures) + ".") if figures
        else "No figures yet: the notebooks save them under `figures/` as they run.",
        "",
        "## Headline (measured here)",
        "",
        headline_table(reports).to_markdown(),
        "",
        f"Chance level (mean of 1 / number of options): {pct(chance)}. {metric_name(HEADLINE).capitalize()} against "
        "chance (95% interval): " + ", ".join(
            f"{name}: {versus_chance(rep[HEADLINE + '_ci'], chance)}" for name, rep in reports.items()) + ".",
        "",
    ]
    lines += ["## Findings (computed from the numbers here)", ""]
    for title, text in findings.items():
        lines += [f"### {title}", "", text, ""]
    lines += [
        "## Rank saturation (measured here)",
        "",
        rank_table.drop(columns=["train seconds"]).reset_index().to_markdown(index=False),
        "",
        comparison.to_markdown(),
        "",
        ("## Reported (published, DCASE dev; AF2-3B, not comparable to the numbers measured here unless the data and "
         "model above say DCASE dev and af2-3b)"),
        "",
        REPORTED[["system", "BQA", "TSQA", "CQA", "overall"]].to_markdown(index=False),
        "",
        notebook_index(prof),
        "",
    ]
    path = prof.results_dir / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path

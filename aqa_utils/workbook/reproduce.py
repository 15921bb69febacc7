"""``make reproduce``: every notebook executed top to bottom, with progress on the terminal, and a summary at the end.

What the terminal shows: one bar per notebook ("[3/9] 03_base_pretraining.ipynb", cells done, elapsed, rate, ETA),
under it the line the kernel's own bar keeps redrawing (training steps, evaluation batches), and above them every
finished line the kernel writes to stderr (warnings included). The elapsed time ticks even while a long cell runs.

The kernels talk to this process over local IPC (Unix sockets in a private folder) instead of TCP on localhost,
which is why ipykernel has no unencrypted-TCP warning to give. They get ``AQA_PROGRESS=text`` (text bars: see
``aqa_utils.progress``) and import the same ``aqa_utils`` as this process.

Ctrl-C stops the kernel at once; the training stages checkpoint periodically (``save_every``) and resume from
there on the next ``make reproduce``, and every finished stage is reused (``workbook.steps``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from aqa_utils.config import portable
from aqa_utils.workbook.profile import Profile, profile, repo_root
from aqa_utils.workbook.steps import saved_evaluations
from aqa_utils.workbook.summary import write_summary

NOTEBOOKS = (
    "01_data_exploration.ipynb",
    "02_augmentation.ipynb",
    "03_base_pretraining.ipynb",
    "04_lora_finetuning.ipynb",
    "05_evaluation.ipynb",
    "06_rank_saturation.ipynb",
    "07_demo.ipynb",
)


def stages(prof: Profile) -> list[tuple[str, str, dict]]:
    """(notebook, executed copy's name, papermill parameters) in order: 04 once per rank."""
    out = []
    for name in NOTEBOOKS:
        if name.startswith("04_"):
            out += [(name, f"{Path(name).stem}_r{r}.ipynb", {"PROFILE": prof.name, "RANK": r}) for r in prof.ranks]
        else:
            out.append((name, name, {"PROFILE": prof.name}))
    return out


def _tidy_executed(path: Path) -> None:
    """Saved widget state repeats every clip the demo loaded as bytes: the executed copy does not need it. The
    notebook paths papermill records are made repo-relative: the copy is committed under results/."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    if "papermill" in nb.metadata:
        nb.metadata["papermill"] = portable(nb.metadata["papermill"])
    nbformat.write(nb, path)


def _visible(text: str) -> str:
    """What a terminal shows of a line redrawn with carriage returns: its last non-empty segment."""
    return next((seg for seg in reversed(text.split("\r")) if seg), "")


class KernelStderr:
    """Where papermill writes a kernel's stderr: finished lines go above the bars (``tqdm.write``); the line being
    redrawn (a text progress bar) is shown in place by ``live``, a tqdm whose whole display is its description."""

    def __init__(self, live, file):
        self.live, self.file, self.pending = live, file, ""

    def write(self, text: str) -> None:
        from tqdm.std import tqdm

        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            if _visible(line).strip():
                tqdm.write(_visible(line).rstrip(), file=self.file)
        cut = self.pending.rstrip("\r").rfind("\r")  # only the last redraw matters: keep the buffer short
        if cut > 0:
            self.pending = self.pending[cut:]
        self.live.set_description_str(_visible(self.pending).strip())

    def flush(self) -> None:
        pass


def _ipc_kernel_manager(folder: str):
    """A kernel manager whose kernels listen on Unix sockets under ``folder`` (private: mode 0700)."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "ipc"

        @default("ip")  # else "kernel-ipc", relative: the sockets would land in the kernel's working folder
        def _ip_default(self) -> str:
            return os.path.join(folder, "kernel")

    return IPCKernelManager


def _kernel_environment() -> None:
    """Set for the kernels this process starts (they inherit its environment)."""
    os.environ["AQA_PROGRESS"] = "text"
    # The kernel runs in notebooks/; without this it would import whichever aqa_utils the venv installed.
    package_parent = str(Path(__file__).resolve().parents[2])
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if package_parent not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([package_parent] + [p for p in paths if p])


def _code_cells(notebook) -> int:
    """The cells papermill executes (it skips markdown and empty code cells)."""
    return sum(c.cell_type == "code" and bool(c.source.strip()) for c in notebook.cells)


def run_notebook(src: Path, dst: Path, parameters: dict, label: str, file=None) -> float:
    """Execute ``src`` into ``dst`` with papermill, showing progress under ``label``; its seconds."""
    import nbformat
    import papermill
    from tqdm.std import tqdm

    file = file or sys.stderr
    start = time.perf_counter()
    # Known before the kernel starts (seconds): the code cells, plus the one papermill injects for the parameters.
    planned = _code_cells(nbformat.read(src, as_version=4)) + bool(parameters)
    cells = tqdm(total=planned, desc=label, unit="cell", file=file, leave=True, dynamic_ncols=True)
    live = tqdm(total=None, bar_format="{desc}", file=file, leave=False, dynamic_ncols=True)
    stop = threading.Event()

    def tick() -> None:  # elapsed time moves on even while one long cell runs
        while not stop.wait(1.0):
            cells.refresh()

    def count_cells(notebook, **_) -> None:  # the notebook as papermill runs it
        cells.total = _code_cells(notebook)
        cells.refresh()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        with tempfile.TemporaryDirectory(prefix="aqa-kernel-") as sockets:
            papermill.execute_notebook(
                str(src), str(dst), parameters=parameters, cwd=str(src.parent), kernel_name="python3",
                progress_bar=False, kernel_manager_class=_ipc_kernel_manager(sockets),
                shutdown_kernel="immediate", coalesce_streams=True, stderr_file=KernelStderr(live, file),
                on_notebook_start=count_cells, on_cell_complete=lambda **_: cells.update(1))
    finally:
        stop.set()
        ticker.join()
        live.close()
        cells.close()
    _tidy_executed(dst)
    return time.perf_counter() - start


def _shown(path: Path) -> str:
    root = repo_root()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def summary(prof: Profile, seconds: float) -> list[str]:
    """The end of a reproduce: the headline table from ``results/summary.json`` (written from notebook 05's
    evaluation files), LoRA against the base, the rank verdict, the total time and where to look next (each path
    only if it exists)."""
    import pandas as pd

    path = prof.results_dir / "summary.json"
    lines = [f"== summary ({prof.name} profile; accuracy averaged over shuffled option orders, with 95% bootstrap "
             "intervals)"]
    if not path.exists():
        lines.append(f"no evaluation summary at {_shown(path)}")
    else:
        data = json.loads(path.read_text())

        def cell(d: dict) -> str:
            return f"{100 * d['shuffle_mean']:.1f} [{100 * d['ci'][0]:.1f}, {100 * d['ci'][1]:.1f}]"

        rows = {key: {f"{mode} %": cell(e[mode]) for mode in ("score", "generate") if mode in e}
                for key, e in data["systems"].items()}
        lines += pd.DataFrame(rows).T.to_string().splitlines()
        for rank, gains in data["lora_vs_base"].items():
            lines.append(f"LoRA r={rank} minus base (mean over seeds, paired 95% interval): " + ", ".join(
                f"{mode} {100 * g['diff']:+.1f} [{100 * g['ci'][0]:+.1f}, {100 * g['ci'][1]:+.1f}]"
                for mode, g in gains.items()))
        if data.get("rank_verdict"):
            lines.append(f"rank saturation: {data['rank_verdict']}")
        if data.get("lr_sweep"):
            lines.append(f"learning rate {data['lr_sweep']['chosen']:g}, chosen on {data['lr_sweep']['val_split']}")
    lines.append(f"total time: {_duration(seconds)}")
    for what, path in (("results", prof.results_dir / "README.md"), ("goals", prof.results_dir / "goals.md"),
                       ("figures", prof.results_dir / "figures"), ("HTML", prof.results_dir / "html")):
        if path.exists():
            lines.append(f"{what}: {_shown(path)}")
    return lines


def reproduce(profile_name: str = "full") -> int:
    """Run every notebook top to bottom with papermill (04 once per rank); executed copies land in results/."""
    from papermill.exceptions import PapermillExecutionError

    prof = profile(profile_name)
    nb_dir = repo_root() / "notebooks"
    out_dir = prof.results_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    _kernel_environment()
    todo, timings, start = stages(prof), {}, time.perf_counter()
    for n, (name, out_name, params) in enumerate(todo, 1):
        try:
            timings[out_name] = round(run_notebook(nb_dir / name, out_dir / out_name, params,
                                                   f"[{n}/{len(todo)}] {out_name}"), 1)
        except KeyboardInterrupt:
            print(f"\ninterrupted in {out_name}. The same command again reuses every finished stage and continues "
                  "an interrupted training stage from its last checkpoint.", file=sys.stderr)
            return 130
        except PapermillExecutionError as err:  # a cell raised: its traceback, and where the executed copy is
            print(f"\n{err}\n{out_name} failed in cell [{err.exec_count}] ({err.ename}: {err.evalue}); the executed "
                  f"copy up to there: {_shown(out_dir / out_name)}", file=sys.stderr)
            return 1
    (prof.results_dir / "reproduce_timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    from aqa_utils.workbook.report import export_html  # the results, readable without Jupyter

    export_html(prof)
    saved = saved_evaluations(prof, "dev", "score")
    if saved:  # results/summary.json: the headline numbers and the stages' minutes, machine-readable
        minutes = {"total": round((time.perf_counter() - start) / 60, 2),
                   **{Path(name).stem: round(seconds / 60, 2) for name, seconds in timings.items()}}
        write_summary(prof, saved, minutes)
    print("\n".join(summary(prof, time.perf_counter() - start)))
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
    if not prof.real_data:
        lines += ["The miniature's goals, each checked against this run's numbers (measured, bar, met): "
                  "[goals.md](goals.md), written at the end of `make reproduce` from `summary.json`.", ""]
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

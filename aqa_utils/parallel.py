"""Independent jobs side by side: one worker process per core, one torch thread in each job.

Why one thread: torch's CPU kernels split their sums by thread, so the same LoRA run on one and on two threads
differs in the last float bit by step 10 (measured here), and such bits grow into points of accuracy
(``shared/spec/MEASURED_HERE.md``). Every job runs on one thread, alone in the caller's process or beside others
in a worker, so its numbers do not depend on how many cores the machine has or on ``AQA_JOBS``.

Why processes: the studies here are many small runs (ranks x seeds, systems to evaluate) whose kernels use a
second thread poorly, so one job per core does more per second than one job on every core. How much more depends
on the machine: on the 2-core reference machine, about a fifth (the full profile's LoRA runs and evaluations).

Workers are started with ``spawn`` (no forked torch state) and inherit the environment; a job's exception is
raised in the caller, and an interrupt or error stops every worker at once (an interrupted training run resumes
from its last checkpoint next time, as it does without workers).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from typing import Any, Callable, Iterator, Mapping

from aqa_utils.progress import tqdm

ENV = "AQA_JOBS"
"""Most jobs at once (default: the cores this process may use, at most ``DEFAULT_CAP``)."""
DEFAULT_CAP = 4
"""A miniature job holds its clips in memory (about a gigabyte); more at once needs ``AQA_JOBS`` set."""


def workers() -> int:
    """How many jobs run at once: ``AQA_JOBS``, else the cores this process may use (at most ``DEFAULT_CAP``)."""
    value = os.environ.get(ENV)
    if value is not None:
        if not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"{ENV}={value!r}: expected a whole number of jobs >= 1")
        return int(value)
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, min(len(cores), DEFAULT_CAP))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread inside the block (the caller's setting restored after)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _call(job: tuple[str, Callable, tuple]) -> tuple[str, Any]:
    name, fn, args = job
    with one_thread():
        return name, fn(*args)


def run_jobs(fn: Callable, jobs: Mapping[str, tuple], desc: str, progress: bool = True,
             side_by_side: bool = True) -> dict[str, Any]:
    """``fn(*args)`` for every named job, ``workers()`` at a time on one thread each; {name: result} in the order
    of ``jobs``.

    ``fn`` and its arguments must be picklable (a module-level function, plain data). One job, or one worker, runs
    in this process (on one thread too, so with the same numbers). ``side_by_side=False``: one job after another
    in this process, with torch's threads as they are (for jobs that fill a GPU or every core on their own)."""
    names = list(jobs)
    n = min(workers(), len(names)) if side_by_side else 1
    results: dict[str, Any] = {}
    bar = tqdm(total=len(names), desc=f"{desc} ({n} at a time)" if n > 1 else desc,
               disable=not progress or not names)
    try:
        if n <= 1:
            for name in names:
                with one_thread() if side_by_side else contextlib.nullcontext():
                    results[name] = fn(*jobs[name])
                bar.update(1)
        else:
            with _environment(TQDM_DISABLE="1"):  # inherited: the workers' own bars would draw over each other
                pool = multiprocessing.get_context("spawn").Pool(n)
            try:
                for name, result in pool.imap_unordered(_call, [(name, fn, jobs[name]) for name in names]):
                    results[name] = result
                    bar.set_postfix_str(name)
                    bar.update(1)
                pool.close()
            finally:
                pool.terminate()  # after an error or Ctrl-C: no worker goes on writing beside the next attempt
                pool.join()
    finally:
        bar.close()
    return {name: results[name] for name in names}

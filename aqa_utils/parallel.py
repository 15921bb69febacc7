"""Independent jobs side by side: one worker process per core, one torch thread in each job.

Why one thread: torch's CPU kernels split their sums by thread, so the same LoRA run on one and on two threads
differs in the last float bit by step 10 (measured here), and such bits grow into points of accuracy
(``shared/spec/MEASURED_HERE.md``). Every job runs on one thread, alone in the caller's process or beside others
in a worker, so its numbers do not depend on how many cores the machine has or on ``AQA_JOBS``.

Why processes: the studies here are many small runs (ranks x seeds, systems to evaluate) whose kernels use a
second thread poorly, so one job per core does more per second than one job on every core. How much more depends
on the machine: on the 2-core reference machine, about a fifth (the full profile's LoRA runs and evaluations).

How many at once: as many as the cores, except where more processes shorten a study whose jobs take about equally
long (``alike``: a study's runs, not the mini benchmark's parts of very different sizes). 3 such jobs on 2 cores
run as 2 rounds (the third job alone, one core idle) or as 3 processes sharing the 2 cores (1.5 job-lengths, plus
what sharing costs). ``plan`` picks the count with the shortest expected span; each job keeps its one thread, so
its numbers do not change (``benchmarks/oversubscription.py`` measures what the sharing costs).

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
SHARING_COST = 0.15
"""Extra time of each of k > cores one-thread jobs sharing the cores, beyond k / cores: af2-tiny LoRA jobs took 9%
more on the 2-core reference machine (``benchmarks/oversubscription.py``), and the workers' start (importing torch)
is slowed as much and more, so a little above that. The quick profile's real LoRA runs, with their clip and log-mel
caches, paid 17-25% (``results/experiments/lora_gain.md``, eighth session)."""


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def workers(jobs: int | None = None) -> int:
    """How many jobs run at once: ``AQA_JOBS``; else, for ``jobs`` equal jobs, ``plan``'s count on this process's
    cores; else (no count given) the cores, at most ``DEFAULT_CAP``."""
    value = os.environ.get(ENV)
    if value is not None:
        if not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"{ENV}={value!r}: expected a whole number of jobs >= 1")
        return int(value)
    if jobs is not None:
        return plan(jobs, cores(), DEFAULT_CAP)
    return max(1, min(cores(), DEFAULT_CAP))


def span(jobs: int, processes: int, cores: int, sharing_cost: float = SHARING_COST) -> float:
    """Expected wall time, in job-lengths, of ``jobs`` equal one-thread jobs run ``processes`` at a time on
    ``cores`` cores: a round of k <= cores processes takes 1, of k > cores (sharing the cores) k / cores times
    1 + ``sharing_cost``."""
    def round_time(k: int) -> float:
        return 1.0 if k <= cores else k / cores * (1 + sharing_cost)

    full, rest = divmod(jobs, processes)
    return full * round_time(processes) + (round_time(rest) if rest else 0.0)


def plan(jobs: int, cores: int, cap: int) -> int:
    """The number of processes, 1 to ``cap`` (never more than ``jobs``), with the shortest ``span``; the fewest on
    a tie. E.g. on 2 cores: 3 jobs -> 3 at once (1.5 lengths plus the sharing cost, not 2); 4 -> 2; 9 -> 2 (4.5
    lengths plus the sharing cost is not less than 5)."""
    if jobs < 1:
        return 1
    counts = range(1, max(1, min(cap, jobs)) + 1)
    return min(counts, key=lambda n: (span(jobs, n, cores), n))


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
             side_by_side: bool = True, alike: bool = False) -> dict[str, Any]:
    """``fn(*args)`` for every named job, ``workers()`` at a time on one thread each (``alike``: jobs that take
    about equally long, such as a study's runs, ``workers(len(jobs))``, which may share the cores); {name: result}
    in the order of ``jobs``.

    ``fn`` and its arguments must be picklable (a module-level function, plain data). One job, or one worker, runs
    in this process (on one thread too, so with the same numbers). ``side_by_side=False``: one job after another
    in this process, with torch's threads as they are (for jobs that fill a GPU or every core on their own)."""
    names = list(jobs)
    n = min(workers(len(names) if alike else None), len(names)) if side_by_side else 1
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
            except BaseException:
                pool.terminate()  # after an error or Ctrl-C: no worker goes on writing beside the next attempt
                pool.join()
                raise
            # Every job is done: the workers exit on their own. Terminating them here too (as before) raced workers
            # already exiting, a known way for Pool.terminate to hang (CPython issue 96995). The error path above
            # keeps it: once, with the cores overloaded, it hung there (test_a_failing_job_raises_in_the_caller).
            pool.close()
            pool.join()
    finally:
        bar.close()
    return {name: results[name] for name in names}

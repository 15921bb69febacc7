"""Jobs side by side (aqa_utils.parallel): results in order, one torch thread in every job wherever it runs, errors
reach the caller, and work written by workers is byte for byte what one process writes."""

import multiprocessing
import os

import pytest
import torch

from aqa_utils.data.mini import make_mini_benchmark
from aqa_utils import parallel
from aqa_utils.parallel import ENV, one_thread, plan, run_jobs, span, workers

TINY = dict(n_train=6, n_dev=6, n_eval=3, n_captions_train=4, n_captions_dev=2)


def files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_workers_reads_the_environment(monkeypatch):
    monkeypatch.setenv(ENV, "3")
    assert workers() == 3
    monkeypatch.delenv(ENV)
    assert workers() >= 1
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(ENV, bad)
        with pytest.raises(ValueError, match=ENV):
            workers()


def test_plan_shares_cores_only_where_that_shortens_the_study():
    # 2 cores: an odd number of jobs leaves one core idle for the last round; sharing pays only for few rounds
    assert [plan(j, 2, 4) for j in range(1, 11)] == [1, 2, 3, 2, 3, 2, 2, 2, 2, 2]
    assert span(3, 3, 2, sharing_cost=0) == 1.5 and span(3, 2, 2) == 2.0 and span(9, 2, 2) == 5.0
    assert span(3, 3, 2, sharing_cost=0.2) == pytest.approx(1.8) and span(9, 3, 2, sharing_cost=0) == 4.5
    assert plan(3, 2, 2) == 2  # the memory cap holds
    assert plan(5, 1, 4) == 1  # one core: sharing it gains nothing, so no extra processes
    assert plan(6, 4, 4) == 3 and plan(0, 2, 4) == 1


def test_workers_plans_for_the_study_unless_told(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    assert (workers(), workers(3), workers(4), workers(9)) == (2, 3, 2, 2)
    monkeypatch.setenv(ENV, "2")
    assert workers(3) == 2


def test_one_thread_restores_the_callers_setting():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_every_job_runs_on_one_thread_and_results_keep_the_order(monkeypatch, jobs):
    monkeypatch.setenv(ENV, jobs)
    names = ["c", "a", "b"]
    threads = run_jobs(torch.get_num_threads, {n: () for n in names}, desc="threads", progress=False)
    assert list(threads) == names and set(threads.values()) == {1}
    pids = run_jobs(os.getpid, {n: () for n in names}, desc="pids", progress=False)
    # one job at a time runs here; two at a time run in worker processes
    assert (set(pids.values()) == {os.getpid()}) == (jobs == "1")
    assert not multiprocessing.active_children()  # the workers have exited and been joined, not left running


def test_a_failing_job_raises_in_the_caller(monkeypatch):
    monkeypatch.setenv(ENV, "2")
    with pytest.raises(ValueError, match="invalid literal"):
        run_jobs(int, {"fine": ("3",), "bad": ("three",)}, desc="ints", progress=False)


def test_workers_write_the_same_mini_benchmark_as_one_process(monkeypatch, tmp_path):
    written = {}
    for jobs in ("1", "2"):
        monkeypatch.setenv(ENV, jobs)
        written[jobs] = files(make_mini_benchmark(tmp_path / jobs, seed=0, progress=False, **TINY))
    assert written["1"] == written["2"] and any(p.suffix == ".wav" for p in written["1"])

"""What sharing cores costs: N equal one-thread LoRA jobs run ``processes`` at a time, for each process count.

``aqa_utils.parallel.plan`` starts more processes than cores where that shortens a study (3 jobs on 2 cores: 3
processes sharing the cores instead of two rounds with one core idle). Its model charges k > cores processes
sharing the cores ``parallel.SHARING_COST`` on top of k / cores (context switches, caches). This measures it:
each job's own time (after its worker's imports) under each count, against its time with a core of its own, and
the wall time of the whole study (imports included).

A job is what the workbook's LoRA runs do on one thread: af2-tiny from random weights with LoRA r=8 on all three
components, ``--steps`` AdamW steps on a synthetic batch from the waveforms (``common.synthetic_batch``). The counts
take turns ``--repeats`` times (a load change on this shared machine hits each alike).

    .venv/bin/python benchmarks/oversubscription.py              # ~3 min on 2 cores
    .venv/bin/python benchmarks/oversubscription.py --quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import common  # noqa: F401
import torch
from common import add_common_args, apply_common_args, out_dir_for, quiet_warnings, synthetic_batch, write_result

from aqa_utils import parallel
from aqa_utils.config import LoraSettings, ModelConfig
from aqa_utils.lora import apply_lora
from aqa_utils.model import build_model


def lora_job(steps: int, batch_size: int, seed: int) -> float:
    """``steps`` LoRA r=8 steps of af2-tiny on one thread; returns the job's own wall time (s)."""
    start = time.perf_counter()
    cfg = ModelConfig.preset("af2-tiny")
    batch = synthetic_batch(cfg, batch_size, 1, 64, 12, seed=seed)
    torch.manual_seed(seed)
    with quiet_warnings():
        model = apply_lora(build_model(cfg), LoraSettings(rank=8)).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    for _ in range(steps):
        loss = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"], windows=batch["windows"],
                     window_mask=batch["window_mask"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def run(jobs: int, processes: int, steps: int, batch_size: int) -> tuple[float, list[float]]:
    """Wall time of ``jobs`` jobs, ``processes`` at a time, and each job's own time."""
    os.environ[parallel.ENV] = str(processes)
    start = time.perf_counter()
    times = parallel.run_jobs(lora_job, {f"job{i}": (steps, batch_size, i) for i in range(jobs)},
                              desc=f"{jobs} jobs, {processes} at a time", progress=False, alike=True)
    return time.perf_counter() - start, list(times.values())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=3, help="equal jobs in the study (default 3, the quick profile's)")
    p.add_argument("--steps", type=int, default=150, help="LoRA steps per job (default 150, ~45 s on one thread)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--repeats", type=int, default=1)
    add_common_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.batch_size = 3, 1, 2
    load_before = apply_common_args(args)
    cores = parallel.cores()
    counts = sorted({min(cores, args.jobs), parallel.plan(args.jobs, cores, parallel.DEFAULT_CAP)})
    walls: dict[int, list[float]] = {n: [] for n in counts}
    job_times: dict[int, list[float]] = {n: [] for n in counts}
    before = os.environ.get(parallel.ENV)
    try:
        for _ in range(args.repeats):
            for n in counts:
                wall, times = run(args.jobs, n, args.steps, args.batch_size)
                walls[n].append(wall)
                job_times[n].extend(times)
                print(f"{args.jobs} jobs, {n} at a time: {wall:.1f} s", file=sys.stderr)
    finally:
        if before is None:
            os.environ.pop(parallel.ENV, None)
        else:
            os.environ[parallel.ENV] = before
    # A job's own time starts after its worker has imported torch: one job per core gives the job's length, and
    # k > cores jobs sharing the cores should each take k / cores lengths; the excess is the cost of sharing.
    length = statistics.median(job_times[min(counts)])
    results = {}
    for n in counts:
        shared = statistics.median(job_times[n])
        results[str(n)] = {"processes": n, "wall_s": walls[n], "median_wall_s": statistics.median(walls[n]),
                           "median_job_s": shared, "model_span_job_lengths": parallel.span(args.jobs, n, cores),
                           "sharing_cost": shared / (length * max(n, cores) / cores) - 1}
    if len(counts) == 2:
        results["speedup_of_plan"] = results[str(counts[0])]["median_wall_s"] / results[str(counts[1])]["median_wall_s"]
    settings = {"jobs": args.jobs, "steps": args.steps, "batch_size": args.batch_size, "repeats": args.repeats,
                "cores": cores, "plan": parallel.plan(args.jobs, cores, parallel.DEFAULT_CAP), "model": "af2-tiny",
                "job_length_s": length, "assumed_sharing_cost": parallel.SHARING_COST}
    path = write_result("oversubscription", settings, results, load_before=load_before, out_dir=out_dir_for(args))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared helpers of the benchmarks: machine description, timing, peak memory, result files.

Every benchmark writes ``results/bench/<name>.json``: ``{"benchmark", "machine", "settings", "results", "notes"}``.
The payload carries no timestamp (re-running on the same machine changes only the measured numbers), but it does
record what the numbers depend on: CPU model, cores, torch version, device and the load average around the run
(the reference machine is shared, so timings are noisy: medians of repeats are reported).

Peak memory:
- CUDA: ``torch.cuda.max_memory_allocated`` (tensor memory; the CUDA context and allocator cache come on top).
- CPU: the kernel's resident-set high-water mark (``VmHWM``), reset through ``/proc/self/clear_refs`` before the
  measured region, minus the resident set at its start. glibc keeps freed heap memory mapped, which would hide a
  second step's activations behind the first's, so ``cpu_memory_mode()`` first pins glibc's mmap threshold (every
  allocation over 64 KiB is its own mapping, returned to the kernel when freed). That makes allocation slower, so
  timed runs happen before it is switched on.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "bench"
if str(ROOT) not in sys.path:  # run as `python benchmarks/<name>.py` from anywhere
    sys.path.insert(0, str(ROOT))
BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import aqa_utils  # noqa: E402,F401  (sets the offline switches before laion_clap can be imported)
import torch  # noqa: E402

from aqa_utils.config import SPECIAL_TOKENS  # noqa: E402

MiB = 1024**2
GiB = 1024**3


# --- machine ------------------------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def git_head() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    device = torch.device(device)
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "git_head": git_head(),
    }
    try:
        import peft
        import transformers

        info["transformers"], info["peft"] = transformers.__version__, peft.__version__
    except ImportError:
        pass
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / GiB, 1)
        info["cuda"] = torch.version.cuda
    return info


def wait_for_quiet(max_wait_s: float, threshold: float | None = None, poll_s: float = 5.0) -> list[float] | None:
    """Wait (at most ``max_wait_s``) until the 1-minute load average is below ``threshold`` (default: cores).

    The reference machine is shared with other people's test runs; this starts a benchmark in a quieter moment.
    Returns the load average when it starts.
    """
    threshold = threshold if threshold is not None else float(os.cpu_count() or 1)
    deadline = time.monotonic() + max_wait_s
    while max_wait_s > 0 and time.monotonic() < deadline:
        load = load_average()
        if load is None or load[0] < threshold:
            break
        time.sleep(poll_s)
    return load_average()


# --- timing -------------------------------------------------------------------------------------------------------

def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_call(fn: Callable[[], Any], device: torch.device | str = "cpu") -> tuple[float, Any]:
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def summarise(times: list[float]) -> dict[str, Any]:
    """Median (the number reported), min, max and the raw samples, in seconds."""
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "samples_s": [round(t, 4) for t in times]}


def linear_fit(x: list[float], y: list[float]) -> dict[str, float]:
    """Least squares y = a + b x, with R^2."""
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((xi - mx) ** 2 for xi in x)
    b = sum((xi - mx) * (yi - my) for xi, yi in zip(x, y)) / sxx if sxx else 0.0
    a = my - b * mx
    ss_tot = sum((yi - my) ** 2 for yi in y)
    ss_res = sum((yi - a - b * xi) ** 2 for xi, yi in zip(x, y))
    return {"a": a, "b": b, "r2": 1 - ss_res / ss_tot if ss_tot else 1.0}


# --- memory -------------------------------------------------------------------------------------------------------

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_cpu_memory_mode = False


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def cpu_memory_mode() -> bool:
    """Make the resident set follow live allocations (see the module docstring). Returns whether it could."""
    global _cpu_memory_mode
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024) == 1
    libc.malloc_trim(0)
    _cpu_memory_mode = ok
    return ok


def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """``with PeakMemory(device) as m: ...`` -> ``m.peak_bytes`` above the start, ``m.start_bytes``, ``m.method``."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.start_bytes = self.peak_bytes = 0
        self.method = ""

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_bytes = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated - memory_allocated at start"
        else:
            libc = _libc()
            if libc is not None:
                libc.malloc_trim(0)
            reset = _reset_peak_rss()
            self.start_bytes = (_status_kib("VmRSS") or 0) * 1024
            self.method = ("VmHWM (reset via /proc/self/clear_refs) - VmRSS at start"
                           + (", glibc mmap threshold pinned at 64 KiB" if _cpu_memory_mode else
                              ", glibc defaults (freed heap memory may hide reuse)")
                           + ("" if reset else "; WARNING: peak could not be reset"))
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self.start_bytes
        else:
            self.peak_bytes = (_status_kib("VmHWM") or 0) * 1024 - self.start_bytes


def rss_bytes() -> int:
    return (_status_kib("VmRSS") or 0) * 1024


# --- inputs -------------------------------------------------------------------------------------------------------

def synthetic_batch(cfg, batch: int, windows: int, text_len: int, label_len: int, device="cpu",
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """Random audio windows (B, L, S) in [-0.5, 0.5], all valid; random ids (B, T) below the specials; labels on
    the last ``label_len`` tokens (-100 elsewhere), as the collator would mark an answer."""
    g = torch.Generator().manual_seed(seed)
    S = cfg.audio.window_samples
    ids = torch.randint(0, cfg.lm.vocab_size - SPECIAL_TOKENS, (batch, text_len), generator=g)
    labels = torch.full_like(ids, -100)
    labels[:, -label_len:] = ids[:, -label_len:]
    return {
        "windows": (torch.rand(batch, windows, S, generator=g) - 0.5).to(device),
        "window_mask": torch.ones(batch, windows, dtype=torch.bool, device=device),
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "labels": labels.to(device),
    }


# --- results ------------------------------------------------------------------------------------------------------

def _jsonable(obj: Any, digits: int = 6) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, digits) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, (torch.device, torch.dtype, Path)):
        return str(obj)
    if hasattr(obj, "item"):
        return _jsonable(obj.item(), digits)
    return str(obj)


def write_result(name: str, settings: dict[str, Any], results: dict[str, Any], device: torch.device | str = "cpu",
                 notes: list[str] | None = None, load_before: list[float] | None = None,
                 out_dir: Path | None = None) -> Path:
    """Write ``results/bench/<name>.json`` (or under ``out_dir``) and return its path."""
    machine = machine_info(device)
    machine["load_average_before"] = load_before
    machine["load_average_after"] = load_average()
    payload = {"benchmark": name, "machine": machine, "settings": settings, "results": results,
               "notes": notes or []}
    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
    return path


def add_common_args(parser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="fast smoke run with small sizes; writes under work/bench/ (not the committed record)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                        help="wait up to S seconds for the 1-min load average to drop below the core count")
    parser.add_argument("--out-dir", type=Path, default=None, help=f"where to write the JSON (default {RESULTS})")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def apply_common_args(args) -> list[float] | None:
    if args.threads:
        torch.set_num_threads(args.threads)
    return wait_for_quiet(args.wait_quiet)


def out_dir_for(args) -> Path:
    """--out-dir if given; work/bench/ (git-ignored) for --quick smoke runs; else results/bench/."""
    if getattr(args, "out_dir", None) is not None:
        return Path(args.out_dir)
    return ROOT / "work" / "bench" if getattr(args, "quick", False) else RESULTS


def rel(path: Path | str) -> str:
    """A path relative to the repository root when it lies inside it (keeps result files machine-independent)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def fmt_mib(n: float) -> str:
    return f"{n / MiB:.1f} MiB"


@contextmanager
def quiet_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


if __name__ == "__main__":  # `make bench` runs every benchmarks/*.py, this one included: describe the machine
    print(json.dumps(machine_info(), indent=2))

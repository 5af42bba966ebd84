"""Timing and memory helpers for benchmarks: median and spread over repeats, warm-up, thread control.

    t = time_fn(fn, repeats=5, warmup=1)      # Timing(median, iqr, min, max, times)
    with num_threads(2): ...                  # torch.set_num_threads for a block, restored after
    peak, out = peak_rss(fn)                  # sampled peak resident memory (MiB) while fn runs
    machine_info()                            # cores, CPU model, torch / python versions

Timings are wall-clock (``time.perf_counter``) around a full call; CUDA work is synchronised before each
reading. The spread is the interquartile range (and min / max) of the repeats.

Example:
    >>> t = time_fn(lambda: sum(range(1000)), repeats=3, warmup=1)
    >>> len(t.times), t.min <= t.median <= t.max
    (3, True)
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch

__all__ = ["Timing", "time_fn", "num_threads", "peak_rss", "current_rss_mb", "max_rss_mb", "machine_info"]


@dataclass
class Timing:
    """Seconds per call over ``len(times)`` repeats."""

    median: float
    q25: float
    q75: float
    min: float
    max: float
    times: list[float]

    @property
    def iqr(self) -> float:
        return self.q75 - self.q25

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "iqr": self.iqr, "repeats": len(self.times)}

    def __str__(self) -> str:
        return f"{self.median:.4g} s (IQR {self.iqr:.2g}, n={len(self.times)})"


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_fn(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; median and quartiles."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync()
        t0 = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t0)
    if len(times) >= 2:
        q = statistics.quantiles(times, n=4, method="inclusive")
        q25, q75 = q[0], q[2]
    else:
        q25 = q75 = times[0]
    return Timing(statistics.median(times), q25, q75, min(times), max(times), times)


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)`` (None: unchanged); restores the old value."""
    old = torch.get_num_threads()
    if n is not None:
        if n < 1:
            raise ValueError(f"the number of threads must be >= 1, got {n}")
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def current_rss_mb() -> float:
    """Resident memory of this process now (MiB), from /proc (0 where unavailable)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return 0.0


def max_rss_mb() -> float:
    """Peak resident memory of this process over its lifetime (MiB; ``getrusage``)."""
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if platform.system() != "Darwin" else kb / 2**20


def peak_rss(fn: Callable[[], Any], interval: float = 0.002) -> tuple[dict[str, float], Any]:
    """Run ``fn`` while sampling resident memory every ``interval`` s.

    Returns ``({"peak_mb", "baseline_mb", "delta_mb"}, fn())``; ``delta_mb`` is the extra memory ``fn``
    needed above what the process held before (a sampled lower bound of the true peak).
    """
    base = current_rss_mb()
    peak = [base]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], current_rss_mb())
            stop.wait(interval)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    try:
        out = fn()
    finally:
        stop.set()
        th.join()
    peak[0] = max(peak[0], current_rss_mb())
    return {"peak_mb": peak[0], "baseline_mb": base, "delta_mb": peak[0] - base}, out


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: cores, threads, CPU model, load, torch / python versions."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average": load,
    }

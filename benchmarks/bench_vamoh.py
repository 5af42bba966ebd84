"""VaMoH speed and memory on the ``vamoh-polymnist`` sizes (Table 3), on CPU threads.

Reports (median and spread over repeated runs):

- training throughput, images/s, at batch 64 (one Adam step = point dropout, encode, the ELBO of Eq. 16,
  backward; random 28x28 RGB images, so data loading is not timed);
- reconstruction, ms per image, batched (encode + decode at every pixel, no gradients; the paper measured
  4.53 ms per image on a V100, Table 2);
- decoding cost per point at 1x, 2x and 4x the resolution (linear in the number of points: nothing is
  quadratic in the points of an item when a batch shares its coordinates);
- peak resident memory of the process (``resource.getrusage``).

Usage::

    python benchmarks/bench_vamoh.py [--quick] [--out benchmarks/results] [--threads 2]

``run(quick, out_dir)`` does the same from Python and returns the results dict; it writes
``bench_vamoh.json`` and ``bench_vamoh.md`` into ``out_dir``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from inrgen import coords as C
from inrgen.configs import get_preset
from inrgen.data.points import PointSet
from inrgen.models.vamoh import VaMoH

__all__ = ["run"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def _summary(xs: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(xs),
        "min": min(xs),
        "max": max(xs),
        "spread_pct": 100.0 * (max(xs) - min(xs)) / statistics.median(xs),
        "runs": len(xs),
    }


def _images(n: int, size: int = 28, channels: int = 3, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), generator=g).float() / 255


def bench_training(model: VaMoH, batch: int, steps: int, repeats: int) -> dict[str, Any]:
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ps = PointSet.from_image(_images(batch))
    step = 0

    def one() -> None:
        nonlocal step
        opt.zero_grad(set_to_none=True)
        model.loss(ps, step)["loss"].backward()
        opt.step()
        step += 1

    for _ in range(2):  # warm-up (allocator, first-call overheads)
        one()
    rates, cpu_rates = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        for _ in range(steps):
            one()
        rates.append(batch * steps / (time.perf_counter() - t))
        cpu_rates.append(batch * steps / (time.process_time() - c))
    return {
        "images_per_s": _summary(rates),
        "images_per_cpu_s": _summary(cpu_rates),
        "batch": batch,
        "steps_per_run": steps,
    }


@torch.no_grad()
def bench_reconstruction(model: VaMoH, batch: int, repeats: int) -> dict[str, Any]:
    model.eval()
    ps = PointSet.from_image(_images(batch, seed=1))
    model.decode(model.encode(ps), ps.coords)  # warm-up (and the geometry cache, as in any eval loop)
    ms, cpu_ms = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        model.decode(model.encode(ps), ps.coords)
        ms.append(1000 * (time.perf_counter() - t) / batch)
        cpu_ms.append(1000 * (time.process_time() - c) / batch)
    # the same without the geometry cache: centroids and neighbourhoods recomputed for the batch
    cold = []
    for _ in range(repeats):
        model.encoder._cache = None
        t = time.perf_counter()
        model.decode(model.encode(ps), ps.coords)
        cold.append(1000 * (time.perf_counter() - t) / batch)
    return {
        "ms_per_image": _summary(ms),
        "cpu_ms_per_image": _summary(cpu_ms),
        "ms_per_image_uncached_geometry": _summary(cold),
        "batch": batch,
    }


@torch.no_grad()
def bench_decode_scaling(model: VaMoH, batch: int, repeats: int) -> dict[str, Any]:
    model.eval()
    ps = PointSet.from_image(_images(batch, seed=2))
    z = model.encode(ps).mean
    out = {}
    for factor in (1, 2, 4):
        xy = C.grid((28 * factor, 28 * factor)).unsqueeze(0).expand(batch, -1, -1)
        model.decode(z, xy)
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            model.decode(z, xy)
            ts.append(time.perf_counter() - t)
        n = xy.shape[1]
        out[f"x{factor}"] = {"points": n, "us_per_point_per_image": 1e6 * statistics.median(ts) / (n * batch)}
    return out


def run(quick: bool = True, out_dir: Path | str = Path("benchmarks/results"), threads: int = 2) -> dict:
    """Run the benchmark with ``threads`` CPU threads (and with 1 thread, whose CPU time estimates an idle
    core on a shared machine); write ``bench_vamoh.json`` / ``bench_vamoh.md`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    preset = get_preset("vamoh-polymnist")
    steps, repeats = (3, 3) if quick else (10, 5)
    results: dict[str, Any] = {
        "preset": preset.name,
        "threads": threads,
        "quick": quick,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "load_average_start": list(_loadavg()),
        "peak_rss_mb_at_start": _peak_rss_mb(),
        "runs": {},
    }
    before = torch.get_num_threads()
    try:
        for t in sorted({threads, 1}, reverse=True):
            torch.set_num_threads(t)
            torch.manual_seed(0)
            model = VaMoH(preset.model_config)
            results["parameters"] = model.num_parameters()
            c0, w0 = time.process_time(), time.perf_counter()
            r: dict[str, Any] = {"training": bench_training(model, 64, steps, repeats)}
            r["reconstruction"] = bench_reconstruction(model, 64, max(repeats, 5))
            r["decode_scaling"] = bench_decode_scaling(model, 16, 3)
            r["cpu_over_wall"] = (time.process_time() - c0) / (time.perf_counter() - w0)
            results["runs"][str(t)] = r
    finally:
        torch.set_num_threads(before)
    results["peak_rss_mb"] = _peak_rss_mb()
    results["load_average_end"] = list(_loadavg())
    (out_dir / "bench_vamoh.json").write_text(json.dumps(results, indent=2))
    (out_dir / "bench_vamoh.md").write_text(_markdown(results))
    return results


def _loadavg() -> tuple[float, float, float]:
    try:
        import os

        return os.getloadavg()
    except OSError:  # pragma: no cover
        return (float("nan"),) * 3


def _row(name: str, x: dict[str, float], fmt: str = ".2f") -> str:
    return (
        f"| {name} | {x['median']:{fmt}} | {x['min']:{fmt}} | {x['max']:{fmt}} | {x['spread_pct']:.0f}% "
        f"| {x['runs']} |"
    )


def _markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# VaMoH benchmark ({r['preset']}, {r['parameters']:,} parameters, torch {r['torch']})",
        "",
        f"Load average at start {r['load_average_start'][0]:.1f}, at end {r['load_average_end'][0]:.1f}. "
        "CPU-time rows count the process's CPU seconds over all threads; with 1 thread they estimate an "
        "idle core when the machine is shared. Paper (Table 2, one V100): 4.53 ms per PolyMNIST "
        "reconstruction.",
        "",
    ]
    for t, run in r["runs"].items():
        tr, rc = run["training"], run["reconstruction"]
        lines += [
            f"## {t} CPU thread(s) (process CPU time / wall time {run['cpu_over_wall']:.2f})",
            "",
            "| measure | median | min | max | spread | runs |",
            "|---|---|---|---|---|---|",
            _row("training, images/s (batch 64)", tr["images_per_s"]),
            _row("training, images per CPU-second", tr["images_per_cpu_s"]),
            _row("reconstruction, ms/image (batch 64)", rc["ms_per_image"]),
            _row("reconstruction, CPU ms/image", rc["cpu_ms_per_image"]),
            _row("reconstruction, geometry recomputed, ms/image", rc["ms_per_image_uncached_geometry"]),
            "",
            "| decode resolution | points | us per point per image |",
            "|---|---|---|",
        ]
        for k, v in run["decode_scaling"].items():
            lines.append(f"| {k} | {v['points']} | {v['us_per_point_per_image']:.3f} |")
        lines.append("")
    lines += [f"Peak RSS: {r['peak_rss_mb']:.0f} MB (at start {r['peak_rss_mb_at_start']:.0f} MB).", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    res = run(args.quick, args.out, args.threads)
    print(_markdown(res))


if __name__ == "__main__":
    main()

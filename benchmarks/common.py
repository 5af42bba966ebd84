"""Shared pieces of the benchmark suite: budgets, a training loop, held-out PSNR, caching, outputs.

Training protocol (the same as ``bench_laginr.py``, so numbers from the two files can sit in one table):
plain Adam with the preset's learning rate, betas and batch size, on random batches drawn with a seeded
generator, for a budget of *process CPU seconds* (``time.process_time``) with one torch thread. CPU time
keeps the comparison fair on a shared machine; steps and wall seconds are reported too. Trained models
are cached under ``benchmarks/cache/<key>/`` (an inrgen checkpoint plus ``train_stats.json``) and reused
when the preset, overrides, budget and seed match.

Profiles: ``quick`` (``make bench-quick``), ``full`` (``make bench``) and ``tiny`` (set by
``python -m benchmarks.run --tiny`` through ``INRGEN_BENCH_TINY=1``; seconds, for the test suite).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from inrgen.configs import get_preset
from inrgen.configs.base import Preset, config_to_dict
from inrgen.data.points import PointSet
from inrgen.metrics.psnr import psnr
from inrgen.metrics.timing import Timing, machine_info
from inrgen.models import build_model
from inrgen.models.base import INRModel
from inrgen.tasks import decode_chunked

__all__ = [
    "CACHE",
    "RESULTS",
    "TINY_ENV",
    "Profile",
    "profile",
    "build",
    "load_images",
    "train_for",
    "train_cached",
    "heldout_psnr",
    "psnr_items",
    "reconstruct_mean",
    "fmt_timing",
    "md_table",
    "write_outputs",
    "machine_info",
    "fit_exponent",
]

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / "cache"
RESULTS = ROOT / "results"
TINY_ENV = "INRGEN_BENCH_TINY"


@dataclasses.dataclass(frozen=True)
class Profile:
    """How much work a benchmark run does."""

    name: str  # "tiny" | "quick" | "full"
    train_cpu_s: float  # training budget per model (process CPU seconds, one thread)
    n_test: int  # held-out items for PSNR
    repeats: int  # timed repeats of fast calls
    slow_repeats: int  # timed repeats of calls that take seconds (Functa at paper size)
    timing_batch: int  # items per timed reconstruction call
    paper_sizes: bool  # time the paper-sized models (False: the CPU presets)
    scaling_sizes: tuple[tuple[int, int], ...]  # grids for the scaling benchmark (256 .. 16k points)
    render_size: int  # side of the rendered image (1024 in quick and full)


PROFILES = {
    "tiny": Profile("tiny", 1.0, 8, 1, 1, 1, False, ((16, 16), (16, 32)), 64),
    "quick": Profile("quick", 40.0, 256, 3, 2, 1, True, ((16, 16), (32, 32), (64, 64), (128, 128)), 1024),
    "full": Profile(
        "full",
        600.0,
        500,
        7,
        5,
        4,
        True,
        ((16, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)),
        1024,
    ),
}


def profile(quick: bool) -> Profile:
    """The profile of this run: ``tiny`` when ``INRGEN_BENCH_TINY=1``, else quick or full."""
    if os.environ.get(TINY_ENV, "") not in ("", "0"):
        return PROFILES["tiny"]
    return PROFILES["quick" if quick else "full"]


def build(
    preset_name: str, overrides: dict[str, Any] | None = None, seed: int = 0
) -> tuple[INRModel, Preset]:
    """The model of a preset with model-config ``overrides`` (seeded initialisation)."""
    preset = get_preset(preset_name)
    cfg = dataclasses.replace(preset.model_config, **overrides) if overrides else preset.model_config
    torch.manual_seed(seed)
    return build_model(preset.model, cfg), dataclasses.replace(preset, model_config=cfg)


def load_images(source: str, split: str, n: int | None = None, **options: Any) -> Tensor:
    """``n`` items of a grid data source as ``(n, C, H, W)``, evenly spread over the split (item ``j`` is
    ``floor(j N / n)``: the MNIST splits are stored in class order, so the first ``n`` would miss classes)."""
    from inrgen.data.datasets import build_dataset

    ds = build_dataset(source, split=split, **options)
    return ds.arrays(spread(len(ds), n))


def spread(total: int, n: int | None) -> list[int]:
    """``n`` indices evenly spread over ``range(total)`` (all of them when ``n`` is None or too large)."""
    n = total if n is None else min(n, total)
    return [(j * total) // n for j in range(n)]


def train_for(
    model: INRModel, preset: Preset, images: Tensor, budget_cpu_s: float, seed: int = 0
) -> dict[str, float]:
    """Adam on random batches of ``images`` until ``budget_cpu_s`` process CPU seconds are spent."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=preset.train.lr, betas=tuple(preset.train.betas))
    model.train()
    steps, losses = 0, []
    c0, w0 = time.process_time(), time.perf_counter()
    while time.process_time() - c0 < budget_cpu_s:
        idx = torch.randint(0, len(images), (preset.data.batch_size,), generator=g)
        out = model.loss(PointSet.from_image(images[idx]), steps)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
        steps += 1
    model.eval()
    tail = losses[-20:] or [float("nan")]
    return {
        "steps": steps,
        "cpu_s": time.process_time() - c0,
        "wall_s": time.perf_counter() - w0,
        "first_loss": losses[0] if losses else float("nan"),
        "final_loss": sum(tail) / len(tail),
    }


def _key(preset: Preset, budget: float, seed: int, data: str) -> str:
    blob = json.dumps(
        {"model": preset.model, "config": config_to_dict(preset.model_config), "budget": budget, "seed": seed,
         "data": data, "lr": preset.train.lr, "batch": preset.data.batch_size},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def train_cached(
    name: str,
    preset: Preset,
    model: INRModel,
    images: Tensor,
    budget_cpu_s: float,
    data: str,
    seed: int = 0,
    use_cache: bool = True,
) -> tuple[INRModel, dict[str, Any]]:
    """:func:`train_for`, or the checkpoint a run with the same settings left in ``benchmarks/cache``."""
    folder = CACHE / f"{name}-{_key(preset, budget_cpu_s, seed, data)}"
    stats_file = folder / "train_stats.json"
    if use_cache and stats_file.is_file():
        try:
            loaded = INRModel.from_pretrained(folder).eval()
            stats = json.loads(stats_file.read_text())
            stats["cached"] = True
            return loaded, stats
        except Exception as err:  # a stale or broken cache entry: train again
            print(f"  cache {folder.name} unusable ({err}); training again")
    stats = train_for(model, preset, images, budget_cpu_s, seed)
    stats.update({"budget_cpu_s": budget_cpu_s, "preset": preset.name, "data": data, "seed": seed})
    if use_cache:
        model.save_pretrained(folder)
        stats_file.write_text(json.dumps(stats, indent=2))
    stats["cached"] = False
    return model, stats


def reconstruct_mean(model: INRModel, ps: PointSet, chunk: int = 65536) -> Tensor:
    """``decode(encode(points), points.coords).mean`` (encoders that adapt enable gradients themselves)."""
    with torch.no_grad():
        latent = model.encode(ps)
        return decode_chunked(model, latent, ps.coords, chunk).mean


def psnr_items(model: INRModel, images: Tensor, batch: int = 64) -> tuple[Tensor, Tensor]:
    """Per-image PSNR of the reconstructions of ``images (n, C, H, W)``: ``(unclamped, clamped)``."""
    raw, clamped = [], []
    for s in range(0, len(images), batch):
        ps = PointSet.from_image(images[s : s + batch])
        pred = reconstruct_mean(model, ps)
        raw.append(psnr(pred, ps.values))
        clamped.append(psnr(pred, ps.values, clamp=True))
    return torch.cat(raw), torch.cat(clamped)


def heldout_psnr(model: INRModel, images: Tensor, batch: int = 64) -> dict[str, Any]:
    """Mean (and spread) over items of the per-image PSNR of reconstructions, unclamped and clamped."""
    r, c = psnr_items(model, images, batch)
    return {
        "psnr": float(r.mean()),
        "psnr_std": float(r.std()) if len(r) > 1 else 0.0,
        "psnr_clamped": float(c.mean()),
        "n": len(r),
    }


def fit_exponent(sizes: Sequence[float], times: Sequence[float]) -> float:
    """Least-squares slope of ``log t`` against ``log n`` (``t ~ n^slope``)."""
    x = torch.tensor([float(s) for s in sizes], dtype=torch.float64).log()
    y = torch.tensor([float(t) for t in times], dtype=torch.float64).log()
    if len(x) < 2:
        return float("nan")
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / xc.pow(2).sum())


def fmt_timing(t: Timing | dict[str, Any], scale: float = 1.0, unit: str = "s") -> str:
    """``median (IQR q25-q75)`` of a timing, times ``scale``."""
    d = t.to_dict() if isinstance(t, Timing) else t
    m, lo, hi = d["median"] * scale, d["q25"] * scale, d["q75"] * scale
    return f"{m:.4g} {unit} ({lo:.3g}-{hi:.3g}, n={d['repeats']})"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    out = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def write_outputs(out_dir: Path, name: str, results: dict[str, Any], markdown: str) -> None:
    """``out_dir/<name>.json`` and ``out_dir/<name>.md``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))
    (out_dir / f"{name}.md").write_text(markdown.rstrip() + "\n")

"""Locality-aware INR vs its ablations, IPC and TransINR at CPU scale; decode speed and render memory.

1. Quality at equal compute (LA-GINR Tables 1 and 3 at small scale): ``laginr-mnist-small``, its two
   ablations (``token_aggregation="ipc"``, "w/o STA"; ``modulation="mlp"``, "w/o multiFM"),
   ``ipc-mnist-small`` and ``transinr-mnist-small`` each train for the same CPU-time budget (plain Adam
   loop with the preset's learning rate, batch size and subsampling, same seed and data order) on the
   4,500 training digits, then report held-out PSNR (mean over test digits of ``-10 log10 MSE``,
   unclamped and clamped) on the real MNIST test split. The paper's ordering is
   locality-aware > both ablations, and IPC > TransINR. The bandwidth orderings of Table 4 (levels
   swapped, equal levels, query band raised to the highest level) train at the same budget, with
   ``any_bandwidth_order=True`` where they break the paper's ``s_1 >= ... >= s_L >= s_q``.
2. Locality (Sec. 4.3): the mean :func:`inrgen.analysis.locality_score` of every model's tokens (fraction
   of the change from zeroing one token that falls in the top 10 % of pixels; 0.1 = uniform).
3. Decode throughput (query points/s, one latent, chunks of 65,536, no gradients) of the trained small
   models and of the paper-sized decoders of ``laginr-ffhq1024`` and ``ipc-ffhq1024`` (random latents;
   decoding cost does not depend on the weights).
4. Peak memory of rendering one 1024x1024 image from one set of paper-sized latents with
   :func:`inrgen.tasks.decode_chunked`: measured in a fresh process as the peak resident set size above
   the resident size just before the render (weights and latents already in memory), for two chunk sizes.
   ``--quick`` renders only the first two 16,384-point chunks: the peak of a chunked render is one chunk's
   working set plus the output, so it is already reached; the full run renders all 1,048,576 points.

5. Train steps per CPU second (one thread, batch 16, the preset's subsampling) of ``laginr-mnist-small``
   (28x28, R = 16) and of the same model on 64x64 RGB (8-px patches, 64 tokens, R = 64, 1,024 of 4,096
   points decoded per item; also with one head, Table 3's setting), with the cross-attention as before
   (``F.scaled_dot_product_attention`` on projected queries) and as now (``W_Q`` and ``W_O`` absorbed
   into the tokens when ``h R <= d + R``,
   :meth:`inrgen.nn.attention.MultiHeadCrossAttention.folds_projections`), and IPC at the same sizes.
   Rounds alternate the variants; the best round counts (the machine is shared). ``--speed`` runs this
   section alone (``bench_laginr_speed.json`` / ``.md``).

6. Fig. 7 (Sec. 4.5) at CPU scale: on held-out test digits, one at a time, the trained locality-aware
   model's feed-forward PSNR (encode + decode) and its CPU time; test-time optimisation of the latents
   only and of all decoder parameters (:func:`inrgen.tto.refine`, Adam 1e-3); and a per-sample
   Fourier-feature MLP (FFNet, :func:`inrgen.tto.fit_ffnet`: 4 x 256 ReLU, 256 Gaussian frequencies,
   Adam 1e-3) fitted from random initialisation, each for the same CPU-second budget per image. PSNR
   (unclamped, the IPC definition; FFNet's sigmoid output is in [0, 1]) against CPU seconds as a table
   and ``bench_laginr_fig7.png``, and the CPU time FFNet needs to reach the feed-forward PSNR.

Budgets are process CPU seconds (``time.process_time``) with one torch thread, not wall-clock seconds:
the machine is shared, and CPU time keeps the comparison fair when other jobs run. Steps and wall time
are reported too.

Usage::

    python benchmarks/bench_laginr.py [--quick] [--out benchmarks/results] [--budget SECONDS] [--speed]

``run(quick, out_dir)`` does the same from Python and returns the results dict; it writes
``bench_laginr.json`` and ``bench_laginr.md`` into ``out_dir``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import build, heldout_psnr, profile, spread, train_for
from inrgen.analysis import locality_summary
from inrgen.configs import get_preset
from inrgen.data.datasets import build_dataset
from inrgen.data.points import PointSet
from inrgen.models import build_model
from inrgen.nn.attention import MultiHeadCrossAttention
from inrgen.nn.transformer import EncoderConfig
from inrgen.tasks import decode_chunked
from inrgen.tto import fit_ffnet, refine

__all__ = ["run"]

MODELS = {
    "locality-aware": ("laginr-mnist-small", {}),
    "w/o STA (ipc aggregation)": ("laginr-mnist-small", {"token_aggregation": "ipc"}),
    "w/o multiFM (mlp)": ("laginr-mnist-small", {"modulation": "mlp"}),
    "IPC": ("ipc-mnist-small", {}),
    "TransINR": ("transinr-mnist-small", {}),
}
# the bandwidth orderings of LA-GINR Table 4, at the CPU preset's scale: its default is (s_1, s_2) = (16, 8)
# with s_q = 4 (the paper's (128, 32), 16); Table 4 swaps the levels, makes them equal, or raises s_q to s_1
BANDWIDTHS = {
    "bands (8, 16), q 4 (low band first)": {"sigmas": (8.0, 16.0), "any_bandwidth_order": True},
    "bands (16, 16), q 4 (equal bands)": {"sigmas": (16.0, 16.0)},
    "bands (16, 8), q 16 (high-band query)": {"sigma_q": 16.0, "any_bandwidth_order": True},
}
PAPER_TABLE4 = {  # ImageNette 178x178, 400 epochs (dB)
    "locality-aware": 37.46,
    "bands (8, 16), q 4 (low band first)": 35.00,
    "bands (16, 16), q 4 (equal bands)": 35.30,
    "bands (16, 8), q 16 (high-band query)": 35.58,
    "IPC": 34.11,
}


@torch.no_grad()
def _throughput(model, latent, coord_dim: int, n_points: int, chunk: int, repeats: int) -> float:
    coords = torch.rand(1, n_points, coord_dim) * 2 - 1
    decode_chunked(model, latent, coords[:, : min(n_points, 4096)], chunk)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        decode_chunked(model, latent, coords, chunk)
        best = min(best, time.perf_counter() - t0)
    return n_points / best


def _paper_decoder(preset_name: str):
    """The paper-sized model of ``preset_name`` with a 1-block, width-8 encoder stand-in (only the decoder
    runs here; its cost does not depend on the encoder) and random latents of the paper's shape."""
    preset = get_preset(preset_name)
    cfg = preset.model_config
    enc = dataclasses.replace(cfg.encoder, width=8, depth=1, heads=1, mlp_dim=8)
    model = build_model(preset.model, dataclasses.replace(cfg, encoder=enc)).eval()
    r = cfg.encoder.num_latents
    d = cfg.dim if hasattr(cfg, "dim") else model.hyponet.token_dim
    return model, torch.randn(1, r, d)


@contextlib.contextmanager
def _attention_before():
    """The cross-attention as it was before the projections were folded: always the SDPA path."""
    orig = MultiHeadCrossAttention.folds_projections
    MultiHeadCrossAttention.folds_projections = lambda self, num_tokens: False  # type: ignore[method-assign]
    try:
        yield
    finally:
        MultiHeadCrossAttention.folds_projections = orig  # type: ignore[method-assign]


def _speed_configs() -> dict[str, tuple[dict[str, Any], tuple[int, ...]]]:
    """Model overrides (applied to both CPU presets) and image shape of each speed setting."""
    enc64 = EncoderConfig(
        in_channels=3, image_size=(64, 64), patch_size=8, padding=0, width=64, depth=2, heads=4, mlp_dim=128,
        dropout=0.0, num_latents=64,
    )  # fmt: skip
    return {
        "28x28 gray (mnist-small, R=16)": ({}, (1, 28, 28)),
        "64x64 RGB (R=64)": ({"encoder": enc64, "out_channels": 3}, (3, 64, 64)),
        "64x64 RGB (R=64), 1 head (Table 3)": (
            {"encoder": enc64, "out_channels": 3, "heads": 1},
            (3, 64, 64),
        ),
    }


def _steps_per_cpu_s(model, preset, images: torch.Tensor, steps: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=preset.train.lr)
    batch = PointSet.from_image(images)
    model.train()
    for i in range(2 + steps):  # two untimed warm-up steps
        if i == 2:
            t0 = time.process_time()
        loss = model.loss(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.process_time() - t0)


def _attention_ms(model, shape: tuple[int, ...], rounds: int) -> dict[str, float]:
    """CPU ms of the cross-attention alone (forward + backward, batch 16 at the trained point count)."""
    attn = model.hyponet.aggregate
    n = int(shape[1] * shape[2] * model.config.subsample_ratio)
    q = torch.randn(16, n, attn.dim, requires_grad=True)
    z = torch.randn(16, model.config.encoder.num_latents, attn.kv_dim, requires_grad=True)
    out = {}
    for label, ctx in (("before", _attention_before), ("now", contextlib.nullcontext)):
        with ctx():
            attn(q, z).sum().backward()  # warm-up
            times = []
            for _ in range(3 * rounds):
                t0 = time.process_time()
                attn(q, z).square().sum().backward()
                times.append(time.process_time() - t0)
        out[f"attention ms {label}"] = 1e3 * min(times)
    return out


def train_step_speed(rounds: int = 3, steps: int = 20, only_28: bool = False) -> dict[str, Any]:
    """Train steps per CPU second, attention before / after, and IPC (see item 5 of the module docstring);
    ``only_28``: the 28x28 setting alone (the test suite's tiny profile)."""
    out: dict[str, Any] = {}
    gen = torch.Generator().manual_seed(0)
    settings = _speed_configs()
    if only_28:
        settings = dict(list(settings.items())[:1])
    for setting, (overrides, shape) in settings.items():
        images = torch.rand(16, *shape, generator=gen)
        models = {}
        for label, preset_name in (("locality-aware", "laginr-mnist-small"), ("IPC", "ipc-mnist-small")):
            ov = {k: v for k, v in overrides.items() if k != "heads" or label != "IPC"}
            models[label] = build(preset_name, ov, 0)
        n = steps if shape[-1] <= 28 else max(steps // 2, 2)
        best: dict[str, float] = {}
        for _ in range(rounds):
            for variant in ("locality-aware, attention before", "locality-aware, attention now", "IPC"):
                model, preset = models["IPC" if variant == "IPC" else "locality-aware"]
                ctx = _attention_before() if variant.endswith("before") else contextlib.nullcontext()
                with ctx:
                    rate = _steps_per_cpu_s(model, preset, images, n)
                best[variant] = max(best.get(variant, 0.0), rate)
        best.update(_attention_ms(models["locality-aware"][0], shape, rounds))
        best["speed-up of the attention change"] = (
            best["locality-aware, attention now"] / best["locality-aware, attention before"]
        )
        best["locality-aware / IPC (now)"] = best["locality-aware, attention now"] / best["IPC"]
        best["locality-aware / IPC (before)"] = best["locality-aware, attention before"] / best["IPC"]
        out[setting] = best
    return out


def _speed_markdown(speed: dict[str, Any]) -> list[str]:
    lines = [
        "## Train steps per CPU second (one thread, batch 16; best of alternating rounds)",
        "",
        "Before: the cross-attention on projected queries with `F.scaled_dot_product_attention`; now: `W_Q` "
        "and `W_O` absorbed into the tokens where `h R <= d + R` (equal to float64 rounding, "
        "`tests/ginr/test_attention.py`). At `h R = d + R` (2 heads, R = d = 64) both cost the same "
        "multiply-adds; the rest of the gap to IPC is the multi-band decoder's extra layers (Eq. 6-9: five "
        "d x d layers where IPC's hyponet has four in all, plus the attention).",
        "",
        "| setting | locality-aware, attention before | now | speed-up | IPC | LA / IPC before | "
        "LA / IPC now | attention alone, ms before | ms now |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for setting, r in speed.items():
        lines.append(
            f"| {setting} | {r['locality-aware, attention before']:.1f} | "
            f"{r['locality-aware, attention now']:.1f} | {r['speed-up of the attention change']:.2f}x | "
            f"{r['IPC']:.1f} | {r['locality-aware / IPC (before)']:.2f} | "
            f"{r['locality-aware / IPC (now)']:.2f} | {r['attention ms before']:.1f} | "
            f"{r['attention ms now']:.1f} |"
        )
    return lines


def _psnr_curve(losses: torch.Tensor) -> list[float]:
    return (-10 * torch.log10(losses.double().clamp_min(1e-10))).tolist()


def _psnr_at(curve: dict[str, list[float]], t: float) -> float:
    """PSNR of the last row measured by CPU second ``t`` (the first row when none was)."""
    k = max((i for i, s in enumerate(curve["seconds"]) if s <= t), default=0)
    return curve["psnr"][k]


FIG7_METHODS = ("TTO latents", "TTO all decoder parameters", "FFNet from random init")


def _fig7_fit(model, ps: PointSet, label: str, budget_s: float):
    if label == "FFNet from random init":
        return fit_ffnet(ps, 10**7, 1e-3, max_seconds=budget_s)
    mode = "latent" if label == "TTO latents" else "all"
    return refine(model, ps, mode, 10**7, 1e-3, max_seconds=budget_s)


def fig7(model, images: torch.Tensor, budget_s: float, out_dir: Path | None = None) -> dict[str, Any]:
    """Item 6 of the module docstring: per image, feed-forward vs TTO (latent / all) vs FFNet."""
    model.eval()
    per_image: list[dict[str, Any]] = []
    for x in images:
        ps = PointSet.from_image(x[None])
        t0 = time.process_time()
        with torch.no_grad():
            pred = model.decode(model.encode(ps), ps.coords).mean
        ff_s = time.process_time() - t0
        ff_psnr = float(-10 * torch.log10((pred - ps.values).pow(2).mean()))
        curves = {}
        for label in FIG7_METHODS:
            fit = _fig7_fit(model, ps, label, budget_s)
            seconds = fit.seconds if fit.seconds.dim() == 1 else fit.seconds[:, 0]
            curves[label] = {"seconds": seconds.tolist(), "psnr": _psnr_curve(fit.losses[:, 0]),
                             "steps": len(seconds) - 1}  # fmt: skip
        ffnet = curves["FFNet from random init"]
        reach = next((s for s, p in zip(ffnet["seconds"], ffnet["psnr"]) if p >= ff_psnr), float("inf"))
        per_image.append({"feed_forward": {"seconds": ff_s, "psnr": ff_psnr}, "curves": curves,
                          "ffnet_seconds_to_feed_forward_psnr": reach})  # fmt: skip
    marks = [round(budget_s * f, 3) for f in (0.1, 0.3, 1.0)]
    labels = list(per_image[0]["curves"])
    table = {
        label: {
            str(m): sum(_psnr_at(im["curves"][label], m) for im in per_image) / len(per_image) for m in marks
        }
        for label in labels
    }
    reach = [im["ffnet_seconds_to_feed_forward_psnr"] for im in per_image]
    out = {
        "n_images": len(per_image),
        "budget_cpu_s_per_image": budget_s,
        "marks_cpu_s": marks,
        "feed_forward_psnr": sum(im["feed_forward"]["psnr"] for im in per_image) / len(per_image),
        "feed_forward_cpu_s": sum(im["feed_forward"]["seconds"] for im in per_image) / len(per_image),
        "psnr_at": table,
        "ffnet_cpu_s_to_feed_forward_psnr": reach,
        "per_image": per_image,
    }
    if out_dir is not None:
        _fig7_plot(out, Path(out_dir) / "bench_laginr_fig7.png")
    for im in per_image:  # the stored curves: at most 200 points each (the plot used all)
        for c in im["curves"].values():
            c.update(_thin(c["seconds"], c["psnr"]))
    return out


def _thin(seconds: list[float], psnr: list[float], n: int = 200) -> dict[str, list[float]]:
    keep = sorted({round(k * (len(seconds) - 1) / (n - 1)) for k in range(n)}) if len(seconds) > n else None
    if keep is None:
        return {"seconds": seconds, "psnr": psnr}
    return {"seconds": [seconds[k] for k in keep], "psnr": [psnr[k] for k in keep]}


def _fig7_plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, color in zip(r["per_image"][0]["curves"], ("tab:blue", "tab:green", "tab:red")):
        for k, im in enumerate(r["per_image"]):
            c = im["curves"][label]
            ax.plot(c["seconds"], c["psnr"], color=color, alpha=0.6, label=label if k == 0 else None)
    ax.axhline(r["feed_forward_psnr"], color="k", ls="--", label="feed-forward (mean)")
    ax.set_xlabel("process CPU seconds per image (one thread)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"Fig. 7 analogue: {r['n_images']} held-out MNIST digits")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fig7_markdown(r: dict[str, Any]) -> list[str]:
    marks = r["marks_cpu_s"]
    lines = [
        "## Per-sample FFNet vs the generalizable INR with and without TTO (LA-GINR Fig. 7)",
        "",
        f"{r['n_images']} held-out digits, one at a time; feed-forward (encode + decode): "
        f"{r['feed_forward_psnr']:.2f} dB in {1e3 * r['feed_forward_cpu_s']:.1f} CPU ms. Mean PSNR (dB, "
        "unclamped) after each CPU-second budget per image (`bench_laginr_fig7.png`):",
        "",
        "| method | " + " | ".join(f"{m:g} s" for m in marks) + " |",
        "|---|" + "---|" * len(marks),
    ]
    for label, row in r["psnr_at"].items():
        lines.append(f"| {label} | " + " | ".join(f"{row[str(m)]:.2f}" for m in marks) + " |")
    reach = ", ".join(
        "never" if s == float("inf") else f"{s:.2f}" for s in r["ffnet_cpu_s_to_feed_forward_psnr"]
    )
    lines += [
        "",
        f"CPU seconds FFNet needs to reach the feed-forward PSNR, per image: {reach}.",
        "",
        "Scale: a 28x28 digit has 784 points and the decoder 41,730 parameters, so fine-tuning all of "
        "them fits the image nearly exactly; the paper's FFHQ 256 images have 65,536 points. The ordering "
        "(TTO of all parameters above FFNet throughout; latent TTO above FFNet at first) is the comparable "
        "part, not the dB.",
    ]
    return lines


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _render_child(preset_name: str, size: int, chunk: int, max_chunks: int | None, queue) -> None:
    torch.set_num_threads(1)
    model, latent = _paper_decoder(preset_name)
    from inrgen import coords as C

    coords = C.grid((size, size)).unsqueeze(0)
    if max_chunks is not None:  # quick mode: the first chunks only (the peak is one chunk's working set)
        coords = coords[:, : max_chunks * chunk]
    with torch.no_grad():
        decode_chunked(model, latent, coords[:, :1024], 1024)  # warm-up (allocator, kernels)
    before = _rss_mb()
    t0 = time.perf_counter()
    with torch.no_grad():
        img = decode_chunked(model, latent, coords, chunk).mean
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    queue.put(
        {
            "preset": preset_name,
            "size": size,
            "chunk": chunk,
            "points_rendered": coords.shape[1],
            "complete": coords.shape[1] == size * size,
            "rss_before_mb": before,
            "peak_rss_mb": peak,
            "render_peak_above_baseline_mb": peak - before,
            "output_mb": img.numel() * img.element_size() / 2**20,
            "render_s": wall,
            "points_per_s": coords.shape[1] / wall,
        }
    )


def _render_memory(preset_name: str, size: int, chunk: int, max_chunks: int | None) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_render_child, args=(preset_name, size, chunk, max_chunks, q))
    p.start()
    out = q.get()
    p.join()
    return out


def run(quick: bool, out_dir: Path, budget_s: float | None = None, threads: int = 1) -> dict[str, Any]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    prof = profile(quick)  # quick, full, or tiny (INRGEN_BENCH_TINY=1, the test suite)
    tiny = prof.name == "tiny"
    budget = budget_s if budget_s is not None else prof.train_cpu_s
    seed = 0
    train = build_dataset("mnist", split="train")
    test = build_dataset("mnist", split="test")
    train_x = train.arrays(range(len(train)))
    test_x = test.arrays(spread(len(test), prof.n_test))  # spread over the class-sorted split
    n_decode = 2**12 if tiny else (2**16 if quick else 2**18)
    results: dict[str, Any] = {
        "quick": quick,
        "profile": prof.name,
        "budget_cpu_s": budget,
        "threads": threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "n_test": len(test_x),
        "models": {},
    }
    rows = {**MODELS, **{k: ("laginr-mnist-small", v) for k, v in BANDWIDTHS.items()}}
    trained = {}
    for name, (preset_name, overrides) in rows.items():
        model, preset = build(preset_name, overrides, seed)
        row: dict[str, Any] = {
            "preset": preset_name,
            "overrides": overrides,
            "params": model.num_parameters(),
        }
        row.update(train_for(model, preset, train_x, budget, seed))
        row.update(heldout_psnr(model, test_x))
        loc = locality_summary(model, PointSet.from_image(test_x[:8]), top_fraction=0.1)
        row["locality_top10"] = loc["locality"]
        with torch.no_grad():
            z = model.encode(PointSet.from_image(test_x[:1]))
        row["decode_points_per_s"] = _throughput(
            model, z, 2, n_decode, 65536, 1 if tiny else (2 if quick else 3)
        )
        results["models"][name] = row
        if name == "locality-aware":
            trained[name] = model
        print(
            f"{name:28s} steps {row['steps']:5d}  PSNR {row['psnr']:6.2f}  "
            f"locality {row['locality_top10']:.3f}"
        )
    m = results["models"]
    results["ordering"] = {
        "locality-aware > w/o STA": m["locality-aware"]["psnr"] > m["w/o STA (ipc aggregation)"]["psnr"],
        "locality-aware > w/o multiFM": m["locality-aware"]["psnr"] > m["w/o multiFM (mlp)"]["psnr"],
        "locality-aware > IPC": m["locality-aware"]["psnr"] > m["IPC"]["psnr"],
        "IPC > TransINR": m["IPC"]["psnr"] > m["TransINR"]["psnr"],
        **{f"default bands > {k}": m["locality-aware"]["psnr"] > m[k]["psnr"] for k in BANDWIDTHS},
        **{f"{k} > IPC": m[k]["psnr"] > m["IPC"]["psnr"] for k in BANDWIDTHS},
    }
    paper = {}
    for preset_name in ("laginr-ffhq1024", "ipc-ffhq1024"):
        model, latent = _paper_decoder(preset_name)
        paper[preset_name] = _throughput(model, latent, 2, n_decode // 2, 16384, 1 if tiny else 2)
    results["paper_decoder_points_per_s"] = paper
    results["train_steps_per_cpu_s"] = train_step_speed(1 if tiny else 3, 2 if tiny else 20, only_28=tiny)
    n_fig7, fig7_s = (1, 0.3) if tiny else ((3, 3.0) if quick else (10, 10.0))
    results["fig7"] = fig7(trained["locality-aware"], test_x[:n_fig7], fig7_s, out_dir)
    if tiny:  # a 64x64 render in chunks of 1,024 points: the same code path in seconds
        results["render_1024"] = [_render_memory("laginr-ffhq1024", prof.render_size, 1024, None)]
    elif quick:  # the first 2 of 64 chunks (about 15 s on one busy core); the full run renders everything
        results["render_1024"] = [_render_memory("laginr-ffhq1024", 1024, 16384, 2)]
    else:
        results["render_1024"] = [_render_memory("laginr-ffhq1024", 1024, c, None) for c in (16384, 65536)]
    (out_dir / "bench_laginr.json").write_text(json.dumps(results, indent=2))
    (out_dir / "bench_laginr.md").write_text(_markdown(results))
    return results


def _markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Locality-aware INR benchmark (CPU)",
        "",
        f"Same budget per model: {r['budget_cpu_s']:.0f} CPU s, {r['threads']} torch thread(s); "
        f"held-out PSNR on {r['n_test']} real MNIST test digits; torch {r['torch']}.",
        "",
        "| model | params | steps | wall s | train loss | PSNR | PSNR clamped | locality top-10% "
        "| decode pts/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in r["models"].items():
        if name in BANDWIDTHS:
            continue
        lines.append(
            f"| {name} | {row['params']:,} | {row['steps']} | {row['wall_s']:.0f} | "
            f"{row['final_loss']:.4f} | {row['psnr']:.2f} | {row['psnr_clamped']:.2f} | "
            f"{row['locality_top10']:.3f} | {row['decode_points_per_s']:,.0f} |"
        )
    lines += [
        "",
        "Paper ordering: " + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in r["ordering"].items()),
    ]
    lines += [
        "",
        "## Bandwidth orderings (LA-GINR Table 4)",
        "",
        "The CPU preset's bands (s_1, s_2) = (16, 8) with s_q = 4 play the paper's (128, 32) with 16; same "
        "budget as above. Paper: ImageNette 178x178 after 400 epochs.",
        "",
        "| bandwidths | PSNR | PSNR clamped | steps | paper (dB) |",
        "|---|---|---|---|---|",
    ]
    for name in ("locality-aware", *BANDWIDTHS, "IPC"):
        row = r["models"][name]
        label = "bands (16, 8), q 4 (default)" if name == "locality-aware" else name
        lines.append(
            f"| {label} | {row['psnr']:.2f} | {row['psnr_clamped']:.2f} | {row['steps']} | "
            f"{PAPER_TABLE4[name]:.2f} |"
        )
    lines += ["", "Paper-sized decoders (random latents), query points/s, one thread:", ""]
    for k, v in r["paper_decoder_points_per_s"].items():
        lines.append(f"- {k}: {v:,.0f}")
    side = r["render_1024"][0]["size"]
    lines += ["", f"Rendering one {side}x{side} image from one set of `laginr-ffhq1024` latents:", ""]
    lines += [
        "| chunk | points rendered | peak RSS above baseline MB | output MB | seconds | points/s |",
        "|---|---|---|---|---|---|",
    ]
    for row in r["render_1024"]:
        lines.append(
            f"| {row['chunk']} | {row['points_rendered']:,} | {row['render_peak_above_baseline_mb']:.0f} | "
            f"{row['output_mb']:.1f} | {row['render_s']:.1f} | {row['points_per_s']:,.0f} |"
        )
    lines += ["", *_speed_markdown(r["train_steps_per_cpu_s"])]
    lines += ["", *_fig7_markdown(r["fig7"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="40 CPU s per model, 256 test digits, 2 chunks of the 1024^2 render",
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--budget", type=float, default=None, help="CPU seconds of training per model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--speed", action="store_true", help="only the train steps/s section (item 5)")
    ap.add_argument(
        "--fig7",
        action="store_true",
        help="only item 6: train laginr-mnist-small for --budget CPU s (default 120), then 10 digits x 3 s",
    )
    args = ap.parse_args()
    if args.fig7:
        torch.set_num_threads(args.threads)
        train = build_dataset("mnist", split="train")
        test = build_dataset("mnist", split="test")
        model, preset = build("laginr-mnist-small", {}, 0)
        budget = args.budget if args.budget is not None else 120.0
        stats = train_for(model, preset, train.arrays(range(len(train))), budget, 0)
        r = fig7(model, test.arrays(spread(len(test), 10)), 3.0, args.out)
        r["training"] = {"preset": "laginr-mnist-small", "budget_cpu_s": budget, **stats}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_laginr_fig7.json").write_text(json.dumps(r))
        md = "\n".join(_fig7_markdown(r)) + "\n"
        md += (
            f"\nModel: `laginr-mnist-small` trained for {budget:.0f} CPU s ({stats['steps']} steps); "
            "command: `python -m benchmarks.bench_laginr --fig7`.\n"
        )
        (args.out / "bench_laginr_fig7.md").write_text(md)
        print(md)
        return
    if args.speed:
        torch.set_num_threads(args.threads)
        speed = {"threads": args.threads, "torch": torch.__version__, "settings": train_step_speed()}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_laginr_speed.json").write_text(json.dumps(speed, indent=2))
        md = "\n".join(_speed_markdown(speed["settings"])) + "\n"
        (args.out / "bench_laginr_speed.md").write_text(md)
        print(md)
        return
    r = run(args.quick, args.out, args.budget, args.threads)
    print(_markdown(r))


if __name__ == "__main__":
    main()

"""Throughput and memory per model (the CPU presets), one torch thread.

For each model of the library at its MNIST-sized CPU preset (``*-mnist-small``):

- training items/s: Adam steps of the preset's batch size on real MNIST digits (median over repeats of
  a few steps each; each item of a meta-learning model includes its inner loop);
- peak memory of training: the peak resident set size (sampled every 2 ms) during two training steps
  of a freshly built model in a fresh process, above the resident size just before them;
- decoded points/s: one latent, 65,536 random query coordinates, no gradients (median over repeats);
- rendering a 1024x1024 image from one latent with :func:`inrgen.tasks.decode_chunked` (chunks of
  65,536 points): seconds, and the sampled peak resident memory above the baseline in a fresh process
  (model built, latent encoded, a small warm-up decode done). The output alone is ``1024^2 x C x 4``
  bytes (4 MiB for one channel).

Memory is measured with :func:`inrgen.metrics.timing.peak_rss` in a spawned process per measurement
(memory an allocator kept from earlier work would hide a peak in-process; the tiny profile measures
in-process and is meaningless for memory). ``run(quick, out_dir)`` writes ``bench_throughput.json`` and
``bench_throughput.md``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import build, fmt_timing, load_images, machine_info, md_table, profile, write_outputs
from inrgen import coords as C
from inrgen.data.points import PointSet
from inrgen.metrics.timing import max_rss_mb, num_threads, peak_rss, time_fn
from inrgen.tasks import decode_chunked

__all__ = ["run", "MODELS"]

MODELS = {
    "VaMoH": "vamoh-mnist-small",
    "Functa (3)": "functa-mnist-small",
    "Learned Init": "learnedinit-mnist-small",
    "locality-aware": "laginr-mnist-small",
    "IPC": "ipc-mnist-small",
    "TransINR": "transinr-mnist-small",
}
CHUNK = 65536


def _memory(preset_name: str, what: str, size: int, steps: int = 2) -> dict[str, float]:
    """Peak resident memory above the baseline of rendering (``what="render"``) or of ``steps`` training
    steps (``"train"``), for a freshly built model on random MNIST-shaped data (memory depends on shapes,
    not on values or weights). Meant to run in a fresh process, where the heap holds nothing else."""
    torch.set_num_threads(1)
    model, preset = build(preset_name)
    g = torch.Generator().manual_seed(0)
    c = model.out_channels
    if what == "render":
        model.eval()
        with torch.no_grad():
            latent = model.encode(PointSet.from_image(torch.rand(1, c, 28, 28, generator=g)))
            decode_chunked(model, latent, C.grid((32, 32)).unsqueeze(0))  # warm-up
        grid = C.grid((size, size)).unsqueeze(0)

        def work() -> Any:
            with torch.no_grad():
                return decode_chunked(model, latent, grid, CHUNK).mean

    else:
        opt = torch.optim.Adam(model.parameters(), lr=preset.train.lr)
        images = torch.rand(preset.data.batch_size, c, 28, 28, generator=g)

        def work() -> Any:
            for step in range(steps):
                out = model.loss(PointSet.from_image(images), step)
                opt.zero_grad(set_to_none=True)
                out["loss"].backward()
                opt.step()

    mem, _ = peak_rss(work)
    return mem


def _memory_child(preset_name: str, what: str, size: int, queue) -> None:
    try:
        queue.put(_memory(preset_name, what, size))
    except Exception as err:  # report instead of hanging the parent
        queue.put({"error": f"{type(err).__name__}: {err}"})


def _memory_fresh(preset_name: str, what: str, size: int) -> dict[str, float]:
    """:func:`_memory` in a spawned process (a heap that no earlier work has grown)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_memory_child, args=(preset_name, what, size, q))
    p.start()
    out = q.get()
    p.join()
    if "error" in out:
        raise RuntimeError(f"memory measurement of {preset_name} ({what}) failed: {out['error']}")
    return out


def _one_model(name: str, preset_name: str, images: torch.Tensor, prof) -> dict[str, Any]:
    model, preset = build(preset_name)
    batch = preset.data.batch_size
    opt = torch.optim.Adam(model.parameters(), lr=preset.train.lr)
    g = torch.Generator().manual_seed(0)
    step = [0]

    def train_steps(k: int) -> None:
        model.train()
        for _ in range(k):
            idx = torch.randint(0, len(images), (batch,), generator=g)
            out = model.loss(PointSet.from_image(images[idx]), step[0])
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
            step[0] += 1

    k = 1 if prof.name == "tiny" else 3
    t_train = time_fn(lambda: train_steps(k), repeats=prof.repeats, warmup=1)
    model.eval()
    ps = PointSet.from_image(images[:1])
    with torch.no_grad():
        latent = model.encode(ps)
    n_q = 4096 if prof.name == "tiny" else CHUNK
    q = torch.rand(1, n_q, 2, generator=g) * 2 - 1

    def dec() -> None:
        with torch.no_grad():
            decode_chunked(model, latent, q, CHUNK)

    t_dec = time_fn(dec, repeats=prof.repeats, warmup=1)
    size = prof.render_size
    grid = C.grid((size, size)).unsqueeze(0)

    def render() -> torch.Tensor:
        with torch.no_grad():
            return decode_chunked(model, latent, grid, CHUNK).mean

    t_render = time_fn(render, repeats=1 if prof.name != "full" else 3, warmup=0)
    img = render() if prof.name == "tiny" else None
    measure = _memory if prof.name == "tiny" else _memory_fresh  # tiny: in-process, no spawn cost
    mem_train = measure(preset_name, "train", size)
    mem_render = measure(preset_name, "render", size)
    out_mb = size * size * model.out_channels * 4 / 2**20 if img is None else img.numel() * 4 / 2**20
    row = {
        "preset": preset_name,
        "params": model.num_parameters(),
        "batch": batch,
        "train_step_s": t_train.to_dict(),
        "train_items_per_s": batch * k / t_train.median,
        "train_peak_above_baseline_mb": mem_train["delta_mb"],
        "decode_points_per_s": n_q / t_dec.median,
        "decode_s": t_dec.to_dict(),
        "render_size": size,
        "render_s": t_render.to_dict(),
        "render_peak_above_baseline_mb": mem_render["delta_mb"],
        "render_output_mb": out_mb,
    }
    print(
        f"  {name:15s} train {row['train_items_per_s']:8.1f} items/s  "
        f"decode {row['decode_points_per_s']:,.0f} pts/s"
        f"  render {size}^2 {fmt_timing(t_render)}  +{mem_render['delta_mb']:.0f} MiB",
        flush=True,
    )
    return row


def run(quick: bool = True, out_dir: Path | str = Path("benchmarks/results")) -> dict[str, Any]:
    prof = profile(quick)
    with num_threads(1):
        images = load_images("mnist", "train", 512)
        rows = {}
        for name, preset_name in MODELS.items():
            try:
                rows[name] = _one_model(name, preset_name, images, prof)
            except KeyError as err:  # a model or preset that is not in this checkout
                rows[name] = {"preset": preset_name, "error": str(err)}
        results = {
            "profile": prof.name,
            "threads": 1,
            "machine": machine_info(),
            "models": rows,
            "process_peak_rss_mb": max_rss_mb(),
        }
    write_outputs(Path(out_dir), "bench_throughput", results, markdown(results))
    return results


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# Throughput and memory per model (CPU presets, one thread)",
        "",
        f"{m['cpu']} ({m['cores']} cores), torch {m['torch']}, profile `{r['profile']}`, load average "
        f"{', '.join(f'{x:.1f}' for x in m['load_average'])}. Timings: median (quartiles, repeats). Memory: "
        "sampled peak resident set above the baseline just before, in a fresh process per measurement.",
        "",
    ]
    rows = []
    for name, row in r["models"].items():
        if "error" in row:
            rows.append([name, row["preset"], "-", "-", "-", "-", "-", "-", f"not run: {row['error']}"])
            continue
        rows.append(
            [
                name,
                row["preset"],
                f"{row['params']:,}",
                f"{row['train_items_per_s']:.1f}",
                f"{row['train_peak_above_baseline_mb']:.0f}",
                f"{row['decode_points_per_s']:,.0f}",
                fmt_timing(row["render_s"]),
                f"{row['render_peak_above_baseline_mb']:.0f}",
                f"{row['render_output_mb']:.1f}",
            ]
        )
    size = next((row["render_size"] for row in r["models"].values() if "render_size" in row), 1024)
    lines.append(
        md_table(
            [
                "model",
                "preset",
                "params",
                "train items/s",
                "train peak MiB",
                "decode pts/s",
                f"render {size}^2 (chunks of {CHUNK})",
                "render peak MiB",
                "output MiB",
            ],
            rows,
        )  # fmt: skip
    )
    lines += ["", f"Process peak RSS over the whole benchmark: {r['process_peak_rss_mb']:.0f} MiB."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    print(markdown(run(args.quick, args.out)))


if __name__ == "__main__":
    main()

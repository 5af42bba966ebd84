"""Scaling: encoder time against the number of observed points, decoder time against the number of queries.

Encoders that read any point set (VaMoH's PointConv encoder; Functa's and Learned Init's inner loops) are
timed on one item observed on grids of 256 to 16,384 points (16x16 to 128x128); the patch Transformers
of the locality-aware INR, IPC and TransINR tokenise images of one fixed size (their positional
embeddings have one slot per patch), so they have no such axis and are left out of the encoder part.
Decoders of every model are timed from one latent at 256 to 16,384 random query points. Each time is
the median of repeats (one torch thread, no gradients outside the inner loops), and the exponent ``a``
of ``t ~ n^a`` is the least-squares slope of ``log t`` on ``log n``, over all sizes and over the two
largest (where fixed overheads matter least). CPU presets (``*-mnist-small``).

``run(quick, out_dir)`` writes ``bench_scaling.json`` and ``bench_scaling.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import build, fit_exponent, machine_info, md_table, profile, write_outputs
from inrgen.data.points import PointSet
from inrgen.metrics.timing import num_threads, time_fn
from inrgen.tasks import decode_chunked

__all__ = ["run", "ENCODERS", "DECODERS"]

ENCODERS = {
    "VaMoH": "vamoh-mnist-small",
    "Functa (3)": "functa-mnist-small",
    "Learned Init": "learnedinit-mnist-small",
}
DECODERS = {
    **ENCODERS,
    "locality-aware": "laginr-mnist-small",
    "IPC": "ipc-mnist-small",
    "TransINR": "transinr-mnist-small",
}


def _curve(sizes: list[int], times: list[float]) -> dict[str, Any]:
    return {
        "n": sizes,
        "median_s": times,
        "exponent": fit_exponent(sizes, times),
        "exponent_largest": fit_exponent(sizes[-2:], times[-2:]),
    }


def run(quick: bool = True, out_dir: Path | str = Path("benchmarks/results")) -> dict[str, Any]:
    prof = profile(quick)
    g = torch.Generator().manual_seed(0)
    grids = list(prof.scaling_sizes)
    sizes = [h * w for h, w in grids]
    results: dict[str, Any] = {"profile": prof.name, "threads": 1, "encoder": {}, "decoder": {}}
    with num_threads(1):
        results["machine"] = machine_info()
        for name, preset_name in ENCODERS.items():
            model, _ = build(preset_name)
            model.eval()
            times = []
            for h, w in grids:
                ps = PointSet.from_image(torch.rand(1, model.out_channels, h, w, generator=g))

                def enc(m=model, p=ps) -> None:
                    with torch.no_grad():
                        m.encode(p)

                times.append(time_fn(enc, repeats=prof.repeats, warmup=1).median)
            results["encoder"][name] = {"preset": preset_name, **_curve(sizes, times)}
            print(f"  encoder {name:14s} exponent {results['encoder'][name]['exponent']:.2f}", flush=True)
        for name, preset_name in DECODERS.items():
            try:
                model, _ = build(preset_name)
            except KeyError as err:
                results["decoder"][name] = {"preset": preset_name, "error": str(err)}
                continue
            model.eval()
            side = 28
            with torch.no_grad():
                latent = model.encode(
                    PointSet.from_image(torch.rand(1, model.out_channels, side, side, generator=g))
                )
            times = []
            for n in sizes:
                q = torch.rand(1, n, 2, generator=g) * 2 - 1

                def dec(m=model, z=latent, c=q) -> None:
                    with torch.no_grad():
                        decode_chunked(m, z, c)

                times.append(time_fn(dec, repeats=prof.repeats, warmup=1).median)
            results["decoder"][name] = {"preset": preset_name, **_curve(sizes, times)}
            print(f"  decoder {name:14s} exponent {results['decoder'][name]['exponent']:.2f}", flush=True)
    write_outputs(Path(out_dir), "bench_scaling", results, markdown(results))
    return results


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# Scaling with the number of points (CPU presets, one thread)",
        "",
        f"{m['cpu']} ({m['cores']} cores), torch {m['torch']}, profile `{r['profile']}`. Median seconds per "
        "call for one item; exponent a of t ~ n^a (least squares on log-log; all sizes / two largest).",
        "",
    ]
    for part, title in (
        ("encoder", "Encoder time vs observed points"),
        ("decoder", "Decoder time vs queries"),
    ):
        rows, sizes = [], None
        for name, row in r[part].items():
            if "error" in row:
                rows.append([name, f"not run: {row['error']}"])
                continue
            sizes = row["n"]
            rows.append(
                [name, *(f"{t * 1e3:.3g}" for t in row["median_s"]), f"{row['exponent']:.2f}",
                 f"{row['exponent_largest']:.2f}"]
            )  # fmt: skip
        if sizes is None:
            continue
        lines += [f"## {title} (ms)", ""]
        lines.append(
            md_table(["model", *(f"n={n:,}" for n in sizes), "exponent", "exponent (largest)"], rows)
        )
        lines.append("")
    lines.append(
        "Patch-Transformer encoders (locality-aware, IPC, TransINR) read images of one fixed size, so they "
        "have no point-count axis."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    print(markdown(run(args.quick, args.out)))


if __name__ == "__main__":
    main()

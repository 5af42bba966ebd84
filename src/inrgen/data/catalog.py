"""``inrgen datasets``: list the data sources and render examples of any of them to a PNG grid.

    inrgen datasets                                   # every source, its modality, whether it is here
    inrgen datasets --render mnist -n 16 --out mnist.png
    inrgen datasets --render era5 --root t2m.nc --split test -n 8 --out era5.png --globe
    inrgen datasets --render views-synthetic -o n_support=3 --out views.png
    inrgen datasets --render all --out outputs/           # every source present or generated here

An existing file is only replaced with ``--overwrite``, and only if it is a regular file (never a
device, FIFO, folder or link); this is checked before any data is read.

Images are tiled as they are; voxels are shaded renders (``inrgen.viz.render_voxels``); fields on the
sphere are lat-lon maps (or globes with ``--globe``) of the normalised values, unobserved (NaN) cells
grey; novel views show each object's support views then its query view in one row.
Also runnable as ``python -m inrgen.data.catalog``.
"""

from __future__ import annotations

import argparse
import ast
import math
import sys
from pathlib import Path
from typing import Any

import torch

from inrgen.data.datasets import (
    SOURCES,
    DataSourceError,
    build_dataset,
    get_source,
    polymnist_cache_params,
    source_available,
)
from inrgen.data.datasets._common import cache_folder, is_generated

__all__ = ["datasets_command", "source_status", "list_sources_table", "render_examples", "parse_options"]


def source_status(name: str, root: str | None = None) -> tuple[str, str]:
    """``(status, location)``: status is "yes", "no", "cached" (generated before) or "generates"."""
    info = get_source(name)
    if info.synthetic is not None or (name == "polymnist" and root is None):
        if root is not None:
            return ("cached" if is_generated(root) else "generates"), str(root)
        params = dict(info.generator_defaults)
        if name == "polymnist":
            params = polymnist_cache_params()
        folder = cache_folder(name, params)
        if is_generated(folder):
            return "cached", str(folder)
        return ("generates" if source_available(name) else "no"), str(folder)
    loc = root or info.default_root or "(pass --root)"
    return ("yes" if source_available(name, root) else "no"), str(loc)


def list_sources_table(root: str | None = None) -> str:
    """The table ``inrgen datasets`` prints."""
    rows = [("source", "modality", "here", "location", "description")]
    for name, info in SOURCES.items():
        status, loc = source_status(name, root)
        rows.append((name, info.modality, status, loc, info.description))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    lines.insert(1, "-" * min(160, len(lines[0])))
    lines.append("")
    lines.append(
        "here: yes = files found, no = missing (see location), generates = synthetic, made on first use "
        "(a few seconds), cached = already generated"
    )
    return "\n".join(lines)


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` to a dict; values are Python literals when they parse (``3``, ``0.5``, ``None``,
    ``(0, 25)``) and strings otherwise."""
    out: dict[str, Any] = {}
    for it in items or []:
        key, sep, val = it.partition("=")
        if not sep or not key:
            raise ValueError(f"option {it!r} must look like key=value")
        try:
            out[key.strip()] = ast.literal_eval(val)
        except (ValueError, SyntaxError):
            out[key.strip()] = val
    return out


def _scale_for(h: int, w: int, target: int = 96) -> int:
    return max(1, min(8, round(target / max(h, w))))


def render_examples(
    source: str,
    n: int = 16,
    out: str | Path = "examples.png",
    root: str | None = None,
    split: str = "train",
    options: dict[str, Any] | None = None,
    globe: bool = False,
) -> Path:
    """Render ``n`` items of ``source`` / ``split``, evenly spaced over the split, to a PNG grid."""
    from inrgen import viz

    if n < 1:
        raise ValueError(f"-n must be >= 1, got {n}")
    info = get_source(source)
    opts = dict(options or {})
    if info.modality == "voxel":
        opts.setdefault("num_points", None)
    if info.modality == "views":
        opts.setdefault("n_support", 3)
    ds = build_dataset(source, root, split, **opts)
    total = len(ds)  # type: ignore[arg-type]
    n = min(n, total)
    picks = sorted({round(k * (total - 1) / max(n - 1, 1)) for k in range(n)})  # spread over the split
    items = [ds[i] for i in picks]
    nrow = max(1, math.ceil(math.sqrt(n)))
    if info.modality == "image":
        imgs = torch.cat([it.to_image() for it in items])
        return viz.save_image_grid(imgs, out, nrow=nrow, scale=_scale_for(imgs.shape[-2], imgs.shape[-1]))
    if info.modality == "voxel":
        renders = torch.stack([viz.render_voxels(it.to_volume()[0]) for it in items])
        return viz.save_image_grid(renders, out, nrow=nrow)
    if info.modality == "sphere":
        maps = []
        for it in items:
            field = it.to_grid(fill=float("nan"))[0, 0]
            lat, lon = it.meta["lat"], it.meta["lon"]
            if globe:
                maps.append(viz.render_globe(field, lat, lon, size=160, vmin=0.0, vmax=1.0))
            else:
                maps.append(viz.render_latlon(field, lat, lon, vmin=0.0, vmax=1.0))
        fields = torch.stack(maps)
        scale = _scale_for(fields.shape[-2], fields.shape[-1], 256)
        return viz.save_image_grid(fields, out, nrow=max(1, math.ceil(math.sqrt(n / 2))), scale=scale)
    # views: one row per object, support views then query views
    rows = viz.views_grid(
        torch.cat([it.context.to_views() for it in items]), torch.cat([it.target.to_views() for it in items])
    )
    v = items[0].context.grid_shape[0] + items[0].target.grid_shape[0]
    return viz.save_image_grid(rows, out, nrow=v, scale=_scale_for(rows.shape[-2], rows.shape[-1]))


def _render_all(ns: argparse.Namespace) -> int:
    """``--render all``: every source usable here (real ones found, synthetic ones generated) into the
    folder ``--out`` (default ``outputs/``), one ``<source>.png`` each; failures are reported, not fatal."""
    from inrgen.training.outputs import check_output_file, fix_modes

    out_dir = Path(ns.out or "outputs")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is not a folder; --render all writes one <source>.png per source")
    usable = []
    for name in SOURCES:
        status, _ = source_status(name)
        if status == "no":
            print(f"skip {name}: not on this machine")
        else:
            usable.append(name)
    for name in usable:  # every target, before anything is rendered
        check_output_file(out_dir / f"{name}.png", ns.overwrite)
    failed = 0
    for name in usable:
        try:
            path = render_examples(
                name, ns.n, out_dir / f"{name}.png", None, ns.split, parse_options(ns.option)
            )
            fix_modes(path)  # the user's umask, not the temporary file's 0600
            print(f"wrote {path}")
        except (DataSourceError, KeyError, ValueError, TypeError) as err:
            failed += 1
            print(f"inrgen datasets: {name}: error: {err}", file=sys.stderr)
    return 1 if failed else 0


def datasets_command(args: list[str] | None = None) -> int:
    """Entry point of ``inrgen datasets`` (returns the exit code)."""
    p = argparse.ArgumentParser(
        prog="inrgen datasets",
        description="List the data sources and whether they are present; render examples to a PNG grid.",
    )
    p.add_argument(
        "--render", metavar="NAME", help="render examples of this source ('all': every source here)"
    )
    p.add_argument("-n", type=int, default=16, help="number of examples (default 16)")
    p.add_argument("--out", default=None, help="PNG file to write (default outputs/<NAME>.png)")
    p.add_argument("--root", default=None, help="where the source's files are (default: its usual place)")
    p.add_argument("--split", default="train", help="train | val | test | all (default train)")
    p.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="source option (repeatable)")
    p.add_argument("--globe", action="store_true", help="draw sphere fields as globes instead of maps")
    p.add_argument("--overwrite", action="store_true", help="replace an existing PNG at --out")
    ns = p.parse_args(args)
    try:
        if ns.render is None:
            print(list_sources_table(ns.root))
            return 0
        if ns.render == "all":
            return _render_all(ns)
        from inrgen.training.outputs import check_output_file, fix_modes

        out = ns.out or f"outputs/{ns.render}.png"
        get_source(ns.render)  # an unknown source is named first
        check_output_file(out, ns.overwrite)
        path = render_examples(ns.render, ns.n, out, ns.root, ns.split, parse_options(ns.option), ns.globe)
        fix_modes(path)
    except (DataSourceError, KeyError, ValueError, TypeError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"inrgen datasets: error: {msg}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(datasets_command())

"""What the ``inrgen`` subcommands do with a trained checkpoint, as functions that return a summary.

Each function checks everything first (the checkpoint folder, the output folder, every input against
what the model was trained on) and only then works, inside :func:`~inrgen.training.outputs.atomic_output`:
the output folder appears complete or not at all, and an earlier folder is only replaced with
``overwrite=True``. Images and maps are written as PNG, volumes and fields as ``.npy`` (fields in the
units of the data, the checkpoint's normalisation undone), and every folder gets a ``summary.json``.

| function        | task (``inrgen.tasks``)                       | files per input                         |
|-----------------|-----------------------------------------------|-----------------------------------------|
| run_reconstruct | reconstruct, superresolve (``scale``)         | input, recon, x{scale}                  |
| run_complete    | complete with ``inrgen.data.masks.parse_mask`` | input, masked, completed, composite    |
| run_sample      | generate from the prior at any resolution     | samples grid, sample-XX                 |
| run_segment     | segment (mixture weights, posterior pi~)      | input, recon, segmentation, entropy     |
| run_novel_view  | novel_view from support views and new poses   | support, view-XX                        |
| run_evaluate    | per-item PSNR and loss terms on a data split  | metrics.json                            |

Example:
    >>> summary = run_reconstruct("runs/mnist", "digits/", "outputs/recon", scale=4)  # doctest: +SKIP
    >>> summary["inputs"][0]["psnr"]                                                  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from inrgen import coords as C
from inrgen import tasks
from inrgen.checkpoint import load_config, load_model, resolve_folder
from inrgen.configs.base import DataConfig, check_seed
from inrgen.data.points import PointSet
from inrgen.metrics.psnr import psnr
from inrgen.models.base import INRModel, Prediction
from inrgen.training.inputs import (
    InputError,
    InputItem,
    ModelSpec,
    read_inputs,
    read_poses,
    read_support_views,
)
from inrgen.training.outputs import (
    OutputError,
    atomic_output,
    check_output_dir,
    display_images,
    save_grid,
    write_json,
    write_npy,
)

__all__ = [
    "load_checkpoint",
    "data_for_path",
    "run_reconstruct",
    "run_complete",
    "run_sample",
    "run_segment",
    "run_novel_view",
    "run_evaluate",
    "available_memory",
]

DEFAULT_CHUNK = 16384
SAMPLE_BATCH = 256  # latents drawn per call of the prior (a fixed size: results do not depend on memory)


def load_checkpoint(path: str | os.PathLike) -> tuple[INRModel, ModelSpec, Path]:
    """The model (eval mode, CPU), what it was trained on, and the checkpoint folder."""
    folder = resolve_folder(path)
    cfg = load_config(folder)
    model = load_model(folder)
    return model, ModelSpec.from_config(cfg), folder


def data_for_path(data: DataConfig, path: str | os.PathLike, channels: int, what: str) -> DataConfig:
    """``data`` pointed at a user's files of the same modality (``--data``): the source is guessed from the
    files, images are resized to the preset's grid and read with the model's channel count."""
    from inrgen.data.datasets import SOURCES, guess_source, require_modality

    want = SOURCES[data.source].modality if data.source in SOURCES else None
    if want is not None:
        require_modality(path, want, what=what)
    src = guess_source(path)
    new = copy.deepcopy(data)
    new.root = str(Path(path).expanduser())
    if src != data.source:
        new.source = src
        if SOURCES[src].modality == "image" and src in ("images", "celebahq"):
            size = data.options.get("size")
            if size is None and data.source in SOURCES:
                size = SOURCES[data.source].grid_shape
            new.options = {"mode": "L" if channels == 1 else "RGB"}
            if size is not None:
                new.options["size"] = list(size) if not isinstance(size, int) else size
        else:
            new.options = {}
    return new


# ------------------------------------------------------------------------------------- helpers


def _grid_inputs(items: list[InputItem], what: str) -> None:
    for it in items:
        if it.points.grid_shape is None:
            raise InputError(
                f"{it.source}: {what} needs inputs on a regular grid (images, volumes, lat/lon fields)"
            )


def _as_raw(values: Tensor, points: PointSet) -> Tensor:
    """Values ``(1, N, C)`` as the array saved in ``.npy``: volumes ``(D, H, W)``, fields ``(n_lat, n_lon)``
    in the data's units (the normalisation undone), images ``(C, H, W)``."""
    v = values.detach().float().cpu()
    g = v[0].transpose(0, 1).reshape(v.shape[2], *points.grid_shape)  # (C, *grid)
    if points.kind == "sphere":
        stats = points.meta.get("stats")
        if stats:
            from inrgen.data.datasets.sphere import denormalize_values

            g = denormalize_values(g, stats)
        return g[0]
    return g[0] if len(points.grid_shape) == 3 and g.shape[0] == 1 else g


def _save(tmp: Path, name: str, values: Tensor, points: PointSet, raw: bool) -> list[str]:
    """PNG of ``values (1, N, C)`` (and ``.npy`` of volumes and fields); returns the file names."""
    files = []
    img = display_images(values, points.grid_shape, points.kind, points.meta)
    if img is not None:
        save_grid(tmp / f"{name}.png", img, nrow=1)
        files.append(f"{name}.png")
    if raw and (points.kind != "grid" or len(points.grid_shape or ()) == 3):
        write_npy(tmp / f"{name}.npy", _as_raw(values, points).numpy())
        files.append(f"{name}.npy")
    return files


def _shown(points: PointSet) -> Tensor:
    """The observed values, NaN where unobserved (drawn grey)."""
    return torch.where(
        points.observed.unsqueeze(-1), points.values, torch.full_like(points.values, float("nan"))
    )


def _item_psnr(pred: Tensor, points: PointSet, mask: Tensor | None = None) -> float:
    m = points.observed if mask is None else (points.observed & mask)
    if not m.any():
        return float("nan")
    return float(psnr(pred.float(), points.values.float(), mask=m, clamp=True)[0])


def _summary(command: str, folder: Path, spec: ModelSpec, **kw: Any) -> dict[str, Any]:
    return {"command": command, "checkpoint": str(folder), "preset": spec.preset, "model": spec.model, **kw}


@dataclass
class _Guard:
    """What an output folder must not be: another command's, or one holding this command's inputs."""

    command: str
    protect: list[Any]

    def check(self, out: str | os.PathLike, overwrite: bool) -> Path:
        return check_output_dir(out, overwrite, self.command, self.protect)

    def output(self, out: str | os.PathLike, overwrite: bool, **info: Any):
        return atomic_output(out, overwrite, self.command, self.protect, **info)


def _check_chunk(chunk_size: int | None) -> int | None:
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"--chunk-size must be >= 1, got {chunk_size}")
    return chunk_size


# ------------------------------------------------------------------------------------- sizes


def available_memory() -> int:
    """Bytes of memory this process may still use: Linux's MemAvailable, capped by a cgroup limit."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 8 * 2**30
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                avail = min(avail, int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        pass
    return max(int(avail), 0)


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def _point_bytes(model: INRModel, latent: Any, coords: Tensor) -> float:
    """Bytes one decoded point occupies in memory, measured by decoding a few points: every tensor of
    the model's prediction (kept twice while chunks are concatenated), its coordinates, and the image
    drawn from it."""
    k = min(coords.shape[1], 16)
    with torch.no_grad():
        pred = model.decode(latent, coords[:, :k])
    kept = sum(
        t.numel() * t.element_size() for n in Prediction._TENSORS if (t := getattr(pred, n)) is not None
    ) / (coords.shape[0] * k)
    return 2 * kept + coords.element_size() * coords.shape[-1] + 64


def _require_fits(points: int, per_point: float, what: str, fits: str) -> None:
    """Refuse (before any work) an output of ``points`` points that cannot fit in memory."""
    need, have = points * per_point, available_memory()
    if need > 0.8 * have:
        raise ValueError(
            f"{what} is {points:,} points; decoding it needs about {_gb(need)} of memory, but {_gb(have)} "
            f"are available: {fits}"
        )


def _max_fitting(per_point: float) -> int:
    """The most points an output may have in the memory available now."""
    return int(0.8 * available_memory() / per_point)


# ------------------------------------------------------------------------------------ commands


def run_reconstruct(
    ckpt: str | os.PathLike,
    input: str | os.PathLike,
    out: str | os.PathLike,
    scale: float | None = None,
    chunk_size: int | None = DEFAULT_CHUNK,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Reconstruct every input at its own points and, with ``scale``, on a ``scale`` times finer grid."""
    _check_chunk(chunk_size)
    model, spec, folder = load_checkpoint(ckpt)
    guard = _Guard("reconstruct", [folder, input])
    guard.check(out, overwrite)
    if scale is not None and not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"--scale must be a finite number > 0, got {scale}")
    items = read_inputs(input, spec)
    if scale is not None:
        _grid_inputs(items, "super-resolution (--scale)")
        if spec.modality == "sphere":
            raise InputError(
                "--scale works on images and volumes; sphere fields are decoded at their own grid"
            )
        _check_superres(model, items, scale)
    rows = []
    with guard.output(out, overwrite, checkpoint=str(folder)) as tmp:
        for it in items:
            pts = it.points
            pred = tasks.reconstruct(model, pts, chunk_size)
            row: dict[str, Any] = {"name": it.name, **it.notes, "psnr": _item_psnr(pred.mean, pts)}
            row["files"] = _save(tmp, f"{it.name}-input", _shown(pts), pts, raw=False)
            row["files"] += _save(tmp, f"{it.name}-recon", pred.mean, pts, raw=True)
            if scale is not None:
                sr, shape = tasks.superresolve(model, pts, scale, chunk_size)
                grid_pts = PointSet(
                    sr.mean.new_zeros(1, sr.mean.shape[1], pts.coord_dim), sr.mean, grid_shape=shape
                )
                row["files"] += _save(tmp, f"{it.name}-x{scale:g}", sr.mean, grid_pts, raw=True)
                row["superres_shape"] = list(shape)
            rows.append(row)
        summary = _summary("reconstruct", folder, spec, scale=scale, inputs=rows, psnr_mean=_mean(rows))
        write_json(tmp / "summary.json", summary)
    return summary


def _check_superres(model: INRModel, items: list[InputItem], scale: float) -> None:
    """Refuse a ``--scale`` whose finer grid cannot fit in memory, naming the largest scale that does."""
    for it in items:
        grid_in = tuple(it.points.grid_shape or ())  # on a grid: _grid_inputs checked
        shape = C.superres_shape(grid_in, scale, it.points.meta.get("align", "center"))
        n = math.prod(shape)
        if n * 64 < 0.1 * available_memory():
            continue  # clearly fits: no need to measure
        with torch.no_grad():
            latent = model.encode(it.points)
        per = _point_bytes(model, latent, it.points.coords)
        n_in = math.prod(grid_in)
        best = (_max_fitting(per) / n_in) ** (1 / len(shape))
        grid = "x".join(map(str, shape))
        _require_fits(n, per, f"--scale {scale:g} turns {it.source} into a {grid} grid, which",
                      f"choose --scale <= {math.floor(best * 100) / 100:g} (or free memory)")  # fmt: skip


def _mean(rows: list[dict[str, Any]], key: str = "psnr") -> float | None:
    vals = [r[key] for r in rows if isinstance(r.get(key), float) and math.isfinite(r[key])]
    return sum(vals) / len(vals) if vals else None


def run_complete(
    ckpt: str | os.PathLike,
    input: str | os.PathLike,
    mask: str,
    out: str | os.PathLike,
    chunk_size: int | None = DEFAULT_CHUNK,
    overwrite: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Encode only the points ``mask`` keeps (in-painting box, half, out-painting, random) and decode all."""
    from inrgen.data.masks import parse_mask

    _check_chunk(chunk_size)
    check_seed(seed)
    model, spec, folder = load_checkpoint(ckpt)
    guard = _Guard("complete", [folder, input])
    guard.check(out, overwrite)
    items = read_inputs(input, spec)
    _grid_inputs(items, "completion (--mask)")
    g = torch.Generator().manual_seed(seed)
    keeps = [parse_mask(mask, it.points.grid_shape, generator=g) for it in items]
    for it, keep in zip(items, keeps):
        if not (keep & it.points.observed[0]).any():
            raise InputError(f"mask {mask!r} hides every observed point of {it.source}: nothing to encode")
    rows = []
    with guard.output(out, overwrite, checkpoint=str(folder), mask=mask) as tmp:
        for it, keep in zip(items, keeps):
            pts = it.points
            pred = tasks.complete(model, pts, keep, chunk_size)
            hidden = ~keep.unsqueeze(0)
            composite = torch.where(keep.view(1, -1, 1), pts.values, pred.mean)
            row: dict[str, Any] = {
                "name": it.name,
                **it.notes,
                "kept_fraction": float(keep.float().mean()),
                "psnr_hidden": _item_psnr(pred.mean, pts, hidden),
                "psnr": _item_psnr(pred.mean, pts),
            }
            files = _save(tmp, f"{it.name}-input", _shown(pts), pts, raw=False)
            files += _save(tmp, f"{it.name}-masked", _shown(pts.with_mask(keep)), pts, raw=False)
            files += _save(tmp, f"{it.name}-completed", pred.mean, pts, raw=True)
            files += _save(tmp, f"{it.name}-composite", composite, pts, raw=False)
            var = tasks.predictive_variance(pred)
            if var is not None and pts.kind == "grid" and len(pts.grid_shape or ()) == 2:
                from inrgen import viz  # per-point predictive uncertainty (std), shared colour range

                unc = viz.uncertainty_map(var, pts.grid_shape)
                save_grid(tmp / f"{it.name}-uncertainty.png", unc)
                files.append(f"{it.name}-uncertainty.png")
                row["uncertainty_std_hidden_mean"] = float(var[hidden].clamp_min(0).sqrt().mean())
                row["uncertainty_std_kept_mean"] = float(var[~hidden].clamp_min(0).sqrt().mean())
            row["files"] = files
            rows.append(row)
        summary = _summary(
            "complete", folder, spec, mask=mask, inputs=rows, psnr_hidden_mean=_mean(rows, "psnr_hidden")
        )
        write_json(tmp / "summary.json", summary)
    return summary


_SIZES = {"image": (1, 2), "voxel": (1, 3), "sphere": (1, 2)}
_SIZE_EXAMPLES = {"image": "64 or 48x64", "voxel": "32 or 32x32x48", "sphere": "46 or 46x90"}


def _parse_resolution(spec: ModelSpec, resolution: str | int) -> tuple[int, ...]:
    """The grid shape of ``--resolution`` for the model's modality: exactly one size, or one per axis."""
    if spec.modality not in _SIZES:
        raise InputError(f"sampling is not defined for {spec.modality} models")
    text = str(resolution).strip().lower()
    parts = re.split(r"\s*[x,]\s*", text)
    ex = _SIZE_EXAMPLES[spec.modality]
    if not text or not all(p.isdigit() for p in parts) or min(int(p) for p in parts) < 1:
        raise ValueError(f"--resolution must be positive sizes such as {ex}, got {resolution!r}")
    sizes = tuple(int(p) for p in parts)
    if len(sizes) not in _SIZES[spec.modality]:
        dims = _SIZES[spec.modality][1]
        raise ValueError(
            f"--resolution {resolution} has {len(sizes)} sizes, but {spec.modality} models take one "
            f"size or {dims} (e.g. {ex})"
        )
    if spec.modality == "image":
        return sizes if len(sizes) == 2 else (sizes[0], sizes[0])
    if spec.modality == "voxel":
        return sizes if len(sizes) == 3 else (sizes[0],) * 3
    return sizes if len(sizes) == 2 else (sizes[0], 2 * sizes[0])


def _sample_grid(
    spec: ModelSpec, resolution: str | int
) -> tuple[Tensor, tuple[int, ...], str, dict[str, Any]]:
    """Coordinates ``(N, d)``, grid shape, kind and meta of a sampling grid of ``resolution``."""
    shape = _parse_resolution(spec, resolution)
    if spec.modality == "sphere":
        lat, lon = C.equiangular_latlon(*shape)
        return C.latlon_grid(lat, lon), shape, "sphere", {"lat": lat, "lon": lon}
    return C.grid(shape), shape, "grid", {}


def run_sample(
    ckpt: str | os.PathLike,
    n: int,
    resolution: str | int,
    out: str | os.PathLike,
    seed: int = 0,
    chunk_size: int | None = DEFAULT_CHUNK,
    overwrite: bool = False,
) -> dict[str, Any]:
    """``n`` functions from a generative model's prior, decoded on a grid of ``resolution``.

    Sizes are checked first: one sample must fit in memory (else the largest resolution that does is
    named). Large requests stream: latents are drawn ``SAMPLE_BATCH`` at a time (seeded once, so the
    samples depend on ``seed`` only), decoded and written a few at a time, and the run stops early when
    the files would not fit on the disk. ``samples.png`` shows the first 64.
    """
    _check_chunk(chunk_size)
    check_seed(seed)
    model, spec, folder = load_checkpoint(ckpt)
    if not getattr(model, "generative", False) or getattr(model, "sample_latent", None) is None:
        raise InputError(
            f"{type(model).__name__} ({spec.preset}) is not generative: it has no prior to sample from "
            "(sample from a generative model such as VaMoH)"
        )
    sample_latent: Any = model.sample_latent  # generative models have it (checked above)
    n = int(n)
    if n < 1:
        raise ValueError(f"-n must be >= 1, got {n}")
    guard = _Guard("sample", [folder])
    guard.check(out, overwrite)
    shape = _parse_resolution(spec, resolution)
    points = math.prod(shape)
    dim = 3 if spec.modality == "sphere" else len(shape)
    per = 4.0 * (2 * (dim + spec.channels) + dim) + 32  # a lower bound, measured below when it matters
    if points * per > 0.05 * available_memory():
        with torch.no_grad():
            probe = sample_latent(1, generator=torch.Generator().manual_seed(0))
        per = _point_bytes(model, probe, torch.zeros(1, 16, dim))
    side = int(_max_fitting(per) ** (1 / len(shape)))
    _require_fits(points, per, f"one sample on a {'x'.join(map(str, shape))} grid",
                  f"the largest grid that fits is about {'x'.join([str(side)] * len(shape))}")  # fmt: skip
    per_batch = max(1, min(SAMPLE_BATCH, int(0.25 * available_memory() // (points * per))))
    xy, shape, kind, meta = _sample_grid(spec, resolution)
    width = max(2, len(str(n - 1)))
    n_shown = min(64, n, per_batch)  # the grid of the first samples (at most a batch's memory)
    with guard.output(out, overwrite, checkpoint=str(folder)) as tmp, torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        files: list[str] = []
        shown: list[Tensor] = []
        written = 0
        for s0 in range(0, n, SAMPLE_BATCH):
            latent = sample_latent(min(SAMPLE_BATCH, n - s0), generator=g)
            for b0 in range(0, len(latent), per_batch):
                z = latent[b0 : b0 + per_batch]
                coords = xy.unsqueeze(0).expand(len(z), -1, -1).to(xy.dtype)
                mean = tasks.decode_chunked(model, z, coords, chunk_size).mean
                pts = PointSet(coords, mean, grid_shape=shape, kind=kind, meta=meta)
                for j in range(len(z)):
                    i = s0 + b0 + j
                    names = _save(tmp, f"sample-{i:0{width}d}", mean[j : j + 1], pts[j],
                                  raw=spec.modality != "image")  # fmt: skip
                    files += names
                    written += sum((tmp / f).stat().st_size for f in names)
                if sum(map(len, shown)) < n_shown:
                    shown.append(mean[: n_shown - sum(map(len, shown))].clone())
                done = s0 + b0 + len(z)
                _check_disk(tmp, written, done, n, resolution)
        mean = torch.cat(shown)
        img = display_images(mean, shape, kind, meta)
        if img is not None:
            save_grid(tmp / "samples.png", img, nrow=min(8, len(mean)))
            files.insert(0, "samples.png")
        summary = _summary("sample", folder, spec, n=n, resolution=list(shape), seed=seed, files=files)
        write_json(tmp / "summary.json", summary)
    return summary


def _check_disk(tmp: Path, written: int, done: int, n: int, resolution: Any) -> None:
    """Stop a stream of samples whose remaining files would not fit on the disk."""
    if done >= n or written == 0:
        return
    need = written / done * (n - done)
    free = shutil.disk_usage(tmp).free
    if need > 0.95 * free:
        raise OutputError(
            f"-n {n} at --resolution {resolution} would write about {_gb(written / done * n)}, but only "
            f"{_gb(free + written)} are free on the disk of {tmp.parent}: at most about "
            f"{int((free + written) * 0.95 / (written / done)):,} samples fit (nothing was written)"
        )


def run_segment(
    ckpt: str | os.PathLike,
    input: str | os.PathLike,
    out: str | os.PathLike,
    chunk_size: int | None = DEFAULT_CHUNK,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Segmentation (most probable mixture component) and entropy maps of the posterior weights pi~."""
    from inrgen import viz

    _check_chunk(chunk_size)
    model, spec, folder = load_checkpoint(ckpt)
    guard = _Guard("segment", [folder, input])
    guard.check(out, overwrite)
    items = read_inputs(input, spec)
    _grid_inputs(items, "segmentation")
    rows = []
    with guard.output(out, overwrite, checkpoint=str(folder)) as tmp:
        for it in items:
            pts = it.points
            try:
                labels, entropy, pred = tasks.segment(model, pts, chunk_size)
            except ValueError as err:
                raise InputError(f"{spec.preset}: {err}") from None
            w = torch.where(
                pts.observed.unsqueeze(-1), pred.weights, torch.full_like(pred.weights, float("nan"))
            )
            files = _save(tmp, f"{it.name}-input", _shown(pts), pts, raw=False)
            files += _save(tmp, f"{it.name}-recon", pred.mean, pts, raw=False)
            k = pred.weights.shape[-1]
            if len(pts.grid_shape) == 2:
                seg = viz.segmentation_map(pred.weights, pts.grid_shape)
                ent = viz.entropy_map(w.nan_to_num(1.0 / k), pts.grid_shape)
                save_grid(tmp / f"{it.name}-segmentation.png", seg, nrow=1)
                save_grid(tmp / f"{it.name}-entropy.png", ent, nrow=1)
                files += [f"{it.name}-segmentation.png", f"{it.name}-entropy.png"]
            write_npy(tmp / f"{it.name}-segmentation.npy", labels[0].reshape(pts.grid_shape).numpy())
            write_npy(tmp / f"{it.name}-entropy.npy", entropy[0].reshape(pts.grid_shape).numpy())
            files += [f"{it.name}-segmentation.npy", f"{it.name}-entropy.npy"]
            counts = torch.bincount(labels[0], minlength=k).tolist()
            rows.append({"name": it.name, **it.notes, "components_used": counts,
                         "mean_entropy": float(entropy.mean()), "files": files})  # fmt: skip
        summary = _summary("segment", folder, spec, inputs=rows)
        write_json(tmp / "summary.json", summary)
    return summary


def run_novel_view(
    ckpt: str | os.PathLike,
    views: str | os.PathLike,
    pose: str | os.PathLike,
    out: str | os.PathLike,
    chunk_size: int | None = 4096,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Render the views a set of support views implies from new camera poses."""
    _check_chunk(chunk_size)
    model, spec, folder = load_checkpoint(ckpt)
    if spec.modality != "views" and spec.coord_dim != 6:
        raise InputError(
            f"{spec.preset} was trained on {spec.modality} data, not on views: novel-view needs a "
            "light-field model (e.g. a laginr-nvs-* or ipc/transinr views preset)"
        )
    guard = _Guard("novel-view", [folder, views, pose])
    guard.check(out, overwrite)
    n_support = int(spec.data.options.get("n_support", 1))
    size = spec.data.options.get("image_size")
    support, fov, (h, w), imgs = read_support_views(views, n_support, size)
    c2w, fov = read_poses(pose, fov)
    K = C.intrinsics_from_fov(fov, w, h)
    _require_fits(len(c2w) * h * w, 4.0 * (6 * 3 + 3 * 3) + 32, f"{len(c2w)} view(s) of {h}x{w} pixels",
                  "render fewer poses at a time")  # fmt: skip
    with guard.output(out, overwrite, checkpoint=str(folder)) as tmp:
        rendered = tasks.novel_view(model, support, c2w.unsqueeze(0), K, h, w, chunk_size)[0]  # (Q, 3, H, W)
        save_grid(tmp / "support.png", imgs, nrow=len(imgs))
        files = ["support.png"]
        for q in range(len(rendered)):
            save_grid(tmp / f"view-{q:02d}.png", rendered[q : q + 1].clamp(0, 1), nrow=1)
            files.append(f"view-{q:02d}.png")
        save_grid(tmp / "views.png", rendered.clamp(0, 1), nrow=min(8, len(rendered)))
        files.append("views.png")
        summary = _summary("novel-view", folder, spec, support=n_support, poses=len(rendered), files=files,
                           image_size=[h, w])  # fmt: skip
        write_json(tmp / "summary.json", summary)
    return summary


def run_evaluate(
    ckpt: str | os.PathLike,
    data: str | os.PathLike | None,
    out: str | os.PathLike | None,
    split: str = "test",
    num: int | None = None,
    chunk_size: int | None = DEFAULT_CHUNK,
    overwrite: bool = False,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Per-item PSNR (mean and std) and the model's loss terms on ``split`` of the checkpoint's data
    (or of ``data``, a path of the same modality)."""
    from inrgen.data.points import collate
    from inrgen.training.data import EvalDataset, build_split
    from inrgen.training.evaluation import evaluate

    _check_chunk(chunk_size)
    if num is not None and num < 1:
        raise ValueError(f"--num must be >= 1 (items to evaluate), got {num}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    model, spec, folder = load_checkpoint(ckpt)
    guard = _Guard("evaluate", [folder, data])
    if out is not None:
        guard.check(out, overwrite)
    cfg = spec.data
    if data is not None:
        cfg = data_for_path(cfg, data, spec.channels, what=f"the model of {spec.preset}")
    if cfg.source in ("era5", "era5-npz", "coads-sst", "sphere-synthetic", "era5-npz-synthetic"):
        if spec.data_info.get("stats") is not None:
            cfg.options = {**cfg.options, "stats": spec.data_info["stats"]}
    ds = build_split(cfg, split)
    first = ds[0]
    pts = first.context if hasattr(first, "context") else first
    try:
        model.check_points(pts, what=f"the {split} data")
    except ValueError as err:
        raise InputError(str(err)) from None
    step = int(load_config(folder).get("step", 0))
    eval_set = EvalDataset(ds, num if num is not None else len(ds), seed=0)
    bs = batch_size or cfg.eval_batch_size

    def batches():
        for s in range(0, len(eval_set), bs):
            yield collate([eval_set[i] for i in range(s, min(len(eval_set), s + bs))])

    summary = evaluate(model, batches(), step=step, chunk_size=chunk_size)
    summary = {"checkpoint": str(folder), "preset": spec.preset, "data": cfg.source, "root": cfg.root,
               "split": split, **summary}  # fmt: skip
    if out is not None:
        with guard.output(out, overwrite, checkpoint=str(folder)) as tmp:
            write_json(tmp / "metrics.json", summary)
    return summary

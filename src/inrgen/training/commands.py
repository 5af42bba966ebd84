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
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from inrgen import coords as C
from inrgen import tasks
from inrgen.checkpoint import load_config, load_model, resolve_folder
from inrgen.configs.base import DataConfig
from inrgen.data.points import PointSet
from inrgen.metrics.psnr import psnr
from inrgen.models.base import INRModel
from inrgen.training.inputs import (
    InputError,
    InputItem,
    ModelSpec,
    read_inputs,
    read_poses,
    read_support_views,
)
from inrgen.training.outputs import (
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
]

DEFAULT_CHUNK = 16384


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


def _check_chunk(chunk_size: int | None) -> int | None:
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"--chunk-size must be >= 1, got {chunk_size}")
    return chunk_size


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
    check_output_dir(out, overwrite)
    if scale is not None and not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"--scale must be a finite number > 0, got {scale}")
    items = read_inputs(input, spec)
    if scale is not None:
        _grid_inputs(items, "super-resolution (--scale)")
        if spec.modality == "sphere":
            raise InputError(
                "--scale works on images and volumes; sphere fields are decoded at their own grid"
            )
    rows = []
    with atomic_output(out, overwrite, "reconstruct", checkpoint=str(folder)) as tmp:
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
    model, spec, folder = load_checkpoint(ckpt)
    check_output_dir(out, overwrite)
    items = read_inputs(input, spec)
    _grid_inputs(items, "completion (--mask)")
    g = torch.Generator().manual_seed(seed)
    keeps = [parse_mask(mask, it.points.grid_shape, generator=g) for it in items]
    for it, keep in zip(items, keeps):
        if not (keep & it.points.observed[0]).any():
            raise InputError(f"mask {mask!r} hides every observed point of {it.source}: nothing to encode")
    rows = []
    with atomic_output(out, overwrite, "complete", checkpoint=str(folder), mask=mask) as tmp:
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
            row["files"] = files
            rows.append(row)
        summary = _summary(
            "complete", folder, spec, mask=mask, inputs=rows, psnr_hidden_mean=_mean(rows, "psnr_hidden")
        )
        write_json(tmp / "summary.json", summary)
    return summary


def _sample_grid(
    spec: ModelSpec, resolution: str | int
) -> tuple[Tensor, tuple[int, ...], str, dict[str, Any]]:
    """Coordinates ``(N, d)``, grid shape, kind and meta of a sampling grid of ``resolution``."""
    text = str(resolution).lower()
    try:
        sizes = tuple(int(s) for s in text.replace("x", ",").split(",") if s)
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--resolution must be a positive size such as 64 or 48x64, got {resolution!r}")
    if spec.modality == "image":
        shape = sizes if len(sizes) == 2 else (sizes[0], sizes[0])
        return C.grid(shape), shape, "grid", {}
    if spec.modality == "voxel":
        shape = sizes if len(sizes) == 3 else (sizes[0],) * 3
        return C.grid(shape), shape, "grid", {}
    if spec.modality == "sphere":
        shape = sizes if len(sizes) == 2 else (sizes[0], 2 * sizes[0])
        lat, lon = C.equiangular_latlon(*shape)
        return C.latlon_grid(lat, lon), shape, "sphere", {"lat": lat, "lon": lon}
    raise InputError(f"sampling is not defined for {spec.modality} models")


def run_sample(
    ckpt: str | os.PathLike,
    n: int,
    resolution: str | int,
    out: str | os.PathLike,
    seed: int = 0,
    chunk_size: int | None = DEFAULT_CHUNK,
    overwrite: bool = False,
) -> dict[str, Any]:
    """``n`` functions from a generative model's prior, decoded on a grid of ``resolution``."""
    _check_chunk(chunk_size)
    model, spec, folder = load_checkpoint(ckpt)
    if not getattr(model, "generative", False):
        raise InputError(
            f"{type(model).__name__} ({spec.preset}) is not generative: it has no prior to sample from "
            "(sample from a generative model such as VaMoH)"
        )
    if int(n) < 1:
        raise ValueError(f"-n must be >= 1, got {n}")
    check_output_dir(out, overwrite)
    xy, shape, kind, meta = _sample_grid(spec, resolution)
    with atomic_output(out, overwrite, "sample", checkpoint=str(folder)) as tmp:
        g = torch.Generator().manual_seed(seed)
        pred = tasks.generate(model, int(n), coords=xy, chunk_size=chunk_size, generator=g)
        pts = PointSet(
            xy.unsqueeze(0).expand(int(n), -1, -1), pred.mean, grid_shape=shape, kind=kind, meta=meta
        )
        img = display_images(pred.mean, shape, kind, meta)
        files = []
        if img is not None:
            save_grid(tmp / "samples.png", img, nrow=min(8, int(n)))
            files.append("samples.png")
        for i in range(int(n)):
            files += _save(tmp, f"sample-{i:02d}", pred.mean[i : i + 1], pts[i], raw=spec.modality != "image")
        summary = _summary("sample", folder, spec, n=int(n), resolution=list(shape), seed=seed, files=files)
        write_json(tmp / "summary.json", summary)
    return summary


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
    check_output_dir(out, overwrite)
    items = read_inputs(input, spec)
    _grid_inputs(items, "segmentation")
    rows = []
    with atomic_output(out, overwrite, "segment", checkpoint=str(folder)) as tmp:
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
    check_output_dir(out, overwrite)
    n_support = int(spec.data.options.get("n_support", 1))
    size = spec.data.options.get("image_size")
    support, fov, (h, w), imgs = read_support_views(views, n_support, size)
    c2w, fov = read_poses(pose, fov)
    K = C.intrinsics_from_fov(fov, w, h)
    with atomic_output(out, overwrite, "novel-view", checkpoint=str(folder)) as tmp:
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
    model, spec, folder = load_checkpoint(ckpt)
    if out is not None:
        check_output_dir(out, overwrite)
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
        with atomic_output(out, overwrite, "evaluate", checkpoint=str(folder)) as tmp:
            write_json(tmp / "metrics.json", summary)
    return summary

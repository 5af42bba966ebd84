"""Output folders that never clobber a user's files, atomic file writes, and images for display.

Every folder inrgen writes carries a marker file, ``.inrgen.json`` (which command made it and when).

- An existing, non-empty output folder is only replaced with ``overwrite=True``, and only if it carries
  the marker: inrgen never deletes a folder it did not write.
- Task outputs are written into a temporary sibling folder and renamed into place when complete
  (:func:`atomic_output`), so a crash leaves either the old folder or the new one, never a mix.
- Single files (PNG, .npy, JSON) are written to a temporary name in their folder and ``os.replace``-d.

Images for display: :func:`display_images` turns values on any grid into ``(B, C, H, W)`` images in
[0, 1] (images as they are; lat/lon maps as images; volumes as a voxel render or a maximum projection;
multi-view sets as their views side by side).

Example:
    >>> with atomic_output("outputs/recon", overwrite=False, command="reconstruct") as tmp:  # doctest: +SKIP
    ...     write_png(tmp / "a.png", image)
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "MARKER",
    "OutputError",
    "check_output_dir",
    "prepare_run_dir",
    "check_run_dir",
    "atomic_output",
    "write_bytes",
    "write_json",
    "write_npy",
    "save_grid",
    "display_images",
]

MARKER = ".inrgen.json"


class OutputError(ValueError):
    """An output folder that cannot be written or would overwrite a user's earlier output."""


def _nonempty(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _writable_parent(path: Path) -> Path:
    """The nearest existing ancestor of ``path``; raises if it is not a writable folder."""
    p = path.absolute()
    while not p.exists():
        p = p.parent
    if not p.is_dir():
        raise OutputError(f"cannot write to {path}: {p} is a file, not a folder")
    try:  # really try: permission bits say nothing for root, read-only mounts or /proc
        probe = tempfile.mkdtemp(prefix=".inrgen-probe-", dir=p)
        os.rmdir(probe)
    except OSError as err:
        raise OutputError(
            f"cannot write to {path}: {p} is not writable ({err.strerror}); choose another --out"
        ) from None
    return p


def check_output_dir(path: str | os.PathLike, overwrite: bool) -> Path:
    """Check that ``path`` may be written (before any work): a writable location, and either absent,
    empty, or (with ``overwrite``) an earlier inrgen output."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path} exists and is a file; --out must name a folder")
    _writable_parent(path if not path.exists() else path / "x")
    if _nonempty(path):
        if not overwrite:
            raise OutputError(
                f"{path} already exists and is not empty; pass --overwrite to replace it, "
                "or choose another --out"
            )
        if not (path / MARKER).is_file():
            raise OutputError(
                f"{path} was not written by inrgen (no {MARKER}); refusing to delete it even with "
                "--overwrite: choose another --out"
            )
    return path


def _marker(command: str, **info: Any) -> str:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return json.dumps({"command": command, "created": now, **info}, indent=2, sort_keys=True)


def _replace_dir(tmp: Path, path: Path) -> None:
    """Move the finished folder ``tmp`` to ``path`` (an earlier folder there is removed afterwards)."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool, command: str, **info: Any) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``path`` (see the module docstring)."""
    path = check_output_dir(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        (tmp / MARKER).write_text(_marker(command, **info))
        yield tmp
        _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_run_dir(path: str | os.PathLike, overwrite: bool, resume: bool) -> Path:
    """Check (before any work) that a training run may use ``path``: resuming needs an inrgen run
    folder; a new run needs an absent or empty folder, or ``overwrite`` and an earlier inrgen output."""
    path = Path(path)
    if resume:
        if not (path / MARKER).is_file():
            raise OutputError(
                f"cannot resume: {path} is not an inrgen run folder (no {MARKER}); "
                "train without --resume first"
            )
        _writable_parent(path / "x")
        return path
    return check_output_dir(path, overwrite)


def prepare_run_dir(
    path: str | os.PathLike, overwrite: bool, resume: bool, command: str, **info: Any
) -> Path:
    """Create (or, resuming, reuse) a training run folder; never clobbers a user's folder."""
    path = check_run_dir(path, overwrite, resume)
    if resume:
        return path
    if path.exists():
        if _nonempty(path):
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            shutil.rmtree(old, ignore_errors=True)
        else:
            path.rmdir()
    path.mkdir(parents=True)
    write_bytes(path / MARKER, _marker(command, **info).encode())
    return path


# ------------------------------------------------------------------------------------------ files


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write a file atomically (temporary name in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def write_npy(path: str | os.PathLike, array: Tensor | np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, array.detach().cpu().numpy() if isinstance(array, Tensor) else np.asarray(array))
    return write_bytes(path, buf.getvalue())


def display_images(
    values: Tensor, grid_shape: tuple[int, ...] | None, kind: str = "grid", meta: dict[str, Any] | None = None
) -> Tensor | None:
    """Values ``(B, N, C)`` on a grid of ``grid_shape`` as display images ``(B, C', H, W)`` in [0, 1]
    (NaN values stay NaN, drawn grey by ``inrgen.viz``), or None when the points are not on a grid.

    Images as they are; lat/lon fields as maps (north up, ``inrgen.viz.render_latlon``) when ``meta``
    holds ``lat`` and ``lon``; volumes as shaded voxel renders (``inrgen.viz.render_voxels``); multi-view
    sets ``(V, H, W)`` as their views side by side.
    """
    from inrgen import viz

    if grid_shape is None:
        return None
    b, n, c = values.shape
    g = values.detach().float().cpu().transpose(1, 2).reshape(b, c, *grid_shape)
    meta = meta or {}
    if kind == "rays" and len(grid_shape) == 3:
        return torch.cat([g[:, :, i] for i in range(grid_shape[0])], dim=-1).clamp(0, 1)
    if len(grid_shape) == 3:
        return torch.stack([viz.render_voxels(vol[0].nan_to_num(0.0), size=96) for vol in g])
    if len(grid_shape) != 2:
        return None
    if kind == "sphere" and "lat" in meta and "lon" in meta:
        lo, hi = float(np.nanmin(g.numpy())), float(np.nanmax(g.numpy()))
        return torch.stack([viz.render_latlon(f[0], meta["lat"], meta["lon"], vmin=lo, vmax=hi) for f in g])
    if g.shape[1] not in (1, 3):
        g = g[:, :1]
    return g.clamp(0, 1)


def save_grid(path: str | os.PathLike, images: Tensor, nrow: int = 8) -> Path:
    """Tile ``(B, C, H, W)`` images into one PNG (small images enlarged so digits stay readable)."""
    from inrgen import viz

    scale = max(1, 96 // max(images.shape[-2:]))
    return viz.save_image_grid(images, path, nrow=nrow, scale=scale)

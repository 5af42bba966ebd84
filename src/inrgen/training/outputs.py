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
    "atomic_output",
    "write_bytes",
    "write_json",
    "write_png",
    "write_npy",
    "image_grid",
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
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to {path}: {p} is not writable (choose another --out)")
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


def prepare_run_dir(
    path: str | os.PathLike, overwrite: bool, resume: bool, command: str, **info: Any
) -> Path:
    """Create (or, resuming, reuse) a training run folder; never clobbers a user's folder."""
    path = Path(path)
    if resume:
        if not (path / MARKER).is_file():
            raise OutputError(
                f"cannot resume: {path} is not an inrgen run folder (no {MARKER}); "
                "train without --resume first"
            )
        _writable_parent(path / "x")
        return path
    check_output_dir(path, overwrite)
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


def _to_uint8(image: Tensor) -> np.ndarray:
    """``(C, H, W)`` or ``(H, W)`` in [0, 1] to an ``(H, W[, C])`` uint8 array."""
    x = image.detach().float().cpu().clamp(0, 1)
    if x.dim() == 3:
        x = x[0] if x.shape[0] == 1 else x.permute(1, 2, 0)
    return (x * 255 + 0.5).to(torch.uint8).numpy()


def write_png(path: str | os.PathLike, image: Tensor) -> Path:
    """Write one image ``(C, H, W)`` (C in 1, 3, 4) or ``(H, W)`` with values in [0, 1] as PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_to_uint8(image)).save(buf, format="PNG")
    return write_bytes(path, buf.getvalue())


def image_grid(images: Tensor, nrow: int = 8, pad: int = 2, pad_value: float = 1.0, scale: int = 1) -> Tensor:
    """Tile ``(B, C, H, W)`` images into one ``(C, H', W')`` image, ``nrow`` per row, each enlarged
    ``scale`` times (nearest neighbour, so pixels stay visible)."""
    if images.dim() != 4:
        raise ValueError(f"image_grid needs (B, C, H, W), got {tuple(images.shape)}")
    if scale > 1:
        images = images.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
    b, c, h, w = images.shape
    ncol = min(nrow, b)
    rows = (b + ncol - 1) // ncol
    out = torch.full((c, rows * (h + pad) + pad, ncol * (w + pad) + pad), pad_value, dtype=torch.float32)
    for i in range(b):
        r, q = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        out[:, y : y + h, x : x + w] = images[i].float().cpu()
    return out


def display_images(values: Tensor, grid_shape: tuple[int, ...] | None, kind: str = "grid") -> Tensor | None:
    """Values ``(B, N, C)`` on a grid of ``grid_shape`` as display images ``(B, C', H, W)`` in [0, 1], or
    None when the points are not on a grid."""
    if grid_shape is None:
        return None
    b, n, c = values.shape
    g = values.detach().float().cpu().transpose(1, 2).reshape(b, c, *grid_shape)
    if kind == "rays" and len(grid_shape) == 3:  # (B, C, V, H, W): views side by side
        v = grid_shape[0]
        g = torch.cat([g[:, :, i] for i in range(v)], dim=-1)
    elif len(grid_shape) == 3:  # volumes: a render when the viz module has one, else a max projection
        g = _render_volumes(g)
    elif len(grid_shape) != 2:
        return None
    if g.shape[1] not in (1, 3):
        g = g[:, :1]
    if kind == "sphere":  # normalised fields: stretch each map to the full grey range
        lo = g.amin(dim=(1, 2, 3), keepdim=True)
        hi = g.amax(dim=(1, 2, 3), keepdim=True)
        g = (g - lo) / (hi - lo).clamp_min(1e-8)
    return g.clamp(0, 1)


def _render_volumes(g: Tensor) -> Tensor:
    try:
        from inrgen.viz import render_voxels  # type: ignore[attr-defined]
    except ImportError:
        render_voxels = None
    if render_voxels is not None:
        try:
            return torch.stack([render_voxels(vol[0]) for vol in g])
        except Exception:  # noqa: BLE001 - fall back to a projection rather than lose the grid
            pass
    occ = g[:, :1]
    return torch.cat([occ.amax(dim=2), occ.amax(dim=3), occ.amax(dim=4)], dim=-1)

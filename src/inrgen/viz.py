"""Pictures of functions: image grids, entropy and segmentation maps, voxel renders, lat-lon maps and
globes, view grids. Everything returns float images ``(B, 3, H, W)`` in [0, 1] that
:func:`save_image_grid` tiles into one PNG; every file is written atomically (temporary file in the same
folder, then ``os.replace``), so a reader never sees half a PNG.

Mixture maps (VaMoH Sec. 4.4, App. B.5)
    With per-point mixture weights ``pi`` (``(B, N, K)`` or ``(B, K, H, W)``), the entropy map is
    ``H = -sum_k pi_k log pi_k / log K`` in [0, 1] (viridis) and the segmentation map colours
    ``argmax_k pi_k`` with the ``tab10`` palette.

Voxels
    A fast shaded orthographic render: rays from an ``(elev, azim)`` camera march through the volume
    (nearest-neighbour look-ups with ``grid_sample``), stop at the first occupied voxel, and are shaded
    with a Lambertian light from the occupancy gradient there. Axis ``up_axis`` of the volume is drawn
    up (axis 1 for ``inrgen.data.synthetic`` chairs).

Shapes (einops legend): ``B`` items, ``C`` channels (1 or 3), ``K`` mixture components.

Example:
    >>> import torch
    >>> from inrgen.viz import save_image_grid, segmentation_map
    >>> save_image_grid(torch.rand(16, 3, 28, 28), "grid.png", nrow=4)      # doctest: +SKIP
    >>> segmentation_map(torch.rand(2, 4, 28, 28).softmax(1)).shape
    torch.Size([2, 3, 28, 28])
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

__all__ = [
    "make_grid",
    "save_image_grid",
    "save_png",
    "colorize",
    "entropy_map",
    "segmentation_map",
    "uncertainty_map",
    "render_voxels",
    "render_latlon",
    "render_globe",
    "views_grid",
]


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _as_tensor(images) -> Tensor:
    t = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
    return t.detach().to("cpu", torch.float32)


def make_grid(images, nrow: int = 8, padding: int = 2, pad_value: float = 1.0, scale: int = 1) -> np.ndarray:
    """Tile ``(B, C, H, W)`` images (C = 1 or 3, values in [0, 1], NaN drawn grey) into one
    ``(H', W', 3)`` uint8 array, ``nrow`` images per row, each enlarged ``scale`` times (nearest)."""
    t = _as_tensor(images)
    if t.dim() == 3:
        t = t.unsqueeze(1)
    if t.dim() != 4 or t.shape[1] not in (1, 3, 4):
        raise ValueError(f"make_grid expects images (B, C, H, W) with C in 1, 3, 4; got {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError("make_grid: no images to draw")
    if nrow < 1 or padding < 0 or scale < 1:
        raise ValueError(
            f"make_grid: need nrow >= 1, padding >= 0, scale >= 1; got {nrow}, {padding}, {scale}"
        )
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    elif t.shape[1] == 4:  # RGBA on white
        t = t[:, :3] * t[:, 3:] + (1 - t[:, 3:])
    t = torch.where(torch.isfinite(t), t, torch.full_like(t, 0.6)).clamp(0, 1)
    if scale > 1:
        t = t.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
    b, _, h, w = t.shape
    ncol = min(nrow, b)
    nr = math.ceil(b / ncol)
    grid = torch.full((3, nr * (h + padding) + padding, ncol * (w + padding) + padding), float(pad_value))
    for k in range(b):
        r, c = divmod(k, ncol)
        y, x = padding + r * (h + padding), padding + c * (w + padding)
        grid[:, y : y + h, x : x + w] = t[k]
    return (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def save_png(array: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an ``(H, W)`` or ``(H, W, 3|4)`` uint8 array as a PNG, atomically."""
    path = Path(path)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    _atomic_write(path, buf.getvalue())
    return path


def save_image_grid(
    images, path: str | os.PathLike, nrow: int = 8, padding: int = 2, pad_value: float = 1.0, scale: int = 1
) -> Path:
    """:func:`make_grid` of ``(B, C, H, W)`` images written to ``path`` (PNG, atomic). Returns the path."""
    return save_png(make_grid(images, nrow, padding, pad_value, scale), path)


def colorize(
    values,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    nan_color: Sequence[float] = (0.82, 0.82, 0.82),
) -> Tensor:
    """Scalar maps ``(B, H, W)`` (or ``(B, 1, H, W)``) to colours ``(B, 3, H, W)`` with a matplotlib
    colormap; NaN gets ``nan_color``; the range defaults to the finite min / max."""
    import matplotlib

    v = _as_tensor(values)
    if v.dim() == 4 and v.shape[1] == 1:
        v = v[:, 0]
    if v.dim() == 2:
        v = v.unsqueeze(0)
    if v.dim() != 3:
        raise ValueError(f"colorize expects maps (B, H, W), got {tuple(v.shape)}")
    finite = torch.isfinite(v)
    lo = float(v[finite].min()) if vmin is None and finite.any() else (vmin if vmin is not None else 0.0)
    hi = float(v[finite].max()) if vmax is None and finite.any() else (vmax if vmax is not None else 1.0)
    x = ((v - lo) / (hi - lo if hi > lo else 1.0)).clamp(0, 1)
    rgba = matplotlib.colormaps[cmap](np.nan_to_num(x.numpy()))
    out = torch.from_numpy(rgba[..., :3]).float().permute(0, 3, 1, 2)
    nan = torch.tensor(nan_color, dtype=torch.float32).view(1, 3, 1, 1)
    return torch.where(finite.unsqueeze(1), out, nan.expand_as(out))


def _weights_grid(weights, grid_shape: Sequence[int] | None) -> Tensor:
    w = _as_tensor(weights)
    if grid_shape is not None:
        if w.dim() != 3:
            raise ValueError(f"with grid_shape, weights must be (B, N, K); got {tuple(w.shape)}")
        b, n, k = w.shape
        if math.prod(grid_shape) != n:
            raise ValueError(
                f"grid_shape {tuple(grid_shape)} has {math.prod(grid_shape)} cells, weights have {n}"
            )
        w = w.transpose(1, 2).reshape(b, k, *grid_shape)
    if w.dim() != 4:
        raise ValueError(f"weights must be (B, K, H, W), or (B, N, K) with grid_shape; got {tuple(w.shape)}")
    return w


def entropy_map(weights, grid_shape: Sequence[int] | None = None, cmap: str = "viridis") -> Tensor:
    """Normalised entropy ``-sum pi log pi / log K`` of mixture weights, coloured: ``(B, 3, H, W)``."""
    w = _weights_grid(weights, grid_shape)
    k = w.shape[1]
    ent = -(w * torch.log(w.clamp_min(1e-12))).sum(1) / (math.log(k) if k > 1 else 1.0)
    return colorize(ent, cmap, 0.0, 1.0)


def segmentation_map(weights, grid_shape: Sequence[int] | None = None) -> Tensor:
    """``argmax_k pi_k`` coloured with the tab10 palette: ``(B, 3, H, W)``. Integer label maps
    ``(B, H, W)`` are accepted too."""
    import matplotlib

    w = _as_tensor(weights) if grid_shape is None else _weights_grid(weights, grid_shape)
    lab = w.long() if w.dim() == 3 else w.argmax(1)
    palette = torch.tensor(matplotlib.colormaps["tab10"](np.arange(10))[:, :3], dtype=torch.float32)
    return palette[lab % len(palette)].permute(0, 3, 1, 2)


def uncertainty_map(
    variance, grid_shape: Sequence[int], cmap: str = "magma", vmax: float | None = 0.5
) -> Tensor:
    """Predictive standard deviation per point, averaged over channels, coloured: ``(B, 3, H, W)``.

    ``variance (B, N, C)`` is a prediction's variance (VaMoH: the law of total variance over the mixture).
    The colour range is ``[0, vmax]``; 0.5, the largest standard deviation of a variable in [0, 1], keeps
    maps of different items comparable (``vmax=None``: each batch's own maximum)."""
    v = _as_tensor(variance)
    if v.dim() != 3 or math.prod(grid_shape) != v.shape[1] or len(grid_shape) != 2:
        raise ValueError(
            f"uncertainty_map needs variances (B, N, C) on a 2-D grid of N cells, got {tuple(v.shape)} "
            f"and grid {tuple(grid_shape)}"
        )
    sd = v.clamp_min(0).sqrt().mean(-1).reshape(v.shape[0], *grid_shape)
    return colorize(sd, cmap, 0.0, vmax)


def render_voxels(
    volume,
    size: int = 128,
    elev: float = 25.0,
    azim: float = 40.0,
    up_axis: int = 1,
    threshold: float = 0.5,
    color: Sequence[float] = (0.35, 0.55, 0.85),
    background: float = 1.0,
) -> Tensor:
    """Shaded orthographic render ``(3, size, size)`` of an occupancy volume ``(D, H, W)`` or
    ``(1, D, H, W)`` filling ``[-1, 1]^3`` (see the module docstring)."""
    v = _as_tensor(volume)
    if v.dim() == 4 and v.shape[0] == 1:
        v = v[0]
    if v.dim() != 3:
        raise ValueError(f"render_voxels expects a volume (D, H, W), got {tuple(v.shape)}")
    occ = (v >= threshold).float()
    # world frame: axes of the volume, with `up_axis` as up
    up = torch.zeros(3)
    up[up_axis] = 1.0
    a, b = [i for i in range(3) if i != up_axis]
    el, az = math.radians(elev), math.radians(azim)
    eye_dir = torch.zeros(3)
    eye_dir[a], eye_dir[b], eye_dir[up_axis] = (
        math.cos(el) * math.cos(az),
        math.cos(el) * math.sin(az),
        math.sin(el),
    )
    fwd = -eye_dir
    right = torch.linalg.cross(fwd, up)
    right = right / right.norm()
    cam_up = torch.linalg.cross(right, fwd)
    ext = math.sqrt(3.0)
    s = torch.linspace(-ext, ext, size)
    vv, uu = torch.meshgrid(-s, s, indexing="ij")
    steps = int(3.5 * max(v.shape))
    t = torch.linspace(0.0, 2 * ext, steps)
    origin = (uu[..., None] * right + vv[..., None] * cam_up) + ext * eye_dir  # (S, S, 3)
    pts = origin[None] + t[:, None, None, None] * fwd  # (T, S, S, 3)
    vol = occ[None, None]
    grid = pts[..., [2, 1, 0]].unsqueeze(0)  # grid_sample wants (x=W, y=H, z=D)
    samples = F.grid_sample(vol, grid, mode="nearest", padding_mode="zeros", align_corners=False)[0, 0]
    hit = samples.amax(0) > 0.5
    first = (samples > 0.5).float().argmax(0)
    p_hit = pts.gather(0, first[None, ..., None].expand(1, size, size, 3))[0]
    # normal: minus the gradient of a blurred occupancy at the hit point
    blur = F.avg_pool3d(F.pad(vol, (1, 1, 1, 1, 1, 1), mode="replicate"), 3, stride=1)
    h = 2.0 / max(v.shape)
    grads = []
    for ax in range(3):
        d = torch.zeros(3)
        d[ax] = h
        q = torch.stack([p_hit + d, p_hit - d])[..., [2, 1, 0]].unsqueeze(1)  # (2, 1, S, S, 3)
        val = F.grid_sample(
            blur.expand(2, -1, -1, -1, -1), q, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        grads.append(val[0, 0, 0] - val[1, 0, 0])
    n = -torch.stack(grads, -1)
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    light = eye_dir + 0.6 * up + 0.4 * right
    light = light / light.norm()
    lam = (n * light).sum(-1).clamp_min(0.0)
    depth = t[first] / (2 * ext)
    shade = (0.3 + 0.7 * lam) * (1.0 - 0.25 * depth)
    col = torch.tensor(color, dtype=torch.float32)
    img = torch.where(hit[..., None], shade[..., None] * col, torch.full((size, size, 3), float(background)))
    return img.permute(2, 0, 1).clamp(0, 1)


def _latlon_order(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.argsort(-lat, kind="stable"), np.argsort(np.mod(lon, 360.0), kind="stable")


def render_latlon(
    field, lat, lon, cmap: str = "RdYlBu_r", vmin: float | None = None, vmax: float | None = None
) -> Tensor:
    """An equirectangular map ``(3, n_lat, n_lon)`` of a field ``(n_lat, n_lon)``: north up, longitude
    increasing to the right from 0 degrees; NaN (unobserved) cells grey."""
    f = _as_tensor(field).squeeze()
    lat, lon = np.asarray(lat, np.float64).reshape(-1), np.asarray(lon, np.float64).reshape(-1)
    if f.shape != (len(lat), len(lon)):
        raise ValueError(f"field {tuple(f.shape)} does not match (n_lat, n_lon) = ({len(lat)}, {len(lon)})")
    ri, ci = _latlon_order(lat, lon)
    f = f[torch.from_numpy(ri)][:, torch.from_numpy(ci)]
    return colorize(f.unsqueeze(0), cmap, vmin, vmax)[0]


def render_globe(
    field,
    lat,
    lon,
    size: int = 128,
    center: tuple[float, float] = (20.0, 0.0),
    cmap: str = "RdYlBu_r",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Tensor:
    """An orthographic globe ``(3, size, size)`` of a field ``(n_lat, n_lon)`` seen from above
    ``center = (lat, lon)`` degrees (nearest grid cell per pixel, limb darkened, white outside)."""
    f = _as_tensor(field).squeeze()
    lat, lon = np.asarray(lat, np.float64).reshape(-1), np.asarray(lon, np.float64).reshape(-1)
    if f.shape != (len(lat), len(lon)):
        raise ValueError(f"field {tuple(f.shape)} does not match (n_lat, n_lon) = ({len(lat)}, {len(lon)})")
    s = np.linspace(-1, 1, size)
    yy, xx = np.meshgrid(-s, s, indexing="ij")
    r2 = xx**2 + yy**2
    inside = r2 <= 1.0
    zz = np.sqrt(np.clip(1 - r2, 0, 1))
    la0, lo0 = np.deg2rad(center[0]), np.deg2rad(center[1])
    # view frame -> world: rotate (x right, y up, z towards viewer) so that z points at `center`
    ez = np.array([np.cos(la0) * np.cos(lo0), np.cos(la0) * np.sin(lo0), np.sin(la0)])
    ex = np.array([-np.sin(lo0), np.cos(lo0), 0.0])
    ey = np.cross(ez, ex)
    p = xx[..., None] * ex + yy[..., None] * ey + zz[..., None] * ez
    plat = np.rad2deg(np.arcsin(np.clip(p[..., 2], -1, 1)))
    plon = np.rad2deg(np.arctan2(p[..., 1], p[..., 0]))
    i = np.abs(plat[..., None] - lat).argmin(-1)
    dl = np.abs(((plon[..., None] - lon) + 180.0) % 360.0 - 180.0)
    j = dl.argmin(-1)
    vals = f.numpy()[i, j]
    img = colorize(torch.from_numpy(vals).unsqueeze(0), cmap, vmin, vmax)[0]
    shade = torch.from_numpy(0.55 + 0.45 * zz).float()
    img = img * shade
    return torch.where(torch.from_numpy(inside), img, torch.ones_like(img))


def views_grid(*groups) -> Tensor:
    """Views of several groups ``(B, V_g, C, H, W)`` (e.g. support views, target, prediction) side by side:
    ``(B * sum V_g, C, H, W)``, to save with ``save_image_grid(..., nrow=sum V_g)``."""
    ts = [_as_tensor(g) for g in groups]
    if not ts or any(t.dim() != 5 for t in ts):
        raise ValueError(
            f"views_grid expects groups of views (B, V, C, H, W), got {[tuple(t.shape) for t in ts]}"
        )
    row = torch.cat(ts, dim=1)
    return row.reshape(-1, *row.shape[2:])

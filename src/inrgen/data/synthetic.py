"""Synthetic data for every modality, deterministic by seed, written in the *same on-disk formats* as the
real sources so that the real loaders read them (``inrgen.data.datasets``).

======================  =============================================  ==================================
generator               what it draws                                  format written (read by)
======================  =============================================  ==================================
``write_image_folder``  smooth colour images of several sizes, nested  PNG / JPEG tree (``images``)
                        class folders
``write_fashion_idx``   ten classes of garment-like silhouettes 28x28  Fashion-MNIST IDX (``fashion-mnist``)
``write_shapes3d``      Shapes3D-like scenes: floor, wall, one object  ``3dshapes.h5`` (``shapes3d``)
                        (shape, colour, scale, orientation factors)
``write_voxels``        procedural chairs / primitives, 32^3           per-shape ``.pt`` (``voxels``)
``write_sphere_netcdf`` smooth random fields on S^2 (spherical         ERA5-style NetCDF ``t2m``
                        harmonics up to degree ``l_max``), in Kelvin   (``era5``)
``write_gasp_npz``      the same fields                                GASP ``.npz`` (``era5-npz``)
``write_views``         multi-view renders of coloured spheres/boxes   learnit ShapeNet layout (``views``)
======================  =============================================  ==================================

Rendering is analytic ray casting (no rasteriser): a ray ``o + t d`` is intersected in closed form with
spheres (``|o + t d - c| = r``), boxes (slabs in the box frame), vertical cylinders and capsules, and
planes; the nearest hit with ``t > 0`` is shaded. Views use the OpenGL/Blender camera of
``inrgen.coords`` (rays through pixel centres, exactly ``coords.camera_rays``), z-up world, cameras on a
sphere of radius 4 looking at the origin, ``camera_angle_x = 0.6911`` (the learnit / NeRF value), and a
head-light ``shade = a + (1 - a) |n . d|``: the ray through the centre of a sphere sees its exact colour.

Random fields on the sphere are sums of zonal harmonics ``P_l(n_k . x)`` with random axes ``n_k``, which
lie in the span of the degree-``l`` spherical harmonics, so the field is smooth and band-limited to
``l <= l_max``, with an isotropic distribution.

Example:
    >>> from inrgen.data.synthetic import write_shapes3d
    >>> from inrgen.data.datasets.shapes3d import Shapes3DDataset
    >>> path = write_shapes3d(tmp / "3dshapes.h5", n=8)          # doctest: +SKIP
    >>> Shapes3DDataset(path, split="all")[0].values.shape       # doctest: +SKIP
    torch.Size([1, 4096, 3])
"""

from __future__ import annotations

import colorsys
import io
import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from PIL import Image, ImageDraw

from inrgen.data.datasets._common import atomic_write_bytes

__all__ = [
    "write_image_folder",
    "fashion_like_images",
    "write_fashion_idx",
    "shapes3d_factor_values",
    "render_shapes3d",
    "write_shapes3d",
    "chair_voxels",
    "primitive_voxels",
    "write_voxels",
    "random_sphere_fields",
    "write_sphere_netcdf",
    "write_gasp_npz",
    "look_at",
    "render_view",
    "random_scene",
    "write_views",
    "CAMERA_ANGLE_X",
]

CAMERA_ANGLE_X = 0.6911112070083618
_EPS = 1e-9


# ============================================================================ analytic ray casting


def _sphere(o: np.ndarray, d: np.ndarray, c, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ``t > 0`` of rays ``(N, 3)`` with a sphere (inf on a miss) and the normals there."""
    oc = o - np.asarray(c, dtype=np.float64)
    dd = (d * d).sum(-1)
    b = (oc * d).sum(-1)
    cc = (oc * oc).sum(-1) - r * r
    disc = b * b - dd * cc
    sq = np.sqrt(np.maximum(disc, 0.0))
    t0, t1 = (-b - sq) / dd, (-b + sq) / dd
    t = np.where(t0 > _EPS, t0, np.where(t1 > _EPS, t1, np.inf))
    t = np.where(disc >= 0, t, np.inf)
    p = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
    return t, (p - np.asarray(c)) / r


def _rot_y(angle: float) -> np.ndarray:
    ca, sa = math.cos(angle), math.sin(angle)
    return np.array([[ca, 0.0, sa], [0.0, 1.0, 0.0], [-sa, 0.0, ca]])


def _rot_z(angle: float) -> np.ndarray:
    ca, sa = math.cos(angle), math.sin(angle)
    return np.array([[ca, -sa, 0.0], [sa, ca, 0.0], [0.0, 0.0, 1.0]])


def _box(o, d, c, half, R) -> tuple[np.ndarray, np.ndarray]:
    """Box with centre ``c``, half sizes ``half`` and rotation ``R`` (local to world): slab method."""
    ol = (o - np.asarray(c)) @ R
    dl = d @ R
    dl = np.where(np.abs(dl) < 1e-12, 1e-12, dl)
    h = np.asarray(half, dtype=np.float64)
    t1, t2 = (-h - ol) / dl, (h - ol) / dl
    tlo, thi = np.minimum(t1, t2), np.maximum(t1, t2)
    tmin, tmax = tlo.max(-1), thi.min(-1)
    hit = tmax >= np.maximum(tmin, _EPS)
    t = np.where(hit, np.where(tmin > _EPS, tmin, tmax), np.inf)
    axis = np.where((tmin > _EPS)[:, None], tlo, -thi).argmax(-1)  # entering face (or exit face inside)
    nl = np.zeros_like(ol)
    rows = np.arange(len(o))
    nl[rows, axis] = -np.sign(dl[rows, axis]) * np.where(tmin > _EPS, 1.0, -1.0)
    return t, nl @ R.T


def _cylinder(o, d, base, r, height, R) -> tuple[np.ndarray, np.ndarray]:
    """Capped cylinder along the local y axis from ``base`` (local 0) to ``height``."""
    ol = (o - np.asarray(base)) @ R
    dl = d @ R
    a = dl[:, 0] ** 2 + dl[:, 2] ** 2
    b = ol[:, 0] * dl[:, 0] + ol[:, 2] * dl[:, 2]
    c = ol[:, 0] ** 2 + ol[:, 2] ** 2 - r * r
    disc = b * b - a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    a_safe = np.where(a < 1e-12, 1.0, a)
    best = np.full(len(o), np.inf)
    normal = np.zeros_like(ol)
    for sgn in (-1.0, 1.0):
        t = (-b + sgn * sq) / a_safe
        y = ol[:, 1] + t * dl[:, 1]
        ok = (disc >= 0) & (a >= 1e-12) & (t > _EPS) & (y >= 0) & (y <= height) & (t < best)
        best = np.where(ok, t, best)
        p = ol + t[:, None] * dl
        n = np.stack([p[:, 0], np.zeros_like(t), p[:, 2]], -1) / r
        normal = np.where(ok[:, None], n, normal)
    dy = np.where(np.abs(dl[:, 1]) < 1e-12, 1e-12, dl[:, 1])
    for yc, ny in ((0.0, -1.0), (height, 1.0)):
        t = (yc - ol[:, 1]) / dy
        p = ol + t[:, None] * dl
        ok = (t > _EPS) & (p[:, 0] ** 2 + p[:, 2] ** 2 <= r * r) & (t < best)
        best = np.where(ok, t, best)
        normal = np.where(ok[:, None], np.array([0.0, ny, 0.0]), normal)
    return best, normal @ R.T


def _capsule(o, d, base, r, height, R) -> tuple[np.ndarray, np.ndarray]:
    """Capsule along the local y axis, from ``base`` to ``base + height`` (radius ``r``)."""
    base = np.asarray(base, dtype=np.float64)
    up = R @ np.array([0.0, 1.0, 0.0])
    t, n = _cylinder(o, d, base + r * up, r, max(height - 2 * r, 1e-6), R)
    # the caps of that cylinder are inside the end spheres: only its side counts
    side = np.abs(n @ up) < 0.5
    t = np.where(side, t, np.inf)
    for centre in (base + r * up, base + (height - r) * up):
        ts, ns = _sphere(o, d, centre, r)
        closer = ts < t
        t = np.where(closer, ts, t)
        n = np.where(closer[:, None], ns, n)
    return t, n


def _plane(o, d, normal, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Plane ``normal . p = offset``."""
    nrm = np.asarray(normal, dtype=np.float64)
    den = d @ nrm
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    t = (offset - o @ nrm) / den
    return np.where(t > _EPS, t, np.inf), np.broadcast_to(nrm, o.shape)


def _hit(prim: dict[str, Any], o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    kind = prim["type"]
    if kind == "sphere":
        return _sphere(o, d, prim["center"], prim["radius"])
    R = _rot_z(prim.get("yaw", 0.0)) if prim.get("up", "z") == "z" else _rot_y(prim.get("yaw", 0.0))
    if kind == "box":
        return _box(o, d, prim["center"], prim["half"], R)
    if kind == "cylinder":
        return _cylinder(o, d, prim["base"], prim["radius"], prim["height"], R)
    if kind == "capsule":
        return _capsule(o, d, prim["base"], prim["radius"], prim["height"], R)
    raise ValueError(f"unknown primitive {kind!r}")


def _cast(prims: Sequence[dict[str, Any]], o, d) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest hit over primitives: ``(t, normal, primitive index or -1)``."""
    t = np.full(len(o), np.inf)
    n = np.zeros_like(o)
    which = np.full(len(o), -1)
    for k, p in enumerate(prims):
        tk, nk = _hit(p, o, d)
        closer = tk < t
        t = np.where(closer, tk, t)
        n = np.where(closer[:, None], nk, n)
        which = np.where(closer, k, which)
    return t, n, which


def look_at(eye: ArrayLike, target: ArrayLike = (0, 0, 0), up: ArrayLike = (0, 0, 1)) -> np.ndarray:
    """OpenGL camera-to-world ``(4, 4)``: the camera at ``eye`` looks along its -z axis at ``target``."""
    e, tg, u = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    back = e - tg
    back /= np.linalg.norm(back)
    right = np.cross(u, back)
    if np.linalg.norm(right) < 1e-9:  # looking straight along `up`
        right = np.cross(np.array([0.0, 1.0, 0.0]), back)
    right /= np.linalg.norm(right)
    cam_up = np.cross(back, right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, cam_up, back, e
    return m


def _rays(c2w: np.ndarray, fov_x: float, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Ray origins and unit directions ``(H * W, 3)`` through pixel centres ``(j + 0.5, i + 0.5)`` of an
    OpenGL camera with focal ``0.5 W / tan(0.5 fov_x)``: the convention of ``inrgen.coords.camera_rays``
    (numpy here, so that generators do not pay torch's per-call overhead)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    focal = 0.5 * width / math.tan(0.5 * fov_x)
    v, u = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    d_cam = np.stack([(u - width / 2.0) / focal, -(v - height / 2.0) / focal, -np.ones_like(u)], -1)
    d = d_cam.reshape(-1, 3) @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return np.broadcast_to(c2w[:3, 3], d.shape).copy(), d


def _hsv(h: float, s: float = 0.8, v: float = 0.95) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


# ======================================================================================== images


def write_image_folder(
    folder: str | os.PathLike, n: int = 48, seed: int = 0, size: tuple[int, int] | None = None
) -> list[Path]:
    """Smooth colour images of random sizes (24..96 px a side, or all ``size``) in nested class folders,
    PNG and JPEG (every fourth image).

    Layout: ``folder/<class>/<i>.png`` and ``folder/<class>/more/<i>.jpg`` for three classes.
    Returns the written paths (PNG files are lossless: the loader reads back ``uint8 / 255`` exactly).
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    classes = ("blobs", "stripes", "rings")
    out = []
    for i in range(n):
        cls = classes[i % 3]
        h, w = (int(v) for v in rng.integers(24, 97, size=2))
        if size is not None:
            h, w = size
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        t = (xx * math.cos(rng.uniform(0, 6.3)) + yy * math.sin(rng.uniform(0, 6.3)) + 1) / 3
        img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
        freq = rng.uniform(3, 9)
        if cls == "stripes":
            img = img * (0.75 + 0.25 * np.sin(2 * math.pi * freq * (xx + 0.3 * yy)))[..., None]
        elif cls == "rings":
            r = np.hypot(xx - rng.uniform(0.3, 0.7), yy - rng.uniform(0.3, 0.7))
            img = img * (0.7 + 0.3 * np.cos(2 * math.pi * freq * r))[..., None]
        else:
            for _ in range(3):
                cx, cy, s = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.2)
                g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
                img = img * (1 - g[..., None]) + rng.uniform(0, 1, 3)[None, None] * g[..., None]
        arr = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
        jpeg = i % 4 == 3
        path = folder / cls / ("more" if jpeg else "") / f"{i:04d}.{'jpg' if jpeg else 'png'}"
        buf = io.BytesIO()
        Image.fromarray(arr, "RGB").save(buf, format="JPEG" if jpeg else "PNG", quality=95)
        atomic_write_bytes(path, buf.getvalue())
        out.append(path)
    return out


# ================================================================================ fashion (IDX)


def _garment(draw: ImageDraw.ImageDraw, cls: int, rng: np.random.Generator, fill: int) -> None:
    """Draw a garment-like silhouette of class ``cls`` (Fashion-MNIST order) on a 28x28 canvas."""
    j = lambda a, b: float(rng.uniform(a, b))  # noqa: E731
    cx = 14 + j(-1.5, 1.5)
    if cls in (0, 2, 4, 6):  # tops: body + sleeves (short for 0, long otherwise)
        w, top, bot = j(4.5, 6.5), j(3, 5), j(22, 26)
        sl = 4 if cls == 0 else j(9, 13)
        draw.polygon([(cx - w, top), (cx + w, top), (cx + w, bot), (cx - w, bot)], fill=fill)
        draw.polygon(
            [(cx - w, top), (cx - w - 5, top + sl), (cx - w - 2, top + sl + 2), (cx - w, top + 6)], fill=fill
        )
        draw.polygon(
            [(cx + w, top), (cx + w + 5, top + sl), (cx + w + 2, top + sl + 2), (cx + w, top + 6)], fill=fill
        )
        if cls == 4:  # coat: opening
            draw.line([(cx, top + 3), (cx, bot)], fill=fill // 3, width=1)
        if cls == 6:  # shirt: collar
            draw.polygon([(cx - 2, top), (cx, top + 4), (cx + 2, top)], fill=fill // 2)
    elif cls == 1:  # trousers: two legs
        w, top = j(5, 7), j(2, 4)
        draw.rectangle([cx - w, top, cx + w, top + 5], fill=fill)
        draw.polygon([(cx - w, top + 5), (cx - 0.5, top + 5), (cx - 1, 26), (cx - w + 0.5, 26)], fill=fill)
        draw.polygon([(cx + 0.5, top + 5), (cx + w, top + 5), (cx + w - 0.5, 26), (cx + 1, 26)], fill=fill)
    elif cls == 3:  # dress: trapezoid
        draw.polygon([(cx - 3, j(2, 4)), (cx + 3, 3), (cx + j(7, 10), 26), (cx - j(7, 10), 26)], fill=fill)
    elif cls in (5, 7, 9):  # footwear
        base = j(18, 21)
        if cls == 5:  # sandal: straps
            for k in range(3):
                draw.line([(4, base - 3 * k), (24, base - 3 * k + j(-1, 1))], fill=fill, width=1)
            draw.rectangle([3, base, 25, base + 2], fill=fill)
        elif cls == 7:  # sneaker: low shoe
            draw.polygon(
                [(3, base + 3), (25, base + 3), (24, base - 2), (14, base - 5), (5, base - 6)], fill=fill
            )
        else:  # ankle boot: L shape
            draw.polygon(
                [(5, 4), (13, 4), (13, base - 3), (25, base - 1), (25, base + 4), (5, base + 4)], fill=fill
            )
    else:  # bag: body + handle
        w = j(8, 10)
        draw.rectangle([cx - w, j(10, 12), cx + w, 25], fill=fill)
        draw.arc([cx - 5, 3, cx + 5, 15], 180, 360, fill=fill, width=2)


def fashion_like_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 28, 28)`` uint8 garment-like silhouettes with a texture, labels ``(n,)`` cycling 0..9."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    yy, xx = np.mgrid[0:28, 0:28]
    for i in range(n):
        img = Image.new("L", (28, 28), 0)
        _garment(ImageDraw.Draw(img), int(labels[i]), rng, int(rng.integers(150, 256)))
        a = np.asarray(img, dtype=np.float64)
        tex = 0.85 + 0.15 * np.sin(xx * rng.uniform(0.5, 2) + yy * rng.uniform(0.5, 2) + rng.uniform(0, 6))
        images[i] = np.clip(np.round(a * tex), 0, 255).astype(np.uint8)
    return images, labels


def write_fashion_idx(
    folder: str | os.PathLike, n_train: int = 2000, n_test: int = 500, seed: int = 0, gz: bool = True
) -> Path:
    """Fashion-MNIST-format IDX files (``train-images-idx3-ubyte.gz`` etc.) in ``folder``."""
    from inrgen.data.datasets.idx import IDX_FILES, write_idx

    folder = Path(folder)
    for k, (split, n) in enumerate((("train", n_train), ("test", n_test))):
        images, labels = fashion_like_images(n, seed * 2 + k)
        suffix = ".gz" if gz else ""
        write_idx(folder / (IDX_FILES[split][0] + suffix), images)
        write_idx(folder / (IDX_FILES[split][1] + suffix), labels)
    return folder


# ====================================================================================== shapes3d


def shapes3d_factor_values() -> tuple[np.ndarray, ...]:
    """The six factors' values of Shapes3D: three hues (10 each), scale (8), shape (4), orientation (15)."""
    hue = np.linspace(0.0, 0.9, 10)
    return hue, hue, hue, np.linspace(0.75, 1.25, 8), np.arange(4.0), np.linspace(-30.0, 30.0, 15)


_S3D_EYE = np.array([0.0, 1.9, 4.4])
_S3D_TARGET = np.array([0.0, 0.6, 0.0])
_S3D_LIGHT = np.array([-0.45, 1.0, 0.75]) / np.linalg.norm([-0.45, 1.0, 0.75])
_S3D_WALL = 2.4


def _s3d_object(shape: int, scale: float, angle: float) -> dict[str, Any]:
    s = float(scale) * 0.55
    if shape == 0:
        return {"type": "box", "center": [0.0, s, 0.0], "half": [s, s, s], "yaw": angle, "up": "y"}
    if shape == 1:
        return {
            "type": "cylinder",
            "base": [0.0, 0.0, 0.0],
            "radius": s,
            "height": 2 * s,
            "yaw": angle,
            "up": "y",
        }
    if shape == 2:
        return {"type": "sphere", "center": [0.0, s, 0.0], "radius": s}
    return {
        "type": "capsule",
        "base": [0.0, 0.0, 0.0],
        "radius": 0.7 * s,
        "height": 2.4 * s,
        "yaw": angle,
        "up": "y",
    }


def render_shapes3d(factors: Sequence[float], size: int = 64) -> np.ndarray:
    """One Shapes3D-like scene ``(size, size, 3)`` uint8 from its six factor values.

    A floor (``y = 0``), a back wall, and one object (cube, cylinder, sphere or capsule) standing at the
    origin; the orientation (degrees) turns the whole scene about the vertical axis; a directional light
    casts the object's shadow on the floor and wall.
    """
    fh, wh, oh, scale, shape, orient = (float(f) for f in factors)
    angle = math.radians(orient)
    c2w = look_at(_S3D_EYE, _S3D_TARGET, up=(0, 1, 0))
    o, d = _rays(c2w, math.radians(42.0), size, size)
    obj = _s3d_object(int(round(shape)), scale, angle)
    wall_n = _rot_y(angle) @ np.array([0.0, 0.0, 1.0])
    t_obj, n_obj, _ = _cast([obj], o, d)
    t_floor, n_floor = _plane(o, d, [0.0, 1.0, 0.0], 0.0)
    t_wall, n_wall = _plane(o, d, wall_n, -_S3D_WALL)
    ts = np.stack([t_floor, t_wall, t_obj])
    which = ts.argmin(0)
    t = ts.min(0)
    t = np.where(np.isfinite(t), t, 50.0)
    normal = np.where((which == 0)[:, None], n_floor, np.where((which == 1)[:, None], n_wall, n_obj))
    colors = np.stack([_hsv(fh), _hsv(wh), _hsv(oh)])[which]
    p = o + t[:, None] * d
    lam = np.clip(normal @ _S3D_LIGHT, 0.0, 1.0)
    shadow_o = p + 1e-4 * normal
    t_sh, _, _ = _cast([obj], shadow_o, np.broadcast_to(_S3D_LIGHT, p.shape))
    lit = np.where((which < 2) & np.isfinite(t_sh), 0.25, 1.0)
    shade = 0.45 + 0.55 * lam * lit
    img = np.clip(colors * shade[:, None], 0.0, 1.0)
    return np.round(img.reshape(size, size, 3) * 255).astype(np.uint8)


def write_shapes3d(path: str | os.PathLike, n: int = 2000, seed: int = 0, size: int = 64) -> Path:
    """A ``3dshapes.h5`` (``images`` (n, size, size, 3) uint8, ``labels`` (n, 6) float64) of random factors.

    ``path`` may be the file or a folder (then ``folder/3dshapes.h5``). Written atomically.
    """
    import h5py

    path = Path(path)
    if path.suffix not in (".h5", ".hdf5"):
        path = path / "3dshapes.h5"
    rng = np.random.default_rng(seed)
    values = shapes3d_factor_values()
    labels = np.stack([v[rng.integers(0, len(v), size=n)] for v in values], axis=1).astype(np.float64)
    images = (
        np.stack([render_shapes3d(f, size) for f in labels]) if n else np.zeros((0, size, size, 3), np.uint8)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("images", data=images, chunks=(1, size, size, 3) if n else None)
            f.create_dataset("labels", data=labels)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ======================================================================================== voxels


def _grid_points(res: int) -> np.ndarray:
    """Voxel centres in [-1, 1]^3 ``(res, res, res, 3)``; axis 0 = x, axis 1 = y (up), axis 2 = z."""
    a = (2 * np.arange(res) + 1) / res - 1
    return np.stack(np.meshgrid(a, a, a, indexing="ij"), -1)


def _in_box(a: np.ndarray, lo, hi) -> np.ndarray:
    """Axis-aligned box on the grid with axis coordinates ``a``: separable, ``(res, res, res)`` bool."""
    m = [(a >= lo[k]) & (a <= hi[k]) for k in range(3)]
    return m[0][:, None, None] & m[1][None, :, None] & m[2][None, None, :]


def chair_voxels(rng: np.random.Generator, res: int = 32) -> np.ndarray:
    """A procedural chair ``(res, res, res)`` uint8: seat, four legs, a back (solid or slatted), maybe
    arms; y (axis 1) is up, the back is at -z."""
    p = (2 * np.arange(res) + 1) / res - 1  # axis coordinates (voxel centres)
    X, Y = p[:, None, None], p[None, :, None]
    v = 2.0 / res  # one voxel
    sw, sd = rng.uniform(0.45, 0.8), rng.uniform(0.45, 0.75)  # seat half width (x) / depth (z)
    sy, st = rng.uniform(-0.25, 0.05), rng.uniform(1.5, 3.0) * v  # seat height / thickness
    occ = _in_box(p, (-sw, sy, -sd), (sw, sy + st, sd))
    lt = rng.uniform(1.0, 2.0) * v  # leg half thickness
    floor = -0.95
    for sx in (-1, 1):
        for sz in (-1, 1):
            cx, cz = sx * (sw - lt), sz * (sd - lt)
            occ |= _in_box(p, (cx - lt, floor, cz - lt), (cx + lt, sy, cz + lt))
    top = rng.uniform(0.5, 0.95)
    bt = rng.uniform(1.0, 2.0) * v
    back = _in_box(p, (-sw, sy, -sd), (sw, top, -sd + 2 * bt))
    if rng.uniform() < 0.5:  # slatted back: vertical slats with gaps
        n_slats = int(rng.integers(3, 6))
        phase = ((X + sw) / (2 * sw) * (2 * n_slats - 1)).astype(int) % 2 == 0
        rail = Y > top - 3 * v
        back &= phase | rail | (Y < sy + st + 2 * v)
    occ |= back
    if rng.uniform() < 0.4:  # arms
        ah = sy + rng.uniform(0.25, 0.4)
        for sx in (-1, 1):
            x0 = sx * sw
            occ |= _in_box(
                p, (min(x0, x0 - sx * 2 * v), ah - v, -sd), (max(x0, x0 - sx * 2 * v), ah + v, sd * 0.8)
            )
            occ |= _in_box(
                p, (min(x0, x0 - sx * 2 * v), sy, sd * 0.6), (max(x0, x0 - sx * 2 * v), ah, sd * 0.8)
            )
    return occ.astype(np.uint8)


def primitive_voxels(rng: np.random.Generator, res: int = 32) -> np.ndarray:
    """One or two random primitives (sphere, box, cylinder, torus, cone) ``(res, res, res)`` uint8."""
    p = _grid_points(res)
    occ = np.zeros(p.shape[:3], dtype=bool)
    for _ in range(int(rng.integers(1, 3))):
        c = rng.uniform(-0.3, 0.3, 3)
        R = _rot_y(rng.uniform(0, math.pi)) @ np.array(
            [
                [1, 0, 0],
                [0, math.cos(a := rng.uniform(-0.6, 0.6)), -math.sin(a)],
                [0, math.sin(a), math.cos(a)],
            ]
        )
        q = (p - c) @ R  # local coordinates
        kind = int(rng.integers(0, 5))
        s = rng.uniform(0.3, 0.6)
        if kind == 0:
            occ |= (q**2).sum(-1) <= s * s
        elif kind == 1:
            occ |= np.all(np.abs(q) <= rng.uniform(0.2, 0.55, 3), axis=-1)
        elif kind == 2:
            occ |= (q[..., 0] ** 2 + q[..., 2] ** 2 <= (0.6 * s) ** 2) & (np.abs(q[..., 1]) <= s)
        elif kind == 3:
            rr = np.hypot(q[..., 0], q[..., 2]) - s
            occ |= rr**2 + q[..., 1] ** 2 <= (0.35 * s) ** 2
        else:
            hgt = (s - q[..., 1]) / (2 * s)
            occ |= (np.abs(q[..., 1]) <= s) & (np.hypot(q[..., 0], q[..., 2]) <= 0.7 * s * hgt)
    return occ.astype(np.uint8)


def write_voxels(
    folder: str | os.PathLike, n: int = 400, seed: int = 0, kind: str = "chairs", resolution: int = 32
) -> Path:
    """Per-shape ``.pt`` occupancy tensors ``(res, res, res)`` uint8 named ``00000.pt``... (the chairs
    format of the VaMoH / GASP code). ``kind``: "chairs", "primitives" or "mixed"."""
    if kind not in ("chairs", "primitives", "mixed"):
        raise ValueError(f"kind must be 'chairs', 'primitives' or 'mixed', got {kind!r}")
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        use_chair = kind == "chairs" or (kind == "mixed" and i % 2 == 0)
        vol = chair_voxels(rng, resolution) if use_chair else primitive_voxels(rng, resolution)
        buf = io.BytesIO()
        torch.save(torch.from_numpy(vol), buf)
        atomic_write_bytes(folder / f"{i:05d}.pt", buf.getvalue())
    return folder


# ======================================================================================== sphere


def random_sphere_fields(
    n: int,
    lat: np.ndarray,
    lon: np.ndarray,
    l_max: int = 6,
    n_axes: int = 3,
    seed: int = 0,
    decay: float = 1.0,
) -> np.ndarray:
    """``(n, n_lat, n_lon)`` smooth isotropic random fields with unit-ish variance, band-limited to
    degree ``l_max``: ``f(x) = sum_{l=1}^{l_max} l^{-decay} sum_k a_lk P_l(n_lk . x)``, ``a ~ N(0, 1)``,
    ``n_lk`` uniform on S^2."""
    from numpy.polynomial import legendre

    rng = np.random.default_rng(seed)
    la, lo = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    x = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], -1)
    out = np.zeros((n,) + la.shape)
    for i in range(n):
        for l in range(1, l_max + 1):
            axes = rng.normal(size=(n_axes, 3))
            axes /= np.linalg.norm(axes, axis=1, keepdims=True)
            amp = rng.normal(size=n_axes) * l ** (-decay) * math.sqrt((2 * l + 1) / n_axes)
            coef = np.zeros(l + 1)
            coef[l] = 1.0
            for k in range(n_axes):
                out[i] += amp[k] * legendre.legval(x @ axes[k], coef)
    return out


def _temperature(n: int, n_lat: int, n_lon: int, seed: int, l_max: int) -> tuple[np.ndarray, ...]:
    lat = np.linspace(90.0, -90.0, n_lat)
    lon = np.arange(n_lon) * (360.0 / n_lon)
    f = random_sphere_fields(n, lat, lon, l_max=l_max, seed=seed)
    base = 228.0 + 72.0 * np.cos(np.deg2rad(lat)) ** 2  # ~ ERA5 2 m temperature range, Kelvin
    return (base[None, :, None] + 6.0 * f).astype(np.float32), lat, lon


def write_sphere_netcdf(
    path: str | os.PathLike,
    n: int = 300,
    n_lat: int = 46,
    n_lon: int = 90,
    seed: int = 0,
    l_max: int = 6,
    missing: float = 0.0,
    variable: str = "t2m",
) -> Path:
    """An ERA5-style NetCDF: ``variable(time, latitude, longitude)`` float32 in Kelvin on VaMoH's grid
    (latitudes ``90 .. -90``, longitudes ``0, 4, .., 356`` for 46 x 90). ``missing > 0`` sets that
    fraction of the cells (a fixed smooth "land" region) to NaN in every time step (written with the
    fill value ``-1e34``, as Ferret's climatologies). ``path`` may be a folder (then ``t2m.nc``)."""
    import xarray as xr

    path = Path(path)
    if path.suffix.lower() not in (".nc", ".nc4", ".cdf"):
        path = path / f"{variable}.nc"
    vals, lat, lon = _temperature(n, n_lat, n_lon, seed, l_max)
    if missing > 0:
        land = random_sphere_fields(1, lat, lon, l_max=3, seed=seed + 7919)[0]
        vals[:, land >= np.quantile(land, 1.0 - missing)] = np.nan
    ds = xr.Dataset(
        {
            variable: (
                ("time", "latitude", "longitude"),
                vals,
                {"units": "K", "long_name": "2 metre temperature"},
            )
        },
        coords={
            "time": ("time", np.arange(n, dtype=np.int64) * 6, {"units": "hours since 1979-01-01 00:00:00"}),
            "latitude": ("latitude", lat, {"units": "degrees_north"}),
            "longitude": ("longitude", lon, {"units": "degrees_east"}),
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, encoding={variable: {"_FillValue": np.float32(-1e34)}})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_gasp_npz(
    folder: str | os.PathLike,
    n_train: int = 240,
    n_test: int = 60,
    n_lat: int = 46,
    n_lon: int = 90,
    seed: int = 0,
    l_max: int = 6,
) -> Path:
    """GASP's ERA5 format: ``folder/{train,test}/<k>.npz`` with ``latitude``, ``longitude`` and
    ``temperature`` (Kelvin, float32) per time step."""
    vals, lat, lon = _temperature(n_train + n_test, n_lat, n_lon, seed, l_max)
    folder = Path(folder)
    for k in range(n_train + n_test):
        split = "train" if k < n_train else "test"
        buf = io.BytesIO()
        np.savez(buf, latitude=lat.astype(np.float32), longitude=lon.astype(np.float32), temperature=vals[k])
        atomic_write_bytes(folder / split / f"{k:05d}.npz", buf.getvalue())
    return folder


# ========================================================================================= views


def random_scene(rng: np.random.Generator) -> list[dict[str, Any]]:
    """One to three coloured spheres / boxes near the origin (z-up world, within radius ~1.2)."""
    prims = []
    for _ in range(int(rng.integers(1, 4))):
        color = _hsv(rng.uniform(), rng.uniform(0.5, 1.0), rng.uniform(0.6, 1.0)).tolist()
        c = (rng.uniform(-0.4, 0.4, 3)).tolist()
        if rng.uniform() < 0.5:
            prims.append(
                {"type": "sphere", "center": c, "radius": float(rng.uniform(0.3, 0.6)), "color": color}
            )
        else:
            half = rng.uniform(0.2, 0.5, 3).tolist()
            prims.append(
                {
                    "type": "box",
                    "center": c,
                    "half": half,
                    "yaw": float(rng.uniform(0, math.pi)),
                    "color": color,
                }
            )
    return prims


def render_view(
    prims: Sequence[dict[str, Any]],
    c2w: np.ndarray,
    size: int = 32,
    fov_x: float = CAMERA_ANGLE_X,
    ambient: float = 0.3,
) -> np.ndarray:
    """RGBA ``(size, size, 4)`` uint8 of the primitives seen from ``c2w``: alpha 255 where a ray hits,
    colour ``color * (ambient + (1 - ambient) |n . d|)``, transparent black elsewhere."""
    o, d = _rays(c2w, fov_x, size, size)
    t, n, which = _cast(prims, o, d)
    hit = np.isfinite(t)
    colors = np.array([p["color"] for p in prims], dtype=np.float64)[np.maximum(which, 0)]
    shade = ambient + (1.0 - ambient) * np.abs((n * d).sum(-1))
    rgb = np.where(hit[:, None], colors * shade[:, None], 0.0)
    rgba = np.concatenate([rgb, hit[:, None].astype(np.float64)], -1)
    return np.round(np.clip(rgba, 0, 1) * 255).astype(np.uint8).reshape(size, size, 4)


def write_views(
    folder: str | os.PathLike,
    n_objects: int = 60,
    n_views: int = 30,
    size: int = 32,
    seed: int = 0,
    category: str = "primitives",
    scenes: Sequence[Sequence[dict[str, Any]]] | None = None,
    radius: float = 4.0,
) -> Path:
    """Multi-view renders in the learnit layout: ``<stem>_splits.json`` (80/10/10 train/val/test) and
    ``<category>/<object>/{transforms.json, r_<k>.png, scene.json}``; cameras uniformly on the sphere of
    ``radius`` above elevation -20 degrees, looking at the origin. ``scenes`` overrides the random
    objects (a list of primitive lists, as :func:`random_scene` returns)."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    stem = category[:-1] if category.endswith("s") else category
    if scenes is not None:
        n_objects = len(scenes)
    ids = [f"obj{i:04d}" for i in range(n_objects)]
    for i, oid in enumerate(ids):
        prims = list(scenes[i]) if scenes is not None else random_scene(rng)
        obj_dir = folder / category / oid
        frames = []
        for k in range(n_views):
            az = rng.uniform(0, 2 * math.pi)
            el = math.asin(rng.uniform(math.sin(math.radians(-20)), 1.0))
            eye = radius * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
            c2w = look_at(eye)
            rgba = render_view(prims, c2w, size)
            buf = io.BytesIO()
            Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
            atomic_write_bytes(obj_dir / f"r_{k}.png", buf.getvalue())
            frames.append({"file_path": f"./r_{k}", "transform_matrix": c2w.tolist()})
        atomic_write_bytes(
            obj_dir / "transforms.json",
            json.dumps({"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}, indent=1).encode(),
        )
        atomic_write_bytes(obj_dir / "scene.json", json.dumps(prims).encode())
    n_test = max(1, round(0.1 * n_objects)) if n_objects >= 3 else 1
    n_val = max(1, round(0.1 * n_objects)) if n_objects >= 3 else 0
    n_train = max(1, n_objects - n_test - n_val)
    splits = {
        "train": ids[:n_train],
        "val": ids[n_train : n_train + n_val],
        "test": ids[n_train + n_val :] or ids[-1:],
    }
    atomic_write_bytes(folder / f"{stem}_splits.json", json.dumps(splits, indent=1).encode())
    return folder

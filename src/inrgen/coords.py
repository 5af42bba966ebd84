"""Coordinate conventions: the one place where inrgen decides what a coordinate means.

Every model, data set and task in inrgen takes its coordinates from this module.

Grids (images, volumes)
    A grid of shape ``(n_1, ..., n_d)`` has one point per cell, at the cell *centre*, in ``[-1, 1]``:

        x_i = (2 i + 1) / n - 1,   i = 0 .. n - 1

    so a 4-pixel axis has coordinates ``[-0.75, -0.25, 0.25, 0.75]``. Points are listed in row-major
    (C) order and the coordinate vector is in ``ij`` order: for an image, ``coords[..., 0]`` is the row
    (top to bottom, -1 to 1) and ``coords[..., 1]`` the column (left to right). Axes may have any and
    different sizes; a centre grid is resolution-consistent: the same continuous position has the same
    coordinate at every resolution.

    ``align="corner"`` gives the variant used by the VaMoH and GASP code, ``x_i = 2 i / (n - 1) - 1``
    (both ends exactly at -1 and 1). Its super-resolution grid of factor ``s`` has ``(n - 1) s + 1``
    points per axis (``2n - 1`` for ``s = 2``) and contains the original grid exactly.

Sphere (climate fields)
    Latitude ``phi`` and longitude ``lambda`` in degrees map to unit vectors
    ``(cos phi cos lambda, cos phi sin lambda, sin phi)`` on S^2 (``latlon_to_unit``), and back with
    ``unit_to_latlon`` (longitude in ``[-180, 180)``, or ``[0, 360)`` with ``lon_range=360``).

Rays (novel views)
    A camera is a camera-to-world matrix ``c2w`` (3x4 or 4x4) plus intrinsics ``K`` (3x3, pixels).
    The default camera convention is OpenGL/Blender (the NeRF ``transforms.json`` layout): the camera
    looks along its -z axis, +y is up and +x right; ``convention="opencv"`` flips to +z forward, +y down.
    Rays go through pixel centres ``(u, v) = (j + 0.5, i + 0.5)``. A ray with origin ``o`` and unit
    direction ``d`` has Plücker coordinates ``(d, o x d)`` in R^6, which do not depend on where ``o``
    lies along the ray.

Example:
    >>> from inrgen.coords import grid
    >>> grid((2, 3)).shape
    torch.Size([6, 2])
    >>> grid((2,))[:, 0].tolist()
    [-0.5, 0.5]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "Align",
    "axis_coords",
    "grid",
    "superres_grid",
    "superres_shape",
    "latlon_to_unit",
    "unit_to_latlon",
    "latlon_grid",
    "equiangular_latlon",
    "intrinsics_from_fov",
    "camera_rays",
    "plucker",
    "ray_grid",
]

Align = Literal["center", "corner"]


def _check_shape(shape: Sequence[int], name: str = "shape") -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)
    except TypeError as err:
        raise TypeError(f"{name} must be a sequence of ints such as (28, 28), got {shape!r}") from err
    if len(out) == 0 or any(s < 1 for s in out):
        raise ValueError(f"{name} must be non-empty with every size >= 1, got {shape!r}")
    return out


def axis_coords(
    n: int, align: Align = "center", *, dtype: torch.dtype = torch.float32, device=None
) -> Tensor:
    """The ``n`` coordinates of one grid axis in ``[-1, 1]`` (see the module docstring)."""
    if n < 1:
        raise ValueError(f"an axis needs at least one point, got n={n}")
    i = torch.arange(n, dtype=torch.float64, device=device)
    if align == "center":
        x = (2 * i + 1) / n - 1
    elif align == "corner":
        x = torch.zeros(1, dtype=torch.float64, device=device) if n == 1 else 2 * i / (n - 1) - 1
    else:
        raise ValueError(f"align must be 'center' or 'corner', got {align!r}")
    return x.to(dtype)


def grid(
    shape: Sequence[int],
    align: Align = "center",
    *,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> Tensor:
    """Coordinates of every cell of a grid, ``(prod(shape), len(shape))``, row-major, ``ij`` order.

    Example:
        >>> grid((2, 2)).tolist()
        [[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]]
    """
    shape = _check_shape(shape)
    axes = [axis_coords(n, align, dtype=torch.float64, device=device) for n in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(mesh, dim=-1).reshape(-1, len(shape)).to(dtype)


def superres_shape(shape: Sequence[int], factor: float, align: Align = "center") -> tuple[int, ...]:
    """Grid shape at a super-resolution ``factor`` (any real number > 0).

    Centre grids: ``round(n * factor)`` cells per axis. Corner grids: ``round((n - 1) * factor) + 1``
    points per axis, so that an integer factor keeps every original point.
    """
    shape = _check_shape(shape)
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"the super-resolution factor must be a finite number > 0, got {factor!r}")
    if align == "center":
        return tuple(max(1, round(n * factor)) for n in shape)
    if align == "corner":
        return tuple(max(1, round((n - 1) * factor) + 1) for n in shape)
    raise ValueError(f"align must be 'center' or 'corner', got {align!r}")


def superres_grid(
    shape: Sequence[int],
    factor: float,
    align: Align = "center",
    *,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> tuple[Tensor, tuple[int, ...]]:
    """A grid covering the same domain as ``shape`` at ``factor`` times the resolution.

    Returns ``(coords, new_shape)``. With ``align="corner"`` and an integer factor the original grid is
    a subset of the new one (every ``factor``-th point along each axis).
    """
    new_shape = superres_shape(shape, factor, align)
    return grid(new_shape, align, dtype=dtype, device=device), new_shape


# --------------------------------------------------------------------------------------------- sphere


def latlon_to_unit(lat: Tensor, lon: Tensor) -> Tensor:
    """Latitude / longitude in degrees, any broadcastable shapes, to unit vectors ``(..., 3)``."""
    lat = torch.as_tensor(lat)
    lon = torch.as_tensor(lon)
    if not torch.is_floating_point(lat):
        lat = lat.double()
    if not torch.is_floating_point(lon):
        lon = lon.to(lat.dtype)
    if not (torch.isfinite(lat).all() and torch.isfinite(lon).all()):
        raise ValueError("latitude / longitude contain NaN or inf: pass finite values in degrees")
    if (lat.abs() > 90 + 1e-6).any():
        raise ValueError(
            f"latitude must lie in [-90, 90] degrees, found values up to {lat.abs().max().item():.3f}"
            " (did you pass radians, or swap latitude and longitude?)"
        )
    phi = torch.deg2rad(lat)
    lam = torch.deg2rad(lon)
    phi, lam = torch.broadcast_tensors(phi, lam)
    return torch.stack([phi.cos() * lam.cos(), phi.cos() * lam.sin(), phi.sin()], dim=-1)


def unit_to_latlon(xyz: Tensor, lon_range: Literal[180, 360] = 180) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`latlon_to_unit`; vectors are normalised first. Returns degrees."""
    xyz = torch.as_tensor(xyz)
    if xyz.shape[-1] != 3:
        raise ValueError(f"expected points of shape (..., 3) on the sphere, got {tuple(xyz.shape)}")
    xyz = xyz / xyz.norm(dim=-1, keepdim=True)
    lat = torch.rad2deg(torch.asin(xyz[..., 2].clamp(-1, 1)))
    lon = torch.rad2deg(torch.atan2(xyz[..., 1], xyz[..., 0]))
    if lon_range == 360:
        lon = torch.remainder(lon, 360.0)
    return lat, lon


def latlon_grid(lat: Tensor, lon: Tensor, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """Unit vectors of a (lat, lon) grid: ``(len(lat) * len(lon), 3)``, latitude-major (row = latitude)."""
    lat = torch.as_tensor(lat, dtype=torch.float64).flatten()
    lon = torch.as_tensor(lon, dtype=torch.float64).flatten()
    la, lo = torch.meshgrid(lat, lon, indexing="ij")
    return latlon_to_unit(la, lo).reshape(-1, 3).to(dtype)


def equiangular_latlon(n_lat: int, n_lon: int) -> tuple[Tensor, Tensor]:
    """The ERA5-style grid: latitudes ``linspace(90, -90, n_lat)``, longitudes ``0, 360/n_lon, ...``."""
    lat = torch.linspace(90.0, -90.0, n_lat, dtype=torch.float64)
    lon = torch.arange(n_lon, dtype=torch.float64) * (360.0 / n_lon)
    return lat, lon


# ----------------------------------------------------------------------------------------------- rays


def intrinsics_from_fov(camera_angle_x: float, width: int, height: int | None = None) -> Tensor:
    """Pinhole ``K`` (3x3, float64) from the horizontal field of view in radians (``transforms.json``)."""
    height = width if height is None else height
    if not (0 < camera_angle_x < math.pi):
        raise ValueError(f"camera_angle_x must be in (0, pi) radians, got {camera_angle_x}")
    focal = 0.5 * width / math.tan(0.5 * camera_angle_x)
    return torch.tensor(
        [[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]], dtype=torch.float64
    )


def camera_rays(
    c2w: Tensor,
    K: Tensor,
    height: int,
    width: int,
    convention: Literal["opengl", "opencv"] = "opengl",
) -> tuple[Tensor, Tensor]:
    """Ray origins and unit directions through every pixel centre.

    Args:
        c2w: camera-to-world ``(..., 3, 4)`` or ``(..., 4, 4)``.
        K: intrinsics ``(3, 3)`` or ``(..., 3, 3)``, in pixels.
    Returns:
        origins, directions: ``(..., height, width, 3)`` each, in the dtype of ``c2w``.
    """
    c2w = torch.as_tensor(c2w)
    if not torch.is_floating_point(c2w):
        c2w = c2w.double()
    if c2w.shape[-2:] not in ((3, 4), (4, 4)):
        raise ValueError(f"c2w must have shape (..., 3, 4) or (..., 4, 4), got {tuple(c2w.shape)}")
    if not torch.isfinite(c2w).all():
        raise ValueError("the camera pose c2w contains NaN or inf")
    K = torch.as_tensor(K, dtype=c2w.dtype, device=c2w.device)
    if K.shape[-2:] != (3, 3):
        raise ValueError(f"K must be a (3, 3) intrinsics matrix, got {tuple(K.shape)}")
    batch = c2w.shape[:-2]
    v, u = torch.meshgrid(
        torch.arange(height, dtype=c2w.dtype, device=c2w.device) + 0.5,
        torch.arange(width, dtype=c2w.dtype, device=c2w.device) + 0.5,
        indexing="ij",
    )
    K = K.reshape(*K.shape[:-2], *([1] * 2), 3, 3) if K.dim() > 2 else K
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    cx, cy = K[..., 0, 2], K[..., 1, 2]
    x = (u - cx) / fx
    y = (v - cy) / fy
    if convention == "opengl":
        d_cam = torch.stack([x, -y, -torch.ones_like(x)], dim=-1)
    elif convention == "opencv":
        d_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)
    else:
        raise ValueError(f"convention must be 'opengl' or 'opencv', got {convention!r}")
    R = c2w[..., :3, :3].reshape(*batch, 1, 1, 3, 3)
    d = (R @ d_cam.unsqueeze(-1)).squeeze(-1)
    d = d / d.norm(dim=-1, keepdim=True)
    o = c2w[..., :3, 3].reshape(*batch, 1, 1, 3).expand_as(d)
    return o, d


def plucker(origins: Tensor, directions: Tensor) -> Tensor:
    """Plücker coordinates ``(d, o x d)`` with ``d`` normalised: ``(..., 6)``."""
    if origins.shape[-1] != 3 or directions.shape[-1] != 3:
        raise ValueError(
            f"origins and directions must end in 3, got {tuple(origins.shape)} and {tuple(directions.shape)}"
        )
    d = directions / directions.norm(dim=-1, keepdim=True)
    return torch.cat([d, torch.linalg.cross(origins.expand_as(d), d, dim=-1)], dim=-1)


def ray_grid(
    c2w: Tensor, K: Tensor, height: int, width: int, convention: Literal["opengl", "opencv"] = "opengl"
) -> Tensor:
    """Plücker coordinates of every pixel of a camera: ``(..., height * width, 6)``, row-major."""
    o, d = camera_rays(c2w, K, height, width, convention)
    p = plucker(o, d)
    return p.reshape(*p.shape[:-3], height * width, 6)

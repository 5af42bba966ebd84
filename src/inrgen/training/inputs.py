"""Reading a user's files for a trained model, checked against what the model was trained on.

:class:`ModelSpec` says what a checkpoint expects, from its ``config.json`` alone: the modality of its
training data (``image``, ``voxel``, ``sphere``, ``views``), value channels, coordinate dimension, the
training grid and the data statistics (sphere fields are normalised with the training split's).
:func:`read_inputs` turns a file or folder into named PointSets of that modality:

| modality | files                                 | item                                           |
|----------|---------------------------------------|------------------------------------------------|
| image    | PNG / JPEG (a file, or a folder's)    | ``PointSet.from_image``, resized and centre-    |
|          |                                       | cropped to the training grid                   |
| voxel    | ``.npy`` / ``.npz``: (D,H,W) or       | ``PointSet.from_volume`` per volume            |
|          | (N,D,H,W) occupancy in [0, 1]         |                                                |
| sphere   | NetCDF (``.nc``...) or GASP ``.npz``  | ``PointSet.from_latlon`` per time step,        |
|          |                                       | normalised with the checkpoint's statistics    |

Every file is checked before any work: an image whose channels (after dropping alpha) differ from the
model's, a volume that is not occupancy, a field file of another kind each raise :class:`InputError`
naming the file, what the model expects and what was found.

Example:
    >>> spec = ModelSpec.from_config(load_config("runs/mnist/checkpoint"))  # doctest: +SKIP
    >>> items = read_inputs("digit.png", spec)                              # doctest: +SKIP
    >>> items[0].name, items[0].points.grid_shape                           # doctest: +SKIP
    ('digit', (28, 28))
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from inrgen.configs.base import DataConfig, config_from_dict
from inrgen.data.points import PointSet

__all__ = [
    "InputError",
    "ModelSpec",
    "InputItem",
    "read_inputs",
    "read_poses",
    "read_support_views",
    "check_image_file",
]

_MODALITY_BY_DIM = {2: "image", 6: "views"}


class InputError(ValueError):
    """A user's input file that the model cannot read."""


@dataclass
class ModelSpec:
    """What a checkpoint was trained on (see the module docstring)."""

    preset: str
    model: str
    modality: str
    channels: int
    coord_dim: int
    grid_shape: tuple[int, ...] | None
    data: DataConfig
    data_info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> ModelSpec:
        mc = cfg["model_config"]
        data = config_from_dict(DataConfig, cfg.get("data", {})) if "data" in cfg else DataConfig()
        coord_dim = int(mc.get("coord_dim", 2))
        channels = int(mc.get("out_channels", 1))
        modality, grid = None, None
        try:
            from inrgen.data.datasets import SOURCES

            info = SOURCES.get(data.source)
            if info is not None:
                modality, grid = info.modality, info.grid_shape
        except ImportError:  # pragma: no cover - the data package is part of inrgen
            pass
        size = data.options.get("size", data.options.get("image_size"))
        if size is not None and modality in (None, "image"):
            grid = (int(size), int(size)) if isinstance(size, (int, float)) else tuple(int(s) for s in size)
        if modality is None:
            modality = _MODALITY_BY_DIM.get(coord_dim, "voxel")
        return cls(
            preset=str(cfg.get("preset", "custom")),
            model=str(cfg["model"]),
            modality=modality,
            channels=channels,
            coord_dim=coord_dim,
            grid_shape=tuple(grid) if grid else None,
            data=data,
            data_info=dict(cfg.get("data_info") or {}),
        )


@dataclass
class InputItem:
    """One input: a name for its output files, its points, and notes for the summary."""

    name: str
    points: PointSet
    source: str
    notes: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------- images

_ONE = {"1", "L", "LA", "I", "F", "I;16", "I;16B", "I;16L", "La"}
_EXT_IMAGE = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_EXT_VOXEL = (".npy", ".npz")
_EXT_FIELD = (".nc", ".nc4", ".cdf", ".netcdf")


def _whole(path: Path, fmt: str | None) -> bool:
    """Whether the file ends as a complete PNG (IEND chunk) or JPEG (EOI marker) does; False: unsure."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read()
    except OSError:
        return False
    if fmt == "PNG":
        return b"IEND" in tail[-64:]
    if fmt in ("JPEG", "MPO"):
        return b"\xff\xd9" in tail
    return False


def check_image_file(path: str | os.PathLike) -> tuple[str, tuple[int, int]]:
    """``(PIL mode, (height, width))`` of an image file that is whole and safe to decode, or an
    :class:`InputError` naming the file: unreadable, truncated (a PNG without its end chunk, a JPEG
    without its end marker, or any other file that fails to decode), or larger than PIL's
    decompression-bomb limit. Checks the end of PNG / JPEG files only, so a folder is checked fast."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            mode, size, fmt = img.mode, (img.height, img.width), img.format
            if not _whole(path, fmt):
                img.load()  # decode to be sure
    except Image.DecompressionBombError:
        raise InputError(
            f"{path} is too large to decode safely ({size_text(path)}, above PIL's limit of "
            f"{2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels: a decompression bomb?); shrink it or move it out "
            "of the folder"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{path} is not a readable image ({type(err).__name__}: {err})") from None
    return mode, size


def size_text(path: Path) -> str:
    """``"W x H pixels"`` from an image header, without the decompression-bomb check."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None
        with Image.open(path) as img:
            return f"{img.width} x {img.height} = {img.width * img.height:,} pixels"
    except Exception:  # noqa: BLE001 - only for the message
        return "size unknown"
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _palette_channels(path: Path) -> int:
    """1 when a palette image's colours are all grey, else 3 (what converting it loses or keeps)."""
    from PIL import Image

    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"))
    return 1 if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all() else 3


def _image_channels(path: Path) -> tuple[int, str, tuple[int, int]]:
    """``(colour channels, what the file is in words, (height, width))``: alpha is dropped (composited
    on white, as training does); palette images (GIFs, palette PNGs) count by their colours, so a grey
    palette image is read by a grayscale model, and any palette image by an RGB one."""
    mode, size = check_image_file(path)
    if mode in _ONE:
        alpha = mode in ("LA", "La")
        return 1, ("a grayscale + alpha image" if alpha else f"a 1-channel image (PIL mode {mode})"), size
    if mode in ("P", "PA"):
        ch = _palette_channels(path)
        return ch, f"a {'grey' if ch == 1 else 'colour'} palette image (PIL mode {mode})", size
    if mode in ("RGBA", "RGBa", "RGBX"):
        return 3, "an RGBA image (3 colour channels + alpha)", size
    return 3, f"a 3-channel image (PIL mode {mode})", size


def _read_images(files: list[Path], spec: ModelSpec) -> list[InputItem]:
    from inrgen.data.datasets.images import load_image

    checked = []
    for f in files:
        ch, what, size = _image_channels(f)
        lossless = spec.channels == 3 and "palette" in what  # a grey palette read as RGB loses nothing
        if ch != spec.channels and not lossless:
            want = "grayscale (1 channel)" if spec.channels == 1 else f"RGB ({spec.channels} channels)"
            conv = "grayscale" if spec.channels == 1 else "RGB"
            raise InputError(
                f"{f} is {what}, but the model ({spec.preset}) was trained on {want} images; "
                f"convert the image to {conv} first"
            )
        checked.append((f, size))
    items = []
    for f, size in checked:
        img = load_image(f, "L" if spec.channels == 1 else "RGB", spec.grid_shape)
        notes = {"file": str(f), "size": list(size)}
        if spec.grid_shape is not None and tuple(size) != tuple(spec.grid_shape):
            notes["resized_to"] = list(spec.grid_shape)
        items.append(InputItem(f.stem, PointSet.from_image(img.unsqueeze(0)), str(f), notes))
    return items


# ---------------------------------------------------------------------------------------- voxels


def _read_volumes(path: Path) -> list[InputItem]:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                key = next(
                    (k for k in ("voxels", "occupancy", "volumes", "data") if k in z),
                    keys[0] if keys else None,
                )
                if key is None:
                    raise InputError(f"{path} holds no arrays")
                arr = np.asarray(z[key])
        else:
            arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"{path} is not a readable numpy array ({err})") from None
    a = np.asarray(arr)
    if a.size == 0:
        raise InputError(
            f"{path} has shape {a.shape}: it holds no voxels; expected occupancy volumes (D, H, W) or "
            "(N, D, H, W) with every size >= 1"
        )
    if a.ndim == 5 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 5:
        raise InputError(
            f"{path} has shape {a.shape}: {a.shape[1]} channels per voxel, but the model was trained on "
            "1-channel occupancy volumes (D, H, W) or (N, D, H, W)"
        )
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise InputError(
            f"{path} has shape {a.shape}; expected an occupancy volume (D, H, W) or (N, D, H, W)"
        )
    a = a.astype(np.float32)
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise InputError(
            f"{path} holds values outside [0, 1] (min {np.nanmin(a):.3g}, max {np.nanmax(a):.3g}); expected "
            "occupancy in {0, 1} (or probabilities)"
        )
    vols = torch.from_numpy(a).unsqueeze(1)  # (N, 1, D, H, W)
    stem = path.stem
    notes = {"file": str(path), "shape": list(a.shape[1:])}
    return [
        InputItem(stem if len(vols) == 1 else f"{stem}-{i:03d}", PointSet.from_volume(vols[i : i + 1]),
                  str(path), dict(notes))
        for i in range(len(vols))
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------- fields


def _read_fields(path: Path, spec: ModelSpec) -> list[InputItem]:
    from inrgen.data.datasets import DataSourceError, sphere

    stats = spec.data_info.get("stats")
    clip = spec.data_info.get("clip", True)
    opts = {k: v for k, v in spec.data.options.items() if k in ("variable",)}
    try:
        if path.suffix.lower() in _EXT_FIELD:
            ds = sphere.NetCDFFieldDataset(path, split="all", stats=stats, clip=clip, shuffle=False, **opts)
        else:
            ds = sphere.GASPNpzDataset(path, split="all", stats=stats, clip=clip)
    except (DataSourceError, TypeError) as err:
        raise InputError(f"{path} cannot be read as a field on the sphere: {err}") from None
    items = []
    for i in range(len(ds)):
        ps = ds[i]
        ps.meta["stats"] = dict(ds.stats)
        name = f"{path.stem}-{i:03d}" if len(ds) > 1 else path.stem
        notes = {"file": str(path), "time_index": i, "grid": list(ds.grid_shape)}
        items.append(InputItem(name, ps, str(path), notes))
    if stats is None:
        for it in items:
            it.notes["normalisation"] = "statistics of this file (the checkpoint stores none)"
    return items


# ------------------------------------------------------------------------------------------ read


def read_inputs(path: str | os.PathLike, spec: ModelSpec, limit: int | None = None) -> list[InputItem]:
    """A file or folder of ``spec.modality`` inputs as named PointSets (see the module docstring)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"--input {path} does not exist")
    if spec.modality == "views":
        raise InputError(
            "this model reads support views: use `inrgen novel-view CKPT --views DIR --pose FILE`"
        )
    ext = {"image": _EXT_IMAGE, "voxel": _EXT_VOXEL, "sphere": _EXT_FIELD + (".npz",)}[spec.modality]
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in ext and not p.name.startswith(".")
        )
        if not files:
            found = sorted(p.name for p in path.iterdir())[:8]
            raise InputError(
                f"{path} holds no {spec.modality} inputs for this model (expected {', '.join(ext)} files); "
                f"found {found}"
            )
    else:
        if path.suffix.lower() not in ext:
            raise InputError(
                f"{path} is not a {spec.modality} input: the model ({spec.preset}, trained on "
                f"{spec.modality} data) reads {', '.join(ext)} files"
            )
        files = [path]
    if limit is not None:
        files = files[:limit]
    if spec.modality == "image":
        items = _read_images(files, spec)
    elif spec.modality == "voxel":
        items = [it for f in files for it in _read_volumes(f)]
    else:
        items = [it for f in files for it in _read_fields(f, spec)]
    names: dict[str, int] = {}
    for it in items:  # unique output names
        k = names.get(it.name, 0)
        names[it.name] = k + 1
        if k:
            it.name = f"{it.name}-{k}"
    for it in items:
        if it.points.coord_dim != spec.coord_dim or it.points.channels != spec.channels:
            raise InputError(
                f"{it.source}: {it.points.channels}-channel values at {it.points.coord_dim}-D coordinates, "
                f"but the model expects {spec.channels} channels at {spec.coord_dim}-D coordinates"
            )
    return items


# ------------------------------------------------------------------------------------------ views


def read_support_views(folder: str | os.PathLike, n_support: int, image_size: int | None = None):
    """The first ``n_support`` views of an object folder (``transforms.json`` + PNGs) as a rays PointSet,
    plus ``(fov_x, (H, W))``."""
    from inrgen.data.datasets import DataSourceError
    from inrgen.data.datasets.views import load_view, read_transforms

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"--views {folder} is not a folder (expected transforms.json and the view PNGs)")
    try:
        fov, files, poses = read_transforms(folder)
        if len(files) < n_support:
            raise InputError(f"{folder} has {len(files)} views; the model reads {n_support} support views")
        imgs = torch.stack([load_view(f, image_size) for f in files[:n_support]])
    except DataSourceError as err:
        raise InputError(str(err)) from None
    from inrgen import coords as C

    h, w = imgs.shape[-2:]
    K = C.intrinsics_from_fov(fov, w, h)
    support = PointSet.from_views(imgs.unsqueeze(0), torch.from_numpy(poses[:n_support]).unsqueeze(0), K)
    return support, fov, (h, w), imgs


def read_poses(path: str | os.PathLike, default_fov: float) -> tuple[Tensor, float]:
    """Camera-to-world poses ``(Q, 4, 4)`` and ``fov_x`` from a JSON file: a 4x4 matrix, a list of them,
    ``{"transform_matrix": ...}``, or a ``transforms.json`` (``frames``)."""
    path = Path(path).expanduser()
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"--pose {path} is not a readable JSON file ({err})") from None
    fov = default_fov
    if isinstance(obj, dict):
        fov = float(obj.get("camera_angle_x", default_fov))
        if "frames" in obj:
            mats = [fr.get("transform_matrix") if isinstance(fr, dict) else None for fr in obj["frames"]]
        elif "transform_matrix" in obj:
            mats = [obj["transform_matrix"]]
        else:
            mats = []
    else:
        mats = (
            obj
            if (isinstance(obj, list) and obj and isinstance(obj[0], list) and isinstance(obj[0][0], list))
            else [obj]
        )
    try:
        arr = np.asarray(mats, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.ndim != 3 or arr.shape[1:] not in ((4, 4), (3, 4)) or not np.isfinite(arr).all():
        raise InputError(
            f"--pose {path}: expected a 4x4 camera-to-world matrix, a list of them, "
            '{"transform_matrix": [[...]]} or a transforms.json with frames; found shape '
            f"{arr.shape if arr.size else 'none'}"
        )
    if arr.shape[1:] == (3, 4):
        arr = np.concatenate([arr, np.tile([[[0, 0, 0, 1.0]]], (len(arr), 1, 1))], axis=1)
    if not (0 < fov < math.pi):
        raise InputError(f"--pose {path}: camera_angle_x must be in (0, pi) radians, got {fov}")
    return torch.from_numpy(arr), fov

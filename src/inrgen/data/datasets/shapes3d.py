"""Shapes3D (Burgess & Kim, 2018) from the official ``3dshapes.h5``.

The file holds two HDF5 datasets::

    images  (N, 64, 64, 3) uint8      N = 480,000 in the official release
    labels  (N, 6) float              floor hue, wall hue, object hue, scale, shape, orientation

Items are 64x64 RGB PointSets (``uint8 / 255``); ``meta["labels"]`` is the shape class
(``round(labels[:, 4])``, 0 cube, 1 cylinder, 2 sphere, 3 capsule) and ``meta["factors"]`` the six
factor values ``(1, 6)``. Reading is lazy: the file is opened once per process on first access and
only the requested items are read (the VaMoH code loads all 5.9 GB into memory instead).

Splits: a fixed permutation (seed 0) cut 80/10/10, as the VaMoH code's ``random.seed(0)`` shuffle
(not the same permutation). ``subset=0.1`` keeps the first 10% of the split (VaMoH's ``shapes3d_10``).

Example:
    >>> ds = Shapes3DDataset("data/shapes3d/3dshapes.h5", split="test")   # doctest: +SKIP
    >>> ds[0].meta["factors"]                                             # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from inrgen.data.datasets._common import DataSourceError, GridDataset, describe_found, split_indices

__all__ = ["Shapes3DDataset", "FACTORS", "SHAPES", "check_files", "FILENAME"]

FILENAME = "3dshapes.h5"
FACTORS = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
SHAPES = ("cube", "cylinder", "sphere", "capsule")


def _resolve(root: str | os.PathLike | None) -> Path:
    if root is None:
        raise DataSourceError(
            f"shapes3d: pass root=... (--root): the official {FILENAME} or a folder holding it"
        )
    p = Path(root).expanduser()
    if p.is_dir():
        p = p / FILENAME
    if not p.is_file():
        raise DataSourceError(
            f"shapes3d: expected the HDF5 file {FILENAME} (datasets 'images' (N,64,64,3) uint8 and "
            f"'labels' (N,6)) at {p}, but {describe_found(p if p.parent.exists() else p.parent)}"
        )
    return p


def check_files(root: str | os.PathLike | None) -> tuple[Path, int, tuple[int, int]]:
    """``(path, N, (H, W))`` after checking the file's keys, shapes and dtypes; a clear error otherwise."""
    import h5py

    p = _resolve(root)
    try:
        f = h5py.File(p, "r")
    except OSError as err:
        raise DataSourceError(f"shapes3d: {p} is not a readable HDF5 file ({err})") from None
    with f:
        keys = sorted(f.keys())
        if "images" not in f or "labels" not in f:
            raise DataSourceError(
                f"shapes3d: {p} is an HDF5 file with other keys: expected datasets 'images' and 'labels', "
                f"found {keys}"
            )
        img, lab = f["images"], f["labels"]
        if not isinstance(img, h5py.Dataset) or not isinstance(lab, h5py.Dataset):
            raise DataSourceError(f"shapes3d: 'images' and 'labels' in {p} must be datasets, not groups")
        if img.ndim != 4 or img.shape[3] != 3 or img.dtype != np.uint8:
            raise DataSourceError(
                f"shapes3d: {p}['images'] should be (N, H, W, 3) uint8, found {img.shape} {img.dtype}"
            )
        if lab.shape != (img.shape[0], 6):
            raise DataSourceError(
                f"shapes3d: {p}['labels'] should be (N, 6) = ({img.shape[0]}, 6) to match the images, "
                f"found {lab.shape}"
            )
        return p, int(img.shape[0]), (int(img.shape[1]), int(img.shape[2]))


class Shapes3DDataset(GridDataset):
    """Shapes3D items from ``3dshapes.h5`` (see the module docstring)."""

    modality = "image"
    channels = 3

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        subset: float | None = None,
        seed: int = 0,
    ) -> None:
        self.path, n, hw = check_files(root)
        self.grid_shape = hw
        idx = split_indices(n, split, None, seed)
        if subset is not None:
            if not 0 < subset <= 1:
                raise ValueError(f"shapes3d: subset must be a fraction in (0, 1], got {subset}")
            idx = idx[: max(1, int(len(idx) * subset))]
        if len(idx) == 0:
            raise DataSourceError(f"shapes3d: split {split!r} of {self.path} ({n} items) is empty")
        self.indices = idx
        self._file = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.indices)

    def _h5(self):
        import h5py

        if self._file is None or self._pid != os.getpid():  # one handle per worker process
            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._file

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, -1
        return state

    def array(self, i: int) -> Tensor:
        img = self._h5()["images"][int(self.indices[i])]
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)).astype(np.float32) / 255.0)

    def factors(self, i: int) -> np.ndarray:
        return np.asarray(self._h5()["labels"][int(self.indices[i])], dtype=np.float64)

    def label(self, i: int) -> int:
        return int(round(float(self.factors(i)[4])))

    def __getitem__(self, i: int):
        ps = super().__getitem__(i)
        ps.meta["factors"] = torch.from_numpy(self.factors(self._index(i))).unsqueeze(0)
        return ps

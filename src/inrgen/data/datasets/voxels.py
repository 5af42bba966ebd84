"""Voxel occupancy grids (ShapeNet chairs at 32^3 in VaMoH and GASP), with random point subsampling.

Accepted layouts (``root``):

- a folder of per-shape tensors, the chairs format of the VaMoH and GASP code: ``*.pt`` files, each a
  ``(32, 32, 32)`` occupancy tensor saved with ``torch.save`` (read with ``weights_only=True``); per-shape
  ``*.npy`` arrays are accepted too;
- ``.npy``: one array ``(N, D, H, W)`` or ``(N, 1, D, H, W)`` (memory-mapped);
- ``.npz``: the array under key ``voxels`` (or the only array in the file);
- ``.h5`` / ``.hdf5``: the dataset ``voxels`` (or the only dataset in the file).

Values must be occupancies in {0, 1} (bool, integer or float); ``threshold=t`` turns any other field
into occupancy ``v >= t``. Items are ``PointSet.from_volume`` of ``(1, 1, D, H, W)`` with coordinates
in ``[-1, 1]^3`` (``inrgen.coords``), then, when ``num_points`` is set, a random subset of that many
voxels per item (``PointSet.gather``: a fresh subset on every access). Default: 4096 points for the
train split (the papers' ``max_num_points``), the full grid for val / test / all. The VaMoH code shares
one subset across a batch; with ``num_points=None`` the same is done with a batch mask
(``inrgen.data.masks``).

Splits: the sorted shapes are cut 80/10/10 by position, as the VaMoH ``VoxelDataset`` (no shuffle).

Example:
    >>> ds = VoxelDataset("voxels/", split="train")     # doctest: +SKIP
    >>> ds[0].coords.shape                               # doctest: +SKIP
    torch.Size([1, 4096, 3])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from inrgen.data.datasets._common import DataSourceError, describe_found, split_indices
from inrgen.data.points import PointSet

__all__ = ["VoxelDataset", "check_files", "VOXEL_SUFFIXES", "DEFAULT_NUM_POINTS"]

VOXEL_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5")
DEFAULT_NUM_POINTS = 4096


def _array_key(keys: list[str], path: Path, kind: str) -> str:
    if "voxels" in keys:
        return "voxels"
    if len(keys) == 1:
        return keys[0]
    raise DataSourceError(
        f"voxels: {path} is a {kind} file with other keys: expected an array named 'voxels' (or a single "
        f"array), found {keys}"
    )


def _check_shape(shape: tuple[int, ...], where: str, per_shape: bool) -> tuple[int, ...]:
    """The (D, H, W) of a stored array, or a clear error."""
    s = tuple(int(x) for x in shape)
    if per_shape:
        if len(s) == 4 and s[0] == 1:
            s = s[1:]
        if len(s) != 3:
            raise DataSourceError(
                f"voxels: {where} should be a (D, H, W) occupancy grid, found shape {shape}"
            )
        return s
    if len(s) == 5 and s[1] == 1:
        s = (s[0],) + s[2:]
    if len(s) != 4:
        raise DataSourceError(
            f"voxels: {where} should be an array (N, D, H, W) or (N, 1, D, H, W), found shape {shape}"
        )
    return s


def _load_pt(path: Path) -> np.ndarray:
    try:
        t = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise DataSourceError(
            f"voxels: {path} is not a readable torch tensor file ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(t, Tensor):
        raise DataSourceError(f"voxels: {path} should hold one tensor (D, H, W), found {type(t).__name__}")
    return t.numpy()


def check_files(root: str | os.PathLike | None) -> tuple[str, Path, list[Path] | str, tuple[int, ...]]:
    """``(layout, path, files-or-key, shape)`` where shape is ``(N, D, H, W)``; clear errors otherwise."""
    if root is None:
        raise DataSourceError(
            "voxels: pass root=... (--root): a folder of per-shape .pt tensors (D, H, W), or a .npy / .npz / "
            ".h5 file holding (N, D, H, W) occupancies"
        )
    p = Path(root).expanduser()
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix in (".pt", ".npy") and not f.name.startswith("."))
        if not files:
            raise DataSourceError(
                f"voxels: expected per-shape occupancy tensors (*.pt, or *.npy) in {p}, found none: "
                f"{describe_found(p)}"
            )
        first = files[0]
        arr = _load_pt(first) if first.suffix == ".pt" else _load_npy(first)
        dhw = _check_shape(arr.shape, str(first), per_shape=True)
        return "folder", p, files, (len(files),) + dhw
    if not p.is_file():
        raise DataSourceError(
            f"voxels: expected a folder or a .npy/.npz/.h5 file at {p}, but {describe_found(p)}"
        )
    suf = p.suffix.lower()
    if suf == ".npy":
        a = _load_npy(p, mmap=True)
        return "npy", p, "", _check_shape(a.shape, str(p), per_shape=False)
    if suf == ".npz":
        try:
            with np.load(p) as z:
                key = _array_key(list(z.keys()), p, "npz")
                shape = z[key].shape
        except (OSError, ValueError) as err:
            raise DataSourceError(f"voxels: {p} is not a readable .npz file ({err})") from None
        return "npz", p, key, _check_shape(shape, f"{p}[{key!r}]", per_shape=False)
    if suf in (".h5", ".hdf5"):
        import h5py

        try:
            f = h5py.File(p, "r")
        except OSError as err:
            raise DataSourceError(f"voxels: {p} is not a readable HDF5 file ({err})") from None
        with f:
            keys = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
            key = _array_key(sorted(keys), p, "HDF5")
            shape = f[key].shape
        return "h5", p, key, _check_shape(shape, f"{p}[{key!r}]", per_shape=False)
    raise DataSourceError(
        f"voxels: {p} has suffix {p.suffix!r}; expected a folder of .pt files or one of "
        f"{', '.join(VOXEL_SUFFIXES)}"
    )


def _load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataSourceError(f"voxels: {path} is not a readable .npy array ({err})") from None


class VoxelDataset(Dataset):
    """Occupancy grids as PointSets (see the module docstring).

    Args:
        root: folder of per-shape ``.pt`` tensors, or a ``.npy`` / ``.npz`` / ``.h5`` file.
        split: "train" | "val" | "test" | "all".
        num_points: voxels kept per item (random, fresh per access); None = the full grid. Default
            ``"auto"``: 4096 for "train", None otherwise.
        threshold: binarise non-binary values with ``v >= threshold`` (None: values must be 0/1).
        fractions, shuffle, seed: the split (default 80/10/10 by position).
    """

    modality = "voxel"
    channels = 1

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        num_points: int | None | str = "auto",
        threshold: float | None = None,
        fractions: dict[str, float] | None = None,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        self.layout, self.path, self._files, shape = check_files(root)
        self.grid_shape = tuple(shape[1:])
        if num_points == "auto":
            num_points = DEFAULT_NUM_POINTS if split == "train" else None
        total = int(np.prod(self.grid_shape))
        if num_points is not None and not (1 <= int(num_points) <= total):
            raise ValueError(
                f"voxels: num_points must be in 1..{total} (the grid's cells) or None, got {num_points}"
            )
        self.num_points = None if num_points is None else int(num_points)
        self.threshold = threshold
        self.indices = split_indices(shape[0], split, fractions, seed, shuffle)
        if len(self.indices) == 0:
            raise DataSourceError(f"voxels: split {split!r} of {self.path} ({shape[0]} shapes) is empty")
        self._cache: Any = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"], state["_pid"] = None, -1
        return state

    def _raw(self, j: int) -> tuple[np.ndarray, str]:
        if self.layout == "folder":
            f = Path(self._files[j])
            return (_load_pt(f) if f.suffix == ".pt" else _load_npy(f)), str(f)
        if self._cache is None or self._pid != os.getpid():
            if self.layout == "npy":
                self._cache = _load_npy(self.path, mmap=True)
            elif self.layout == "npz":
                with np.load(self.path) as z:
                    self._cache = z[self._files]  # type: ignore[index]
            else:
                import h5py

                self._cache = h5py.File(self.path, "r")[self._files]  # type: ignore[index]
            self._pid = os.getpid()
        return np.asarray(self._cache[j]), f"{self.path} item {j}"

    def volume(self, i: int) -> Tensor:
        """Item ``i`` as an occupancy volume ``(1, D, H, W)`` float32 in {0, 1}."""
        a, where = self._raw(int(self.indices[i]))
        a = a.reshape(self.grid_shape) if a.size == np.prod(self.grid_shape) else a
        if a.shape != self.grid_shape:
            raise DataSourceError(
                f"voxels: {where} has shape {a.shape}, expected {self.grid_shape} like the rest"
            )
        if self.threshold is not None:
            a = a >= self.threshold
        elif a.dtype != np.bool_:
            bad = (a != 0) & (a != 1)
            if bad.any():
                raise DataSourceError(
                    f"voxels: {where} holds values other than 0 and 1 (e.g. {a[bad].flat[0]}); "
                    "pass threshold=... to binarise a continuous field"
                )
        return torch.from_numpy(np.array(a, dtype=np.float32, order="C")).unsqueeze(0)

    def __getitem__(self, i: int) -> PointSet:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"item {i} out of range for a data set of {n} items")
        i = int(i) % n
        ps = PointSet.from_volume(self.volume(i).unsqueeze(0))
        if self.num_points is not None:
            idx = torch.randperm(ps.num_points)[: self.num_points]
            ps = ps.gather(idx)
        ps.meta["index"] = torch.tensor([i])
        return ps

    def arrays(self, indices) -> Tensor:
        """Volumes ``(B, 1, D, H, W)`` (for rendering)."""
        return torch.stack([self.volume(int(i)) for i in indices])

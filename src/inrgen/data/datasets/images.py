"""Image folders: any tree of PNG / JPEG files, resized and centre-cropped to one size (CelebA-HQ too).

Each image is scaled so that it covers the target ``(H, W)`` (``s = max(H / h, W / w)``, bicubic, which
PIL low-pass filters when it shrinks) and the central ``H x W`` window is kept: torchvision's
``Resize(min side) + CenterCrop`` for square targets. Values are ``uint8 / 255`` in [0, 1]; RGBA and LA
images are composited on white, palette images expanded, 16-bit images scaled by 1/65535.

Layout and splits (``split_by``)
    ``root`` is searched recursively for ``*.png, *.jpg, *.jpeg`` (any case).

    * ``"auto"`` (default): when ``root`` has official split folders, ``train/`` with ``test/`` and/or
      ``val/`` (ImageNette and ImageNet ship ``train/`` + ``val/``; ``test`` then reads ``val/`` and
      ``val`` reads ``test/`` when there is no ``val/``), those are the splits; otherwise the sorted file
      list is split by :func:`inrgen.data.datasets._common.split_indices` (80/10/10, seed 0; CelebA-HQ:
      the first 90% of the sorted names train, the last 10% test, unshuffled).
    * ``"celeba"``: CelebA's published partition: ``list_eval_partition.txt`` (``name k`` per line,
      ``k`` = 0 train, 1 val, 2 test) when it lies in ``root``, its parent or an ``Eval/`` folder beside
      them (or is given as ``split_file``); else by index as IPC does: of the 202,599 sorted names the
      first 162,770 train, the next 19,867 val, the last 19,962 test.
    * ``"ffhq"``: by index, the first 60,000 sorted names train and the last 10,000 test, or the lists
      given as ``split_file`` (IPC's ``ffhqtrain.txt`` / ``ffhqvalidation.txt``).
    * ``split_file`` (with any ``split_by``): a partition file (``name split`` per line, split as a
      name or 0/1/2) or a mapping ``{"train": list file, "test": list file, ...}`` (one name per line).
      Names match the image files by stem (``000001.jpg`` matches ``000001.png``).

    The index rules assume the whole data set; a folder with another number of images is cut in the
    same proportions, in name order (with a warning), so that train and test never mix. With
    ``labels=True`` the name of the first folder below the split root is the class (``ImageFolder``).

Training transform (``train_transform``)
    ``"resize_crop"`` (default, every split): resize to cover, centre crop (above). ``"random_crop_flip"``:
    the train split is a random ``H x W`` crop of the *native* image (resized up only when smaller)
    and a horizontal flip with probability 1/2, drawn from the global torch generator at each access
    (IPC / TransINR on ImageNette: ``RandomCrop(178) + RandomHorizontalFlip``); other splits keep the
    resize and centre crop (their ``Resize(178) + CenterCrop(178)``).

Items are ``PointSet.from_image`` of ``(1, C, H, W)``: coords ``(1, H*W, 2)``, values ``(1, H*W, C)``.

Example:
    >>> ds = ImageFolderDataset("photos/", size=64)           # doctest: +SKIP
    >>> ds[0].to_image().shape                                 # doctest: +SKIP
    torch.Size([1, 3, 64, 64])
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from inrgen.data.datasets._common import DataSourceError, GridDataset, describe_found, split_indices

__all__ = [
    "random_crop_flip",
    "ImageFolderDataset",
    "CelebAHQDataset",
    "load_image",
    "list_images",
    "published_split",
    "read_split_file",
    "IMAGE_EXTENSIONS",
    "INDEX_SPLITS",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

# Published splits by index: items per split, in name order (IPC / TransINR protocols)
INDEX_SPLITS: dict[str, dict[str, int]] = {
    "celeba": {"train": 162_770, "val": 19_867, "test": 19_962},  # list_eval_partition.txt's cut
    "ffhq": {"train": 60_000, "test": 10_000},  # first 60,000 train, last 10,000 test
}
CELEBA_PARTITION = "list_eval_partition.txt"
SPLIT_BY = ("auto", "celeba", "ffhq")
TRAIN_TRANSFORMS = ("resize_crop", "random_crop_flip")
_PARTITION_CODES = {"0": "train", "1": "val", "2": "test", "train": "train", "val": "val", "test": "test"}


def published_split(n: int, split: str, counts: Mapping[str, int], source: str = "images") -> range:
    """Positions (in name order) of ``split`` among ``n`` items cut by ``counts`` (train, val, test order).

    With ``n == sum(counts)`` the cut is exact; otherwise the same proportions (warned), at least one item
    per split when ``n`` allows. ``val`` of a data set without one is its test split.
    """
    names = [k for k in ("train", "val", "test") if k in counts]
    if split == "val" and "val" not in counts:
        split = "test"
    if split not in names:
        raise ValueError(f"unknown split {split!r}; choose {', '.join(names)} or all")
    total = sum(counts[k] for k in names)
    if n == total:
        sizes = [counts[k] for k in names]
    else:
        warnings.warn(
            f"{source}: {n} images, not the {total:,} of the whole data set; splitting them in the "
            f"published proportions ({', '.join(f'{k} {counts[k]:,}' for k in names)}) in name order",
            stacklevel=3,
        )
        sizes = [max(1, round(n * counts[k] / total)) if n >= len(names) else 0 for k in names[1:]]
        sizes = [n - sum(sizes), *sizes]
    start = sum(sizes[: names.index(split)])
    return range(start, start + sizes[names.index(split)])


def read_split_file(spec: str | os.PathLike | Mapping[str, str | os.PathLike]) -> dict[str, str]:
    """``{file stem: split}`` from a partition file (``name split`` per line) or ``{split: list file}``."""
    out: dict[str, str] = {}
    if isinstance(spec, Mapping):
        for split, path in spec.items():
            if split not in ("train", "val", "test"):
                raise ValueError(f"split_file keys must be train, val or test, got {split!r}")
            for line in _read_lines(Path(path)):
                out[Path(line.split()[0]).stem] = split
        return out
    path = Path(spec)
    for k, line in enumerate(_read_lines(path)):
        parts = line.split()
        if len(parts) != 2 or parts[1] not in _PARTITION_CODES:
            raise DataSourceError(
                f"{path}: line {k + 1} should be '<image name> <split>' with split 0/1/2 or "
                f"train/val/test (list_eval_partition.txt), found {line!r:.80}"
            )
        out[Path(parts[0]).stem] = _PARTITION_CODES[parts[1]]
    return out


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataSourceError(
            f"missing split file: expected a text file at {path}, but {describe_found(path)}"
        )
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def _find_celeba_partition(root: Path) -> Path | None:
    for folder in (root, root.parent, root / "Eval", root.parent / "Eval", root.parent.parent / "Eval"):
        if (folder / CELEBA_PARTITION).is_file():
            return folder / CELEBA_PARTITION
    return None


def _size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"image size must be an int or (height, width) >= 1, got {size!r}")
    return size  # type: ignore[return-value]


def _to_array(img: Image.Image, mode: str) -> np.ndarray:
    """PIL image to ``(H, W, C)`` float32 in [0, 1] in ``mode`` ("RGB", "L" or "RGBA")."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(img, dtype=np.float64)
        wide = wide / (65535.0 if img.mode != "I" or wide.max() > 255 else 255.0)
        gray = np.clip(wide, 0, 1).astype(np.float32)[..., None]
        return np.repeat(gray, 3, -1) if mode == "RGB" else gray
    if mode == "RGBA":
        return np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        rgb = rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])
        if mode == "L":  # ITU-R 601-2 luma, as PIL's convert("L")
            return (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
        return rgb
    a = np.asarray(img.convert(mode), dtype=np.float32) / 255.0
    return a[..., None] if a.ndim == 2 else a


def load_image(path: str | os.PathLike, mode: str = "RGB", size: int | Sequence[int] | None = None) -> Tensor:
    """Read one image as ``(C, H, W)`` float32 in [0, 1], resized to cover ``size`` and centre-cropped.

    ``mode`` is "RGB" (3 channels), "L" (1) or "RGBA" (4, no compositing). Any failure raises a
    :class:`DataSourceError` naming the file.
    """
    if mode not in ("RGB", "L", "RGBA"):
        raise ValueError(f"mode must be 'RGB', 'L' or 'RGBA', got {mode!r}")
    path = Path(path)
    target = _size(size)
    if not path.is_file():
        raise DataSourceError(
            f"missing image: expected a PNG/JPEG file at {path}, but {describe_found(path)}"
        )
    try:
        with Image.open(path) as opened:
            opened.load()
            img: Image.Image = opened
            if target is not None and (img.height, img.width) != target:
                h, w = target
                s = max(h / img.height, w / img.width)
                nh, nw = max(h, round(img.height * s)), max(w, round(img.width * s))
                if img.mode not in ("RGB", "RGBA", "L", "LA", "I", "F"):
                    img = img.convert("RGBA" if "transparency" in img.info or "A" in img.mode else "RGB")
                img = img.resize((nw, nh), Image.Resampling.BICUBIC)
                top, left = (nh - h) // 2, (nw - w) // 2
                img = img.crop((left, top, left + w, top + h))
            arr = _to_array(img, mode)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataSourceError(
            f"corrupt image {path}: expected a readable PNG/JPEG, but PIL failed with "
            f"{type(err).__name__}: {err}"
        ) from None
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def random_crop_flip(img: Tensor, size: tuple[int, int]) -> Tensor:
    """A uniformly placed ``size`` crop of ``img`` (C, H, W), flipped left-right with probability 1/2
    (global torch generator). An image smaller than ``size`` is first resized up to cover it (bicubic)."""
    h, w = size
    if img.shape[-2] < h or img.shape[-1] < w:
        s = max(h / img.shape[-2], w / img.shape[-1])
        new = (max(h, round(img.shape[-2] * s)), max(w, round(img.shape[-1] * s)))
        img = torch.nn.functional.interpolate(img[None], size=new, mode="bicubic", align_corners=False)[0]
        img = img.clamp(0, 1)
    top = int(torch.randint(img.shape[-2] - h + 1, ()))
    left = int(torch.randint(img.shape[-1] - w + 1, ()))
    out = img[:, top : top + h, left : left + w]
    if bool(torch.rand(()) < 0.5):
        out = out.flip(-1)
    return out.contiguous()


def list_images(root: Path) -> list[Path]:
    """Every PNG / JPEG below ``root`` (recursive, hidden files skipped), sorted by relative path."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in filenames:
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS):
                out.append(Path(dirpath) / f)
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def check_image_header(path: Path) -> tuple[int, int]:
    """Open the header of ``path`` (no decode): ``(height, width)``, or a clear error."""
    try:
        with Image.open(path) as img:
            if img.format not in ("PNG", "JPEG", "MPO"):
                raise DataSourceError(f"{path}: expected a PNG or JPEG image, found {img.format}")
            return img.height, img.width
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataSourceError(
            f"corrupt image {path}: expected a readable PNG/JPEG, but PIL failed with "
            f"{type(err).__name__}: {err}"
        ) from None


class ImageFolderDataset(GridDataset):
    """Images below ``root`` as PointSets (see the module docstring).

    Args:
        root: the folder (searched recursively).
        split: "train" | "val" | "test" | "all".
        size: target ``(H, W)`` or an int for squares; None keeps the native size (all images must then
            share it).
        mode: "RGB" (3 channels) or "L" (grayscale, 1 channel).
        labels: the first folder below the split root is the class (ImageFolder layout).
        verify: "header" (default: open every header of the split before anything else), "full"
            (decode every image first), "none".
        fractions, seed, shuffle: how a folder without split sub-folders is split.
        split_by: "auto" | "celeba" | "ffhq" (see the module docstring); split_file: a partition file
            or ``{split: list file}``.
        train_transform: "resize_crop" | "random_crop_flip" (the train split's transform).
    """

    modality = "image"
    source_name = "images"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        size: int | Sequence[int] | None = 64,
        mode: str = "RGB",
        labels: bool = False,
        verify: str = "header",
        fractions: dict[str, float] | None = None,
        seed: int = 0,
        shuffle: bool = True,
        split_by: str = "auto",
        split_file: str | os.PathLike | Mapping[str, str] | None = None,
        train_transform: str = "resize_crop",
    ) -> None:
        if split_by not in SPLIT_BY:
            raise ValueError(f"split_by must be one of {', '.join(SPLIT_BY)}, got {split_by!r}")
        if train_transform not in TRAIN_TRANSFORMS:
            raise ValueError(
                f"train_transform must be one of {', '.join(TRAIN_TRANSFORMS)}, got {train_transform!r}"
            )
        if mode not in ("RGB", "L"):
            raise ValueError(f"{self.source_name}: mode must be 'RGB' or 'L', got {mode!r}")
        if verify not in ("header", "full", "none"):
            raise ValueError(f"verify must be 'header', 'full' or 'none', got {verify!r}")
        self.root = check_files(root, self.source_name)
        self.mode, self.size = mode, _size(size)
        self.channels = 3 if mode == "RGB" else 1
        split_root = self.root
        subdirs = {p.name for p in self.root.iterdir() if p.is_dir()}
        if split not in ("train", "val", "test", "all"):
            raise ValueError(f"unknown split {split!r}; choose train, val, test or all")
        if split_by == "celeba" and split_file is None:
            split_file = _find_celeba_partition(self.root)
        if split_file is not None:
            files = self._from_split_file(list_images(self.root), split, split_file)
        elif split_by in INDEX_SPLITS:
            files = list_images(self.root)
            if split != "all":
                files = [
                    files[i] for i in published_split(len(files), split, INDEX_SPLITS[split_by], split_by)
                ]
        elif "train" in subdirs and subdirs & {"test", "val"} and split != "all":
            if split == "train":
                name = "train"
            elif split == "test":
                name = "test" if "test" in subdirs else "val"
            else:
                name = "val" if "val" in subdirs else "test"
            split_root = self.root / name
            files = list_images(split_root)
            if not files:
                raise DataSourceError(
                    f"{self.source_name}: no PNG/JPEG images in the {name!r} split folder: "
                    f"{describe_found(split_root)}"
                )
        else:
            files = list_images(self.root)
            idx = split_indices(len(files), split, fractions, seed, shuffle)
            files = [files[i] for i in idx]
        if not files:
            raise DataSourceError(f"{self.source_name}: split {split!r} of {self.root} is empty")
        self.files = files
        self.random_crops = train_transform == "random_crop_flip" and split == "train"
        if self.random_crops and size is None:
            raise ValueError(
                f"{self.source_name}: train_transform='random_crop_flip' needs size=... (the crop)"
            )
        self.classes: list[str] = []
        self._labels: list[int] | None = None
        if labels:
            tops = [f.relative_to(split_root).parts for f in files]
            if any(len(t) < 2 for t in tops):
                loose = next(f for f, t in zip(files, tops) if len(t) < 2)
                raise DataSourceError(
                    f"{self.source_name}: labels=True needs every image inside a class folder "
                    f"(root/<class>/image.png), but {loose} lies directly in {split_root}"
                )
            self.classes = sorted({t[0] for t in tops})
            cls_idx = {c: k for k, c in enumerate(self.classes)}
            self._labels = [cls_idx[t[0]] for t in tops]
        if verify == "full":
            shapes = {tuple(load_image(f, mode, self.size).shape) for f in files}
        elif verify == "header":
            shapes = {check_image_header(f) for f in files}
        else:
            shapes = set()
        if self.size is None:
            if verify == "none":
                self.size = check_image_header(files[0])
            else:
                hw = {s[-2:] for s in shapes}
                if len(hw) > 1:
                    raise DataSourceError(
                        f"{self.source_name}: images of {len(hw)} different sizes (e.g. {sorted(hw)[:3]}) "
                        f"below {self.root}; pass size=... to resize and centre-crop them to one size"
                    )
                self.size = next(iter(hw))  # type: ignore[assignment]
        self.grid_shape = tuple(self.size)  # type: ignore[arg-type]

    def _from_split_file(self, files: list[Path], split: str, spec) -> list[Path]:
        if split == "all":
            return files
        assign = read_split_file(spec)
        want = split
        if split == "val" and "val" not in assign.values():
            want = "test"
        out = [f for f in files if assign.get(f.stem) == want]
        if not out:
            raise DataSourceError(
                f"{self.source_name}: the split file {spec} assigns none of the {len(files)} images below "
                f"{self.root} to {want!r} (it lists {len(assign)} names, e.g. {next(iter(assign), None)!r})"
            )
        return out

    def __len__(self) -> int:
        return len(self.files)

    def array(self, i: int) -> Tensor:
        if self.random_crops:
            return random_crop_flip(load_image(self.files[i], self.mode), self.size)  # type: ignore[arg-type]
        return load_image(self.files[i], self.mode, self.size)

    def label(self, i: int) -> int | None:
        return None if self._labels is None else self._labels[i]


class CelebAHQDataset(ImageFolderDataset):
    """CelebA-HQ from an image folder, with VaMoH's defaults: RGB 64x64, first 90% of the sorted file
    names train, last 10% test (no official split ships with CelebA-HQ)."""

    source_name = "celebahq"

    def __init__(self, root: str | os.PathLike, split: str = "train", size: int | Sequence[int] = 64, **kw):
        kw.setdefault("fractions", {"train": 0.9, "test": 0.1})
        kw.setdefault("shuffle", False)
        super().__init__(root, split, size=size, **kw)


def check_files(root: str | os.PathLike | None, source: str = "images") -> Path:
    """The image folder, or a clear error when it is missing or holds no PNG/JPEG files."""
    if root is None:
        raise DataSourceError(
            f"data source {source!r} needs root=... (--root): a folder of PNG/JPEG images "
            "(searched recursively)"
        )
    p = Path(root).expanduser()
    if not p.is_dir():
        raise DataSourceError(
            f"{source}: expected a folder of PNG/JPEG images at {p}, but {describe_found(p)}"
        )
    for _dirpath, dirnames, filenames in os.walk(p):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".") for f in filenames):
            return p
    raise DataSourceError(
        f"{source}: expected PNG/JPEG images (*.png, *.jpg, *.jpeg) below {p}, found none: "
        f"{describe_found(p)}"
    )

"""Novel-view data in the learnit / ShapeNet layout used by TransINR and IPC.

Layout (``root``, e.g. ``data/learnit_shapenet``)::

    <class>_splits.json                 {"train": [object ids], "test": [...], "val": [...] (optional)}
    <class>s/<object id>/transforms.json {"camera_angle_x": fov_x (radians),
                                          "frames": [{"file_path": "r_0",
                                                      "transform_matrix": 4x4 camera-to-world}, ...]}
    <class>s/<object id>/r_0.png         RGBA renders (128x128 in learnit)

(``category="chairs"`` reads ``chair_splits.json`` or ``chairs_splits.json`` and the ``chairs/`` folder.)
Each frame's image is ``basename(file_path)`` plus ``.png`` in the object folder. Cameras follow the
OpenGL/Blender convention of ``inrgen.coords`` (look along -z); focal ``0.5 W / tan(0.5 fov_x)``.
Images are composited on white, ``rgb * alpha + (1 - alpha)``, then optionally resized
(``image_size``; the field of view is unchanged, so the intrinsics follow exactly).

Items are ``PointSetPair(context, target)``: ``n_support`` (k = 1..5 in the papers) support views and
``n_query`` query views of one object, each a ``PointSet.from_views`` whose coordinates are the 6-D
Plücker rays of every pixel (``(1, V * H * W, 6)``), values RGB ``(1, V * H * W, 3)``,
``grid_shape = (V, H, W)``. Views are drawn without replacement from ``views_range``: fresh random draws
on every access for "train" (as IPC), draws seeded by ``(seed, index)`` otherwise, so evaluation is
reproducible. ``repeat`` repeats every object that many times per epoch.

IPC's protocol, per split from one set of options: ``train_views=(0, 25)`` restricts the train split to
the first 25 views (all views stay available to the test split), and ``eval_draws=100`` makes the
val / test split 100 items per object, each a different seeded (support, query) draw, so that an
evaluation over every item scores every test object over 100 draws.

Example:
    >>> ds = ViewsDataset("learnit_shapenet", category="chairs", split="test", n_support=2)  # doctest: +SKIP
    >>> pair = ds[0]                                                                      # doctest: +SKIP
    >>> pair.context.grid_shape, pair.target.grid_shape                                   # doctest: +SKIP
    ((2, 128, 128), (1, 128, 128))
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from inrgen import coords as C
from inrgen.data.datasets._common import DataSourceError, describe_found
from inrgen.data.points import PointSet, PointSetPair

__all__ = ["ViewsDataset", "read_transforms", "load_view", "check_files", "find_category", "NEAR_FAR"]

NEAR_FAR = (2.0, 6.0)  # the learnit / IPC ray bounds, kept in meta for volume renderers


def find_category(root: Path, category: str | None) -> tuple[Path, Path]:
    """``(splits json, objects folder)`` of ``category`` (or of the only ``*_splits.json`` in ``root``)."""
    splits = sorted(root.glob("*_splits.json"))
    if category is None:
        if len(splits) != 1:
            names = [s.name for s in splits]
            raise DataSourceError(
                f"views: expected one <class>_splits.json in {root} (or pass category=...), "
                f"found {names or 'none'}; "
                f"{describe_found(root)}"
            )
        stem = splits[0].name[: -len("_splits.json")]
        cands = [stem + "s", stem]
        split_file = splits[0]
    else:
        stem = category[:-1] if category.endswith("s") else category
        for name in (f"{stem}_splits.json", f"{category}_splits.json"):
            if (root / name).is_file():
                split_file = root / name
                break
        else:
            raise DataSourceError(
                f"views: expected {stem}_splits.json for category {category!r} in {root}; "
                f"{describe_found(root)}"
            )
        cands = [category, stem + "s", stem]
    for c in cands:
        if (root / c).is_dir():
            return split_file, root / c
    raise DataSourceError(f"views: expected an objects folder {cands[0]}/ in {root}; {describe_found(root)}")


def _image_path(obj_dir: Path, file_path: str) -> Path:
    base = os.path.basename(file_path)
    p = obj_dir / (base if base.lower().endswith(".png") else base + ".png")
    if p.is_file():
        return p
    q = obj_dir / (file_path if file_path.lower().endswith(".png") else file_path + ".png")
    return q if q.is_file() else p


def read_transforms(obj_dir: Path) -> tuple[float, list[Path], np.ndarray]:
    """``(camera_angle_x, image paths, c2w (V, 4, 4))`` of one object, checked; clear errors otherwise."""
    path = obj_dir / "transforms.json"
    if not path.is_file():
        raise DataSourceError(
            f"views: expected {path} (camera_angle_x and frames), but {describe_found(obj_dir)}"
        )
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataSourceError(f"views: {path} is not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise DataSourceError(f"views: {path} should hold a JSON object, found {type(meta).__name__}")
    fov = meta.get("camera_angle_x")
    if not isinstance(fov, (int, float)) or not (0 < fov < math.pi):
        raise DataSourceError(f"views: {path}: expected camera_angle_x in (0, pi) radians, found {fov!r}")
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise DataSourceError(
            f"views: {path} has no frames: expected a non-empty list 'frames' of "
            f"{{file_path, transform_matrix}}, found {frames!r:.80}"
        )
    files, poses = [], []
    for k, fr in enumerate(frames):
        if not isinstance(fr, dict) or "file_path" not in fr or "transform_matrix" not in fr:
            raise DataSourceError(
                f"views: {path}: frame {k} needs file_path and transform_matrix, found {fr!r:.120}"
            )
        try:
            m = np.asarray(fr["transform_matrix"], dtype=np.float64)
        except (TypeError, ValueError):
            m = np.zeros(0)
        if m.shape != (4, 4) or not np.isfinite(m).all():
            raise DataSourceError(
                f"views: {path}: frame {k} transform_matrix should be a finite 4x4 camera-to-world matrix, "
                f"found shape {m.shape}"
            )
        files.append(_image_path(obj_dir, str(fr["file_path"])))
        poses.append(m)
    return float(fov), files, np.stack(poses)


def load_view(path: Path, size: int | None = None) -> Tensor:
    """An RGBA render composited on white: ``(3, H, W)`` float32 in [0, 1], optionally resized."""
    if not path.is_file():
        raise DataSourceError(
            f"views: missing image {path} (named by transforms.json); {describe_found(path.parent)}"
        )
    try:
        with Image.open(path) as img:
            rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataSourceError(f"views: corrupt image {path}: {type(err).__name__}: {err}") from None
    rgb = rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])
    t = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    if size is not None and t.shape[-2:] != (size, size):
        t = F.interpolate(t[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        t = t[0].clamp(0.0, 1.0)
    return t


def check_files(root: str | os.PathLike | None, category: str | None = None) -> tuple[Path, Path, dict]:
    """``(splits json, objects folder, splits dict)``, or a clear error."""
    if root is None:
        raise DataSourceError(
            "views: pass root=... (--root): a learnit ShapeNet folder with <class>_splits.json and "
            "<class>s/<object>/transforms.json"
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataSourceError(
            f"views: expected a learnit ShapeNet folder at {root}, but {describe_found(root)}"
        )
    split_file, obj_root = find_category(root, category)
    try:
        splits = json.loads(split_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataSourceError(f"views: {split_file} is not valid JSON ({err})") from None
    if not isinstance(splits, dict) or not all(isinstance(splits.get(k), list) for k in ("train", "test")):
        raise DataSourceError(
            f"views: {split_file} should map 'train' and 'test' to lists of object ids, found "
            f"{sorted(splits) if isinstance(splits, dict) else type(splits).__name__}"
        )
    return split_file, obj_root, splits


class ViewsDataset(Dataset):
    """Support / query views of ShapeNet-style objects (see the module docstring).

    Args:
        root: the learnit folder; category: "chairs", "cars", "lamps"... (None: the only one present).
        split: "train" | "val" | "test" ("val" = "test" when the splits file has none).
        n_support, n_query: views per item (context and target).
        views_range: ``(start, stop)`` of the frames to draw from (None: all; IPC trains on (0, 25)).
        image_size: resize the square renders (None: native).
        repeat: items per object per epoch; deterministic: seeded draws (default: split != "train").
        train_views: ``views_range`` of the train split only (IPC: (0, 25)); other splits use
            ``views_range``.
        eval_draws: items (seeded support / query draws) per object on val / test (IPC: 100), in place of
            ``repeat`` there.
        verify: check every object's transforms.json and images exist before anything else (default).
    """

    modality = "views"
    channels = 3

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        category: str | None = None,
        n_support: int = 1,
        n_query: int = 1,
        views_range: tuple[int, int] | None = None,
        image_size: int | None = None,
        repeat: int = 1,
        deterministic: bool | None = None,
        seed: int = 0,
        verify: bool = True,
        train_views: tuple[int, int] | None = None,
        eval_draws: int | None = None,
    ) -> None:
        split_file, self.obj_root, splits = check_files(root, category)
        if split == "train" and train_views is not None:
            views_range = train_views
        if split != "train" and eval_draws is not None:
            repeat = eval_draws
        key = split if split in splits else ("test" if split == "val" else None)
        if split == "all":
            ids = [o for k in ("train", "val", "test") for o in splits.get(k, [])]
        elif key is None:
            raise ValueError(f"unknown split {split!r}; {split_file} has {sorted(splits)}")
        else:
            ids = list(splits[key])
        if not ids:
            raise DataSourceError(f"views: split {split!r} of {split_file} lists no objects")
        if n_support < 1 or n_query < 1:
            raise ValueError(f"views: n_support and n_query must be >= 1, got {n_support} and {n_query}")
        if repeat < 1:
            raise ValueError(f"views: repeat must be >= 1, got {repeat}")
        self.ids = [str(o) for o in ids]
        self.n_support, self.n_query = int(n_support), int(n_query)
        self.views_range = tuple(views_range) if views_range is not None else None
        self.image_size = image_size
        self.repeat = repeat
        self.deterministic = split != "train" if deterministic is None else deterministic
        self.seed = seed
        self._meta: dict[int, Any] = {}
        if verify:
            for j in range(len(self.ids)):
                _, files, _ = self._object(j)
                missing = [f for f in files if not f.is_file()]
                if missing:
                    raise DataSourceError(
                        f"views: missing image {missing[0]} named in "
                        f"{self.obj_root / self.ids[j] / 'transforms.json'}"
                        f" ({len(missing)} of {len(files)} frames missing)"
                    )
        fov, files, _ = self._object(0)
        self.view_shape = tuple(load_view(files[0], image_size).shape[-2:])
        self.grid_shape = self.view_shape

    def _object(self, j: int):
        if j not in self._meta:
            obj_dir = self.obj_root / self.ids[j]
            if not obj_dir.is_dir():
                raise DataSourceError(
                    f"views: object {self.ids[j]!r} is listed in the splits but {obj_dir} is missing"
                )
            fov, files, poses = read_transforms(obj_dir)
            lo, hi = self.views_range if self.views_range is not None else (0, len(files))
            avail = list(range(max(0, lo), min(hi, len(files))))
            if len(avail) < self.n_support + self.n_query:
                raise DataSourceError(
                    f"views: {obj_dir} has {len(avail)} frames in range {self.views_range}, fewer than "
                    f"n_support + n_query = {self.n_support + self.n_query}"
                )
            self._meta[j] = (fov, files, poses, avail)
        return self._meta[j][:3]

    def __len__(self) -> int:
        return len(self.ids) * self.repeat

    def views(self, j: int, which: list[int]) -> tuple[Tensor, Tensor, Tensor]:
        """Images ``(V, 3, H, W)``, poses ``(V, 4, 4)`` float64 and ``K`` ``(3, 3)`` of object ``j``."""
        fov, files, poses = self._object(j)
        imgs = torch.stack([load_view(files[v], self.image_size) for v in which])
        h, w = imgs.shape[-2:]
        K = C.intrinsics_from_fov(fov, w, h)
        return imgs, torch.from_numpy(poses[which]), K

    def __getitem__(self, i: int) -> PointSetPair:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"item {i} out of range for a data set of {n} items")
        i = int(i) % n
        j = i % len(self.ids)
        self._object(j)
        avail = self._meta[j][3]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i) if self.deterministic else None
        perm = torch.randperm(len(avail), generator=g)[: self.n_support + self.n_query].tolist()
        chosen = [avail[p] for p in perm]
        imgs, poses, K = self.views(j, chosen)
        s = self.n_support
        ctx = PointSet.from_views(imgs[:s].unsqueeze(0), poses[:s].unsqueeze(0), K)
        tgt = PointSet.from_views(imgs[s:].unsqueeze(0), poses[s:].unsqueeze(0), K)
        for ps in (ctx, tgt):
            ps.meta["index"] = torch.tensor([j])
            ps.meta["near_far"] = NEAR_FAR
        return PointSetPair(ctx, tgt)

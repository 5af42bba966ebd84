"""The web demo's functions: a checkpoint folder and a user's image in, images out. No web framework here.

Every function is pure given its arguments (the loaded model is cached per folder), returns ``uint8``
arrays ``(H, W, 3)`` at the model's own resolution, and raises ``ValueError`` with what to do for an
input it cannot use; ``inrgen.app.web`` only lays them out. They are the library's tasks
(``inrgen.tasks``) on one image:

| function              | what it shows                                                              |
|-----------------------|----------------------------------------------------------------------------|
| ``prepare_image``     | any upload or drawing as the model's input (channels, size: cover + crop)  |
| ``keep_mask``         | the observed points: none hidden, the VaMoH box, a half, an out-paint box, |
|                       | a random fraction, or the region painted on the mask canvas                |
| ``complete_image``    | observed / completion / composite, the per-point uncertainty (std) and the |
|                       | PSNR over the hidden pixels beside the mean-fill baseline                  |
| ``superresolve_image``| the decode on a grid ``factor`` times finer, beside nearest upsampling     |
| ``segment_image``     | segmentation (argmax of the posterior mixture weights) and entropy maps    |
| ``novel_view_images`` | light fields: the support views, a view from a camera orbited around the   |
|                       | object, and a held-out recorded view beside its rendering                  |

Example:
    >>> from inrgen.app import functions as F                      # doctest: +SKIP
    >>> demo = F.load_demo("runs/vamoh-mnist-small")                # doctest: +SKIP
    >>> points = F.prepare_image(demo, F.example_image(demo, 0))    # doctest: +SKIP
    >>> out = F.complete_image(demo, points, F.keep_mask("half", points.grid_shape))  # doctest: +SKIP
    >>> out.composite.shape, out.psnr_hidden                        # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as Fn
from PIL import Image
from torch import Tensor

from inrgen import coords as C
from inrgen import tasks, viz
from inrgen.data.masks import parse_mask
from inrgen.data.points import PointSet
from inrgen.metrics.psnr import psnr
from inrgen.models.base import INRModel

__all__ = [
    "DemoModel",
    "load_demo",
    "example_image",
    "prepare_image",
    "painted_region",
    "keep_mask",
    "MASK_KINDS",
    "Completion",
    "complete_image",
    "SuperResolution",
    "superresolve_image",
    "Segmentation",
    "segment_image",
    "ViewSet",
    "load_views",
    "orbit_pose",
    "NovelViews",
    "novel_view_images",
    "to_uint8",
    "to_display",
]

MASK_KINDS = ("drawn", "box", "half", "outpaint", "random", "none")
HIDDEN_COLOUR = (0.9, 0.25, 0.55)  # hidden pixels in the "observed" picture
MAX_SIDE = 128  # a checkpoint without a training grid decodes uploads at most this large (CPU time)
MAX_SUPERRES_SIDE = 1024  # super-resolution refuses larger outputs (memory, waiting time)


# ---------------------------------------------------------------------------------------- loading


@dataclass
class DemoModel:
    """A loaded checkpoint and what it was trained on."""

    model: INRModel
    folder: Path
    preset: str
    model_name: str
    modality: str  # "image" | "views" | "voxel" | "sphere" | ...
    channels: int
    coord_dim: int
    grid_shape: tuple[int, ...] | None
    data: Any  # the checkpoint's DataConfig
    step: int | None = None

    @property
    def is_image(self) -> bool:
        return self.coord_dim == 2 and self.modality == "image"

    @property
    def is_views(self) -> bool:
        return self.coord_dim == 6 or self.modality == "views"

    def describe(self) -> str:
        """One Markdown paragraph: what this checkpoint is and what the demo can do with it."""
        grid = "x".join(map(str, self.grid_shape)) if self.grid_shape else "any size"
        ch = {1: "grey", 3: "RGB"}.get(self.channels, f"{self.channels}-channel")
        steps = f", {self.step} training steps" if self.step is not None else ""
        head = (f"**{self.preset}** ({self.model_name}{steps}) in `{self.folder}`: trained on "
                f"{self.data.source} ({self.modality}, {ch}, {grid}).")  # fmt: skip
        if self.is_image:
            can = "Use the *Image* tab: completion, super-resolution, segmentation and uncertainty."
        elif self.is_views:
            can = "Use the *Novel views* tab: render an object from new cameras."
        else:
            can = f"The demo shows images and light fields; for {self.modality} use the `inrgen` commands."
        return f"{head} {can}"


_CACHE: dict[tuple[str, int], DemoModel] = {}


def load_demo(path: str | os.PathLike) -> DemoModel:
    """The checkpoint folder (or a run folder holding ``checkpoint/``) as a :class:`DemoModel` (cached
    until its weights change)."""
    from inrgen.checkpoint import load_config, load_model, resolve_folder
    from inrgen.training.inputs import ModelSpec

    if not str(path).strip():
        raise ValueError(
            "give a checkpoint folder (config.json + model.safetensors), e.g. runs/vamoh/checkpoint"
        )
    folder = resolve_folder(Path(str(path).strip()).expanduser())
    weights = folder / "model.safetensors"
    key = (str(folder.resolve()), weights.stat().st_mtime_ns if weights.is_file() else 0)
    if key in _CACHE:
        return _CACHE[key]
    cfg = load_config(folder)
    model = load_model(folder).eval()
    spec = ModelSpec.from_config(cfg)
    demo = DemoModel(model=model, folder=folder, preset=spec.preset, model_name=spec.model,
                     modality=spec.modality, channels=spec.channels, coord_dim=spec.coord_dim,
                     grid_shape=spec.grid_shape, data=spec.data,
                     step=int(cfg["step"]) if isinstance(cfg.get("step"), int) else None)  # fmt: skip
    _CACHE[key] = demo
    return demo


def _test_split(demo: DemoModel):
    from inrgen.data.datasets import build_dataset

    d = demo.data
    try:
        return build_dataset(d.source, root=d.root, split="test", **d.options)
    except Exception as err:  # noqa: BLE001 - any data problem: say it and what to do instead
        raise ValueError(
            f"the checkpoint's data ({d.source}, root {d.root}) cannot be read here: {err}; "
            "upload your own input instead"
        ) from None


def example_image(demo: DemoModel, index: int = 0) -> np.ndarray:
    """Item ``index`` of the checkpoint's test split as a ``uint8`` image ``(H, W, 3)``."""
    _require_image(demo)
    ds = _test_split(demo)
    ps = ds[int(index) % len(ds)]
    return to_uint8(ps.to_image()[0])


# ---------------------------------------------------------------------------------------- images


def _require_image(demo: DemoModel) -> None:
    if not demo.is_image:
        raise ValueError(
            f"{demo.preset} was trained on {demo.modality} data, not on images: "
            + ("use the Novel views tab" if demo.is_views else f"use the inrgen commands for {demo.modality}")
        )


def _as_pil(image: Any) -> Image.Image:
    if isinstance(image, dict):  # an image editor's value: background, layers, composite
        image = image.get("composite") if image.get("composite") is not None else image.get("background")
    if image is None:
        raise ValueError("no image: upload one, draw one, or load an example from the checkpoint's data")
    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as img:
            img.load()
            return img.copy()
    if isinstance(image, Image.Image):
        return image
    a = np.asarray(image)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)) or a.size == 0:
        raise ValueError(f"expected an image (H, W), (H, W, 3) or (H, W, 4), got an array of shape {a.shape}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        if lo < 0 or hi > 1:
            raise ValueError(f"a float image must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
        a = np.round(np.nan_to_num(a) * 255).astype(np.uint8)
    return Image.fromarray(a)


def _target_shape(demo: DemoModel, size: tuple[int, int]) -> tuple[int, int]:
    if demo.grid_shape is not None:
        return (int(demo.grid_shape[0]), int(demo.grid_shape[1]))
    w, h = size
    s = min(1.0, MAX_SIDE / max(h, w))
    return (max(1, round(h * s)), max(1, round(w * s)))


def prepare_image(demo: DemoModel, image: Any) -> PointSet:
    """An upload or drawing as the model's input ``PointSet`` (batch 1).

    ``image`` is a ``uint8`` or [0, 1] float array, a PIL image, a file path, or an image editor's value
    (its composite). It is read exactly as ``inrgen reconstruct --input`` reads a file: resized to cover
    the training grid (bicubic) and centre-cropped to it, then converted to the model's channels (grey
    or RGB), transparent pixels put on white. A checkpoint without a training grid keeps the image's
    own size (at most ``MAX_SIDE`` pixels a side).
    """
    from inrgen.data.datasets.images import _to_array  # the file reader's conversion, shared

    _require_image(demo)
    if demo.channels not in (1, 3):
        raise ValueError(f"{demo.preset} reads {demo.channels}-channel values; the demo handles grey or RGB")
    img = _as_pil(image)
    h, w = _target_shape(demo, img.size)
    if (img.height, img.width) != (h, w):
        s = max(h / img.height, w / img.width)
        nh, nw = max(h, round(img.height * s)), max(w, round(img.width * s))
        if img.mode not in ("RGB", "RGBA", "L", "LA", "I", "F"):
            img = img.convert("RGBA" if "transparency" in img.info or "A" in img.mode else "RGB")
        img = img.resize((nw, nh), Image.Resampling.BICUBIC)
        top, left = (nh - h) // 2, (nw - w) // 2
        img = img.crop((left, top, left + w, top + h))
    a = _to_array(img, "L" if demo.channels == 1 else "RGB")  # (H, W, C) float32 in [0, 1]
    return PointSet.from_image(torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))))


def painted_region(editor_value: Any) -> np.ndarray | None:
    """Bool ``(H', W')``: the pixels painted on a mask canvas (any layer with alpha > 0), or None when
    nothing is painted. Accepts an image editor's value (``layers``) or a bool / alpha array."""
    if editor_value is None:
        return None
    if isinstance(editor_value, dict):
        layers = [np.asarray(x) for x in (editor_value.get("layers") or []) if x is not None]
        if not layers:
            return None
        h, w = int(layers[0].shape[0]), int(layers[0].shape[1])
        painted: np.ndarray = np.zeros((h, w), dtype=bool)
        for x in layers:
            alpha = x[..., 3] if x.ndim == 3 and x.shape[2] == 4 else (x if x.ndim == 2 else x.max(-1))
            if alpha.shape != (h, w):
                alpha = np.asarray(Image.fromarray(alpha.astype(np.uint8)).resize((w, h)))
            painted |= alpha > 0
    else:
        painted = np.asarray(np.asarray(editor_value) > 0)
        if painted.ndim == 3:
            painted = np.asarray(painted.any(-1))
    return painted if bool(painted.any()) else None


def keep_mask(
    kind: str,
    grid_shape: tuple[int, ...],
    *,
    fraction: float = 0.25,
    side: str = "left",
    painted: Any = None,
    seed: int = 0,
) -> Tensor:
    """The observed points ``(N,)`` (True = kept) for one of :data:`MASK_KINDS`.

    ``"box"`` hides the VaMoH in-painting square, ``"half"`` keeps the ``side`` half, ``"outpaint"``
    keeps only the centred box of half the height and width, ``"random"`` keeps ``fraction`` of the
    points (``random:F`` of ``inrgen complete``), ``"none"`` hides nothing, and ``"drawn"`` hides the
    cells at least a quarter covered by the painted region (``painted``: see :func:`painted_region`,
    any size; it is area-averaged onto the grid).
    """
    shape = tuple(int(s) for s in grid_shape)
    n = math.prod(shape)
    if kind == "none":
        return torch.ones(n, dtype=torch.bool)
    if kind == "box":
        return parse_mask("box", shape)
    if kind == "half":
        return parse_mask(f"half:{side}", shape)
    if kind == "outpaint":
        h, w = shape[-2:]
        bh, bw = max(1, h // 2), max(1, w // 2)
        return parse_mask(f"outpaint:{(w - bw) // 2},{(h - bh) // 2},{bw},{bh}", shape)
    if kind == "random":
        return parse_mask(
            f"random:{float(fraction)}", shape, generator=torch.Generator().manual_seed(int(seed))
        )
    if kind == "drawn":
        region = painted_region(painted)
        if region is None:
            raise ValueError(
                "nothing is painted on the mask canvas: paint the region to hide, or pick a mask"
            )
        cover = Fn.interpolate(torch.from_numpy(region).float()[None, None], size=shape[-2:], mode="area")
        keep = (cover[0, 0] < 0.25).reshape(-1)
        if not bool(keep.any()):
            raise ValueError("the painted region hides every pixel: leave some of the image observed")
        return keep
    raise ValueError(f"unknown mask kind {kind!r}; expected one of {', '.join(MASK_KINDS)}")


def to_uint8(image: Tensor) -> np.ndarray:
    """An image ``(C, H, W)`` (C = 1 or 3) or ``(1, C, H, W)`` in [0, 1] as ``uint8 (H, W, 3)``; NaN grey."""
    t = image.detach().float().cpu()
    if t.dim() == 4:
        t = t[0]
    if t.dim() == 2:
        t = t[None]
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    t = torch.nan_to_num(t, nan=0.5).clamp(0, 1)
    return (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def to_display(image: np.ndarray, min_side: int = 256) -> np.ndarray:
    """``image`` enlarged by the smallest integer factor that makes its shorter side >= ``min_side``
    (nearest neighbour: every model pixel stays a sharp square)."""
    k = max(1, math.ceil(min_side / max(1, min(image.shape[:2]))))
    return image if k == 1 else np.repeat(np.repeat(image, k, axis=0), k, axis=1)


@dataclass
class Completion:
    """``complete_image``'s pictures (``uint8 (H, W, 3)``) and numbers."""

    observed: np.ndarray  # the input with hidden pixels in HIDDEN_COLOUR
    completion: np.ndarray  # the decode of every pixel from the observed ones
    composite: np.ndarray  # observed pixels kept, hidden ones from the completion
    uncertainty: np.ndarray | None  # predictive std per pixel (models with a variance, e.g. VaMoH)
    psnr_hidden: float | None  # dB over the hidden pixels (None when nothing is hidden)
    psnr_mean_fill: float | None  # the baseline: hidden pixels filled with the observed mean colour
    kept: int
    total: int

    def summary(self) -> str:
        txt = f"{self.kept} of {self.total} pixels observed."
        if self.psnr_hidden is not None:
            txt += (f" PSNR over the hidden pixels: {self.psnr_hidden:.2f} dB (mean-colour fill: "
                    f"{self.psnr_mean_fill:.2f} dB).")  # fmt: skip
        return txt


def complete_image(
    demo: DemoModel, points: PointSet, keep: Tensor, chunk_size: int | None = 16384
) -> Completion:
    """Completion of ``points`` (batch 1) from the points where ``keep (N,)`` is True."""
    _require_image(demo)
    keep = keep.reshape(-1).bool()
    if keep.numel() != points.num_points:
        raise ValueError(f"the mask has {keep.numel()} cells, the image {points.num_points} pixels")
    shape = points.grid_shape
    assert shape is not None
    pred = tasks.complete(demo.model, points, keep, chunk_size)
    truth = points.values[:1]
    full = tasks.as_image(pred, shape)[0]
    hide = torch.tensor(HIDDEN_COLOUR, dtype=truth.dtype).view(1, 1, 3)
    observed_rgb = truth.expand(-1, -1, 3) if truth.shape[-1] == 1 else truth
    observed = torch.where(keep[None, :, None], observed_rgb, hide)
    composite = torch.where(keep[None, :, None], truth, pred.mean.clamp(0, 1))
    unc = None
    var = tasks.predictive_variance(pred)
    if var is not None:
        unc = to_uint8(viz.uncertainty_map(var, shape)[0])
    hidden = ~keep
    p_h = p_m = None
    if bool(hidden.any()):
        p_h = float(psnr(pred.mean[:, hidden], truth[:, hidden], clamp=True)[0])
        fill = truth[:, keep].mean(1, keepdim=True).expand(-1, int(hidden.sum()), -1)
        p_m = float(psnr(fill, truth[:, hidden])[0])
    return Completion(
        observed=to_uint8(tasks.as_grid(observed, shape)[0]),
        completion=to_uint8(full),
        composite=to_uint8(tasks.as_grid(composite, shape)[0]),
        uncertainty=unc,
        psnr_hidden=p_h,
        psnr_mean_fill=p_m,
        kept=int(keep.sum()),
        total=int(keep.numel()),
    )


@dataclass
class SuperResolution:
    image: np.ndarray  # the decode on the finer grid, uint8 (H', W', 3)
    nearest: np.ndarray  # the baseline: the input upsampled by nearest neighbour to the same size
    shape: tuple[int, ...]


def superresolve_image(
    demo: DemoModel, points: PointSet, factor: float, chunk_size: int | None = 16384
) -> SuperResolution:
    """Decode ``points`` (batch 1) on a grid ``factor`` times finer (any real factor > 0)."""
    _require_image(demo)
    factor = float(factor)
    if not (factor > 0) or not math.isfinite(factor):
        raise ValueError(f"the super-resolution factor must be a number > 0, got {factor}")
    assert points.grid_shape is not None
    shape = C.superres_shape(points.grid_shape, factor, points.meta.get("align", "center"))
    if max(shape) > MAX_SUPERRES_SIDE:
        raise ValueError(
            f"x{factor:g} makes a {shape[0]}x{shape[1]} image; the demo decodes at most "
            f"{MAX_SUPERRES_SIDE} pixels a side (use `inrgen reconstruct --scale` for larger)"
        )
    img = tasks.as_image(*tasks.superresolve(demo.model, points[:1], factor, chunk_size))[0]
    near = Fn.interpolate(points.to_image()[:1].float(), size=shape, mode="nearest")[0]
    return SuperResolution(image=to_uint8(img), nearest=to_uint8(near), shape=tuple(shape))


@dataclass
class Segmentation:
    segmentation: np.ndarray  # argmax of the posterior mixture weights, tab10 colours
    entropy: np.ndarray  # their normalised entropy (0: one component, 1: all equally likely)
    components_used: list[int] = field(default_factory=list)  # pixels per component

    def summary(self) -> str:
        used = [f"{k}: {c}" for k, c in enumerate(self.components_used) if c]
        return f"pixels per mixture component: {', '.join(used)}"


def segment_image(demo: DemoModel, points: PointSet, chunk_size: int | None = 16384) -> Segmentation | None:
    """Segmentation and entropy of the posterior mixture weights (VaMoH Eq. 11) of ``points`` (batch 1),
    as ``inrgen segment`` writes them; None for a model without mixture weights."""
    _require_image(demo)
    points = points[:1]
    tasks.check_values(points)
    with torch.no_grad():
        latent = demo.model.encode(points)
        try:
            pred = tasks.decode_chunked(demo.model, latent, points.coords, chunk_size, values=points.values)
        except TypeError:  # a decoder that reads no observed values: no posterior mixture weights
            return None
    if pred.weights is None:
        return None
    shape = points.grid_shape
    k = pred.weights.shape[-1]
    labels = pred.segmentation()[0]
    return Segmentation(
        segmentation=to_uint8(viz.segmentation_map(pred.weights, shape)[0]),
        entropy=to_uint8(viz.entropy_map(pred.weights, shape)[0]),
        components_used=torch.bincount(labels, minlength=k).tolist(),
    )


# ---------------------------------------------------------------------------------------- views


@dataclass
class ViewSet:
    """One object's views: the support views the model encodes and the held-out ones."""

    support: PointSet  # rays of the support views (batch 1)
    images: Tensor  # (V, 3, H, W) support images
    c2w: Tensor  # (V, 4, 4) their camera-to-world poses (float64, OpenGL)
    K: Tensor  # (3, 3) intrinsics
    held_out: Tensor | None = None  # (Q, 3, H, W) recorded views not given to the model
    held_out_c2w: Tensor | None = None  # (Q, 4, 4)
    source: str = ""

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[-2]), int(self.images.shape[-1])


def _n_support(demo: DemoModel) -> int:
    return int(demo.data.options.get("n_support", 1))


def load_views(demo: DemoModel, index: int = 0, folder: str | os.PathLike | None = None) -> ViewSet:
    """The views of object ``folder`` (``transforms.json`` + PNGs: its first ``n_support`` views are the
    support, the others held out) or, without a folder, item ``index`` of the checkpoint's test split."""
    if not demo.is_views:
        raise ValueError(f"{demo.preset} was trained on {demo.modality} data: novel views need a light-field "
                         "checkpoint (e.g. laginr-nvs-small)")  # fmt: skip
    n = _n_support(demo)
    size = demo.data.options.get("image_size")
    if folder is not None and str(folder).strip():
        from inrgen.data.datasets import DataSourceError
        from inrgen.data.datasets.views import load_view, read_transforms

        obj = Path(str(folder).strip()).expanduser()
        if not obj.is_dir():
            raise ValueError(f"{obj} is not a folder (expected transforms.json and the view PNGs)")
        try:
            fov, files, poses = read_transforms(obj)
            if len(files) < n:
                raise ValueError(f"{obj} has {len(files)} views; the model reads {n} support views")
            imgs = torch.stack([load_view(f, size) for f in files])
        except DataSourceError as err:
            raise ValueError(str(err)) from None
        h, w = imgs.shape[-2:]
        K = C.intrinsics_from_fov(fov, w, h)
        c2w = torch.from_numpy(poses)
        support = PointSet.from_views(imgs[None, :n], c2w[None, :n], K)
        rest = imgs[n:] if len(imgs) > n else None
        return ViewSet(support, imgs[:n], c2w[:n], K, rest, c2w[n:] if rest is not None else None, str(obj))
    ds = _test_split(demo)
    index = int(index) % len(ds)
    pair = ds[index]
    ctx, tgt = pair.context, pair.target
    K = ctx.meta["K"].reshape(-1, 3, 3)[0]
    return ViewSet(
        support=ctx,
        images=ctx.to_views()[0],
        c2w=ctx.meta["c2w"][0].double(),
        K=K,
        held_out=tgt.to_views()[0],
        held_out_c2w=tgt.meta["c2w"][0].double(),
        source=f"{demo.data.source} test item {index}",
    )


def orbit_pose(c2w: Tensor, azimuth: float, elevation: float) -> Tensor:
    """The camera ``c2w (4, 4)`` moved on its sphere around the origin: ``azimuth`` degrees about the
    world z axis (up, the Blender / learnit convention) and ``elevation`` degrees up (clamped to
    +-85), at the same distance, looking at the origin (OpenGL: along -z)."""
    from inrgen.data.synthetic import look_at

    eye = c2w[:3, 3].double().numpy()
    r = float(np.linalg.norm(eye))
    if r < 1e-9:
        raise ValueError("the support camera sits at the origin: cannot orbit around the object")
    az = math.atan2(eye[1], eye[0]) + math.radians(float(azimuth))
    el = math.asin(max(-1.0, min(1.0, eye[2] / r))) + math.radians(float(elevation))
    el = max(-math.radians(85), min(math.radians(85), el))
    new = r * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    return torch.from_numpy(look_at(new))


@dataclass
class NovelViews:
    support: np.ndarray  # the support views side by side
    view: np.ndarray  # the rendering from the orbited camera
    held_out: np.ndarray | None  # recorded held-out view | its rendering, side by side
    psnr_held_out: float | None

    def summary(self) -> str:
        if self.psnr_held_out is None:
            return "no held-out view to compare with"
        return f"held-out view (left: recorded, right: rendered): PSNR {self.psnr_held_out:.2f} dB"


def _row(images: Tensor, gap: int = 2) -> np.ndarray:
    """Images ``(V, 3, H, W)`` side by side on a white gap, ``uint8``."""
    return viz.make_grid(images.clamp(0, 1), nrow=len(images), padding=gap)


def novel_view_images(
    demo: DemoModel, views: ViewSet, azimuth: float = 0.0, elevation: float = 0.0, chunk_size: int = 4096
) -> NovelViews:
    """Render the object of ``views`` from the first support camera orbited by ``azimuth`` /
    ``elevation`` degrees, and its first held-out recorded view (PSNR against the recording)."""
    h, w = views.size
    poses = [orbit_pose(views.c2w[0], azimuth, elevation)]
    if views.held_out_c2w is not None and len(views.held_out_c2w):
        poses.append(views.held_out_c2w[0].double())
    c2w = torch.stack(poses)[None]
    out = tasks.novel_view(demo.model, views.support, c2w, views.K, h, w, chunk_size)[0]  # (Q, 3, H, W)
    held, p = None, None
    if len(poses) > 1 and views.held_out is not None:
        truth = views.held_out[0].float()
        as_points = lambda x: x.flatten(-2).transpose(-1, -2)  # (Q, 3, H, W) -> (Q, HW, 3)
        p = float(psnr(as_points(out[1:2]), as_points(truth[None]), clamp=True)[0])
        held = _row(torch.stack([truth, out[1].clamp(0, 1)]))
    return NovelViews(
        support=_row(views.images), view=to_uint8(out[0].clamp(0, 1)), held_out=held, psnr_held_out=p
    )

"""`PointSet`: the one data model every inrgen model, data set and task uses.

A batch of ``B`` functions, each observed at ``N`` points:

    coords  (B, N, d)   where each function is observed (see ``inrgen.coords`` for conventions)
    values  (B, N, C)   what it is there (images and fields in [0, 1], occupancy in {0, 1})
    mask    (B, N)      optional, bool: True where the value is known. Padding of variable-size sets,
                        dropped points, in-painting holes and missing (NaN) values are all False.
    grid_shape          optional: when the N points are the cells of a regular grid (row-major), its
                        shape, so values can be turned back into images (H, W), volumes (D, H, W),
                        lat-lon maps (n_lat, n_lon) or multi-view images (V, H, W).
    kind                "grid" | "sphere" | "rays" | "points" (what the coordinates are).

Items of different sizes are batched with :meth:`PointSet.collate`, which pads and masks; nothing
is ever truncated.

Input values (:meth:`PointSet.from_image`, :meth:`from_views`, :meth:`from_volume`, :meth:`from_grid`)
    Images and fields are in [0, 1]. A ``uint8`` image is converted (``x / 255``, float32); a ``bool``
    array becomes 0/1; an integer volume holding only 0 and 1 is an occupancy grid and is kept as 0/1.
    Any other range is named with ``value_range=(lo, hi)`` and rescaled, ``(x - lo) / (hi - lo)``
    (``(0, 255)`` for 8-bit pixels stored as floats or int64, ``(-1, 1)`` for normalised images).
    Images and volumes whose values leave [0, 1] after that raise, naming the range found and the
    ``value_range`` to pass: never a silent 0-255 input that every model would decode as garbage.

Example:
    >>> import torch
    >>> from inrgen import PointSet
    >>> img = torch.rand(2, 3, 4, 5)
    >>> ps = PointSet.from_image(img)
    >>> ps.coords.shape, ps.values.shape, ps.grid_shape
    (torch.Size([2, 20, 2]), torch.Size([2, 20, 3]), (4, 5))
    >>> torch.equal(ps.to_image(), img)
    True
    >>> u8 = (img * 255).round().to(torch.uint8)  # 8-bit pixels are converted to [0, 1]
    >>> bool(PointSet.from_image(u8).values.max() <= 1)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import Tensor

from inrgen import coords as C

__all__ = ["PointSet", "PointSetPair", "collate", "PER_ITEM_META"]

# meta entries that hold one row per item (a tensor with the batch as first dimension): they are sliced
# with the batch and concatenated by `collate`. Every other meta entry describes the whole set.
PER_ITEM_META = ("labels", "index", "c2w", "K", "factors")

Kind = Literal["grid", "sphere", "rays", "points"]

# how far outside [0, 1] image values may go before from_image refuses them (rounding, resampling)
_UNIT_TOLERANCE = 1e-2


def _rescale(array: Tensor, value_range: tuple[float, float] | None, what: str) -> Tensor:
    """``array`` as floating point; ``value_range=(lo, hi)`` maps ``lo -> 0`` and ``hi -> 1``.

    Without a range, bool becomes 0/1 and floats are kept; other integer dtypes raise (their scale is
    unknown), naming the ``value_range`` to pass.
    """
    if value_range is not None:
        try:
            lo, hi = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise ValueError(
                f"value_range must be a pair (lo, hi), e.g. (0, 255); got {value_range!r}"
            ) from None
        if not hi > lo:
            raise ValueError(f"value_range (lo, hi) needs hi > lo, got {value_range!r}")
        x = array if torch.is_floating_point(array) else array.to(torch.float32)
        return (x - lo) / (hi - lo)
    if torch.is_floating_point(array):
        return array
    if array.dtype == torch.bool:
        return array.to(torch.float32)
    raise TypeError(
        f"{what} are {array.dtype}, whose scale inrgen cannot guess: pass value_range=(lo, hi), e.g. "
        "value_range=(0, 255) for 8-bit pixels, or convert to floats in [0, 1] first"
    )


def _check_unit(values: Tensor, value_range: tuple[float, float] | None, what: str) -> None:
    """Raise when the finite values lie outside [0, 1] (beyond rounding), saying what to pass."""
    finite = values[torch.isfinite(values)]
    if finite.numel() == 0:
        return
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= -_UNIT_TOLERANCE and hi <= 1.0 + _UNIT_TOLERANCE:
        return
    if value_range is not None:
        raise ValueError(
            f"{what} leave [0, 1] after value_range={tuple(value_range)} (they span [{lo:.4g}, {hi:.4g}]); "
            "pass the range the data really has"
        )
    hint = "value_range=(0, 255) (8-bit pixels; a uint8 tensor is converted without it)"
    if lo < 0:
        hint = f"value_range=(-1, 1) for normalised images, or value_range=({lo:.4g}, {hi:.4g})"
    elif hi > 255 + _UNIT_TOLERANCE:
        hint = f"value_range=(0, {hi:.4g}) or the range of your data's format (e.g. (0, 65535) for 16 bit)"
    raise ValueError(f"{what} must be in [0, 1] but span [{lo:.4g}, {hi:.4g}]; pass {hint}")


@dataclass
class PointSet:
    """A batch of functions sampled at points. See the module docstring for the fields."""

    coords: Tensor
    values: Tensor
    mask: Tensor | None = None
    grid_shape: tuple[int, ...] | None = None
    kind: Kind = "points"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        c, v = self.coords, self.values
        if not isinstance(c, Tensor) or not isinstance(v, Tensor):
            raise TypeError(
                f"PointSet needs tensors for coords and values, got {type(c).__name__} and {type(v).__name__}"
            )
        if c.dim() == 2 and v.dim() == 2:  # a single item: add the batch dimension
            c, v = c.unsqueeze(0), v.unsqueeze(0)
            self.coords, self.values = c, v
            if self.mask is not None and self.mask.dim() == 1:
                self.mask = self.mask.unsqueeze(0)
        if c.dim() != 3:
            raise ValueError(f"coords must have shape (B, N, d), got {tuple(c.shape)}")
        if v.dim() != 3:
            raise ValueError(f"values must have shape (B, N, C), got {tuple(v.shape)}")
        if c.shape[:2] != v.shape[:2]:
            raise ValueError(
                f"coords and values describe different points: coords {tuple(c.shape)} vs values "
                f"{tuple(v.shape)} (the first two sizes, batch and number of points, must match)"
            )
        if not torch.is_floating_point(c):
            raise TypeError(f"coords must be floating point, got {c.dtype}")
        if not torch.isfinite(c).all():
            raise ValueError(
                "coords contain NaN or inf; mark missing points with `mask` instead of NaN coordinates"
            )
        if self.mask is not None:
            m = self.mask
            if m.shape != c.shape[:2]:
                raise ValueError(f"mask must have shape (B, N) = {tuple(c.shape[:2])}, got {tuple(m.shape)}")
            if m.dtype != torch.bool:
                self.mask = m.bool()
        if self.grid_shape is not None:
            self.grid_shape = tuple(int(s) for s in self.grid_shape)
            n = 1
            for s in self.grid_shape:
                n *= s
            if n != c.shape[1]:
                raise ValueError(
                    f"grid_shape {self.grid_shape} has {n} cells but the set has {c.shape[1]} points"
                )

    # ------------------------------------------------------------------------------ basic facts
    @property
    def batch_size(self) -> int:
        return self.coords.shape[0]

    @property
    def num_points(self) -> int:
        return self.coords.shape[1]

    @property
    def coord_dim(self) -> int:
        return self.coords.shape[2]

    @property
    def channels(self) -> int:
        return self.values.shape[2]

    @property
    def device(self) -> torch.device:
        return self.coords.device

    @property
    def observed(self) -> Tensor:
        """Bool ``(B, N)``: the known points (all True without a mask)."""
        if self.mask is None:
            return torch.ones(self.coords.shape[:2], dtype=torch.bool, device=self.device)
        return self.mask

    def num_observed(self) -> Tensor:
        """Number of known points per item, ``(B,)``."""
        return self.observed.sum(1)

    def shares_coords(self) -> bool:
        """True when every item has the same coordinates *and* the same mask.

        Then neighbourhoods, centroids and encodings can be computed once per batch instead of per item.
        """
        if self.batch_size == 1:
            return True
        c = self.coords
        same_c = c.stride(0) == 0 or bool((c == c[:1]).all())
        if not same_c:
            return False
        if self.mask is None:
            return True
        return bool((self.mask == self.mask[:1]).all())

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, idx) -> PointSet:
        """Select items of the batch (an int keeps the batch dimension)."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1 if idx != -1 else None)
        return replace(
            self,
            coords=self.coords[idx],
            values=self.values[idx],
            mask=None if self.mask is None else self.mask[idx],
            meta=_slice_meta(self.meta, idx),
        )

    def to(self, device=None, dtype: torch.dtype | None = None) -> PointSet:
        """Move to a device and/or cast coords and (floating) values to ``dtype``."""
        c = self.coords.to(device=device, dtype=dtype)
        v = self.values.to(device=device, dtype=dtype if torch.is_floating_point(self.values) else None)
        m = None if self.mask is None else self.mask.to(device)
        return replace(self, coords=c, values=v, mask=m, meta=dict(self.meta))

    def with_mask(self, mask: Tensor | None, combine: bool = True) -> PointSet:
        """A copy whose mask is ``mask`` (AND-ed with the current one when ``combine``)."""
        if mask is not None:
            mask = mask.to(self.device).bool()
            if mask.dim() == 1:
                mask = mask.unsqueeze(0).expand(self.batch_size, -1)
            if combine and self.mask is not None:
                mask = mask & self.mask
        return replace(self, mask=mask, meta=dict(self.meta))

    def with_values(self, values: Tensor) -> PointSet:
        return replace(self, values=values, meta=dict(self.meta))

    def gather(self, index: Tensor) -> PointSet:
        """Keep points ``index`` (``(B, M)`` or ``(M,)``) of each item; the grid shape is dropped."""
        if index.dim() == 1:
            index = index.unsqueeze(0).expand(self.batch_size, -1)
        c = torch.gather(self.coords, 1, index.unsqueeze(-1).expand(-1, -1, self.coord_dim))
        v = torch.gather(self.values, 1, index.unsqueeze(-1).expand(-1, -1, self.channels))
        m = None if self.mask is None else torch.gather(self.mask, 1, index)
        return replace(self, coords=c, values=v, mask=m, grid_shape=None, meta=dict(self.meta))

    def check_finite(self) -> None:
        """Raise if a known value is NaN or inf (missing values must be masked out)."""
        bad = ~torch.isfinite(self.values).all(-1) & self.observed
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} observed values are NaN or inf; mark missing values as unobserved "
                "(mask=False), e.g. with PointSet.from_latlon, which does this for NaN"
            )

    # ---------------------------------------------------------------------------------- grids
    @classmethod
    def from_grid(
        cls,
        array: Tensor,
        spatial_dims: int,
        align: C.Align = "center",
        kind: Kind = "grid",
        value_range: tuple[float, float] | None = None,
    ) -> PointSet:
        """From a channels-first array ``(B, C, *spatial)`` or ``(C, *spatial)``.

        Floats are taken as they are; ``value_range=(lo, hi)`` rescales to [0, 1]; integer arrays other
        than bool need it (see "Input values" in the module docstring).
        """
        if not isinstance(array, Tensor):
            raise TypeError(
                f"expected a torch.Tensor, got {type(array).__name__} "
                "(use torch.from_numpy or torch.as_tensor)"
            )
        array = _rescale(array, value_range, "values")
        if array.dim() == spatial_dims + 1:
            array = array.unsqueeze(0)
        if array.dim() != spatial_dims + 2:
            raise ValueError(
                f"expected (B, C, {spatial_dims} spatial sizes) or (C, ...), got {tuple(array.shape)}"
            )
        b, ch, *spatial = array.shape
        dtype = array.dtype if torch.is_floating_point(array) else torch.float32
        xy = C.grid(spatial, align, dtype=dtype, device=array.device)
        values = array.reshape(b, ch, -1).transpose(1, 2)
        mask = None
        if torch.is_floating_point(values):
            nan = ~torch.isfinite(values).all(-1)
            if nan.any():
                mask = ~nan
                values = torch.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        return cls(
            coords=xy.unsqueeze(0).expand(b, -1, -1),
            values=values,
            mask=mask,
            grid_shape=tuple(spatial),
            kind=kind,
            meta={"align": align},
        )

    @classmethod
    def from_image(
        cls, image: Tensor, align: C.Align = "center", value_range: tuple[float, float] | None = None
    ) -> PointSet:
        """From images ``(B, C, H, W)`` or ``(C, H, W)`` in [0, 1]; NaN pixels become unobserved.

        ``uint8`` images are converted (``x / 255``); other ranges need ``value_range=(lo, hi)``, e.g.
        ``(0, 255)`` for 8-bit pixels stored as floats. Values outside [0, 1] raise, saying what to pass.
        """
        image = _image_values(image, value_range, "image values")
        return cls.from_grid(image, 2, align)

    @classmethod
    def from_volume(
        cls, volume: Tensor, align: C.Align = "center", value_range: tuple[float, float] | None = None
    ) -> PointSet:
        """From volumes ``(B, C, D, H, W)`` or ``(C, D, H, W)`` in [0, 1] (occupancy: {0, 1}).

        Integer or bool volumes holding only 0 and 1 are occupancy grids (kept as 0/1, float32); a
        ``uint8`` volume with other values is converted as 8-bit intensities (``x / 255``).
        """
        if isinstance(volume, Tensor) and value_range is None and not torch.is_floating_point(volume):
            if bool(((volume == 0) | (volume == 1)).all()):
                volume = volume.to(torch.float32)
        volume = _image_values(volume, value_range, "volume values")
        return cls.from_grid(volume, 3, align)

    def to_grid(self, values: Tensor | None = None, fill: float = 0.0) -> Tensor:
        """Values back on the grid, channels first: ``(B, C, *grid_shape)``; unobserved cells get ``fill``
        (pass ``fill=float('nan')`` to see the holes). ``values`` overrides the stored values (e.g. a
        prediction of shape ``(B, N, C')``)."""
        if self.grid_shape is None:
            raise ValueError("this PointSet has no grid_shape: it did not come from a regular grid")
        v = self.values if values is None else values
        if v.shape[:2] != self.coords.shape[:2]:
            raise ValueError(
                f"values {tuple(v.shape)} do not match the set's (B, N) = {tuple(self.coords.shape[:2])}"
            )
        if values is None and self.mask is not None:
            v = torch.where(self.mask.unsqueeze(-1), v, torch.full_like(v, fill))
        return v.transpose(1, 2).reshape(v.shape[0], v.shape[2], *self.grid_shape)

    to_image = to_grid
    to_volume = to_grid

    # --------------------------------------------------------------------------------- sphere
    @classmethod
    def from_latlon(cls, field_: Tensor, lat: Tensor, lon: Tensor) -> PointSet:
        """From fields ``(B, C, n_lat, n_lon)`` or ``(C, n_lat, n_lon)`` on a lat/lon grid in degrees.

        Coordinates are unit vectors on S^2; NaN values (land/sea masks) become unobserved points.
        """
        lat = torch.as_tensor(lat, dtype=torch.float64).flatten()
        lon = torch.as_tensor(lon, dtype=torch.float64).flatten()
        if field_.dim() == 3:
            field_ = field_.unsqueeze(0)
        if field_.dim() != 4 or field_.shape[-2:] != (len(lat), len(lon)):
            raise ValueError(
                f"expected a field (B, C, n_lat={len(lat)}, n_lon={len(lon)}), got {tuple(field_.shape)}"
            )
        ps = cls.from_grid(field_, 2, kind="sphere")
        xyz = C.latlon_grid(lat, lon, dtype=ps.values.dtype).to(field_.device)
        ps.coords = xyz.unsqueeze(0).expand(ps.batch_size, -1, -1)
        ps.meta = {"lat": lat, "lon": lon}
        return ps

    to_latlon = to_grid

    # ---------------------------------------------------------------------------------- views
    @classmethod
    def from_views(
        cls,
        images: Tensor,
        c2w: Tensor,
        K: Tensor,
        convention: Literal["opengl", "opencv"] = "opengl",
        value_range: tuple[float, float] | None = None,
    ) -> PointSet:
        """From views ``(B, V, C, H, W)`` with poses ``(B, V, 4, 4)`` and intrinsics ``(3, 3)`` or
        ``(B, V, 3, 3)``: coords are the 6-D Plücker rays of every pixel, ``grid_shape = (V, H, W)``.
        Pixels as in :meth:`from_image` (``uint8`` converted, other ranges via ``value_range``)."""
        if images.dim() == 4:
            images, c2w = images.unsqueeze(0), c2w.unsqueeze(0)
            if K.dim() == 3:
                K = K.unsqueeze(0)
        if images.dim() != 5:
            raise ValueError(f"expected views (B, V, C, H, W), got {tuple(images.shape)}")
        images = _image_values(images, value_range, "view pixels")
        b, v, ch, h, w = images.shape
        if c2w.shape[:2] != (b, v):
            raise ValueError(f"need one pose per view: images {(b, v)} vs poses {tuple(c2w.shape[:2])}")
        if K.dim() == 2:
            K = K.expand(b, v, 3, 3)
        rays = C.ray_grid(c2w.to(torch.float64), K.to(torch.float64), h, w, convention)  # (B, V, HW, 6)
        dtype = images.dtype if torch.is_floating_point(images) else torch.float32
        vals = images.permute(0, 1, 3, 4, 2).reshape(b, v * h * w, ch)
        return cls(
            coords=rays.reshape(b, v * h * w, 6).to(dtype),
            values=vals,
            grid_shape=(v, h, w),
            kind="rays",
            meta={"c2w": c2w, "K": K},
        )

    def to_views(self, values: Tensor | None = None) -> Tensor:
        """Back to ``(B, V, C, H, W)``."""
        g = self.to_grid(values)  # (B, C, V, H, W)
        return g.transpose(1, 2)

    # -------------------------------------------------------------------------------- batching
    @staticmethod
    def collate(items: Sequence[PointSet]) -> PointSet:
        """Concatenate PointSets along the batch; sets of different sizes are zero-padded and masked."""
        if len(items) == 0:
            raise ValueError("cannot collate an empty list of PointSets")
        d = {it.coord_dim for it in items}
        ch = {it.channels for it in items}
        if len(d) > 1 or len(ch) > 1:
            raise ValueError(f"cannot batch sets with coordinate dims {sorted(d)} and channels {sorted(ch)}")
        n_max = max(it.num_points for it in items)
        same = all(it.num_points == n_max for it in items)
        first = items[0]
        if same:
            coords = torch.cat([it.coords for it in items])
            values = torch.cat([it.values for it in items])
            masks = [it.mask for it in items]
            mask = None if all(m is None for m in masks) else torch.cat([it.observed for it in items])
            shapes = {it.grid_shape for it in items}
            grid_shape = first.grid_shape if len(shapes) == 1 else None
            if grid_shape is not None and all(it.coords.stride(0) == 0 for it in items):
                if all(torch.equal(it.coords[0], first.coords[0]) for it in items):
                    coords = first.coords[:1].expand(coords.shape[0], -1, -1)
            return PointSet(coords, values, mask, grid_shape, first.kind, _cat_meta(items))
        cs, vs, ms = [], [], []
        for it in items:
            pad = n_max - it.num_points
            cs.append(torch.nn.functional.pad(it.coords, (0, 0, 0, pad)))
            vs.append(torch.nn.functional.pad(it.values, (0, 0, 0, pad)))
            ms.append(torch.nn.functional.pad(it.observed, (0, pad), value=False))
        return PointSet(torch.cat(cs), torch.cat(vs), torch.cat(ms), None, first.kind, _cat_meta(items))


def _image_values(array: Tensor, value_range: tuple[float, float] | None, what: str) -> Tensor:
    """Image-like values in [0, 1]: ``uint8`` divided by 255, ``value_range`` applied, range checked."""
    if not isinstance(array, Tensor):
        raise TypeError(
            f"expected a torch.Tensor, got {type(array).__name__} (use torch.from_numpy or torch.as_tensor)"
        )
    if value_range is None and array.dtype == torch.uint8:
        array = array.to(torch.float32) / 255.0
    array = _rescale(array, value_range, what)
    _check_unit(array, value_range, what)
    return array


def _slice_meta(meta: dict[str, Any], idx) -> dict[str, Any]:
    return {k: (v[idx] if k in PER_ITEM_META and isinstance(v, Tensor) else v) for k, v in meta.items()}


def _cat_meta(items: Sequence[PointSet]) -> dict[str, Any]:
    out = dict(items[0].meta)
    for k in PER_ITEM_META:
        vals = [it.meta.get(k) for it in items]
        if all(isinstance(v, Tensor) for v in vals):
            out[k] = torch.cat(vals)  # type: ignore[arg-type]
        else:
            out.pop(k, None)
    return out


@dataclass
class PointSetPair:
    """A context to encode and a target to decode (novel views: support views and query rays)."""

    context: PointSet
    target: PointSet

    def to(self, device=None, dtype: torch.dtype | None = None) -> PointSetPair:
        return PointSetPair(self.context.to(device, dtype), self.target.to(device, dtype))

    @property
    def batch_size(self) -> int:
        return self.context.batch_size

    @staticmethod
    def collate(items: Sequence[PointSetPair]) -> PointSetPair:
        return PointSetPair(
            PointSet.collate([it.context for it in items]), PointSet.collate([it.target for it in items])
        )


def collate(items: Sequence[PointSet | PointSetPair]) -> PointSet | PointSetPair:
    """``collate_fn`` for a ``torch.utils.data.DataLoader`` over PointSet / PointSetPair items."""
    if isinstance(items[0], PointSetPair):
        return PointSetPair.collate(items)  # type: ignore[arg-type]
    return PointSet.collate(items)  # type: ignore[arg-type]

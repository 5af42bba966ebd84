"""Masks of observed points: point dropout, in-painting boxes, half images, out-painting, subsampling.

A mask is a bool tensor over the points of a set, ``True`` = observed (kept), ``False`` = hidden; it
composes with :meth:`inrgen.data.points.PointSet.with_mask` (which AND-s it with the set's own mask).
Grid masks are ``(N,)`` over the cells of a grid of shape ``grid_shape`` in row-major order, the order of
``inrgen.coords.grid`` and ``PointSet.from_grid``.

Point dropout (VaMoH, Sec. 3.3 "Point dropout" and Algorithm 1, line 5)
    For every *batch* a rate ``p ~ U(0, alpha)`` is drawn and every point is dropped independently with
    probability ``p``. As in the authors' code (``utils/mask.py``) one mask is drawn per batch and shared
    by all its items, so a batch keeps shared coordinates. The expected kept fraction is
    ``E[1 - p] = 1 - alpha / 2``. The paper chooses ``alpha`` so that at least as many points remain as the
    first PointConv layer has centroids; here that guarantee is explicit: ``min_points`` dropped points
    are restored at random whenever fewer would remain.

Completion masks (VaMoH Sec. 4.3, Fig. 9 and App. B.4)
    ``inpaint_mask`` hides a box, ``outpaint_mask`` keeps only a box, ``half_mask`` keeps one half.
    ``vamoh_box`` is the square the authors' code removes, ``[5, 5 + n // 3)`` along every axis.

Coordinate subsampling (LA-GINR / IPC training, ``SubSampler`` with ``ratio``)
    ``random_subsample`` draws, independently per item, ``int(N * ratio)`` point indices without
    replacement, for :meth:`PointSet.gather`.

Shapes (einops legend): ``N`` points per item, ``B`` items, ``M`` kept points.

Example:
    >>> import torch
    >>> from inrgen.data.masks import inpaint_mask, parse_mask
    >>> m = inpaint_mask((4, 4), start=(1, 1), size=(2, 2))  # hide the central 2x2 square
    >>> int(m.sum())
    12
    >>> torch.equal(parse_mask("box:1,1,2,2", (4, 4)), m)
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "box_region",
    "inpaint_mask",
    "outpaint_mask",
    "half_mask",
    "vamoh_box",
    "point_dropout_mask",
    "point_dropout",
    "region_dropout_mask",
    "random_keep_mask",
    "random_subsample",
    "subsample",
    "parse_mask",
    "MASK_SPECS",
]

MASK_SPECS = (
    "box | box:x,y,w,h (hide a box; volumes: box:x,y,z,w,h,d) | outpaint:x,y,w,h (keep only a box) | "
    "half | half:left|right|top|bottom (the half that stays observed) | "
    "random:F (keep the fraction F in (0, 1] of the points, e.g. random:0.25; random:25% for a percentage)"
)


def _shape(grid_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in grid_shape)
    except TypeError as err:
        raise TypeError(
            f"grid_shape must be a sequence of ints such as (28, 28), got {grid_shape!r}"
        ) from err
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"grid_shape must be non-empty with sizes >= 1, got {grid_shape!r}")
    return shape


def box_region(grid_shape: Sequence[int], start: Sequence[int], size: Sequence[int], device=None) -> Tensor:
    """``(N,)`` bool, True inside the box ``[start_i, start_i + size_i)`` along every axis (``ij`` order).

    The box must lie inside the grid and be non-empty; anything else raises, naming the axis.
    """
    shape = _shape(grid_shape)
    start, size = tuple(int(s) for s in start), tuple(int(s) for s in size)
    if len(start) != len(shape) or len(size) != len(shape):
        raise ValueError(
            f"a box on a grid of shape {shape} needs {len(shape)} starts and {len(shape)} sizes, "
            f"got start={start} and size={size}"
        )
    for ax, (n, s0, w) in enumerate(zip(shape, start, size)):
        if w < 1:
            raise ValueError(f"box size along axis {ax} must be >= 1, got {w}")
        if s0 < 0 or s0 + w > n:
            raise ValueError(
                f"box [{s0}, {s0 + w}) along axis {ax} does not fit in the grid's {n} cells (grid {shape})"
            )
    inside = torch.ones(shape, dtype=torch.bool, device=device)
    for ax, (n, s0, w) in enumerate(zip(shape, start, size)):
        keep = torch.zeros(n, dtype=torch.bool, device=device)
        keep[s0 : s0 + w] = True
        view = [1] * len(shape)
        view[ax] = n
        inside = inside & keep.view(view)
    return inside.reshape(-1)


def inpaint_mask(grid_shape: Sequence[int], start: Sequence[int], size: Sequence[int], device=None) -> Tensor:
    """In-painting: every point observed except the box (``ij`` order starts and sizes)."""
    return ~box_region(grid_shape, start, size, device)


def outpaint_mask(
    grid_shape: Sequence[int], start: Sequence[int], size: Sequence[int], device=None
) -> Tensor:
    """Out-painting: only the box is observed."""
    return box_region(grid_shape, start, size, device)


def vamoh_box(grid_shape: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(start, size)`` of the in-painting square of the VaMoH code: ``[5, 5 + n // 3)`` on every axis
    (21x21 at 64x64, 9x9 at 28x28, a cube for voxels). Grids too small for it get the centred third."""
    shape = _shape(grid_shape)
    start, size = [], []
    for n in shape:
        w = max(1, n // 3)
        s0 = 5 if 5 + w <= n else (n - w) // 2
        start.append(s0)
        size.append(w)
    return tuple(start), tuple(size)


_HALVES = {"left": (-1, 0), "right": (-1, 1), "top": (-2, 0), "bottom": (-2, 1)}


def half_mask(grid_shape: Sequence[int], keep: str = "left", device=None) -> Tensor:
    """Half completion: only one half of the grid is observed.

    ``keep`` names the observed half: ``"left"`` (default, the VaMoH code's "half": columns ``< W/2``),
    ``"right"``, ``"top"`` or ``"bottom"``; left/right act on the last axis, top/bottom on the second to
    last. Each half has ``n // 2`` cells; for an odd size the middle cell is hidden.
    """
    shape = _shape(grid_shape)
    if keep not in _HALVES:
        raise ValueError(f"half_mask: keep must be one of {sorted(_HALVES)}, got {keep!r}")
    axis, second = _HALVES[keep]
    if len(shape) < -axis:
        raise ValueError(f"half {keep!r} needs a grid with at least {-axis} axes, got shape {shape}")
    ax = len(shape) + axis
    n = shape[ax]
    if n < 2:
        raise ValueError(f"cannot take half of axis {ax} with {n} cell(s) (grid {shape})")
    start = [0] * len(shape)
    size = list(shape)
    size[ax] = n // 2
    start[ax] = n - n // 2 if second else 0
    return box_region(shape, start, size, device)


def point_dropout_mask(
    num_points: int,
    alpha: float,
    min_points: int = 0,
    generator: torch.Generator | None = None,
    device=None,
) -> tuple[Tensor, float]:
    """One VaMoH point-dropout mask over ``num_points`` points and the rate it used.

    Draws ``p ~ U(0, alpha)``, keeps each point with probability ``1 - p``, then restores randomly chosen
    dropped points until at least ``min(min_points, num_points)`` are kept. Returns ``(mask (N,), p)``.
    """
    if not (0.0 <= alpha <= 1.0) or math.isnan(alpha):
        raise ValueError(f"point dropout: alpha (the largest drop rate) must be in [0, 1], got {alpha}")
    if num_points < 1:
        raise ValueError(f"point dropout needs at least one point, got num_points={num_points}")
    if min_points < 0:
        raise ValueError(f"min_points must be >= 0, got {min_points}")
    if alpha == 0.0:
        return torch.ones(num_points, dtype=torch.bool, device=device), 0.0
    p = float(torch.rand((), generator=generator, dtype=torch.float64)) * alpha
    u = torch.rand(num_points, generator=generator, dtype=torch.float64)
    keep = u >= p
    need = min(min_points, num_points) - int(keep.sum())
    if need > 0:
        dropped = (~keep).nonzero().squeeze(1)
        pick = torch.randperm(len(dropped), generator=generator)[:need]
        keep[dropped[pick]] = True
    return keep.to(device), p


def point_dropout(points, alpha: float, min_points: int = 0, generator: torch.Generator | None = None):
    """Apply VaMoH point dropout to a :class:`PointSet` batch: one mask shared by every item.

    The shared mask is AND-ed with the set's own mask (padding, NaN); an item left with fewer than
    ``min_points`` observed points gets randomly chosen dropped points of its own back, so every item
    keeps ``min(min_points, its observed count)`` points or more. Returns the new PointSet.
    """
    shared, _ = point_dropout_mask(points.num_points, alpha, min_points, generator, points.device)
    mask = shared.unsqueeze(0) & points.observed
    short = mask.sum(1) < torch.minimum(
        points.observed.sum(1), torch.tensor(min_points, device=points.device)
    )
    if bool(short.any()):
        for b in short.nonzero().squeeze(1).tolist():
            avail = (points.observed[b] & ~mask[b]).nonzero().squeeze(1)
            need = min(min_points, int(points.observed[b].sum())) - int(mask[b].sum())
            pick = torch.randperm(len(avail), generator=generator)[:need].to(avail.device)
            mask[b, avail[pick]] = True
    return points.with_mask(mask, combine=False)


def region_dropout_mask(
    grid_shape: Sequence[int],
    min_points: int = 0,
    generator: torch.Generator | None = None,
    device=None,
) -> Tensor:
    """One random *region* mask ``(N,)`` over a grid, the shapes the completion tasks hide.

    An extension of point dropout (not in the VaMoH paper; ``VaMoHConfig.dropout_regions``): the
    encoder then also trains on contiguous holes, where farthest-point centroids fall in other places
    than under i.i.d. point dropout. Equally likely: a random box hidden (in-painting, each side a
    uniform 1/4 to 1/2 of the axis), a random half kept (left, right, top or bottom; the first two axes),
    a random box kept (out-painting, each side 1/2 to 3/4 of the axis). A draw that keeps fewer than
    ``min_points`` points is replaced by an in-painting box.
    """
    shape = _shape(grid_shape)

    def rand_int(lo: int, hi: int) -> int:  # uniform in [lo, hi]
        return lo + int(torch.randint(0, hi - lo + 1, (1,), generator=generator))

    def box(lo_frac: float, hi_frac: float) -> tuple[list[int], list[int]]:
        size = [rand_int(max(1, round(n * lo_frac)), max(1, round(n * hi_frac))) for n in shape]
        start = [rand_int(0, n - w) for n, w in zip(shape, size)]
        return start, size

    kind = int(torch.randint(0, 3, (1,), generator=generator))
    if kind == 1 and len(shape) >= 2:
        side = ("left", "right", "top", "bottom")[int(torch.randint(0, 4, (1,), generator=generator))]
        keep = half_mask(shape, side)
    elif kind == 2:
        keep = box_region(shape, *box(0.5, 0.75))
    else:
        keep = ~box_region(shape, *box(0.25, 0.5))
    if int(keep.sum()) < min(min_points, keep.numel()):
        keep = ~box_region(shape, *box(0.25, 0.25))
    return keep.to(device)


def random_keep_mask(
    num_points: int, fraction: float, generator: torch.Generator | None = None, device=None
) -> Tensor:
    """``(N,)`` mask with exactly ``round(fraction * N)`` (at least one) randomly chosen points kept."""
    if not (0.0 < fraction <= 1.0):
        raise ValueError(f"the kept fraction must be in (0, 1], got {fraction}")
    m = max(1, round(fraction * num_points))
    keep = torch.zeros(num_points, dtype=torch.bool)
    keep[torch.randperm(num_points, generator=generator)[:m]] = True
    return keep.to(device)


def random_subsample(
    batch_size: int,
    num_points: int,
    ratio: float | None = None,
    count: int | None = None,
    generator: torch.Generator | None = None,
    device=None,
) -> Tensor:
    """Independent random subsets per item (LA-GINR / IPC training): indices ``(B, M)`` for
    :meth:`PointSet.gather`, ``M = int(N * ratio)`` (IPC's rule) or ``count``; no index repeats in a row."""
    if (ratio is None) == (count is None):
        raise ValueError("random_subsample: pass exactly one of `ratio` (a fraction) or `count` (points)")
    if ratio is not None:
        if not (0.0 < ratio <= 1.0):
            raise ValueError(f"random_subsample: ratio must be in (0, 1], got {ratio}")
        count = max(1, int(num_points * ratio))
    assert count is not None
    if not (1 <= count <= num_points):
        raise ValueError(f"random_subsample: cannot draw {count} of {num_points} points without replacement")
    scores = torch.rand(batch_size, num_points, generator=generator)
    idx = scores.argsort(dim=1)[:, :count]
    return idx.to(device)


def subsample(points, ratio: float | None = None, count: int | None = None, generator=None):
    """``points.gather(random_subsample(...))``: a random subset of every item's points."""
    idx = random_subsample(points.batch_size, points.num_points, ratio, count, generator, points.device)
    return points.gather(idx)


def _kept_fraction(spec: str, body: str) -> float:
    """The kept fraction of ``random:F`` (a fraction in (0, 1]) or ``random:P%`` (a percentage)."""
    text = body.strip()
    percent = text.endswith("%")
    try:
        value = float(text[:-1] if percent else text)
    except ValueError:
        raise ValueError(
            f"mask {spec!r}: random needs the kept fraction of the points, e.g. random:0.25 "
            "(or a percentage, random:25%)"
        ) from None
    if percent:
        if not (0.0 < value <= 100.0):
            raise ValueError(f"mask {spec!r}: the percentage must be in (0, 100], got {value:g}%")
        return value / 100.0
    if value > 1.0 and value <= 100.0:
        raise ValueError(
            f"mask {spec!r}: random takes the kept fraction in (0, 1], not a percentage; "
            f"use random:{value / 100.0:g} or random:{value:g}%"
        )
    if not (0.0 < value <= 1.0):
        raise ValueError(f"mask {spec!r}: the kept fraction must be in (0, 1], got {value:g}")
    return value


def _ints(spec: str, body: str, n: int, what: str) -> list[int]:
    parts = [p.strip() for p in body.split(",")]
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"mask {spec!r}: {what} must be {n} integers (pixels) separated by commas") from None
    if len(vals) != n:
        raise ValueError(f"mask {spec!r}: expected {n} integers ({what}), got {len(vals)}")
    return vals


def parse_mask(spec: str, grid_shape: Sequence[int], generator: torch.Generator | None = None) -> Tensor:
    """A mask ``(N,)`` from a command-line string. All numbers are in cells (pixels), 0-based.

    - ``box`` - hide the VaMoH in-painting square (:func:`vamoh_box`);
    - ``box:x,y,w,h`` - hide the ``w x h`` box whose top-left cell is column ``x``, row ``y``
      (volumes ``(D, H, W)``: ``box:x,y,z,w,h,d``; x is always the last axis);
    - ``outpaint:x,y,w,h`` - keep only that box (volumes as above);
    - ``half`` / ``half:left|right|top|bottom`` - keep only the named half (``half`` = ``half:left``,
      i.e. the right half is hidden, as in the VaMoH code);
    - ``random:F`` - keep the fraction ``F`` of the points (``0 < F <= 1``), chosen at random;
      ``random:P%`` keeps ``P`` percent (``0 < P <= 100``). A bare number above 1 is refused (it
      used to mean a percentage), with the fraction and the ``%`` spelling to use instead.
    """
    shape = _shape(grid_shape)
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty mask spec; expected one of: {MASK_SPECS}")
    spec = spec.strip()
    kind, _, body = spec.partition(":")
    kind = kind.lower()
    nd = len(shape)
    if kind in ("box", "inpaint", "outpaint"):
        if kind != "outpaint" and not body:
            start, size = vamoh_box(shape)
            return inpaint_mask(shape, start, size)
        if not body:
            raise ValueError(f"mask {spec!r}: outpaint needs a box, e.g. outpaint:8,8,12,12 (x,y,w,h)")
        names = "xyz"[:nd] if nd <= 3 else None
        if names is None:
            raise ValueError(f"mask {spec!r}: boxes are supported on 1-, 2- and 3-D grids, got shape {shape}")
        what = ",".join(names) + "," + ",".join("whd"[:nd])
        vals = _ints(spec, body, 2 * nd, what)
        # given in x, y, z order (last axis first); grids are ij (first axis first)
        start, size = tuple(reversed(vals[:nd])), tuple(reversed(vals[nd:]))
        try:
            region = box_region(shape, start, size)
        except ValueError as err:
            raise ValueError(f"mask {spec!r} on a grid of shape {shape}: {err}") from None
        return region if kind == "outpaint" else ~region
    if kind == "half":
        return half_mask(shape, body.strip().lower() or "left")
    if kind == "random":
        return random_keep_mask(math.prod(shape), _kept_fraction(spec, body), generator)
    raise ValueError(f"unknown mask {spec!r}; expected one of: {MASK_SPECS}")

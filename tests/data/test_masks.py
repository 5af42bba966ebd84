"""Masks: point dropout statistics, exact box / half / out-paint regions, subsampling, CLI parsing."""

import numpy as np
import pytest
import torch

from inrgen.data import masks as M
from inrgen.data.points import PointSet


def test_point_dropout_keeps_expected_fraction_on_average():
    g = torch.Generator().manual_seed(0)
    n, alpha, draws = 400, 0.6, 2000
    kept, rates = [], []
    for _ in range(draws):
        m, p = M.point_dropout_mask(n, alpha, generator=g)
        kept.append(m.float().mean().item())
        rates.append(p)
    kept, rates = np.array(kept), np.array(rates)
    assert rates.min() >= 0.0 and rates.max() <= alpha
    # p ~ U(0, alpha): mean alpha / 2, variance alpha^2 / 12
    assert abs(rates.mean() - alpha / 2) < 0.015
    assert abs(rates.var() - alpha**2 / 12) < 0.004
    # E[kept] = 1 - alpha / 2, and given p the kept fraction is Binomial(n, 1 - p) / n
    assert abs(kept.mean() - (1 - alpha / 2)) < 0.015
    resid = kept - (1 - rates)
    assert abs(resid.mean()) < 0.003
    assert abs(resid.std() - np.sqrt(((1 - rates) * rates / n).mean())) < 0.003


def test_point_dropout_never_below_min_points():
    g = torch.Generator().manual_seed(1)
    counts = []
    for _ in range(600):
        m, p = M.point_dropout_mask(50, 1.0, min_points=30, generator=g)
        counts.append(int(m.sum()))
    counts = np.array(counts)
    assert counts.min() == 30  # the floor binds (p close to 1 happens) and is never crossed
    assert (counts >= 30).all()
    # more points than exist: everything is kept
    m, _ = M.point_dropout_mask(10, 1.0, min_points=25, generator=g)
    assert bool(m.all())


def test_point_dropout_alpha_zero_keeps_all_and_bad_alpha_raises():
    m, p = M.point_dropout_mask(7, 0.0)
    assert bool(m.all()) and p == 0.0
    with pytest.raises(ValueError, match="alpha"):
        M.point_dropout_mask(7, 1.5)


def test_point_dropout_on_batch_is_shared_and_respects_existing_masks():
    g = torch.Generator().manual_seed(2)
    ps = PointSet.from_image(torch.rand(4, 1, 10, 10))
    out = M.point_dropout(ps, 0.8, min_points=20, generator=g)
    assert (out.mask == out.mask[:1]).all()  # one mask for the whole batch (VaMoH code)
    assert out.shares_coords()
    # item 1 has only 15 observed points: it keeps all 15 (min(20, 15)); others keep >= 20
    own = torch.ones(4, 100, dtype=torch.bool)
    own[1, 15:] = False
    ps2 = ps.with_mask(own)
    for _ in range(50):
        out = M.point_dropout(ps2, 1.0, min_points=20, generator=g)
        assert not (out.mask & ~own).any()  # never re-observes a missing point
        counts = out.mask.sum(1)
        assert counts[1] == 15
        assert (counts[[0, 2, 3]] >= 20).all()


def test_box_masks_hide_exactly_the_box():
    H, W = 12, 17
    x, y, w, h = 3, 5, 6, 4
    m = M.parse_mask(f"box:{x},{y},{w},{h}", (H, W)).reshape(H, W).numpy()
    ref = np.ones((H, W), bool)
    ref[y : y + h, x : x + w] = False
    assert (m == ref).all()
    out = M.parse_mask(f"outpaint:{x},{y},{w},{h}", (H, W)).reshape(H, W).numpy()
    assert (out == ~ref).all() and out.sum() == w * h
    # volumes: x, y, z = last, middle, first axis
    D = 6
    m3 = M.parse_mask("box:1,2,3,4,2,2", (D, H, W)).reshape(D, H, W).numpy()
    ref3 = np.ones((D, H, W), bool)
    ref3[3:5, 2:4, 1:5] = False
    assert (m3 == ref3).all()


def test_masks_compose_with_pointset_and_hide_pixels_exactly():
    img = torch.rand(2, 3, 8, 9, dtype=torch.float64)
    ps = PointSet.from_image(img)
    keep = M.inpaint_mask((8, 9), start=(2, 3), size=(3, 4))
    masked = ps.with_mask(keep).to_grid(fill=float("nan"))
    hole = torch.zeros(8, 9, dtype=torch.bool)
    hole[2:5, 3:7] = True
    assert torch.isnan(masked[:, :, hole]).all()
    assert torch.equal(masked[:, :, ~hole], img[:, :, ~hole])


@pytest.mark.parametrize(
    "keep, rows, cols",
    [
        ("left", slice(None), slice(0, 3)),
        ("right", slice(None), slice(4, 7)),
        ("top", slice(0, 2), slice(None)),
        ("bottom", slice(3, 5), slice(None)),
    ],
)
def test_half_masks_keep_exactly_one_half(keep, rows, cols):
    H, W = 5, 7  # odd sizes: the middle row / column is hidden
    m = M.parse_mask(f"half:{keep}", (H, W)).reshape(H, W).numpy()
    ref = np.zeros((H, W), bool)
    ref[rows, cols] = True
    assert (m == ref).all()


def test_half_default_is_vamoh_left_half_and_vamoh_box():
    m = M.parse_mask("half", (28, 28)).reshape(28, 28)
    assert m[:, :14].all() and not m[:, 14:].any()
    assert M.vamoh_box((64, 64)) == ((5, 5), (21, 21))
    assert M.vamoh_box((28, 28)) == ((5, 5), (9, 9))
    m = M.parse_mask("box", (28, 28)).reshape(28, 28)
    assert (~m).sum() == 81 and not m[5:14, 5:14].any()


def test_random_keep_and_subsample():
    g = torch.Generator().manual_seed(3)
    m = M.parse_mask("random:0.25", (10, 10), generator=g)
    assert int(m.sum()) == 25
    idx = M.random_subsample(3, 50, ratio=0.1, generator=g)
    assert idx.shape == (3, 5)
    for row in idx:
        assert len(set(row.tolist())) == 5
    ps = PointSet.from_image(torch.rand(3, 2, 5, 10))
    sub = ps.gather(idx)
    for b in range(3):
        assert torch.equal(sub.values[b], ps.values[b, idx[b]])
        assert torch.equal(sub.coords[b], ps.coords[b, idx[b]])
    # every point is equally likely: frequencies over many draws are flat
    counts = torch.zeros(50)
    for _ in range(400):
        counts += torch.bincount(M.random_subsample(1, 50, count=10, generator=g)[0], minlength=50)
    freq = counts / 400
    assert (freq - 0.2).abs().max() < 0.1


@pytest.mark.parametrize(
    "spec, msg",
    [
        ("box:1,2,3", "expected 4 integers"),
        ("box:0,0,30,2", "does not fit"),
        ("box:a,b,c,d", "integers"),
        ("outpaint", "needs a box"),
        ("half:middle", "keep must be one of"),
        ("random:0", r"fraction must be in \(0, 1\]"),
        ("ellipse:3", "unknown mask"),
        ("", "empty mask"),
    ],
)
def test_parse_mask_errors_are_clear(spec, msg):
    with pytest.raises(ValueError, match=msg):
        M.parse_mask(spec, (10, 10))


def _is_rectangle(m):
    r, c = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
    return len(r) > 0 and bool(m[r.min() : r.max() + 1, c.min() : c.max() + 1].all()) and int(m.sum()) == (
        len(r) * len(c)
    )


def test_region_dropout_mask_kinds_and_floor():
    g = torch.Generator().manual_seed(0)
    halves = [M.half_mask((12, 16), side).view(12, 16) for side in ("left", "right", "top", "bottom")]
    kinds = set()
    for _ in range(60):
        keep = M.region_dropout_mask((12, 16), min_points=40, generator=g).view(12, 16)
        assert int(keep.sum()) >= 40 and not bool(keep.all())
        if any(torch.equal(keep, h) for h in halves):
            kinds.add("half")
        elif _is_rectangle(~keep):
            kinds.add("box hidden")
        else:
            assert _is_rectangle(keep), "a region mask is a half, a hidden box or a kept box"
            kinds.add("box kept")
    assert kinds == {"half", "box hidden", "box kept"}
    a = M.region_dropout_mask((9, 9), generator=torch.Generator().manual_seed(3))
    b = M.region_dropout_mask((9, 9), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "spec, kept",
    [
        ("random:0.25", 25),
        ("random:1", 100),
        ("random:25%", 25),
        ("random: 0.9 ", 90),
        ("random:100%", 100),
        ("random:0.5%", 1),
    ],
)
def test_random_mask_is_a_fraction_or_an_explicit_percentage(spec, kept):
    m = M.parse_mask(spec, (10, 10), generator=torch.Generator().manual_seed(0))
    assert m.shape == (100,) and m.dtype == torch.bool and int(m.sum()) == kept


def test_random_mask_0_9_keeps_ninety_percent_not_one():
    # issue 12: random:0.9 used to mean 0.9 percent (7 of 784 pixels)
    assert int(M.parse_mask("random:0.9", (28, 28)).sum()) == round(0.9 * 784)


@pytest.mark.parametrize(
    "spec, msg",
    [
        ("random:25", r"not a percentage; use random:0\.25 or random:25%"),
        ("random:150", r"fraction must be in \(0, 1\]"),
        ("random:150%", r"percentage must be in \(0, 100\]"),
        ("random:0%", r"percentage must be in \(0, 100\]"),
        ("random:-0.5", r"fraction must be in \(0, 1\]"),
        ("random:nan", r"fraction must be in \(0, 1\]"),
        ("random:", "kept fraction of the points, e.g. random:0.25"),
        ("random:half", "kept fraction of the points, e.g. random:0.25"),
    ],
)
def test_random_mask_refuses_percentages_without_percent_sign(spec, msg):
    with pytest.raises(ValueError, match=msg):
        M.parse_mask(spec, (10, 10))


def test_mask_specs_help_says_fraction():
    assert "random:F" in M.MASK_SPECS and "(0, 1]" in M.MASK_SPECS and "random:25%" in M.MASK_SPECS

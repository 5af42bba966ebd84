"""PointConv encoder: FPS, kNN, the layer equation, shared vs per-item paths, masks and shrinking."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inrgen.data.points import PointSet
from inrgen.nn.fourier import GaussianFourierFeatures
from inrgen.nn.pointconv import PointConv, PointConvEncoder, farthest_point_sample, knn


def _reference_fps(points: np.ndarray, s: int) -> list[int]:
    """Textbook farthest-point sampling from index 0 (float64, one item)."""
    chosen = [0]
    d = ((points - points[0]) ** 2).sum(-1)
    for _ in range(s - 1):
        d[chosen] = -np.inf
        nxt = int(np.argmax(d))
        chosen.append(nxt)
        d = np.minimum(d, ((points - points[nxt]) ** 2).sum(-1))
    return chosen


def test_fps_matches_reference_is_distinct_and_deterministic():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(4, 300, 3, generator=g, dtype=torch.float64)
    idx, ok = farthest_point_sample(pts, 40)
    idx2, _ = farthest_point_sample(pts, 40)
    assert torch.equal(idx, idx2) and bool(ok.all())
    for b in range(4):
        assert idx[b].unique().numel() == 40
        assert idx[b].tolist() == _reference_fps(pts[b].numpy(), 40)
        # the defining property: every pick is the farthest point from the ones chosen before it
        for i in range(1, 40):
            prev = pts[b, idx[b, :i]]
            dmin = torch.cdist(pts[b], prev).min(1).values
            assert float(dmin[idx[b, i]]) == pytest.approx(float(dmin.max()), rel=0, abs=1e-12)


def test_fps_respects_masks_and_pads_items_with_too_few_points():
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(3, 50, 2, generator=g, dtype=torch.float64)
    mask = torch.rand(3, 50, generator=g) > 0.5
    mask[2] = False
    mask[2, [3, 7, 9]] = True  # only 3 allowed points
    idx, ok = farthest_point_sample(pts, 8, mask)
    for b in range(2):
        assert bool(mask[b, idx[b]].all()) and idx[b].unique().numel() == 8
        first = int(mask[b].nonzero()[0])
        assert int(idx[b, 0]) == first  # deterministic start: the first observed point
        # same result as FPS on the observed points alone
        keep = mask[b].nonzero().flatten()
        sub, _ = farthest_point_sample(pts[b : b + 1, keep], 8)
        assert torch.equal(keep[sub[0]], idx[b])
    assert idx[2, :3].tolist() == [3, 7, 9]  # all of them, in index order
    assert ok[2].tolist() == [True] * 3 + [False] * 5


def test_knn_matches_brute_force_and_ignores_masked_points():
    g = torch.Generator().manual_seed(2)
    pts = torch.rand(2, 200, 3, generator=g, dtype=torch.float64)
    query = pts[:, :30]
    idx, ok = knn(query, pts, 7)
    d = ((query.unsqueeze(2) - pts.unsqueeze(1)) ** 2).sum(-1)
    ref = d.argsort(-1)[..., :7]
    assert torch.equal(idx, ref) and bool(ok.all())
    assert torch.equal(idx[..., 0], torch.arange(30).expand(2, -1))  # a centroid is its own nearest point
    mask = torch.rand(2, 200, generator=g) > 0.3
    idx_m, ok_m = knn(query, pts, 7, mask)
    ref_m = d.masked_fill(~mask.unsqueeze(1), float("inf")).argsort(-1)[..., :7]
    assert torch.equal(idx_m, ref_m) and bool(ok_m.all())
    # more neighbours than allowed points: the extra slots are flagged invalid
    few = torch.zeros(2, 200, dtype=torch.bool)
    few[:, :3] = True
    _, ok_f = knn(query, pts, 5, few)
    assert ok_f.sum(-1).eq(3).all()


def test_pointconv_layer_equals_per_centroid_formula():
    torch.manual_seed(0)
    layer = PointConv(3, 5, offset_dim=2, weightnet_hidden=(4, 6)).double()
    feats = torch.randn(2, 7, 4, 3, dtype=torch.float64)  # (b, s, k, c_in)
    offsets = torch.randn(2, 7, 4, 2, dtype=torch.float64)
    out = layer(feats, offsets)
    lin0, lin1 = layer.weightnet[0], layer.weightnet[2]
    for b in range(2):
        for s in range(7):
            acc = torch.zeros(3, 6, dtype=torch.float64)
            for j in range(4):
                w = F.leaky_relu(lin1(F.leaky_relu(lin0(offsets[b, s, j]), 0.2)), 0.2)
                acc += torch.outer(feats[b, s, j], w)
            ref = layer.linear(acc.flatten())
            torch.testing.assert_close(out[b, s], ref, rtol=1e-12, atol=1e-12)


def _encoder(**kw) -> PointConvEncoder:
    args = dict(
        in_channels=2, coord_dim=2, dim_z=4, centroids=(20, 6, 3), neighbors=(5, 4, 3), out_channels=(6, 5, 4)
    )
    args.update(kw)
    return PointConvEncoder(**args).double()


@pytest.mark.parametrize("fourier", [False, True])
def test_shared_path_equals_per_item_path(fourier):
    torch.manual_seed(0)
    kw = {}
    if fourier:
        kw = dict(position_encoding=GaussianFourierFeatures(2, 8, 2.0).double(), position_dim=16)
    enc = _encoder(**kw)
    coords = torch.rand(1, 60, 2, dtype=torch.float64).expand(5, -1, -1)
    values = torch.rand(5, 60, 2, dtype=torch.float64)
    mask = (torch.rand(60) > 0.3).expand(5, -1)
    for m in (None, mask):
        ps = PointSet(coords, values, m)
        assert ps.shares_coords()
        q_shared = enc(ps)
        q_item = enc(ps, shared=False)
        torch.testing.assert_close(q_shared.mean, q_item.mean, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(q_shared.stddev, q_item.stddev, rtol=1e-10, atol=1e-12)


def test_per_item_encoding_does_not_depend_on_the_rest_of_the_batch():
    torch.manual_seed(1)
    enc = _encoder()
    coords = torch.rand(4, 50, 2, dtype=torch.float64)
    values = torch.rand(4, 50, 2, dtype=torch.float64)
    mask = torch.rand(4, 50) > 0.4
    mask[3, 12:] = False  # item 3 has at most 12 points: fewer than the first layer's 20 centroids
    ps = PointSet(coords, values, mask)
    with pytest.warns(UserWarning, match="shrink"):
        q = enc(ps)
    for b in range(4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q_b = enc(ps[b])
        torch.testing.assert_close(q.mean[b], q_b.mean[0], rtol=1e-10, atol=1e-12)


def test_masked_points_are_never_seen():
    torch.manual_seed(2)
    enc = _encoder()
    coords = torch.rand(3, 80, 2, dtype=torch.float64)
    values = torch.rand(3, 80, 2, dtype=torch.float64)
    mask = torch.rand(3, 80) > 0.5
    q1 = enc(PointSet(coords, values, mask))
    values2 = torch.where(mask.unsqueeze(-1), values, torch.full_like(values, 1e6))
    q2 = enc(PointSet(coords, values2, mask))
    torch.testing.assert_close(q1.mean, q2.mean, rtol=0, atol=0)
    # and equal to encoding only the observed points of each item
    for b in range(3):
        keep = mask[b].nonzero().flatten()
        qb = enc(PointSet(coords[b : b + 1, keep], values[b : b + 1, keep]))
        torch.testing.assert_close(q1.mean[b], qb.mean[0], rtol=1e-10, atol=1e-12)


def test_too_few_points_shrinks_once_then_errors():
    enc = _encoder()
    coords = torch.rand(2, 10, 2, dtype=torch.float64)
    values = torch.rand(2, 10, 2, dtype=torch.float64)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        q = enc(PointSet(coords, values))
        enc(PointSet(coords[:, :7], values[:, :7]))  # shrinks again: no second warning
    assert len([w for w in rec if "shrink" in str(w.message)]) == 1
    assert bool(torch.isfinite(q.mean).all())
    with pytest.raises(ValueError, match="needs at least 3"):
        enc(PointSet(coords[:, :2], values[:, :2]))
    with pytest.raises(ValueError, match="3 channels"):
        _encoder(in_channels=3)(PointSet(coords, values))
    with pytest.raises(ValueError, match="fewest centroids"):
        _encoder(centroids=(4, 2, 3))


def test_geometry_is_cached_for_repeated_coordinates():
    torch.manual_seed(3)
    enc = _encoder()
    ps = PointSet.from_image(torch.rand(3, 2, 8, 8, dtype=torch.float64))
    q1 = enc(ps)
    plan = enc._cache[1]
    q2 = enc(ps.with_values(ps.values.flip(0)))
    assert enc._cache[1] is plan  # not recomputed
    torch.testing.assert_close(q2.mean, q1.mean.flip(0), rtol=1e-12, atol=1e-12)
    enc._cache = None
    torch.testing.assert_close(enc(ps).mean, q1.mean, rtol=0, atol=0)


def test_posterior_is_a_diagonal_gaussian_distribution():
    enc = _encoder()
    q = enc(PointSet.from_image(torch.rand(3, 2, 8, 8, dtype=torch.float64)))
    assert q.event_shape == (4,) and q.batch_shape == (3,)
    z = q.rsample((5,))
    ref = torch.distributions.Normal(q.mean, q.stddev).log_prob(z).sum(-1)
    torch.testing.assert_close(q.log_prob(z), ref)
    assert bool((q.stddev <= enc.max_sigma).all())


def test_released_code_encoder_parameter_count():
    """PolyMNIST encoder of the released code (on gamma(x), linear weight net): 73,184 parameters."""
    gamma = GaussianFourierFeatures(2, 128, 2.0)
    enc = PointConvEncoder(
        3,
        2,
        16,
        (196, 49, 25),
        (9, 9, 9),
        (32, 32, 32),
        (16, 16),
        weightnet_activation="identity",
        position_encoding=gamma,
        position_dim=256,
    )
    weightnet = (256 * 16 + 16) + (16 * 16 + 16)
    expected = 3 * weightnet + (3 * 16 * 32 + 32) + 2 * (32 * 16 * 32 + 32) + (25 * 32 * 16 * 2 + 32)
    assert sum(p.numel() for p in enc.parameters()) == expected == 73_184  # "73k" in the notes


def _grid_encoder(**kw):
    torch.manual_seed(0)
    return PointConvEncoder(1, 2, 4, centroids=(64, 16, 9), neighbors=(9, 9, 4), out_channels=(6, 6, 5),
                            last_centroids="grid", **kw).double()  # fmt: skip


def test_grid_last_centroids_are_fixed_whatever_the_mask():
    enc = _grid_encoder()
    ps = PointSet.from_image(torch.rand(2, 1, 16, 16, dtype=torch.float64))
    expected = torch.tensor([[-2 / 3, -2 / 3], [-2 / 3, 0.0], [0.0, 0.0]], dtype=torch.float64)
    for keep in (torch.ones(256, dtype=torch.bool), torch.arange(256) % 16 < 8, torch.rand(256) > 0.6):
        plan = enc.plan(enc.positions(ps.coords[:1, keep]), None)
        last = plan[-1]
        assert last.centroid_pos is not None and last.centroid_pos.shape == (1, 9, 2)
        torch.testing.assert_close(last.centroid_pos[0, [0, 1, 4]], expected)  # a 3x3 grid of cell centres
        # each slot's neighbours are the previous stage's centroids nearest to that fixed position
        prev_pos = enc.positions(ps.coords[:1, keep])[0]
        for nb in plan[:-1]:  # the centroids of the stages before the last, chained
            prev_pos = prev_pos[nb.centroid_idx[0]]
        d = torch.cdist(last.centroid_pos[0], prev_pos)
        torch.testing.assert_close(d.gather(1, last.nbr_idx[0]), d.sort(1).values[:, :4])


def test_grid_last_centroids_shared_equals_per_item_and_trains():
    enc = _grid_encoder()
    ps = PointSet.from_image(torch.rand(3, 1, 16, 16, dtype=torch.float64))
    q1, q2 = enc(ps), enc(ps, shared=False)
    torch.testing.assert_close(q1.mean, q2.mean)
    q1.mean.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())
    with pytest.raises(ValueError, match="r\\^2 centroids"):
        PointConvEncoder(1, 2, 4, centroids=(64, 16, 10), neighbors=(9, 9, 4), out_channels=(6, 6, 5),
                         last_centroids="grid")  # fmt: skip

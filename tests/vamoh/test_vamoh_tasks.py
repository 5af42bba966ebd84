"""VaMoH through the model-agnostic tasks: images, voxels (occupancy) and lat-lon fields on the sphere."""

from __future__ import annotations

import math

import torch
from vamoh_tiny import tiny_model

from inrgen import coords as C
from inrgen.data.masks import inpaint_mask, vamoh_box
from inrgen.data.points import PointSet
from inrgen.models.vamoh import PointConvConfig
from inrgen.tasks import complete, generate, reconstruct, segment, superresolve


def _digits(b: int = 2, n: int = 9, align: str = "center") -> PointSet:
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (b, 1, n, n), generator=g).double() / 255
    return PointSet.from_image(img, align=align)


def test_superresolution_contains_the_reconstruction_on_corner_grids():
    model = tiny_model()
    ps = _digits(align="corner")
    rec = reconstruct(model, ps, chunk_size=20)
    sr, shape = superresolve(model, ps, factor=2, chunk_size=50)
    assert shape == (17, 17)
    on_grid = sr.mean.reshape(2, 17, 17, 1)[:, ::2, ::2].reshape(2, 81, 1)
    torch.testing.assert_close(on_grid, rec.mean, rtol=1e-12, atol=1e-14)
    frac, shape_f = superresolve(model, ps, factor=1.5)
    assert shape_f == (13, 13) and bool(((frac.mean > 0) & (frac.mean < 1)).all())


def test_generation_at_any_resolution_shares_the_latent():
    model = tiny_model()
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    coarse = generate(model, 3, shape=(5, 5), align="corner", generator=g())
    fine = generate(model, 3, shape=(9, 9), align="corner", generator=g(), chunk_size=16)
    on_grid = fine.mean.reshape(3, 9, 9, 1)[:, ::2, ::2].reshape(3, 25, 1)
    torch.testing.assert_close(on_grid, coarse.mean, rtol=1e-12, atol=1e-14)
    other = generate(model, 3, shape=(5, 5), align="corner", generator=torch.Generator().manual_seed(8))
    assert not torch.allclose(other.mean, coarse.mean)


def test_completion_never_sees_the_hidden_values():
    model = tiny_model()
    ps = _digits()
    start, size = vamoh_box((9, 9))
    keep = inpaint_mask((9, 9), start, size)
    a = complete(model, ps, keep)
    scrambled = ps.with_values(torch.where(keep[None, :, None], ps.values, 1 - ps.values))
    b = complete(model, scrambled, keep)
    torch.testing.assert_close(a.mean, b.mean, rtol=0, atol=0)
    assert a.mean.shape == (2, 81, 1)
    full = reconstruct(model, ps)
    assert not torch.allclose(a.mean, full.mean)  # the hidden square did change the posterior


def test_segmentation_and_entropy_maps():
    model = tiny_model()
    ps = _digits()
    labels, entropy, pred = segment(model, ps)
    assert torch.equal(labels, pred.weights.argmax(-1))
    assert bool((entropy >= 0).all()) and bool((entropy <= math.log(3) + 1e-12).all())
    _, _, prior_pred = segment(model, ps, posterior=False)
    assert not torch.allclose(prior_pred.weights, pred.weights)  # posterior pi~ sees the values


def test_voxels_occupancy_probability():
    model = tiny_model(coord_dim=3, likelihood="bernoulli", seed=1)
    g = torch.Generator().manual_seed(0)
    vol = (torch.rand(2, 1, 6, 6, 6, generator=g) > 0.6).double()
    ps = PointSet.from_volume(vol)
    pred = reconstruct(model, ps, chunk_size=100)
    assert pred.mean.shape == (2, 216, 1)
    assert bool(((pred.mean > 0) & (pred.mean < 1)).all())
    # a mixture of Bernoullis is a Bernoulli: its variance is p (1 - p)
    torch.testing.assert_close(pred.variance, pred.mean * (1 - pred.mean), rtol=1e-10, atol=1e-12)
    sr, shape = superresolve(model, ps, factor=2, chunk_size=1000)
    assert shape == (12, 12, 12) and bool(((sr.mean > 0) & (sr.mean < 1)).all())


def test_fields_on_the_sphere_with_missing_values():
    enc = PointConvConfig(centroids=(16, 4), neighbors=(6, 3), out_channels=(4, 4), weightnet_hidden=(4,))
    model = tiny_model(coord_dim=3, likelihood="continuous_bernoulli", encoder=enc, seed=2)
    lat, lon = C.equiangular_latlon(7, 12)
    g = torch.Generator().manual_seed(0)
    field = torch.rand(2, 1, 7, 12, generator=g, dtype=torch.float64)
    field[0, 0, 2:4, 3:6] = float("nan")  # land: unobserved
    ps = PointSet.from_latlon(field, lat, lon)
    assert not ps.shares_coords()  # item 0 has holes: the per-item encoder path
    pred = reconstruct(model, ps, chunk_size=30)
    assert pred.mean.shape == (2, 84, 1)
    assert bool(((pred.mean > 0) & (pred.mean < 1)).all()) and bool((pred.variance > 0).all())
    # generation on a finer lat-lon grid: points on S^2
    lat2, lon2 = C.equiangular_latlon(13, 24)
    xyz = C.latlon_grid(lat2, lon2, dtype=torch.float64)
    gen = generate(model, 2, coords=xyz, generator=torch.Generator().manual_seed(0))
    assert gen.mean.shape == (2, 13 * 24, 1) and bool(torch.isfinite(gen.mean).all())

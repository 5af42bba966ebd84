"""PointSet round trips, batching and validation."""

import pytest
import torch

from inrgen import PointSet, PointSetPair
from inrgen import coords as C
from inrgen.data.points import collate


def test_image_round_trip_bit_exact_non_square():
    img = torch.rand(3, 2, 7, 5)
    ps = PointSet.from_image(img)
    assert ps.grid_shape == (7, 5) and ps.kind == "grid"
    assert torch.equal(ps.to_image(), img)
    # coordinates of pixel (i, j) are the grid's
    assert torch.equal(ps.coords[1, 2 * 5 + 3], C.grid((7, 5))[13])
    # value of pixel (i, j)
    assert torch.equal(ps.values[2, 2 * 5 + 3], img[2, :, 2, 3])


def test_uint8_image_and_volume_round_trip():
    img = torch.randint(0, 256, (1, 4, 4), dtype=torch.uint8)
    # uint8 pixels are converted to [0, 1] (issue 12: never silently 0-255 values)
    back = PointSet.from_image(img).to_image()
    assert back.dtype == torch.float32 and torch.equal((back * 255).round().to(torch.uint8), img[None])
    vol = (torch.rand(2, 1, 3, 4, 5) > 0.5).float()
    ps = PointSet.from_volume(vol)
    assert ps.coords.shape == (2, 60, 3)
    assert torch.equal(ps.to_volume(), vol)


def test_nan_values_become_unobserved():
    img = torch.rand(1, 1, 3, 3)
    img[0, 0, 1, 2] = float("nan")
    ps = PointSet.from_image(img)
    assert ps.mask is not None and ps.mask.sum() == 8 and not ps.mask[0, 5]
    assert torch.isfinite(ps.values).all()
    back = ps.to_image(fill=float("nan"))
    assert torch.isnan(back[0, 0, 1, 2]) and torch.equal(back.nan_to_num(0), img.nan_to_num(0))


def test_latlon_fields():
    lat, lon = C.equiangular_latlon(5, 8)
    f = torch.rand(2, 1, 5, 8)
    f[0, 0, 0, :] = float("nan")  # a masked row
    ps = PointSet.from_latlon(f, lat, lon)
    assert ps.kind == "sphere" and ps.coord_dim == 3
    assert torch.allclose(ps.coords.norm(dim=-1), torch.ones(2, 40))
    assert ps.num_observed().tolist() == [32, 40]
    lat2, lon2 = C.unit_to_latlon(ps.coords[0].double(), lon_range=360)
    assert torch.allclose(lat2.reshape(5, 8)[:, 0], lat, atol=1e-4)
    assert torch.allclose(ps.to_latlon()[1], f[1])


def test_views_round_trip_and_rays():
    imgs = torch.rand(1, 2, 3, 4, 6)
    c2w = torch.eye(4).expand(1, 2, 4, 4).clone()
    c2w[0, 1, :3, 3] = torch.tensor([0.0, 0.0, 2.0])
    K = C.intrinsics_from_fov(0.9, 6, 4)
    ps = PointSet.from_views(imgs, c2w, K)
    assert ps.grid_shape == (2, 4, 6) and ps.coord_dim == 6
    assert torch.equal(ps.to_views(), imgs)
    rays = C.ray_grid(c2w[0, 1].double(), K, 4, 6).float()
    assert torch.allclose(ps.coords[0, 24:], rays, atol=1e-6)


def test_collate_variable_sizes_pads_with_mask():
    a = PointSet(torch.rand(1, 5, 2), torch.rand(1, 5, 1))
    b = PointSet(torch.rand(1, 3, 2), torch.rand(1, 3, 1), mask=torch.tensor([[True, False, True]]))
    c = collate([a, b])
    assert c.coords.shape == (2, 5, 2)
    assert c.mask.tolist() == [[True] * 5, [True, False, True, False, False]]
    assert torch.equal(c.values[1, :3], b.values[0])
    assert torch.equal(c[1].coords[:, :3], b.coords)  # nothing truncated


def test_shares_coords():
    ps = PointSet.from_image(torch.rand(4, 1, 3, 3))
    assert ps.shares_coords()
    assert not ps.with_mask(torch.rand(4, 9) > 0.5).shares_coords()
    assert ps.with_mask(torch.rand(9) > 0.5).shares_coords()
    other = PointSet(torch.rand(2, 9, 2), torch.rand(2, 9, 1))
    assert not other.shares_coords()


def test_to_dtype_and_gather():
    ps = PointSet.from_image(torch.rand(2, 3, 4, 4)).to(dtype=torch.float64)
    assert ps.coords.dtype == torch.float64 and ps.values.dtype == torch.float64
    idx = torch.tensor([[0, 5], [15, 1]])
    g = ps.gather(idx)
    assert torch.equal(g.values[1, 0], ps.values[1, 15]) and g.grid_shape is None


def test_pair_collate():
    p = PointSetPair(
        PointSet(torch.rand(1, 4, 6), torch.rand(1, 4, 3)), PointSet(torch.rand(1, 2, 6), torch.rand(1, 2, 3))
    )
    q = collate([p, p])
    assert isinstance(q, PointSetPair) and q.batch_size == 2


@pytest.mark.parametrize(
    "coords, values, match",
    [
        (torch.rand(1, 4, 2), torch.rand(1, 5, 1), "different points"),
        (torch.rand(1, 4), torch.rand(1, 4, 1), r"\(B, N, d\)"),
        (torch.tensor([[[float("nan"), 0.0]]]), torch.rand(1, 1, 1), "NaN"),
    ],
)
def test_bad_input(coords, values, match):
    with pytest.raises(ValueError, match=match):
        PointSet(coords, values)


def test_bad_grid_and_mask():
    with pytest.raises(ValueError, match="grid_shape"):
        PointSet(torch.rand(1, 6, 2), torch.rand(1, 6, 1), grid_shape=(2, 2))
    with pytest.raises(ValueError, match="mask"):
        PointSet(torch.rand(1, 6, 2), torch.rand(1, 6, 1), mask=torch.ones(1, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="no grid_shape"):
        PointSet(torch.rand(1, 6, 2), torch.rand(1, 6, 1)).to_grid()
    ps = PointSet(torch.rand(1, 2, 2), torch.tensor([[[1.0], [float("inf")]]]))
    with pytest.raises(ValueError, match="NaN or inf"):
        ps.check_finite()

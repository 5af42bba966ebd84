"""Properties of the coordinate conventions (inrgen.coords)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from inrgen import coords as C


@given(st.integers(1, 40), st.integers(1, 40))
@settings(max_examples=40, deadline=None)
def test_grid_is_cell_centres_ij_row_major(h, w):
    g = C.grid((h, w), dtype=torch.float64)
    assert g.shape == (h * w, 2)
    # row-major: the first coordinate (row) changes slowest
    i = (torch.arange(h * w) // w).double()
    j = (torch.arange(h * w) % w).double()
    assert torch.allclose(g[:, 0], (2 * i + 1) / h - 1)
    assert torch.allclose(g[:, 1], (2 * j + 1) / w - 1)
    # centres lie strictly inside [-1, 1] and are symmetric about 0
    assert g.abs().max() < 1
    assert torch.allclose(g.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-12)


def test_grid_any_dimension():
    g = C.grid((2, 3, 4))
    assert g.shape == (24, 3)
    assert torch.allclose(g[1], torch.tensor([-0.5, -2 / 3, -0.25]))


@given(st.integers(2, 30), st.integers(2, 30), st.integers(1, 5))
@settings(max_examples=30, deadline=None)
def test_corner_superres_contains_original_exactly(h, w, s):
    orig = C.grid((h, w), "corner", dtype=torch.float64)
    fine, shape = C.superres_grid((h, w), s, "corner", dtype=torch.float64)
    assert shape == ((h - 1) * s + 1, (w - 1) * s + 1)
    fine = fine.reshape(*shape, 2)[::s, ::s].reshape(-1, 2)
    assert torch.equal(fine, orig)


def test_corner_factor_two_is_2n_minus_1():
    _, shape = C.superres_grid((28, 28), 2, "corner")
    assert shape == (55, 55)


def test_center_superres_real_factor_covers_same_domain():
    fine, shape = C.superres_grid((10, 7), 2.5)
    assert shape == (25, 18)
    # centre grids at any resolution are symmetric and inside [-1, 1]
    assert fine.abs().max() < 1 and torch.allclose(fine.mean(0), torch.zeros(2), atol=1e-6)
    # half a cell from the border at the new resolution
    assert math.isclose(fine[:, 0].min().item(), -1 + 1 / 25, rel_tol=1e-6)


def test_bad_grid_arguments():
    with pytest.raises(ValueError, match="factor"):
        C.superres_grid((4, 4), 0)
    with pytest.raises(ValueError, match=">= 1"):
        C.grid((0, 3))
    with pytest.raises(ValueError, match="align"):
        C.grid((3, 3), "edge")  # type: ignore[arg-type]


@given(st.floats(-90, 90, allow_nan=False), st.floats(-179.999, 179.999, allow_nan=False))
@settings(max_examples=100, deadline=None)
def test_sphere_unit_norm_and_round_trip(lat, lon):
    v = C.latlon_to_unit(torch.tensor(lat, dtype=torch.float64), torch.tensor(lon, dtype=torch.float64))
    assert abs(v.norm().item() - 1) < 1e-12
    lat2, lon2 = C.unit_to_latlon(v)
    assert abs(lat2.item() - lat) < 1e-8
    if abs(lat) < 89.999:  # longitude is undefined at the poles
        assert abs(((lon2.item() - lon + 180) % 360) - 180) < 1e-7


def test_sphere_known_points_and_errors():
    v = C.latlon_to_unit(torch.tensor([0.0, 90.0, 0.0]), torch.tensor([0.0, 0.0, 90.0]))
    assert torch.allclose(v, torch.tensor([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]]), atol=1e-7)
    with pytest.raises(ValueError, match="latitude"):
        C.latlon_to_unit(torch.tensor([95.0]), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="NaN"):
        C.latlon_to_unit(torch.tensor([float("nan")]), torch.tensor([0.0]))
    lat, lon = C.equiangular_latlon(46, 90)
    assert lat[0] == 90 and lat[-1] == -90 and lon[-1] == 356


def _look_at(eye, target, up=(0.0, 0.0, 1.0)):
    eye, target, up = (torch.tensor(x, dtype=torch.float64) for x in (eye, target, up))
    fwd = target - eye
    fwd = fwd / fwd.norm()
    right = torch.linalg.cross(fwd, up)
    right = right / right.norm()
    true_up = torch.linalg.cross(right, fwd)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, true_up, -fwd, eye  # OpenGL: looks along -z
    return c2w


def test_rays_of_known_camera_hit_known_point():
    c2w = _look_at((3.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    K = C.intrinsics_from_fov(0.8, 33, 33)
    o, d = C.camera_rays(c2w, K, 33, 33)
    # the centre pixel's ray passes through the look-at target (the origin)
    oc, dc = o[16, 16], d[16, 16]
    t = -(oc @ dc)
    assert torch.allclose(oc + t * dc, torch.zeros(3, dtype=torch.float64), atol=1e-10)
    # a world point projects to a pixel whose ray passes through it
    p = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    w2c = torch.linalg.inv(c2w)
    pc = w2c[:3, :3] @ p + w2c[:3, 3]
    u = K[0, 0] * pc[0] / -pc[2] + K[0, 2]
    v = -K[1, 1] * pc[1] / -pc[2] + K[1, 2]
    K2 = K.clone()
    K2[0, 2] -= u - (int(u) + 0.5)  # shift the principal point so the point falls on a pixel centre
    K2[1, 2] -= v - (int(v) + 0.5)
    o2, d2 = C.camera_rays(c2w, K2, 33, 33)
    r_o, r_d = o2[int(v), int(u)], d2[int(v), int(u)]
    t = (p - r_o) @ r_d
    assert torch.allclose(r_o + t * r_d, p, atol=1e-9)
    # unit directions
    assert torch.allclose(d.norm(dim=-1), torch.ones(33, 33, dtype=torch.float64))


def test_opencv_convention_flips_y_and_z():
    c2w = torch.eye(4, dtype=torch.float64)
    K = C.intrinsics_from_fov(1.0, 4, 4)
    _, d_gl = C.camera_rays(c2w, K, 4, 4, "opengl")
    _, d_cv = C.camera_rays(c2w, K, 4, 4, "opencv")
    assert torch.allclose(d_gl[..., 0], d_cv[..., 0])
    assert torch.allclose(d_gl[..., 1:], -d_cv[..., 1:])


@given(st.floats(-5, 5), st.integers(0, 1000))
@settings(max_examples=30, deadline=None)
def test_plucker_orthogonal_and_invariant_along_ray(s, seed):
    g = torch.Generator().manual_seed(seed)
    o = torch.randn(10, 3, generator=g, dtype=torch.float64)
    d = torch.randn(10, 3, generator=g, dtype=torch.float64)
    p = C.plucker(o, d)
    dn, m = p[:, :3], p[:, 3:]
    assert torch.allclose(dn.norm(dim=-1), torch.ones(10, dtype=torch.float64))
    assert torch.allclose((dn * m).sum(-1), torch.zeros(10, dtype=torch.float64), atol=1e-10)
    p2 = C.plucker(o + s * d, 3.0 * d)  # slide the origin, rescale the direction
    assert torch.allclose(p, p2, atol=1e-9)


def test_ray_grid_matches_camera_rays():
    c2w = _look_at((0.0, -4.0, 1.0), (0.0, 0.0, 0.0))
    K = C.intrinsics_from_fov(0.7, 8, 6)
    rg = C.ray_grid(c2w, K, 6, 8)
    o, d = C.camera_rays(c2w, K, 6, 8)
    assert rg.shape == (48, 6)
    assert torch.allclose(rg[13], C.plucker(o[1, 5], d[1, 5]))


def test_bad_camera_inputs():
    with pytest.raises(ValueError, match="c2w"):
        C.camera_rays(torch.eye(3), torch.eye(3), 4, 4)
    with pytest.raises(ValueError, match="NaN"):
        C.camera_rays(torch.full((4, 4), float("nan")), torch.eye(3), 4, 4)
    with pytest.raises(ValueError, match="camera_angle_x"):
        C.intrinsics_from_fov(4.0, 10)

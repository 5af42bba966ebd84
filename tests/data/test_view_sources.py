"""Novel views: renders agree with their cameras (rays from transforms.json hit the known object)."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from inrgen import coords as C
from inrgen.data import synthetic as S
from inrgen.data.datasets import views
from inrgen.data.points import collate

RED = [0.9, 0.2, 0.1]
RADIUS = 0.6


@pytest.fixture(scope="module")
def sphere_views(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    scene = [{"type": "sphere", "center": [0.0, 0.0, 0.0], "radius": RADIUS, "color": RED}]
    S.write_views(root, n_views=5, size=33, seed=0, category="balls", scenes=[scene] * 3)
    return root


def _rays_from_json(fov, c2w, size):
    """Independent ray construction: pixel centres, OpenGL camera (look along -z), focal from fov."""
    f = 0.5 * size / math.tan(0.5 * fov)
    j, i = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    d = np.stack([(j - size / 2) / f, -(i - size / 2) / f, -np.ones_like(j)], -1) @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return c2w[:3, 3], d


def test_rays_from_transforms_hit_the_sphere_exactly_where_the_render_is_opaque(sphere_views):
    obj = sphere_views / "balls" / "obj0000"
    meta = json.loads((obj / "transforms.json").read_text())
    assert len(meta["frames"]) == 5
    for fr in meta["frames"]:
        c2w = np.array(fr["transform_matrix"])
        o, d = _rays_from_json(meta["camera_angle_x"], c2w, 33)
        # distance of the line o + t d from the centre (origin) below the radius <=> hit (t > 0 here)
        dist = np.linalg.norm(np.cross(np.broadcast_to(o, d.shape), d), axis=-1)
        rgba = np.asarray(Image.open(obj / (fr["file_path"].split("/")[-1] + ".png")))
        margin = np.abs(dist - RADIUS) > 1e-6
        assert np.array_equal((rgba[..., 3] == 255)[margin], (dist < RADIUS)[margin])
        assert set(np.unique(rgba[..., 3]).tolist()) <= {0, 255}
        # the ray through the centre pixel goes through the sphere's centre: the pixel is its colour
        assert dist[16, 16] < 1e-9
        assert np.abs(rgba[16, 16, :3] / 255.0 - RED).max() <= 0.5 / 255 + 1e-9
        # every camera looks at the origin from distance 4
        assert abs(np.linalg.norm(c2w[:3, 3]) - 4.0) < 1e-9


def test_generator_rays_equal_coords_camera_rays():
    c2w = S.look_at([1.0, -3.0, 2.0])
    o, d = S._rays(c2w, 0.7, 7, 5)
    K = C.intrinsics_from_fov(0.7, 7, 5)
    o2, d2 = C.camera_rays(torch.from_numpy(c2w), K, 5, 7)
    assert np.allclose(o, o2.reshape(-1, 3).numpy(), atol=1e-12)
    assert np.allclose(d, d2.reshape(-1, 3).numpy(), atol=1e-12)
    # look_at: the camera's -z axis points at the target, and the basis is orthonormal
    R = c2w[:3, :3]
    assert np.allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.allclose(-R[:, 2], -c2w[:3, 3] / np.linalg.norm(c2w[:3, 3]))


def test_views_dataset_items_are_plucker_rays_and_composited_pixels(sphere_views):
    ds = views.ViewsDataset(sphere_views, "all", n_support=2, n_query=1)
    pair = ds[0]
    ctx, tgt = pair.context, pair.target
    assert ctx.grid_shape == (2, 33, 33) and tgt.grid_shape == (1, 33, 33)
    assert ctx.kind == "rays" and ctx.coords.shape == (1, 2 * 33 * 33, 6)
    meta = json.loads((sphere_views / "balls" / "obj0000" / "transforms.json").read_text())
    poses = [np.array(f["transform_matrix"]) for f in meta["frames"]]
    for v in range(2):
        c2w = ctx.meta["c2w"][0, v].numpy()
        k = next(n for n, p in enumerate(poses) if np.array_equal(p, c2w))
        o, d = _rays_from_json(meta["camera_angle_x"], c2w, 33)
        pl = ctx.coords[0, v * 1089 : (v + 1) * 1089].double().numpy()
        assert np.allclose(pl[:, :3], d.reshape(-1, 3), atol=1e-6)
        assert np.allclose(pl[:, 3:], np.cross(o, d.reshape(-1, 3)), atol=1e-5)
        rgba = np.asarray(Image.open(sphere_views / "balls" / "obj0000" / f"r_{k}.png"), np.float32) / 255
        rgb = rgba[..., :3] * rgba[..., 3:] + 1 - rgba[..., 3:]
        assert np.allclose(ctx.to_views()[0, v].permute(1, 2, 0).numpy(), rgb, atol=1e-6)
    # the centre ray passes through the origin: its moment o x d vanishes
    assert ctx.coords[0, 16 * 33 + 16, 3:].abs().max() < 1e-5
    # support and query views are different views
    assert not any(torch.equal(ctx.meta["c2w"][0, v], tgt.meta["c2w"][0, 0]) for v in range(2))


def test_views_sampling_is_seeded_for_test_and_fresh_for_train(sphere_views):
    test = views.ViewsDataset(sphere_views, "test", n_support=1, n_query=1, repeat=4)
    assert len(test) == 4
    a, b = test[1], test[1]
    assert torch.equal(a.context.coords, b.context.coords)
    train = views.ViewsDataset(sphere_views, "train", n_support=1, n_query=1)
    draws = {tuple(train[0].context.meta["c2w"][0, 0, :3, 3].tolist()) for _ in range(12)}
    assert len(draws) > 1
    batch = collate([train[0], train[0]])
    assert batch.context.coords.shape == (2, 1089, 6) and batch.context.meta["c2w"].shape == (2, 1, 4, 4)


def test_views_resize_keeps_the_field_of_view(sphere_views):
    ds = views.ViewsDataset(sphere_views, "all", n_support=1, n_query=1, image_size=11)
    pair = ds[0]
    assert pair.context.grid_shape == (1, 11, 11)
    K = pair.context.meta["K"][0, 0]
    assert abs(K[0, 0].item() - 0.5 * 11 / math.tan(0.5 * S.CAMERA_ANGLE_X)) < 1e-9
    # the downsampled centre pixel still sees the sphere's centre, the corner the white background
    img = pair.context.to_views()[0, 0]
    assert (img[:, 5, 5] - torch.tensor(RED)).abs().max() < 0.03
    assert torch.equal(img[:, 0, 0], torch.ones(3))
    assert img.min() >= 0 and img.max() <= 1


def test_ipc_protocol_trains_on_views_0_to_24_and_scores_100_draws_per_test_object(tmp_path):
    root = S.write_views(tmp_path / "lf", n_objects=10, n_views=30, size=6, seed=1, category="lamps")
    opts = dict(category="lamps", n_support=3, n_query=1, train_views=(0, 25), eval_draws=100)
    train = views.ViewsDataset(root, "train", **opts)
    test = views.ViewsDataset(root, "test", **opts)

    def view_ids(ds, i):
        _, _, poses = ds._object(i % len(ds.ids))
        item = ds[i]
        c2w = torch.cat([item.context.meta["c2w"][0], item.target.meta["c2w"][0]]).numpy()
        return [int(np.flatnonzero(np.abs(poses - m).max((1, 2)) < 1e-9)[0]) for m in c2w]

    seen_train = {v for _ in range(30) for i in range(len(train)) for v in view_ids(train, i)}
    assert max(seen_train) == 24 and len(seen_train) > 20  # the first 25 views, and only those
    assert len(train) == len(train.ids)  # eval_draws leaves the train split alone
    assert len(test) == 100 * len(test.ids)
    draws = [tuple(view_ids(test, i)) for i in range(0, len(test), len(test.ids))]  # object 0's 100 items
    assert len(set(draws)) > 90  # 100 different (support, query) draws
    assert max(v for d in draws for v in d) >= 25  # test draws from every view
    assert draws == [tuple(view_ids(test, i)) for i in range(0, len(test), len(test.ids))]  # seeded

"""The source registry, generated caches, `inrgen datasets`, and the pictures of viz.py."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from inrgen import viz
from inrgen.data import catalog
from inrgen.data.datasets import (
    MODALITIES,
    SOURCES,
    DataSourceError,
    build_dataset,
    check_source,
    guess_source,
    modality_of,
    require_modality,
    source_available,
)
from inrgen.data.points import PointSet, PointSetPair, collate

TINY = {
    "images-synthetic": {"n": 10},
    "fashion-mnist-synthetic": {"n_train": 20, "n_test": 10},
    "shapes3d-synthetic": {"n": 10},
    "chairs-synthetic": {"n": 5, "resolution": 16},
    "primitives-synthetic": {"n": 5, "resolution": 16},
    "sphere-synthetic": {"n": 10, "n_lat": 6, "n_lon": 12},
    "era5-npz-synthetic": {"n_train": 4, "n_test": 2, "n_lat": 6, "n_lon": 12},
    "views-synthetic": {"n_objects": 3, "n_views": 3, "size": 8},
}
COORD_DIM = {"image": 2, "voxel": 3, "sphere": 3, "views": 6}


def test_every_source_is_described_consistently():
    assert set(TINY) == {n for n, s in SOURCES.items() if s.synthetic}
    for name, info in SOURCES.items():
        assert info.name == name and info.modality in MODALITIES
        assert info.coord_dim == COORD_DIM[info.modality]
        assert info.description and info.expects


@pytest.mark.parametrize("name", sorted(TINY))
def test_synthetic_sources_generate_once_and_items_match_their_description(name, tmp_path):
    info = SOURCES[name]
    gen = TINY[name]
    root = tmp_path / "d"
    ds = build_dataset(name, root=root, split="train", **gen)
    assert len(ds) > 0
    item = ds[0]
    sets = [item.context, item.target] if isinstance(item, PointSetPair) else [item]
    for ps in sets:
        assert isinstance(ps, PointSet) and ps.batch_size == 1
        assert ps.coord_dim == info.coord_dim and ps.channels == info.channels
        v = ps.values[ps.observed]
        assert v.min() >= 0 and v.max() <= 1
        if info.modality == "voxel":
            assert set(torch.unique(v).tolist()) <= {0.0, 1.0}
    assert ("labels" in sets[0].meta) == info.labels
    # the second build reads the cached files (no regeneration); other generator options are refused
    marker = root / ".inrgen-generated.json"
    stamp = marker.stat().st_mtime_ns
    build_dataset(name, root=root, split="train", **gen)
    assert marker.stat().st_mtime_ns == stamp
    with pytest.raises(DataSourceError, match="generated with"):
        build_dataset(name, root=root, split="train", **{**gen, "seed": 12345})
    data = root / info.generated_file if info.generated_file else root
    assert modality_of(data) == info.modality


def test_cache_folder_is_used_without_root(tmp_path, monkeypatch):
    monkeypatch.setenv("INRGEN_CACHE", str(tmp_path))
    ds = build_dataset("sphere-synthetic", split="test", n=10, n_lat=4, n_lon=8)
    assert len(ds) == 1
    folders = list(tmp_path.glob("sphere-synthetic-*"))
    assert len(folders) == 1 and (folders[0] / "t2m.nc").is_file()
    status, loc = catalog.source_status("sphere-synthetic")
    assert status == "generates"  # the default parameters are not generated yet


def test_availability_and_check_messages(tmp_path):
    assert source_available("mnist") and source_available("views-synthetic")
    assert not source_available("fashion-mnist", tmp_path)
    with pytest.raises(DataSourceError, match=r"train-images-idx3-ubyte\[\.gz\]"):
        check_source("fashion-mnist", tmp_path)
    with pytest.raises(DataSourceError, match="pass root"):
        check_source("shapes3d")
    with pytest.raises(KeyError, match="Did you mean mnist"):
        build_dataset("mnsit")


def test_modality_guessing_and_rejection(tmp_path):
    from inrgen.data import synthetic as S

    S.write_voxels(tmp_path / "vox", n=2, resolution=8)
    S.write_sphere_netcdf(tmp_path / "f.nc", n=2, n_lat=4, n_lon=8)
    S.write_fashion_idx(tmp_path / "fm", n_train=3, n_test=3)
    assert guess_source(tmp_path / "vox") == "voxels" and modality_of(tmp_path / "vox") == "voxel"
    assert guess_source(tmp_path / "f.nc") == "era5" and modality_of("era5") == "sphere"
    assert guess_source(tmp_path / "fm") == "fashion-mnist"
    with pytest.raises(DataSourceError, match="holds voxel data, but this model needs image"):
        require_modality(tmp_path / "vox", "image")
    with pytest.raises(DataSourceError, match="cannot tell"):
        guess_source(tmp_path / "nothing-here")


def test_dataloader_collates_items_with_labels():
    ds = build_dataset("mnist", split="test")
    loader = torch.utils.data.DataLoader(ds, batch_size=5, collate_fn=collate)
    batch = next(iter(loader))
    assert batch.values.shape == (5, 784, 1)
    assert batch.meta["labels"].tolist() == [ds[i].meta["labels"].item() for i in range(5)]
    assert batch.meta["index"].tolist() == list(range(5))


def test_datasets_command_lists_and_renders_exact_pixels(tmp_path, capsys):
    assert catalog.datasets_command([]) == 0
    out = capsys.readouterr().out
    for name in SOURCES:
        assert name in out
    png = tmp_path / "m.png"
    assert (
        catalog.datasets_command(["--render", "mnist", "--split", "test", "-n", "4", "--out", str(png)]) == 0
    )
    grid = np.asarray(Image.open(png))
    ds = build_dataset("mnist", split="test")
    picks = [round(k * (len(ds) - 1) / 3) for k in range(4)]
    scale = 3  # 28 px tiles are drawn 3x larger
    tile = 28 * scale
    assert grid.shape == (2 + 2 * (tile + 2), 2 + 2 * (tile + 2), 3)
    for k, i in enumerate(picks):
        r, c = divmod(k, 2)
        y, x = 2 + r * (tile + 2), 2 + c * (tile + 2)
        ref = ds[i].to_image()[0, 0].repeat_interleave(scale, 0).repeat_interleave(scale, 1)
        assert np.array_equal(grid[y : y + tile, x : x + tile, 0], (ref.numpy() * 255 + 0.5).astype(np.uint8))
    assert catalog.datasets_command(["--render", "nope", "--out", str(png)]) == 2
    assert "unknown data source" in capsys.readouterr().err


def test_parse_options():
    assert catalog.parse_options(["n=3", "views_range=(0, 25)", "category=chairs", "stats=None"]) == {
        "n": 3,
        "views_range": (0, 25),
        "category": "chairs",
        "stats": None,
    }
    with pytest.raises(ValueError, match="key=value"):
        catalog.parse_options(["oops"])


def test_image_grid_places_every_tile_and_writes_atomically(tmp_path):
    imgs = torch.rand(5, 3, 4, 6)
    path = viz.save_image_grid(imgs, tmp_path / "g.png", nrow=3, padding=1)
    arr = np.asarray(Image.open(path))
    assert arr.shape == (1 + 2 * 5, 1 + 3 * 7, 3)
    for k in range(5):
        r, c = divmod(k, 3)
        tile = arr[1 + r * 5 : 1 + r * 5 + 4, 1 + c * 7 : 1 + c * 7 + 6]
        assert np.array_equal(tile, (imgs[k].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
    assert np.all(arr[6:, 15:] == 255)  # the empty sixth slot is padding
    viz.save_image_grid(imgs[:1], path)  # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["g.png"]  # no temporary files left


def test_entropy_and_segmentation_maps():
    import matplotlib

    k = 4
    w = torch.zeros(1, 6, k)
    w[0, :3] = 1.0 / k  # uniform: entropy 1
    w[0, 3:, 2] = 1.0  # one-hot: entropy 0, segment 2
    ent = viz.entropy_map(w, grid_shape=(2, 3))
    vir = matplotlib.colormaps["viridis"]
    assert torch.allclose(ent[0, :, 0, 0], torch.tensor(vir(1.0)[:3]).float(), atol=1e-6)
    assert torch.allclose(ent[0, :, 1, 0], torch.tensor(vir(0.0)[:3]).float(), atol=1e-6)
    seg = viz.segmentation_map(w, grid_shape=(2, 3))
    tab = matplotlib.colormaps["tab10"].colors
    assert torch.allclose(seg[0, :, 1, 2], torch.tensor(tab[2]).float())


def test_voxel_render_silhouette_of_a_ball_is_a_disk():
    n = 32
    g = (torch.arange(n) + 0.5) / n * 2 - 1
    x, y, z = torch.meshgrid(g, g, g, indexing="ij")
    ball = ((x**2 + y**2 + z**2) <= 0.5**2).float()
    img = viz.render_voxels(ball, size=96)
    fg = (img != 1.0).any(0)
    # orthographic view of [-sqrt(3), sqrt(3)]^2: a ball of radius 0.5 covers pi 0.5^2 / (2 sqrt(3))^2
    frac = fg.float().mean().item()
    assert abs(frac - math.pi * 0.25 / 12) < 0.15 * math.pi * 0.25 / 12
    assert fg[48, 48] and not fg[0, 0]
    assert torch.equal(viz.render_voxels(torch.zeros(8, 8, 8), size=16), torch.ones(3, 16, 16))


def test_latlon_map_is_north_up_and_globe_centre_is_the_view_point():
    lat = np.array([-45.0, 0.0, 45.0])  # south first: the map must flip it
    lon = np.array([180.0, 0.0, 90.0, 270.0])
    field = torch.tensor(lat)[:, None].expand(3, 4).clone()
    img = viz.render_latlon(field, lat, lon, cmap="gray")
    assert torch.allclose(img[:, 0], torch.ones(3, 4)) and torch.allclose(img[:, 2], torch.zeros(3, 4))
    f2 = torch.zeros(3, 4)
    f2[2, 2] = 1.0  # lat 45, lon 90
    glob = viz.render_globe(f2, lat, lon, size=21, center=(45.0, 90.0), cmap="gray")
    assert torch.allclose(glob[:, 10, 10], torch.ones(3) * glob[:, 10, 10].max())
    assert glob[0, 10, 10] > 0.9 and torch.equal(glob[:, 0, 0], torch.ones(3))

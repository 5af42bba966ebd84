"""Voxel and sphere-field sources: exact read-back, subsampling, NaN as unobserved, train-only statistics."""

import math

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

from inrgen import coords as C
from inrgen.data import synthetic as S
from inrgen.data.datasets import sphere, voxels
from inrgen.data.datasets._common import split_indices


@pytest.fixture(scope="module")
def chairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chairs")
    S.write_voxels(folder, n=5, seed=0, kind="mixed", resolution=16)
    vols = np.stack([torch.load(f, weights_only=True).numpy() for f in sorted(folder.glob("*.pt"))])
    return folder, vols


def test_voxel_folder_reads_pt_tensors_exactly(chairs):
    folder, vols = chairs
    ds = voxels.VoxelDataset(folder, split="all", num_points=None)
    assert len(ds) == 5 and ds.grid_shape == (16, 16, 16)
    assert set(np.unique(vols).tolist()) <= {0, 1} and vols.reshape(5, -1).sum(1).min() > 0
    for i in range(5):
        item = ds[i]
        assert torch.equal(item.to_volume()[0, 0], torch.from_numpy(vols[i]).float())
        assert torch.equal(item.coords[0], C.grid((16, 16, 16)))


@pytest.mark.parametrize("fmt", ["npy", "npz", "h5", "npy5d"])
def test_voxel_array_files_give_the_same_items(chairs, tmp_path, fmt):
    _, vols = chairs
    if fmt == "npy":
        path = tmp_path / "v.npy"
        np.save(path, vols.astype(bool))
    elif fmt == "npy5d":
        path = tmp_path / "v5.npy"
        np.save(path, vols[:, None].astype(np.float32))
    elif fmt == "npz":
        path = tmp_path / "v.npz"
        np.savez(path, voxels=vols)
    else:
        path = tmp_path / "v.h5"
        with h5py.File(path, "w") as f:
            f["voxels"] = vols
    ds = voxels.VoxelDataset(path, split="all", num_points=None)
    got = torch.cat([ds[i].to_volume() for i in range(5)])[:, 0]
    assert torch.equal(got, torch.from_numpy(vols).float())


def test_voxel_subsampling_draws_distinct_true_grid_points(chairs):
    folder, vols = chairs
    ds = voxels.VoxelDataset(folder, split="all", num_points=300)
    for i in range(3):
        item = ds[i]
        assert item.coords.shape == (1, 300, 3) and item.grid_shape is None
        # coordinates are voxel centres; map them back to indices and compare the occupancy there
        ijk = torch.round((item.coords[0] + 1) * 16 / 2 - 0.5).long()
        assert torch.allclose((2 * ijk + 1) / 16 - 1, item.coords[0])
        assert len({tuple(r) for r in ijk.tolist()}) == 300
        ref = torch.from_numpy(vols[i]).float()[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
        assert torch.equal(item.values[0, :, 0], ref)
    a, b = ds[0].coords, ds[0].coords
    assert not torch.equal(a, b)  # a fresh subset on every access
    assert voxels.VoxelDataset(folder, "train").num_points == 4096  # the papers' training points
    assert voxels.VoxelDataset(folder, "test").num_points is None  # eval: the full grid


def test_voxel_splits_by_position(chairs):
    folder, _ = chairs
    idx = {
        s: voxels.VoxelDataset(folder, s, num_points=None).indices.tolist() for s in ("train", "val", "test")
    }
    assert idx == {"train": [0, 1, 2], "val": [3], "test": [4]}  # 80/10/10 of 5, in file order


def _write_nc(path, vals, lat, lon, dims=("time", "latitude", "longitude"), units=True, name="t2m"):
    attrs_lat = {"units": "degrees_north"} if units else {}
    attrs_lon = {"units": "degrees_east"} if units else {}
    ds = xr.Dataset(
        {name: (dims, vals)},
        coords={
            dims[0]: np.arange(len(vals)),
            dims[1]: (dims[1], lat, attrs_lat),
            dims[2]: (dims[2], lon, attrs_lon),
        },
    )
    ds.to_netcdf(path)
    return path


def test_netcdf_reads_exactly_and_nan_becomes_unobserved(tmp_path):
    path = S.write_sphere_netcdf(tmp_path / "f.nc", n=6, n_lat=8, n_lon=16, seed=1, missing=0.25)
    raw = xr.open_dataset(path)["t2m"].values  # the fill value -1e34 decodes to NaN
    nan = np.isnan(raw)
    assert nan.any() and not nan.all() and not (raw[~nan] < -1e30).any()
    ds = sphere.NetCDFFieldDataset(path, split="all", normalize=None)
    assert ds.stats == {"kind": "none"}
    for i in range(6):
        item = ds[i]
        assert item.grid_shape == (8, 16)
        obs = item.mask[0].reshape(8, 16).numpy()
        assert np.array_equal(obs, ~nan[i])  # NaN -> unobserved, everything else observed
        grid = item.to_grid(fill=float("nan"))[0, 0].numpy()
        assert np.array_equal(grid[obs], raw[i][obs])  # float32 values, bit for bit
        assert np.isnan(grid[~obs]).all()
    # coordinates are the unit vectors of the file's latitudes and longitudes
    lat, lon = C.unit_to_latlon(ds[0].coords[0].double(), lon_range=360)
    la, lo = np.meshgrid(np.linspace(90, -90, 8), np.arange(16) * 22.5, indexing="ij")
    assert np.allclose(lat.numpy(), la.ravel(), atol=1e-4)
    not_pole = np.abs(la.ravel()) < 89
    assert np.allclose(lon.numpy()[not_pole], lo.ravel()[not_pole], atol=1e-4)
    assert torch.allclose(ds[0].coords.norm(dim=-1), torch.ones(1))


def test_normalisation_statistics_come_from_the_train_split_only(tmp_path):
    path = S.write_sphere_netcdf(tmp_path / "f.nc", n=20, n_lat=6, n_lon=12, seed=2)
    raw = xr.open_dataset(path)["t2m"].values.astype(np.float64)
    tr_idx, te_idx = split_indices(20, "train"), split_indices(20, "test")
    train = sphere.NetCDFFieldDataset(path, "train")
    assert train.stats == {"kind": "minmax", "min": raw[tr_idx].min(), "max": raw[tr_idx].max()}
    assert (raw[te_idx].min(), raw[te_idx].max()) != (raw[tr_idx].min(), raw[tr_idx].max())
    test = sphere.NetCDFFieldDataset(path, "test")  # computes the *train* statistics itself
    assert test.stats == train.stats
    lo, hi = train.stats["min"], train.stats["max"]
    ref = np.clip((raw[te_idx] - lo) / (hi - lo), 0, 1).astype(np.float32)
    got = torch.cat([test[i].to_grid() for i in range(len(test))])[:, 0].numpy()
    assert np.allclose(got, ref, atol=1e-7)
    given = {"kind": "minmax", "min": 200.0, "max": 330.0}
    t2 = sphere.NetCDFFieldDataset(path, "test", stats=given)
    assert t2.stats == given and torch.allclose(
        t2.denormalize(t2[0].to_grid()), torch.from_numpy(raw[te_idx[0]]).float()
    )
    std = sphere.NetCDFFieldDataset(path, "train", normalize="standard")
    v = torch.cat([std[i].values for i in range(len(std))]).double()
    assert abs(v.mean().item()) < 1e-5 and abs(v.std(unbiased=False).item() - 1) < 1e-5
    assert train.normalization_state() == {"stats": train.stats, "clip": True}


@pytest.mark.parametrize(
    "dims, units",
    [
        (("time", "lat", "lon"), False),
        (("valid_time", "latitude", "longitude"), False),
        (("TIME", "COADSY", "COADSX"), True),
    ],
)
def test_netcdf_latlon_name_variants(tmp_path, dims, units):
    vals = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
    lat, lon = np.array([-60.0, -20, 20, 60]), np.array([21.0, 93, 165, 237, 309])
    path = _write_nc(tmp_path / "v.cdf", vals, lat, lon, dims, units, name="SST")
    ds = sphere.NetCDFFieldDataset(path, "all", normalize=None)
    assert ds.variable == "SST" and np.array_equal(ds.lat, lat) and np.array_equal(ds.lon, lon)
    assert np.array_equal(torch.cat([ds[i].to_grid() for i in range(3)])[:, 0].numpy(), vals)


def test_lat_lon_transposed_variable_is_reordered(tmp_path):
    vals = np.random.default_rng(1).normal(size=(2, 5, 4)).astype(np.float32)  # (time, lon, lat)
    lat, lon = np.array([-60.0, -20, 20, 60]), np.arange(5) * 72.0
    ds0 = xr.Dataset(
        {"t2m": (("time", "longitude", "latitude"), vals)}, coords={"latitude": lat, "longitude": lon}
    )
    ds0.to_netcdf(tmp_path / "t.nc")
    ds = sphere.NetCDFFieldDataset(tmp_path / "t.nc", "all", normalize=None)
    assert np.array_equal(ds[1].to_grid()[0, 0].numpy(), vals[1].T)


def test_gasp_npz_reads_exactly_with_split_folders(tmp_path):
    S.write_gasp_npz(tmp_path, n_train=5, n_test=3, n_lat=6, n_lon=10, seed=0)
    train = sphere.GASPNpzDataset(tmp_path, "train", normalize=None)
    test = sphere.GASPNpzDataset(tmp_path, "test", normalize=None)
    assert (len(train), len(test)) == (5, 3)
    for ds in (train, test):
        for i, f in enumerate(ds.files):
            with np.load(f) as z:
                assert np.array_equal(ds[i].to_grid()[0, 0].numpy(), z["temperature"])
    norm = sphere.GASPNpzDataset(tmp_path, "test", stats=sphere.GASP_ERA5_STATS)
    with np.load(test.files[0]) as z:
        ref = np.clip((z["temperature"].astype(np.float64) - 202.66) / (320.93 - 202.66), 0, 1)
    assert np.allclose(norm[0].to_grid()[0, 0].numpy(), ref, atol=1e-6)


def test_random_sphere_fields_are_band_limited(tmp_path):
    # a field built from degree-<= L harmonics is a polynomial of degree <= L in (x, y, z) on the sphere
    lat = np.linspace(-85, 85, 18)
    lon = np.arange(36) * 10.0
    L = 3
    f = S.random_sphere_fields(1, lat, lon, l_max=L, seed=0)[0].ravel()
    la, lo = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    x, y, z = (np.cos(la) * np.cos(lo)).ravel(), (np.cos(la) * np.sin(lo)).ravel(), np.sin(la).ravel()

    def residual(deg):
        cols = [
            x**a * y**b * z**c
            for a in range(deg + 1)
            for b in range(deg + 1 - a)
            for c in range(deg + 1 - a - b)
        ]
        A = np.stack(cols, 1)
        coef, *_ = np.linalg.lstsq(A, f, rcond=None)
        return np.abs(A @ coef - f).max()

    assert residual(L) < 1e-9 * np.abs(f).max()
    assert residual(L - 1) > 1e-3 * np.abs(f).max()
    assert math.isfinite(f.std()) and f.std() > 0

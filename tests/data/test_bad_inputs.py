"""Every bad input of the issue gets one clear error naming the file, what was expected and what was found."""

import gzip
import io
import json

import h5py
import numpy as np
import pytest
import torch
import xarray as xr
from PIL import Image

from inrgen.data import synthetic as S
from inrgen.data.datasets import DataSourceError, idx, images, mnist, shapes3d, sphere, views, voxels


def _png(path, size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros(size + (3,), np.uint8)).save(path)


def test_corrupt_image_is_named_before_any_work(tmp_path):
    _png(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"this is not a png")
    with pytest.raises(DataSourceError, match=r"corrupt image .*bad\.png"):
        images.ImageFolderDataset(tmp_path, "all", size=8)


def test_truncated_image_is_named_when_decoded(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    ds = images.ImageFolderDataset(tmp_path, "all", size=8)  # the header is fine
    with pytest.raises(DataSourceError, match=r"corrupt image .*cut\.png"):
        ds[0]
    with pytest.raises(DataSourceError, match=r"cut\.png"):
        images.ImageFolderDataset(tmp_path, "all", size=8, verify="full")


def test_missing_image_and_empty_folders(tmp_path):
    with pytest.raises(DataSourceError, match=r"missing image: expected a PNG/JPEG file at .*gone\.png"):
        images.load_image(tmp_path / "gone.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DataSourceError, match=r"found none: .*notes\.txt"):
        images.ImageFolderDataset(tmp_path / "empty")
    with pytest.raises(DataSourceError, match="does not exist"):
        images.ImageFolderDataset(tmp_path / "nowhere")


def test_images_of_different_sizes_need_a_size(tmp_path):
    _png(tmp_path / "a.png", (8, 8))
    _png(tmp_path / "b.png", (9, 8))
    with pytest.raises(DataSourceError, match="different sizes.*pass size="):
        images.ImageFolderDataset(tmp_path, "all", size=None)


def test_hdf5_with_other_keys_and_wrong_layouts(tmp_path):
    p = tmp_path / "3dshapes.h5"
    with h5py.File(p, "w") as f:
        f["pictures"] = np.zeros((2, 64, 64, 3), np.uint8)
        f["targets"] = np.zeros((2, 6))
    with pytest.raises(
        DataSourceError,
        match=r"other keys: expected datasets 'images' and 'labels', found \['pictures', 'targets'\]",
    ):
        shapes3d.Shapes3DDataset(p)
    with h5py.File(p, "w") as f:
        f["images"] = np.zeros((2, 64, 64, 3), np.float32)
        f["labels"] = np.zeros((2, 6))
    with pytest.raises(DataSourceError, match=r"\(N, H, W, 3\) uint8, found \(2, 64, 64, 3\) float32"):
        shapes3d.Shapes3DDataset(p)
    with h5py.File(p, "w") as f:
        f["images"] = np.zeros((2, 64, 64, 3), np.uint8)
        f["labels"] = np.zeros((3, 6))
    with pytest.raises(DataSourceError, match=r"\(N, 6\) = \(2, 6\).*found \(3, 6\)"):
        shapes3d.Shapes3DDataset(p)
    p.write_text("not hdf5")
    with pytest.raises(DataSourceError, match="not a readable HDF5 file"):
        shapes3d.Shapes3DDataset(p)
    with pytest.raises(DataSourceError, match=r"expected the HDF5 file 3dshapes\.h5"):
        shapes3d.Shapes3DDataset(tmp_path / "elsewhere")


def test_netcdf_without_latitude_longitude(tmp_path):
    p = tmp_path / "x.nc"
    xr.Dataset({"t2m": (("time", "y", "x"), np.zeros((2, 3, 4)))}).to_netcdf(p)
    with pytest.raises(DataSourceError, match="NetCDF without latitude/longitude"):
        sphere.NetCDFFieldDataset(p)
    with pytest.raises(DataSourceError, match=r"no variable 'sst'; the file holds \['t2m'\]"):
        sphere.NetCDFFieldDataset(p, variable="sst")
    bad = tmp_path / "broken.nc"
    bad.write_bytes(b"garbage")
    with pytest.raises(DataSourceError, match=r"broken\.nc: expected a NetCDF file readable by xarray"):
        sphere.NetCDFFieldDataset(bad)
    q = tmp_path / "4d.nc"
    xr.Dataset(
        {"t": (("time", "level", "lat", "lon"), np.zeros((2, 3, 4, 5)))},
        coords={"lat": np.linspace(-60, 60, 4), "lon": np.arange(5.0)},
    ).to_netcdf(q)
    with pytest.raises(DataSourceError, match=r"one non-spatial dimension, found \['time', 'level'\]"):
        sphere.NetCDFFieldDataset(q)


def test_gasp_npz_with_wrong_keys(tmp_path):
    np.savez(tmp_path / "0.npz", lat=np.zeros(3), lon=np.zeros(4), t=np.zeros((3, 4)))
    with pytest.raises(
        DataSourceError,
        match=r"expected arrays latitude, longitude and temperature.*found \['lat', 'lon', 't'\]",
    ):
        sphere.GASPNpzDataset(tmp_path)


@pytest.fixture()
def view_root(tmp_path):
    S.write_views(tmp_path, n_objects=3, n_views=3, size=8, category="cars")
    return tmp_path


def _edit_transforms(root, fn):
    p = root / "cars" / "obj0000" / "transforms.json"
    meta = json.loads(p.read_text())
    p.write_text(json.dumps(fn(meta)))
    return p


def test_transforms_without_frames(view_root):
    _edit_transforms(view_root, lambda m: {"camera_angle_x": m["camera_angle_x"]})
    with pytest.raises(DataSourceError, match=r"obj0000/transforms\.json has no frames"):
        views.ViewsDataset(view_root, "all")


@pytest.mark.parametrize(
    "edit, msg",
    [
        (lambda m: {**m, "camera_angle_x": None}, "camera_angle_x in \\(0, pi\\)"),
        (lambda m: {**m, "frames": [{"file_path": "r_0"}]}, "needs file_path and transform_matrix"),
        (
            lambda m: {**m, "frames": [{"file_path": "r_0", "transform_matrix": [[1, 0], [0, 1]]}]},
            "finite 4x4",
        ),
        (
            lambda m: {**m, "frames": m["frames"] + [{**m["frames"][0], "file_path": "./r_9"}]},
            r"missing image .*r_9\.png",
        ),
    ],
)
def test_bad_transforms_are_named(view_root, edit, msg):
    _edit_transforms(view_root, edit)
    with pytest.raises(DataSourceError, match=msg):
        views.ViewsDataset(view_root, "all", n_support=1, n_query=1, views_range=None)


def test_views_layout_errors(view_root, tmp_path_factory):
    (view_root / "car_splits.json").write_text("{broken")
    with pytest.raises(DataSourceError, match=r"car_splits\.json is not valid JSON"):
        views.ViewsDataset(view_root)
    empty = tmp_path_factory.mktemp("noviews")
    with pytest.raises(DataSourceError, match=r"expected one <class>_splits\.json"):
        views.ViewsDataset(empty)
    with pytest.raises(DataSourceError, match="fewer than n_support \\+ n_query = 5"):
        (view_root / "car_splits.json").write_text(json.dumps({"train": ["obj0000"], "test": ["obj0001"]}))
        views.ViewsDataset(view_root, "train", n_support=4, n_query=1)


def test_idx_errors_name_the_files(tmp_path):
    with pytest.raises(DataSourceError, match=r"missing train-images-idx3-ubyte\[\.gz\]"):
        idx.FashionMNISTDataset(tmp_path)
    S.write_fashion_idx(tmp_path, n_train=4, n_test=2, gz=False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataSourceError, match=r"t10k-images-idx3-ubyte: not an IDX file"):
        idx.FashionMNISTDataset(tmp_path, "test")
    idx.write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(DataSourceError, match="holds 3 images but .* holds 2 labels"):
        idx.FashionMNISTDataset(tmp_path, "test")
    raw = (tmp_path / "train-labels-idx1-ubyte").read_bytes()
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(raw[:-1])
    with pytest.raises(DataSourceError, match=r"announces shape \(4,\)"):
        idx.FashionMNISTDataset(tmp_path, "train")


def test_mnist_csv_with_wrong_columns(tmp_path):
    p = tmp_path / "m.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write("1,2,3\n4,5,6\n")
    with pytest.raises(DataSourceError, match="expected 785 columns .* found 3"):
        mnist.MNISTDataset(p)


def test_voxel_errors(tmp_path):
    torch.save(torch.full((4, 4, 4), 0.5), tmp_path / "a.pt")
    ds = voxels.VoxelDataset(tmp_path, "all", num_points=None)
    with pytest.raises(DataSourceError, match=r"a\.pt holds values other than 0 and 1 .*threshold"):
        ds[0]
    assert voxels.VoxelDataset(tmp_path, "all", num_points=None, threshold=0.5)[0].values.min() == 1.0
    torch.save(torch.zeros(4, 4), tmp_path / "a.pt")
    with pytest.raises(DataSourceError, match=r"\(D, H, W\) occupancy grid, found shape \(4, 4\)"):
        voxels.VoxelDataset(tmp_path)
    np.savez(tmp_path / "v.npz", a=np.zeros((2, 4, 4, 4)), b=np.zeros(3))
    with pytest.raises(DataSourceError, match=r"other keys: expected an array named 'voxels'.*\['a', 'b'\]"):
        voxels.VoxelDataset(tmp_path / "v.npz")
    (tmp_path / "v.obj").write_text("x")
    with pytest.raises(DataSourceError, match="has suffix '.obj'"):
        voxels.VoxelDataset(tmp_path / "v.obj")
    np.save(tmp_path / "small.npy", np.zeros((10, 4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="num_points must be in 1..64"):
        voxels.VoxelDataset(tmp_path / "small.npy", num_points=100)

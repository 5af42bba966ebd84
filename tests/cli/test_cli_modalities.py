"""The task commands on every input modality: voxel arrays, NetCDF fields on the sphere, view folders.

Checkpoints are written straight from the CPU presets' configs (``save_checkpoint`` with the preset, as
the trainer writes it), so what is tested is the command line's reading of inputs and writing of
outputs; the written numbers are compared with the Python API on the same model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import inrgen
from inrgen import coords as C
from inrgen import tasks
from inrgen.checkpoint import save_checkpoint
from inrgen.cli import main
from inrgen.configs import get_preset
from inrgen.data import synthetic
from inrgen.data.datasets.sphere import NetCDFFieldDataset, denormalize_values
from inrgen.data.points import PointSet
from inrgen.models.base import build_model
from inrgen.training.callbacks import checkpoint_extra


def _checkpoint(name: str, folder, data_info=None):
    p = get_preset(name)
    torch.manual_seed(0)
    model = build_model(p.model, p.model_config)
    save_checkpoint(folder, model, extra=checkpoint_extra(p, 0, data_info))
    return inrgen.load(folder)


def test_reconstruct_voxel_arrays(tmp_path, capsys):
    model = _checkpoint("vamoh-voxels-small", tmp_path / "ckpt")
    vols = np.zeros((2, 8, 8, 8), dtype=np.uint8)
    vols[0, 2:6, 2:6, 2:6] = 1
    vols[1, 1:7, 3:5, 1:7] = 1
    np.save(tmp_path / "shapes.npy", vols)
    code = main(["reconstruct", str(tmp_path / "ckpt"), "--input", str(tmp_path / "shapes.npy"),
                 "--out", str(tmp_path / "o"), "--scale", "2"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert [r["name"] for r in s["inputs"]] == ["shapes-000", "shapes-001"]
    rec = np.load(tmp_path / "o" / "shapes-001-recon.npy")
    ps = PointSet.from_volume(torch.from_numpy(vols[1:2, None].astype(np.float32)))
    ref = tasks.reconstruct(model, ps).mean.reshape(8, 8, 8)
    np.testing.assert_allclose(rec, ref.numpy(), atol=1e-5)
    assert np.load(tmp_path / "o" / "shapes-000-x2.npy").shape == (16, 16, 16)
    assert (tmp_path / "o" / "shapes-000-recon.png").is_file()


def test_bad_voxel_input(tmp_path, capsys):
    _checkpoint("vamoh-voxels-small", tmp_path / "ckpt")
    np.save(tmp_path / "v.npy", np.full((8, 8, 8), 3.0))
    code = main(
        [
            "reconstruct",
            str(tmp_path / "ckpt"),
            "--input",
            str(tmp_path / "v.npy"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code != 0 and "outside [0, 1]" in capsys.readouterr().err
    np.save(tmp_path / "rgb.npy", np.zeros((1, 3, 8, 8, 8)))
    code = main(
        [
            "reconstruct",
            str(tmp_path / "ckpt"),
            "--input",
            str(tmp_path / "rgb.npy"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code != 0 and "3 channels per voxel" in capsys.readouterr().err
    code = main(
        [
            "reconstruct",
            str(tmp_path / "ckpt"),
            "--input",
            str(tmp_path / "x.png"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code != 0 and "does not exist" in capsys.readouterr().err
    (tmp_path / "x.png").write_bytes(b"")
    code = main(
        [
            "reconstruct",
            str(tmp_path / "ckpt"),
            "--input",
            str(tmp_path / "x.png"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code != 0 and "is not a voxel input" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_reconstruct_netcdf_fields_in_kelvin(tmp_path, capsys):
    nc = synthetic.write_sphere_netcdf(tmp_path / "t2m.nc", n=3, n_lat=10, n_lon=20, seed=1)
    train = NetCDFFieldDataset(nc, split="all")
    stats = {"stats": dict(train.stats), "clip": True}
    model = _checkpoint("vamoh-sphere-small", tmp_path / "ckpt", data_info=stats)
    code = main(["reconstruct", str(tmp_path / "ckpt"), "--input", str(nc), "--out", str(tmp_path / "o")])
    assert code == 0, capsys.readouterr().err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert len(s["inputs"]) == 3
    field = np.load(tmp_path / "o" / "t2m-001-recon.npy")
    ps = train[1]
    ref = denormalize_values(tasks.reconstruct(model, ps).mean[0, :, 0].reshape(10, 20), train.stats)
    np.testing.assert_allclose(field, ref.numpy(), rtol=1e-5)
    assert 150 < float(np.median(field)) < 350  # Kelvin, not the [0, 1] the model works in
    code = main(
        ["sample", str(tmp_path / "ckpt"), "-n", "2", "--resolution", "8", "--out", str(tmp_path / "s")]
    )
    assert code == 0
    assert np.load(tmp_path / "s" / "sample-00.npy").shape == (8, 16)


def test_novel_view_from_a_view_folder(tmp_path, capsys):
    p = get_preset("laginr-nvs-small")
    root = synthetic.write_views(tmp_path / "views", n_objects=2, n_views=4, size=32, seed=0)
    obj = next(d for d in (root / "primitives").iterdir() if d.is_dir())
    model = _checkpoint("laginr-nvs-small", tmp_path / "ckpt")
    frames = json.loads((obj / "transforms.json").read_text())
    pose = {"camera_angle_x": frames["camera_angle_x"], "frames": frames["frames"][2:4]}
    (tmp_path / "pose.json").write_text(json.dumps(pose))
    ckpt = str(tmp_path / "ckpt")
    code = main(["novel-view", ckpt, "--views", str(obj), "--pose", str(tmp_path / "pose.json"),
                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["poses"] == 2 and s["support"] == p.data.options["n_support"]
    from inrgen.training.inputs import read_poses, read_support_views

    support, fov, (h, w), _ = read_support_views(obj, s["support"])
    c2w, fov = read_poses(tmp_path / "pose.json", fov)
    ref = tasks.novel_view(model, support, c2w.unsqueeze(0), C.intrinsics_from_fov(fov, w, h), h, w)[0]
    img = np.asarray(__import__("PIL.Image").Image.open(tmp_path / "o" / "view-01.png"))
    drawn = img[2:-2:3, 2:-2:3].astype(np.float32) / 255  # 32 px drawn 3x larger
    np.testing.assert_allclose(drawn, ref[1].clamp(0, 1).permute(1, 2, 0).numpy(), atol=1 / 255 + 1e-6)
    (tmp_path / "bad.json").write_text(json.dumps({"transform_matrix": [[1, 0], [0, 1]]}))
    code = main(["novel-view", ckpt, "--views", str(obj), "--pose", str(tmp_path / "bad.json"),
                 "--out", str(tmp_path / "o2")])  # fmt: skip
    assert code != 0 and "expected a 4x4 camera-to-world matrix" in capsys.readouterr().err


@pytest.mark.parametrize("cmd", ["sample", "segment"])
def test_commands_a_model_cannot_do(tmp_path, capsys, cmd):
    _checkpoint("laginr-mnist-small", tmp_path / "ckpt")
    img = tmp_path / "d.png"
    __import__("PIL.Image").Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(img)
    args = ["-n", "2"] if cmd == "sample" else ["--input", str(img)]
    code = main([cmd, str(tmp_path / "ckpt"), *args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0
    assert ("not generative" in err) if cmd == "sample" else ("no mixture weights" in err)
    assert not (tmp_path / "o").exists()

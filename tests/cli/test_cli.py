"""The ``inrgen`` command line end to end in a temporary folder, and every bad input it must refuse.

The end-to-end run trains the real ``vamoh-mnist-small`` preset (real architecture, real MNIST digits)
for two steps, then reconstructs, completes, samples, segments and evaluates with the checkpoint, and
checks the written numbers against independent computations with the Python API.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import inrgen
from inrgen import tasks
from inrgen.cli import main
from inrgen.data.masks import parse_mask
from inrgen.data.points import PointSet
from inrgen.metrics.psnr import psnr
from inrgen.training.data import build_split

PRESET = "vamoh-mnist-small"
SMALL = ["data.batch_size=4", "data.eval_batch_size=4", "data.num_eval=4", "train.eval_every=0"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-step run of the real preset and a held-out digit as a PNG (as a user would have it)."""
    root = tmp_path_factory.mktemp("cli")
    code = main(["train", PRESET, "--max-steps", "2", "--out", str(root / "run"), "--no-progress", *SMALL])
    assert code == 0
    digit = build_split(inrgen.configs.get_preset(PRESET).data, "test")[3].to_image()[0, 0]
    png = root / "digit.png"
    Image.fromarray((digit.numpy() * 255).round().astype(np.uint8), mode="L").save(png)
    return root, png


def _read_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_train_writes_a_loadable_resumable_checkpoint(trained, capsys):
    root, _ = trained
    ckpt = root / "run" / "checkpoint"
    cfg = json.loads((ckpt / "config.json").read_text())
    assert cfg["preset"] == PRESET and cfg["step"] == 2 and cfg["model"] == "vamoh"
    assert cfg["data"]["batch_size"] == 4 and cfg["train"]["max_steps"] == 2
    state = torch.load(ckpt / "training_state.pt", weights_only=True)
    assert state["step"] == 2
    model = inrgen.load(root / "run" / "checkpoint")
    assert int(model.trained_steps) == 1  # the last loss call was at step 1
    assert (root / "run" / "logs" / "metrics.csv").is_file()


def test_reconstruct_and_superresolve(trained, tmp_path, capsys):
    root, png = trained
    out = tmp_path / "recon"
    code, stdout, _ = run(capsys, "reconstruct", root / "run", "--input", png, "--scale", 4, "--out", out)
    assert code == 0, stdout
    summary = json.loads((out / "summary.json").read_text())
    # the PSNR written equals an independent computation with the Python API
    model = inrgen.load(root / "run" / "checkpoint")
    img = torch.from_numpy(_read_png(png).astype(np.float32) / 255.0)[None, None]
    ps = PointSet.from_image(img)
    ref = psnr(tasks.reconstruct(model, ps).mean, ps.values, clamp=True)
    assert summary["inputs"][0]["psnr"] == pytest.approx(float(ref), abs=1e-3)
    assert summary["inputs"][0]["superres_shape"] == [112, 112]
    recon = _read_png(out / "digit-recon.png")  # 28x28 drawn 3x larger (nearest) on a 2-pixel frame
    sr = _read_png(out / "digit-x4.png")
    assert recon.shape[:2] == (28 * 3 + 4, 28 * 3 + 4) and sr.shape[:2] == (112 + 4, 112 + 4)
    # the PNG holds the clamped reconstruction
    mean = tasks.reconstruct(model, ps).mean.clamp(0, 1).reshape(28, 28)
    drawn = recon[2:-2:3, 2:-2:3, 0].astype(np.float32) / 255.0
    np.testing.assert_allclose(drawn, mean.numpy(), atol=1 / 255 + 1e-6)


def test_complete_keeps_observed_pixels(trained, tmp_path, capsys):
    root, png = trained
    out = tmp_path / "complete"
    code, _, err = run(
        capsys, "complete", root / "run", "--input", png, "--mask", "box:8,8,10,10", "--out", out
    )
    assert code == 0, err
    s = json.loads((out / "summary.json").read_text())["inputs"][0]
    assert s["kept_fraction"] == pytest.approx(1 - 100 / 784)
    model = inrgen.load(root / "run" / "checkpoint")
    img = torch.from_numpy(_read_png(png).astype(np.float32) / 255.0)[None, None]
    ps = PointSet.from_image(img)
    keep = parse_mask("box:8,8,10,10", (28, 28))
    pred = tasks.complete(model, ps, keep)
    assert s["psnr_hidden"] == pytest.approx(
        float(psnr(pred.mean, ps.values, (~keep)[None], clamp=True)), abs=1e-3
    )
    comp = _read_png(out / "digit-composite.png")[2:-2:3, 2:-2:3, 0]
    truth = _read_png(png)
    k = keep.reshape(28, 28).numpy()
    assert np.array_equal(comp[k], truth[k])  # observed pixels are pasted back unchanged


def test_sample_at_any_resolution(trained, tmp_path, capsys):
    root, _ = trained
    out = tmp_path / "samples"
    code, _, err = run(capsys, "sample", root / "run", "-n", 3, "--resolution", 40, "--out", out, "--seed", 5)
    assert code == 0, err
    s = json.loads((out / "summary.json").read_text())
    assert s["n"] == 3 and s["resolution"] == [40, 40]
    model = inrgen.load(root / "run" / "checkpoint")
    ref = tasks.generate(model, 3, shape=(40, 40), generator=torch.Generator().manual_seed(5))
    one = _read_png(out / "sample-01.png")[2:-2:2, 2:-2:2, 0].astype(np.float32) / 255  # 40px drawn 2x
    np.testing.assert_allclose(one, ref.mean[1].clamp(0, 1).reshape(40, 40).numpy(), atol=1 / 255 + 1e-6)


def test_segment_writes_maps(trained, tmp_path, capsys):
    root, png = trained
    out = tmp_path / "seg"
    code, _, err = run(capsys, "segment", root / "run", "--input", png, "--out", out)
    assert code == 0, err
    labels = np.load(out / "digit-segmentation.npy")
    ent = np.load(out / "digit-entropy.npy")
    k = inrgen.load(root / "run" / "checkpoint").config.num_components
    assert labels.shape == (28, 28) and labels.min() >= 0 and labels.max() < k
    assert ent.min() >= -1e-6 and ent.max() <= np.log(k) + 1e-5  # entropy of K weights is in [0, log K]
    s = json.loads((out / "summary.json").read_text())["inputs"][0]
    assert sum(s["components_used"]) == 784
    assert (out / "digit-entropy.png").is_file() and (out / "digit-segmentation.png").is_file()


def test_evaluate_prints_table_and_json(trained, tmp_path, capsys):
    root, _ = trained
    out = tmp_path / "eval"
    code, stdout, err = run(capsys, "evaluate", root / "run", "--num", 6, "--batch-size", 4, "--out", out)
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["num_items"] == 6 and len(m["psnr_per_item"]) == 6
    per = np.array(m["psnr_per_item"])
    assert m["psnr_mean"] == pytest.approx(per.mean(), abs=1e-3)
    assert m["psnr_std"] == pytest.approx(per.std(), abs=1e-3)
    assert "psnr_mean" in stdout and "loss/kl_z" in stdout
    # VaMoH also gets the paper's reconstruction PSNR, with the posterior weights at the observed points
    model = inrgen.load(root / "run")
    test = build_split(inrgen.configs.get_preset(PRESET).data, "test")
    from inrgen.data.points import collate

    batch = collate([test[(j * len(test)) // 6] for j in range(6)])  # evaluate spreads its items
    with torch.no_grad():
        post = model.decode(model.encode(batch), batch.coords, values=batch.values).mean
    ref = psnr(post, batch.values, clamp=True).double()
    assert m["psnr_posterior_mean"] == pytest.approx(float(ref.mean()), abs=1e-3)
    assert m["psnr_posterior_std"] == pytest.approx(float(ref.std(unbiased=False)), abs=1e-3)


def test_outputs_are_never_overwritten_without_flag(trained, tmp_path, capsys):
    root, png = trained
    out = tmp_path / "recon"
    assert run(capsys, "reconstruct", root / "run", "--input", png, "--out", out)[0] == 0
    first = (out / "summary.json").read_bytes()
    code, _, err = run(capsys, "reconstruct", root / "run", "--input", png, "--out", out, "--scale", 2)
    assert code != 0 and "pass --overwrite" in err
    assert (out / "summary.json").read_bytes() == first
    code, _, _ = run(
        capsys, "reconstruct", root / "run", "--input", png, "--out", out, "--scale", 2, "--overwrite"
    )
    assert code == 0 and json.loads((out / "summary.json").read_text())["scale"] == 2
    # a training run into an existing run folder is refused too, before anything is trained
    code, _, err = run(capsys, "train", PRESET, "--max-steps", "1", "--out", root / "run", *SMALL)
    assert code != 0 and "pass --overwrite" in err
    assert json.loads((root / "run" / "checkpoint" / "config.json").read_text())["step"] == 2


# -------------------------------------------------------------------------------------- bad input


def test_unknown_preset_lists_presets(capsys, tmp_path):
    code, _, err = run(capsys, "train", "vamoh-mnsit-small", "--out", tmp_path / "r")
    assert code != 0
    assert (
        err.startswith("inrgen: error: unknown preset 'vamoh-mnsit-small'")
        and "Did you mean vamoh-mnist-small" in err
    )
    assert all(name in err for name in inrgen.configs.PRESETS)
    assert not (tmp_path / "r").exists()


def test_unknown_override_suggests_nearest(capsys, tmp_path):
    code, _, err = run(capsys, "train", PRESET, "--out", tmp_path / "r", "train.lrr=1e-3")
    assert code != 0 and "unknown config key 'train.lrr'" in err and "train.lr" in err
    assert not (tmp_path / "r").exists()


def test_data_of_another_modality_is_refused(capsys, tmp_path):
    vox = tmp_path / "shapes.npy"
    np.save(vox, np.zeros((2, 8, 8, 8), dtype=np.uint8))
    code, _, err = run(capsys, "train", PRESET, "--data", vox, "--out", tmp_path / "r")
    assert code != 0 and "holds voxel data" in err and "needs image data" in err
    assert not (tmp_path / "r").exists()


def test_bad_checkpoints(trained, capsys, tmp_path):
    import shutil

    root, png = trained
    broken = tmp_path / "broken"
    shutil.copytree(root / "run" / "checkpoint", broken)
    (broken / "model.safetensors").unlink()
    code, _, err = run(capsys, "reconstruct", broken, "--input", png, "--out", tmp_path / "o")
    assert code != 0 and "missing model.safetensors" in err
    code, _, err = run(capsys, "sample", tmp_path / "nothing", "--out", tmp_path / "o")
    assert code != 0 and "does not exist" in err
    # config and weights of different models
    shutil.rmtree(broken)
    shutil.copytree(root / "run" / "checkpoint", broken)
    cfg = json.loads((broken / "config.json").read_text())
    cfg["model_config"]["dim_z"] = 8
    (broken / "config.json").write_text(json.dumps(cfg))
    code, _, err = run(capsys, "reconstruct", broken, "--input", png, "--out", tmp_path / "o")
    assert code != 0 and "has shape" in err and "expected" in err
    assert not (tmp_path / "o").exists()


def test_input_with_other_channels_is_refused(trained, capsys, tmp_path):
    root, _ = trained
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((28, 28, 3), dtype=np.uint8)).save(rgb)
    code, _, err = run(capsys, "reconstruct", root / "run", "--input", rgb, "--out", tmp_path / "o")
    assert code != 0 and "3-channel image" in err and "grayscale" in err
    assert not (tmp_path / "o").exists()


def test_unwritable_output_is_refused(trained, capsys, tmp_path):
    root, png = trained
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "reconstruct", root / "run", "--input", png, "--out", tmp_path / "file" / "o")
    assert code != 0 and "is a file, not a folder" in err
    code, _, err = run(capsys, "train", PRESET, "--out", "/proc/inrgen-run", "--max-steps", 1)
    assert code != 0 and "not writable" in err


def test_presets_lists_sizes(capsys):
    code, out, _ = run(capsys, "presets")
    assert code == 0
    lines = {ln.split()[0]: ln for ln in out.splitlines()[1:]}
    assert set(lines) == set(inrgen.configs.PRESETS)
    p = inrgen.configs.get_preset(PRESET)
    n = sum(v.numel() for v in inrgen.models.build_model(p.model, p.model_config).parameters())
    size = f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"
    assert size in lines[PRESET].split() and p.paper in lines[PRESET]
    code, out, _ = run(capsys, "presets", "--fields", PRESET)
    assert code == 0 and "train.lr = 0.001" in out and "model.dim_z = 16" in out


def test_datasets_subcommand_delegates(capsys):
    code, out, _ = run(capsys, "datasets")
    assert code == 0 and "mnist" in out and "views-synthetic" in out


def test_console_script_prints_one_line_without_traceback():
    exe = Path(sys.executable).parent / "inrgen"
    proc = subprocess.run([str(exe), "complete", "nowhere", "--input", "x.png", "--mask", "half"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "inrgen: error: checkpoint folder nowhere does not exist (expected a folder with config.json)"
    ]


def test_train_on_your_own_image_folder(tmp_path, capsys):
    """--data points a preset at the user's files: RGB photos of other sizes become the preset's grayscale
    28x28 grid, and the checkpoint records the data it was trained on."""
    rng = np.random.default_rng(0)
    for i in range(10):
        size = (40 + 3 * i, 30 + 2 * i)
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(tmp_path / f"img{i}.png")
    out = tmp_path / "run"
    small = ["data.batch_size=2", "data.num_eval=2", "train.eval_every=0"]
    args = ["--data", tmp_path, "--max-steps", 1, "--out", out, "--no-progress", *small]
    code, _, err = run(capsys, "train", "laginr-mnist-small", *args)
    assert code == 0, err
    cfg = json.loads((out / "checkpoint" / "config.json").read_text())
    assert cfg["data"]["source"] == "images" and cfg["data"]["root"] == str(tmp_path)
    assert cfg["data"]["options"] == {"mode": "L", "size": [28, 28]}
    ev = json.loads((out / "eval.json").read_text())["latest"]
    assert ev["num_items"] == 1  # the held-out tenth of 10 images


def test_resume_from_the_command_line(trained, tmp_path, capsys):
    import shutil

    root, _ = trained
    run_dir = tmp_path / "run"
    shutil.copytree(root / "run", run_dir)
    code, out, err = run(
        capsys, "train", PRESET, "--out", run_dir, "--resume", "--max-steps", 3, "--no-progress"
    )
    assert code == 0, err
    assert "to step 3" in out
    assert torch.load(run_dir / "checkpoint" / "training_state.pt", weights_only=True)["step"] == 3
    # the stored preset (with its overrides) was resumed, not the registry's
    cfg = json.loads((run_dir / "checkpoint" / "config.json").read_text())
    assert cfg["data"]["batch_size"] == 4 and cfg["train"]["max_steps"] == 3
    code, _, err = run(capsys, "train", "laginr-mnist-small", "--out", run_dir, "--resume")
    assert code != 0 and "holds a run of preset 'vamoh-mnist-small'" in err

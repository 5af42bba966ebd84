"""Nothing the user made is lost (issue 13): the real ``inrgen`` console script, run as a user would.

Overwrites never destroy before they succeed and never replace another command's folder, its own
input or a non-regular file; every setting, input and size is checked before a folder exists;
SIGINT / SIGTERM save a checkpoint and say how to resume; ``metrics.csv`` survives kill -9 and resumes;
``--resume`` applies and reports overrides; leftovers of killed writes are removed; every error names
the problem; files follow the umask. Runs train ``vamoh-mnist-small`` on 4-item batches.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import inrgen
from inrgen.checkpoint import save_checkpoint
from inrgen.cli import main
from inrgen.configs import get_preset
from inrgen.models.base import build_model
from inrgen.training.callbacks import checkpoint_extra

EXE = Path(sys.executable).parent / "inrgen"
PRESET = "vamoh-mnist-small"
SMALL = ["data.batch_size=4", "data.eval_batch_size=4", "data.num_eval=4", "train.eval_every=0"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("INRGEN_DEBUG", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def cli(*args, cwd: Path, umask: int | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    pre = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run([str(EXE), *map(str, args)], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout, preexec_fn=pre)  # fmt: skip


def start(*args, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([str(EXE), *map(str, args)], cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _train_steps(path: Path) -> list[int]:
    return [int(r["step"]) for r in _rows(path) if r.get("train/loss")]


def _wait_rows(proc: subprocess.Popen, path_glob, n: int, timeout: float = 180) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        paths = list(path_glob())
        if paths and len(_train_steps(paths[0])) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.communicate()}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the run logged too few rows in time")


def _step(run: Path) -> int:
    return json.loads((run / "checkpoint" / "config.json").read_text())["step"]


def _dead_pid() -> int:
    p = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(p.stdout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-step run made by the console script under umask 022, and a held-out digit PNG."""
    root = tmp_path_factory.mktemp("safety")
    p = cli("train", PRESET, "--max-steps", 2, "--out", "run", "--no-progress", *SMALL, cwd=root, umask=0o022)
    assert p.returncode == 0, p.stderr
    digit = (np.arange(28 * 28).reshape(28, 28) % 255).astype(np.uint8)
    Image.fromarray(digit, mode="L").save(root / "digit.png")
    return root, root / "digit.png"


def _copy_run(trained, tmp_path: Path) -> Path:
    root, _ = trained
    shutil.copytree(root / "run", tmp_path / "run")
    return tmp_path / "run"


# ------------------------------------------------------------------ 1. overwrite never destroys first


def test_overwrite_never_destroys_before_it_can_succeed(trained, tmp_path, capsys):
    _, png = trained
    run = _copy_run(trained, tmp_path)
    weights = (run / "checkpoint" / "model.safetensors").read_bytes()
    p = cli("train", PRESET, "--out", run, "--overwrite", "--max-steps", 2, "--no-progress", *SMALL,
            "train.lr=nan", cwd=tmp_path)  # fmt: skip
    assert p.returncode != 0 and "train.lr must be a finite number > 0, got nan" in p.stderr
    assert (run / "checkpoint" / "model.safetensors").read_bytes() == weights

    def inrgen_(*args):
        code = main([str(a) for a in args])
        return code, capsys.readouterr().err

    # a command that reads the run's checkpoint cannot replace the run folder with its output
    code, err = inrgen_("reconstruct", run / "checkpoint", "--input", png, "--out", run, "--overwrite")
    assert code != 0 and "which this command reads" in err
    assert (run / "checkpoint" / "model.safetensors").read_bytes() == weights and _step(run) == 2
    # a folder written by another command is never replaced, whichever command asks
    recon = tmp_path / "recon"
    assert inrgen_("reconstruct", run, "--input", png, "--out", recon)[0] == 0
    summary = (recon / "summary.json").read_bytes()
    code, err = inrgen_("sample", run, "-n", 1, "--out", recon, "--overwrite")
    assert code != 0 and "written by `inrgen reconstruct`, not by `inrgen sample`" in err
    code, err = inrgen_("train", PRESET, "--out", recon, "--overwrite", "--max-steps", 1, *SMALL)
    assert code != 0 and "written by `inrgen reconstruct`, not by `inrgen train`" in err
    code, err = inrgen_("train", PRESET, "--out", run, "--resume", "--overwrite")
    assert code != 0 and "pass one of them" in err
    assert (recon / "summary.json").read_bytes() == summary
    # a successful overwrite replaces the run, and leaves nothing beside it
    code, err = inrgen_(
        "train", PRESET, "--out", run, "--overwrite", "--max-steps", 3, "--no-progress", *SMALL
    )
    assert code == 0, err
    assert _step(run) == 3
    assert sorted(f.name for f in tmp_path.iterdir() if f.name.startswith(".")) == []


# ----------------------------------------------------------- 2. every writing command: no overwrite


def test_every_writing_command_honours_no_overwrite(trained, tmp_path, capsys):
    _, png = trained
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"the user's own file")
    p = cli("datasets", "--render", "mnist", "-n", 2, "--out", mine, cwd=tmp_path)
    assert p.returncode != 0 and "already exists; pass --overwrite" in p.stderr
    assert mine.read_bytes() == b"the user's own file"

    def inrgen_(*args):
        code = main([str(a) for a in args])
        return code, capsys.readouterr().err

    assert inrgen_("datasets", "--render", "mnist", "-n", 2, "--out", mine, "--overwrite")[0] == 0
    assert mine.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # never replaced, even with --overwrite: a FIFO (as a device would be), a link, a folder
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.png"
    link.symlink_to(mine)
    for target, what in ((fifo, "FIFO"), (link, "symbolic link"), (tmp_path, "folder")):
        code, err = inrgen_("datasets", "--render", "mnist", "-n", 2, "--out", target, "--overwrite")
        assert code != 0 and what in err, (target, err)
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and link.is_symlink()
    # --render all checks every target before it renders anything
    outs = tmp_path / "outs"
    outs.mkdir()
    (outs / "mnist.png").write_bytes(b"mine too")
    code, err = inrgen_("datasets", "--render", "all", "--out", outs)
    assert code != 0 and "mnist.png already exists" in err
    assert sorted(f.name for f in outs.iterdir()) == ["mnist.png"]
    # task commands: an --out that is a link is refused
    (tmp_path / "real").mkdir()
    (tmp_path / "lnk").symlink_to(tmp_path / "real")
    root, _ = trained
    code, err = inrgen_("reconstruct", root / "run", "--input", png, "--out", tmp_path / "lnk")
    assert code != 0 and "symbolic link" in err


# ---------------------------------------------------------------- 3. validation before the folder


BAD_OVERRIDES = {
    "train.lr=nan": "train.lr must be a finite number > 0",
    "train.lr=-1": "train.lr must be a finite number > 0",
    "train.lr=inf": "train.lr must be a finite number > 0",
    "train.betas=[2,3]": "train.betas must be two numbers in [0, 1)",
    "data.num_workers=-1": "data.num_workers must be an integer >= 0",
    "train.grad_clip=-1": "train.grad_clip must be a finite number > 0",
    "train.checkpoint_every=0": "train.checkpoint_every must be an integer >= 1",
    "train.log_every=0": "train.log_every must be an integer >= 1",
    "train.eval_every=-1": "train.eval_every must be an integer >= 0",
    "train.seed=-1": "train.seed must be an integer in [0, 4294967295]",
}


def test_bad_settings_are_refused_before_the_run_folder_exists(tmp_path, capsys):
    p = cli("train", PRESET, "--out", "r", "--max-steps", 1, "train.lr=nan", cwd=tmp_path)
    assert p.returncode != 0 and p.stderr.strip().splitlines() == [
        "inrgen: error: train.lr must be a finite number > 0, got nan"
    ]
    for override, message in BAD_OVERRIDES.items():
        code = main(["train", PRESET, "--out", str(tmp_path / "r"), "--max-steps", "1", override])
        err = capsys.readouterr().err
        assert code != 0 and message in err, (override, err)
    code = main(["train", PRESET, "--out", str(tmp_path / "r"), "--epochs", "inf"])
    assert code != 0 and "--epochs must be a finite number > 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_bad_data_is_refused_before_the_run_folder_exists(tmp_path, capsys):
    import xarray as xr

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(imgs / f"i{i}.png")
    data = (imgs / "i7.png").read_bytes()
    (imgs / "i7.png").write_bytes(data[: len(data) // 2])  # truncated among good images

    def nc(name, nt, nlat, time_axis=True):
        lat, lon = np.linspace(-80, 80, nlat), np.linspace(0, 350, 16)
        v = 280 + rng.random((nt, nlat, 16))
        dims = ("time", "latitude", "longitude") if time_axis else ("latitude", "longitude")
        coords = {"latitude": lat, "longitude": lon, **({"time": np.arange(nt)} if time_axis else {})}
        ds = xr.Dataset({"t2m": (dims, v if time_axis else v[0])}, coords=coords)
        ds["latitude"].attrs["units"], ds["longitude"].attrs["units"] = "degrees_north", "degrees_east"
        ds.to_netcdf(tmp_path / name)
        return tmp_path / name

    bombs = tmp_path / "bombs"
    shutil.copytree(imgs, bombs)
    (bombs / "i7.png").unlink()
    Image.new("1", (20000, 20000)).save(bombs / "big.png")
    cases = [
        ("vamoh-mnist-small", imgs, "i7.png is not a readable image"),
        ("vamoh-mnist-small", bombs, "big.png is too large to decode safely"),
        ("vamoh-sphere-small", nc("one.nc", 1, 8), "no held-out (test) items"),
        ("vamoh-sphere-small", nc("notime.nc", 1, 8, time_axis=False), "no held-out (test) items"),
        ("vamoh-sphere-small", nc("onelat.nc", 20, 1), "needs at least 2 latitudes"),
        ("vamoh-mnist-small", None, "data.batch_size=100000 is larger than the"),
    ]
    for preset, path, message in cases:
        args = ["train", preset, "--out", str(tmp_path / "r"), "--max-steps", "1", "--no-progress",
                "data.batch_size=1"] + (["--data", str(path)] if path else [])  # fmt: skip
        if path is None:
            args[-1] = "data.batch_size=100000"
        code = main(args)
        err = capsys.readouterr().err
        assert code != 0 and message in err, (preset, path, err)
        assert not (tmp_path / "r").exists(), (preset, path)


def test_bad_task_arguments_are_refused(trained, tmp_path, capsys):
    root, png = trained
    run = str(root / "run")
    cases = [
        (["evaluate", run, "--batch-size", "0"], "--batch-size must be >= 1"),
        (["evaluate", run, "--num", "-1"], "--num must be >= 1"),
        (["sample", run, "--resolution", "8x8x8"], "has 3 sizes, but image models take one size or 2"),
        (["sample", run, "--resolution", "64x"], "--resolution must be positive sizes"),
        (["sample", run, "--seed", str(2**70)], "--seed must be an integer in [0, 4294967295]"),
        (
            ["complete", run, "--input", str(png), "--mask", "half", "--seed", "-1"],
            "--seed must be an integer",
        ),
    ]
    for args, message in cases:
        code = main([*args, "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert code != 0 and message in err and "Error" not in err, (args, err)
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------- 4. sizes checked up front


def test_sizes_are_checked_before_any_work(trained, tmp_path, capsys):
    root, png = trained
    t0 = time.time()
    p = cli("reconstruct", root / "run", "--input", png, "--scale", 10000, "--out", "o", cwd=tmp_path)
    assert p.returncode != 0 and "280000x280000 grid" in p.stderr and "choose --scale <=" in p.stderr
    code = main(["sample", str(root / "run"), "--resolution", "100000", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0 and "of memory" in err and "the largest grid that fits is about" in err
    assert time.time() - t0 < 120 and not (tmp_path / "o").exists()


def test_large_sample_requests_stream_in_batches(trained, tmp_path, monkeypatch):
    from inrgen import tasks
    from inrgen.training import commands

    root, _ = trained
    sizes = []
    real = tasks.decode_chunked

    def spy(model, latent, coords, chunk_size=None, **kw):
        sizes.append(coords.shape[0])
        return real(model, latent, coords, chunk_size, **kw)

    monkeypatch.setattr(tasks, "decode_chunked", spy)
    monkeypatch.setattr(commands, "SAMPLE_BATCH", 8)
    s = commands.run_sample(root / "run", 20, "12", tmp_path / "s", seed=3)
    assert max(sizes) <= 8 and sum(sizes) == 20
    assert len([f for f in s["files"] if f.startswith("sample-")]) == 20
    assert (tmp_path / "s" / "sample-19.png").is_file()
    # files that would not fit on the disk: stopped early, nothing left behind
    monkeypatch.setattr(commands.shutil, "disk_usage", lambda p: SimpleNamespace(total=10**9, free=2000))
    with pytest.raises(commands.OutputError, match="samples fit"):
        commands.run_sample(root / "run", 100, "12", tmp_path / "t")
    assert not (tmp_path / "t").exists()
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []


# ------------------------------------------- 5-8. interrupts, logs across kills, resume, leftovers


def test_interrupts_save_a_checkpoint_and_logs_survive_kills(tmp_path, capsys):
    run = tmp_path / "run"
    log = run / "logs" / "metrics.csv"
    args = ["train", PRESET, "--max-steps", 100000, "--no-progress", *SMALL, "train.log_every=1",
            "train.checkpoint_every=1000"]  # fmt: skip
    # Ctrl-C: the step finishes, a checkpoint is saved, the resume command is printed, exit 130
    proc = start(*args, "--out", run, cwd=tmp_path)
    _wait_rows(proc, lambda: [log], 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    n1 = _step(run)
    assert n1 >= 3 and f"interrupted (SIGINT) at step {n1}" in err
    assert f"resume with: inrgen train {PRESET} --out {run} --resume" in err
    assert _train_steps(log) == list(range(1, n1 + 1))
    # SIGTERM on a resumed run with a changed learning rate: reported, recorded, saved, exit 143
    proc = start("train", PRESET, "--out", run, "--resume", "--max-steps", 100000, "--no-progress",
                 "train.lr=5e-4", cwd=tmp_path)  # fmt: skip
    _wait_rows(proc, lambda: [log], n1 + 3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert f"resuming {run} at step {n1}" in out and "train.lr 0.001 -> 0.0005" in out
    n2 = _step(run)
    assert n2 > n1 and f"interrupted (SIGTERM) at step {n2}" in err
    cfg = json.loads((run / "checkpoint" / "config.json").read_text())
    assert cfg["train"]["lr"] == 5e-4 and cfg["resumes"] == [
        {"step": n1, "changes": {"train.lr": [1e-3, 5e-4]}}
    ]
    assert _train_steps(log) == list(range(1, n2 + 1))
    # kill -9 while replacing the run with --overwrite: the run is untouched, the rows logged by then
    # are on disk
    weights = (run / "checkpoint" / "model.safetensors").read_bytes()
    proc = start(*args, "--out", run, "--overwrite", cwd=tmp_path)
    _wait_rows(proc, lambda: tmp_path.glob(".run.tmp-*/logs/metrics.csv"), 3)
    proc.kill()
    proc.communicate(timeout=60)
    assert (run / "checkpoint" / "model.safetensors").read_bytes() == weights and _step(run) == n2
    (killed,) = tmp_path.glob(".run.tmp-*")  # the killed replacement, beside the run
    assert _train_steps(killed / "logs" / "metrics.csv")[:3] == [1, 2, 3]
    # the next run completes, keeps the history once per step, and removes the killed one's leftovers
    code = main(["train", PRESET, "--out", str(run), "--resume", "--max-steps", str(n2 + 2), "--no-progress"])
    assert code == 0
    assert _train_steps(log) == list(range(1, n2 + 3))
    assert not list(tmp_path.glob(".run.*")) and not (run / ".inrgen.lock").exists()


def test_resume_refuses_model_overrides_and_applies_data_overrides(trained, tmp_path, capsys):
    run = _copy_run(trained, tmp_path)
    code = main(["train", PRESET, "--out", str(run), "--resume", "--max-steps", "3", "model.dim_z=8"])
    assert code != 0 and "model overrides cannot change on resume" in capsys.readouterr().err
    code = main(["train", PRESET, "--out", str(run), "--resume", "--max-steps", "3", "--no-progress",
                 "data.batch_size=2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "data.batch_size 4 -> 2" in out and "train.max_steps 2 -> 3" in out
    cfg = json.loads((run / "checkpoint" / "config.json").read_text())
    assert cfg["data"]["batch_size"] == 2 and cfg["step"] == 3
    assert cfg["resumes"][0]["changes"]["data.batch_size"] == [4, 2]


def test_leftovers_of_killed_writes_are_removed_never_live_ones(trained, tmp_path, capsys):
    root, _ = trained
    dead, live = _dead_pid(), os.getppid()
    for pid in (dead, live):
        (tmp_path / f".samples.tmp-{pid}-abc").mkdir()
        (tmp_path / f".samples.tmp-{pid}-abc" / "sample-00.png").write_bytes(b"x")
    assert main(["sample", str(root / "run"), "-n", "1", "--out", str(tmp_path / "samples")]) == 0
    assert (tmp_path / f".samples.tmp-{live}-abc").is_dir()
    assert not (tmp_path / f".samples.tmp-{dead}-abc").exists()
    run = _copy_run(trained, tmp_path / "r")
    for pid in (dead, live):
        old = run / f".checkpoint.old-{pid}"
        shutil.copytree(run / "checkpoint", old)
        (old / "model.safetensors").unlink()  # a kill while removing it: no weights left
    code = main(["train", PRESET, "--out", str(run), "--resume", "--max-steps", "3", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert (run / f".checkpoint.old-{live}").is_dir() and not (run / f".checkpoint.old-{dead}").exists()


# ------------------------------------------------------------------ 9. messages name the problem


def test_messages_name_the_problem(trained, tmp_path, capsys):
    root, png = trained
    # NaN weights: said so, not a torch.distributions validation dump
    bad = tmp_path / "nan"
    model = inrgen.load(root / "run")
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    cfg = json.loads((root / "run" / "checkpoint" / "config.json").read_text())
    save_checkpoint(bad, model, extra={k: v for k, v in cfg.items() if k not in ("model", "model_config")})
    code = main(["reconstruct", str(bad), "--input", str(png), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0 and "NaN or infinite weights" in err and "Normal" not in err
    # a pickled payload in training_state.pt: refused for safety, and it never ran
    run = _copy_run(trained, tmp_path)
    flag = tmp_path / "payload-ran"
    state = run / "checkpoint" / "training_state.pt"
    p = subprocess.run([sys.executable, "-c", (
        "import os, torch\n"
        "class P:\n"
        f"    def __reduce__(self): return (os.system, ('touch {flag}',))\n"
        f"torch.save({{'step': 2, 'optimizer': P(), 'rng': {{}}}}, {str(state)!r})\n"
    )], capture_output=True, text=True)  # fmt: skip
    assert p.returncode == 0, p.stderr
    code = main(["train", PRESET, "--out", str(run), "--resume", "--max-steps", "3"])
    err = capsys.readouterr().err
    assert (
        code != 0 and "holds pickled Python objects" in err and "for safety" in err and "damaged" not in err
    )
    assert not flag.exists()
    # images: RGBA is said to be RGBA; grey palette PNGs and GIFs are read like training reads them
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.zeros((28, 28, 4), dtype=np.uint8)).save(rgba)
    code = main(["reconstruct", str(root / "run"), "--input", str(rgba), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0 and "an RGBA image (3 colour channels + alpha)" in err and "3-channel" not in err
    grey = Image.open(png).convert("P")
    grey.save(tmp_path / "pal.png")
    grey.save(tmp_path / "pal.gif")
    for f in ("pal.png", "pal.gif"):
        code = main(
            [
                "reconstruct",
                str(root / "run"),
                "--input",
                str(tmp_path / f),
                "--out",
                str(tmp_path / f"o-{f}"),
            ]
        )
        assert code == 0, capsys.readouterr().err
    colour = Image.fromarray(np.random.default_rng(0).integers(0, 255, (28, 28, 3), dtype=np.uint8)).convert(
        "P"
    )
    colour.save(tmp_path / "colour.gif")
    code = main(
        [
            "reconstruct",
            str(root / "run"),
            "--input",
            str(tmp_path / "colour.gif"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code != 0 and "a colour palette image (PIL mode P)" in capsys.readouterr().err
    p = get_preset("vamoh-shapes-small")  # an RGB model reads any palette image, grey ones too
    save_checkpoint(tmp_path / "rgb", build_model(p.model, p.model_config), extra=checkpoint_extra(p, 0))
    for f in ("colour.gif", "pal.png"):
        code = main(
            [
                "reconstruct",
                str(tmp_path / "rgb"),
                "--input",
                str(tmp_path / f),
                "--out",
                str(tmp_path / f"r-{f}"),
            ]
        )
        assert code == 0, capsys.readouterr().err
    # a decompression bomb inside a folder is named
    folder = tmp_path / "imgs"
    folder.mkdir()
    shutil.copy(png, folder / "a.png")
    Image.new("1", (20000, 20000)).save(folder / "bomb.png")
    code = main(["reconstruct", str(root / "run"), "--input", str(folder), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0 and "bomb.png is too large to decode safely" in err
    # an empty voxel array
    p = get_preset("vamoh-voxels-small")
    save_checkpoint(tmp_path / "vox", build_model(p.model, p.model_config), extra=checkpoint_extra(p, 0))
    np.save(tmp_path / "empty.npy", np.zeros((0, 32, 32, 32), dtype=np.uint8))
    code = main(["reconstruct", str(tmp_path / "vox"), "--input", str(tmp_path / "empty.npy"),
                 "--out", str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "holds no voxels" in err and "zero-size" not in err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------ 10. umask


def test_outputs_follow_the_umask(trained, tmp_path, capsys):
    root, png = trained
    run = root / "run"
    for path in [run, run / "checkpoint", run / "images", run / "logs"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, path
    for path in [run / ".inrgen.json", run / "eval.json", run / "logs" / "metrics.csv",
                 *(run / "checkpoint").iterdir(), *(run / "images").iterdir()]:  # fmt: skip
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    old = os.umask(0o027)
    try:
        code = main(["reconstruct", str(run), "--input", str(png), "--out", str(tmp_path / "o")])
        code += main(["datasets", "--render", "mnist", "-n", "2", "--out", str(tmp_path / "m.png")])
    finally:
        os.umask(old)
    assert code == 0
    assert stat.S_IMODE((tmp_path / "o").stat().st_mode) == 0o750
    assert {stat.S_IMODE(f.stat().st_mode) for f in (tmp_path / "o").iterdir()} == {0o640}
    assert stat.S_IMODE((tmp_path / "m.png").stat().st_mode) == 0o640

"""The training engine never loses what a run made (issue 13): overwrites that fail leave the earlier
run, full disks and diverged weights keep the last good checkpoint, the CSV log survives a kill and
resumes, evaluations keep their history, leftovers of killed writes go (live ones stay), and every
setting is checked before the run folder exists. All on the tiny test model, in seconds."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from inrgen_tiny import TinyAE, TinyImages, tiny_preset

from inrgen.checkpoint import CheckpointWriteError, load_model, save_checkpoint
from inrgen.training import TrainError, fit
from inrgen.training.loggers import CSVMetrics
from inrgen.training.outputs import OutputError


def _fit(preset, out, **kw):
    kw.setdefault("train_set", TinyImages())
    kw.setdefault("test_set", TinyImages(4, offset=1))
    kw.setdefault("progress", False)
    return fit(preset, out, **kw)


def _dead_pid() -> int:
    p = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(p.stdout)


def _bytes(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir())}


def test_a_failing_overwrite_leaves_the_earlier_run(tmp_path, monkeypatch):
    _fit(tiny_preset(max_steps=3), tmp_path / "r", evaluate=False)
    before = _bytes(tmp_path / "r" / "checkpoint")
    real = TinyAE.loss

    def oom(self, batch, step=0):
        if step == 4:
            raise RuntimeError(
                "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"
            )
        return real(self, batch, step)

    monkeypatch.setattr(TinyAE, "loss", oom)
    with pytest.raises(
        TrainError, match="out of memory at step 4.*lower data.batch_size.*earlier run is kept"
    ):
        _fit(tiny_preset(), tmp_path / "r", overwrite=True, evaluate=False)
    assert _bytes(tmp_path / "r" / "checkpoint") == before
    assert [f.name for f in tmp_path.iterdir()] == ["r"]  # the replacement is gone


def test_every_setting_is_checked_before_the_folder_exists(tmp_path):
    for bad in [{"lr": float("nan")}, {"betas": (2.0, 3.0)}, {"grad_clip": -1.0}, {"checkpoint_every": 0},
                {"log_every": 0}, {"eval_every": -1}, {"seed": -1}, {"max_steps": 0}]:  # fmt: skip
        with pytest.raises(TrainError, match=f"train.{next(iter(bad))} must be"):
            _fit(tiny_preset(**bad), tmp_path / "r")
    p = tiny_preset()
    p.data.num_workers = -1
    with pytest.raises(TrainError, match="data.num_workers must be an integer >= 0"):
        _fit(p, tmp_path / "r")
    with pytest.raises(TrainError, match="--epochs must be a finite number > 0"):
        _fit(tiny_preset(), tmp_path / "r", epochs=float("inf"))
    with pytest.raises(TrainError, match="no held-out .test. items"):
        _fit(tiny_preset(), tmp_path / "r", test_set=TinyImages(0))
    with pytest.raises(TrainError, match="data.batch_size=40 is larger than the 12 training items"):
        _fit(tiny_preset(), tmp_path / "r", overrides=["data.batch_size=40"])
    assert not (tmp_path / "r").exists()


def test_a_full_disk_keeps_the_last_checkpoint_and_says_so(tmp_path, monkeypatch):
    if not (os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode)):
        pytest.skip("needs /dev/full")
    _fit(tiny_preset(max_steps=3), tmp_path / "r", evaluate=False)
    before = _bytes(tmp_path / "r" / "checkpoint")
    real = torch.save

    def full(obj, f, *a, **k):  # the kernel's own "no space left on device"
        with open("/dev/full", "wb") as dev:
            real(obj, dev, *a, **k)

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(
        TrainError, match="the disk is full.*earlier checkpoint there is kept.*resume with --resume"
    ):
        _fit(tiny_preset(), tmp_path / "r", resume=True, evaluate=False, max_steps=6)
    with pytest.raises(CheckpointWriteError, match="the disk is full"):
        save_checkpoint(
            tmp_path / "r" / "checkpoint", load_model(tmp_path / "r" / "checkpoint"), training_state={}
        )
    monkeypatch.undo()
    assert _bytes(tmp_path / "r" / "checkpoint") == before
    assert sorted(f.name for f in (tmp_path / "r").iterdir() if f.name.startswith(".")) == [".inrgen.json"]


def test_diverged_weights_never_replace_a_good_checkpoint(tmp_path, monkeypatch):
    from inrgen.training.module import INRLightningModule

    def diverge(self, outputs, batch, batch_idx):
        if self.step == 7:  # after the checkpoint of step 6, the weights turn NaN
            with torch.no_grad():
                self.model.dec[0].weight.fill_(float("nan"))

    monkeypatch.setattr(INRLightningModule, "on_train_batch_end", diverge, raising=False)
    with pytest.raises(
        TrainError, match="weights became NaN or infinite by step 7.*checkpoint of step 6 is kept"
    ):
        _fit(tiny_preset(max_steps=7), tmp_path / "r", evaluate=False)
    assert json.loads((tmp_path / "r" / "checkpoint" / "config.json").read_text())["step"] == 6
    load_model(tmp_path / "r" / "checkpoint")  # finite


def test_csv_rows_are_on_disk_as_they_are_logged_and_kept_across_resumes(tmp_path):
    path = tmp_path / "logs" / "metrics.csv"
    lg = CSVMetrics(path)
    lg.log_metrics({"train/loss": 1.0}, step=1)
    lg.log_metrics({"train/loss": 0.5}, step=2)
    assert path.read_text().splitlines() == ["step,train/loss", "1,1.0", "2,0.5"]  # no save() needed
    lg.log_metrics({"test/psnr": 20.0}, step=2)  # a new column: the file is rewritten, wider
    lg.log_metrics({"train/loss": 0.25}, step=3)
    assert path.read_text().splitlines() == ["step,test/psnr,train/loss", "1,,1.0", "2,,0.5", "2,20.0,",
                                             "3,,0.25"]  # fmt: skip
    # a run killed after step 3 and resumed from its checkpoint at step 2 keeps steps <= 2
    lg2 = CSVMetrics(path, resume_step=2)
    lg2.log_metrics({"train/loss": 0.3}, step=3)
    assert path.read_text().splitlines() == ["step,test/psnr,train/loss", "1,,1.0", "2,,0.5", "2,20.0,",
                                             "3,,0.3"]  # fmt: skip
    # through the engine: a stopped and resumed run has one row per step and the whole eval history
    _fit(tiny_preset(), tmp_path / "b", stop_at=3)
    _fit(tiny_preset(), tmp_path / "b", resume=True)
    ev = json.loads((tmp_path / "b" / "eval.json").read_text())
    assert [h["step"] for h in ev["history"]] == [3, 6]


def test_resume_applies_and_records_overrides(tmp_path, capsys):
    _fit(tiny_preset(), tmp_path / "r", stop_at=3, evaluate=False)
    r = _fit(tiny_preset(), tmp_path / "r", resume=True, evaluate=False, overrides=["train.lr=0.01"])
    assert r.changes == {"train.lr": [0.03, 0.01]} and r.preset.train.lr == 0.01
    assert "with changed settings: train.lr 0.03 -> 0.01" in capsys.readouterr().out
    cfg = json.loads((tmp_path / "r" / "checkpoint" / "config.json").read_text())
    assert cfg["train"]["lr"] == 0.01 and cfg["resumes"] == [
        {"step": 3, "changes": {"train.lr": [0.03, 0.01]}}
    ]
    with pytest.raises(TrainError, match="model overrides cannot change on resume"):
        _fit(tiny_preset(max_steps=9), tmp_path / "r", resume=True, overrides=["model.hidden=8"])


def test_saves_remove_leftovers_of_dead_writers_only(tmp_path):
    _fit(tiny_preset(max_steps=1), tmp_path / "r", log=False, evaluate=False)
    folder = tmp_path / "r" / "checkpoint"
    dead, live = _dead_pid(), os.getppid()
    names = [f".checkpoint.old-{dead}", f".checkpoint.tmp-{dead}-x", f".checkpoint.old-{live}",
             f".checkpoint.tmp-{live}-y"]  # fmt: skip
    for n in names:
        (folder.parent / n).mkdir()
        (folder.parent / n / "config.json").write_text("{}")
    save_checkpoint(folder, load_model(folder))
    left = sorted(f.name for f in folder.parent.iterdir() if f.name.startswith(".checkpoint"))
    assert left == sorted(names[2:])


def test_a_run_that_died_before_its_first_checkpoint_does_not_block_the_same_command(tmp_path, monkeypatch):
    real = TinyAE.loss

    def crash(self, batch, step=0):
        if step == 1:
            raise RuntimeError(
                "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"
            )
        return real(self, batch, step)

    monkeypatch.setattr(TinyAE, "loss", crash)
    with pytest.raises(TrainError, match="out of memory at step 1"):
        _fit(tiny_preset(), tmp_path / "r", evaluate=False)
    assert (tmp_path / "r" / ".inrgen.json").is_file() and not (tmp_path / "r" / "checkpoint").exists()
    monkeypatch.undo()
    with pytest.raises(OutputError, match="holds no checkpoint.*start it again without --resume"):
        _fit(tiny_preset(), tmp_path / "r", resume=True)
    assert _fit(tiny_preset(), tmp_path / "r", evaluate=False).step == 6  # no --overwrite needed

"""The training engine: schedule, data stream, RNG state, exact resume, atomic checkpoints, DDP, errors."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from inrgen_tiny import TinyImages, tiny_preset

import inrgen
from inrgen.checkpoint import CheckpointError, load_model, save_checkpoint
from inrgen.data.points import collate
from inrgen.models.base import build_model
from inrgen.training import (
    INRDataModule,
    StepSampler,
    TrainError,
    evaluate,
    fit,
    load_training_state,
    lr_factor,
)
from inrgen.training.outputs import OutputError
from inrgen.training.state import capture_rng, mix_seed, restore_rng, seeded

HERE = Path(__file__).parent


def _fit(preset, out, **kw):
    kw.setdefault("train_set", TinyImages())
    kw.setdefault("test_set", TinyImages(4, offset=1))
    kw.setdefault("progress", False)
    return fit(preset, out, **kw)


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------- schedule


def test_lr_factor_warmup_then_cosine():
    # linear warm-up reaches 1 at the end of the warm-up
    assert [lr_factor(s, 4, 20, "cosine") for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    # the cosine half-period: 1 at the start, 1/2 halfway, 0 at max_steps, symmetric around the middle
    assert lr_factor(4, 4, 20, "cosine") == 1.0
    assert lr_factor(12, 4, 20, "cosine") == pytest.approx(0.5, abs=1e-12)
    assert lr_factor(20, 4, 20, "cosine") == pytest.approx(0.0, abs=1e-12)
    for s in range(4, 20):
        a, b = lr_factor(s, 4, 20, "cosine"), lr_factor(24 - s, 4, 20, "cosine")
        assert a + b == pytest.approx(1.0, abs=1e-12)
        assert a == pytest.approx(0.5 * (1 + math.cos(math.pi * (s - 4) / 16)), abs=1e-12)
    assert {lr_factor(s, 0, 20, "constant") for s in range(30)} == {1.0}
    with pytest.raises(ValueError, match="train.schedule must be one of"):
        lr_factor(0, 0, 10, "linear")


# ---------------------------------------------------------------------------------- data stream


def test_step_sampler_epochs_are_permutations_and_ranks_partition_the_global_batch():
    n, B = 7, 4
    full = StepSampler(n, B, seed=3, start_step=0, num_steps=14)
    batches = list(full)
    stream = [i for _, idx in batches for i in idx]
    positions = [p for pos, _ in batches for p in pos]
    assert positions == list(range(14 * B))
    for e in range(len(stream) // n):  # every epoch visits every item exactly once
        assert sorted(stream[e * n : (e + 1) * n]) == list(range(n))
    assert stream[:n] != stream[n : 2 * n]  # epochs are reshuffled
    # two processes: rank r reads the r-th half of each global batch
    r0 = list(StepSampler(n, B, 3, 0, 14, rank=0, world_size=2))
    r1 = list(StepSampler(n, B, 3, 0, 14, rank=1, world_size=2))
    assert [a[1] + b[1] for a, b in zip(r0, r1)] == [idx for _, idx in batches]
    # resuming at step 5 reads exactly the tail of the uninterrupted stream
    assert list(StepSampler(n, B, 3, 5, 9)) == batches[5:]
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        StepSampler(n, 6, 3, 0, 1, rank=0, world_size=4)


def test_item_randomness_depends_on_stream_position_only():
    ds = TinyImages(noise=0.5)
    dm = INRDataModule(tiny_preset().data, seed=5, total_steps=3, train=ds, test=TinyImages(4, offset=1))
    torch.manual_seed(0)
    before = torch.get_rng_state()
    one = [b.values for b in dm.train_dataloader()]
    assert torch.equal(torch.get_rng_state(), before)  # loading never touches the global generator
    torch.manual_seed(99)  # a different global state changes nothing
    two = [b.values for b in dm.train_dataloader()]
    assert all(torch.equal(a, b) for a, b in zip(one, two))
    # and an item equals the item loaded alone under its position's seed
    sampler = StepSampler(len(ds), 4, 5, 0, 3)
    pos, idx = next(iter(sampler))
    with seeded(mix_seed(5, pos[2])):
        alone = ds[idx[2]]
    assert torch.equal(one[0][2], alone.values[0])


def test_eval_items_spread_over_a_class_sorted_split():
    from inrgen.training.data import EvalDataset

    labels = torch.arange(10).repeat_interleave(50)  # 500 items stored in class order
    ev = EvalDataset(torch.utils.data.TensorDataset(labels), num=20, seed=0)
    seen = torch.stack([ev[j][0] for j in range(len(ev))])
    assert torch.equal(torch.bincount(seen, minlength=10), torch.full((10,), 2))  # every class, equally
    assert ev.indices == sorted(set(ev.indices)) and ev.indices[0] == 0
    assert EvalDataset(torch.utils.data.TensorDataset(labels), num=900, seed=0).indices == list(range(500))


def test_rng_state_round_trip_and_plain_types(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    torch.rand(5), np.random.rand(3), random.random(), np.random.randn()  # leave a cached gaussian
    s = capture_rng()
    torch.save(s, tmp_path / "rng.pt")
    s = torch.load(tmp_path / "rng.pt", weights_only=True)
    a = (torch.rand(4), np.random.randn(4), random.random())
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    restore_rng(s)
    b = (torch.rand(4), np.random.randn(4), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


# ---------------------------------------------------------------------------------- resume


def test_resume_equals_uninterrupted_run(tmp_path):
    """Stopped at step 3 and resumed, a run ends with exactly the parameters of an uninterrupted run
    (model noise, item noise, shuffling, warm-up + cosine learning rate and clipping all in play)."""
    full = _fit(tiny_preset(), tmp_path / "a")
    part = _fit(tiny_preset(), tmp_path / "b", stop_at=3)
    assert part.step == 3
    state = load_training_state(tmp_path / "b" / "checkpoint")
    assert state["step"] == 3
    mid = _params(part.model)
    assert any(not torch.equal(mid[k], v) for k, v in _params(full.model).items())
    resumed = _fit(tiny_preset(), tmp_path / "b", resume=True)
    assert resumed.step == 6
    for k, v in _params(full.model).items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    # the loaded checkpoint is the trained model; the log keeps steps 1..6 once each
    loaded = inrgen.load(tmp_path / "b" / "checkpoint")
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in _params(full.model).items())
    rows = (tmp_path / "b" / "logs" / "metrics.csv").read_text().splitlines()
    train_steps = [int(r.split(",")[0]) for r in rows[1:] if r.split(",")[-1] != ""]
    assert sorted(set(train_steps)) == [1, 2, 3, 4, 5, 6]
    # the held-out evaluation equals an independent computation on the final model
    ev = resumed.eval
    dm = INRDataModule(tiny_preset().data, 7, 1, train=TinyImages(), test=TinyImages(4, offset=1))
    batch = collate([dm.eval_set()[i] for i in range(4)])
    with torch.no_grad():
        m = loaded.eval()
        pred = m.decode(m.encode(batch), batch.coords).mean.clamp(0, 1)
        per = -10 * torch.log10((pred - batch.values).pow(2).mean((1, 2)) + 1e-10)
    assert ev["psnr_mean"] == pytest.approx(float(per.mean()), abs=1e-4)
    assert ev["psnr_std"] == pytest.approx(float(per.std(unbiased=False)), abs=1e-4)
    assert (tmp_path / "b" / "images" / "recon-step0000006.png").is_file()
    assert (tmp_path / "b" / "images" / "samples-step0000006.png").is_file()


def test_training_state_is_plain(tmp_path):
    _fit(tiny_preset(max_steps=2), tmp_path / "r", log=False, evaluate=False)
    state = torch.load(tmp_path / "r" / "checkpoint" / "training_state.pt", weights_only=True)
    assert state["step"] == 2 and state["seed"] == 7
    assert int(state["optimizer"]["state"][0]["step"]) == 2
    assert state["scheduler"]["last_lr"] == pytest.approx(3e-2 * lr_factor(1, 2, 2, "cosine"))


def test_epochs_become_steps_of_the_global_batch(tmp_path):
    # 12 items, batch 4: 1.5 epochs = 18 items = 4.5 steps -> 5 steps
    r = _fit(tiny_preset(), tmp_path / "r", epochs=1.5, log=False, evaluate=False, checkpoint=False)
    assert r.step == 5 and r.preset.train.max_steps == 5


# ------------------------------------------------------------------------------ checkpoints


def test_crash_during_checkpoint_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    r = _fit(tiny_preset(max_steps=2), tmp_path / "r", log=False, evaluate=False)
    folder = tmp_path / "r" / "checkpoint"
    before = _params(r.model)
    import safetensors.torch as st

    def crash(tensors, filename, *a, **k):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(st, "save_file", crash)
    model = load_model(folder)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(folder, model, training_state={"step": 3})
    monkeypatch.undo()
    again = load_model(folder)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in before.items())
    assert load_training_state(folder)["step"] == 2
    assert sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(".checkpoint")) == []


def test_kill_between_folder_swaps_is_recovered(tmp_path):
    r = _fit(tiny_preset(max_steps=2), tmp_path / "r", log=False, evaluate=False)
    folder = tmp_path / "r" / "checkpoint"
    # a process killed after moving the old checkpoint aside and before renaming the new one in
    os.replace(folder, folder.with_name(".checkpoint.old-12345"))
    (tmp_path / "r" / ".checkpoint.tmp-abc").mkdir()  # and a half-written new one
    m = inrgen.load(folder)
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in _params(r.model).items())
    save_checkpoint(folder, m)  # the next save removes the stale temporary folder
    assert not (tmp_path / "r" / ".checkpoint.tmp-abc").exists()


def test_bad_checkpoint_folders(tmp_path):
    r = _fit(tiny_preset(max_steps=1), tmp_path / "r", log=False, evaluate=False)
    folder = tmp_path / "r" / "checkpoint"
    (folder / "training_state.pt").write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="training_state.pt cannot be read"):
        load_training_state(folder)
    (folder / "training_state.pt").unlink()
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        _fit(tiny_preset(max_steps=2), tmp_path / "r", resume=True)
    (folder / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(folder)
    del r


# ----------------------------------------------------------------------------------- errors


def test_bad_runs_fail_before_training(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="pass --overwrite"):
        _fit(tiny_preset(), out)
    with pytest.raises(OutputError, match="not written by inrgen"):
        _fit(tiny_preset(), out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    with pytest.raises(OutputError, match="not an inrgen run folder"):
        _fit(tiny_preset(), out, resume=True)
    p = tiny_preset()
    p.model_config.out_channels = 3
    with pytest.raises(TrainError, match="trained on 3-channel values"):
        _fit(p, tmp_path / "c")
    assert not (tmp_path / "c").exists()  # nothing was created
    with pytest.raises(TrainError, match="cannot set up training"):
        _fit(tiny_preset(), tmp_path / "p", precision="13-bogus")
    assert not (tmp_path / "p").exists()
    with pytest.raises(TrainError, match="already at step 2"):
        _fit(tiny_preset(max_steps=2), tmp_path / "d", log=False, evaluate=False)
        _fit(tiny_preset(max_steps=2), tmp_path / "d", resume=True)


# ------------------------------------------------------------------------------------- DDP

_DDP_SCRIPT = """
import sys
sys.path.insert(0, {here!r})
import torch
torch.set_num_threads(1)
from inrgen_tiny import TinyImages, tiny_preset
from inrgen.training import fit
p = tiny_preset(max_steps=3, grad_clip=None)
p.model_config.noise = 0.0
p.data.batch_size = 8
fit(p, sys.argv[1], train_set=TinyImages(noise=0.0), test_set=TinyImages(4, offset=1), progress=False,
    log=False, evaluate=False, devices=2, strategy="ddp", accelerator="cpu")
"""


def test_ddp_two_cpu_processes_equal_one_process(tmp_path):
    """Two gloo processes with 4 items each reach the parameters of one process with the batch of 8."""
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT.format(here=str(HERE)))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "ddp")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    p = tiny_preset(max_steps=3, grad_clip=None)
    p.model_config.noise = 0.0
    p.data.batch_size = 8
    one = _fit(p, tmp_path / "one", train_set=TinyImages(noise=0.0), log=False, evaluate=False)
    two = load_model(tmp_path / "ddp" / "checkpoint")
    for k, v in one.model.state_dict().items():
        torch.testing.assert_close(two.state_dict()[k], v, rtol=1e-5, atol=1e-6)
    assert load_training_state(tmp_path / "ddp" / "checkpoint")["step"] == 3


# ------------------------------------------------------------------------------- evaluation


def test_evaluate_per_item_psnr_of_a_perfect_and_a_constant_model():
    ds = TinyImages(4, noise=0.0)
    batch = collate([ds[i] for i in range(4)])
    model = build_model("test-tiny-ae", tiny_preset().model_config)

    class Const(torch.nn.Module):  # decode a constant 0.5 everywhere
        def forward(self, x):
            return torch.zeros(*x.shape[:-1], 1)

    model.dec = Const()
    s = evaluate(model, [batch], with_loss=False)
    ref = -10 * torch.log10((0.5 - batch.values.double()).pow(2).mean((1, 2)))
    assert s["psnr_per_item"] == pytest.approx(ref.tolist(), abs=1e-3)
    assert s["psnr_std"] == pytest.approx(float(ref.std(unbiased=False)), abs=1e-4)
    assert s["num_items"] == 4
    # VaMoH's Eq. 19-20 PSNR sums over channels: equal to the per-value PSNR for one channel
    assert s["psnr_per_point_mean"] == pytest.approx(s["psnr_mean"]) and "Eq. 19-20" in s["psnr_definition"]

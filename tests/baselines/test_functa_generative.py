"""Generative Functa: a flow over the functaset after meta-learning (the INR frozen in the flow phase), the
flow's own learning rate, exact resume across the phase switch, sampling at any resolution, ``inrgen
sample`` on a Functa checkpoint; a non-generative Functa is unchanged."""

from __future__ import annotations

import json

import pytest
import torch

import inrgen
from inrgen import tasks
from inrgen.cli import main
from inrgen.configs import get_preset
from inrgen.data.points import PointSet
from inrgen.models.functa import Functa, FunctaConfig
from inrgen.training import fit
from inrgen.training.functaset import FunctaFlowModule, fit_functaset
from inrgen.training.module import procedure_for


def cfg(**kw) -> FunctaConfig:
    base = dict(out_channels=1, depth=3, width=16, latent_dim=6, prior="realnvp", flow_layers=2,
                flow_hidden=(16,), flow_start_step=2, flow_lr=5e-3)  # fmt: skip
    base.update(kw)
    return FunctaConfig(**base)


class _Images(torch.utils.data.Dataset):
    modality = "image"

    def __init__(self, n=12, seed=3):
        self.x = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return PointSet.from_image(self.x[i : i + 1])


def _preset(**kw):
    p = get_preset("functa-flow-mnist-small")
    p.model_config = cfg(**kw)
    p.data.batch_size, p.data.eval_batch_size, p.data.num_eval = 4, 4, 4
    p.train.max_steps, p.train.log_every, p.train.eval_every, p.train.checkpoint_every = 4, 1, 0, 1
    return p


def _fit(out, preset=None, **kw):
    kw.setdefault("train_set", _Images())
    kw.setdefault("test_set", _Images(4, seed=5))
    return fit(preset or _preset(), out, progress=False, **kw)


def test_plain_functa_is_not_generative_and_unchanged():
    m = Functa(FunctaConfig(out_channels=1, depth=3, width=8, latent_dim=4))
    assert not m.generative and m.flow is None
    assert procedure_for(m) is not FunctaFlowModule
    assert not any("flow" in k for k in m.state_dict())  # old checkpoints still load
    with pytest.raises(ValueError, match="not generative"):
        m.sample_latent(2)
    with pytest.raises(ValueError, match="not generative"):
        tasks.generate(m, 2, shape=(4, 4))


def test_flow_loss_is_the_nll_of_the_functaset():
    torch.manual_seed(0)
    m = Functa(cfg(functaset_steps=4)).eval()
    ps = PointSet.from_image(torch.rand(3, 1, 8, 8))
    phi = m.functaset(ps)
    torch.testing.assert_close(phi, m.adapt(ps, 4).detach())
    torch.testing.assert_close(phi, m.functaset(ps))  # deterministic: a fixed functaset for a frozen INR
    out = m.loss(ps, step=5)
    torch.testing.assert_close(out["nll"], -m.prior().log_prob(phi).mean().detach())
    torch.testing.assert_close(out["loss"], out["nll"] / 6)
    assert not m.flow_phase(1) and m.flow_phase(2)
    assert "nll" not in m.loss(ps, step=1)  # meta-learning before flow_start_step


def test_flow_phase_freezes_the_inr_and_trains_the_flow_at_its_lr(tmp_path):
    _fit(tmp_path / "a", stop_at=2)
    at2 = inrgen.load(tmp_path / "a" / "checkpoint")
    r = _fit(tmp_path / "a", resume=True)
    end = r.model.state_dict()
    for k, v in at2.state_dict().items():
        if k.startswith("flow"):
            continue
        assert torch.equal(v, end[k]), k  # the INR and meta-SGD rates do not move in the flow phase
    assert any(not torch.equal(v, end[k]) for k, v in at2.state_dict().items() if k.startswith("flow."))
    assert int(r.model.flow_steps) == 2 and bool(r.model.flow.layers[0].initialized)
    st = torch.load(tmp_path / "a" / "checkpoint" / "training_state.pt", weights_only=True)
    groups = {g["name"]: g["lr"] for g in st["optimizer"]["param_groups"]}
    assert groups == {"inr": pytest.approx(1e-3), "flow": pytest.approx(5e-3)}


def test_resume_across_the_phase_switch_equals_uninterrupted(tmp_path):
    full = _fit(tmp_path / "full")
    _fit(tmp_path / "part", stop_at=3)
    resumed = _fit(tmp_path / "part", resume=True)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_sampling_at_any_resolution_and_fit_functaset(tmp_path):
    r = _fit(tmp_path / "r")
    m = r.model.eval()
    assert m.generative and procedure_for(m) is FunctaFlowModule
    a = tasks.generate(m, 3, shape=(8, 8), generator=torch.Generator().manual_seed(1))
    b = tasks.generate(m, 3, shape=(8, 8), generator=torch.Generator().manual_seed(1), chunk_size=7)
    torch.testing.assert_close(a.mean, b.mean)
    big = tasks.generate(m, 3, shape=(33, 20), generator=torch.Generator().manual_seed(1))
    assert big.mean.shape == (3, 660, 1) and torch.isfinite(big.mean).all()
    # the same modulations at any resolution: the seed fixes phi
    phi = m.sample_latent(3, torch.Generator().manual_seed(1))
    torch.testing.assert_close(m.decode(phi, inrgen.coords.grid((8, 8)).expand(3, -1, -1)).mean, a.mean)
    fs = fit_functaset(m, _Images(5), batch_size=2)
    assert fs.shape == (5, 6)
    torch.testing.assert_close(fs, m.functaset(PointSet.from_image(_Images(5).x)))


def test_untrained_flow_warns():
    m = Functa(cfg())
    with pytest.warns(UserWarning, match="untrained"):
        m.sample_latent(2)


def test_cli_sample_on_a_functa_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    small = ["data.batch_size=4", "data.eval_batch_size=4", "data.num_eval=4", "train.eval_every=0",
             "model.flow_start_step=1"]  # fmt: skip
    args = ["train", "functa-flow-mnist-small", "--max-steps", "2", "--out", str(out), "--no-progress"]
    code = main([*args, *small])
    assert code == 0, capsys.readouterr().err
    samples = tmp_path / "samples"
    code = main(["sample", str(out), "-n", "2", "--resolution", "56", "--out", str(samples), "--seed", "3"])
    assert code == 0, capsys.readouterr().err
    s = json.loads((samples / "summary.json").read_text())
    assert s["n"] == 2 and s["resolution"] == [56, 56]
    assert (samples / "samples.png").is_file()

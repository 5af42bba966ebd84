"""GASP: the generator against a hand-written INR, the discriminator's shared and per-item paths, the
losses and R1 penalty against their formulas, the alternating procedure (one step = one update of each
player, exact resume), sampling at any resolution for every modality, ``inrgen train`` / ``sample``."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import inrgen
from inrgen import tasks
from inrgen.cli import main
from inrgen.configs import get_preset
from inrgen.data.points import PointSet
from inrgen.models.gasp import GASP, GASPConfig
from inrgen.nn.hypernet import num_params
from inrgen.training import fit
from inrgen.training.adversarial import DISC_LR_RATIO, AdversarialModule
from inrgen.training.module import INRLightningModule, procedure_for


def tiny_config(**kw) -> GASPConfig:
    base = dict(
        coord_dim=2, out_channels=1, dim_z=6, hypernet_hidden=(12,), inr_hidden=(8, 8), fourier_features=8,
        disc_centroids=(16, 4, 1), disc_neighbors=(5, 5, 4), disc_out_channels=(6, 8, 1),
        disc_avgpool_centroids=(8, None, None), disc_avgpool_neighbors=(5, None, None),
        disc_weightnet_hidden=(8, 8), inversion_steps=30,
    )  # fmt: skip
    base.update(kw)
    return GASPConfig(**base)


def images(n=4, size=8, seed=0):
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------- generator


def test_generator_is_the_released_inr_with_the_hypernetwork_layout():
    """theta = g(z) holds all weights (out, in) first, then all biases; f = tanh(MLP(gamma(x)))."""
    torch.manual_seed(0)
    model = GASP(tiny_config()).double()
    z = torch.randn(3, 6, dtype=torch.float64)
    x = torch.rand(3, 10, 2, dtype=torch.float64) * 2 - 1  # different coordinates per item
    flat = model.hypernet.flat(z)[:, 0]  # (b, p)
    out = model.generator_output(z, x)
    for b in range(3):
        B = model.features.B.double()
        h = torch.cat([torch.cos(2 * math.pi * x[b] @ B.T), torch.sin(2 * math.pi * x[b] @ B.T)], -1)
        shapes = [(8, 16), (8, 8), (1, 8)]
        ws, start = [], 0
        for o, i in shapes:
            ws.append(flat[b, start : start + o * i].reshape(o, i))
            start += o * i
        bs = []
        for o, _ in shapes:
            bs.append(flat[b, start : start + o])
            start += o
        for j in range(3):
            h = F.linear(h, ws[j], bs[j])
            h = F.leaky_relu(h, 0.1) if j < 2 else torch.tanh(h)
        torch.testing.assert_close(out[b], h)
    torch.testing.assert_close(model.decode(z, x).mean, (out + 1) / 2)


def test_shared_coordinates_equal_the_per_item_path():
    torch.manual_seed(0)
    model = GASP(tiny_config()).double()
    z = torch.randn(3, 6, dtype=torch.float64)
    x = torch.rand(1, 20, 2, dtype=torch.float64)
    shared = model.generator_output(z, x.expand(3, -1, -1))
    loop = torch.cat([model.generator_output(z[i : i + 1], x) for i in range(3)])
    torch.testing.assert_close(shared, loop)


def test_released_celebahq64_generator_size():
    """z 64 -> [256, 512] -> the 66,307 parameters of INR 256 -> 128 x 3 -> 3 (GASP's config)."""
    model = GASP(get_preset("gasp-celebahq64").model_config)
    assert num_params(model.inr_shapes) == 256 * 128 + 2 * 128 * 128 + 128 * 3 + 3 * 128 + 3 == 66_307
    hyper = sum(p.numel() for p in model.generator_parameters())
    assert hyper == (64 * 256 + 256) + (256 * 512 + 512) + (512 * 66_307 + 66_307)


def test_unit_value_range_uses_a_sigmoid():
    model = GASP(tiny_config(value_range="unit"))
    z, x = torch.randn(2, 6), torch.rand(2, 5, 2)
    out = model.generator_output(z, x)
    assert (out > 0).all() and (out < 1).all()
    torch.testing.assert_close(model.decode(z, x).mean, out)
    torch.testing.assert_close(model.to_disc(torch.tensor([0.25])), torch.tensor([0.25]))


# --------------------------------------------------------------------------------- discriminator


@pytest.mark.parametrize("train_mode", [False, True])
def test_discriminator_shared_geometry_equals_per_item(train_mode):
    """The once-per-batch geometry gives the per-item result (BatchNorm statistics included)."""
    torch.manual_seed(0)
    model = GASP(tiny_config()).double()
    d = model.discriminator.train(train_mode)
    ps = PointSet.from_image(images(3).double())
    a = d(ps, shared=True)
    b = d(ps, shared=False)
    assert a.shape == (3,)
    torch.testing.assert_close(a, b)


def test_discriminator_ignores_unobserved_points():
    torch.manual_seed(0)
    model = GASP(tiny_config()).double().eval()
    ps = PointSet.from_image(images(2).double())
    keep = torch.zeros(64, dtype=torch.bool)
    keep[torch.randperm(64)[:40]] = True
    masked = ps.with_mask(keep)
    noisy = masked.with_values(torch.where(keep[None, :, None], ps.values, torch.rand_like(ps.values) * 9))
    torch.testing.assert_close(model.discriminator(masked), model.discriminator(noisy))
    gathered = ps.gather(keep.nonzero().flatten())
    torch.testing.assert_close(model.discriminator(masked), model.discriminator(gathered))
    with pytest.raises(ValueError, match="at least"):
        model.discriminator(ps.with_mask(torch.arange(64) < 0))


def test_gasp_released_configs_end_in_a_logit_layer():
    for name in ("gasp-celebahq64", "gasp-chairs", "gasp-mnist-small"):
        d = GASP(get_preset(name).model_config).discriminator
        assert d.logit_is_last and d.head is None
        assert isinstance(d.norms[-1], torch.nn.Identity)  # no BatchNorm / activation on the logit
    assert [s[0] for s in GASP(get_preset("gasp-chairs").model_config).discriminator.stages] == [
        "conv", "conv", "pool", "conv", "pool", "conv", "pool", "conv"
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------ losses


@pytest.mark.parametrize("r1_on", ["probability", "logit"])
def test_losses_are_bce_and_r1_is_the_input_gradient_norm(r1_on):
    torch.manual_seed(0)
    model = GASP(tiny_config(r1_on=r1_on)).double().eval()
    ps = PointSet.from_image(images(3).double())
    z = torch.randn(3, 6, dtype=torch.float64)
    out = model.discriminator_loss(ps, z)
    real = (2 * ps.values - 1).requires_grad_(True)
    t_real = model.discriminator(ps.with_values(real))
    fake = model.generator_output(z, ps.coords).detach()
    t_fake = model.discriminator(ps.with_values(fake))
    bce = F.binary_cross_entropy
    torch.testing.assert_close(out["d_real"], bce(torch.sigmoid(t_real), torch.ones(3, dtype=torch.float64)))
    torch.testing.assert_close(out["d_fake"], bce(torch.sigmoid(t_fake), torch.zeros(3, dtype=torch.float64)))
    # R1 per item: ||d s_b / d y_b||^2 summed over points and channels, with s = sigmoid(t) or t
    (g,) = torch.autograd.grad(t_real.sum(), real)
    per_item = g.pow(2).sum((1, 2))
    if r1_on == "probability":  # d sigmoid(t) = sigmoid(t) (1 - sigmoid(t)) dt
        s = torch.sigmoid(t_real.detach())
        per_item = (s * (1 - s)) ** 2 * per_item
    torch.testing.assert_close(out["r1"], per_item.mean())
    torch.testing.assert_close(out["d_loss"], out["d_real"] + out["d_fake"] + 5.0 * out["r1"])
    g_out = model.generator_loss(ps, z)
    ones = torch.ones(3, dtype=torch.float64)
    torch.testing.assert_close(g_out["g_loss"], bce(torch.sigmoid(t_fake), ones))


def test_loss_reports_both_players_without_gradients():
    model = GASP(tiny_config())
    with torch.no_grad():
        terms = model.loss(PointSet.from_image(images(2)))
    assert {"loss", "d_loss", "g_loss", "r1", "d_real", "d_fake"} <= set(terms)
    assert all(not v.requires_grad for v in terms.values())
    assert torch.isfinite(terms["r1"]) and terms["r1"] > 0


def test_train_max_points_is_a_random_subset_shared_by_the_batch():
    model = GASP(tiny_config(train_max_points=20))
    ps = PointSet.from_image(images(3))
    sub = model.prepare_batch(ps, torch.Generator().manual_seed(0))
    assert sub.num_points == 20 and sub.shares_coords()
    idx = [int(((ps.coords[0] - c).abs().sum(-1) == 0).nonzero()) for c in sub.coords[0]]
    assert len(set(idx)) == 20
    torch.testing.assert_close(sub.values, ps.values[:, idx])


# ---------------------------------------------------------------------------------- the procedure


def test_gasp_trains_with_the_adversarial_procedure():
    model = GASP(tiny_config())
    assert procedure_for(model) is AdversarialModule
    assert procedure_for(torch.nn.Module()) is INRLightningModule


class _Images(torch.utils.data.Dataset):
    modality = "image"

    def __init__(self, n=12):
        self.x = images(n, seed=3)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return PointSet.from_image(self.x[i : i + 1])


def _preset(max_steps=4):
    p = get_preset("gasp-mnist-small")
    p.model_config = tiny_config()
    p.data.batch_size, p.data.eval_batch_size, p.data.num_eval = 4, 4, 4
    p.train.max_steps, p.train.log_every, p.train.eval_every, p.train.checkpoint_every = max_steps, 1, 2, 2
    return p


def _fit(out, **kw):
    kw.setdefault("train_set", _Images())
    kw.setdefault("test_set", _Images(4))
    return fit(_preset(kw.pop("max_steps", 4)), out, progress=False, **kw)


def test_one_step_updates_each_player_once_with_gasp_adam(tmp_path):
    torch.manual_seed(0)
    start = GASP(tiny_config())
    before = {k: v.clone() for k, v in start.state_dict().items()}
    result = _fit(tmp_path / "r", max_steps=1, model=start, evaluate=False, log=False)
    assert result.step == 1
    after = result.model.state_dict()
    moved = {k for k in after if after[k].is_floating_point() and not torch.equal(after[k], before[k])}
    assert any(k.startswith("hypernet.") for k in moved)
    assert any(k.startswith("discriminator.") for k in moved)
    state = torch.load(result.checkpoint / "training_state.pt", weights_only=True)
    groups = state["optimizer"]["param_groups"]
    assert [g["name"] for g in groups] == ["generator", "discriminator"]
    assert [tuple(g["betas"]) for g in groups] == [(0.5, 0.999)] * 2
    assert groups[1]["lr"] == pytest.approx(DISC_LR_RATIO * groups[0]["lr"])
    # Adam took exactly one step for every parameter of both players
    assert {int(s["step"]) for s in state["optimizer"]["state"].values()} == {1}


def test_resume_equals_uninterrupted_run(tmp_path):
    full = _fit(tmp_path / "a")
    _fit(tmp_path / "b", stop_at=2)
    resumed = _fit(tmp_path / "b", resume=True)
    assert full.step == resumed.step == 4
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    ev = json.loads((tmp_path / "a" / "eval.json").read_text())["latest"]
    assert {"psnr_mean", "loss/d_loss", "loss/g_loss"} <= set(ev)
    assert (tmp_path / "a" / "images" / "samples-step0000004.png").is_file()


def test_grad_clip_is_refused():
    p = _preset()
    p.train.grad_clip = 1.0
    with pytest.raises(ValueError, match="grad_clip"):
        AdversarialModule(GASP(p.model_config), p.train)


# ------------------------------------------------------------------------- sampling and inversion


def test_generate_at_any_resolution_chunked():
    torch.manual_seed(0)
    model = GASP(tiny_config()).eval()
    for shape in [(8, 8), (17, 23), (64, 64)]:
        a = tasks.generate(model, 3, shape=shape, generator=torch.Generator().manual_seed(1))
        b = tasks.generate(model, 3, shape=shape, generator=torch.Generator().manual_seed(1), chunk_size=50)
        assert a.mean.shape == (3, shape[0] * shape[1], 1)
        torch.testing.assert_close(a.mean, b.mean)
        assert (a.mean >= 0).all() and (a.mean <= 1).all()
    # the same functions at any coordinates: a point decoded alone equals it inside a grid
    z = model.sample_latent(2, torch.Generator().manual_seed(2))
    grid = inrgen.coords.grid((9, 9)).unsqueeze(0).expand(2, -1, -1)
    full = model.decode(z, grid).mean
    torch.testing.assert_close(model.decode(z, grid[:, 40:41]).mean, full[:, 40:41])


@pytest.mark.parametrize("name", ["gasp-voxels-small", "gasp-sphere-small", "gasp-mnist-small"])
def test_every_modality_samples(name):
    model = GASP(get_preset(name).model_config).eval()
    if name == "gasp-voxels-small":
        coords = inrgen.coords.grid((6, 7, 5))
    elif name == "gasp-sphere-small":
        lat, lon = inrgen.coords.equiangular_latlon(10, 20)
        coords = inrgen.coords.latlon_grid(lat, lon)
    else:
        coords = inrgen.coords.grid((56, 56))
    pred = tasks.generate(model, 2, coords=coords, chunk_size=1000)
    assert pred.mean.shape == (2, coords.shape[0], 1) and torch.isfinite(pred.mean).all()


def test_inversion_fits_a_generated_function():
    torch.manual_seed(0)
    model = GASP(tiny_config(inversion_steps=150)).eval()
    z = model.sample_latent(3, torch.Generator().manual_seed(4))
    grid = inrgen.coords.grid((8, 8)).unsqueeze(0).expand(3, -1, -1)
    target = PointSet(grid, model.decode(z, grid).mean.detach(), grid_shape=(8, 8), kind="grid")
    err0 = (model.decode(torch.zeros_like(z), grid).mean - target.values).pow(2).mean()
    with torch.no_grad():
        z_hat = model.encode(target)
    err = (model.decode(z_hat, grid).mean - target.values).pow(2).mean()
    assert err < 0.1 * err0
    assert all(p.grad is None for p in model.parameters())  # the generator is not touched


def test_cli_train_and_sample(tmp_path, capsys):
    out = tmp_path / "run"
    small = ["data.batch_size=4", "data.eval_batch_size=4", "data.num_eval=4", "train.eval_every=0"]
    code = main(["train", "gasp-mnist-small", "--max-steps", "2", "--out", str(out), "--no-progress", *small])
    assert code == 0, capsys.readouterr().err
    samples = tmp_path / "samples"
    code = main(["sample", str(out), "-n", "3", "--resolution", "56", "--out", str(samples), "--seed", "3"])
    assert code == 0, capsys.readouterr().err
    s = json.loads((samples / "summary.json").read_text())
    assert s["n"] == 3 and s["resolution"] == [56, 56]
    model = inrgen.load(out / "checkpoint")
    assert isinstance(model, GASP)
    ref = tasks.generate(model, 3, shape=(56, 56), generator=torch.Generator().manual_seed(3))
    assert ref.mean.shape == (3, 56 * 56, 1)

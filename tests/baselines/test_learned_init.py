"""Learned Init: MAML inner steps, the ||W||^2-scaled step's scale invariance, gradients, presets."""

from __future__ import annotations

import pytest
import torch
from test_functa import smooth_images

from inrgen import PointSet
from inrgen.configs import get_preset
from inrgen.models import build_model
from inrgen.models.learned_init import LearnedInit, LearnedInitConfig


def tiny(**kw) -> LearnedInit:
    cfg = dict(out_channels=1, depth=3, width=32, num_freqs=4, sigma=4.0, inner_steps=2, inner_lr=0.01)
    cfg.update(kw)
    torch.manual_seed(0)
    return LearnedInit(LearnedInitConfig(**cfg))


@pytest.mark.parametrize("inr", ["hyponet", "siren"])
def test_maml_inner_steps_lower_the_loss_after_meta_training(inr):
    kw = {"inner_lr": 0.05} if inr == "hyponet" else {"w0": 30.0, "inner_lr": 1e-2, "adapt_biases": True}
    model = tiny(inr=inr, **kw)
    train = PointSet.from_image(smooth_images(64, seed=0))
    held_out = PointSet.from_image(smooth_images(32, seed=1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(30):
        batch = train[(step * 16) % 64 : (step * 16) % 64 + 16]
        out = model.loss(batch, step)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()

    def losses(steps):
        w = model.encode(held_out, steps=steps)
        with torch.no_grad():
            pred = model.decode(w, held_out.coords).mean
        return ((pred - held_out.values) ** 2).mean((1, 2))

    at_init, one, two = losses(0), losses(1), losses(2)
    assert (one < at_init).all() and (two < one).all()
    assert two.mean() < 0.8 * at_init.mean()


def test_one_step_is_sgd_on_each_item_with_the_norm_scaling():
    model = tiny().double()
    ps = PointSet.from_image(smooth_images(2)).to(dtype=torch.float64)
    w = model.encode(ps, steps=1)
    for b in range(2):
        params = {k: v.detach().clone().requires_grad_(True) for k, v in model.init_params(1).items()}
        pred = model.inr(ps.coords[b : b + 1], params)
        loss = ((pred - ps.values[b : b + 1]) ** 2).mean()
        grads = torch.autograd.grad(loss, list(params.values()))
        for (k, v), g in zip(params.items(), grads):
            expected = v - 0.01 * v.pow(2).sum() * g
            torch.testing.assert_close(w[k][b], expected[0].detach(), rtol=1e-12, atol=1e-14)


def test_weight_normalised_adaptation_is_invariant_to_the_scale_of_the_init():
    # With unit-norm fan-in vectors and the ||W||_F^2 step scaling, multiplying the init of a layer by c > 0
    # changes neither the INR nor its adapted version (the IPC code's reason for the scaling).
    model = tiny().double()
    ps = PointSet.from_image(smooth_images(3)).to(dtype=torch.float64)
    with torch.no_grad():
        ref = model.decode(model.encode(ps), ps.coords).mean
        for c, w in zip([0.1, 7.0, 3.0], model.weights):
            w.mul_(c)
        scaled = model.decode(model.encode(ps), ps.coords).mean
    torch.testing.assert_close(scaled, ref, rtol=1e-9, atol=1e-11)


def test_batched_adaptation_equals_one_item_at_a_time():
    model = tiny(adapt_biases=True)
    ps = PointSet.from_image(smooth_images(3))
    with torch.no_grad():
        batched = model.decode(model.encode(ps), ps.coords).mean
        for b in range(3):
            one = model.decode(model.encode(ps[b]), ps.coords[b : b + 1]).mean
            torch.testing.assert_close(one, batched[b : b + 1], rtol=1e-5, atol=1e-6)


def test_second_order_gradient_matches_finite_differences_and_first_order_differs():
    torch.manual_seed(2)
    kw = dict(out_channels=1, depth=2, width=5, num_freqs=2, sigma=2.0, inner_steps=2, inner_lr=0.5)
    model = LearnedInit(LearnedInitConfig(**kw)).double()
    ps = PointSet.from_image(smooth_images(2, size=3)).to(dtype=torch.float64)
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(model.loss(ps)["loss"], list(params.values()))
    eps = 1e-6
    for (name, p), g in zip(params.items(), grads):
        idx = (0,) * p.dim()
        with torch.no_grad():
            old = p[idx].item()
            p[idx] = old + eps
            up = model.loss(ps)["loss"].item()
            p[idx] = old - eps
            down = model.loss(ps)["loss"].item()
            p[idx] = old
        assert g[idx].item() == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9), name
    fo = LearnedInit(LearnedInitConfig(**kw, first_order=True)).double()
    fo.load_state_dict(model.state_dict())
    fo_grads = torch.autograd.grad(fo.loss(ps)["loss"], list(fo.parameters()))
    assert (fo_grads[0] - grads[0]).norm() > 1e-3 * grads[0].norm()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="inr must be one of"):
        LearnedInitConfig(inr="mlp")
    model = tiny()
    with pytest.raises(ValueError, match="per-item weights"):
        model.decode(torch.zeros(1, 4), torch.zeros(1, 4, 2))


PRESETS = [
    "learnedinit-celeba178",
    "learnedinit-imagenette178",
    "learnedinit-ffhq256",
    "learnedinit-mnist-small",
]


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_builds_and_trains_two_steps(name):
    preset = get_preset(name)
    cfg = preset.model_config
    torch.manual_seed(0)
    model = build_model(preset.model, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=preset.train.lr)
    g = torch.Generator().manual_seed(0)
    ps = PointSet(torch.rand(2, 32, cfg.coord_dim, generator=g) * 2 - 1, torch.rand(2, 32, cfg.out_channels))
    before = model.weights[1].detach().clone()
    for step in range(2):
        out = model.loss(ps, step)
        assert torch.isfinite(out["loss"])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert not torch.equal(before, model.weights[1].detach())

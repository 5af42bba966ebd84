"""Functa: the meta-SGD inner loop, its gradients (second order vs finite differences), presets."""

from __future__ import annotations

import math

import pytest
import torch

from inrgen import PointSet
from inrgen.configs import get_preset
from inrgen.models import build_model
from inrgen.models.functa import Functa, FunctaConfig


def smooth_images(n: int, size: int = 8, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """Random low-frequency images in [0, 1]: 0.5 + 0.4 * sin(a . x + b), one (a, b) per item."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    a = torch.randn(n, channels, 2, generator=g) * 2.0
    b = torch.rand(n, channels, 1, 1, generator=g) * 2 * math.pi
    arg = a[..., 0, None, None] * y + a[..., 1, None, None] * x + b
    return 0.5 + 0.4 * torch.sin(arg)


def tiny(**kw) -> Functa:
    cfg = dict(out_channels=1, depth=3, width=32, latent_dim=8, inner_steps=3)
    cfg.update(kw)
    torch.manual_seed(0)
    return Functa(FunctaConfig(**cfg))


def test_zero_inner_steps_returns_the_zero_latent():
    model = tiny(inner_steps=0)
    ps = PointSet.from_image(smooth_images(3))
    phi = model.encode(ps)
    assert phi.shape == (3, 8)
    assert torch.equal(phi, torch.zeros(3, 8))
    # and with steps=0 on a model meta-trained for 3 steps; the decode of phi = 0 is the shared INR
    phi = tiny().encode(ps, steps=0)
    assert torch.equal(phi, torch.zeros(3, 8))


def test_one_inner_step_is_a_meta_sgd_step_computed_by_hand():
    torch.manual_seed(1)
    model = tiny(inner_steps=1).double()
    ps = PointSet.from_image(smooth_images(2)).to(dtype=torch.float64)
    phi = model.encode(ps)
    # hand-made: phi_1 = -alpha * d/dphi mean_n (f(x_n; phi) - y_n)^2 at phi = 0, one item at a time
    alpha = model.meta_sgd_lrs.detach().clamp(0, 1)
    for b in range(2):
        z = torch.zeros(1, 8, dtype=torch.float64, requires_grad=True)
        pred = model.inr((ps.coords[b : b + 1] + 1) / 2, z)
        loss = ((pred - ps.values[b : b + 1]) ** 2).mean()
        (g,) = torch.autograd.grad(loss, z)
        torch.testing.assert_close(phi[b], (-alpha * g)[0], rtol=1e-12, atol=1e-14)


def test_siren_initialisation_bounds():
    model = Functa(FunctaConfig(depth=4, width=256, latent_dim=512, coord_dim=2, out_channels=3))
    first, *rest = model.inr.hidden
    assert first.weight.abs().max() <= 1 / 2 and first.weight.abs().max() > 0.45  # U(-1/d_in, 1/d_in)
    for lin in [*rest, model.inr.out]:
        bound = math.sqrt(6 / lin.in_features) / 30
        assert lin.weight.abs().max() <= bound and lin.weight.abs().max() > 0.9 * bound
    assert lo_hi(model.meta_sgd_lrs) == pytest.approx((0.005, 0.1), abs=0.01)


def lo_hi(t: torch.Tensor) -> tuple[float, float]:
    return float(t.detach().min()), float(t.detach().max())


def test_meta_sgd_lowers_held_out_loss_and_rates_receive_gradients():
    model = tiny(width=32, latent_dim=16)
    train = PointSet.from_image(smooth_images(64, seed=0))
    held_out = PointSet.from_image(smooth_images(32, seed=1))

    def held_out_losses(steps=None):
        phi = model.encode(held_out, steps=steps)
        with torch.no_grad():
            return model.inner_loss(phi, held_out)

    before_training = held_out_losses().mean()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    lrs0 = model.meta_sgd_lrs.detach().clone()
    for step in range(30):
        batch = train[(step * 16) % 64 : (step * 16) % 64 + 16]
        out = model.loss(batch, step)
        opt.zero_grad()
        out["loss"].backward()
        if step == 0:  # the learned rates receive a finite, non-zero gradient
            g = model.meta_sgd_lrs.grad
            assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
        opt.step()
    assert not torch.equal(model.meta_sgd_lrs.detach(), lrs0)
    at_zero, adapted = held_out_losses(steps=0), held_out_losses()
    # the inner loop lowers the loss of every held-out item, by a lot on average
    assert (adapted < at_zero).all()
    assert adapted.mean() < 0.5 * at_zero.mean()
    # and meta-training made 3 steps far better than they were at initialisation
    assert adapted.mean() < 0.5 * before_training


def outer_loss(model: Functa, ps: PointSet) -> torch.Tensor:
    return model.loss(ps)["loss"]


@pytest.mark.parametrize("meta_sgd", [True, False])
def test_second_order_gradient_matches_finite_differences(meta_sgd):
    torch.manual_seed(3)
    model = Functa(
        FunctaConfig(
            out_channels=1,
            depth=2,
            width=6,
            latent_dim=3,
            inner_steps=2,
            w0=3.0,
            meta_sgd=meta_sgd,
            inner_lr=0.3,
        )
    ).double()
    if meta_sgd:
        with torch.no_grad():
            model.meta_sgd_lrs.fill_(0.3)  # large enough that the inner steps matter
    ps = PointSet.from_image(smooth_images(2, size=3)).to(dtype=torch.float64)
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(outer_loss(model, ps), list(params.values()))
    eps = 1e-6
    for (name, p), g in zip(params.items(), grads):
        for idx in [(0,) * p.dim(), tuple(s - 1 for s in p.shape)]:
            with torch.no_grad():
                old = p[idx].item()
                p[idx] = old + eps
                up = outer_loss(model, ps).item()
                p[idx] = old - eps
                down = outer_loss(model, ps).item()
                p[idx] = old
            fd = (up - down) / (2 * eps)
            assert g[idx].item() == pytest.approx(fd, rel=1e-5, abs=1e-9), name


def test_first_order_gradients_differ_from_second_order_but_rates_still_learn():
    torch.manual_seed(4)
    ps = PointSet.from_image(smooth_images(4, size=6)).to(dtype=torch.float64)
    grads = {}
    for first_order in (False, True):
        torch.manual_seed(5)
        m = Functa(
            FunctaConfig(
                out_channels=1, depth=3, width=8, latent_dim=4, inner_steps=3, first_order=first_order
            )
        ).double()
        with torch.no_grad():
            m.meta_sgd_lrs.fill_(0.5)
        outer_loss(m, ps).backward()
        grads[first_order] = {n: p.grad.clone() for n, p in m.named_parameters()}
    so, fo = grads[False], grads[True]
    w = "inr.hidden.1.weight"
    assert (so[w] - fo[w]).norm() > 1e-3 * so[w].norm()
    assert fo["meta_sgd_lrs"].abs().sum() > 0


def test_mask_restricts_the_inner_loss_to_observed_points():
    model = tiny()
    img = smooth_images(2)
    ps = PointSet.from_image(img)
    mask = torch.rand(2, 64, generator=torch.Generator().manual_seed(0)) < 0.5
    changed = ps.values.clone()
    changed[~mask] = torch.rand(int((~mask).sum()), 1)
    a = model.encode(ps.with_mask(mask))
    b = model.encode(ps.with_values(changed).with_mask(mask))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, model.encode(ps))


def test_encode_under_no_grad_equals_encode_with_grad_and_is_detached():
    model = tiny()
    ps = PointSet.from_image(smooth_images(2))
    with torch.no_grad():
        a = model.encode(ps)
    b = model.encode(ps)
    assert not a.requires_grad and b.requires_grad
    torch.testing.assert_close(a, b.detach())


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="inner_steps"):
        FunctaConfig(inner_steps=-1)
    with pytest.raises(ValueError, match="depth"):
        FunctaConfig(depth=1)
    model = tiny()
    with pytest.raises(ValueError, match="channels"):
        model.encode(PointSet.from_image(torch.rand(1, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        model.decode(torch.zeros(1, 5), torch.zeros(1, 4, 2))


def test_checkpoint_round_trip(tmp_path):
    model = tiny()
    ps = PointSet.from_image(smooth_images(2))
    model.save_pretrained(tmp_path / "f")
    again = Functa.from_pretrained(tmp_path / "f")
    torch.testing.assert_close(again.encode(ps), model.encode(ps), rtol=0, atol=0)


PRESETS = [
    "functa-celebahq64",
    "functa-polymnist",
    "functa-shapes3d",
    "functa-era5",
    "functa-chairs",
    "functa-mnist-small",
    "functa-shapes-small",
]


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_builds_and_trains_two_steps(name):
    preset = get_preset(name)
    cfg = preset.model_config
    torch.manual_seed(0)
    model = build_model(preset.model, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=preset.train.lr)
    g = torch.Generator().manual_seed(0)
    ps = PointSet(torch.rand(2, 16, cfg.coord_dim, generator=g) * 2 - 1, torch.rand(2, 16, cfg.out_channels))
    before = model.meta_sgd_lrs.detach().clone()
    for step in range(2):
        out = model.loss(ps, step)
        assert torch.isfinite(out["loss"])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert not torch.equal(before, model.meta_sgd_lrs.detach())

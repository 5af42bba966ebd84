"""Test-time optimisation: it fits the observed points, never touches the model, and is per item."""

from __future__ import annotations

import pytest
import torch
from ginr_helpers import tiny_ipc, tiny_transinr
from laginr_helpers import tiny_laginr

from inrgen.data.points import PointSet
from inrgen.metrics.psnr import mse_per_item
from inrgen.tto import decoder_parameter_names, refine


def images(b=2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, 12, 12, generator=g, dtype=dtype)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_untouched(model, before):
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("mode", ["latent", "all"])
def test_tto_lowers_the_observed_loss_and_leaves_the_model_untouched(mode):
    model = tiny_laginr(torch.float64)
    ps = PointSet.from_image(images())
    keep = torch.rand(ps.coords.shape[:2], generator=torch.Generator().manual_seed(1)) < 0.5
    observed = ps.with_mask(keep)
    before = snapshot(model)
    field = refine(model, observed, mode=mode, steps=15, lr=1e-2)
    assert_untouched(model, before)
    # losses[0] is the MSE of the predicted INR on the observed points only
    z0 = model.encode(observed)
    pred0 = model.decode(z0, ps.coords).mean
    torch.testing.assert_close(field.losses[0], mse_per_item(pred0, ps.values, keep))
    assert field.losses.shape == (16, 2)
    assert (field.losses[-1] < {"latent": 0.9, "all": 0.7}[mode] * field.losses[0]).all()
    assert (field.losses[1:] <= field.losses[:-1] + 1e-12).float().mean() > 0.8  # mostly monotone
    # the final loss is the refined field's MSE on the observed points; prediction is at points.coords
    torch.testing.assert_close(field.losses[-1], mse_per_item(field.prediction.mean, ps.values, keep))
    torch.testing.assert_close(field.decode(ps.coords, chunk_size=50).mean, field.prediction.mean)
    if mode == "latent":
        assert field.params is None
    else:
        assert len(field.params) == 2
        names = set(field.params[0])
        assert names == {n for n, _ in model.hyponet.named_parameters(prefix="hyponet")}
        moved = [n for n in names if not torch.equal(field.params[0][n], before[n])]
        assert len(moved) == len(names)


def test_all_mode_beats_latent_mode_with_the_same_budget():
    model = tiny_laginr(torch.float64)
    ps = PointSet.from_image(images())
    lat = refine(model, ps, mode="latent", steps=30, lr=1e-2)
    full = refine(model, ps, mode="all", steps=30, lr=1e-2)
    assert (full.losses[-1] < lat.losses[-1]).all()


def test_batched_latent_refinement_equals_refining_each_item_alone():
    model = tiny_laginr(torch.float64)
    ps = PointSet.from_image(images(b=3))
    both = refine(model, ps, mode="latent", steps=8, lr=5e-3)
    for b in range(3):
        one = refine(model, ps[b], mode="latent", steps=8, lr=5e-3)
        torch.testing.assert_close(one.latent, both.latent[b : b + 1], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(one.losses[:, 0], both.losses[:, b], rtol=1e-9, atol=1e-14)


def test_zero_steps_returns_the_predicted_inr_and_coords_can_differ():
    model = tiny_laginr(torch.float64)
    ps = PointSet.from_image(images())
    fine = torch.rand(2, 40, 2, dtype=torch.float64) * 2 - 1
    field = refine(model, ps, mode="all", steps=0, coords=fine)
    # item by item vs the whole batch: equal up to float64 rounding of differently blocked products
    torch.testing.assert_close(
        field.prediction.mean, model.decode(model.encode(ps), fine).mean, rtol=1e-12, atol=1e-14
    )
    assert field.losses.shape == (1, 2)


@pytest.mark.parametrize("build", [tiny_ipc, tiny_transinr])
def test_tto_works_for_ipc_and_transinr_latents(build):
    model = build(torch.float64).eval()
    ps = PointSet.from_image(images())
    before = snapshot(model)
    for mode in ("latent", "all"):
        field = refine(model, ps, mode=mode, steps=10, lr=1e-2)
        assert (field.losses[-1] < field.losses[0]).all()
        assert_untouched(model, before)
    assert all(n.startswith("hyponet.") for n in decoder_parameter_names(model, model.encode(ps), ps.coords))


def test_bad_arguments_raise():
    model = tiny_laginr()
    ps = PointSet.from_image(images(dtype=torch.float32))
    with pytest.raises(ValueError, match="mode"):
        refine(model, ps, mode="decoder")
    with pytest.raises(ValueError, match="steps"):
        refine(model, ps, steps=-1)
    with pytest.raises(ValueError, match="learning rate"):
        refine(model, ps, lr=0.0)
    with pytest.raises(ValueError, match="1-channel"):
        refine(model, PointSet.from_image(torch.rand(1, 3, 12, 12)))


# ------------------------------------------------------------------ Fig. 7's baseline: per-sample FFNet


def test_ffnet_batch_fit_equals_fitting_every_item_alone():
    """Each item of a batched fit follows exactly its own Adam trajectory from its own initial weights."""
    from inrgen.nn.hypernet import mlp
    from inrgen.tto import fit_ffnet

    ps = PointSet.from_image(images(b=3))
    kw = dict(steps=6, lr=1e-2, hidden=16, depth=2, num_features=8, sigma=2.0)
    batch = fit_ffnet(ps, **kw)
    init = fit_ffnet(ps, **{**kw, "steps": 0}).params
    for b in range(3):
        one = ps[b]
        theta = {k: v[b : b + 1].clone().requires_grad_() for k, v in init.items()}
        opt = torch.optim.Adam(theta.values(), lr=1e-2)
        for step in range(7):
            mse = mse_per_item(torch.sigmoid(mlp(batch.features(one.coords), theta, 0.0)), one.values)
            torch.testing.assert_close(mse[0], batch.losses[step, b], rtol=1e-10, atol=1e-14)
            if step == 6:
                break
            grads = torch.autograd.grad(mse.sum(), list(theta.values()))
            for p, g in zip(theta.values(), grads):
                p.grad = g
            opt.step()
        for k, v in theta.items():
            torch.testing.assert_close(v.detach(), batch.params[k][b : b + 1], rtol=1e-9, atol=1e-12)


def test_ffnet_fits_an_image_from_random_init_and_stops_at_a_cpu_budget():
    from inrgen.tto import fit_ffnet

    ps = PointSet.from_image(images(b=2))
    fit = fit_ffnet(ps, steps=150, lr=3e-3, hidden=64, depth=2, num_features=64, sigma=3.0)
    assert (fit.losses[-1] < 0.2 * fit.losses[0]).all()
    torch.testing.assert_close(mse_per_item(fit.prediction, ps.values), fit.losses[-1])
    torch.testing.assert_close(fit.decode(ps.coords, chunk_size=50), fit.prediction)
    assert fit.seconds.shape == (151,) and (fit.seconds[1:] >= fit.seconds[:-1]).all()
    short = fit_ffnet(ps, steps=10_000, hidden=16, depth=1, num_features=8, max_seconds=0.05)
    assert len(short.losses) < 10_001 and short.seconds[-2] < 0.05 <= short.seconds[-1] + 1e-9


@pytest.mark.parametrize("mode", ["latent", "all"])
def test_refine_records_cpu_seconds_and_stops_at_a_budget(mode):
    model = tiny_laginr(torch.float64)
    ps = PointSet.from_image(images())
    field = refine(model, ps, mode=mode, steps=5, lr=1e-2)
    assert field.seconds.shape == field.losses.shape == (6, 2)
    assert (field.seconds[1:] >= field.seconds[:-1]).all() and (field.seconds >= 0).all()
    short = refine(model, ps, mode=mode, steps=100_000, lr=1e-3, max_seconds=0.05)
    assert len(short.losses) < 100_001

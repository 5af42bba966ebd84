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
    torch.testing.assert_close(
        field.prediction.mean, model.decode(model.encode(ps), fine).mean, rtol=0, atol=0
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

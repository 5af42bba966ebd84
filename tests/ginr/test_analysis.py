"""Locality analysis: token influence maps against direct recomputation, exact zero-weight properties and
the locality score on maps with known answers."""

from __future__ import annotations

import math

import pytest
import torch
from ginr_helpers import tiny_ipc, tiny_transinr
from laginr_helpers import tiny_laginr

from inrgen.analysis import influence_maps, locality_score, locality_summary, num_tokens, token_influence
from inrgen.data.points import PointSet


def images(b=2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, 12, 12, generator=g, dtype=dtype)


def test_influence_equals_zeroing_the_token_and_decoding_again():
    model = tiny_laginr(torch.float64, out_channels=1)
    ps = PointSet.from_image(images())
    z = model.encode(ps)
    delta = token_influence(model, z, ps.coords, token_batch=3)  # all 8 tokens, in batches of 3
    assert delta.shape == (2, 8, 144)
    base = model.decode(z, ps.coords).mean
    for k in (0, 5, 7):
        zk = z.clone()
        zk[:, k] = 0
        ref = (model.decode(zk, ps.coords).mean - base).abs().mean(-1)
        torch.testing.assert_close(delta[:, k], ref, rtol=1e-12, atol=1e-14)
    chosen = token_influence(model, z, ps.coords, tokens=[7, 0], chunk_size=50)
    torch.testing.assert_close(chosen, delta[:, [7, 0]], rtol=1e-12, atol=1e-14)


def _zero_weight_model():
    """A float64 decoder whose token 3 gets exactly zero attention weight at every coordinate.

    Queries q = ReLU(.) >= 0; with positive W_Q and b_Q every projected query is > 0 elementwise, and a
    token whose projected key is -s * (1, .., 1) has logit <= -s * sum(b_Q) / sqrt(d_h) for all points:
    exp underflows to exactly 0 in float64.
    """
    model = tiny_laginr(torch.float64, heads=2)
    att = model.hyponet.aggregate
    with torch.no_grad():
        att.to_q.weight.abs_()
        att.to_q.bias.copy_(torch.linspace(0.5, 1.0, 16, dtype=torch.float64))
    g = torch.Generator().manual_seed(4)
    z = torch.randn(2, 8, 16, generator=g, dtype=torch.float64)
    target = torch.full((16,), -1e4, dtype=torch.float64) - att.to_k.bias
    z[:, 3] = torch.linalg.solve(att.to_k.weight, target)
    return model, z


def test_a_token_with_zero_attention_weight_changes_nothing():
    model, z = _zero_weight_model()
    v = torch.rand(2, 100, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 2 - 1
    w = model.attention_weights(z, v)  # (b, h, n, r)
    assert w.shape == (2, 2, 100, 8)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, 100, dtype=torch.float64))
    assert torch.all(w[..., 3] == 0) and torch.all(w[..., [0, 1, 2, 4, 5, 6, 7]].amax(-1) > 0)
    dropped = token_influence(model, z, v, replace="drop")
    assert torch.all(dropped[:, 3] == 0)  # removing it changes nothing, exactly
    assert torch.all(dropped[:, [0, 1, 2, 4, 5, 6, 7]].amax(-1) > 1e-6)  # removing any other token does
    moved = z.clone()
    moved[:, 3] *= 2.0  # still at zero weight: the prediction does not depend on it at all
    assert torch.equal(model.decode(moved, v).mean, model.decode(z, v).mean)
    # zeroing is not removing: a zero token has key b_K and value b_V and takes part in the softmax
    zeroed = token_influence(model, z, v, tokens=[3], replace="zero")
    assert zeroed.amax() > 1e-6


def test_drop_equals_zero_for_ipc_style_aggregation():
    """U V = sum_k z_k v_k^T: removing token k and zeroing it are the same operation."""
    model = tiny_laginr(torch.float64, token_aggregation="ipc")
    ps = PointSet.from_image(images())
    z = model.encode(ps)
    a = token_influence(model, z, ps.coords, replace="zero")
    b = token_influence(model, z, ps.coords, replace="drop")
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("build", [tiny_ipc, tiny_transinr])
def test_influence_works_for_baseline_latents(build):
    model = build(torch.float64).eval()
    ps = PointSet.from_image(images())
    z = model.encode(ps)
    r = num_tokens(z)
    delta = token_influence(model, z, ps.coords)
    assert delta.shape == (2, r, 144) and torch.all(delta >= 0)
    k = r - 1  # the last token (TransINR: the output layer's group)
    if isinstance(z, list):
        zk = [t.clone() for t in z]
        zk[-1][:, -1] = 0
    else:
        zk = z.clone()
        zk[:, k] = 0
    ref = (model.decode(zk, ps.coords).mean - model.decode(z, ps.coords).mean).abs().mean(-1)
    torch.testing.assert_close(delta[:, k], ref, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="token_mask"):
        token_influence(model, z, ps.coords, replace="drop")


def test_locality_score_on_maps_with_known_answers():
    n = 200
    delta = torch.zeros(1, 4, n, dtype=torch.float64)
    delta[0, 0, 17] = 3.0  # all change at one point -> 1
    delta[0, 1] = 1.0  # uniform -> ceil(0.1 n) / n = 0.1
    delta[0, 2, :100] = torch.arange(1, 101, dtype=torch.float64)  # top 20 of 1..100
    s = locality_score(delta, top_fraction=0.1)
    assert s[0, 0] == 1.0
    torch.testing.assert_close(s[0, 1], torch.tensor(0.1, dtype=torch.float64))
    expected = sum(range(81, 101)) / sum(range(1, 101))
    assert math.isclose(s[0, 2].item(), expected, rel_tol=1e-12)
    assert torch.isnan(s[0, 3])  # no change at all
    grid = locality_score(delta.reshape(1, 4, 10, 20), top_fraction=0.1)
    torch.testing.assert_close(grid, s, equal_nan=True)
    with pytest.raises(ValueError, match="top_fraction"):
        locality_score(delta, top_fraction=0.0)
    with pytest.raises(ValueError, match=">= 0"):
        locality_score(-delta - 1)


def test_influence_maps_are_on_the_grid_and_rescaled_to_one():
    model = tiny_laginr(torch.float64)
    ps = PointSet.from_image(images())
    maps = influence_maps(model, ps, tokens=[1, 6])
    assert maps.shape == (2, 2, 12, 12)
    torch.testing.assert_close(maps.amax((-1, -2)), torch.ones(2, 2, dtype=torch.float64))
    raw = token_influence(model, model.encode(ps), ps.coords, tokens=[1, 6]).reshape(2, 2, 12, 12)
    torch.testing.assert_close(maps * raw.amax((-1, -2), keepdim=True), raw)
    summary = locality_summary(model, ps, top_fraction=0.25)
    scores = locality_score(token_influence(model, model.encode(ps), ps.coords), 0.25)
    assert math.isclose(summary["locality"], scores.mean().item(), rel_tol=1e-12)
    assert summary["uniform"] == 36 / 144
    with pytest.raises(ValueError, match="out of range"):
        token_influence(model, model.encode(ps), ps.coords, tokens=[8])

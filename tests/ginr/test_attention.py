"""Multi-head cross-attention (LA-GINR Eq. 5): the fast paths equal the textbook form in float64."""

from __future__ import annotations

import pytest
import torch

from inrgen.nn.attention import MultiHeadCrossAttention


def _setup(dim=16, heads=2, r=5, n=7, b=3, kv_dim=None, bias=True, seed=0):
    torch.manual_seed(seed)
    attn = MultiHeadCrossAttention(dim, heads, kv_dim=kv_dim, bias=bias).double()
    with torch.no_grad():  # non-zero biases, so that every bias term is exercised
        for p in attn.parameters():
            p.add_(0.3 * torch.randn_like(p))
    g = torch.Generator().manual_seed(seed + 1)
    q = torch.randn(b, n, dim, generator=g, dtype=torch.float64)
    z = torch.randn(b, r, kv_dim or dim, generator=g, dtype=torch.float64)
    return attn, q, z


def _reference(attn: MultiHeadCrossAttention, q, z, mask=None):
    """``torch.nn.MultiheadAttention`` with the same weights (its key_padding_mask: True = ignore)."""
    ref = torch.nn.MultiheadAttention(
        attn.dim, attn.heads, bias=attn.to_q.bias is not None, kdim=attn.kv_dim, vdim=attn.kv_dim,
        batch_first=True,
    ).double()  # fmt: skip
    with torch.no_grad():
        if ref.in_proj_weight is not None:  # same widths: one packed (3d, d) projection
            ref.in_proj_weight.copy_(torch.cat([attn.to_q.weight, attn.to_k.weight, attn.to_v.weight]))
        else:
            ref.q_proj_weight.copy_(attn.to_q.weight)
            ref.k_proj_weight.copy_(attn.to_k.weight)
            ref.v_proj_weight.copy_(attn.to_v.weight)
        ref.out_proj.weight.copy_(attn.to_out.weight)
        if attn.to_q.bias is not None:
            ref.in_proj_bias.copy_(torch.cat([attn.to_q.bias, attn.to_k.bias, attn.to_v.bias]))
            ref.out_proj.bias.copy_(attn.to_out.bias)
    out, _ = ref(q, z, z, key_padding_mask=None if mask is None else ~mask, need_weights=False)
    return out


def _paths(attn, q, z, mask=None):
    """The output of every implementation the module has: folded, SDPA, explicit (return_weights)."""
    folded = attn._folded(q, z, mask)
    attn.folds_projections = lambda r: False  # type: ignore[method-assign]
    sdpa = attn(q, z, mask)
    explicit, weights = attn(q, z, mask, return_weights=True)
    del attn.folds_projections
    return {"folded": folded, "sdpa": sdpa, "explicit": explicit}, weights


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(heads=1), dict(heads=4, r=3), dict(kv_dim=12), dict(bias=False), dict(heads=8, r=9)],
    ids=["h2", "h1", "h4", "kv_dim", "no_bias", "h8_many_tokens"],
)
def test_every_path_equals_torch_multihead_attention_in_float64(kw):
    attn, q, z = _setup(**kw)
    expected = _reference(attn, q, z)
    outs, _ = _paths(attn, q, z)
    for name, out in outs.items():
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12, msg=name)
    torch.testing.assert_close(attn(q, z), expected, rtol=1e-12, atol=1e-12)


def test_masked_tokens_are_removed_from_the_softmax_on_every_path():
    attn, q, z = _setup(heads=2, r=6)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 0, 1, 0, 1, 1], [0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    expected = _reference(attn, q, z, mask)
    outs, weights = _paths(attn, q, z, mask)
    for name, out in outs.items():
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12, msg=name)
    assert torch.all(weights[~mask[:, None, None, :].expand_as(weights)] == 0)
    # removing a token equals dropping it from the set
    keep = mask[1]
    torch.testing.assert_close(
        attn(q[1:2], z[1:2, keep]), attn(q[1:2], z[1:2], mask[1:2]), rtol=1e-12, atol=1e-12
    )


def test_folded_gradients_equal_the_textbook_gradients():
    attn, q, z = _setup(heads=2, r=4)
    q.requires_grad_(True)
    z.requires_grad_(True)
    params = [q, z, *attn.parameters()]
    w = torch.randn(3, 7, 16, dtype=torch.float64)
    g_folded = torch.autograd.grad((attn._folded(q, z, None) * w).sum(), params)
    g_ref = torch.autograd.grad((attn(q, z, return_weights=True)[0] * w).sum(), params)
    for a, b in zip(g_folded, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


def test_the_projections_fold_when_that_costs_fewer_operations():
    # per query: folded 2 d h R multiply-adds vs 2 d^2 + 2 d R for projecting every query
    assert MultiHeadCrossAttention(64, 2).folds_projections(16)  # laginr-mnist-small
    assert MultiHeadCrossAttention(256, 2).folds_projections(256)  # the paper's 178^2 / FFHQ 256 decoder
    assert not MultiHeadCrossAttention(256, 8).folds_projections(256)  # ImageNet 256: SDPA
    assert not MultiHeadCrossAttention(256, 4).folds_projections(484)  # FFHQ 1024: SDPA

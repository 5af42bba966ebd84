"""Hypernetworks and the stateless batched MLP: layout contract, batched == per-item loops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inrgen.nn.hypernet import HyperNetwork, mlp, num_params, param_shapes, unflatten_params


@pytest.mark.parametrize(
    "in_dim, hidden, out_dim, expected",
    [
        (256, (4, 4, 4), 3, 1_083),  # PolyMNIST INR (released code: P = 1,083)
        (256, (32, 32), 3, 9_379),  # Shapes3D
        (256, (64, 64, 64), 3, 24_963),  # CelebA-HQ
        (256, (64, 64, 64), 1, 24_833),  # ERA5 / chairs
    ],
)
def test_param_count_matches_released_models(in_dim, hidden, out_dim, expected):
    assert num_params(param_shapes(in_dim, hidden, out_dim)) == expected


def test_flat_layout_is_all_weights_then_all_biases():
    shapes = param_shapes(3, (2,), 1)
    assert list(shapes) == ["weight_0", "weight_1", "bias_0", "bias_1"]
    flat = torch.arange(num_params(shapes), dtype=torch.float64)
    p = unflatten_params(flat, shapes)
    # weight_0 (2, 3) in nn.Linear (out, in) layout, row-major, first in the flat vector
    assert p["weight_0"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert p["weight_1"].tolist() == [[6, 7]]
    assert p["bias_0"].tolist() == [8, 9]
    assert p["bias_1"].tolist() == [10]


def _loop_mlp(x: torch.Tensor, params: dict[str, torch.Tensor], slope: float) -> torch.Tensor:
    """Reference: one F.linear chain per parameter set."""
    n_layers = sum(k.startswith("weight_") for k in params)
    h = x
    for j in range(n_layers):
        h = F.linear(h, params[f"weight_{j}"], params[f"bias_{j}"])
        if j < n_layers - 1:
            h = F.leaky_relu(h, slope)
    return h


@pytest.mark.parametrize("per_item_coords", [False, True])
def test_batched_mlp_equals_per_item_per_component_loop(per_item_coords):
    g = torch.Generator().manual_seed(0)
    b, k, n = 3, 4, 11
    shapes = param_shapes(6, (5, 7), 2)
    flat = torch.randn(b, k, num_params(shapes), generator=g, dtype=torch.float64)
    params = unflatten_params(flat, shapes)
    x = torch.randn(b if per_item_coords else 1, n, 6, generator=g, dtype=torch.float64)
    out = mlp(x if per_item_coords else x[0], params, negative_slope=0.1)
    assert out.shape == (b, k, n, 2)
    for bi in range(b):
        for ki in range(k):
            p = {name: v[bi, ki] for name, v in params.items()}
            ref = _loop_mlp(x[bi if per_item_coords else 0], p, 0.1)
            torch.testing.assert_close(out[bi, ki], ref, rtol=1e-12, atol=1e-12)


def test_hypernetwork_equals_independent_linear_stacks():
    torch.manual_seed(0)
    shapes = param_shapes(4, (3,), 2)
    hyper = HyperNetwork(5, (6, 8), shapes, num_nets=3).double()
    z = torch.randn(7, 5, dtype=torch.float64)
    flat = hyper.flat(z)
    assert flat.shape == (7, 3, num_params(shapes))
    for k in range(3):
        seq = nn.Sequential(
            nn.Linear(5, 6),
            nn.LeakyReLU(0.1),
            nn.Linear(6, 8),
            nn.LeakyReLU(0.1),
            nn.Linear(8, num_params(shapes)),
        ).double()
        with torch.no_grad():
            for lin, w, bias in zip([seq[0], seq[2], seq[4]], hyper.weights, hyper.biases):
                lin.weight.copy_(w[k])
                lin.bias.copy_(bias[k])
        torch.testing.assert_close(flat[:, k], seq(z), rtol=1e-12, atol=1e-12)
    # the K networks are independent: different initial weights, and no shared trunk
    assert not torch.equal(hyper.weights[0][0], hyper.weights[0][1])


def test_hypernetwork_init_is_nn_linear_default():
    torch.manual_seed(0)
    hyper = HyperNetwork(16, (32,), param_shapes(4, (2,), 1), num_nets=2)
    for w, fan_in in zip([w.detach() for w in hyper.weights], (16, 32)):
        bound = fan_in**-0.5
        assert float(w.abs().max()) <= bound
        assert float(w.abs().max()) > 0.9 * bound  # uniform over the whole interval


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="widths must be >= 1"):
        param_shapes(3, (0,), 1)
    shapes = param_shapes(3, (2,), 1)
    with pytest.raises(ValueError, match="expected 11 parameters"):
        unflatten_params(torch.zeros(10), shapes)
    params = unflatten_params(torch.zeros(2, num_params(shapes)), shapes)
    with pytest.raises(ValueError, match="inputs have 4 features"):
        mlp(torch.zeros(5, 4), params)
    with pytest.raises(ValueError, match="per-item inputs"):
        mlp(torch.zeros(3, 5, 3), params)

"""RealNVP (ActNorm + affine couplings): exact inverse, log-det = autograd Jacobian, a normalised density,
data-dependent ActNorm, and a fit that reaches the entropy of Gaussian data. Property tests in float64."""

from __future__ import annotations

import math

import pytest
import torch

from inrgen.nn.flows import ActNorm, AffineCoupling, RealNVPPrior


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)


@pytest.mark.parametrize("layer", ["coupling0", "coupling1", "actnorm"])
def test_layers_invert_and_log_det_is_the_jacobian(layer):
    dim = 5
    m = {"coupling0": AffineCoupling(dim, 0, (7,)), "coupling1": AffineCoupling(dim, 1, (7, 6)),
         "actnorm": ActNorm(dim)}[layer].double().eval()  # fmt: skip
    _randomise(m)
    x = torch.randn(4, dim, dtype=torch.float64)
    y, ld = m(x)
    back, ld_inv = m.inverse(y)
    torch.testing.assert_close(back, x)
    torch.testing.assert_close(ld_inv, -ld)
    for i in range(4):
        jac = torch.autograd.functional.jacobian(lambda v: m(v.unsqueeze(0))[0][0], x[i])
        torch.testing.assert_close(ld[i], torch.linalg.slogdet(jac).logabsdet)


def test_flow_log_prob_is_a_normalised_density_in_2d():
    torch.manual_seed(0)
    flow = RealNVPPrior(2, num_layers=4, hidden=(16,)).double().eval()
    _randomise(flow, 1)
    ax = torch.linspace(-12, 12, 801, dtype=torch.float64)
    xx, yy = torch.meshgrid(ax, ax, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], -1)
    with torch.no_grad():
        density = flow().log_prob(pts).exp()
    mass = float(density.sum() * (ax[1] - ax[0]) ** 2)
    assert mass == pytest.approx(1.0, abs=2e-3)


def test_samples_and_log_prob_agree_by_change_of_variables():
    flow = RealNVPPrior(3, num_layers=3, hidden=(8,)).double().eval()
    _randomise(flow, 2)
    p = flow()
    torch.manual_seed(0)
    z = p.sample((5,))

    # log p(z) = log N(u) + log|det du/dz| with u = the layers applied to z (autograd Jacobian)
    def to_base(v):
        for layer in flow.layers:
            v, _ = layer(v)
        return v

    for i in range(5):
        u = to_base(z[i : i + 1])[0]
        jac = torch.autograd.functional.jacobian(lambda v: to_base(v.unsqueeze(0))[0], z[i])
        ref = -0.5 * (u.square().sum() + 3 * math.log(2 * math.pi)) + torch.linalg.slogdet(jac).logabsdet
        torch.testing.assert_close(p.log_prob(z[i]), ref)


def test_actnorm_initialises_from_the_first_training_batch():
    a = ActNorm(3)
    x = torch.randn(200, 3) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([2.0, -1.0, 7.0])
    y, _ = a(x)
    assert bool(a.initialized)
    torch.testing.assert_close(y.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(0), torch.ones(3), atol=1e-4, rtol=0)
    y2, _ = a(x * 2)  # later batches do not re-initialise
    assert not torch.allclose(y2.std(0), torch.ones(3), atol=1e-2)
    state = a.state_dict()
    assert "initialized" in state


def test_couplings_start_as_the_identity():
    c = AffineCoupling(6, 0, (8,))
    x = torch.randn(3, 6)
    y, ld = c(x)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(ld, torch.zeros(3))


def test_fit_reaches_the_entropy_of_correlated_gaussian_data():
    torch.manual_seed(0)
    dim = 4
    A = torch.randn(dim, dim) * 0.5 + torch.eye(dim)
    data = torch.randn(4000, dim) @ A.T + 3.0
    entropy = 0.5 * dim * (1 + math.log(2 * math.pi)) + torch.linalg.slogdet(A).logabsdet.item()
    flow = RealNVPPrior(dim, num_layers=4, hidden=(32,))
    opt = torch.optim.Adam(flow.parameters(), lr=3e-3)
    for _ in range(300):
        idx = torch.randint(0, len(data), (256,))
        loss = -flow().log_prob(data[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        nll = -flow().log_prob(data).mean().item()
    assert nll == pytest.approx(entropy, abs=0.1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="dim >= 2"):
        AffineCoupling(1, 0)
    with pytest.raises(ValueError, match="num_layers"):
        RealNVPPrior(4, num_layers=0)
    with pytest.raises(ValueError, match="size 4"):
        RealNVPPrior(4, 1, (4,))().log_prob(torch.zeros(2, 3))

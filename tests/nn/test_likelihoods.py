"""Per-point likelihoods and their mixtures: normalisation, moments by enumeration / quadrature, heads, KL."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Bernoulli, Categorical, Normal, kl_divergence

from inrgen.nn.likelihoods import (
    BernoulliHead,
    ContinuousBernoulli,
    ContinuousBernoulliHead,
    DiscretizedLogistic,
    DiscretizedLogisticHead,
    GaussianHead,
    MixtureOfPointLikelihoods,
    build_likelihood,
    categorical_entropy,
    categorical_kl,
    component_log_prob,
    expected_log_prob,
    mixture_log_prob,
    mixture_mean,
    mixture_variance,
    mode_mean,
)

DT = torch.float64
BINS = torch.arange(256, dtype=DT) / 255  # (256,)

locs = st.floats(-3.0, 4.0, allow_nan=False)
log_scales = st.floats(-12.0, 3.0, allow_nan=False)


def _pmf(d: DiscretizedLogistic) -> torch.Tensor:
    """Probabilities of all 256 values, shape (256, *batch)."""
    return d.log_prob(BINS.reshape(-1, *([1] * len(d.batch_shape)))).exp()


# ---------------------------------------------------------------------------------- discretized logistic


@settings(max_examples=40, deadline=None)
@given(loc=locs, log_scale=log_scales)
def test_discretized_logistic_sums_to_one_and_moments_equal_enumeration(loc: float, log_scale: float) -> None:
    d = DiscretizedLogistic(torch.tensor([loc], dtype=DT), torch.tensor([log_scale], dtype=DT))
    p = _pmf(d)[:, 0]
    assert torch.all(p >= 0)
    assert abs(float(p.sum()) - 1.0) < 1e-12
    mean = (p * BINS).sum()
    var = (p * (BINS - mean).square()).sum()
    assert abs(float(d.mean[0]) - float(mean)) < 1e-12
    assert abs(float(d.variance[0]) - float(var)) < 1e-12
    k_mode = int(torch.round(d.mode[0] * 255))
    assert float(p[k_mode]) >= float(p.max()) * (1 - 1e-12)  # ties (loc on a bin boundary) either way


def _eq17_8bit(y255: torch.Tensor, mu255: torch.Tensor, s255: torch.Tensor) -> torch.Tensor:
    """The paper's Eq. 17 verbatim on the 8-bit scale: sigma((y + 0.5 - mu)/s) - sigma((y - 0.5 - mu)/s)."""
    return torch.sigmoid((y255 + 0.5 - mu255) / s255) - torch.sigmoid((y255 - 0.5 - mu255) / s255)


def test_discretized_logistic_equals_paper_eq17_on_the_8bit_scale() -> None:
    torch.manual_seed(0)
    loc = torch.rand(50, dtype=DT)
    log_scale = torch.empty(50, dtype=DT).uniform_(-5, -1)
    k = torch.randint(1, 255, (50,)).to(DT)  # interior bins (Eq. 17 has no edge treatment)
    d = DiscretizedLogistic(loc, log_scale)
    ref = _eq17_8bit(k, 255 * loc, 255 * log_scale.exp())
    # (the naive sigmoid difference itself is only accurate to ~1e-16 absolute)
    assert torch.allclose(d.log_prob(k / 255).exp(), ref, rtol=1e-10, atol=1e-15)
    # the edge bins take the tails: P(0) = sigma((0.5 - mu)/s), P(255) = 1 - sigma((254.5 - mu)/s)
    assert torch.allclose(
        d.log_prob(torch.zeros(50, dtype=DT)).exp(),
        torch.sigmoid((0.5 - 255 * loc) / (255 * log_scale.exp())),
    )
    top = 1 - torch.sigmoid((254.5 - 255 * loc) / (255 * log_scale.exp()))
    assert torch.allclose(d.log_prob(torch.ones(50, dtype=DT)).exp(), top)


def test_discretized_logistic_log_prob_is_exact_far_in_the_tails() -> None:
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    cases = [(0.9, -7.0, 3), (0.0, -9.0, 200), (0.5, -11.0, 0), (0.1, -6.0, 255), (2.5, -4.0, 10)]
    for loc, log_scale, k in cases:
        d = DiscretizedLogistic(torch.tensor(loc, dtype=DT), torch.tensor(log_scale, dtype=DT))
        lp = float(d.log_prob(torch.tensor(k / 255, dtype=DT)))
        s, mu, c, h = (
            mpmath.e ** mpmath.mpf(log_scale),
            mpmath.mpf(loc),
            mpmath.mpf(k) / 255,
            mpmath.mpf(1) / 510,
        )

        def sig(x):
            return 1 / (1 + mpmath.e ** (-x))

        up = mpmath.mpf(1) if k == 255 else sig((c + h - mu) / s)
        lo = mpmath.mpf(0) if k == 0 else sig((c - h - mu) / s)
        ref = float(mpmath.log(up - lo))
        assert math.isfinite(lp) and lp < -50  # a naive sigmoid difference underflows to log(0) here
        assert abs(lp - ref) <= 1e-12 * abs(ref), (loc, log_scale, k, lp, ref)


def test_discretized_logistic_sampling_matches_pmf_and_gradients_flow() -> None:
    d = DiscretizedLogistic(torch.tensor([0.93, 0.3], dtype=DT), torch.tensor([-2.5, -4.0], dtype=DT))
    torch.manual_seed(0)
    n = 200_000
    s = d.sample((n,))
    assert torch.all((s * 255 - torch.round(s * 255)).abs() < 1e-9) and s.min() >= 0 and s.max() <= 1
    p = _pmf(d)  # (256, 2)
    freq_top = (s[:, 0] == 1.0).double().mean()
    assert abs(float(freq_top - p[-1, 0])) < 5 * math.sqrt(float(p[-1, 0] * (1 - p[-1, 0])) / n)
    se = (d.variance / n).sqrt()
    assert torch.all((s.mean(0) - d.mean).abs() < 5 * se)
    loc = torch.tensor([0.4], dtype=DT, requires_grad=True)
    log_scale = torch.tensor([-3.0], dtype=DT, requires_grad=True)
    dd = DiscretizedLogistic(loc, log_scale)
    (dd.log_prob(torch.tensor([0.5], dtype=DT)) + dd.mean + dd.variance).sum().backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(log_scale.grad).all() and loc.grad.abs() > 0


def test_discretized_logistic_moments_in_float32_and_large_batches() -> None:
    torch.manual_seed(1)
    loc = torch.rand(3, 7, 5) * 1.4 - 0.2
    log_scale = torch.empty(3, 7, 5).uniform_(-8, 0)
    d32 = DiscretizedLogistic(loc, log_scale)
    d64 = DiscretizedLogistic(loc.double(), log_scale.double())
    p = _pmf(d64)
    mean = (p * BINS[:, None, None, None]).sum(0)
    var = (p * (BINS[:, None, None, None] - mean).square()).sum(0)
    assert torch.allclose(d32.mean.double(), mean, atol=2e-6)
    assert torch.allclose(d32.variance.double(), var, atol=2e-6)


# ---------------------------------------------------------------------------------- continuous Bernoulli

ETAS = [0.0, 1e-9, -3e-5, 0.004, -0.02, 0.1999, 0.2001, -0.5, 2.0, -7.5, 25.0, -60.0, 300.0]


def _dense_unit_grid(n: int = 400_001) -> torch.Tensor:
    """Chebyshev-like nodes on [0, 1], dense near both ends where large |eta| puts the mass."""
    s = torch.linspace(0, 1, n, dtype=DT)
    return 0.5 * (1 - torch.cos(math.pi * s))


def test_continuous_bernoulli_integrates_to_one_and_moments_match_quadrature() -> None:
    x = _dense_unit_grid()[:, None]  # (n, 1) against the batch of logits (len(ETAS),)
    d = ContinuousBernoulli(torch.tensor(ETAS, dtype=DT))
    dens = d.log_prob(x).exp()
    mass = torch.trapezoid(dens, x, dim=0)
    mean = torch.trapezoid(dens * x, x, dim=0)
    var = torch.trapezoid(dens * (x - mean).square(), x, dim=0)
    assert torch.allclose(mass, torch.ones_like(mass), atol=1e-8, rtol=0), mass - 1
    assert torch.allclose(d.mean, mean, atol=1e-8, rtol=0)
    assert torch.allclose(d.variance, var, atol=1e-8, rtol=0)


def test_continuous_bernoulli_agrees_with_torch_where_torch_is_accurate_and_is_continuous() -> None:
    eta = torch.linspace(-8, 8, 321, dtype=DT)
    x = torch.rand(321, dtype=DT)
    ref = torch.distributions.ContinuousBernoulli(logits=eta)
    ours = ContinuousBernoulli(eta)
    assert torch.allclose(ours.log_prob(x), ref.log_prob(x), atol=1e-7)
    assert torch.allclose(ours.mean, ref.mean, atol=1e-7)
    assert torch.allclose(ours.variance, ref.variance, atol=1e-7)
    # the series and closed-form branches meet smoothly at |eta| = 0.2
    edge = torch.tensor([0.2 - 1e-12, 0.2 + 1e-12], dtype=DT)
    e = ContinuousBernoulli(edge)
    assert abs(float(e.log_normalizer()[0] - e.log_normalizer()[1])) < 1e-11
    assert abs(float(e.mean[0] - e.mean[1])) < 1e-11 and abs(float(e.variance[0] - e.variance[1])) < 1e-11


def test_continuous_bernoulli_float32_far_from_half_is_still_normalised() -> None:
    # torch's version clamps sigmoid(eta) to 1 - 1.2e-7 in float32, so its normaliser is wrong for |eta| > 16
    eta = torch.tensor([30.0, -45.0])
    x = _dense_unit_grid(200_001)
    dens = ContinuousBernoulli(eta).log_prob(x[:, None].float()).double().exp()
    mass = torch.trapezoid(dens, x, dim=0)
    assert torch.allclose(mass, torch.ones(2, dtype=DT), atol=1e-4)


def test_continuous_bernoulli_rsample_inverts_the_cdf_and_is_differentiable() -> None:
    x = _dense_unit_grid(100_001)
    for eta in [-40.0, -1.0, 0.0, 1e-7, 3.0, 200.0]:
        d = ContinuousBernoulli(torch.tensor(eta, dtype=DT))
        u = torch.tensor([0.001, 0.2, 0.5, 0.9, 0.999], dtype=DT)
        q = d.icdf(u)
        cdf = torch.cat([torch.zeros(1, dtype=DT), torch.cumulative_trapezoid(d.log_prob(x).exp(), x)])
        ref = torch.from_numpy(np.interp(q.numpy(), x.numpy(), cdf.numpy()))  # quadrature CDF at icdf(u)
        assert torch.allclose(ref, u, atol=1e-6), (eta, ref, u)
    logits = torch.tensor([0.5, -2.0], dtype=DT, requires_grad=True)
    torch.manual_seed(0)
    s = ContinuousBernoulli(logits).rsample((100_000,))
    s.mean(0).sum().backward()
    mean = ContinuousBernoulli(logits.detach()).mean
    var = ContinuousBernoulli(logits.detach()).variance
    assert torch.all((s.detach().mean(0) - mean).abs() < 5 * (var / 100_000).sqrt())
    assert torch.all(logits.grad > 0)  # the mean increases with the logit


# --------------------------------------------------------------------------------------------------- heads


def test_heads_parameter_counts_values_and_learnable_scales() -> None:
    raw = torch.linspace(-3, 3, 2 * 5 * 3, dtype=DT).reshape(2, 5, 3)
    dl = build_likelihood("discretized_logistic", 3).to(DT)
    assert isinstance(dl, DiscretizedLogisticHead) and dl.params_per_channel == 1
    d = dl(raw)
    assert d.batch_shape == (2, 5, 3) and torch.allclose(d.loc, torch.sigmoid(raw))
    assert torch.allclose(d.scale, torch.full_like(raw, 0.1))
    assert [n for n, _ in dl.named_parameters()] == ["log_scale"]
    d.log_prob(torch.full_like(raw, 0.5)).sum().backward()
    assert dl.log_scale.grad is not None and dl.log_scale.grad.abs().sum() > 0
    fixed = build_likelihood("discretized_logistic", 3, scale="fixed", fixed_scale=0.05, squash="identity")
    assert len(list(fixed.parameters())) == 0
    assert torch.allclose(fixed(raw.float()).scale, torch.full((2, 5, 3), 0.05))
    assert torch.equal(fixed(raw.float()).loc, raw.float())

    g = build_likelihood("gaussian", 2)
    assert g.params_per_channel == 2 and g.num_outputs == 4
    raw_g = torch.tensor([[0.3, -0.2, 0.0, 5.0]])
    n = g(raw_g)
    assert torch.allclose(n.loc, raw_g[:, :2])
    assert torch.allclose(n.scale, 1e-3 + torch.nn.functional.softplus(raw_g[:, 2:]))
    assert build_likelihood("gaussian", 2, scale="learned").params_per_channel == 1

    b = build_likelihood("bernoulli", 1)
    assert isinstance(b, BernoulliHead) and torch.allclose(
        b(torch.tensor([[0.0], [2.0]])).probs.flatten(), torch.sigmoid(torch.tensor([0.0, 2.0]))
    )
    cb = build_likelihood("continuous_bernoulli", 1)
    assert isinstance(cb, ContinuousBernoulliHead) and isinstance(cb(torch.zeros(3, 1)), ContinuousBernoulli)
    assert isinstance(GaussianHead(1, scale="fixed")(torch.zeros(4, 1)), Normal)


def test_heads_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown likelihood"):
        build_likelihood("poisson", 3)
    with pytest.raises(TypeError, match="discretized_logistic"):
        build_likelihood("discretized_logistic", 3, sigma=2)
    with pytest.raises(ValueError, match="scale"):
        build_likelihood("discretized_logistic", 3, scale="per_point")
    head = build_likelihood("gaussian", 3)
    with pytest.raises(ValueError, match=r"\(\.\.\., 6\)"):
        head(torch.zeros(4, 3))
    with pytest.raises(ValueError):
        DiscretizedLogistic(torch.zeros(2), torch.zeros(2)).log_prob(torch.tensor([0.5, 1.5]))


# ------------------------------------------------------------------------------------------------ mixtures


def _components(kind: str, B: int = 2, N: int = 3, K: int = 4, C: int = 2):
    g = torch.Generator().manual_seed(3)
    if kind == "dl":
        return DiscretizedLogistic(
            torch.rand(B, N, K, C, generator=g, dtype=DT),
            torch.empty(B, N, K, C, dtype=DT).uniform_(-4, -1, generator=g),
        )
    if kind == "bernoulli":
        return Bernoulli(logits=torch.randn(B, N, K, C, generator=g, dtype=DT))
    if kind == "cb":
        return ContinuousBernoulli(torch.randn(B, N, K, C, generator=g, dtype=DT) * 3)
    return Normal(
        torch.randn(B, N, K, C, generator=g, dtype=DT), torch.rand(B, N, K, C, generator=g, dtype=DT) + 0.2
    )


@pytest.mark.parametrize("kind", ["dl", "bernoulli", "cb", "gaussian"])
def test_mixture_log_prob_mean_variance_mode_equal_loops(kind: str) -> None:
    comp = _components(kind)
    B, N, K, C = comp.batch_shape
    log_w = torch.randn(B, N, K, dtype=DT).log_softmax(-1)
    y = comp.sample()[:, :, 0]  # (B, N, C)
    lp, mean, var, mode = (
        mixture_log_prob(comp, log_w, y),
        mixture_mean(comp, log_w),
        mixture_variance(comp, log_w),
        mode_mean(comp, log_w),
    )
    el = expected_log_prob(comp, log_w, y)
    cm, cv = comp.mean, comp.variance
    lp_all = comp.log_prob(y[:, :, None, :])  # (B, N, K, C)
    for b in range(B):
        for n in range(N):
            w = log_w[b, n].exp()
            per_k = [sum(float(lp_all[b, n, k, c]) for c in range(C)) for k in range(K)]
            ref_lp = math.log(sum(float(w[k]) * math.exp(per_k[k]) for k in range(K)))
            assert abs(float(lp[b, n]) - ref_lp) < 1e-10
            assert abs(float(el[b, n]) - sum(float(w[k]) * per_k[k] for k in range(K))) < 1e-10
            for c in range(C):
                m = sum(float(w[k] * cm[b, n, k, c]) for k in range(K))
                second = sum(float(w[k] * (cv[b, n, k, c] + cm[b, n, k, c] ** 2)) for k in range(K))
                assert abs(float(mean[b, n, c]) - m) < 1e-12
                assert abs(float(var[b, n, c]) - (second - m * m)) < 1e-10
                assert float(mode[b, n, c]) == float(cm[b, n, int(w.argmax()), c])
    assert torch.allclose(component_log_prob(comp, y), comp.log_prob(y.unsqueeze(-2)).sum(-1))


def test_discretized_logistic_mixture_is_normalised_and_its_moments_equal_enumeration() -> None:
    comp = _components("dl", B=1, N=2, K=3, C=1)
    log_w = torch.tensor([[[0.1, -1.0, 0.5], [2.0, 0.0, -3.0]]], dtype=DT).log_softmax(-1)
    mix = MixtureOfPointLikelihoods(comp, log_w)
    p = mix.log_prob(BINS.reshape(256, 1, 1, 1)).exp()  # (256, 1, 2)
    assert torch.allclose(p.sum(0), torch.ones(1, 2, dtype=DT), atol=1e-12)
    m = (p * BINS[:, None, None]).sum(0)
    v = (p * (BINS[:, None, None] - m).square()).sum(0)
    assert torch.allclose(mix.mean[..., 0], m, atol=1e-12)
    assert torch.allclose(mix.variance[..., 0], v, atol=1e-12)
    assert torch.allclose(
        mix.log_prob(torch.full((1, 2, 1), 0.4, dtype=DT)),
        mixture_log_prob(comp, log_w, torch.full((1, 2, 1), 0.4, dtype=DT)),
    )


def test_gaussian_mixture_moments_match_monte_carlo() -> None:
    comp = _components("gaussian", B=1, N=2, K=3, C=2)
    log_w = torch.randn(1, 2, 3, dtype=DT)
    mix = MixtureOfPointLikelihoods(comp, log_w)
    torch.manual_seed(0)
    n = 200_000
    s = mix.sample((n,))  # (n, 1, 2, 2)
    se_mean = (mix.variance / n).sqrt()
    assert torch.all((s.mean(0) - mix.mean).abs() < 5 * se_mean)
    fourth = ((s - mix.mean) ** 4).mean(0)
    se_var = ((fourth - mix.variance**2) / n).sqrt()
    assert torch.all((s.var(0) - mix.variance).abs() < 5 * se_var)
    assert torch.allclose(mix.mode_mean, mode_mean(comp, log_w))
    assert torch.allclose(mix.weights.sum(-1), torch.ones(1, 2, dtype=DT))


def test_mixture_rejects_mismatched_shapes() -> None:
    comp = _components("gaussian")
    with pytest.raises(ValueError, match=r"\(\.\.\., K\)"):
        mixture_mean(comp, torch.zeros(2, 3, 5, dtype=DT))
    with pytest.raises(ValueError, match="values y"):
        component_log_prob(comp, torch.zeros(2, 3, 3, dtype=DT))


# ------------------------------------------------------------------------------------------- categorical


@settings(max_examples=40, deadline=None)
@given(
    q=st.lists(st.floats(-6, 6), min_size=5, max_size=5),
    p=st.lists(st.floats(-6, 6), min_size=5, max_size=5),
)
def test_categorical_kl_equals_enumeration(q: list[float], p: list[float]) -> None:
    lq = torch.tensor(q, dtype=DT).log_softmax(-1)
    lp = torch.tensor(p, dtype=DT).log_softmax(-1)
    ref = sum(math.exp(a) * (a - b) for a, b in zip(lq.tolist(), lp.tolist()))
    assert abs(float(categorical_kl(lq, lp)) - ref) < 1e-12
    assert (
        abs(float(categorical_kl(torch.tensor(q, dtype=DT), torch.tensor(p, dtype=DT))) - ref) < 1e-12
    )  # logits
    assert float(categorical_kl(lq, lq)) == pytest.approx(0.0, abs=1e-15)
    h = -sum(math.exp(a) * a for a in lq.tolist())
    assert abs(float(categorical_entropy(lq)) - h) < 1e-12


def test_categorical_kl_batched_with_zero_probabilities_has_finite_gradients() -> None:
    logits_q = torch.tensor([[0.0, 1.0, -math.inf], [2.0, -1.0, 0.5]], dtype=DT, requires_grad=True)
    logits_p = torch.tensor([[0.3, -math.inf, 0.0], [0.0, 0.0, 0.0]], dtype=DT, requires_grad=True)
    kl = categorical_kl(logits_q, logits_p)
    assert math.isinf(float(kl[0].detach()))  # q puts mass where p has none
    ref = kl_divergence(Categorical(logits=logits_q[1]), Categorical(logits=logits_p[1]))
    assert abs(float(kl[1].detach()) - float(ref.detach())) < 1e-12
    kl2 = categorical_kl(logits_q, logits_q.detach().flip(-1).nan_to_num(neginf=-5.0))
    kl2.sum().backward()
    assert torch.isfinite(logits_q.grad).all()

"""Planar normalizing flows and the VaMoH flow prior over the global latent ``z``.

Planar transform (Rezende & Mohamed 2015, Eq. 10; VaMoH Sec. 3.1, "Flow-based prior on z"):

    f(z) = z + u_hat h(w^T z + b),        log|det df/dz| = log(1 + w^T u_hat h'(w^T z + b))

with ``h = LeakyReLU(negative_slope)`` (the VaMoH default, as in the released code) or ``h = tanh``.
Invertibility (Rezende & Mohamed 2015, App. A.1): writing ``a = w^T z + b``, the map is invertible iff
``g(a) = a + (w^T u_hat) h(a)`` is strictly increasing, i.e. ``1 + (w^T u_hat) h'(a) > 0`` for every ``a``.
For tanh (``h' in (0, 1]``) and for leaky ReLU with slope in ``[0, 1]`` (``h' in {slope, 1}``) both reduce
to ``w^T u_hat > -1``, which the paper's reparameterisation of the free parameter ``u`` guarantees:

    u_hat = u + (m(w^T u) - w^T u) w / ||w||^2,       m(x) = -1 + softplus(x)      =>  w^T u_hat = m(w^T u)

Inverse: ``x = f(z)`` gives ``w^T x + b = g(a)``, a 1-D equation for ``a``; then ``z = x - u_hat h(a)``.
Leaky ReLU: ``g`` is linear on each side of 0 and ``g(0) = 0``, so ``a = (w^T x + b) / (1 + c h'(.))``
with the slope chosen by the sign of ``w^T x + b`` (exact, closed form; ``c = w^T u_hat``). Tanh: ``a``
is found by safeguarded Newton/bisection in float64 on the bracket ``|a - (w^T x + b)| <= |c|`` to
~1e-13, then re-attached to the autograd graph by one Newton step from the detached root, which gives
exactly the implicit-function-theorem gradient w.r.t. ``x`` and the flow parameters.

Flow prior (VaMoH Sec. 3.1 and App. A.5): ``T`` planar layers on a trainable diagonal Gaussian base

    z_0 ~ N(mu_0, diag exp(2 log_sigma_0)),   z = f_T o ... o f_1 (z_0)         (sampling: forward pass)
    log p(z) = log N(z_0; mu_0, sigma_0^2) + sum_t log|det J_{f_t^{-1}}|,  z_0 = f_1^{-1} o ... o f_T^{-1}(z)

RealNVP (Dinh et al. 2017, Eq. 4-9), a flow over vectors for density estimation (Functa's prior over its
modulations): an :class:`ActNorm` layer (Kingma & Dhariwal 2018, data-dependent initialisation) then
``L`` affine couplings that alternate which half of the coordinates conditions the other,

    y_B = x_B exp(s(x_A)) + t(x_A),  y_A = x_A,     log|det| = sum s(x_A),    s = tanh(MLP_s),

mapping data ``z`` to a standard normal ``u``: ``log p(z) = log N(u; 0, I) + sum log|det|``; sampling
inverts the layers exactly (``x_B = (y_B - t(y_A)) exp(-s(y_A))``).

Shapes: ``z`` and ``x`` are ``(... d)``, log-dets and log-densities ``(...)``.

Example:
    >>> import torch
    >>> prior = PlanarFlowPrior(dim=4, num_layers=3)
    >>> p = prior()                                   # a torch.distributions.Distribution
    >>> z = p.rsample((5,))                           # (5, 4), differentiable w.r.t. the flow parameters
    >>> p.log_prob(z).shape
    torch.Size([5])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal, constraints

__all__ = [
    "PlanarTransform",
    "PlanarFlowDistribution",
    "PlanarFlowPrior",
    "StandardNormalPrior",
    "ActNorm",
    "AffineCoupling",
    "RealNVPDistribution",
    "RealNVPPrior",
    "kl_mc",
    "kl_normal_std",
]

_NONLINEARITIES = ("leaky_relu", "tanh")
_NO_SAMPLE_SHAPE = torch.Size()
_Shape = torch.Size | list[int] | tuple[int, ...]


class PlanarTransform(nn.Module):
    """One invertible planar layer ``f(z) = z + u_hat h(w^T z + b)`` (see the module docstring).

    Args:
        dim: dimension ``d`` of ``z``.
        nonlinearity: ``"leaky_relu"`` (closed-form inverse; VaMoH and its released code) or ``"tanh"``
            (Rezende & Mohamed 2015; numerical inverse).
        negative_slope: slope of the leaky ReLU for negative inputs, in ``[0, 1]`` (0.2 as in the code).

    Parameters ``u (d)``, ``w (d)``, ``b ()`` are initialised as in the released code (normflows):
    ``u ~ U(-sqrt 2, sqrt 2)``, ``w ~ U(-sqrt(2/d), sqrt(2/d))``, ``b = 0``. ``u`` is the free parameter;
    the layer uses ``u_hat`` (property), which satisfies ``w^T u_hat > -1``.

    Example:
        >>> import torch
        >>> f = PlanarTransform(3, nonlinearity="tanh").double()
        >>> z = torch.randn(10, 3, dtype=torch.float64)
        >>> x, log_det = f(z)
        >>> z_back, log_det_inv = f.inverse(x)
        >>> bool(torch.allclose(z_back, z, atol=1e-10)), bool(torch.allclose(log_det_inv, -log_det))
        (True, True)
    """

    def __init__(self, dim: int, nonlinearity: str = "leaky_relu", negative_slope: float = 0.2) -> None:
        super().__init__()
        if int(dim) < 1:
            raise ValueError(f"PlanarTransform needs dim >= 1, got {dim}")
        if nonlinearity not in _NONLINEARITIES:
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}: use one of {_NONLINEARITIES}")
        if not 0.0 <= float(negative_slope) <= 1.0:
            raise ValueError(
                f"negative_slope must be in [0, 1] for the planar layer to be invertible under the "
                f"constraint w^T u_hat > -1, got {negative_slope}"
            )
        self.dim = int(dim)
        self.nonlinearity = nonlinearity
        self.negative_slope = float(negative_slope)
        lim_u, lim_w = math.sqrt(2.0), math.sqrt(2.0 / self.dim)
        self.u = nn.Parameter(torch.empty(self.dim).uniform_(-lim_u, lim_u))
        self.w = nn.Parameter(torch.empty(self.dim).uniform_(-lim_w, lim_w))
        self.b = nn.Parameter(torch.zeros(()))

    def extra_repr(self) -> str:
        slope = f", negative_slope={self.negative_slope}" if self.nonlinearity == "leaky_relu" else ""
        return f"dim={self.dim}, nonlinearity={self.nonlinearity!r}{slope}"

    @property
    def u_hat(self) -> Tensor:
        """``u + (m(w^T u) - w^T u) w / ||w||^2`` with ``m(x) = softplus(x) - 1`` (so ``w^T u_hat > -1``)."""
        wu = torch.dot(self.w, self.u)
        return self.u + (F.softplus(wu) - 1.0 - wu) * self.w / torch.dot(self.w, self.w)

    def _h(self, a: Tensor) -> Tensor:
        if self.nonlinearity == "tanh":
            return torch.tanh(a)
        return F.leaky_relu(a, self.negative_slope)

    def _h_prime(self, a: Tensor) -> Tensor:
        if self.nonlinearity == "tanh":
            return 1.0 - torch.tanh(a).square()
        return torch.where(a < 0, torch.full_like(a, self.negative_slope), torch.ones_like(a))

    def _check(self, t: Tensor, name: str) -> None:
        if t.ndim < 1 or t.shape[-1] != self.dim:
            raise ValueError(
                f"PlanarTransform expects {name} of shape (..., {self.dim}), got {tuple(t.shape)}"
            )

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z (... d) -> (x (... d), log|det df/dz| (...))``."""
        self._check(z, "z")
        u_hat = self.u_hat
        c = torch.dot(self.w, u_hat)
        a = z @ self.w + self.b
        x = z + u_hat * self._h(a).unsqueeze(-1)
        return x, torch.log1p(c * self._h_prime(a))

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x (... d) -> (z = f^{-1}(x) (... d), log|det d f^{-1}/dx| (...))``."""
        self._check(x, "x")
        u_hat = self.u_hat
        c = torch.dot(self.w, u_hat)
        y = x @ self.w + self.b  # = g(a) = a + c h(a)
        if self.nonlinearity == "leaky_relu":
            slope = torch.where(y < 0, torch.full_like(y, self.negative_slope), torch.ones_like(y))
            a = y / (1.0 + c * slope)
        else:
            a_star = _solve_tanh_planar(y.detach(), c.detach()).to(y.dtype)
            t = torch.tanh(a_star)
            # one Newton step from the detached root: same value, implicit-function gradient
            a = a_star - (a_star + c * t - y) / (1.0 + c * (1.0 - t.square()))
        z = x - u_hat * self._h(a).unsqueeze(-1)
        return z, -torch.log1p(c * self._h_prime(a))


@torch.no_grad()
def _solve_tanh_planar(y: Tensor, c: Tensor, max_iter: int = 200) -> Tensor:
    """Solve ``a + c tanh(a) = y`` (``c > -1``, so the left side is strictly increasing) in float64.

    Safeguarded Newton (``rtsafe``): the root stays bracketed (``|a - y| <= |c|`` initially); a step
    falls back to bisection when Newton would leave the bracket or did not halve the step size of two
    iterations before, so it converges for every ``c > -1`` (plain Newton cycles on tanh-like maps).
    """
    y = y.double()
    c = c.double()
    lo, hi = y - c.abs(), y + c.abs()  # |a - y| = |c tanh a| <= |c|
    a = y - c * torch.tanh(y)  # exact to rounding where tanh saturates (|y| >> 1 + |c|)
    dx_old = hi - lo
    dx = dx_old.clone()
    tol = 1e-13 * (1.0 + y.abs())
    for _ in range(max_iter):
        t = torch.tanh(a)
        r = a + c * t - y
        done = (r.abs() <= tol) | (hi - lo <= 1e-2 * tol)
        if bool(done.all()):
            break
        lo = torch.where(r < 0, a, lo)
        hi = torch.where(r > 0, a, hi)
        step = r / (1.0 + c * (1.0 - t * t))
        newton = a - step
        use_newton = (newton > lo) & (newton < hi) & (2 * step.abs() <= dx_old.abs())
        dx_old = dx
        dx = torch.where(use_newton, step, 0.5 * (hi - lo))
        a = torch.where(done, a, torch.where(use_newton, newton, 0.5 * (lo + hi)))
    return a


class PlanarFlowDistribution(Distribution):
    """The push-forward of a diagonal Gaussian through planar layers (batch shape ``()``, event ``(d,)``).

    Built by :class:`PlanarFlowPrior`; it holds references to the prior's parameters, so its ``log_prob``
    and ``rsample`` are differentiable w.r.t. them (and ``log_prob`` w.r.t. ``z``).

    Example:
        >>> import torch
        >>> p = PlanarFlowPrior(2, num_layers=2)()
        >>> z, log_p = p.rsample_and_log_prob((3,))
        >>> bool(torch.allclose(log_p, p.log_prob(z), atol=1e-4))
        True
    """

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self,
        base_loc: Tensor,
        base_log_scale: Tensor,
        transforms: Iterable[PlanarTransform] | nn.ModuleList,
        validate_args: bool | None = None,
    ) -> None:
        if base_loc.ndim != 1 or base_log_scale.shape != base_loc.shape:
            raise ValueError(
                f"base_loc and base_log_scale must both have shape (d,), got {tuple(base_loc.shape)} "
                f"and {tuple(base_log_scale.shape)}"
            )
        self.base_loc = base_loc
        self.base_log_scale = base_log_scale
        self.transforms = cast(list[PlanarTransform], list(transforms))
        for t in self.transforms:
            if t.dim != base_loc.shape[0]:
                raise ValueError(f"a planar layer has dim {t.dim}, the base has dim {base_loc.shape[0]}")
        super().__init__(torch.Size(), torch.Size(base_loc.shape), validate_args=validate_args)

    @property
    def base(self) -> Distribution:
        """The base distribution ``N(mu_0, diag sigma_0^2)`` as an ``Independent(Normal, 1)``."""
        return Independent(Normal(self.base_loc, self.base_log_scale.exp()), 1)

    def _base_log_prob(self, z0: Tensor) -> Tensor:
        eps = (z0 - self.base_loc) * torch.exp(-self.base_log_scale)
        return -0.5 * (eps.square() + math.log(2 * math.pi)).sum(-1) - self.base_log_scale.sum()

    def rsample(self, sample_shape: _Shape = _NO_SAMPLE_SHAPE) -> Tensor:
        return self.rsample_and_log_prob(sample_shape)[0]

    def rsample_and_log_prob(self, sample_shape: _Shape = _NO_SAMPLE_SHAPE) -> tuple[Tensor, Tensor]:
        """Sample by the forward pass and return ``(z (*sample_shape, d), log p(z) (*sample_shape))``.

        The density comes from the forward log-dets (``log p0(z0) - sum_t log|det J_{f_t}|``), without
        inverting the layers.
        """
        shape = self._extended_shape(torch.Size(sample_shape))
        eps = torch.randn(shape, dtype=self.base_loc.dtype, device=self.base_loc.device)
        z = self.base_loc + self.base_log_scale.exp() * eps
        log_p = -0.5 * (eps.square() + math.log(2 * math.pi)).sum(-1) - self.base_log_scale.sum()
        for t in self.transforms:
            z, log_det = t(z)
            log_p = log_p - log_det
        return z, log_p

    def log_prob(self, value: Tensor) -> Tensor:
        """Exact ``log p(z)`` for ``z (... d)`` by inverting the layers from last to first."""
        if value.ndim < 1 or value.shape[-1] != self.event_shape[0]:
            raise ValueError(
                f"the flow prior is over vectors of size {self.event_shape[0]}, "
                f"got z of shape {tuple(value.shape)}"
            )
        if self._validate_args:
            self._validate_sample(value)
        z = value
        log_det = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
        for t in reversed(self.transforms):
            z, ld = t.inverse(z)
            log_det = log_det + ld
        return self._base_log_prob(z) + log_det


class PlanarFlowPrior(nn.Module):
    """VaMoH's prior ``p_psi(z)``: ``num_layers`` planar layers on a trainable diagonal Gaussian base.

    ``prior()`` returns a :class:`PlanarFlowDistribution` (a ``torch.distributions.Distribution`` with
    ``log_prob``, ``rsample``, ``sample``, event shape ``(dim,)``). Sampling runs the base through the layers
    forward; ``log_prob`` inverts them (exactly for leaky ReLU, numerically to ~1e-13 for tanh).

    Relation to the paper and the released code: the paper (Sec. 3.1, App. A.5, Table 3 "Flow T") uses
    ``T`` planar layers with a Gaussian base, trained after a warm-up with ``N(0, I)`` (Algorithm 1; use
    :class:`StandardNormalPrior` for that phase). The released code builds the same object with normflows:
    ``NormalizingFlow(q0=DiagGaussian(d) [trainable loc and log_scale, zero init], flows=[Planar((d,),
    act="leaky_relu")] * T)``; its ``sample`` is our forward direction and its ``log_prob`` (``forward_kld``)
    is our inverse direction, with the same ``u_hat`` constraint, slope 0.2 and initialisation, so the two
    define the same density for the same parameters (checked in the tests). ``trainable_base=False`` fixes
    the base to ``N(0, I)``.

    Example:
        >>> import torch
        >>> prior = PlanarFlowPrior(dim=8, num_layers=3)
        >>> from torch.distributions import Independent, Normal
        >>> q = Independent(Normal(torch.zeros(2, 8), torch.ones(2, 8)), 1)
        >>> kl = kl_mc(q, prior(), num_samples=4)          # (2,), gradients to q and to the flow
        >>> kl.shape
        torch.Size([2])
    """

    def __init__(
        self,
        dim: int,
        num_layers: int,
        nonlinearity: str = "leaky_relu",
        trainable_base: bool = True,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if int(dim) < 1:
            raise ValueError(f"PlanarFlowPrior needs dim >= 1, got {dim}")
        if int(num_layers) < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        self.dim = int(dim)
        self.layers = nn.ModuleList(
            PlanarTransform(self.dim, nonlinearity, negative_slope) for _ in range(int(num_layers))
        )
        if trainable_base:
            self.base_loc = nn.Parameter(torch.zeros(self.dim))
            self.base_log_scale = nn.Parameter(torch.zeros(self.dim))
        else:
            self.register_buffer("base_loc", torch.zeros(self.dim))
            self.register_buffer("base_log_scale", torch.zeros(self.dim))

    def forward(self) -> PlanarFlowDistribution:
        return PlanarFlowDistribution(self.base_loc, self.base_log_scale, self.layers)


class StandardNormalPrior(nn.Module):
    """``N(0, I)`` over ``z`` with the same call convention as :class:`PlanarFlowPrior` (warm-up prior).

    Example:
        >>> p = StandardNormalPrior(3)()
        >>> p.event_shape, float(p.log_prob(torch.zeros(3)))  # doctest: +ELLIPSIS
        (torch.Size([3]), -2.756...)
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if int(dim) < 1:
            raise ValueError(f"StandardNormalPrior needs dim >= 1, got {dim}")
        self.dim = int(dim)
        self.loc: Tensor
        self.register_buffer("loc", torch.zeros(self.dim), persistent=False)

    def forward(self) -> Distribution:
        return Independent(Normal(self.loc, torch.ones_like(self.loc)), 1)


def kl_mc(q: Distribution, p: Distribution, num_samples: int = 1) -> Tensor:
    """Monte-Carlo ``KL(q || p) ~ mean_s [log q(z_s) - log p(z_s)]``, ``z_s = q.rsample()``.

    The samples are reparameterised, so the estimate carries gradients to ``q``'s parameters (the
    encoder) as well as to ``p``'s (the flow). Shape: ``q.batch_shape`` (``p`` broadcasts against it).

    Example:
        >>> q = Independent(Normal(torch.zeros(4, 2), torch.ones(4, 2)), 1)
        >>> kl_mc(q, StandardNormalPrior(2)(), num_samples=8).abs().max().item()
        0.0
    """
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not q.has_rsample:
        raise TypeError(f"kl_mc needs a reparameterisable q (q.has_rsample), got {type(q).__name__}")
    if q.event_shape != p.event_shape:
        raise ValueError(
            f"q and p have different event shapes: {tuple(q.event_shape)} vs {tuple(p.event_shape)}"
        )
    z = q.rsample((int(num_samples),))
    return (q.log_prob(z) - p.log_prob(z)).mean(0)


def kl_normal_std(q: Distribution) -> Tensor:
    """Closed-form ``KL(q || N(0, I)) = 1/2 sum (mu^2 + sigma^2 - 1 - 2 log sigma)``.

    ``q`` is a ``Normal`` (elementwise KL, shape ``q.batch_shape``) or an ``Independent(Normal, n)`` (summed
    over its ``n`` event dimensions, shape ``q.batch_shape``).

    Example:
        >>> q = Independent(Normal(torch.ones(2, 3), torch.ones(2, 3)), 1)
        >>> kl_normal_std(q).tolist()
        [1.5, 1.5]
    """
    n = 0
    base = q
    if isinstance(q, Independent):
        n = q.reinterpreted_batch_ndims
        base = q.base_dist
    if not isinstance(base, Normal):
        raise TypeError(
            f"kl_normal_std needs a Normal or Independent(Normal) posterior, got {type(q).__name__}; "
            "use kl_mc for other distributions"
        )
    mu, sigma = base.loc, base.scale
    kl = 0.5 * (mu.square() + sigma.square() - 1.0) - torch.log(sigma)
    return kl.sum(tuple(range(-n, 0))) if n > 0 else kl


# ------------------------------------------------------------------------------------------- RealNVP


class ActNorm(nn.Module):
    """``y = (x - loc) exp(-log_scale)`` per dimension, ``log|det| = -sum log_scale`` (Glow's actnorm).

    The first call in training mode on a batch of more than one vector sets ``loc`` and ``log_scale`` to
    the batch mean and log standard deviation (data-dependent initialisation), so the flow sees
    standardised inputs; the flag is a buffer, saved with the weights.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.initialized: Tensor
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        flat = x.reshape(-1, x.shape[-1]).to(self.loc.dtype)
        self.loc.copy_(flat.mean(0))
        self.log_scale.copy_(flat.std(0).clamp_min(1e-6).log())
        self.initialized.fill_(True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized) and x.reshape(-1, x.shape[-1]).shape[0] > 1:
            self.initialize(x)
        y = (x - self.loc) * torch.exp(-self.log_scale)
        return y, (-self.log_scale.sum()).expand(x.shape[:-1])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return y * torch.exp(self.log_scale) + self.loc, self.log_scale.sum().expand(y.shape[:-1])


class AffineCoupling(nn.Module):
    """One RealNVP coupling: the dimensions of one parity condition an affine map of the others.

    Args:
        dim: ``d >= 2``.
        parity: 0: the even dimensions condition the odd ones; 1: the reverse.
        hidden: widths of the MLP ``x_A -> (s, t)`` (ReLU, optional dropout); its last layer starts at zero,
            so the coupling starts as the identity.
    ``forward(x) -> (y, log|det dy/dx|)``; ``inverse(y) -> (x, log|det dx/dy|)``.
    """

    def __init__(
        self, dim: int, parity: int, hidden: Sequence[int] = (256, 256), dropout: float = 0.0
    ) -> None:
        super().__init__()
        if int(dim) < 2:
            raise ValueError(f"a coupling layer needs dim >= 2, got {dim}")
        idx = torch.arange(int(dim))
        cond = idx[idx % 2 == int(parity) % 2]
        self.cond_idx: Tensor
        self.trans_idx: Tensor
        self.register_buffer("cond_idx", cond, persistent=False)
        self.register_buffer("trans_idx", idx[idx % 2 != int(parity) % 2], persistent=False)
        layers: list[nn.Module] = []
        prev = len(cond)
        for h in hidden:
            layers += [nn.Linear(prev, int(h)), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            prev = int(h)
        last = nn.Linear(prev, 2 * (int(dim) - len(cond)))
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def _st(self, x_cond: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self.net(x_cond).chunk(2, dim=-1)
        return torch.tanh(s), t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._st(x[..., self.cond_idx])
        y = x.clone()
        y[..., self.trans_idx] = x[..., self.trans_idx] * torch.exp(s) + t
        return y, s.sum(-1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._st(y[..., self.cond_idx])
        x = y.clone()
        x[..., self.trans_idx] = (y[..., self.trans_idx] - t) * torch.exp(-s)
        return x, -s.sum(-1)


class RealNVPDistribution(Distribution):
    """The density of a RealNVP flow (batch shape ``()``, event ``(d,)``), built by :class:`RealNVPPrior`.

    ``log_prob(z)`` maps ``z`` to the base through the layers; ``rsample`` inverts them from a base draw.

    Example:
        >>> import torch
        >>> p = RealNVPPrior(4, num_layers=2, hidden=(8,))()
        >>> z = p.rsample((3,))
        >>> p.log_prob(z).shape
        torch.Size([3])
    """

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, layers: Iterable[nn.Module], dim: int, validate_args: bool | None = None) -> None:
        self.layers = cast(list[ActNorm | AffineCoupling], list(layers))
        self.dim = int(dim)
        p = next((q for layer in self.layers for q in layer.parameters()), None)
        self._dtype = p.dtype if p is not None else torch.get_default_dtype()
        self._device = p.device if p is not None else torch.device("cpu")
        super().__init__(torch.Size(), torch.Size([self.dim]), validate_args=validate_args)

    def log_prob(self, value: Tensor) -> Tensor:
        if value.ndim < 1 or value.shape[-1] != self.dim:
            raise ValueError(f"the flow is over vectors of size {self.dim}, got shape {tuple(value.shape)}")
        u, log_det = value, torch.zeros(value.shape[:-1], dtype=value.dtype, device=value.device)
        for layer in self.layers:
            u, ld = layer(u)
            log_det = log_det + ld
        return -0.5 * (u.square() + math.log(2 * math.pi)).sum(-1) + log_det

    def rsample(self, sample_shape: _Shape = _NO_SAMPLE_SHAPE) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        z = torch.randn(shape, dtype=self._dtype, device=self._device)
        for layer in reversed(self.layers):
            z, _ = layer.inverse(z)
        return z


class RealNVPPrior(nn.Module):
    """A RealNVP density over ``dim``-vectors: ActNorm then ``num_layers`` alternating affine couplings.

    ``prior()`` returns a :class:`RealNVPDistribution`. Use it in eval mode to sample when ``dropout`` > 0.
    """

    def __init__(
        self, dim: int, num_layers: int = 8, hidden: Sequence[int] = (256, 256), dropout: float = 0.0
    ) -> None:
        super().__init__()
        if int(num_layers) < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.dim = int(dim)
        self.layers = nn.ModuleList([ActNorm(self.dim)])
        self.layers.extend(AffineCoupling(self.dim, i % 2, hidden, dropout) for i in range(int(num_layers)))

    def forward(self) -> RealNVPDistribution:
        return RealNVPDistribution(self.layers, self.dim)

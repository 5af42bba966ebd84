"""Per-point likelihoods of VaMoH and their K-component mixtures (VaMoH Eq. 10, 15-18; App. A.6-A.7).

Each hypergenerator ``k`` gives, at every point ``d`` and channel ``c``, a distribution ``p_k(y_dc)``; the
point likelihood is the mixture ``p(y_d) = sum_k pi_dk prod_c p_k(y_dc)`` (Eq. 18, whose ``prod_k`` is a
typo for ``sum_k``).

Distributions (all ``torch.distributions.Distribution`` with ``log_prob``, ``mean``, ``variance``,
``sample``; event shape ``()``, one per channel):

- :class:`DiscretizedLogistic` (images; Eq. 17). The paper writes Eq. 17 on the 8-bit scale,
  ``sigma((y + 0.5 - mu)/s) - sigma((y - 0.5 - mu)/s)`` with ``y in {0..255}``; it does **not** map data to
  ``[-1, 1]`` (unlike PixelCNN++): values live in ``[0, 1]`` and ``mu = sigmoid(.)`` (App. A.7, "Sigmoid
  activation in the final layer"). We use the same model on ``[0, 1]``: bins of width
  ``Delta = 1 / (num_bins - 1)`` centred on ``k Delta``, i.e. the paper's Eq. 17 with ``mu`` and ``s`` divided
  by 255. The two edge bins absorb the tails (``P(0) = sigma((Delta/2 - mu)/s)``, ``P(K-1) = 1 -
  sigma((1 - Delta/2 - mu)/s)``) so the probabilities of the ``num_bins`` values sum to one exactly (Eq. 17
  alone leaks mass outside ``[0, 1]``; the released code also leaks it, uses a half-width of 1/512 instead
  of 1/510 and adds 1e-7 inside the log).
- :class:`ContinuousBernoulli` (climate fields; Loaiza-Ganem & Cunningham 2019), written in the logit
  ``eta`` so that the normaliser ``C = eta / tanh(eta / 2)``, mean and variance are accurate for every
  ``eta`` (torch's version clamps the probability, which makes its normaliser wrong for ``|eta| > 16`` in
  float32).
- ``torch.distributions.Bernoulli`` (voxel occupancy, logits) and ``torch.distributions.Normal``.

Heads (:func:`build_likelihood`) turn the INR's raw outputs into these distributions; mixture helpers
work on a component distribution with batch shape ``(..., K, C)`` and mixture log-weights ``(..., K)``:

    component_log_prob  (..., K)   log p_k(y) = sum_c log p_k(y_c)
    mixture_log_prob    (...)      logsumexp_k (log pi_k + log p_k(y))
    expected_log_prob   (...)      sum_k pi~_k log p_k(y)                  (the reconstruction term of Eq. 16)
    mixture_mean        (..., C)   sum_k pi_k E_k[y]
    mixture_variance    (..., C)   sum_k pi_k (Var_k[y] + (E_k[y] - E[y])^2)   (law of total variance)
    mode_mean           (..., C)   E_{k*}[y], k* = argmax_k pi_k
    categorical_kl      (...)      KL(Cat(q) || Cat(p))                    (KL_c of Eq. 16)

Example:
    >>> import torch
    >>> head = build_likelihood("discretized_logistic", channels=3)
    >>> raw = torch.randn(2, 10, 4, 3 * head.params_per_channel)      # (B, N, K, C * P)
    >>> comp = head(raw)                                                # batch shape (2, 10, 4, 3)
    >>> log_w = torch.randn(2, 10, 4).log_softmax(-1)
    >>> y = torch.randint(0, 256, (2, 10, 3)) / 255
    >>> mixture_log_prob(comp, log_w, y).shape, mixture_mean(comp, log_w).shape
    (torch.Size([2, 10]), torch.Size([2, 10, 3]))
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import (
    Bernoulli,
    Categorical,
    Distribution,
    Independent,
    MixtureSameFamily,
    Normal,
    constraints,
)
from torch.distributions.utils import broadcast_all, lazy_property

__all__ = [
    "DiscretizedLogistic",
    "ContinuousBernoulli",
    "LikelihoodHead",
    "DiscretizedLogisticHead",
    "BernoulliHead",
    "ContinuousBernoulliHead",
    "GaussianHead",
    "LIKELIHOODS",
    "build_likelihood",
    "MixtureOfPointLikelihoods",
    "component_log_prob",
    "mixture_log_prob",
    "expected_log_prob",
    "mixture_mean",
    "mixture_variance",
    "mode_mean",
    "categorical_kl",
    "categorical_entropy",
]


_NO_SAMPLE_SHAPE = torch.Size()
_Shape = torch.Size | list[int] | tuple[int, ...]


def _log1mexp(x: Tensor) -> Tensor:
    """``log(1 - exp(-x))`` for ``x > 0``, accurate for small and large ``x`` (Maechler 2012)."""
    return torch.where(x < math.log(2.0), torch.log(-torch.expm1(-x)), torch.log1p(-torch.exp(-x)))


class DiscretizedLogistic(Distribution):
    """Discretized logistic over ``num_bins`` equally spaced values in ``[0, 1]`` (VaMoH Eq. 17).

    ``P(y = k Delta) = F(k Delta + Delta/2) - F(k Delta - Delta/2)`` with ``F(t) = sigmoid((t - loc) / s)``,
    ``Delta = 1 / (num_bins - 1)``, ``s = exp(log_scale)``, and the edge bins extended to ``-inf`` / ``+inf``.
    A value is assigned to the nearest bin centre (``round(y (num_bins - 1))``).

    ``log_prob`` uses the exact identity ``sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - exp(b - a))``
    with ``a - b = Delta / s``: a sum of three finite, stable terms for every ``loc`` and ``s``, so no
    mid-bin fallback is needed when the CDF difference would underflow. ``mean`` and ``variance`` are exact
    finite sums over the ``num_bins - 1`` bin boundaries (``O(num_bins)`` sigmoids per element, computed in
    chunks; use ``loc`` when the continuous location is all you need). Shapes: ``loc``, ``log_scale``
    broadcast to the batch shape; the event shape is ``()``.

    Example:
        >>> import torch
        >>> d = DiscretizedLogistic(torch.tensor([0.2, 0.9]), torch.tensor([-3.0, -2.0]))
        >>> d.log_prob(torch.tensor([51 / 255, 1.0])).exp()
        tensor([0.0197, 0.3264])
        >>> y = torch.arange(256) / 255
        >>> float(d.log_prob(y[:, None]).exp().sum(0)[1])      # doctest: +ELLIPSIS
        1.0...
    """

    arg_constraints: ClassVar[dict] = {"loc": constraints.real, "log_scale": constraints.real}
    support = constraints.unit_interval
    has_rsample = False

    def __init__(
        self, loc: Tensor, log_scale: Tensor | float, num_bins: int = 256, validate_args: bool | None = None
    ) -> None:
        if int(num_bins) < 2:
            raise ValueError(f"DiscretizedLogistic needs num_bins >= 2, got {num_bins}")
        self.loc, self.log_scale = broadcast_all(loc, log_scale)
        self.num_bins = int(num_bins)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def scale(self) -> Tensor:
        return self.log_scale.exp()

    @property
    def bin_width(self) -> float:
        return 1.0 / (self.num_bins - 1)

    def expand(self, batch_shape: _Shape, _instance: Any = None) -> DiscretizedLogistic:
        shape = torch.Size(batch_shape)
        return DiscretizedLogistic(
            self.loc.expand(shape), self.log_scale.expand(shape), self.num_bins, validate_args=False
        )

    def _bin_index(self, value: Tensor) -> Tensor:
        return torch.round(value * (self.num_bins - 1)).clamp(0, self.num_bins - 1)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        k = self._bin_index(value)
        half = 0.5 * self.bin_width
        inv_s = torch.exp(-self.log_scale)
        centre = k * self.bin_width
        a = (centre + half - self.loc) * inv_s  # upper edge of the bin, standardised
        b = (centre - half - self.loc) * inv_s  # lower edge
        upper = F.logsigmoid(a)  # log F(upper): the whole lower tail (bin 0)
        lower = F.logsigmoid(-b)  # log(1 - F(lower)): the whole upper tail (bin K-1)
        interior = upper + lower + _log1mexp(self.bin_width * inv_s)
        return torch.where(k == 0, upper, torch.where(k == self.num_bins - 1, lower, interior))

    @lazy_property
    def _moments(self) -> tuple[Tensor, Tensor]:
        """Exact mean and variance as sums over the bin boundaries ``m_k = (k - 1/2) Delta``, k = 1..K-1.

        Pivot on the centre ``c_j`` of the bin that contains ``loc`` (``j = #{k: m_k <= loc}``, clamped to
        the grid) and let ``U_k = +P(Y >= c_k) = sigmoid(-|z_k|)`` for ``k > j`` and ``U_k = -P(Y <= c_{k-1})
        = -sigmoid(-|z_k|)`` for ``k <= j``, ``z_k = (loc - m_k) / s``. Telescoping over the bins gives
        ``E[Y - c_j] = Delta sum_k U_k`` and ``E[(Y - c_j)^2] = 2 Delta sum_k (m_k - c_j) U_k`` (all terms
        of the second sum are >= 0 and ``|m_k - c_j| >= Delta / 2``, so it is free of cancellation); both
        sums are one matrix product ``U @ [1, m]``.
        """
        K, delta = self.num_bins, self.bin_width
        loc, inv_s = self.loc.detach(), torch.exp(-self.log_scale)
        dtype, device = loc.dtype, loc.device
        # j = #{k >= 1: m_k <= loc}, computed with the same floating-point m_k as below
        j = torch.floor(loc * (K - 1) + 0.5).clamp(0, K - 1)
        m_j = (j - 0.5) * delta
        m_next = (j + 0.5) * delta
        j = j - ((loc < m_j) & (j >= 1)).to(dtype) + ((loc >= m_next) & (j <= K - 2)).to(dtype)
        pivot = j * delta
        loc = self.loc
        acc = loc.new_zeros(loc.shape + (2,))
        chunk = int(min(K - 1, max(1, 2**22 // max(1, loc.numel()))))
        for start in range(1, K, chunk):
            k = torch.arange(start, min(K, start + chunk), dtype=dtype, device=device)
            m = (k - 0.5) * delta
            z = (loc.unsqueeze(-1) - m) * inv_s.unsqueeze(-1)
            t = torch.sigmoid(-z.abs())
            u = torch.where(k > j.unsqueeze(-1), t, -t)
            acc = acc + u @ torch.stack([torch.ones_like(m), m], -1)
        e1 = delta * acc[..., 0]
        e2 = 2 * delta * (acc[..., 1] - pivot * acc[..., 0])
        return pivot + e1, (e2 - e1.square()).clamp_min(0.0)

    @property
    def mean(self) -> Tensor:
        return self._moments[0]

    @property
    def variance(self) -> Tensor:
        return self._moments[1]

    @property
    def mode(self) -> Tensor:
        """The most probable bin value: the centre nearest to ``loc`` unless an edge bin holds more mass."""
        K = self.num_bins
        near = torch.round(self.loc.detach().clamp(0, 1) * (K - 1)) / (K - 1)
        cands = torch.stack([near, torch.zeros_like(near), torch.ones_like(near)], -1)
        lp = self.log_prob(cands.movedim(-1, 0)).movedim(0, -1)
        return cands.gather(-1, lp.argmax(-1, keepdim=True)).squeeze(-1)

    def sample(self, sample_shape: _Shape = _NO_SAMPLE_SHAPE) -> Tensor:
        """Draw a logistic variable and report the bin it falls in (exactly the discretized law)."""
        shape = self._extended_shape(torch.Size(sample_shape))
        with torch.no_grad():
            u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
            eps = torch.finfo(u.dtype).tiny
            u = u.clamp(eps, 1 - torch.finfo(u.dtype).eps)
            x = self.loc + self.scale * (torch.log(u) - torch.log1p(-u))
            return self._bin_index(x.clamp(-1.0, 2.0)) / (self.num_bins - 1)


class ContinuousBernoulli(Distribution):
    """Continuous Bernoulli on ``[0, 1]`` parameterised by its logit ``eta`` (Loaiza-Ganem & Cunningham 2019).

    ``log p(y) = log C(eta) + y eta - softplus(eta)``, ``C(eta) = eta / tanh(eta / 2)`` (``C(0) = 2``);
    with ``t = eta / 2``: ``mean = 1/2 + (coth t - 1/t) / 2``, ``variance = (1/t^2 - 1/sinh^2 t) / 4``;
    inverse CDF ``y = log1p(u expm1(eta)) / eta``. Series expansions are used for ``|t| < 0.1`` and the
    moments and normaliser are evaluated in float64, so every ``eta`` (including ``lambda`` near 0.5 and
    near 0 or 1) is accurate. Same model as ``torch.distributions.ContinuousBernoulli(logits=eta)`` but
    without its clamping of ``sigmoid(eta)``; ``rsample`` is reparameterised.

    Example:
        >>> import torch
        >>> d = ContinuousBernoulli(torch.tensor([0.0, 3.0]))
        >>> d.mean, d.log_prob(torch.tensor([0.5, 0.5])).exp()   # doctest: +ELLIPSIS
        (tensor([0.5000, 0.7...]), tensor([1.0000, 0.7...]))
    """

    arg_constraints: ClassVar[dict] = {"logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, logits: Tensor, validate_args: bool | None = None) -> None:
        (self.logits,) = broadcast_all(logits)
        super().__init__(self.logits.shape, validate_args=validate_args)

    @property
    def probs(self) -> Tensor:
        return torch.sigmoid(self.logits)

    def expand(self, batch_shape: _Shape, _instance: Any = None) -> ContinuousBernoulli:
        return ContinuousBernoulli(self.logits.expand(torch.Size(batch_shape)), validate_args=False)

    def log_normalizer(self) -> Tensor:
        """``log C(eta)`` (float64 inside, returned in the logits' dtype)."""
        eta = self.logits.double()
        x = eta.abs()
        small = x < 0.2
        xs = torch.where(small, torch.ones_like(x), x)
        # log C = log|eta| - log tanh(|eta|/2) = log|eta| - log(1 - e^-|eta|) + log(1 + e^-|eta|)
        big = torch.log(xs) - torch.log(-torch.expm1(-xs)) + torch.log1p(torch.exp(-xs))
        t2 = (0.5 * eta).square()  # t^2, |t| < 0.1
        series = math.log(2.0) + torch.log1p(t2 / 3 - t2**2 / 45 + 2 * t2**3 / 945 - t2**4 / 4725)
        return torch.where(small, series, big).to(self.logits.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        eta = self.logits
        return self.log_normalizer() + value * eta - F.softplus(eta)

    @lazy_property
    def _moments(self) -> tuple[Tensor, Tensor]:
        t = 0.5 * self.logits.double()
        small = t.abs() < 0.1
        ts = torch.where(small, torch.ones_like(t), t)
        lang = 1.0 / torch.tanh(ts) - 1.0 / ts  # Langevin function L(t) = coth t - 1/t
        dlang = 1.0 / ts.square() - 1.0 / torch.sinh(ts).square()  # L'(t)
        t2 = t.square()
        lang_s = t * (1 / 3 - t2 / 45 + 2 * t2**2 / 945 - t2**3 / 4725 + 2 * t2**4 / 93555)
        dlang_s = 1 / 3 - t2 / 15 + 2 * t2**2 / 189 - t2**3 / 675 + 2 * t2**4 / 10395
        mean = 0.5 + 0.5 * torch.where(small, lang_s, lang)
        var = 0.25 * torch.where(small, dlang_s, dlang)
        return mean.to(self.logits.dtype), var.to(self.logits.dtype)

    @property
    def mean(self) -> Tensor:
        return self._moments[0]

    @property
    def variance(self) -> Tensor:
        return self._moments[1]

    def icdf(self, value: Tensor) -> Tensor:
        """``F^{-1}(u) = log1p(u expm1(eta)) / eta`` evaluated on the non-positive side by symmetry."""
        eta = self.logits
        neg = -eta.abs()
        v = torch.where(eta > 0, 1 - value, value)  # 1 - Y ~ CB(-eta)
        safe = torch.where(neg == 0, -torch.ones_like(neg), neg)
        y_neg = torch.where(neg == 0, v, torch.log1p(v * torch.expm1(safe)) / safe)
        return torch.where(eta > 0, 1 - y_neg, y_neg)

    def rsample(self, sample_shape: _Shape = _NO_SAMPLE_SHAPE) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        u = torch.rand(shape, dtype=self.logits.dtype, device=self.logits.device)
        return self.icdf(u)


# ----------------------------------------------------------------------------------------------------- heads


class LikelihoodHead(nn.Module):
    """Turns an INR's raw outputs ``(..., channels * params_per_channel)`` into a per-channel distribution.

    The raw layout is parameter-major: ``raw[..., p * C:(p + 1) * C]`` is parameter ``p`` for all channels.
    The returned distribution has batch shape ``(..., channels)``. Subclasses set ``params_per_channel``
    and implement ``_build``.
    """

    name: ClassVar[str] = ""
    params_per_channel: int = 1

    def __init__(self, channels: int) -> None:
        super().__init__()
        if int(channels) < 1:
            raise ValueError(f"a likelihood head needs channels >= 1, got {channels}")
        self.channels = int(channels)

    @property
    def num_outputs(self) -> int:
        """How many raw outputs per point the INR must produce (``channels * params_per_channel``)."""
        return self.channels * self.params_per_channel

    def forward(self, raw: Tensor) -> Distribution:
        if raw.ndim < 1 or raw.shape[-1] != self.num_outputs:
            raise ValueError(
                f"{type(self).__name__} expects raw outputs (..., {self.num_outputs}) = (..., channels "
                f"{self.channels} x params_per_channel {self.params_per_channel}), got {tuple(raw.shape)}"
            )
        return self._build(raw)

    def _build(self, raw: Tensor) -> Distribution:
        raise NotImplementedError

    def _split(self, raw: Tensor) -> list[Tensor]:
        return list(raw.split(self.channels, dim=-1))


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {choices}")


class DiscretizedLogisticHead(LikelihoodHead):
    """Discretized-logistic head (VaMoH Eq. 17-18): one raw output per channel, the location.

    Args:
        channels: number of value channels ``C``.
        num_bins: number of discrete values in ``[0, 1]`` (256 for 8-bit images).
        scale: ``"learned"`` (paper: a learnable scale per channel, held by the head as ``log_scale (C)``,
            initialised to ``init_scale``) or ``"fixed"`` (released code: ``s = fixed_scale = 0.1``).
        squash: how the raw output becomes ``loc``: ``"sigmoid"`` (paper App. A.7 and the released code:
            sigmoid on the generator's last layer, so ``loc in (0, 1)``) or ``"identity"`` (raw is ``loc``;
            the edge bins absorb anything outside ``[0, 1]``).

    Example:
        >>> import torch
        >>> head = DiscretizedLogisticHead(3, scale="fixed")
        >>> d = head(torch.zeros(5, 3))
        >>> d.loc[0].tolist(), round(float(d.scale[0, 0]), 6)
        ([0.5, 0.5, 0.5], 0.1)
    """

    name = "discretized_logistic"
    params_per_channel = 1

    def __init__(
        self,
        channels: int,
        num_bins: int = 256,
        scale: str = "learned",
        fixed_scale: float = 0.1,
        init_scale: float = 0.1,
        squash: str = "sigmoid",
    ) -> None:
        super().__init__(channels)
        _check_choice("scale", scale, ("learned", "fixed"))
        _check_choice("squash", squash, ("sigmoid", "identity"))
        for nm, v in (("fixed_scale", fixed_scale), ("init_scale", init_scale)):
            if not v > 0:
                raise ValueError(f"{nm} must be > 0, got {v}")
        if int(num_bins) < 2:
            raise ValueError(f"num_bins must be >= 2, got {num_bins}")
        self.num_bins = int(num_bins)
        self.scale_mode = scale
        self.squash = squash
        s0 = math.log(init_scale if scale == "learned" else fixed_scale)
        if scale == "learned":
            self.log_scale = nn.Parameter(torch.full((self.channels,), s0))
        else:
            self.register_buffer("log_scale", torch.full((self.channels,), s0))

    def _build(self, raw: Tensor) -> Distribution:
        loc = torch.sigmoid(raw) if self.squash == "sigmoid" else raw
        return DiscretizedLogistic(loc, self.log_scale.to(raw.dtype).expand_as(loc), self.num_bins)


class BernoulliHead(LikelihoodHead):
    """Bernoulli head for occupancy (VaMoH, ShapeNet voxels): raw outputs are logits, one per channel.

    Example:
        >>> import torch
        >>> BernoulliHead(1)(torch.zeros(4, 1)).mean.flatten().tolist()
        [0.5, 0.5, 0.5, 0.5]
    """

    name = "bernoulli"
    params_per_channel = 1

    def _build(self, raw: Tensor) -> Distribution:
        return Bernoulli(logits=raw)


class ContinuousBernoulliHead(LikelihoodHead):
    """Continuous-Bernoulli head for values in ``[0, 1]`` (VaMoH, ERA5 fields): raw outputs are logits.

    Example:
        >>> import torch
        >>> ContinuousBernoulliHead(1)(torch.zeros(2, 1)).mean.flatten().tolist()
        [0.5, 0.5]
    """

    name = "continuous_bernoulli"
    params_per_channel = 1

    def _build(self, raw: Tensor) -> Distribution:
        return ContinuousBernoulli(raw)


class GaussianHead(LikelihoodHead):
    """Gaussian head ``N(loc, scale^2)`` per channel.

    Args:
        scale: ``"predicted"`` (two raw outputs per channel, ``[loc | r]``, ``scale = min_scale +
            softplus(r)``), ``"learned"`` (one per channel; a learnable per-channel ``log_scale`` held by the
            head, initialised to ``init_scale``) or ``"fixed"`` (``scale = fixed_scale``).
        squash: ``"identity"`` (default) or ``"sigmoid"`` for ``loc``.

    Example:
        >>> import torch
        >>> head = GaussianHead(2)
        >>> head.params_per_channel, head(torch.zeros(7, 4)).batch_shape
        (2, torch.Size([7, 2]))
    """

    name = "gaussian"

    def __init__(
        self,
        channels: int,
        scale: str = "predicted",
        fixed_scale: float = 0.1,
        init_scale: float = 0.1,
        min_scale: float = 1e-3,
        squash: str = "identity",
    ) -> None:
        super().__init__(channels)
        _check_choice("scale", scale, ("predicted", "learned", "fixed"))
        _check_choice("squash", squash, ("sigmoid", "identity"))
        for nm, v in (("fixed_scale", fixed_scale), ("init_scale", init_scale)):
            if not v > 0:
                raise ValueError(f"{nm} must be > 0, got {v}")
        if not min_scale >= 0:
            raise ValueError(f"min_scale must be >= 0, got {min_scale}")
        self.scale_mode = scale
        self.squash = squash
        self.min_scale = float(min_scale)
        self.params_per_channel = 2 if scale == "predicted" else 1
        if scale == "learned":
            self.log_scale = nn.Parameter(torch.full((self.channels,), math.log(init_scale)))
        elif scale == "fixed":
            self.register_buffer("log_scale", torch.full((self.channels,), math.log(fixed_scale)))

    def _build(self, raw: Tensor) -> Distribution:
        parts = self._split(raw)
        loc = torch.sigmoid(parts[0]) if self.squash == "sigmoid" else parts[0]
        if self.scale_mode == "predicted":
            scale = self.min_scale + F.softplus(parts[1])
        else:
            scale = self.log_scale.to(raw.dtype).exp().expand_as(loc)
        return Normal(loc, scale)


LIKELIHOODS: dict[str, type[LikelihoodHead]] = {
    h.name: h for h in (DiscretizedLogisticHead, BernoulliHead, ContinuousBernoulliHead, GaussianHead)
}


def build_likelihood(name: str, channels: int, **options: Any) -> LikelihoodHead:
    """Build the head called ``name`` (``"discretized_logistic" | "bernoulli" | "continuous_bernoulli" |
    "gaussian"``) for ``channels`` value channels; ``options`` go to its constructor.

    Example:
        >>> build_likelihood("gaussian", 3, scale="learned").params_per_channel
        1
    """
    if name not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {name!r}: use one of {sorted(LIKELIHOODS)}")
    cls = LIKELIHOODS[name]
    try:
        return cls(channels, **options)
    except TypeError as err:
        raise TypeError(
            f"bad options {sorted(options)} for likelihood {name!r} ({cls.__name__}): {err}"
        ) from None


# -------------------------------------------------------------------------------------------------- mixtures


def _check_mixture(dist: Distribution, log_weights: Tensor) -> None:
    bs = dist.batch_shape
    if len(bs) < 2 or dist.event_shape != torch.Size():
        raise ValueError(
            f"the component distribution must have batch shape (..., K, C) and event shape (), got batch "
            f"{tuple(bs)}, event {tuple(dist.event_shape)}"
        )
    if log_weights.shape != bs[:-1]:
        raise ValueError(
            f"mixture log-weights must have shape (..., K) = {tuple(bs[:-1])} to match the components' "
            f"batch shape {tuple(bs)}, got {tuple(log_weights.shape)}"
        )


def component_log_prob(dist: Distribution, y: Tensor) -> Tensor:
    """``log p_k(y) = sum_c log p_k(y_c)``: components ``(..., K, C)``, ``y (..., C)`` -> ``(..., K)``."""
    bs = dist.batch_shape
    if len(bs) < 2 or y.shape[-1] != bs[-1] or y.shape[:-1] != bs[:-2]:
        raise ValueError(
            f"values y must have shape (..., C) = {tuple(bs[:-2]) + (bs[-1],) if len(bs) >= 2 else '?'} "
            f"for components with batch shape (..., K, C) = {tuple(bs)}, got {tuple(y.shape)}"
        )
    return dist.log_prob(y.unsqueeze(-2)).sum(-1)


def mixture_log_prob(dist: Distribution, log_weights: Tensor, y: Tensor) -> Tensor:
    """``log sum_k pi_k p_k(y)`` -> ``(...)``; ``log_weights (..., K)`` are normalised with log-softmax."""
    _check_mixture(dist, log_weights)
    return torch.logsumexp(log_weights.log_softmax(-1) + component_log_prob(dist, y), dim=-1)


def expected_log_prob(dist: Distribution, log_weights: Tensor, y: Tensor) -> Tensor:
    """``sum_k pi~_k log p_k(y)`` -> ``(...)``: the reconstruction term of VaMoH Eq. 15-16 (with ``pi~``)."""
    _check_mixture(dist, log_weights)
    return (log_weights.softmax(-1) * component_log_prob(dist, y)).sum(-1)


def mixture_mean(dist: Distribution, log_weights: Tensor) -> Tensor:
    """``sum_k pi_k E_k[y]`` -> ``(..., C)``."""
    _check_mixture(dist, log_weights)
    return (log_weights.softmax(-1).unsqueeze(-1) * dist.mean).sum(-2)


def mixture_variance(dist: Distribution, log_weights: Tensor) -> Tensor:
    """Law of total variance ``sum_k pi_k (Var_k[y] + (E_k[y] - E[y])^2)`` -> ``(..., C)``."""
    _check_mixture(dist, log_weights)
    w = log_weights.softmax(-1).unsqueeze(-1)
    means = dist.mean
    mix = (w * means).sum(-2, keepdim=True)
    return (w * (dist.variance + (means - mix).square())).sum(-2)


def mode_mean(dist: Distribution, log_weights: Tensor) -> Tensor:
    """Mean of the most probable component, ``E_{k*}[y]`` with ``k* = argmax_k pi_k`` -> ``(..., C)``."""
    _check_mixture(dist, log_weights)
    k = log_weights.argmax(-1)[..., None, None].expand(*log_weights.shape[:-1], 1, dist.batch_shape[-1])
    return dist.mean.gather(-2, k).squeeze(-2)


def categorical_kl(log_q: Tensor, log_p: Tensor) -> Tensor:
    """Closed-form ``KL(Cat(q) || Cat(p)) = sum_k q_k (log q_k - log p_k)`` over the last dimension.

    Inputs are log-probabilities or logits (both are normalised with log-softmax); ``q_k = 0`` terms count
    as 0 (with finite gradients). Shape ``(..., K) -> (...)``.

    Example:
        >>> import torch
        >>> q = torch.tensor([0.5, 0.5]).log(); p = torch.tensor([0.25, 0.75]).log()
        >>> round(float(categorical_kl(q, p)), 6) == round(0.5 * math.log(2) + 0.5 * math.log(2 / 3), 6)
        True
    """
    if log_q.shape[-1] != log_p.shape[-1]:
        raise ValueError(
            f"q and p have different numbers of categories: {log_q.shape[-1]} vs {log_p.shape[-1]}"
        )
    lq = log_q.log_softmax(-1)
    lp = log_p.log_softmax(-1)
    q = lq.exp()
    pos = q > 0
    diff = torch.where(pos, lq, torch.zeros_like(lq)) - torch.where(pos, lp, torch.zeros_like(lp))
    return (q * diff).sum(-1)


def categorical_entropy(log_p: Tensor) -> Tensor:
    """``H(Cat(p)) = -sum_k p_k log p_k`` over the last dimension (entropy maps of the mixture weights)."""
    lp = log_p.log_softmax(-1)
    p = lp.exp()
    return -(p * torch.where(p > 0, lp, torch.zeros_like(lp))).sum(-1)


class MixtureOfPointLikelihoods(MixtureSameFamily):
    """The per-point mixture ``p(y_d) = sum_k pi_dk prod_c p_k(y_dc)`` as a Distribution.

    Components have batch shape ``(..., K, C)`` (one distribution per channel), ``log_weights (..., K)``;
    the mixture has batch shape ``(...)`` and event shape ``(C,)``: ``log_prob(y (..., C)) -> (...)``,
    ``mean`` / ``variance`` ``(..., C)`` (law of total variance), ``sample``; plus ``mode_mean``,
    ``component_mean``, ``component_log_prob(y)``, ``expected_log_prob(y, log_q)`` and ``weights``.

    Example:
        >>> import torch
        >>> comp = ContinuousBernoulli(torch.randn(2, 5, 3, 1))     # B=2, N=5, K=3, C=1
        >>> mix = MixtureOfPointLikelihoods(comp, torch.randn(2, 5, 3))
        >>> mix.log_prob(torch.rand(2, 5, 1)).shape, mix.mean.shape, mix.mode_mean.shape
        (torch.Size([2, 5]), torch.Size([2, 5, 1]), torch.Size([2, 5, 1]))
    """

    def __init__(
        self, components: Distribution, log_weights: Tensor, validate_args: bool | None = None
    ) -> None:
        _check_mixture(components, log_weights)
        self.components = components
        super().__init__(
            Categorical(logits=log_weights), Independent(components, 1), validate_args=validate_args
        )

    @property
    def log_weights(self) -> Tensor:
        return self.mixture_distribution.logits  # normalised by Categorical

    @property
    def weights(self) -> Tensor:
        return self.mixture_distribution.probs

    @property
    def component_mean(self) -> Tensor:
        return self.components.mean

    @property
    def mean(self) -> Tensor:
        return mixture_mean(self.components, self.log_weights)

    @property
    def variance(self) -> Tensor:
        return mixture_variance(self.components, self.log_weights)

    @property
    def mode_mean(self) -> Tensor:
        return mode_mean(self.components, self.log_weights)

    def component_log_prob(self, y: Tensor) -> Tensor:
        return component_log_prob(self.components, y)

    def expected_log_prob(self, y: Tensor, log_q: Tensor | None = None) -> Tensor:
        """``sum_k q_k log p_k(y)`` with ``q`` = ``log_q`` (e.g. the posterior pi~) or the mixture weights."""
        return expected_log_prob(self.components, self.log_weights if log_q is None else log_q, y)

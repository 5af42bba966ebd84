"""Test-time optimisation (TTO) of a predicted INR on the observed points of one data instance.

The locality-aware INR paper (Sec. 4.5, Fig. 7) refines the INR its encoder predicts for an unseen
instance with a few gradient steps on the instance's observed points, in two ways:

* ``mode="latent"``: only the latent (the tokens ``Z``) is optimised, the decoder stays shared;
* ``mode="all"``: the latent *and every parameter of the decoder* are fine-tuned per instance, starting
  from the predicted INR.

Both minimise the instance's mean squared error over its observed points (``points.mask``),

    L_b(Z_b, theta_b) = mean_{n observed, c} (F_theta_b(v_bn; Z_b)_c - y_bnc)^2,

with Adam for ``steps`` steps. The model itself is never modified: the latent is a copy, and the decoder
parameters of ``mode="all"`` are per-item copies substituted with ``torch.func.functional_call`` (gradients
are taken with ``torch.autograd.grad``, so not even ``.grad`` of the model's parameters is touched).
In ``mode="latent"`` the items of a batch are optimised together with the loss ``sum_b L_b``: every item's
latent receives exactly the gradient of its own loss and Adam is element-wise, so this equals optimising
every item alone. In ``mode="all"`` every item gets its own decoder copy and its own Adam state.

Model-agnostic: any :class:`~inrgen.models.base.INRModel` whose latent is a tensor or a list of tensors
with the batch first (locality-aware INR and IPC: tokens ``(b, R, d)``; TransINR: per-layer column
vectors). The decoder parameters are the trainable parameters that ``decode`` depends on (found with one
small autograd probe; the encoder is not part of them).

Shapes (einops legend)::

    b items  n observed points  m query points  c channels
    points.coords (b, n, d_in), points.values (b, n, c) -> RefinedField; field.decode(coords (b, m, d_in))

Choices where the paper is silent: Adam with ``lr = 1e-3`` by default (paper: "Adam", no rate), the full set
of observed points every step (no subsampling), the encoder run in eval mode (no dropout).

Fig. 7's baseline, :func:`fit_ffnet`: a Fourier-feature MLP (FFNet, Tancik et al. 2020) fitted to each
instance from random initialisation, with no generalizable INR at all:

    f_b(v) = sigmoid( MLP_b( [cos(2 pi B v), sin(2 pi B v)] ) ),   B_ij ~ N(0, sigma^2)   (shared, fixed)

with per-item weights (PyTorch's default ``nn.Linear`` initialisation, drawn from ``seed``), ReLU hidden
layers, the same MSE and Adam. Every fit records the process CPU seconds at each step
(``seconds``; :func:`refine` records them too), so that PSNR can be plotted against time as in Fig. 7;
``max_seconds`` stops either procedure at a CPU-time budget.

Example:
    >>> field = refine(model, points, mode="latent", steps=50)   # doctest: +SKIP
    >>> field.losses[0], field.losses[-1]            # MSE per item before and after  # doctest: +SKIP
    >>> hi_res = field.decode(finer_coords, chunk_size=65536).mean           # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from inrgen.data.points import PointSet
from inrgen.metrics.psnr import mse_per_item
from inrgen.models.base import INRModel, Prediction
from inrgen.nn.fourier import GaussianFourierFeatures
from inrgen.nn.hypernet import mlp, param_shapes

__all__ = ["RefinedField", "refine", "decoder_parameter_names", "FFNetFit", "fit_ffnet"]

Mode = Literal["latent", "all"]


class _Decode(nn.Module):
    """``forward(latent, coords) = model.decode(latent, coords).mean``, so functional_call can swap the
    model's parameters (``model.<name>``) for a decode."""

    def __init__(self, model: INRModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, latent: Any, coords: Tensor) -> Tensor:
        return self.model.decode(latent, coords).mean


def _as_list(latent: Any) -> tuple[list[Tensor], bool]:
    if isinstance(latent, Tensor):
        return [latent], True
    if isinstance(latent, (list, tuple)) and latent and all(isinstance(t, Tensor) for t in latent):
        return list(latent), False
    raise TypeError(
        "test-time optimisation needs a latent that is a tensor or a list of tensors with the batch first "
        f"(tokens, TransINR's column vectors); got {type(latent).__name__}"
    )


def _from_list(parts: list[Tensor], single: bool) -> Any:
    return parts[0] if single else list(parts)


def decoder_parameter_names(model: INRModel, latent: Any, coords: Tensor) -> list[str]:
    """Names of the trainable parameters that ``model.decode(latent, coords)`` depends on."""
    parts, single = _as_list(latent)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    probe = _from_list([t[:1].detach() for t in parts], single)
    with torch.enable_grad():
        out = model.decode(probe, coords[:1, : min(coords.shape[1], 16)]).mean
        grads = torch.autograd.grad(out.sum(), [p for _, p in named], allow_unused=True)
    return [n for (n, _), g in zip(named, grads) if g is not None]


@dataclass
class RefinedField:
    """The INR after test-time optimisation.

    latent      the refined latent (same structure as ``model.encode``'s)
    params      mode "all": per item, the refined decoder parameters ``{name: tensor}``; None otherwise
    losses      (steps + 1, b): each item's observed-point MSE before every step and after the last
                (fewer rows when ``max_seconds`` stopped it)
    prediction  the refined field at the coordinates passed to :func:`refine`
    seconds     (rows of ``losses``, b): process CPU seconds since :func:`refine` started (encoding
                included) when each loss was measured; mode "all" fits the items one after another, so
                each item's column counts its own fit (plus the shared encoding)
    """

    model: INRModel
    latent: Any
    params: list[dict[str, Tensor]] | None
    losses: Tensor
    prediction: Prediction
    seconds: Tensor | None = None

    @torch.no_grad()
    def decode(self, coords: Tensor, chunk_size: int | None = None) -> Prediction:
        """The refined field at ``coords`` (b, m, d_in), in chunks of ``chunk_size`` points."""
        return _decode(self.model, self.latent, self.params, coords, chunk_size)


def _decode(
    model: INRModel,
    latent: Any,
    params: list[dict[str, Tensor]] | None,
    coords: Tensor,
    chunk_size: int | None,
) -> Prediction:
    from inrgen.tasks import decode_chunked

    if params is None:
        return decode_chunked(model, latent, coords, chunk_size)
    parts, single = _as_list(latent)
    wrapper = _Decode(model)
    means = []
    for b, pb in enumerate(params):
        lat_b = _from_list([t[b : b + 1] for t in parts], single)
        state = {f"model.{k}": v for k, v in pb.items()}
        n = coords.shape[1]
        step = n if chunk_size is None else chunk_size
        chunks = [
            torch.func.functional_call(wrapper, state, (lat_b, coords[b : b + 1, s : s + step]))
            for s in range(0, n, step)
        ]
        means.append(torch.cat(chunks, dim=1))
    return Prediction(mean=torch.cat(means, dim=0))


def _check_budget(steps: int, lr: float, max_seconds: float | None) -> None:
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"the learning rate must be > 0, got {lr}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be > 0 (a CPU-time budget) or None, got {max_seconds}")


def _check(model: INRModel, points: PointSet, mode: str, steps: int, lr: float) -> None:
    if not isinstance(model, INRModel):
        raise TypeError(f"test-time optimisation needs an inrgen INRModel, got {type(model).__name__}")
    if mode not in ("latent", "all"):
        raise ValueError(f"mode must be 'latent' (refine Z only) or 'all' (Z and the decoder), got {mode!r}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"the learning rate must be > 0, got {lr}")
    model.check_points(points)


def refine(
    model: INRModel,
    points: PointSet,
    mode: Mode = "latent",
    steps: int = 100,
    lr: float = 1e-3,
    coords: Tensor | None = None,
    latent: Any = None,
    chunk_size: int | None = None,
    max_seconds: float | None = None,
) -> RefinedField:
    """Refine the INR predicted for ``points`` on its observed points (see the module docstring).

    Args:
        model: a trained model (left unchanged).
        points: the observed instance(s); ``mask`` marks the observed points.
        mode: ``"latent"`` (Z only) or ``"all"`` (Z and every decoder parameter, per item).
        steps, lr: Adam steps and learning rate.
        coords: where to evaluate the refined field for ``RefinedField.prediction`` (default
            ``points.coords``); ``RefinedField.decode`` evaluates anywhere else.
        latent: start from this latent instead of ``model.encode(points)``.
        chunk_size: points per decode when evaluating ``prediction``.
        max_seconds: stop after this many process CPU seconds (per item in mode "all"), even before
            ``steps``.
    """
    _check(model, points, mode, steps, lr)
    _check_budget(steps, lr, max_seconds)
    t0 = time.process_time()
    if coords is None:
        coords = points.coords
    if latent is None:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                latent = model.encode(points)
        finally:
            model.train(was_training)
    parts, single = _as_list(latent)
    parts = [t.detach().clone() for t in parts]
    target, mask = points.values, points.mask
    if mode == "latent":
        z = [t.requires_grad_() for t in parts]
        opt = torch.optim.Adam(z, lr=lr)
        history, clock = [], []
        for _ in range(steps + 1):
            with torch.enable_grad():
                pred = model.decode(_from_list(z, single), points.coords).mean
                mse = mse_per_item(pred, target, mask)
                history.append(mse.detach())
                clock.append(time.process_time() - t0)
                if len(history) == steps + 1 or (max_seconds is not None and clock[-1] >= max_seconds):
                    break
                grads = torch.autograd.grad(mse.sum(), z)
            for t, g in zip(z, grads):
                t.grad = g
            opt.step()
        refined = _from_list([t.detach() for t in z], single)
        losses = torch.stack(history)
        seconds = torch.tensor(clock, dtype=torch.float64)[:, None].expand(-1, losses.shape[1])
        with torch.no_grad():
            prediction = _decode(model, refined, None, coords, chunk_size)
        return RefinedField(model, refined, None, losses, prediction, seconds.clone())

    names = decoder_parameter_names(model, _from_list(parts, single), points.coords)
    base = dict(model.named_parameters())
    wrapper = _Decode(model)
    all_params: list[dict[str, Tensor]] = []
    refined_parts: list[list[Tensor]] = []
    item_losses, item_clock = [], []
    t_encoded = time.process_time() - t0
    for b in range(points.batch_size):
        t_item = time.process_time()
        theta = {n: base[n].detach().clone().requires_grad_() for n in names}
        z = [t[b : b + 1].clone().requires_grad_() for t in parts]
        opt = torch.optim.Adam([*theta.values(), *z], lr=lr)
        mask_b = None if mask is None else mask[b : b + 1]
        history, clock = [], []
        for _ in range(steps + 1):
            with torch.enable_grad():
                state = {f"model.{k}": v for k, v in theta.items()}
                pred = torch.func.functional_call(
                    wrapper, state, (_from_list(z, single), points.coords[b : b + 1])
                )
                mse = mse_per_item(pred, target[b : b + 1], mask_b)
                history.append(mse.detach()[0])
                clock.append(t_encoded + time.process_time() - t_item)
                if len(history) == steps + 1 or (
                    max_seconds is not None and clock[-1] - t_encoded >= max_seconds
                ):
                    break
                variables = [*theta.values(), *z]
                grads = torch.autograd.grad(mse.sum(), variables)
            for v, g in zip(variables, grads):
                v.grad = g
            opt.step()
        all_params.append({k: v.detach() for k, v in theta.items()})
        refined_parts.append([t.detach() for t in z])
        item_losses.append(torch.stack(history))
        item_clock.append(torch.tensor(clock, dtype=torch.float64))
    refined = _from_list([torch.cat(ts, dim=0) for ts in zip(*refined_parts)], single)
    rows = min(len(h) for h in item_losses)  # items stopped by max_seconds may differ in length
    losses = torch.stack([h[:rows] for h in item_losses], dim=1)
    seconds = torch.stack([c[:rows] for c in item_clock], dim=1)
    with torch.no_grad():
        prediction = _decode(model, refined, all_params, coords, chunk_size)
    return RefinedField(model, refined, all_params, losses, prediction, seconds)


@dataclass
class FFNetFit:
    """Per-item Fourier-feature MLPs fitted from random initialisation (see :func:`fit_ffnet`).

    features    the shared Gaussian Fourier features ``gamma(v)``
    params      the per-item MLP weights ``{weight_j: (b, o, i), bias_j: (b, o)}`` (:func:`mlp`'s layout)
    losses      (rows, b): each item's observed-point MSE before every step and after the last
    seconds     (rows,): process CPU seconds since the fit started when each row was measured
    prediction  the fitted fields at ``points.coords``
    """

    features: GaussianFourierFeatures
    params: dict[str, Tensor]
    losses: Tensor
    seconds: Tensor
    prediction: Tensor

    @torch.no_grad()
    def decode(self, coords: Tensor, chunk_size: int | None = None) -> Tensor:
        """The fitted fields at ``coords`` (b, m, d_in): ``(b, m, c)``."""
        n = coords.shape[1]
        step = n if chunk_size is None else chunk_size
        return torch.cat([_ffnet(self.features, self.params, coords[:, s : s + step]) for s in
                          range(0, n, step)], dim=1)  # fmt: skip


def _ffnet(features: GaussianFourierFeatures, params: dict[str, Tensor], coords: Tensor) -> Tensor:
    return torch.sigmoid(mlp(features(coords), params, negative_slope=0.0))


def fit_ffnet(
    points: PointSet,
    steps: int = 1000,
    lr: float = 1e-3,
    hidden: int = 256,
    depth: int = 4,
    num_features: int = 256,
    sigma: float = 5.0,
    seed: int = 0,
    max_seconds: float | None = None,
) -> FFNetFit:
    """Fit one FFNet per item of ``points`` to its observed points (Fig. 7's per-sample baseline).

    Args:
        points: the instance(s), coordinates in [-1, 1]; ``mask`` marks the observed points.
        steps, lr: Adam steps and learning rate (every item its own weights; the loss is the sum of the
            items' MSEs, so each item gets exactly its own gradient and Adam is element-wise: the same as
            fitting every item alone).
        hidden, depth: ``depth`` hidden ReLU layers of width ``hidden`` (Tancik et al.: 4 x 256).
        num_features, sigma: ``num_features`` Gaussian frequencies of scale ``sigma`` (``2 num_features``
            features); 5 on [-1, 1] coordinates is Tancik et al.'s 10 on [0, 1].
        seed: draws the frequencies and the initial weights.
        max_seconds: stop after this many process CPU seconds, even before ``steps``.
    """
    _check_budget(steps, lr, max_seconds)
    if depth < 1 or hidden < 1:
        raise ValueError(f"FFNet needs depth >= 1 hidden layers of width >= 1, got {depth} x {hidden}")
    t0 = time.process_time()
    b, _, d_in = points.coords.shape
    dtype = points.coords.dtype
    features = GaussianFourierFeatures(d_in, num_features, sigma, seed=seed).to(dtype)
    shapes = param_shapes(features.out_dim, [hidden] * depth, points.values.shape[-1])
    g = torch.Generator().manual_seed(seed + 1)
    params = {}
    for name, shape in shapes.items():  # nn.Linear's default: U(+-1/sqrt(fan_in)) for weights and biases
        fan_in = shapes[name.replace("bias", "weight")][1]
        bound = 1.0 / math.sqrt(fan_in)
        params[name] = ((torch.rand(b, *shape, generator=g, dtype=dtype) * 2 - 1) * bound).requires_grad_()
    opt = torch.optim.Adam(params.values(), lr=lr)
    history, clock = [], []
    for _ in range(steps + 1):
        with torch.enable_grad():
            mse = mse_per_item(_ffnet(features, params, points.coords), points.values, points.mask)
            history.append(mse.detach())
            clock.append(time.process_time() - t0)
            if len(history) == steps + 1 or (max_seconds is not None and clock[-1] >= max_seconds):
                break
            grads = torch.autograd.grad(mse.sum(), list(params.values()))
        for p, grad in zip(params.values(), grads):
            p.grad = grad
        opt.step()
    fitted = {k: v.detach() for k, v in params.items()}
    with torch.no_grad():
        prediction = _ffnet(features, fitted, points.coords)
    return FFNetFit(features, fitted, torch.stack(history), torch.tensor(clock, dtype=torch.float64),
                    prediction)  # fmt: skip

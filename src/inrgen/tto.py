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

Example:
    >>> field = refine(model, points, mode="latent", steps=50)   # doctest: +SKIP
    >>> field.losses[0], field.losses[-1]            # MSE per item before and after  # doctest: +SKIP
    >>> hi_res = field.decode(finer_coords, chunk_size=65536).mean           # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from inrgen.data.points import PointSet
from inrgen.metrics.psnr import mse_per_item
from inrgen.models.base import INRModel, Prediction

__all__ = ["RefinedField", "refine", "decoder_parameter_names"]

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
    prediction  the refined field at the coordinates passed to :func:`refine`
    """

    model: INRModel
    latent: Any
    params: list[dict[str, Tensor]] | None
    losses: Tensor
    prediction: Prediction

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
    """
    _check(model, points, mode, steps, lr)
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
        history = []
        for _ in range(steps + 1):
            with torch.enable_grad():
                pred = model.decode(_from_list(z, single), points.coords).mean
                mse = mse_per_item(pred, target, mask)
                history.append(mse.detach())
                if len(history) == steps + 1:
                    break
                grads = torch.autograd.grad(mse.sum(), z)
            for t, g in zip(z, grads):
                t.grad = g
            opt.step()
        refined = _from_list([t.detach() for t in z], single)
        losses = torch.stack(history)
        with torch.no_grad():
            prediction = _decode(model, refined, None, coords, chunk_size)
        return RefinedField(model, refined, None, losses, prediction)

    names = decoder_parameter_names(model, _from_list(parts, single), points.coords)
    base = dict(model.named_parameters())
    wrapper = _Decode(model)
    all_params: list[dict[str, Tensor]] = []
    refined_parts: list[list[Tensor]] = []
    item_losses = []
    for b in range(points.batch_size):
        theta = {n: base[n].detach().clone().requires_grad_() for n in names}
        z = [t[b : b + 1].clone().requires_grad_() for t in parts]
        opt = torch.optim.Adam([*theta.values(), *z], lr=lr)
        mask_b = None if mask is None else mask[b : b + 1]
        history = []
        for _ in range(steps + 1):
            with torch.enable_grad():
                state = {f"model.{k}": v for k, v in theta.items()}
                pred = torch.func.functional_call(
                    wrapper, state, (_from_list(z, single), points.coords[b : b + 1])
                )
                mse = mse_per_item(pred, target[b : b + 1], mask_b)
                history.append(mse.detach()[0])
                if len(history) == steps + 1:
                    break
                variables = [*theta.values(), *z]
                grads = torch.autograd.grad(mse.sum(), variables)
            for v, g in zip(variables, grads):
                v.grad = g
            opt.step()
        all_params.append({k: v.detach() for k, v in theta.items()})
        refined_parts.append([t.detach() for t in z])
        item_losses.append(torch.stack(history))
    refined = _from_list([torch.cat(ts, dim=0) for ts in zip(*refined_parts)], single)
    losses = torch.stack(item_losses, dim=1)
    with torch.no_grad():
        prediction = _decode(model, refined, all_params, coords, chunk_size)
    return RefinedField(model, refined, all_params, losses, prediction)

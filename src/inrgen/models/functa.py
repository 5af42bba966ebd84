"""Functa: a SIREN with latent shift modulations, fitted per item by meta-learned gradient steps.

Dupont et al., "From data to functa" (ICML 2022), Sec. 2-3; the baseline of the VaMoH paper (Tables 2
and 5: "Functa (3)" and "Functa (10)", meta-trained and evaluated with 3 or 10 inner steps).

The INR (a SIREN, Sitzmann et al. 2020, with shift-only FiLM modulations) with shared weights ``theta``:

    h_0 = x                                                    (coordinates rescaled to [0, 1], see below)
    h_l = sin(w0 (W_l h_{l-1} + b_l + s_l)),   l = 1 .. depth-1,          s = (s_1, ..., s_{depth-1})
    f(x) = W_out h_{depth-1} + b_out + 0.5
    s = A phi + a                      (a single linear map from the latent phi to every shift)

Initialisation (SIREN paper, Sec. 3.2): ``W_1 ~ U(-1/d_in, 1/d_in)``, ``W_l ~ U(-sqrt(6/fan_in)/w0, +)``
for every later layer (output included); biases and the latent-to-shift map's bias start at 0.

Inner loop (meta-SGD, Li et al. 2017; Functa Alg. 1): the latent starts at zero and takes ``N`` steps

    phi_0 = 0,    phi_{k+1} = phi_k - alpha * grad_phi L(f(.; theta, phi_k), item),   alpha in R^{latent}

with ``L`` the mean squared error over the item's *observed* points and ``alpha`` a learned
per-dimension learning rate (initialised U(0.005, 0.1), clipped to [0, 1] when used). The outer loop
minimises ``L(f(.; theta, phi_N), item)`` over ``theta``, ``A, a`` and ``alpha`` (Adam), differentiating
through all ``N`` inner steps (second order; ``first_order=True`` drops the inner Hessian terms, as in
first-order MAML: ``alpha`` still receives the gradient ``-grad L(phi_k)``).

Generative Functa (Functa Sec. 4; VaMoH's baseline "Functa with a normalizing flow as generator of
modulation vectors"), with ``prior="realnvp"`` (or ``"planar"``): after ``flow_start_step`` meta-learning
steps the INR is frozen and every later step fits a flow ``p_psi(phi)`` by maximum likelihood to the
*functaset*, the modulations ``phi_N`` of the batch's items fitted by ``functaset_steps`` inner steps:

    L_flow = -mean_b log p_psi(phi_N(item_b))                (phi_N detached: the INR does not move)

The inner loop is deterministic from ``phi = 0`` with a frozen INR, so this is the precomputed functaset
of the paper, recomputed per batch (``functaset`` returns it for any items). Sampling draws
``phi ~ p_psi`` and decodes at any coordinates. The flow has its own learning rate ``flow_lr``
(``inrgen.training.functaset`` runs the two parameter groups).

Coordinates: inrgen coordinates are pixel centres in [-1, 1]; the official Functa code uses pixel centres
in [0, 1], so by default the model maps ``x -> (x + 1) / 2`` first (``unit_coords=False`` keeps them).

Shapes::

    points.coords  (B, N, d_in)     points.values (B, N, C)     points.mask (B, N)
    latent phi     (B, latent_dim)  shifts s      (B, depth-1, width)
    decode         -> Prediction(mean (B, M, C)) at coords (B, M, d_in)

Example:
    >>> import torch
    >>> from inrgen import PointSet
    >>> from inrgen.models.functa import Functa, FunctaConfig
    >>> model = Functa(FunctaConfig(out_channels=1, depth=3, width=16, latent_dim=8))
    >>> ps = PointSet.from_image(torch.rand(2, 1, 8, 8))
    >>> phi = model.encode(ps)          # 3 meta-SGD steps from phi = 0
    >>> model.decode(phi, ps.coords).mean.shape
    torch.Size([2, 64, 1])
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from inrgen.data.points import PointSet, PointSetPair
from inrgen.metrics.psnr import mse_per_item
from inrgen.models.base import INRModel, Prediction, register_model
from inrgen.nn.flows import PlanarFlowPrior, RealNVPPrior

__all__ = ["FunctaConfig", "Functa", "LatentModulatedSiren"]

_PRIORS = ("none", "realnvp", "planar")


@dataclass
class FunctaConfig:
    """Functa: latent-modulated SIREN + meta-SGD inner loop (defaults: the Functa paper, CelebA-HQ 64)."""

    coord_dim: int = 2  # d_in: coordinate dimension (2 images, 3 voxels, 6 Plücker rays)
    out_channels: int = 3  # C: output features
    depth: int = 15  # number of linear layers (depth - 1 modulated sine layers, then the output layer)
    width: int = 512  # hidden width of the SIREN
    w0: float = 30.0  # SIREN frequency factor, in every sine layer including the first
    latent_dim: int = 128  # size of the latent phi (the "functa"); mapped linearly to all shifts
    inner_steps: int = 3  # N: inner gradient steps, in meta-training and at inference
    meta_sgd: bool = True  # learn a per-dimension inner learning rate alpha (meta-SGD)
    meta_sgd_init: tuple[float, float] = (0.005, 0.1)  # alpha ~ U(lo, hi) at initialisation
    meta_sgd_clip: tuple[float, float] = (0.0, 1.0)  # alpha is clipped to this range when used
    inner_lr: float = 1e-2  # fixed inner learning rate when meta_sgd is False
    first_order: bool = False  # drop second-order terms of the inner loop in the outer gradient
    output_bias: float = 0.5  # constant added to the output (data in [0, 1] are centred at 0.5)
    unit_coords: bool = True  # map [-1, 1] coordinates to [0, 1] first (the official code's convention)
    prior: str = "none"  # "none": not generative | "realnvp" | "planar": a flow over phi (VaMoH's Functa)
    flow_layers: int = 8  # coupling layers (realnvp, after an ActNorm) or planar layers
    flow_hidden: tuple[int, ...] = (256, 256)  # widths of each coupling's MLP (realnvp)
    flow_dropout: float = 0.0  # dropout in the coupling MLPs (VaMoH tried it against overfitting)
    flow_start_step: int = 0  # meta-learning steps; from this step on the INR is frozen and the flow fitted
    flow_lr: float | None = None  # Adam lr of the flow, constant (None: train.lr and its schedule)
    functaset_steps: int | None = None  # inner steps fitting each item's phi for the flow (None: inner_steps)

    def __post_init__(self) -> None:
        checks = [
            (self.coord_dim >= 1, f"coord_dim must be >= 1, got {self.coord_dim}"),
            (self.out_channels >= 1, f"out_channels must be >= 1, got {self.out_channels}"),
            (
                self.depth >= 2,
                f"depth counts linear layers, must be >= 2, got {self.depth}",
            ),
            (self.width >= 1, f"width must be >= 1, got {self.width}"),
            (self.w0 > 0, f"w0 must be positive, got {self.w0}"),
            (self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}"),
            (self.inner_steps >= 0, f"inner_steps must be >= 0, got {self.inner_steps}"),
            (self.inner_lr >= 0, f"inner_lr must be >= 0, got {self.inner_lr}"),
            (
                0 <= self.meta_sgd_init[0] <= self.meta_sgd_init[1],
                f"meta_sgd_init must be (lo, hi) with 0 <= lo <= hi, got {self.meta_sgd_init}",
            ),
            (
                self.meta_sgd_clip[0] <= self.meta_sgd_clip[1],
                f"meta_sgd_clip must be (lo, hi) with lo <= hi, got {self.meta_sgd_clip}",
            ),
        ]
        checks += [
            (self.prior in _PRIORS, f"prior must be one of {_PRIORS}, got {self.prior!r}"),
            (self.flow_layers >= 1, f"flow_layers must be >= 1, got {self.flow_layers}"),
            (0 <= self.flow_dropout < 1, f"flow_dropout must be in [0, 1), got {self.flow_dropout}"),
            (self.flow_start_step >= 0, f"flow_start_step must be >= 0, got {self.flow_start_step}"),
            (self.flow_lr is None or self.flow_lr > 0, f"flow_lr must be > 0, got {self.flow_lr}"),
            (
                self.prior != "realnvp" or self.latent_dim >= 2,
                "a RealNVP prior needs latent_dim >= 2 (use prior='planar')",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"FunctaConfig: {msg}")


class LatentModulatedSiren(nn.Module):
    """The shared INR ``f(x; theta, phi)``: SIREN with shifts ``s = A phi + a`` (see the module docstring).

    ``forward(coords (B, N, d_in), phi (B, latent)) -> (B, N, C)``; holds no per-item state.
    """

    def __init__(self, cfg: FunctaConfig) -> None:
        super().__init__()
        self.w0 = float(cfg.w0)
        self.output_bias = float(cfg.output_bias)
        self.num_mod = cfg.depth - 1
        self.width = cfg.width
        dims = [cfg.coord_dim] + [cfg.width] * (cfg.depth - 1)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(cfg.width, cfg.out_channels)
        self.to_shifts = nn.Linear(cfg.latent_dim, self.num_mod * cfg.width)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for i, lin in enumerate([*self.hidden, self.out]):
            fan_in = lin.in_features
            bound = 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / self.w0
            lin.weight.uniform_(-bound, bound)
            lin.bias.zero_()
        # latent -> shifts: Haiku's Linear default (truncated normal, std 1/sqrt(fan_in)), zero bias.
        nn.init.trunc_normal_(self.to_shifts.weight, std=1.0 / math.sqrt(self.to_shifts.in_features))
        self.to_shifts.bias.zero_()

    def shifts(self, phi: Tensor) -> Tensor:
        """``(B, latent) -> (B, depth-1, width)``."""
        return self.to_shifts(phi).view(phi.shape[0], self.num_mod, self.width)

    def forward(self, coords: Tensor, phi: Tensor) -> Tensor:
        s = self.shifts(phi)
        h = coords
        for l, lin in enumerate(self.hidden):
            h = torch.sin(self.w0 * (lin(h) + s[:, None, l]))
        return self.out(h) + self.output_bias


@register_model("functa")
class Functa(INRModel):
    """Functa baseline (Dupont et al. 2022): ``encode`` runs the meta-SGD inner loop from ``phi = 0``."""

    config_class = FunctaConfig

    def __init__(self, config: FunctaConfig) -> None:
        super().__init__(config)
        self.inr = LatentModulatedSiren(config)
        lo, hi = config.meta_sgd_init
        if config.meta_sgd:
            self.meta_sgd_lrs = nn.Parameter(torch.empty(config.latent_dim).uniform_(lo, hi))
        else:
            self.register_parameter("meta_sgd_lrs", None)
        c = config
        self.flow: nn.Module | None = None
        if c.prior == "realnvp":
            self.flow = RealNVPPrior(c.latent_dim, c.flow_layers, c.flow_hidden, c.flow_dropout)
        elif c.prior == "planar":
            self.flow = PlanarFlowPrior(c.latent_dim, c.flow_layers)
        if self.flow is not None:  # flow-phase steps trained (only generative Functa has it)
            self.flow_steps: Tensor
            self.register_buffer("flow_steps", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------ generative Functa
    @property
    def generative(self) -> bool:  # type: ignore[override]
        """True with a flow prior over the modulations (``config.prior``)."""
        return self.flow is not None

    @property
    def training_procedure(self) -> str | None:
        """With a flow, the procedure that gives the flow its own learning rate (``flow_lr``)."""
        return None if self.flow is None else "inrgen.training.functaset:FunctaFlowModule"

    def prior_parameters(self) -> list[nn.Parameter]:
        return [] if self.flow is None else list(self.flow.parameters())

    def flow_phase(self, step: int) -> bool:
        """Whether ``step`` fits the flow (INR frozen) rather than meta-learning the INR."""
        return self.flow is not None and int(step) >= self.config.flow_start_step

    def prior(self) -> Distribution:
        """``p_psi(phi)``, a ``torch.distributions.Distribution`` over ``(latent_dim,)``."""
        if self.flow is None:
            raise ValueError("this Functa has no prior over its modulations: build it with prior='realnvp'")
        return self.flow()

    def functaset(self, points: PointSet) -> Tensor:
        """The modulations ``phi_N (b, latent)`` of ``points``' items (``functaset_steps`` inner steps),
        detached: the data set the flow is fitted to."""
        steps = self.config.functaset_steps
        return self.adapt(points, steps, create_graph=False).detach()

    def flow_loss(self, points: PointSet) -> dict[str, Tensor]:
        """``-mean log p_psi(phi)`` over the functaset of the batch (nats per item and per dimension)."""
        self.check_points(points, "batch")
        phi = self.functaset(points)
        nll = -self.prior().log_prob(phi)
        if self.training and torch.is_grad_enabled():
            self.flow_steps += 1
        with torch.no_grad():
            pred = self.inr(self._coords(points.coords), phi)
            mse = mse_per_item(pred, points.values.to(pred.dtype), points.mask)
            psnr = -10 * torch.log10(mse.clamp_min(1e-10))
        d = self.config.latent_dim
        return {"loss": nll.mean() / d, "nll": nll.mean().detach(), "mse": mse.mean(), "psnr": psnr.mean()}

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` modulations ``(n, latent_dim)`` drawn from the flow (in eval mode: no dropout)."""
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if self.flow is None:
            raise ValueError(
                "this Functa is not generative: it has no prior over its modulations (train a preset with "
                "model.prior=realnvp, e.g. functa-flow-mnist-small)"
            )
        if int(self.flow_steps) == 0:
            warnings.warn("this Functa's flow prior is untrained: its samples are meaningless", stacklevel=2)
        was = self.flow.training
        self.flow.eval()
        try:
            with torch.no_grad():
                if generator is None:
                    return self.prior().sample((int(n),))
                dev = self.flow_steps.device
                seed = int(torch.randint(0, 2**62, (1,), generator=generator))
                with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                    torch.manual_seed(seed)
                    return self.prior().sample((int(n),))
        finally:
            self.flow.train(was)

    def sample(self, n: int, coords: Tensor, generator: torch.Generator | None = None) -> Prediction:
        """``phi ~ p_psi`` decoded at ``coords`` (``(N, d)`` or ``(n, N, d)``)."""
        if coords.dim() == 2:
            coords = coords.unsqueeze(0).expand(int(n), -1, -1)
        phi = self.sample_latent(n, generator)
        with torch.no_grad():
            return self.decode(phi, coords)

    # ------------------------------------------------------------------ inner loop
    def inner_lrs(self) -> Tensor | float:
        """The per-dimension step sizes ``alpha`` (clipped), or the fixed ``inner_lr``."""
        if self.meta_sgd_lrs is None:
            return float(self.config.inner_lr)
        lo, hi = self.config.meta_sgd_clip
        return self.meta_sgd_lrs.clamp(lo, hi)

    def _coords(self, coords: Tensor) -> Tensor:
        coords = coords.to(self.inr.out.weight.dtype)
        return (coords + 1) * 0.5 if self.config.unit_coords else coords

    def inner_loss(self, phi: Tensor, points: PointSet) -> Tensor:
        """Per-item MSE over observed points ``(B,)`` of the INR with latents ``phi``."""
        pred = self.inr(self._coords(points.coords), phi)
        return mse_per_item(pred, points.values.to(pred.dtype), points.mask)

    def adapt(self, points: PointSet, steps: int | None = None, create_graph: bool = False) -> Tensor:
        """Run ``steps`` meta-SGD steps from ``phi = 0`` on ``points``; returns ``phi_N`` ``(B, latent)``.

        The summed per-item losses give each item its own gradient. With ``create_graph`` the result is
        differentiable (second order) with respect to every shared parameter.
        """
        steps = self.config.inner_steps if steps is None else int(steps)
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        p = self.inr.to_shifts.weight
        phi = torch.zeros(points.batch_size, self.config.latent_dim, dtype=p.dtype, device=p.device)
        if steps == 0:
            return phi
        lrs = self.inner_lrs()
        with torch.enable_grad():
            phi = phi.requires_grad_(True)
            for _ in range(steps):
                loss = self.inner_loss(phi, points).sum()
                (grad,) = torch.autograd.grad(loss, phi, create_graph=create_graph)
                phi = phi - lrs * grad
        return phi

    # ------------------------------------------------------------------ interface
    def encode(self, points: PointSet, steps: int | None = None) -> Tensor:
        """Fit the latent to the observed points (``steps`` defaults to ``config.inner_steps``).

        Gradients are enabled inside even under ``torch.no_grad()`` (adaptation needs them); the result
        is detached unless gradients were enabled by the caller.
        """
        self.check_points(points)
        outer_grad = torch.is_grad_enabled()
        phi = self.adapt(points, steps, create_graph=outer_grad and not self.config.first_order)
        return phi if outer_grad else phi.detach()

    def decode(self, latent: Tensor, coords: Tensor, **kwargs: Any) -> Prediction:
        self.check_coords(coords)
        if not isinstance(latent, Tensor) or latent.dim() != 2 or latent.shape[1] != self.config.latent_dim:
            shape = tuple(latent.shape) if isinstance(latent, Tensor) else type(latent).__name__
            raise ValueError(f"Functa latents have shape (B, {self.config.latent_dim}); got {shape}")
        if latent.shape[0] != coords.shape[0]:
            raise ValueError(f"latent batch {latent.shape[0]} != coords batch {coords.shape[0]}")
        return Prediction(mean=self.inr(self._coords(coords), latent))

    def loss(self, batch: PointSet | PointSetPair, step: int = 0) -> dict[str, Tensor]:
        """Outer meta-learning objective: MSE of the adapted INR on the target points (Functa Alg. 1); in
        the flow phase (``flow_phase(step)``), the flow's negative log-likelihood of the functaset."""
        if self.flow_phase(step):
            if isinstance(batch, PointSetPair):
                raise TypeError("the flow over modulations is fitted to point sets, not context/target pairs")
            return self.flow_loss(batch)
        context, target = (batch.context, batch.target) if isinstance(batch, PointSetPair) else (batch, batch)
        self.check_points(context, "batch")
        phi = self.adapt(context, create_graph=not self.config.first_order)
        pred = self.inr(self._coords(target.coords), phi)
        mse = mse_per_item(pred, target.values.to(pred.dtype), target.mask)
        with torch.no_grad():
            psnr = -10 * torch.log10(mse.detach().clamp_min(1e-10))
        return {"loss": mse.mean(), "mse": mse.mean().detach(), "psnr": psnr.mean()}

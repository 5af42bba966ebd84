"""Learned Init: a meta-learned initialisation of every INR weight, adapted per item by MAML SGD steps.

Tancik et al., "Learned initializations for optimizing coordinate-based neural representations" (CVPR
2021); the "Learned Init" row of the TransINR, IPC and locality-aware INR tables (LA-GINR Table 1).

The INR is an MLP with explicit per-item weights ``W = {W_l}`` (biases shared, see ``adapt_biases``):

    hyponet (default; the IPC code's learned-init baseline):
        h_0 = gamma_sigma(x)                              (log-spaced Fourier features, LA-GINR Eq. 4)
        h_l = ReLU(h_{l-1} Wbar_l + b_l),   Wbar_l = W_l / ||W_l||_col   (unit-norm fan-in vectors)
        f(x) = h_{L-1} Wbar_L + b_L + 0.5
    siren (the learnit image demo): h_l = sin(w0 (h_{l-1} W_l + b_l)), no weight normalisation,
        coordinates in [0, 1].

Inner loop (MAML, Finn et al. 2017), from the meta-learned initialisation ``W^0 = theta``:

    W^{k+1}_l = W^k_l - lr * c_l * grad_{W_l} L(f(.; W^k), item),    k = 0 .. N-1   (N = 2)

with ``L`` the per-item MSE over observed points, ``c_l = ||W^k_l||_F^2`` when weights are normalised (the
IPC code's scaling, which makes the step invariant to the scale of ``W``) and ``c_l = 1`` otherwise. The
outer loop trains ``theta`` (and the biases) with Adam on ``L(f(.; W^N), item)``, differentiating through
the inner steps (second order; ``first_order=True`` for first-order MAML).

Shapes::

    points.coords (B, N, d_in)    points.values (B, N, C)
    latent        dict name -> (B, fan_in, fan_out): the adapted per-item weights of every layer
    decode        -> Prediction(mean (B, M, C))

Example:
    >>> import torch
    >>> from inrgen import PointSet
    >>> from inrgen.models.learned_init import LearnedInit, LearnedInitConfig
    >>> model = LearnedInit(LearnedInitConfig(out_channels=1, depth=3, width=16, num_freqs=4, sigma=4.0))
    >>> ps = PointSet.from_image(torch.rand(2, 1, 8, 8))
    >>> weights = model.encode(ps)          # 2 SGD steps from the learned init
    >>> weights["w0"].shape, model.decode(weights, ps.coords).mean.shape
    (torch.Size([2, 16, 16]), torch.Size([2, 64, 1]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from inrgen.data.points import PointSet, PointSetPair
from inrgen.metrics.psnr import mse_per_item
from inrgen.models.base import INRModel, Prediction, register_model
from inrgen.nn.fourier import LogSpacedFourierFeatures

__all__ = ["LearnedInitConfig", "LearnedInit"]

_INRS = ("hyponet", "siren")


@dataclass
class LearnedInitConfig:
    """Learned Init (MAML over all INR weights); defaults: the IPC code's learned-init hyponet."""

    coord_dim: int = 2  # d_in: coordinate dimension
    out_channels: int = 3  # C: output features
    inr: str = "hyponet"  # "hyponet" (Fourier features + ReLU MLP, IPC) | "siren" (learnit demo)
    depth: int = 5  # linear layers (hidden layers + output)
    width: int = 256  # hidden width
    num_freqs: int = 64  # hyponet: log-spaced frequencies per coordinate (2 * num_freqs * d_in features)
    sigma: float = 64.0  # hyponet: Fourier bandwidth (64 CelebA/FFHQ-178, 128 ImageNette)
    normalize_weight: bool = True  # hyponet: unit-norm fan-in vectors, and the ||W||_F^2 step scaling
    w0: float = 200.0  # siren: frequency factor (learnit image demo)
    output_bias: float = 0.5  # constant added to the output
    inner_steps: int = 2  # N: MAML SGD steps, in meta-training and at inference
    inner_lr: float = 0.01  # inner SGD learning rate
    first_order: bool = False  # drop second-order terms of the inner loop
    adapt_biases: bool = False  # also adapt biases per item (IPC: no; learnit: yes)

    def __post_init__(self) -> None:
        if self.inr not in _INRS:
            raise ValueError(f"LearnedInitConfig: inr must be one of {_INRS}, got {self.inr!r}")
        for name in ("coord_dim", "out_channels", "width", "num_freqs"):
            if getattr(self, name) < 1:
                raise ValueError(f"LearnedInitConfig: {name} must be >= 1, got {getattr(self, name)}")
        if self.depth < 2:
            raise ValueError(f"LearnedInitConfig: depth counts linear layers, must be >= 2, got {self.depth}")
        if self.inner_steps < 0 or self.inner_lr < 0:
            raise ValueError(
                f"LearnedInitConfig: inner_steps and inner_lr must be >= 0, got {self.inner_steps}, "
                f"{self.inner_lr}"
            )
        if self.inr == "hyponet" and self.sigma < 1:
            raise ValueError(f"LearnedInitConfig: sigma must be >= 1, got {self.sigma}")
        if self.w0 <= 0:
            raise ValueError(f"LearnedInitConfig: w0 must be positive, got {self.w0}")


@register_model("learned_init")
class LearnedInit(INRModel):
    """Learned Init baseline: ``encode`` adapts all weights of the INR by ``inner_steps`` SGD steps."""

    config_class = LearnedInitConfig
    generative = False

    def __init__(self, config: LearnedInitConfig) -> None:
        super().__init__(config)
        c = config
        if c.inr == "hyponet":
            self.features: nn.Module | None = LogSpacedFourierFeatures(c.coord_dim, c.num_freqs, c.sigma)
            d0 = self.features.out_dim
        else:
            self.features = None
            d0 = c.coord_dim
        dims = [d0] + [c.width] * (c.depth - 1) + [c.out_channels]
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(a, b)) for a, b in zip(dims[:-1], dims[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(b)) for b in dims[1:])
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        c = self.config
        for i, w in enumerate(self.weights):
            fan_in = w.shape[0]
            if c.inr == "hyponet":
                w.normal_(0.0, 1.0 / math.sqrt(fan_in))  # the IPC code's learned-init V
            else:
                bound = 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / c.w0  # SIREN
                w.uniform_(-bound, bound)
        for b in self.biases:
            b.zero_()

    @property
    def _normalized(self) -> bool:
        return self.config.inr == "hyponet" and self.config.normalize_weight

    # ------------------------------------------------------------------ the INR with explicit weights
    def init_params(self, batch: int) -> dict[str, Tensor]:
        """The meta-learned initialisation, expanded to ``batch`` items (views, no copy)."""
        p = {f"w{i}": w.unsqueeze(0).expand(batch, -1, -1) for i, w in enumerate(self.weights)}
        if self.config.adapt_biases:
            p.update({f"b{i}": b.unsqueeze(0).expand(batch, -1) for i, b in enumerate(self.biases)})
        return p

    def inr(self, coords: Tensor, params: dict[str, Tensor]) -> Tensor:
        """``f(coords; params)``: coords ``(B, N, d_in)`` -> ``(B, N, C)``, a batched matmul per layer."""
        c = self.config
        coords = coords.to(self.weights[0].dtype)
        if self.features is not None:
            h = self.features(coords)
        else:
            h = (coords + 1) * 0.5  # learnit: coordinates in [0, 1]
        n = len(self.weights)
        for i in range(n):
            w = params[f"w{i}"]
            if self._normalized:
                w = F.normalize(w, dim=1)  # each output unit's fan-in vector has unit norm
            b = params.get(f"b{i}", self.biases[i].unsqueeze(0))  # (B or 1, fan_out)
            h = h @ w + b.unsqueeze(1)
            if i < n - 1:
                h = torch.relu(h) if c.inr == "hyponet" else torch.sin(c.w0 * h)
        return h + c.output_bias

    def adapt(
        self, points: PointSet, steps: int | None = None, create_graph: bool = False
    ) -> dict[str, Tensor]:
        """``steps`` MAML SGD steps from the learned init on ``points`` (each item its own gradient)."""
        steps = self.config.inner_steps if steps is None else int(steps)
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        lr = float(self.config.inner_lr)
        with torch.enable_grad():
            params = self.init_params(points.batch_size)
            for _ in range(steps):
                names = list(params)
                pred = self.inr(points.coords, params)
                loss = mse_per_item(pred, points.values.to(pred.dtype), points.mask).sum()
                grads = torch.autograd.grad(loss, [params[k] for k in names], create_graph=create_graph)
                new = {}
                for k, g in zip(names, grads):
                    v = params[k]
                    if self._normalized and k[0] == "w":  # the IPC code's ||W||_F^2 step scaling
                        g = g * v.pow(2).sum(dim=(1, 2), keepdim=True)
                    new[k] = v - lr * g
                params = new
        return params

    # ------------------------------------------------------------------ interface
    def encode(self, points: PointSet, steps: int | None = None) -> dict[str, Tensor]:
        """Adapt every weight to the observed points; returns the per-item weights (see module docstring).

        Gradients are enabled inside even under ``torch.no_grad()``; the result is detached unless the
        caller has gradients enabled.
        """
        self.check_points(points)
        outer_grad = torch.is_grad_enabled()
        params = self.adapt(points, steps, create_graph=outer_grad and not self.config.first_order)
        if not outer_grad:
            params = {k: v.detach() for k, v in params.items()}
        return params

    def decode(self, latent: dict[str, Tensor], coords: Tensor, **kwargs: Any) -> Prediction:
        self.check_coords(coords)
        if not isinstance(latent, dict) or any(f"w{i}" not in latent for i in range(len(self.weights))):
            raise ValueError(
                "LearnedInit latents are the dict of per-item weights returned by encode "
                f"(keys w0..w{len(self.weights) - 1}); got {type(latent).__name__}"
            )
        if latent["w0"].shape[0] != coords.shape[0]:
            raise ValueError(f"latent batch {latent['w0'].shape[0]} != coords batch {coords.shape[0]}")
        return Prediction(mean=self.inr(coords, latent))

    def loss(self, batch: PointSet | PointSetPair, step: int = 0) -> dict[str, Tensor]:
        """Outer MAML objective: MSE of the adapted INR on the target points."""
        context, target = (batch.context, batch.target) if isinstance(batch, PointSetPair) else (batch, batch)
        self.check_points(context, "batch")
        params = self.adapt(context, create_graph=not self.config.first_order)
        pred = self.inr(target.coords, params)
        mse = mse_per_item(pred, target.values.to(pred.dtype), target.mask)
        with torch.no_grad():
            psnr = -10 * torch.log10(mse.detach().clamp_min(1e-10))
        return {"loss": mse.mean(), "mse": mse.mean().detach(), "psnr": psnr.mean()}

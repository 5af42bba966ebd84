"""Class-conditional latent diffusion over the latent tokens of a frozen generalizable INR.

Lee et al., "Locality-aware generalizable implicit neural representation" (NeurIPS 2023), Sec. 4.4 and
Appendix A.3: a Transformer denoiser learns the distribution of the latent tokens ``Z`` (R x D) that a
frozen, pretrained locality-aware INR extracts from images; a generated ``Z`` is rendered by the INR's
decoder at any resolution. The INR is never updated while the diffusion model trains.

Standardisation (A.3, "mean and standard deviation of feature channels of each latent token"):

    x_0 = (Z - mu) / sigma               mu, sigma in R^{R x D} over the training latents ("token");
                                         "channel" pools them over tokens (R^D); "none" is the identity

DDPM forward process (Ho et al. 2020, Eq. 4) with the linear schedule ``beta_t`` from 1e-4 to 0.02,
T = 1000, and ``abar_t = prod_{s <= t} (1 - beta_s)``:

    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,        eps ~ N(0, I),  t ~ U{0, ..., T - 1}

x_0-parameterisation (A.3, "instead of the eps-parameterization ... predict the original latent tokens"):

    L = E_{x_0, t, eps} || f_theta(x_t, t, y~) - x_0 ||^2          (mean over tokens and channels)
    y~ = null with probability p_uncond (= 0.1), y otherwise       (label dropout, Ho & Salimans 2022)

``prediction_type="epsilon"`` (target eps) and ``"v_prediction"`` (target sqrt(abar) eps - sqrt(1 - abar)
x_0) are options. Classifier-free guidance at sampling time (Ho & Salimans 2022, Eq. 6, in the
``scale`` convention of DiT and diffusers: 1 = conditional, 0 = unconditional):

    f~(x_t, t, y) = f(x_t, t, null) + s * (f(x_t, t, y) - f(x_t, t, null))

applied to the model output; for x_0 prediction this equals guiding eps, since eps is affine in x_0 at a
fixed x_t. The paper samples with 250 DDIM steps (Song et al. 2021) and ``s = 2.5``; in Ho & Salimans'
``w`` convention that is ``w = s - 1 = 1.5``. Schedulers are diffusers' ``DDPMScheduler`` (training,
ancestral sampling) and ``DDIMScheduler`` with ``prediction_type="sample"``, ``clip_sample=False``.

The denoiser (:class:`LatentDenoiser`) is a plain Transformer over the R tokens with DiT's adaLN-Zero
conditioning (Peebles & Xie 2023): ``c = MLP(sinusoid(t)) + Embed(y)`` regresses the shift, scale and
gate of every LayerNorm and residual branch. We choose adaLN over in-context (token) conditioning
because the paper's size pins it down: 24 blocks of width 1024 with 16 heads have 458 M parameters only
with adaLN-Zero (about 18.9 M per block; in-context conditioning would give about 305 M), which is DiT-L
exactly; and adaLN-Zero was the best-performing conditioning in DiT's ablation. The paper calls the
tokens permutation-equivariant (the INR decoder attends over them as a set); the per-token
standardisation it uses gives each token index its own statistics, so by default the denoiser gets a
learned embedding per token index (``pos_embedding="none"`` makes it exactly permutation-equivariant).

Choices where the paper is silent: DiT's initialisation (zero adaLN and output layers) and sinusoidal
timestep features (256, then an MLP); the standardisation is estimated from the first
``latent_stats_items`` training latents, then frozen (the paper: "the training data"); the EMA has the
warm-up ``min(decay, (1 + s) / (10 + s))`` of the IPC code's EMA, so short runs sample from a useful
average; DDIM steps are spaced as in the DDIM paper (``"leading"``); ancestral DDPM sampling uses the
posterior variance ``beta~_t`` (``"fixed_small"``); ``sample_latent`` without labels draws the classes
uniformly.

Shapes (einops legend)::

    b batch  r latent tokens (R)  d token channels (D)  N query points  c output channels
    tokens Z / x_t   (b, r, d)       t (b,) long in [0, T)       labels y (b,) long in [0, classes)
    denoiser         (b, r, d), (b,), (b,) -> (b, r, d)
    sample_latent(n) -> (n, r, d)    sample(n, coords (n, N, dim)) -> Prediction(mean (n, N, c))

Example:
    >>> import torch
    >>> from inrgen.models.latent_diffusion import LatentDenoiser, classifier_free_guidance
    >>> net = LatentDenoiser(token_dim=8, num_tokens=4, width=32, depth=2, heads=4, num_classes=10)
    >>> x, t, y = torch.randn(3, 4, 8), torch.tensor([0, 10, 999]), torch.tensor([1, 2, 10])  # 10 = null
    >>> net(x, t, y).shape
    torch.Size([3, 4, 8])

    A model over a trained INR (``inrgen train ldm-mnist-small`` trains both; see its preset)::

        model = LatentDiffusion.from_inr(trained_inr, LatentDiffusionConfig(num_classes=10, ...))
        z = model.sample_latent(16, labels=torch.arange(16) % 10, guidance_scale=2.5, num_steps=50)
        images = model.decode(z, coords).mean
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inrgen.data.points import PointSet, PointSetPair
from inrgen.models.base import MODELS, INRModel, Prediction, register_model
from inrgen.nn.transformer import SelfAttention

__all__ = [
    "LatentDiffusionConfig",
    "LatentDiffusion",
    "LatentDenoiser",
    "AdaLNBlock",
    "LatentStandardizer",
    "inr_latent_shape",
    "timestep_embedding",
    "classifier_free_guidance",
    "make_scheduler",
    "run_sampler",
]

PREDICTION_TYPES = ("sample", "epsilon", "v_prediction")
SAMPLERS = ("ddim", "ddpm")
LATENT_NORMS = ("token", "channel", "none")


def inr_latent_shape(inr: INRModel) -> tuple[int, int] | None:
    """``(R, D)`` of an INR's token latents: its ``latent_shape``, or, for the models on the shared
    Transformer encoder (IPC, the locality-aware INR: ``Z = to_latent(R encoder outputs)``), R from
    ``config.encoder.num_latents`` and D from ``to_latent``'s output width; None when neither is known."""
    shape = getattr(inr, "latent_shape", None)
    if shape is not None:
        return int(shape[0]), int(shape[1])
    enc = getattr(getattr(inr, "config", None), "encoder", None)
    to_latent = getattr(inr, "to_latent", None)
    r, width = getattr(enc, "num_latents", None), getattr(enc, "width", None)
    if not (r and width and isinstance(to_latent, nn.Module)):
        return None
    p = next(to_latent.parameters(), None)
    with torch.no_grad():
        d = to_latent(torch.zeros(1, 1, width, dtype=p.dtype if p is not None else None)).shape[-1]
    return int(r), int(d)


@dataclass
class LatentDiffusionConfig:
    """Latent diffusion over a frozen INR's tokens (defaults: the paper's ImageNet 256 model, A.3)."""

    # ---- the frozen INR whose latents are modelled
    inr_model: str = "locality_aware"  # registry name of the INR (its encode returns tokens (B, R, D))
    inr_config: dict[str, Any] = field(default_factory=dict)  # its config as a dict ({}: its defaults)
    inr_checkpoint: str | None = None  # folder of the trained INR (of inr_config; {} adopts the folder's)
    inr_pretrain_steps: int = 0  # train the INR with its own loss for these first steps, then freeze it
    num_tokens: int = 0  # R latent tokens (0: the INR's ``latent_shape``)
    token_dim: int = 0  # D channels per token (0: the INR's ``latent_shape``)
    # ---- denoiser: DiT-style Transformer with adaLN-Zero conditioning
    width: int = 1024  # Transformer width (paper: 1024)
    depth: int = 24  # blocks (paper: 24; 458 M parameters with width 1024)
    heads: int = 16  # attention heads (paper: 16)
    mlp_ratio: float = 4.0  # MLP hidden width / width (DiT: 4)
    timestep_features: int = 256  # sinusoidal features of t before the timestep MLP (DiT: 256)
    pos_embedding: str = "learned"  # "learned" (one embedding per token index) | "none" (equivariant)
    num_classes: int = 1000  # class labels (ImageNet: 1000); 0: unconditional model
    p_uncond: float = 0.1  # probability of replacing a label by the null class in training (paper: 0.1)
    # ---- diffusion process
    num_train_timesteps: int = 1000  # T (paper: 1000)
    beta_schedule: str = "linear"  # diffusers beta schedule (paper: linear)
    beta_start: float = 1e-4  # beta_1 of the linear schedule (DDPM)
    beta_end: float = 0.02  # beta_T of the linear schedule (DDPM)
    prediction_type: str = "sample"  # "sample" (x_0, paper) | "epsilon" | "v_prediction"
    latent_norm: str = "token"  # "token" (per token and channel, paper) | "channel" | "none"
    latent_stats_items: int = 10000  # training latents that estimate the standardisation, then frozen
    ema_decay: float = 0.9999  # EMA of the denoiser weights, used for sampling (0: off)
    # ---- sampling
    sampler: str = "ddim"  # "ddim" | "ddpm" (ancestral)
    num_sampling_steps: int = 250  # denoising steps (paper: 250 DDIM steps)
    guidance_scale: float = 2.5  # classifier-free guidance scale s (1: none; paper: 2.5)
    ddim_eta: float = 0.0  # DDIM stochasticity (0: deterministic DDIM)
    timestep_spacing: str = "leading"  # diffusers spacing of the sampling steps ("leading" = DDIM paper)

    def __post_init__(self) -> None:
        checks = [
            (self.inr_pretrain_steps >= 0, f"inr_pretrain_steps must be >= 0, got {self.inr_pretrain_steps}"),
            (
                self.num_tokens >= 0 and self.token_dim >= 0,
                "num_tokens and token_dim must be >= 0 (0: infer)",
            ),
            (min(self.width, self.depth, self.heads) >= 1, "width, depth and heads must be >= 1"),
            (self.width % self.heads == 0, f"width {self.width} must be divisible by heads {self.heads}"),
            (self.mlp_ratio > 0, f"mlp_ratio must be positive, got {self.mlp_ratio}"),
            (
                self.timestep_features >= 2 and self.timestep_features % 2 == 0,
                f"timestep_features must be an even number >= 2, got {self.timestep_features}",
            ),
            (self.pos_embedding in ("learned", "none"), "pos_embedding must be 'learned' or 'none'"),
            (self.num_classes >= 0, f"num_classes must be >= 0 (0: unconditional), got {self.num_classes}"),
            (0.0 <= self.p_uncond < 1.0, f"p_uncond must be in [0, 1), got {self.p_uncond}"),
            (
                self.num_train_timesteps >= 2,
                f"num_train_timesteps must be >= 2, got {self.num_train_timesteps}",
            ),
            (0 < self.beta_start < self.beta_end < 1, "need 0 < beta_start < beta_end < 1"),
            (
                self.prediction_type in PREDICTION_TYPES,
                f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}",
            ),
            (
                self.latent_norm in LATENT_NORMS,
                f"latent_norm must be one of {LATENT_NORMS}, got {self.latent_norm!r}",
            ),
            (self.latent_stats_items >= 2, f"latent_stats_items must be >= 2, got {self.latent_stats_items}"),
            (0.0 <= self.ema_decay < 1.0, f"ema_decay must be in [0, 1), got {self.ema_decay}"),
            (self.sampler in SAMPLERS, f"sampler must be one of {SAMPLERS}, got {self.sampler!r}"),
            (
                1 <= self.num_sampling_steps <= self.num_train_timesteps,
                f"num_sampling_steps must be in [1, num_train_timesteps={self.num_train_timesteps}], "
                f"got {self.num_sampling_steps}",
            ),
            (math.isfinite(self.guidance_scale), f"guidance_scale must be finite, got {self.guidance_scale}"),
            (self.ddim_eta >= 0, f"ddim_eta must be >= 0, got {self.ddim_eta}"),
            (
                self.timestep_spacing in ("leading", "trailing", "linspace"),
                "timestep_spacing must be 'leading', 'trailing' or 'linspace'",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"LatentDiffusionConfig: {msg}")


# ----------------------------------------------------------------------------------------- denoiser


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal features of (possibly fractional) timesteps, ``(b,) -> (b, dim)`` (DDPM / DiT):

    ``[cos(t w_0), ..., cos(t w_{k-1}), sin(t w_0), ..., sin(t w_{k-1})]``, ``w_i = max_period^{-i/k}``,
    ``k = dim / 2``.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64, device=t.device) / half)
    args = t.to(torch.float64)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _modulate(h: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return h * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class AdaLNBlock(nn.Module):
    """Pre-LN Transformer block with adaLN-Zero conditioning (DiT, Sec. 3.2):

        (a1, b1, g1, a2, b2, g2) = W_c SiLU(c) + b_c                     (zero-initialised)
        x <- x + g1 * Attn(LN(x) * (1 + b1) + a1)
        x <- x + g2 * MLP(LN(x) * (1 + b2) + a2)

    with affine-free LayerNorms, so at initialisation every block is the identity.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(round(width * mlp_ratio))
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width)
        )
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        a1, b1, g1, a2, b2, g2 = self.ada(c).chunk(6, dim=-1)
        x = x + g1.unsqueeze(1) * self.attn(_modulate(self.norm1(x), a1, b1))
        return x + g2.unsqueeze(1) * self.mlp(_modulate(self.norm2(x), a2, b2))


class LatentDenoiser(nn.Module):
    """The Transformer ``f_theta(x_t, t, y)`` over ``R`` latent tokens (no patchify: tokens are latents).

    ``h = W_in x_t + pos``; ``c = MLP(sinusoid(t)) + Embed(y)``; adaLN-Zero blocks; the output layer
    ``W_out (LN(h) * (1 + b) + a)`` is zero-initialised, so an untrained denoiser predicts 0 (the mean of
    standardised latents). ``y = num_classes`` is the null label of classifier-free guidance.
    """

    def __init__(
        self,
        token_dim: int,
        num_tokens: int,
        width: int,
        depth: int,
        heads: int,
        num_classes: int = 0,
        mlp_ratio: float = 4.0,
        timestep_features: int = 256,
        pos_embedding: str = "learned",
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_tokens = num_tokens
        self.timestep_features = timestep_features
        self.proj_in = nn.Linear(token_dim, width)
        if pos_embedding == "learned":
            self.pos = nn.Parameter(torch.zeros(1, num_tokens, width))
        elif pos_embedding == "none":
            self.register_parameter("pos", None)
        else:
            raise ValueError(f"pos_embedding must be 'learned' or 'none', got {pos_embedding!r}")
        self.t_mlp = nn.Sequential(nn.Linear(timestep_features, width), nn.SiLU(), nn.Linear(width, width))
        self.y_embed = nn.Embedding(num_classes + 1, width) if num_classes > 0 else None
        self.blocks = nn.ModuleList(AdaLNBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.norm_out = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.proj_out = nn.Linear(width, token_dim)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """DiT's initialisation: Xavier-uniform linears, N(0, 0.02) embeddings, zero adaLN and output."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        if self.pos is not None:
            nn.init.normal_(self.pos, std=0.02)
        for lin in (self.t_mlp[0], self.t_mlp[2]):
            nn.init.normal_(lin.weight, std=0.02)
        if self.y_embed is not None:
            nn.init.normal_(self.y_embed.weight, std=0.02)
        for lin in [blk.ada[1] for blk in self.blocks] + [self.ada_out[1], self.proj_out]:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    @property
    def null_label(self) -> int:
        return self.num_classes

    def condition(self, t: Tensor, y: Tensor | None) -> Tensor:
        """The conditioning vector ``c = MLP(sinusoid(t)) + Embed(y)``, ``(b, w)``."""
        dtype = self.proj_in.weight.dtype
        c = self.t_mlp(timestep_embedding(t, self.timestep_features).to(dtype))
        if self.y_embed is not None:
            if y is None:
                raise ValueError("this denoiser is class-conditional: pass labels (num_classes = null label)")
            c = c + self.y_embed(y)
        elif y is not None:
            raise ValueError("this denoiser is unconditional (num_classes=0): pass labels=None")
        return c

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """``x`` (b, r, d) noisy standardised tokens, ``t`` (b,) timesteps, ``y`` (b,) labels."""
        h = self.proj_in(x)
        if self.pos is not None:
            h = h + self.pos
        c = self.condition(t, y)
        for blk in self.blocks:
            h = blk(h, c)
        a, b = self.ada_out(c).chunk(2, dim=-1)
        return self.proj_out(_modulate(self.norm_out(h), a, b))


def classifier_free_guidance(cond: Tensor, uncond: Tensor, scale: float) -> Tensor:
    """``uncond + scale * (cond - uncond)`` (Ho & Salimans 2022, Eq. 6 with ``scale = 1 + w``)."""
    return uncond + scale * (cond - uncond)


# ------------------------------------------------------------------------------------ standardisation


class LatentStandardizer(nn.Module):
    """Per-token, per-channel standardisation of latents ``x = (z - mu) / sigma`` (Lee et al., A.3).

    The statistics are running (count, mean, M2) buffers merged batch by batch with Chan et al.'s
    parallel update (exact for any batching, stable in float32), summed across processes under
    ``torch.distributed``, and frozen once ``target`` items were seen (:meth:`update`). ``mode``:
    ``"token"`` keeps ``mu, sigma`` of shape (R, D); ``"channel"`` pools them over tokens (D,), i.e. the
    mean and standard deviation of every channel over all tokens and items; ``"none"`` is the identity.
    ``sigma`` is the population standard deviation, floored at ``eps``; with fewer than 2 items seen the
    map is the identity.
    """

    def __init__(self, num_tokens: int, token_dim: int, mode: str = "token", eps: float = 1e-5) -> None:
        super().__init__()
        if mode not in LATENT_NORMS:
            raise ValueError(f"mode must be one of {LATENT_NORMS}, got {mode!r}")
        self.mode, self.eps = mode, eps
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("running_mean", torch.zeros(num_tokens, token_dim))
        self.register_buffer("running_m2", torch.zeros(num_tokens, token_dim))
        self.register_buffer("frozen", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def update(self, z: Tensor, target: int | None = None) -> None:
        """Fold latents ``z`` (b, r, d) into the statistics; freeze them once ``count >= target``."""
        if bool(self.frozen):
            return
        if z.shape[1:] != self.running_mean.shape:
            raise ValueError(
                f"latents of shape {tuple(z.shape)} do not match (B, {tuple(self.running_mean.shape)})"
            )
        zz = z.detach().to(torch.float64)
        stats = torch.stack([torch.full_like(zz[0], zz.shape[0]), zz.sum(0), (zz * zz).sum(0)])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stats)
        n_b, mean_b = stats[0], stats[1] / stats[0]
        m2_b = (stats[2] - n_b * mean_b * mean_b).clamp_min(0)
        n_a = self.count.to(torch.float64)
        mean_a, m2_a = self.running_mean.to(torch.float64), self.running_m2.to(torch.float64)
        n = n_a + n_b
        delta = mean_b - mean_a
        self.running_mean.copy_(mean_a + delta * n_b / n)
        self.running_m2.copy_(m2_a + m2_b + delta * delta * n_a * n_b / n)
        self.count.copy_(n[0, 0])
        if target is not None and float(self.count) >= target:
            self.frozen.fill_(True)

    def freeze(self) -> None:
        self.frozen.fill_(True)

    def stats(self) -> tuple[Tensor, Tensor]:
        """``(mu, sigma)``, broadcastable against (b, r, d)."""
        mean, m2 = self.running_mean, self.running_m2
        if self.mode == "none" or float(self.count) < 2:
            return torch.zeros_like(mean), torch.ones_like(mean)
        var = m2 / self.count
        if self.mode == "channel":  # pool equal-count token groups: E[var_r] + Var_r[mean_r]
            pooled = mean.mean(0, keepdim=True)
            var = var.mean(0, keepdim=True) + ((mean - pooled) ** 2).mean(0, keepdim=True)
            mean = pooled
        return mean, var.sqrt().clamp_min(self.eps)

    def normalize(self, z: Tensor) -> Tensor:
        mean, std = self.stats()
        return (z - mean.to(z.dtype)) / std.to(z.dtype)

    def denormalize(self, x: Tensor) -> Tensor:
        mean, std = self.stats()
        return x * std.to(x.dtype) + mean.to(x.dtype)


# ----------------------------------------------------------------------------------------- schedulers


def make_scheduler(config: LatentDiffusionConfig, kind: str = "ddpm") -> Any:
    """A fresh diffusers ``DDPMScheduler`` (``kind="ddpm"``) or ``DDIMScheduler`` for ``config``'s process
    (no clipping of the predicted x_0: standardised latents are not confined to [-1, 1])."""
    from diffusers import DDIMScheduler, DDPMScheduler  # imported lazily: diffusers takes seconds to import

    common = dict(
        num_train_timesteps=config.num_train_timesteps,
        beta_schedule=config.beta_schedule,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        prediction_type=config.prediction_type,
        clip_sample=False,
        timestep_spacing=config.timestep_spacing,
    )
    if kind == "ddpm":
        return DDPMScheduler(variance_type="fixed_small", **common)
    if kind == "ddim":
        return DDIMScheduler(set_alpha_to_one=True, **common)
    raise ValueError(f"sampler must be one of {SAMPLERS}, got {kind!r}")


def run_sampler(
    model_fn: Callable[[Tensor, Tensor], Tensor],
    x_T: Tensor,
    scheduler: Any,
    num_steps: int,
    generator: torch.Generator | None = None,
    eta: float = 0.0,
    callback: Callable[[int, int, Tensor], None] | None = None,
) -> Tensor:
    """The reverse process: from ``x_T`` take ``num_steps`` scheduler steps and return ``x_0``.

    ``model_fn(x_t (b, r, d), t (b,) long) -> model output`` in the scheduler's parameterisation;
    ``callback(i, t, x)`` sees the state after each step (``x`` is ``x_{t_prev}``).
    """
    from diffusers import DDIMScheduler

    scheduler.set_timesteps(num_steps)
    ddim = isinstance(scheduler, DDIMScheduler)
    x = x_T
    for i, t in enumerate(scheduler.timesteps):
        tt = t.to(x.device).expand(x.shape[0])
        out = model_fn(x, tt)
        kw: dict[str, Any] = {"eta": eta} if ddim else {}
        x = scheduler.step(out, int(t), x, generator=generator, **kw).prev_sample
        if callback is not None:
            callback(i, int(t), x)
    return x


# -------------------------------------------------------------------------------------------- model


@register_model("latent_diffusion")
class LatentDiffusion(INRModel):
    """Latent diffusion over a frozen INR's latent tokens (see the module docstring).

    ``encode`` / ``decode`` are the INR's; ``loss`` is the diffusion objective on the (frozen) latents of
    a batch; ``sample_latent`` runs the reverse process with classifier-free guidance and returns INR
    latents that ``decode`` renders at any coordinates; ``sample`` does both.

    Training-time state (kept in the state dict, so checkpoints resume and sample alike):

    * the standardisation statistics, estimated from the first ``latent_stats_items`` training latents
      seen by :meth:`loss` (or at once with :meth:`fit_latent_stats`) and frozen after;
    * an EMA of the denoiser weights (``ema_decay``), folded in by :meth:`loss` once per new ``step``
      (so the engine must pass the global step), with the warm-up ``min(decay, (1 + s) / (10 + s))`` of
      the IPC code's EMA; sampling uses it as soon as one update happened;
    * ``inr_trained``: whether the INR holds trained weights (loaded from ``inr_checkpoint``, given to
      :meth:`from_inr`, or trained for ``inr_pretrain_steps``); diffusion training refuses an untrained
      INR, whose latents would be meaningless. Our checkpoints hold the INR's weights and its config
      (``inr_config``), so ``from_pretrained`` needs only their folder, even where ``inr_checkpoint``
      does not exist.

    With ``inr_pretrain_steps = K > 0`` the first K steps train the INR with its own ``loss`` (a single
    run from scratch, as in ``ldm-mnist-small``); from step K on it is frozen. Use it in single-process
    runs: under DDP the parameters unused in one phase need ``find_unused_parameters=True``.
    """

    config_class = LatentDiffusionConfig
    generative = True

    def __init__(self, config: LatentDiffusionConfig) -> None:
        super().__init__(config)
        inr, config, self._untrained_reason = self._build_inr(config)
        self.config = config
        self.inr = inr
        if config.inr_pretrain_steps == 0:
            self.inr.requires_grad_(False)
        self.inr.eval()
        r, d = self._latent_shape(config, inr)
        self.num_tokens, self.token_dim = r, d
        self.standardizer = LatentStandardizer(r, d, config.latent_norm)
        self.denoiser = LatentDenoiser(
            token_dim=d,
            num_tokens=r,
            width=config.width,
            depth=config.depth,
            heads=config.heads,
            num_classes=config.num_classes,
            mlp_ratio=config.mlp_ratio,
            timestep_features=config.timestep_features,
            pos_embedding=config.pos_embedding,
        )
        if config.ema_decay > 0:
            self.ema_denoiser: LatentDenoiser | None = copy.deepcopy(self.denoiser).requires_grad_(False)
        else:
            self.ema_denoiser = None
        self.register_buffer("ema_step", torch.tensor(-1, dtype=torch.long))
        self.register_buffer("inr_trained", torch.tensor(self._untrained_reason is None))
        self.train_scheduler = make_scheduler(config, "ddpm")

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _build_inr(config: LatentDiffusionConfig) -> tuple[INRModel, LatentDiffusionConfig, str | None]:
        """The INR, the config that rebuilds it, and why it holds no trained weights (None: it does).

        ``inr_model`` / ``inr_config`` define the INR; ``inr_checkpoint`` is where its trained weights
        come from. The checkpoint is used when it exists and holds that INR (an empty ``inr_config``
        adopts the checkpoint's, written back into the config so that our own checkpoints rebuild the
        INR without that folder). Otherwise the INR is built from ``inr_config`` untrained, with the
        reason kept: ``from_pretrained`` then loads its weights from our checkpoint, while training
        refuses it (see :meth:`loss`).
        """
        import inrgen.models  # noqa: F401  (registers every model)
        from inrgen.configs.base import config_from_dict, config_to_dict

        def known() -> str:
            return ", ".join(sorted(k for k in MODELS if k != "latent_diffusion"))

        note = "it was built from model.inr_config (no inr_checkpoint)"
        ckpt = config.inr_checkpoint
        if ckpt is not None:
            from pathlib import Path

            from inrgen.checkpoint import CheckpointError, load_config, load_model

            if not (Path(ckpt) / "config.json").is_file():
                note = f"inr_checkpoint {ckpt} does not exist"
            else:
                stored = load_config(ckpt)
                if stored["model"] == "latent_diffusion":
                    raise ValueError(f"inr_checkpoint {ckpt} holds a latent diffusion model, not an INR")
                if not config.inr_config:
                    config = dataclasses.replace(
                        config, inr_model=stored["model"], inr_config=stored["model_config"]
                    )
                if stored["model"] not in MODELS:
                    raise KeyError(f"{ckpt}: unknown INR model {stored['model']!r}; known: {known()}")
                if stored["model"] != config.inr_model:
                    note = (
                        f"inr_checkpoint {ckpt} holds a {stored['model']} model, not model.inr_model="
                        f"{config.inr_model}; set model.inr_config={{}} to adopt the checkpoint's model"
                    )
                else:
                    cls = MODELS[config.inr_model]
                    ours = config_to_dict(config_from_dict(cls.config_class, config.inr_config))
                    theirs = config_to_dict(config_from_dict(cls.config_class, stored["model_config"]))
                    if ours == theirs:
                        try:
                            return load_model(ckpt), config, None
                        except CheckpointError as err:
                            note = f"inr_checkpoint {ckpt} cannot be read: {err}"
                    else:
                        diff = sorted(k for k in ours if ours[k] != theirs.get(k))
                        note = (
                            f"inr_checkpoint {ckpt} holds a different INR than model.inr_config (differing "
                            f"fields: {', '.join(diff)}); set model.inr_config={{}} to adopt the checkpoint's"
                        )
        if config.inr_model not in MODELS or config.inr_model == "latent_diffusion":
            raise KeyError(f"unknown INR model {config.inr_model!r} for latent diffusion; known: {known()}")
        cls = MODELS[config.inr_model]
        return cls(config_from_dict(cls.config_class, config.inr_config)), config, note

    @staticmethod
    def _latent_shape(config: LatentDiffusionConfig, inr: INRModel) -> tuple[int, int]:
        shape = inr_latent_shape(inr)
        r = config.num_tokens or (shape[0] if shape is not None else 0)
        d = config.token_dim or (shape[1] if shape is not None else 0)
        if not r or not d:
            raise ValueError(
                f"{type(inr).__name__} does not report its latent_shape (R, D): set num_tokens and token_dim "
                "in LatentDiffusionConfig to the shape of its encode() tokens"
            )
        if shape is not None and tuple(shape) != (r, d):
            raise ValueError(
                f"num_tokens / token_dim = ({r}, {d}) disagree with the INR's latent_shape {tuple(shape)}; "
                "leave them at 0 to use the INR's"
            )
        return int(r), int(d)

    @classmethod
    def from_inr(cls, inr: INRModel, config: LatentDiffusionConfig | None = None) -> LatentDiffusion:
        """A latent diffusion model over a trained, in-memory INR (its weights are copied and frozen)."""
        from inrgen.configs.base import config_to_dict

        if not isinstance(inr, INRModel) or not inr.model_name:
            raise TypeError(f"from_inr needs a registered inrgen INR model, got {type(inr).__name__}")
        cfg = dataclasses.replace(
            config or LatentDiffusionConfig(),
            inr_model=inr.model_name,
            inr_config=config_to_dict(inr.config),
            inr_checkpoint=None,
            inr_pretrain_steps=0,
        )
        model = cls(cfg)
        model.inr.load_state_dict(inr.state_dict())
        model.inr_trained.fill_(True)
        model._untrained_reason = None
        p = next(inr.parameters(), None)
        return model.to(p.dtype) if p is not None else model

    # ------------------------------------------------------------------ INR delegation
    @property
    def coord_dim(self) -> int:
        return self.inr.coord_dim

    @property
    def out_channels(self) -> int:
        return self.inr.out_channels

    @property
    def latent_shape(self) -> tuple[int, int]:
        return self.num_tokens, self.token_dim

    def train(self, mode: bool = True) -> LatentDiffusion:
        """Train/eval the denoiser; the frozen INR always stays in eval mode (no dropout in its encoder)."""
        super().train(mode)
        self.inr.eval()
        return self

    def encode(self, points: PointSet | PointSetPair) -> Tensor:
        """The INR's latent tokens ``(B, R, D)`` of ``points`` (the context of a pair)."""
        if isinstance(points, PointSetPair):
            points = points.context
        z = self.inr.encode(points)
        if not isinstance(z, Tensor) or z.dim() != 3 or tuple(z.shape[1:]) != self.latent_shape:
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(
                f"latent diffusion models token latents (B, {self.num_tokens}, {self.token_dim}); "
                f"{type(self.inr).__name__}.encode returned {got}"
            )
        return z

    def decode(self, latent: Tensor, coords: Tensor, **kwargs: Any) -> Prediction:
        """The INR's decode of latent tokens at ``coords`` (B, N, d)."""
        return self.inr.decode(latent, coords, **kwargs)

    # ------------------------------------------------------------------ training
    def _labels(self, points: PointSet) -> Tensor | None:
        if self.config.num_classes == 0:
            return None
        labels = points.meta.get("labels")
        if labels is None:
            raise ValueError(
                "class-conditional latent diffusion needs class labels in batch.meta['labels'] (a LongTensor "
                "(B,)); use a data source with labels (e.g. 'mnist') or set num_classes=0 (unconditional)"
            )
        return self._check_labels(torch.as_tensor(labels), points.batch_size)

    def _check_labels(self, labels: Tensor, n: int) -> Tensor:
        k = self.config.num_classes
        if labels.shape != (n,) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(
                f"labels must be an integer tensor of shape ({n},), got {labels.dtype} {tuple(labels.shape)}"
            )
        if labels.numel() and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(
                f"labels must lie in [0, {k}) (num_classes={k}); got values from {int(labels.min())} "
                f"to {int(labels.max())}"
            )
        return labels.long()

    def drop_labels(self, labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Replace each label by the null class ``num_classes`` with probability ``p_uncond``."""
        u = torch.rand(
            labels.shape, generator=generator, device=labels.device if generator is None else generator.device
        )
        drop = (u < self.config.p_uncond).to(labels.device)
        return torch.where(drop, torch.full_like(labels, self.config.num_classes), labels)

    @torch.no_grad()
    def ema_update(self, step: int) -> None:
        """Fold the current denoiser weights into the EMA with decay ``min(ema_decay, (1+s)/(10+s))``."""
        if self.ema_denoiser is None:
            return
        s = max(int(step) - self.config.inr_pretrain_steps, 0)
        decay = min(self.config.ema_decay, (1 + s) / (10 + s))
        for pe, p in zip(self.ema_denoiser.parameters(), self.denoiser.parameters()):
            pe.lerp_(p.detach(), 1.0 - decay)
        self.ema_step.fill_(int(step))

    @torch.no_grad()
    def fit_latent_stats(
        self, batches: Iterable[PointSet | PointSetPair], max_items: int | None = None
    ) -> None:
        """Estimate the standardisation from ``batches`` (up to ``max_items`` items) and freeze it."""
        self.standardizer.count.zero_()
        self.standardizer.running_mean.zero_()
        self.standardizer.running_m2.zero_()
        self.standardizer.frozen.fill_(False)
        for batch in batches:
            z = self.encode(batch)
            if max_items is not None:
                z = z[: max(max_items - int(self.standardizer.count), 0)]
            if len(z):
                self.standardizer.update(z)
            if max_items is not None and int(self.standardizer.count) >= max_items:
                break
        if int(self.standardizer.count) < 2:
            raise ValueError("fit_latent_stats needs at least 2 items")
        self.standardizer.freeze()

    def loss(self, batch: PointSet | PointSetPair, step: int = 0) -> dict[str, Tensor]:
        """Diffusion loss on the frozen INR's latents of ``batch`` (labels in ``batch.meta['labels']``).

        Returns ``loss`` (the mean squared error of the model output against the ``prediction_type``
        target) and ``label_drop`` (the fraction of labels replaced by the null class). During the first
        ``inr_pretrain_steps`` steps: the INR's own loss, its terms prefixed ``inr_``.
        """
        cfg = self.config
        if step < cfg.inr_pretrain_steps:
            self.inr.train(self.training)
            try:
                out = self.inr.loss(batch, step)
            finally:
                self.inr.eval()
            return {"loss": out["loss"], **{f"inr_{k}": v.detach() for k, v in out.items() if k != "loss"}}
        if cfg.inr_pretrain_steps > 0 and self.training:
            self.inr_trained.fill_(True)
        if self.training and not bool(self.inr_trained):  # (an evaluation loss is harmless)
            raise ValueError(
                f"the frozen INR holds no trained weights ({self._untrained_reason}), so its latents carry "
                "no information: set model.inr_checkpoint=FOLDER (a trained INR, e.g. from `inrgen train "
                "laginr-...`), or model.inr_pretrain_steps=N to train it first, or use "
                "LatentDiffusion.from_inr"
            )
        points = batch.context if isinstance(batch, PointSetPair) else batch
        labels = self._labels(points)
        if self.training and step > int(self.ema_step):
            self.ema_update(step)
        with torch.no_grad():
            z = self.encode(points)
            if self.training:
                self.standardizer.update(z, target=cfg.latent_stats_items)
            x0 = self.standardizer.normalize(z)
        b = x0.shape[0]
        if labels is not None:
            labels = labels.to(x0.device)
        t = torch.randint(0, cfg.num_train_timesteps, (b,), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = self.train_scheduler.add_noise(x0, noise, t)
        y = labels
        drop_frac = torch.zeros((), device=x0.device)
        if labels is not None and self.training and cfg.p_uncond > 0:
            y = self.drop_labels(labels)
            drop_frac = (y == self.config.num_classes).float().mean()
        out = self.denoiser(x_t, t, y)
        if cfg.prediction_type == "sample":
            target = x0
        elif cfg.prediction_type == "epsilon":
            target = noise
        else:
            target = self.train_scheduler.get_velocity(x0, noise, t)
        loss = F.mse_loss(out, target)
        return {"loss": loss, "label_drop": drop_frac}

    # ------------------------------------------------------------------ sampling
    def _sampling_denoiser(self) -> LatentDenoiser:
        if self.ema_denoiser is not None and int(self.ema_step) >= 0:
            return self.ema_denoiser
        return self.denoiser

    def predict(
        self,
        x_t: Tensor,
        t: Tensor,
        labels: Tensor | None,
        guidance_scale: float = 1.0,
        denoiser: nn.Module | None = None,
    ) -> Tensor:
        """Guided model output ``uncond + s (cond - uncond)``; the two passes share one batch.

        ``s = 1`` (or an unconditional model, ``labels=None``) needs a single conditional pass.
        """
        net = self._sampling_denoiser() if denoiser is None else denoiser
        if labels is None or guidance_scale == 1.0:
            return net(x_t, t, labels)
        null = torch.full_like(labels, self.config.num_classes)
        both = net(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([labels, null]))
        cond, uncond = both.chunk(2)
        return classifier_free_guidance(cond, uncond, guidance_scale)

    @torch.no_grad()
    def sample_latent(
        self,
        n: int,
        labels: Tensor | None = None,
        guidance_scale: float | None = None,
        num_steps: int | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
    ) -> Tensor:
        """Draw ``n`` latent token sets ``(n, R, D)`` (in the INR's latent space, ready for ``decode``).

        ``labels`` (n,) class labels (None: uniformly random classes from ``generator``; ignored by an
        unconditional model); ``guidance_scale`` s (1: conditional, 0: unconditional, default the
        config's); ``num_steps`` and ``sampler`` ("ddim" | "ddpm") default to the config's.
        """
        cfg = self.config
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        s = cfg.guidance_scale if guidance_scale is None else float(guidance_scale)
        steps = cfg.num_sampling_steps if num_steps is None else int(num_steps)
        kind = cfg.sampler if sampler is None else sampler
        if not math.isfinite(s):
            raise ValueError(f"guidance_scale must be finite, got {guidance_scale}")
        if not 1 <= steps <= cfg.num_train_timesteps:
            raise ValueError(f"num_steps must be in [1, {cfg.num_train_timesteps}], got {num_steps}")
        if kind not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {kind!r}")
        net = self._sampling_denoiser()
        p = self.standardizer.running_mean  # the model's device and dtype
        gdev = generator.device if generator is not None else p.device
        if cfg.num_classes > 0:
            if labels is None:
                labels = torch.randint(0, cfg.num_classes, (n,), generator=generator, device=gdev)
            labels = self._check_labels(torch.as_tensor(labels), n).to(p.device)
        else:
            labels = None
        x_T = torch.randn(n, self.num_tokens, self.token_dim, generator=generator, device=gdev, dtype=p.dtype)
        was_training = net.training
        net.eval()
        try:
            x0 = run_sampler(
                lambda x, t: self.predict(x, t, labels, s, net),
                x_T.to(p.device),
                make_scheduler(cfg, kind),
                steps,
                generator=generator,
                eta=cfg.ddim_eta,
            )
        finally:
            net.train(was_training)
        return self.standardizer.denormalize(x0)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        coords: Tensor,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
        guidance_scale: float | None = None,
        num_steps: int | None = None,
    ) -> Prediction:
        """Sample ``n`` latents (:meth:`sample_latent`) and decode them at ``coords`` (N, d) or (n, N, d)."""
        if coords.dim() == 2:
            coords = coords.unsqueeze(0).expand(n, -1, -1)
        self.check_coords(coords)
        if coords.shape[0] != n:
            raise ValueError(f"coords has {coords.shape[0]} items but n={n} samples were asked for")
        z = self.sample_latent(n, labels, guidance_scale, num_steps, generator)
        return self.decode(z, coords.to(z.device, z.dtype))

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"inr={c.inr_model}, tokens=({self.num_tokens}, {self.token_dim}), width={c.width}, "
            f"depth={c.depth}, heads={c.heads}, classes={c.num_classes}, prediction={c.prediction_type}"
        )

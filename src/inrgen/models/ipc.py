"""Instance Pattern Composers (IPC, Kim et al. 2023): a Transformer predicts one weight of a shared MLP.

The encoder (:class:`~inrgen.nn.transformer.TransformerEncoder`) turns the data into ``R`` learnable-token
outputs; a LayerNorm and a linear map give the latent tokens ``Z = [z_1 .. z_R]`` (``z_k`` in
``R^{fan_in}``). The hyponet is an MLP of ``L`` linear layers (5 for images, width 256) on log-spaced Fourier
features (locality-aware INR Eq. 4; IPC's ``deterministic_transinr`` features), ReLU between layers, with
*every* weight normalised so that each output unit's fan-in vector has unit norm:

    h_0     = gamma_sigma(v)                                   v in [-1, 1]^d_in (pixel centres)
    h_l     = ReLU(W_l h_{l-1} + b_l),   W_l = normalize_cols(W~_l)       (no gain)
    y       = W_L h_{L-1} + b_L + 0.5                          (IPC's output bias, no sigmoid)

Only layer ``m`` (the second, ``m = 1``) is instance-specific: its weight is composed from the latent tokens
(the "instance pattern") and a shared factor ``V`` (the "pattern composer"):

    W~_m = U V,   U = [z_1 .. z_R] in R^{fan_in x R},  V in R^{R x fan_out} (shared)
    (W_m h)_o = sum_k (z_k . h) V_ko / ||(U V)_{:, o}||

i.e. the modulation vector of the locality-aware paper's Sec. 3.2, ``m_v = [z_1^T h, .., z_R^T h]``,
followed by ``V``. Every other layer is shared. Shapes (einops legend)::

    b batch  n query points  r latent tokens (R)  i fan_in  o fan_out  c out channels
    Z (b, r, i) -> W_m (b, i, o);  coords (b, n, d_in) -> Prediction.mean (b, n, c)

Choices, following the IPC code (see the reference notes): PyTorch's default ``kaiming_uniform`` for the
shared weights (their scale is irrelevant after normalisation), zero biases, ``V ~ N(0, 1) / sqrt(R fan_in)``,
the latent map ``LayerNorm(width) -> Linear(width, fan_in)``, output bias 0.5. For light fields
(``coord_dim = 6``, Plücker rays) the decoder is the same MLP on 6-D rays (no volume rendering), with
``n = floor(d_F / (2 d_in)) = 21`` frequencies per component (252 features for ``d_F = 256``), the rounding
of IPC's ``ff_dim // d_in``.

Training (:meth:`IPC.loss`, shared with TransINR and the locality-aware model through
:func:`training_targets` and :func:`reconstruction_loss`): per-item mean squared error over the decoded
points and channels, averaged over the batch; optional random subsampling of the target points of every
item (``subsample_ratio``, 0.1 in IPC's 512^2 / 1024^2 configs) and +-half-pixel uniform coordinate jitter
(``coord_jitter``, IPC's ImageNette configs). PSNR is the mean over items of ``-10 log10(MSE)``.

Example:
    >>> import torch
    >>> from inrgen.data.points import PointSet
    >>> from inrgen.nn.transformer import EncoderConfig
    >>> cfg = IPCConfig(out_channels=1, hidden_dim=32, fourier_dim=32, sigma=8.0,
    ...                 encoder=EncoderConfig(in_channels=1, image_size=(28, 28), patch_size=7, padding=0,
    ...                                       width=32, depth=1, heads=2, mlp_dim=64, num_latents=16))
    >>> model = IPC(cfg)
    >>> ps = PointSet.from_image(torch.rand(2, 1, 28, 28))
    >>> model.decode(model.encode(ps), ps.coords).mean.shape
    torch.Size([2, 784, 1])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inrgen.data.points import PointSet, PointSetPair
from inrgen.metrics.psnr import mse_per_item, psnr
from inrgen.models.base import INRModel, Prediction, register_model
from inrgen.nn.fourier import LogSpacedFourierFeatures
from inrgen.nn.transformer import PLUCKER_DIM, EncoderConfig, TransformerEncoder

__all__ = [
    "IPCConfig",
    "IPC",
    "IPCHyponet",
    "LowRankModulatedLinear",
    "normalized_linear",
    "num_fourier_freqs",
    "check_encoder_matches",
    "training_targets",
    "reconstruction_loss",
]


def num_fourier_freqs(fourier_dim: int, coord_dim: int) -> int:
    """``n = floor(d_F / (2 d_in))`` frequencies per coordinate (64 for images, 21 for rays with 256)."""
    n = fourier_dim // (2 * coord_dim)
    if n < 1:
        raise ValueError(
            f"fourier_dim {fourier_dim} is too small for {coord_dim}-D coordinates: it needs at least "
            f"{2 * coord_dim} (one cos and one sin per coordinate)"
        )
    return n


def normalized_linear(h: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``h W + b`` with ``W`` (``(i, o)`` shared or ``(b, i, o)`` per item) normalised over ``i``, i.e. every
    output unit's fan-in vector has unit norm. ``h``: ``(b, n, i)``."""
    w = F.normalize(weight, dim=-2)
    return torch.matmul(h, w) + bias


class LowRankModulatedLinear(nn.Module):
    """IPC's instance-specific layer: weight ``normalize_cols(U V)`` from tokens ``U`` and shared ``V``."""

    def __init__(self, fan_in: int, fan_out: int, rank: int) -> None:
        super().__init__()
        self.fan_in, self.fan_out, self.rank = fan_in, fan_out, rank
        self.shared_factor = nn.Parameter(torch.randn(rank, fan_out) / (rank * fan_in) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(fan_out))

    def weight(self, tokens: Tensor) -> Tensor:
        """Normalised ``(b, fan_in, fan_out)`` weight from tokens ``(b, R, fan_in)``."""
        w = torch.matmul(tokens.transpose(1, 2), self.shared_factor.to(tokens.dtype))
        return F.normalize(w, dim=1)

    def forward(self, h: Tensor, tokens: Tensor) -> Tensor:
        return torch.matmul(h, self.weight(tokens)) + self.bias


class IPCHyponet(nn.Module):
    """IPC's MLP with one low-rank modulated layer; stateless in the instance: ``forward(coords, tokens)``.

    Layout (the locality-aware model's "both ablations" configuration reuses it): ``fourier``
    (:class:`LogSpacedFourierFeatures`), ``layers`` (``nn.ModuleList``: ``nn.Linear`` for the shared layers,
    :class:`LowRankModulatedLinear` at ``modulated_layer``). ``tokens``: ``(b, R, fan_in)`` with
    ``fan_in = self.token_dim``; ``coords``: ``(b, n, coord_dim)`` -> ``(b, n, out_channels)``.
    """

    def __init__(
        self,
        coord_dim: int,
        out_channels: int,
        rank: int,
        hidden_dim: int = 256,
        num_layers: int = 5,
        fourier_dim: int = 256,
        sigma: float = 64.0,
        modulated_layer: int = 1,
        output_bias: float = 0.5,
    ) -> None:
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"the hyponet needs at least 2 layers, got {num_layers}")
        if not 0 <= modulated_layer < num_layers:
            raise ValueError(f"modulated_layer must be in [0, {num_layers - 1}], got {modulated_layer}")
        self.fourier = LogSpacedFourierFeatures(coord_dim, num_fourier_freqs(fourier_dim, coord_dim), sigma)
        dims = [self.fourier.out_dim] + [hidden_dim] * (num_layers - 1) + [out_channels]
        layers: list[nn.Module] = []
        for i, (fi, fo) in enumerate(zip(dims[:-1], dims[1:])):
            if i == modulated_layer:
                layers.append(LowRankModulatedLinear(fi, fo, rank))
            else:
                lin = nn.Linear(fi, fo)
                nn.init.zeros_(lin.bias)
                layers.append(lin)
        self.layers = nn.ModuleList(layers)
        self.modulated_layer = modulated_layer
        self.token_dim = dims[modulated_layer]
        self.rank = rank
        self.output_bias = float(output_bias)

    def weights(self, tokens: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Every layer's normalised ``(fan_in, fan_out)`` (or ``(b, fan_in, fan_out)``) weight and bias."""
        out = []
        for i, layer in enumerate(self.layers):
            if i == self.modulated_layer:
                out.append((layer.weight(tokens), layer.bias))
            else:
                out.append((F.normalize(layer.weight.t(), dim=0), layer.bias))
        return out

    def forward(self, coords: Tensor, tokens: Tensor) -> Tensor:
        if tokens.dim() != 3 or tokens.shape[1:] != (self.rank, self.token_dim):
            raise ValueError(
                f"IPC latents must be (B, R={self.rank}, {self.token_dim}) tokens, got {tuple(tokens.shape)}"
            )
        if tokens.shape[0] != coords.shape[0]:
            raise ValueError(
                f"latents are for {tokens.shape[0]} items but coords for {coords.shape[0]} "
                "(batch sizes differ)"
            )
        h = self.fourier(coords)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == self.modulated_layer:
                h = layer(h, tokens)
            else:
                h = F.linear(h, F.normalize(layer.weight, dim=1), layer.bias)
            if i < last:
                h = F.relu(h)
        return h + self.output_bias


# ------------------------------------------------------------------------------------------- training


def check_encoder_matches(enc: EncoderConfig, coord_dim: int, out_channels: int, model: str) -> None:
    """Clear error when the encoder cannot read the data the decoder predicts."""
    if enc.input_kind == "rays":
        if coord_dim != PLUCKER_DIM or enc.in_channels != out_channels + PLUCKER_DIM:
            raise ValueError(
                f"{model} on posed views needs coord_dim={PLUCKER_DIM} (Plücker rays) and "
                f"encoder.in_channels = out_channels + {PLUCKER_DIM} = {out_channels + PLUCKER_DIM}; got "
                f"coord_dim={coord_dim}, encoder.in_channels={enc.in_channels}"
            )
    elif enc.in_channels != out_channels or coord_dim != 2:
        raise ValueError(
            f"{model} on images needs coord_dim=2 and encoder.in_channels = out_channels "
            f"({out_channels}); got coord_dim={coord_dim}, encoder.in_channels={enc.in_channels}"
        )


def training_targets(
    target: PointSet, subsample_ratio: float = 1.0, coord_jitter: bool = False
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The points a training step decodes: ``(coords, values, mask)`` of the target set.

    ``coord_jitter`` adds ``U(-1/n, 1/n)`` per grid axis of ``n`` cells (+-half a pixel; IPC uses the row
    count for both axes, identical for square images); ``subsample_ratio < 1`` keeps
    ``max(1, int(N * ratio))`` points of every item, drawn independently per item without replacement.
    """
    if not 0.0 < subsample_ratio <= 1.0:
        raise ValueError(f"subsample_ratio must be in (0, 1], got {subsample_ratio}")
    coords, values, mask = target.coords, target.values, target.mask
    if coord_jitter:
        if target.kind != "grid" or target.grid_shape is None or len(target.grid_shape) != coords.shape[-1]:
            raise ValueError(
                "coord_jitter moves grid coordinates by +-half a pixel and needs a grid set "
                f"(PointSet.from_image); got kind={target.kind!r}, grid_shape={target.grid_shape}"
            )
        half = 1.0 / torch.tensor(target.grid_shape, dtype=coords.dtype, device=coords.device)
        coords = coords + (2 * torch.rand_like(coords) - 1) * half
    if subsample_ratio < 1.0:
        b, n = coords.shape[:2]
        k = max(1, int(n * subsample_ratio))
        idx = torch.rand(b, n, device=coords.device).argsort(dim=1)[:, :k]
        coords = torch.gather(coords, 1, idx.unsqueeze(-1).expand(-1, -1, coords.shape[-1]))
        values = torch.gather(values, 1, idx.unsqueeze(-1).expand(-1, -1, values.shape[-1]))
        mask = None if mask is None else torch.gather(mask, 1, idx)
    return coords, values, mask


def reconstruction_loss(model: INRModel, batch: PointSet | PointSetPair) -> dict[str, Tensor]:
    """Encode the context, decode the (subsampled, jittered) target; per-item MSE averaged over the batch.

    A :class:`PointSet` is its own context and target (reconstruction); a :class:`PointSetPair` encodes
    ``context`` (support views) and decodes ``target`` (query rays). The model's config provides
    ``subsample_ratio`` and ``coord_jitter``. Returns ``loss`` (mean over items of the per-item MSE),
    ``mse`` (the same, detached), ``psnr`` and ``psnr_clamped`` (mean over items of ``-10 log10 MSE``,
    predictions as they are and clipped to [0, 1]) on the decoded training points.
    """
    if isinstance(batch, PointSetPair):
        context, target = batch.context, batch.target
    elif isinstance(batch, PointSet):
        context = target = batch
    else:
        raise TypeError(f"a training batch is a PointSet or PointSetPair, got {type(batch).__name__}")
    model.check_points(target, "target")
    cfg = model.config
    coords, values, mask = training_targets(target, cfg.subsample_ratio, cfg.coord_jitter)
    pred = model.decode(model.encode(context), coords).mean
    mse = mse_per_item(pred, values, mask)
    with torch.no_grad():
        p, pc = psnr(pred, values, mask), psnr(pred, values, mask, clamp=True)
    return {"loss": mse.mean(), "mse": mse.detach().mean(), "psnr": p.mean(), "psnr_clamped": pc.mean()}


# ---------------------------------------------------------------------------------------------- model


@dataclass
class IPCConfig:
    """IPC: Transformer encoder -> R latent tokens -> the second layer of a weight-normalised MLP."""

    coord_dim: int = 2  # d_in: 2 for images, 6 for light-field rays (Plücker)
    out_channels: int = 3  # d_out: 3 for RGB, 1 for grayscale
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # num_latents is the rank R
    hidden_dim: int = 256  # hyponet width
    num_layers: int = 5  # hyponet linear layers (ReLU between them)
    fourier_dim: int = 256  # d_F: floor(d_F / (2 d_in)) log-spaced frequencies per coordinate
    sigma: float = 64.0  # largest Fourier frequency (64: CelebA/FFHQ 178, 128: ImageNette/FFHQ512)
    modulated_layer: int = 1  # index of the instance-specific layer (IPC: the second)
    output_bias: float = 0.5  # added to the output (IPC; no sigmoid)
    subsample_ratio: float = 1.0  # fraction of target points decoded per item in training
    coord_jitter: bool = False  # +-half-pixel uniform jitter of training coordinates (grids)

    def __post_init__(self) -> None:
        check_encoder_matches(self.encoder, self.coord_dim, self.out_channels, "IPC")
        if not 0.0 < self.subsample_ratio <= 1.0:
            raise ValueError(f"subsample_ratio must be in (0, 1], got {self.subsample_ratio}")
        if self.encoder.num_latents < 1:
            raise ValueError("IPC needs at least one latent token (encoder.num_latents >= 1)")


@register_model("ipc")
class IPC(INRModel):
    """Instance Pattern Composers: see the module docstring. The latent is the token set ``Z`` (b, R, i)."""

    config_class = IPCConfig

    def __init__(self, config: IPCConfig) -> None:
        super().__init__(config)
        self.encoder = TransformerEncoder(config.encoder)
        self.hyponet = IPCHyponet(
            config.coord_dim,
            config.out_channels,
            rank=config.encoder.num_latents,
            hidden_dim=config.hidden_dim,
            num_layers=config.num_layers,
            fourier_dim=config.fourier_dim,
            sigma=config.sigma,
            modulated_layer=config.modulated_layer,
            output_bias=config.output_bias,
        )
        width = config.encoder.width
        self.to_latent = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, self.hyponet.token_dim))

    def encode(self, points: PointSet) -> Tensor:
        """Latent tokens ``Z``: ``(b, R, fan_in)`` (the columns of ``U``)."""
        self.check_points(points)
        return self.to_latent(self.encoder(points))

    def decode(self, latent: Tensor, coords: Tensor, **kwargs) -> Prediction:
        self.check_coords(coords)
        return Prediction(mean=self.hyponet(coords, latent))

    def loss(self, batch: PointSet | PointSetPair, step: int = 0) -> dict[str, Tensor]:
        return reconstruction_loss(self, batch)

"""TransINR (Chen & Wang 2022): a Transformer predicts column groups of every weight of a shared MLP.

Same encoder as IPC (:class:`~inrgen.nn.transformer.TransformerEncoder`) and the same weight-normalised
Fourier-feature MLP (:class:`~inrgen.models.ipc.IPCHyponet`'s layers, see :mod:`inrgen.models.ipc`), but
*every* layer ``l`` is modulated. Layer ``l`` (``fan_in_l -> fan_out_l``) owns ``g_l = min(G, fan_out_l)``
learnable tokens (``G = 64``: 64 * 4 + 3 = 259 tokens for the 5-layer RGB hyponet); after the Transformer
each of its tokens goes through the layer's own ``LayerNorm -> Linear(width, fan_in_l)`` and gives one
column vector ``u_{l,t}``; the ``g_l`` vectors are tiled across the ``fan_out_l`` outputs (column ``o``
takes token ``o mod g_l``), multiplied element-wise into a shared base weight and normalised:

    M_l[:, o] = u_{l, o mod g_l}                               (fan_in_l, fan_out_l), tiled, not interleaved
    W_l       = normalize_cols(W^base_l * M_l)                 unit-norm fan-in vector per output unit
    h_l       = ReLU(h_{l-1} W_l + b^base_l),  y = h_{L-1} W_L + b^base_L + 0.5

Shapes (einops legend)::

    b batch  g_l tokens of layer l  i fan_in  o fan_out  n points  c channels
    latent: list over layers of (b, g_l, i_l);  coords (b, n, d_in) -> Prediction.mean (b, n, c)

Choices (the IPC re-implementation that the locality-aware paper compares with, see the reference notes):
zero base biases, PyTorch default (kaiming-uniform) base weights, residual dropout 0.1 in the encoder,
Fourier bandwidth 64 / 128 as IPC (the original TransINR uses 1024), output bias 0.5. ``fan_out_l`` must
be divisible by ``g_l``.

Example:
    >>> import torch
    >>> from inrgen.data.points import PointSet
    >>> from inrgen.nn.transformer import EncoderConfig
    >>> cfg = TransINRConfig(out_channels=1, hidden_dim=32, fourier_dim=32, sigma=8.0, max_groups=8,
    ...                      encoder=EncoderConfig(in_channels=1, image_size=(28, 28), patch_size=7,
    ...                                            padding=0, width=32, depth=1, heads=2, mlp_dim=64,
    ...                                            num_latents=33))
    >>> cfg.groups
    [8, 8, 8, 8, 1]
    >>> model = TransINR(cfg)
    >>> ps = PointSet.from_image(torch.rand(2, 1, 28, 28))
    >>> [tuple(u.shape) for u in model.encode(ps)]
    [(2, 8, 32), (2, 8, 32), (2, 8, 32), (2, 8, 32), (2, 1, 32)]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inrgen.data.points import PointSet, PointSetPair
from inrgen.models.base import INRModel, Prediction, register_model
from inrgen.models.ipc import check_encoder_matches, num_fourier_freqs, reconstruction_loss
from inrgen.nn.fourier import LogSpacedFourierFeatures
from inrgen.nn.transformer import EncoderConfig, TransformerEncoder

__all__ = ["TransINRConfig", "TransINR", "TransINRHyponet", "weight_groups"]


def weight_groups(layer_dims: list[int], max_groups: int) -> list[int]:
    """Tokens per layer, ``g_l = min(max_groups, fan_out_l)``, for layer widths ``[d_0, d_1, .., d_L]``."""
    return [min(max_groups, fo) for fo in layer_dims[1:]]


def _layer_dims(coord_dim: int, out_channels: int, hidden_dim: int, num_layers: int, fourier_dim: int):
    ff = 2 * num_fourier_freqs(fourier_dim, coord_dim) * coord_dim
    return [ff] + [hidden_dim] * (num_layers - 1) + [out_channels]


class TransINRHyponet(nn.Module):
    """The shared base MLP; ``forward(coords, columns)`` with per-layer column vectors ``(b, g_l, fan_in_l)``.

    Layout: ``fourier`` (:class:`LogSpacedFourierFeatures`), ``layers`` (``nn.ModuleList`` of ``nn.Linear``
    holding the base weights and biases).
    """

    def __init__(
        self,
        coord_dim: int,
        out_channels: int,
        hidden_dim: int = 256,
        num_layers: int = 5,
        fourier_dim: int = 256,
        sigma: float = 64.0,
        max_groups: int = 64,
        output_bias: float = 0.5,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"the hyponet needs at least 1 layer, got {num_layers}")
        self.fourier = LogSpacedFourierFeatures(coord_dim, num_fourier_freqs(fourier_dim, coord_dim), sigma)
        dims = _layer_dims(coord_dim, out_channels, hidden_dim, num_layers, fourier_dim)
        self.dims = dims
        self.groups = weight_groups(dims, max_groups)
        for fo, g in zip(dims[1:], self.groups):
            if fo % g:
                raise ValueError(
                    f"a layer with {fo} outputs cannot be tiled by {g} column groups; choose max_groups "
                    f"dividing {fo} or a hidden_dim divisible by {g}"
                )
        layers = []
        for fi, fo in zip(dims[:-1], dims[1:]):
            lin = nn.Linear(fi, fo)
            nn.init.zeros_(lin.bias)
            layers.append(lin)
        self.layers = nn.ModuleList(layers)
        self.output_bias = float(output_bias)

    def weights(self, columns: list[Tensor]) -> list[tuple[Tensor, Tensor]]:
        """Per layer: the normalised instance weight ``(b, fan_in, fan_out)`` and the shared bias."""
        if len(columns) != len(self.layers):
            raise ValueError(
                f"TransINR latents need one entry per layer ({len(self.layers)}), got {len(columns)}"
            )
        out = []
        for lin, g, u in zip(self.layers, self.groups, columns):
            fo, fi = lin.weight.shape
            if u.dim() != 3 or u.shape[1:] != (g, fi):
                raise ValueError(
                    f"a layer {fi} -> {fo} needs column vectors (B, {g}, {fi}), got {tuple(u.shape)}"
                )
            tiled = u.transpose(1, 2).repeat(1, 1, fo // g)  # column o <- token o mod g
            out.append((F.normalize(lin.weight.t().to(u.dtype) * tiled, dim=1), lin.bias))
        return out

    def forward(self, coords: Tensor, columns: list[Tensor]) -> Tensor:
        ws = self.weights(columns)
        if columns[0].shape[0] != coords.shape[0]:
            raise ValueError(
                f"latents are for {columns[0].shape[0]} items but coords for {coords.shape[0]} "
                "(batch sizes differ)"
            )
        h = self.fourier(coords)
        for i, (w, b) in enumerate(ws):
            h = torch.matmul(h, w) + b
            if i < len(ws) - 1:
                h = F.relu(h)
        return h + self.output_bias


@dataclass
class TransINRConfig:
    """TransINR: Transformer encoder -> column groups of every layer of a weight-normalised MLP."""

    coord_dim: int = 2  # d_in: 2 for images, 6 for light-field rays (Plücker)
    out_channels: int = 3  # d_out
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(num_latents=259))  # sum of groups
    hidden_dim: int = 256  # hyponet width
    num_layers: int = 5  # hyponet linear layers
    fourier_dim: int = 256  # d_F: floor(d_F / (2 d_in)) log-spaced frequencies per coordinate
    sigma: float = 64.0  # largest Fourier frequency
    max_groups: int = 64  # G: g_l = min(G, fan_out_l) tokens per layer (32 in TransINR's NVS setting)
    output_bias: float = 0.5  # added to the output
    subsample_ratio: float = 1.0  # fraction of target points decoded per item in training
    coord_jitter: bool = False  # +-half-pixel uniform jitter of training coordinates (grids)

    def __post_init__(self) -> None:
        check_encoder_matches(self.encoder, self.coord_dim, self.out_channels, "TransINR")
        if not 0.0 < self.subsample_ratio <= 1.0:
            raise ValueError(f"subsample_ratio must be in (0, 1], got {self.subsample_ratio}")
        if self.max_groups < 1:
            raise ValueError(f"max_groups must be >= 1, got {self.max_groups}")
        need = sum(self.groups)
        if self.encoder.num_latents != need:
            raise ValueError(
                f"TransINR needs one learnable token per column group, "
                f"sum_l min({self.max_groups}, fan_out_l) = {need}; "
                f"set encoder.num_latents={need} (got {self.encoder.num_latents})"
            )

    @property
    def groups(self) -> list[int]:
        """``g_l`` for every layer."""
        dims = _layer_dims(
            self.coord_dim, self.out_channels, self.hidden_dim, self.num_layers, self.fourier_dim
        )
        return weight_groups(dims, self.max_groups)


@register_model("transinr")
class TransINR(INRModel):
    """TransINR, see the module docstring. The latent is the list of per-layer column vectors."""

    config_class = TransINRConfig

    def __init__(self, config: TransINRConfig) -> None:
        super().__init__(config)
        self.encoder = TransformerEncoder(config.encoder)
        self.hyponet = TransINRHyponet(
            config.coord_dim,
            config.out_channels,
            hidden_dim=config.hidden_dim,
            num_layers=config.num_layers,
            fourier_dim=config.fourier_dim,
            sigma=config.sigma,
            max_groups=config.max_groups,
            output_bias=config.output_bias,
        )
        width = config.encoder.width
        self.to_columns = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, fi)) for fi in self.hyponet.dims[:-1]
        )

    def encode(self, points: PointSet) -> list[Tensor]:
        """Column vectors of every layer: ``[(b, g_l, fan_in_l)]``, layer ``l`` from its own ``g_l`` tokens
        (the encoder's learnable tokens, in layer order)."""
        self.check_points(points)
        tokens = self.encoder(points)
        out, start = [], 0
        for fc, g in zip(self.to_columns, self.hyponet.groups):
            out.append(fc(tokens[:, start : start + g]))
            start += g
        return out

    def decode(self, latent: list[Tensor], coords: Tensor, **kwargs) -> Prediction:
        self.check_coords(coords)
        if not isinstance(latent, (list, tuple)):
            raise TypeError("a TransINR latent is the list of per-layer column vectors returned by encode")
        return Prediction(mean=self.hyponet(coords, list(latent)))

    def loss(self, batch: PointSet | PointSetPair, step: int = 0) -> dict[str, Tensor]:
        return reconstruction_loss(self, batch)

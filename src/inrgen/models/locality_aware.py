"""Locality-aware generalizable INR (Lee et al., NeurIPS 2023): Transformer latents, locality-aware decoder.

The encoder (:class:`~inrgen.nn.transformer.TransformerEncoder`, shared with IPC and TransINR) turns the
data into ``R`` learnable-token outputs; a LayerNorm and a linear map give the latent tokens
``Z = {z_k}`` of the decoder width ``d``. The decoder ``F_theta(v; Z)`` (Eq. 2-9):

    gamma_s(v)  = [cos(pi w_j v_i), sin(pi w_j v_i)],  w_j = s^(j/(n-1)),  n = d_F / (2 d_in)   (Eq. 2)
    q_v         = ReLU(W_q gamma_{s_q}(v) + b_q)                                               (Eq. 3-4)
    m_v         = MultiHeadAttention(Query=q_v, Key=Z, Value=Z)       selective token aggregation (Eq. 5)
    hF_l        = ReLU(W_F^l gamma_{s_l}(v) + b_F^l)                  l = 1..L                   (Eq. 6)
    m_l         = ReLU(hF_l + W_m^l m_v + b_m^l)                                                  (Eq. 7)
    h_1 = m_1,  h_l = ReLU(W^l (m_l + h_{l-1}) + b^l)                 progressive composition     (Eq. 8)
    y           = sum_l f_out^l(h_l) + 0.5                            per-level linear heads      (Eq. 9)

with bandwidths ``s_1 >= ... >= s_L >= s_q`` (the highest band enters first and passes through the most
nonlinearities). Shapes (einops legend)::

    b batch  n query points  r latent tokens (R)  d decoder width  f = 2 n d_in Fourier features  c channels
    encoder outputs (b, r, width) -> Z (b, r, d);  coords (b, n, d_in) -> Prediction.mean (b, n, c)

Ablations are strategies (paper Table 3), not flags:

* ``token_aggregation="cross_attention"`` (Eq. 5) or ``"ipc"`` ("w/o STA"): the attention is replaced by
  IPC's instance-specific layer ``m_v = ReLU(normalize_cols(U V)^T q_v + b)`` with ``U = [z_1 .. z_R]`` and a
  shared ``V`` (:class:`~inrgen.models.ipc.LowRankModulatedLinear`).
* ``modulation="multiband"`` (Eq. 6-9) or ``"mlp"`` ("w/o multiFM"): the multi-band modulation is replaced
  by a plain stack of ``num_mlp_layers`` linear layers with ReLU (IPC's layers after its modulated layer),
  fed ``ReLU(m_v)`` (``mlp_input_relu``): the attention's output projection then plays IPC's modulated
  layer, with IPC's ReLU after it, so the stack has IPC's depth of nonlinearities. Table 3 runs every
  ablation with one head (``heads=1``; the ``-table3`` presets in :mod:`inrgen.configs.laginr`).
* both replaced: the decoder *is* :class:`~inrgen.models.ipc.IPCHyponet` and the model's parameters have
  exactly the names and shapes of :class:`~inrgen.models.ipc.IPC` (an IPC state dict loads into it).

Choices where the paper is silent (its base is the IPC code, so each follows what IPC does):

* latent map ``Z = Linear(LayerNorm(encoder outputs))`` to ``d`` (IPC's ``LayerNorm -> Linear`` to its
  token width; Table 5's latent shape 256 x 256 needs ``d``-wide tokens);
* the cross-attention is the standard ``nn.MultiheadAttention`` form (Q/K/V/O projections with biases,
  ``d / heads`` per head, soft attention), no LayerNorm or residual (Eq. 5 has neither);
* PyTorch default initialisation of every decoder layer, Fourier frequencies fixed (buffers), no weight
  normalisation in the locality-aware layers (IPC's normalisation belongs to its hyponet); the output
  offset 0.5 of IPC (``output_bias``), no sigmoid and no clamp;
* light fields (``d_in = 6``): ``n = floor(d_F / (2 d_in)) = 21`` frequencies per component, i.e. 252
  features for ``d_F = 256`` (IPC's ``ff_dim // d_in``);
* the ablation strategies carry IPC's conventions: with ``"ipc"`` aggregation the query layer (IPC's
  first layer) and the modulated layer are weight-normalised with zero-initialised biases; with ``"mlp"``
  modulation the stack is IPC's normalised layers, and the query Fourier features (then the only ones) use
  the highest bandwidth ``s_1`` (IPC's single bandwidth, 128 on ImageNette, is ``s_1``) instead of ``s_q``;
* training (shared with IPC, :func:`~inrgen.models.ipc.reconstruction_loss`): per-item MSE over the decoded
  points and channels averaged over the batch; ``subsample_ratio`` random points per item (0.1 at 256^2
  and above, paper App. A); ``coord_jitter`` +-half-pixel uniform jitter (IPC's ImageNette setting).

Example:
    >>> import torch
    >>> from inrgen.data.points import PointSet
    >>> from inrgen.nn.transformer import EncoderConfig
    >>> enc = EncoderConfig(in_channels=1, image_size=(28, 28), patch_size=7, padding=0, width=32,
    ...                     depth=1, heads=2, mlp_dim=64, num_latents=16)
    >>> model = LocalityAwareINR(LocalityAwareConfig(out_channels=1, dim=32, fourier_dim=32,
    ...                                              sigmas=(16.0, 8.0), sigma_q=4.0, encoder=enc))
    >>> ps = PointSet.from_image(torch.rand(2, 1, 28, 28))
    >>> z = model.encode(ps)
    >>> z.shape
    torch.Size([2, 16, 32])
    >>> model.decode(z, ps.coords).mean.shape
    torch.Size([2, 784, 1])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inrgen.data.points import PointSet, PointSetPair
from inrgen.models.base import INRModel, Prediction, register_model
from inrgen.models.ipc import (
    IPCHyponet,
    LowRankModulatedLinear,
    check_encoder_matches,
    num_fourier_freqs,
    reconstruction_loss,
)
from inrgen.nn.attention import MultiHeadCrossAttention
from inrgen.nn.fourier import LogSpacedFourierFeatures
from inrgen.nn.transformer import EncoderConfig, TransformerEncoder

__all__ = [
    "LocalityAwareConfig",
    "LocalityAwareINR",
    "LocalityAwareDecoder",
    "MultiBandModulation",
    "NormalizedMLP",
    "build_decoder",
]

TokenAggregation = Literal["cross_attention", "ipc"]
Modulation = Literal["multiband", "mlp"]


@dataclass
class LocalityAwareConfig:
    """Locality-aware generalizable INR (defaults: the paper's 178x178 setting, App. A)."""

    coord_dim: int = 2  # d_in: 2 for images, 6 for light-field rays (Plücker)
    out_channels: int = 3  # d_out: 3 for RGB, 1 for grayscale
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # shared encoder; num_latents is R
    dim: int = 256  # d: decoder width and latent-token width
    fourier_dim: int = 256  # d_F: floor(d_F / (2 d_in)) log-spaced frequencies per coordinate and band
    sigma_q: float = 16.0  # bandwidth of the query's Fourier features (Eq. 4)
    sigmas: tuple[float, ...] = (128.0, 32.0)  # s_1 >= ... >= s_L >= sigma_q, one per level (Eq. 6)
    heads: int = 2  # cross-attention heads (2 at 178^2 / 256^2, 4 at 512^2, 8 ImageNet, 1 in ablations)
    token_aggregation: TokenAggregation = "cross_attention"  # "cross_attention" (Eq. 5) | "ipc" (w/o STA)
    modulation: Modulation = "multiband"  # "multiband" (Eq. 6-9) | "mlp" (w/o multiFM)
    num_mlp_layers: int = 3  # linear layers after the aggregation with modulation="mlp" (IPC: 3)
    # modulation="mlp" after cross-attention: ReLU(m_v) enters the stack, as every IPC layer output is
    # rectified (False: the attention's output map feeds the first layer directly, two linear maps in a row)
    mlp_input_relu: bool = True
    # Table 7's ablations of the multi-band layers: False drops Eq. 6's linear map (hF_l = ReLU(gamma_l(v)),
    # needs fourier features of width d) or Eq. 7's (m_l = ReLU(hF_l + m_v))
    frequency_linear: bool = True
    modulation_linear: bool = True
    output_bias: float = 0.5  # constant added to the output (IPC; no sigmoid)
    subsample_ratio: float = 1.0  # fraction of target points decoded per item in training
    coord_jitter: bool = False  # +-half-pixel uniform jitter of training coordinates (grids)
    # the paper requires s_1 >= ... >= s_L >= s_q (Sec. 3.3.2); True accepts any order, for the orderings
    # its Table 4 compares ((32, 128) with s_q=16, (128, 32) with s_q=128)
    any_bandwidth_order: bool = False

    def __post_init__(self) -> None:
        self.sigmas = tuple(float(s) for s in self.sigmas)
        check_encoder_matches(self.encoder, self.coord_dim, self.out_channels, "the locality-aware INR")
        if self.token_aggregation not in ("cross_attention", "ipc"):
            raise ValueError(
                f"token_aggregation must be 'cross_attention' or 'ipc', got {self.token_aggregation!r}"
            )
        if self.modulation not in ("multiband", "mlp"):
            raise ValueError(f"modulation must be 'multiband' or 'mlp', got {self.modulation!r}")
        if len(self.sigmas) < 1:
            raise ValueError("sigmas needs at least one bandwidth (one per modulation level)")
        if self.sigma_q < 1 or any(s < 1 for s in self.sigmas):
            raise ValueError(f"bandwidths must be >= 1, got sigmas={self.sigmas}, sigma_q={self.sigma_q}")
        chain = (*self.sigmas, self.sigma_q)
        if not self.any_bandwidth_order and any(a < b for a, b in zip(chain[:-1], chain[1:])):
            raise ValueError(
                f"the paper's bandwidth order is sigma_1 >= ... >= sigma_L >= sigma_q; got sigmas="
                f"{self.sigmas}, sigma_q={self.sigma_q} (sort them in decreasing order, or set "
                "any_bandwidth_order=True to study other orders as in the paper's Table 4)"
            )
        num_fourier_freqs(self.fourier_dim, self.coord_dim)  # raises when d_F < 2 d_in
        if self.dim < 1 or self.heads < 1 or self.dim % self.heads:
            raise ValueError(f"dim={self.dim} must be a positive multiple of heads={self.heads}")
        n_feat = 2 * num_fourier_freqs(self.fourier_dim, self.coord_dim) * self.coord_dim
        if not self.frequency_linear and self.modulation == "multiband" and n_feat != self.dim:
            raise ValueError(
                f"frequency_linear=False feeds the {n_feat} Fourier features of each band straight into "
                f"Eq. 7, which needs them to be d={self.dim} wide (set fourier_dim to dim)"
            )
        if self.num_mlp_layers < 1:
            raise ValueError(
                f"num_mlp_layers must be >= 1 (the last is the output layer), got {self.num_mlp_layers}"
            )
        if not 0.0 < self.subsample_ratio <= 1.0:
            raise ValueError(f"subsample_ratio must be in (0, 1], got {self.subsample_ratio}")
        if self.encoder.num_latents < 1:
            raise ValueError(
                "the locality-aware INR needs at least one latent token (encoder.num_latents >= 1)"
            )

    @property
    def num_levels(self) -> int:
        """L, the number of modulation levels."""
        return len(self.sigmas)

    @property
    def query_sigma(self) -> float:
        """Bandwidth of the query features: ``sigma_q``, or ``sigma_1`` with ``modulation="mlp"``."""
        return self.sigmas[0] if self.modulation == "mlp" else self.sigma_q


class NormalizedMLP(nn.Module):
    """IPC's weight-normalised layers: ``h <- ReLU(h normalize_cols(W) + b)``, no ReLU after the last.

    ``dims = [d_0, .., d_K]`` gives ``K`` layers; biases start at zero (IPC).
    """

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        for layer in self.layers:
            nn.init.zeros_(layer.bias)

    def forward(self, h: Tensor) -> Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = F.linear(h, F.normalize(layer.weight, dim=1), layer.bias)
            if i < last:
                h = F.relu(h)
        return h


class MultiBandModulation(nn.Module):
    """Multi-band feature modulation and progressive composition (Eq. 6-9).

    ``forward(coords (b, n, d_in), m (b, n, d)) -> (b, n, out_channels)`` (without the output offset).
    Modules per level ``l``: ``fourier[l]`` (bandwidth ``sigmas[l]``), ``freq[l]`` (``W_F, b_F``),
    ``mod[l]`` (``W_m, b_m``), ``out[l]`` (``f_out``); ``compose[l - 1]`` (``W^l, b^l``) for ``l >= 2``.
    Table 7's ablations: ``frequency_linear=False`` (no ``freq``: ``hF_l = ReLU(gamma_l(v))``) and
    ``modulation_linear=False`` (no ``mod``: ``m_l = ReLU(hF_l + m_v)``).
    """

    def __init__(
        self,
        coord_dim: int,
        dim: int,
        fourier_dim: int,
        sigmas: tuple[float, ...],
        out_channels: int,
        frequency_linear: bool = True,
        modulation_linear: bool = True,
    ) -> None:
        super().__init__()
        n = num_fourier_freqs(fourier_dim, coord_dim)
        self.fourier = nn.ModuleList(LogSpacedFourierFeatures(coord_dim, n, s) for s in sigmas)
        f = self.fourier[0].out_dim
        self.freq = nn.ModuleList(nn.Linear(f, dim) for _ in sigmas) if frequency_linear else None
        self.mod = nn.ModuleList(nn.Linear(dim, dim) for _ in sigmas) if modulation_linear else None
        self.compose = nn.ModuleList(nn.Linear(dim, dim) for _ in sigmas[1:])
        self.out = nn.ModuleList(nn.Linear(dim, out_channels) for _ in sigmas)

    def forward(self, coords: Tensor, m: Tensor) -> Tensor:
        y: Tensor | None = None
        h: Tensor | None = None
        for level, (ff, f_out) in enumerate(zip(self.fourier, self.out)):
            feat = ff(coords)
            h_f = F.relu(feat if self.freq is None else self.freq[level](feat))  # Eq. 6
            m_l = F.relu(h_f + (m if self.mod is None else self.mod[level](m)))  # Eq. 7
            h = m_l if h is None else F.relu(self.compose[level - 1](m_l + h))  # Eq. 8
            y = f_out(h) if y is None else y + f_out(h)  # Eq. 9
        assert y is not None
        return y


class LocalityAwareDecoder(nn.Module):
    """The locality-aware INR decoder ``F_theta(v; Z)`` and its single-ablation variants.

    Modules: ``query_fourier`` + ``query`` (Eq. 3-4), ``aggregate`` (:class:`MultiHeadCrossAttention`, Eq. 5,
    or IPC's :class:`LowRankModulatedLinear`), ``modulate`` (:class:`MultiBandModulation`, Eq. 6-9, or
    :class:`NormalizedMLP`). ``forward(coords (b, n, d_in), tokens (b, r, d), token_mask (b, r) | None)``.
    """

    def __init__(self, cfg: LocalityAwareConfig) -> None:
        super().__init__()
        if cfg.token_aggregation == "ipc" and cfg.modulation == "mlp":
            raise ValueError("with both ablations the decoder is IPC's hyponet: use build_decoder(cfg)")
        self.cfg = cfg
        n = num_fourier_freqs(cfg.fourier_dim, cfg.coord_dim)
        self.query_fourier = LogSpacedFourierFeatures(cfg.coord_dim, n, cfg.query_sigma)
        self.query = nn.Linear(self.query_fourier.out_dim, cfg.dim)
        self.normalized_query = cfg.token_aggregation == "ipc"
        self.aggregate: nn.Module
        if cfg.token_aggregation == "cross_attention":
            self.aggregate = MultiHeadCrossAttention(cfg.dim, cfg.heads)
        else:
            nn.init.zeros_(self.query.bias)
            self.aggregate = LowRankModulatedLinear(cfg.dim, cfg.dim, cfg.encoder.num_latents)
        self.modulate: nn.Module
        if cfg.modulation == "multiband":
            self.modulate = MultiBandModulation(
                cfg.coord_dim, cfg.dim, cfg.fourier_dim, cfg.sigmas, cfg.out_channels,
                cfg.frequency_linear, cfg.modulation_linear,
            )  # fmt: skip
        else:
            self.modulate = NormalizedMLP([cfg.dim] * cfg.num_mlp_layers + [cfg.out_channels])
        self.output_bias = float(cfg.output_bias)

    def queries(self, coords: Tensor) -> Tensor:
        """``q_v = ReLU(W_q gamma_{s_q}(v) + b_q)``: ``(b, n, d)`` (Eq. 3-4)."""
        w = F.normalize(self.query.weight, dim=1) if self.normalized_query else self.query.weight
        return F.relu(F.linear(self.query_fourier(coords), w, self.query.bias))

    def attention_weights(self, coords: Tensor, tokens: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """Cross-attention weights ``(b, heads, n, r)`` of every query over the tokens (rows sum to 1)."""
        if not isinstance(self.aggregate, MultiHeadCrossAttention):
            raise ValueError("attention weights exist only with token_aggregation='cross_attention'")
        _, weights = self.aggregate(self.queries(coords), tokens, token_mask, return_weights=True)
        return weights

    def forward(self, coords: Tensor, tokens: Tensor, token_mask: Tensor | None = None) -> Tensor:
        cfg = self.cfg
        if tokens.dim() != 3 or tokens.shape[1:] != (cfg.encoder.num_latents, cfg.dim):
            raise ValueError(
                f"latents must be (B, R={cfg.encoder.num_latents}, d={cfg.dim}) tokens, "
                f"got {tuple(tokens.shape)}"
            )
        if tokens.shape[0] != coords.shape[0]:
            raise ValueError(
                f"latents are for {tokens.shape[0]} items but coords for {coords.shape[0]} "
                "(batch sizes differ)"
            )
        q = self.queries(coords)
        if isinstance(self.aggregate, MultiHeadCrossAttention):
            m = self.aggregate(q, tokens, token_mask)  # Eq. 5
            if cfg.modulation == "mlp" and cfg.mlp_input_relu:
                m = F.relu(m)  # w/o multiFM: IPC's ReLU after its (here: attention) modulated layer
        else:
            # IPC's W = normalize(U V) = normalize(sum_k z_k v_k^T): removing token k == zeroing it
            if token_mask is not None:
                tokens = tokens * token_mask.unsqueeze(-1).to(tokens.dtype)
            m = F.relu(self.aggregate(q, tokens))
        y = self.modulate(coords, m) if isinstance(self.modulate, MultiBandModulation) else self.modulate(m)
        return y + self.output_bias


def build_decoder(cfg: LocalityAwareConfig) -> nn.Module:
    """The decoder a config describes: :class:`LocalityAwareDecoder`, or IPC's hyponet with both ablations."""
    if cfg.token_aggregation == "ipc" and cfg.modulation == "mlp":
        return IPCHyponet(
            cfg.coord_dim,
            cfg.out_channels,
            rank=cfg.encoder.num_latents,
            hidden_dim=cfg.dim,
            num_layers=cfg.num_mlp_layers + 2,
            fourier_dim=cfg.fourier_dim,
            sigma=cfg.query_sigma,
            modulated_layer=1,
            output_bias=cfg.output_bias,
        )
    return LocalityAwareDecoder(cfg)


@register_model("locality_aware")
class LocalityAwareINR(INRModel):
    """Locality-aware generalizable INR (see the module docstring). The latent is ``Z``: ``(b, R, d)``.

    Modules: ``encoder`` (:class:`~inrgen.nn.transformer.TransformerEncoder`), ``hyponet`` (the INR decoder;
    IPC's name, so that the both-ablations model has IPC's exact layout) and ``to_latent``
    (``LayerNorm -> Linear(width, d)``).
    """

    config_class = LocalityAwareConfig
    supports_token_mask = True  # decode(..., token_mask=) removes tokens (used by inrgen.analysis)

    def __init__(self, config: LocalityAwareConfig) -> None:
        super().__init__(config)
        self.encoder = TransformerEncoder(config.encoder)
        self.hyponet = build_decoder(config)
        width = config.encoder.width
        self.to_latent = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, config.dim))

    @property
    def latent_shape(self) -> tuple[int, int]:
        """``(R, d)``: the shape of one item's latent tokens (what latent diffusion models)."""
        return self.config.encoder.num_latents, self.config.dim

    def encode(self, points: PointSet) -> Tensor:
        """Latent tokens ``Z = Linear(LN(encoder(points)))``: ``(b, R, d)``. For light fields pass the
        support views (``PointSetPair.context``)."""
        if isinstance(points, PointSetPair):
            raise TypeError(
                "encode takes the observed points; for novel views pass the support views (pair.context) "
                "and decode the query rays (pair.target.coords)"
            )
        self.check_points(points)
        return self.to_latent(self.encoder(points))

    def _check_latent(self, latent: Any, token_mask: Tensor | None) -> None:
        if not isinstance(latent, Tensor):
            raise TypeError(
                f"the locality-aware latent is a tensor of tokens (B, R, d), got {type(latent).__name__}"
            )
        if token_mask is not None and (
            token_mask.dtype != torch.bool or token_mask.shape != latent.shape[:2]
        ):
            raise ValueError(
                f"token_mask must be bool (B, R) = {tuple(latent.shape[:2])}, got {token_mask.dtype} "
                f"{tuple(token_mask.shape)}"
            )

    def decode(
        self, latent: Tensor, coords: Tensor, token_mask: Tensor | None = None, **kwargs: Any
    ) -> Prediction:
        """Predict at ``coords`` (b, n, d_in) from tokens ``latent`` (b, R, d).

        ``token_mask`` (b, R) bool, optional: False removes a token (from the attention softmax; with IPC's
        modulation, where ``U V`` is a sum over tokens, removing equals zeroing).
        """
        self.check_coords(coords)
        self._check_latent(latent, token_mask)
        if isinstance(self.hyponet, IPCHyponet):
            if token_mask is not None:
                latent = latent * token_mask.unsqueeze(-1).to(latent.dtype)
            return Prediction(mean=self.hyponet(coords, latent))
        return Prediction(mean=self.hyponet(coords, latent, token_mask))

    def attention_weights(self, latent: Tensor, coords: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """Selective-token-aggregation weights ``(b, heads, n, R)`` (cross-attention models only)."""
        self.check_coords(coords)
        self._check_latent(latent, token_mask)
        if not isinstance(self.hyponet, LocalityAwareDecoder):
            raise ValueError("attention weights exist only with token_aggregation='cross_attention'")
        return self.hyponet.attention_weights(coords, latent, token_mask)

    def loss(self, batch: PointSet | PointSetPair, step: int = 0) -> dict[str, Tensor]:
        """Per-item MSE averaged over the batch (with ``subsample_ratio`` / ``coord_jitter``), and PSNR."""
        return reconstruction_loss(self, batch)

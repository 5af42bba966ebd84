"""Patch tokenizer and pre-LN Transformer encoder shared by TransINR, IPC and the locality-aware INR.

The encoder of TransINR (Chen & Wang 2022), IPC (Kim et al. 2023) and the locality-aware INR (Lee et al.
2023, Sec. 3.1 and Appendix A): the data are cut into patches, each patch becomes a token, ``R`` learnable
tokens are appended after the data tokens, a pre-LN Transformer mixes them, and the outputs at the ``R``
learnable positions are the latents:

    x_p   = unfold_{p, pad}(x)                               zero padding, patches of p x p, no overlap
    t     = W_tok x_p + b_tok + pos                          learned positional embedding, one per token
    s^0   = [t_1 .. t_L, e_1 .. e_R]                         R learnable tokens e_k ~ N(0, 1) appended
    s'    = s + Drop(MHA(LN(s)))                             pre-LN block, residual dropout
    s^l   = s' + Drop(W_2 GELU(W_1 LN(s') + b_1) + b_2)
    Z     = s^depth[L : L + R]                               (B, R, width), no final LayerNorm

Shapes (einops legend)::

    b batch  v views  c per-pixel channels  h w image size  p patch size  l tokens per view  r latents
    images   (b, c, h, w)        -> tokens (b, l, c p p)       -> (b, l + r, width) -> Z (b, r, width)
    views    (b, v, c + 6, h, w) -> tokens (b, (v l), (c+6) p p) ...

Inputs are :class:`~inrgen.data.points.PointSet` objects:

* ``kind="grid"`` with ``grid_shape == image_size``: ``points.to_grid()`` gives ``(b, c, h, w)``; unobserved
  points (``mask`` False) enter as zeros, like the zero padding.
* ``kind="rays"`` (:meth:`PointSet.from_views`, ``grid_shape = (v, h, w)``): every pixel carries
  ``[values, Plücker ray]`` = ``c + 6`` channels (9 for RGB, as in IPC's NVS encoder, which uses
  ``[rgb, ray origin, ray direction]``; we use the 6-D Plücker coordinate that the decoder also reads, so
  a support pixel and a query ray are described the same way). Each view is unfolded on its own and the
  tokens of all views are concatenated view-major. The positional embedding has one entry per token *and
  per view slot*; a set with fewer views than ``num_views`` uses the first ``v`` slots, so one encoder
  takes 1 .. ``num_views`` support views.

Token counts (``l = ((h + 2 pad) / p) * ((w + 2 pad) / p)``): 178^2 with p = 9, pad 1 -> 400; 256^2 with
p = 16 -> 256; 512^2 with p = 32 -> 256; 1024^2 with p = 48, pad 16 -> 484; a 128^2 view with p = 8 ->
256 per view. A size that does not divide into patches (``(h + 2 pad) % p != 0``) is rejected when the
config is built, with the paddings that would work; it is never silently cropped or resized.

Choices where the papers are silent, following the IPC code: PyTorch default initialisation of every
Linear layer, learnable tokens and positional embedding N(0, 1), attention dropout 0, no causal mask.

Example:
    >>> import torch
    >>> from inrgen.data.points import PointSet
    >>> enc = TransformerEncoder(EncoderConfig(in_channels=1, image_size=(28, 28), patch_size=7,
    ...                                        padding=0, width=32, depth=1, heads=2, mlp_dim=64,
    ...                                        num_latents=5))
    >>> enc(PointSet.from_image(torch.rand(2, 1, 28, 28))).shape
    torch.Size([2, 5, 32])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inrgen.data.points import PointSet

__all__ = [
    "EncoderConfig",
    "PatchTokenizer",
    "SelfAttention",
    "TransformerBlock",
    "TransformerEncoder",
    "PLUCKER_DIM",
]

PLUCKER_DIM = 6  # (direction, moment) of a ray, see inrgen.coords.plucker


@dataclass
class EncoderConfig:
    """The patch tokenizer and Transformer encoder (defaults: the papers' 178x178 image setting)."""

    in_channels: int = 3  # per-pixel channels: 3 (RGB) / 1 (gray); views add 6 Plücker channels -> 9
    image_size: tuple[int, int] = (178, 178)  # (H, W) of an image or of one view
    patch_size: int = 9  # p: patches of p x p pixels
    padding: int = 1  # zero padding of the unfold on each side (178 -> 20x20 = 400 tokens with 9x9, pad 1)
    num_views: int = 1  # support views per item (light fields); each view is tokenised
    width: int = 768  # token width
    depth: int = 6  # Transformer blocks
    heads: int = 12  # attention heads (width / heads per head)
    mlp_dim: int = 3072  # hidden width of each block's MLP
    dropout: float = 0.1  # residual dropout after attention and after the MLP
    num_latents: int = 256  # R learnable tokens appended after the data tokens
    input_kind: str = "grid"  # "grid" (images, PointSet.from_image) | "rays" (views, PointSet.from_views)

    def __post_init__(self) -> None:
        self.image_size = tuple(int(s) for s in self.image_size)  # type: ignore[assignment]
        if len(self.image_size) != 2:
            raise ValueError(f"image_size must be (H, W), got {self.image_size!r}")
        for name in ("in_channels", "patch_size", "num_views", "width", "depth", "heads", "mlp_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"EncoderConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.num_latents < 0:
            raise ValueError(f"EncoderConfig.num_latents must be >= 0, got {self.num_latents}")
        if self.padding < 0:
            raise ValueError(f"EncoderConfig.padding must be >= 0, got {self.padding}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.input_kind not in ("grid", "rays"):
            raise ValueError(f"input_kind must be 'grid' (images) or 'rays' (views), got {self.input_kind!r}")
        if self.input_kind == "rays" and self.in_channels <= PLUCKER_DIM:
            raise ValueError(
                f"a view encoder reads [values, Plücker ray] per pixel, so in_channels must be the value "
                f"channels + {PLUCKER_DIM} (9 for RGB views), got {self.in_channels}"
            )
        if self.input_kind == "grid" and self.num_views != 1:
            raise ValueError("num_views > 1 needs input_kind='rays' (posed views)")
        for axis, n in zip("HW", self.image_size):
            if (n + 2 * self.padding) % self.patch_size:
                ok = [q for q in range(self.patch_size) if (n + 2 * q) % self.patch_size == 0]
                raise ValueError(
                    f"image {axis}={n} with padding {self.padding} is not divisible into "
                    f"{self.patch_size}-px patches ({n} + 2*{self.padding} = {n + 2 * self.padding}); "
                    + (
                        f"use padding in {ok}"
                        if ok
                        else f"choose a patch size dividing {n} (+ 2 * padding), or resize the data"
                    )
                )

    @property
    def grid_tokens(self) -> tuple[int, int]:
        """Patches per view along (H, W)."""
        h, w = self.image_size
        return (h + 2 * self.padding) // self.patch_size, (w + 2 * self.padding) // self.patch_size

    @property
    def tokens_per_view(self) -> int:
        gh, gw = self.grid_tokens
        return gh * gw

    @property
    def num_tokens(self) -> int:
        """Data tokens for ``num_views`` views (the learnable tokens not included)."""
        return self.tokens_per_view * self.num_views


class PatchTokenizer(nn.Module):
    """Zero-padded unfold into ``p x p`` patches, a linear map to ``width`` and a learned positional
    embedding: ``(b, v, c, h, w) -> (b, v * l, width)``."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        p = cfg.patch_size
        self.proj = nn.Linear(cfg.in_channels * p * p, cfg.width)
        self.pos = nn.Parameter(torch.randn(1, cfg.num_tokens, cfg.width))

    def forward(self, views: Tensor) -> Tensor:
        """``views``: ``(b, v, c, h, w)`` pixel arrays (1 <= v <= num_views)."""
        cfg = self.cfg
        if views.dim() != 5:
            raise ValueError(f"expected (B, V, C, H, W) pixel arrays, got {tuple(views.shape)}")
        b, v, c, h, w = views.shape
        if c != cfg.in_channels:
            raise ValueError(
                f"the tokenizer was built for {cfg.in_channels} channels per pixel, got {c}; "
                "set EncoderConfig.in_channels to match the data"
            )
        if (h, w) != cfg.image_size:
            raise ValueError(
                f"the tokenizer was built for {cfg.image_size[0]}x{cfg.image_size[1]} images (its positional "
                f"embedding has one entry per patch), got {h}x{w}; resize the data or set image_size"
            )
        if not 1 <= v <= cfg.num_views:
            raise ValueError(f"the encoder takes 1 to {cfg.num_views} views per item, got {v}")
        p = cfg.patch_size
        patches = F.unfold(views.reshape(b * v, c, h, w), kernel_size=p, stride=p, padding=cfg.padding)
        patches = patches.transpose(1, 2).reshape(b, v * cfg.tokens_per_view, c * p * p)
        return self.proj(patches) + self.pos[:, : v * cfg.tokens_per_view].to(patches.dtype)


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate q/k/v projections (bias), scale 1/sqrt(head dim) and an
    output projection; no mask and no attention dropout."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.k = nn.Linear(width, width)
        self.v = nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        h = self.heads

        def split(t: Tensor) -> Tensor:
            return t.reshape(b, n, h, d // h).transpose(1, 2)

        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class TransformerBlock(nn.Module):
    """Pre-LN block: ``x + Drop(MHA(LN(x)))`` then ``x + Drop(MLP(LN(x)))`` with a GELU MLP."""

    def __init__(self, width: int, heads: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))


class TransformerEncoder(nn.Module):
    """PointSet -> ``(B, R, width)``: the Transformer outputs at the ``R`` learnable token positions."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = PatchTokenizer(cfg)
        self.latents = nn.Parameter(torch.randn(cfg.num_latents, cfg.width))
        self.blocks = nn.ModuleList(
            TransformerBlock(cfg.width, cfg.heads, cfg.mlp_dim, cfg.dropout) for _ in range(cfg.depth)
        )

    def pixels(self, points: PointSet) -> Tensor:
        """The pixel arrays the tokenizer reads, ``(B, V, C, H, W)``; clear errors for sets it cannot."""
        cfg = self.cfg
        if not isinstance(points, PointSet):
            raise TypeError(f"the encoder reads an inrgen PointSet, got {type(points).__name__}")
        if points.grid_shape is None:
            raise ValueError(
                "the patch encoder needs points on a regular grid (PointSet.from_image / from_views, with "
                "grid_shape); scattered points cannot be cut into patches"
            )
        if cfg.input_kind == "grid":
            if points.kind == "rays":
                raise ValueError(
                    "this encoder was built for images (input_kind='grid') but got posed views; build it "
                    f"with input_kind='rays' and in_channels={points.channels + PLUCKER_DIM}"
                )
            if len(points.grid_shape) != 2:
                raise ValueError(f"expected a 2-D image grid (H, W), got grid_shape {points.grid_shape}")
            if points.channels != cfg.in_channels:
                raise ValueError(
                    f"the tokenizer was built for {cfg.in_channels}-channel images, got {points.channels} "
                    "channels; convert the data or set EncoderConfig.in_channels"
                )
            return points.to_grid().unsqueeze(1)  # unobserved points are zeros
        # posed views
        if points.kind != "rays" or len(points.grid_shape) != 3:
            raise ValueError(
                "this encoder reads posed views: a PointSet.from_views set (kind='rays', grid_shape "
                f"(V, H, W), Plücker coords); got kind={points.kind!r} with grid_shape {points.grid_shape} "
                "(views without camera poses cannot be encoded)"
            )
        if points.coord_dim != PLUCKER_DIM:
            raise ValueError(
                f"view coordinates must be {PLUCKER_DIM}-D Plücker rays (direction, moment), got "
                f"{points.coord_dim}-D; build the set with PointSet.from_views(images, c2w, K)"
            )
        if points.channels + PLUCKER_DIM != cfg.in_channels:
            raise ValueError(
                f"the tokenizer was built for {cfg.in_channels} channels per pixel = values + "
                f"{PLUCKER_DIM} Plücker; got {points.channels}-channel views (expected "
                f"{cfg.in_channels - PLUCKER_DIM})"
            )
        per_pixel = torch.cat([points.values, points.coords.to(points.values.dtype)], dim=-1)
        if points.mask is not None:
            per_pixel = per_pixel * points.mask.unsqueeze(-1).to(per_pixel.dtype)
        return points.to_grid(per_pixel).transpose(1, 2)  # (B, C+6, V, H, W) -> (B, V, C+6, H, W)

    def forward(self, points: PointSet) -> Tensor:
        return self.forward_pixels(self.pixels(points))

    def forward_pixels(self, views: Tensor) -> Tensor:
        """The same from pixel arrays ``(B, V, C, H, W)`` (``V = 1`` for images)."""
        tokens = self.tokenizer(views)
        b, n, _ = tokens.shape
        x = torch.cat([tokens, self.latents.to(tokens.dtype).expand(b, -1, -1)], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return x[:, n:]

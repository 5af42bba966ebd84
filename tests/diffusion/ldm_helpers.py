"""A tiny frozen stand-in INR whose latent tokens are the data themselves, and helpers to build models.

``TokenINR`` reads a set of ``R`` points with ``D`` channels as the tokens ``Z = scale * values + offset``
(``latent_shape = (R, D)``) and decodes a coordinate ``x`` in [-1, 1] as ``(Z[k] - offset) / scale`` with
``k`` the nearest of ``R`` equally spaced token positions, so ``decode(encode(p), p.coords) = p.values``.
Its own ``loss`` (used by ``inr_pretrain_steps``) pulls the encoder towards the identity.
"""

from dataclasses import dataclass

import torch
from torch import nn

from inrgen import PointSet
from inrgen.models.base import INRModel, Prediction, register_model
from inrgen.models.latent_diffusion import LatentDiffusion, LatentDiffusionConfig


@dataclass
class TokenINRConfig:
    coord_dim: int = 1  # token positions on [-1, 1]
    out_channels: int = 2  # D: channels per token
    num_tokens: int = 4  # R


@register_model("ldm-test-token-inr")
class TokenINR(INRModel):
    config_class = TokenINRConfig

    def __init__(self, config):
        super().__init__(config)
        self.scale = nn.Parameter(torch.full((config.out_channels,), 1.5))
        self.offset = nn.Parameter(torch.full((config.out_channels,), 0.3))

    @property
    def latent_shape(self):
        return (self.config.num_tokens, self.config.out_channels)

    def encode(self, points):
        self.check_points(points)
        if points.num_points != self.config.num_tokens:
            raise ValueError("TokenINR reads exactly num_tokens points")
        return points.values * self.scale + self.offset

    def decode(self, latent, coords, **kwargs):
        self.check_coords(coords)
        r = self.config.num_tokens
        k = ((coords[..., 0] + 1) / 2 * (r - 1)).round().long().clamp(0, r - 1)
        tok = torch.gather(latent, 1, k.unsqueeze(-1).expand(-1, -1, latent.shape[-1]))
        return Prediction(mean=(tok - self.offset) / self.scale)

    def loss(self, batch, step=0):
        z = self.encode(batch)
        mse = ((z - batch.values) ** 2).mean()
        return {"loss": mse, "mse": mse.detach()}


def token_points(tokens, labels=None):
    """A PointSet whose values are the tokens ``(B, R, D)``; labels go to ``meta['labels']``."""
    b, r, _ = tokens.shape
    coords = torch.linspace(-1, 1, r, dtype=tokens.dtype).reshape(1, r, 1).expand(b, -1, -1)
    meta = {} if labels is None else {"labels": labels}
    return PointSet(coords, tokens, meta=meta)


def small_config(**kw):
    base = dict(
        width=16,
        depth=1,
        heads=2,
        timestep_features=16,
        num_classes=3,
        num_train_timesteps=100,
        beta_end=0.2,
        num_sampling_steps=10,
        latent_stats_items=64,
        ema_decay=0.0,
    )
    base.update(kw)
    return LatentDiffusionConfig(**base)


def make_ldm(dtype=torch.float64, inr_kw=None, **kw):
    """A latent diffusion model over a (trained, frozen) TokenINR."""
    inr = TokenINR(TokenINRConfig(**(inr_kw or {}))).to(dtype)
    return LatentDiffusion.from_inr(inr, small_config(**kw))

"""Tiny locality-aware models for the tests (float64 where the property is exact)."""

from __future__ import annotations

import torch

from inrgen.models.locality_aware import LocalityAwareConfig, LocalityAwareINR
from inrgen.nn.transformer import EncoderConfig


def tiny_encoder(**kw) -> EncoderConfig:
    base = dict(
        in_channels=1, image_size=(12, 12), patch_size=4, padding=0, width=16, depth=1, heads=2,
        mlp_dim=32, dropout=0.0, num_latents=8,
    )  # fmt: skip
    base.update(kw)
    return EncoderConfig(**base)


def tiny_config(**kw) -> LocalityAwareConfig:
    enc = kw.pop("encoder", None) or tiny_encoder(in_channels=kw.get("out_channels", 1))
    base = dict(
        out_channels=1, dim=16, fourier_dim=16, sigmas=(8.0, 4.0), sigma_q=2.0, heads=2, encoder=enc
    )  # fmt: skip
    base.update(kw)
    return LocalityAwareConfig(**base)


def tiny_laginr(dtype=torch.float32, seed: int = 0, **kw) -> LocalityAwareINR:
    torch.manual_seed(seed)
    return LocalityAwareINR(tiny_config(**kw)).to(dtype).eval()


def tiny_nvs_laginr(
    dtype=torch.float32, seed: int = 0, views: int = 2, size: int = 8, **kw
) -> LocalityAwareINR:
    enc = tiny_encoder(in_channels=9, image_size=(size, size), num_views=views, input_kind="rays")
    base = dict(coord_dim=6, out_channels=3, encoder=enc, fourier_dim=24)
    base.update(kw)
    return tiny_laginr(dtype, seed, **base)


MODES = [
    ("cross_attention", "multiband"),
    ("ipc", "multiband"),
    ("cross_attention", "mlp"),
    ("ipc", "mlp"),
]

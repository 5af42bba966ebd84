"""Tiny VaMoH models shared by the VaMoH tests (float64 where it matters)."""

from __future__ import annotations

import torch

from inrgen.models.vamoh import PointConvConfig, VaMoH, VaMoHConfig


def tiny_config(**overrides) -> VaMoHConfig:
    """A VaMoH small enough for exact checks: 8 Fourier features, K=3, dim_z=3."""
    kw = dict(
        coord_dim=2,
        out_channels=1,
        dim_z=3,
        num_components=3,
        fourier_features=8,
        encoder=PointConvConfig(
            centroids=(8, 4), neighbors=(4, 3), out_channels=(4, 4), weightnet_hidden=(4,)
        ),
        hypernet_hidden=(6,),
        inr_hidden=(5,),
        cat_hidden=(6,),
        flow_layers=2,
        warmup_steps=0,
        point_dropout=0.0,
    )
    kw.update(overrides)
    return VaMoHConfig(**kw)


def tiny_model(seed: int = 0, dtype=torch.float64, **overrides) -> VaMoH:
    torch.manual_seed(seed)
    return VaMoH(tiny_config(**overrides)).to(dtype).eval()

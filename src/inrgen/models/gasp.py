"""GASP: Generative Adversarial Stochastic Process (Dupont, Teh & Doucet, AISTATS 2022, "Generative
models as distributions of functions"); the adversarial baseline of VaMoH Tables 1 and 4.

Generator (a distribution over functions): a latent ``z ~ N(0, I)`` is mapped by a hypernetwork to *all*
weights ``theta = g_phi(z)`` of an INR on random Fourier features,

    f_theta(x) = a_out( W_L a( ... a(W_1 gamma(x) + b_1) ... ) + b_L ),   a = LeakyReLU(0.1)

so a sample can be evaluated at any coordinates (any resolution, any point set). ``a_out`` is ``tanh``
on values mapped to ``[-1, 1]`` (the released code, ``value_range="symmetric"``) or a sigmoid on values
in ``[0, 1]`` (``"unit"``). ``fourier_features=0`` feeds raw coordinates (GASP's ShapeNet configs).

Discriminator: a PointConv network ``D(X, Y)`` on the *point set* of coordinates and values (raw
coordinates, farthest-point centroids with a deterministic start, kNN neighbourhoods, BatchNorm after
every layer and inside every weight net, LeakyReLU(0.2)), ending in one logit ``t``, ``D = sigmoid(t)``.

Objective (non-saturating GAN with the R1 penalty of Mescheder et al. 2018), per minibatch:

    L_D = E_real[softplus(-t)] + E_fake[softplus(t)] + (r1_weight / 2) E_real[ ||d s / d y||^2 ]
    L_G = E_fake[softplus(-t)]                                     (= BCE(sigmoid(t), 1), "non-saturating")

with ``||.||^2`` summed over every point and channel of a real item (the gradient with respect to the
values only, not the coordinates) and ``s`` the discriminator's probability ``sigmoid(t)`` (released
code, ``r1_on="probability"``) or its logit ``t`` (Mescheder et al.'s R1, ``r1_on="logit"``). The two
losses are minimised alternately, one Adam step each per batch (``inrgen.training.adversarial``); the
discriminator step sees one batch of generated functions, the generator step a fresh one.

What the released code (github.com/EmilienDupont/neural-function-distributions) does, as options:

| released code                                              | here                                     |
|------------------------------------------------------------|------------------------------------------|
| values mapped to [-1, 1], tanh output                      | ``value_range="symmetric"`` (``"unit"``) |
| R1 on ``d sigmoid(t) / d y`` (the probability)             | ``r1_on="probability"`` (``"logit"``)    |
| BatchNorm after PointConv layers and in weight nets        | ``disc_batchnorm=True``                  |
| ``max_num_points``: random subset shared by the batch      | ``train_max_points`` (4096 for voxels)   |
| Adam betas (0.5, 0.999); lr 1e-4 / 4e-4 (2e-5 / 8e-5 voxels)| ``train.betas``, ``train.lr``, ``disc_lr``|
| FPS from the first point, L2 norm; D on raw coordinates    | always                                   |
| a fresh generated batch for the generator step             | always                                   |
| BCE on sigmoid outputs (log clamped at -100)               | logits + softplus (equal until saturated)|

GASP has no encoder: ``encode`` *inverts* the generator by optimisation (VaMoH Sec. 2: GASP needs
"numerical optimization to find the latent codes"), ``inversion_steps`` Adam steps on ``z`` from the prior
mean, minimising the MSE on the observed points, so reconstruction and completion tasks (and held-out
PSNR during training) are defined; it is slow, as the paper says.

Shapes (einops legend): ``b`` batch, ``n`` points, ``d`` coordinate dim, ``c`` channels, ``z`` latent.

Example:
    >>> import torch
    >>> from inrgen import PointSet
    >>> cfg = GASPConfig(out_channels=1, dim_z=8, hypernet_hidden=(16,), inr_hidden=(8,),
    ...                  fourier_features=16, disc_centroids=(16, 1), disc_neighbors=(9, 16),
    ...                  disc_out_channels=(8, 1), disc_avgpool_centroids=None, disc_avgpool_neighbors=None)
    >>> model = GASP(cfg)
    >>> batch = PointSet.from_image(torch.rand(4, 1, 8, 8))
    >>> sorted(model.discriminator_loss(batch))
    ['d_fake', 'd_loss', 'd_real', 'r1']
    >>> model.sample(2, batch.coords[0]).mean.shape      # any coordinates
    torch.Size([2, 64, 1])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inrgen.data.points import PointSet, PointSetPair
from inrgen.metrics.psnr import mse_per_item
from inrgen.models.base import INRModel, Prediction, register_model
from inrgen.nn.fourier import GaussianFourierFeatures
from inrgen.nn.hypernet import HyperNetwork, mlp, param_shapes
from inrgen.nn.pointconv import (
    ChannelLastBatchNorm,
    Neighbourhood,
    PointConv,
    farthest_point_sample,
    gather_points,
    knn,
)

__all__ = ["GASPConfig", "GASP", "PointConvDiscriminator"]

_VALUE_RANGES = ("symmetric", "unit")
_R1_ON = ("probability", "logit")


@dataclass
class GASPConfig:
    """Every hyper-parameter of GASP. Defaults: the released CelebA-HQ 64 configuration."""

    coord_dim: int = 2  # coordinate dimension d (2 images, 3 voxels and points on the sphere)
    out_channels: int = 3  # value channels C
    dim_z: int = 64  # latent size ("latent_dim")
    hypernet_hidden: tuple[int, ...] = (256, 512)  # hidden widths of the hypernetwork z -> theta
    inr_hidden: tuple[int, ...] = (128, 128, 128)  # hidden widths of the INR f_theta ("layer_sizes")
    fourier_features: int = 128  # m, rows of the Gaussian Fourier matrix (0: raw coordinates, ShapeNet)
    fourier_sigma: float = 2.0  # B_ij ~ N(0, sigma^2), fixed ("std_dev")
    fourier_seed: int = 0  # seed of B (B is also saved with the weights)
    negative_slope: float = 0.1  # LeakyReLU slope of the INR and the hypernetwork
    value_range: str = "symmetric"  # "symmetric": values -> [-1, 1], tanh output (code) | "unit": sigmoid
    # the discriminator: PointConv(centroids[i], neighbors[i], -> out_channels[i]) [-> AvgPool(...)]
    disc_centroids: tuple[int, ...] = (4096, 1024, 256, 64, 1)  # centroids per PointConv layer
    disc_neighbors: tuple[int, ...] = (9, 9, 9, 9, 16)  # kNN size per PointConv layer (centroid included)
    disc_out_channels: tuple[int, ...] = (64, 128, 256, 512, 1)  # features out of each PointConv layer
    disc_avgpool_centroids: tuple[int | None, ...] | None = (1024, 256, 64, 16, None)  # AvgPool after i
    disc_avgpool_neighbors: tuple[int | None, ...] | None = (9, 9, 9, 9, None)  # neighbours of the pools
    disc_weightnet_hidden: tuple[int, ...] = (16, 16, 16, 16)  # weight-net widths ("mid_channels")
    disc_batchnorm: bool = True  # BatchNorm after PointConv layers and in weight nets (released configs)
    disc_negative_slope: float = 0.2  # LeakyReLU slope of the discriminator
    disc_lr: float | None = None  # discriminator Adam lr (None: 4 x train.lr, the released configs' ratio)
    r1_weight: float = 10.0  # gamma of the R1 penalty (gamma / 2) E ||grad||^2 on real data (0: off)
    r1_on: str = "probability"  # R1 on d sigmoid(t)/dy (released code) | "logit": d t/dy (Mescheder)
    train_max_points: int | None = None  # random points per batch, shared by the batch (4096 voxels)
    inversion_steps: int = 100  # encode(): Adam steps on z fitting the observed points (GASP has no encoder)
    inversion_lr: float = 0.05  # encode(): Adam learning rate of the inversion

    def __post_init__(self) -> None:
        L = len(self.disc_centroids)
        checks = [
            (self.coord_dim >= 1 and self.out_channels >= 1, "coord_dim and out_channels must be >= 1"),
            (self.dim_z >= 1, f"dim_z must be >= 1, got {self.dim_z}"),
            (self.fourier_features >= 0, f"fourier_features must be >= 0, got {self.fourier_features}"),
            (self.value_range in _VALUE_RANGES, f"value_range must be one of {_VALUE_RANGES}"),
            (self.r1_on in _R1_ON, f"r1_on must be one of {_R1_ON}, got {self.r1_on!r}"),
            (self.r1_weight >= 0, f"r1_weight must be >= 0, got {self.r1_weight}"),
            (
                L > 0 and len(self.disc_neighbors) == L and len(self.disc_out_channels) == L,
                "disc_centroids, disc_neighbors and disc_out_channels need one entry per PointConv layer",
            ),
            (self.disc_lr is None or self.disc_lr > 0, f"disc_lr must be > 0, got {self.disc_lr}"),
            (self.inversion_steps >= 0, f"inversion_steps must be >= 0, got {self.inversion_steps}"),
            (
                self.train_max_points is None or self.train_max_points >= 1,
                f"train_max_points must be >= 1 or None, got {self.train_max_points}",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"GASPConfig: {msg}")


class PointConvDiscriminator(nn.Module):
    """``D(X, Y)``: PointConv stages on a point set -> one logit per item (see the module docstring).

    Stage ``i`` is ``PointConv(centroids[i], neighbors[i], -> out_channels[i]) -> BatchNorm ->
    LeakyReLU(0.2)`` then, when ``avgpool_centroids[i]`` is set, ``AvgPool(avgpool_centroids[i],
    avgpool_neighbors[i])``. When the last stage is a PointConv to one centroid and one channel (GASP's
    configs) its output is the logit, without BatchNorm or activation; otherwise a linear layer maps the
    flattened last features to the logit.

    Only observed points are seen. When the batch shares its coordinates and mask (grids, the shared
    random subsets of ``train_max_points``) centroids and neighbourhoods are computed once per batch
    (GASP's ``same_coordinates``) and cached; otherwise per item, with masks.

    ``forward(points) -> (b,)`` logits.
    """

    def __init__(
        self,
        coord_dim: int,
        channels: int,
        centroids: Sequence[int],
        neighbors: Sequence[int],
        out_channels: Sequence[int],
        weightnet_hidden: Sequence[int] = (16, 16, 16, 16),
        avgpool_centroids: Sequence[int | None] | None = None,
        avgpool_neighbors: Sequence[int | None] | None = None,
        batchnorm: bool = True,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        L = len(centroids)
        apc = list(avgpool_centroids) if avgpool_centroids is not None else [None] * L
        apk = list(avgpool_neighbors) if avgpool_neighbors is not None else [None] * L
        if len(apc) != L or len(apk) != L or any((a is None) != (b is None) for a, b in zip(apc, apk)):
            raise ValueError(
                "disc_avgpool_centroids and disc_avgpool_neighbors need one entry per PointConv layer "
                f"(None for no pooling), both set or both None; got {apc} and {apk}"
            )
        if any(int(c) < 1 for c in centroids) or any(int(k) < 1 for k in neighbors):
            raise ValueError(f"centroid and neighbour counts must be >= 1, got {centroids}, {neighbors}")
        self.coord_dim, self.channels = coord_dim, channels
        self.stages: list[tuple[str, int, int]] = []
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.act = nn.LeakyReLU(negative_slope)
        c_in = channels
        for i in range(L):
            self.stages.append(("conv", int(centroids[i]), int(neighbors[i])))
            self.convs.append(
                PointConv(
                    c_in, int(out_channels[i]), coord_dim, weightnet_hidden, "leaky_relu", negative_slope,
                    batchnorm=batchnorm,
                )
            )  # fmt: skip
            c_in = int(out_channels[i])
            if apc[i] is not None:
                self.stages.append(("pool", int(apc[i]), int(apk[i])))  # type: ignore[arg-type]
        counts = [s for _, s, _ in self.stages]
        if min(counts) != counts[-1]:
            raise ValueError(f"the last discriminator stage must have the fewest centroids, got {counts}")
        self.min_points = counts[-1]
        # GASP's configs end in PointConv(-> 1 centroid, 1 channel): that output is the logit
        self.logit_is_last = self.stages[-1][0] == "conv" and counts[-1] * c_in == 1
        self.head = None if self.logit_is_last else nn.Linear(counts[-1] * c_in, 1)
        for i in range(L):
            last = i == L - 1 and self.logit_is_last
            bn = batchnorm and not last
            self.norms.append(ChannelLastBatchNorm(int(out_channels[i])) if bn else nn.Identity())
        self._cache: tuple[Tensor, list[Neighbourhood]] | None = None

    @torch.no_grad()
    def plan(self, positions: Tensor, mask: Tensor | None) -> list[Neighbourhood]:
        """Centroids and neighbourhoods of every stage for points ``(g, n, d)`` (mask ``(g, n)`` or None)."""
        out, pos, ok = [], positions, mask
        for _, s, k in self.stages:
            c_idx, c_ok = farthest_point_sample(pos, s, ok)
            cpos = gather_points(pos, c_idx)
            n_idx, n_ok = knn(cpos, pos, k, ok)
            out.append(Neighbourhood(c_idx, c_ok, n_idx, n_ok))
            pos, ok = cpos, (None if bool(c_ok.all()) else c_ok)
        return out

    def _shared_plan(self, coords: Tensor) -> list[Neighbourhood]:
        if self._cache is not None:
            c0, cached = self._cache
            if c0.shape == coords.shape and c0.device == coords.device and torch.equal(c0, coords):
                return cached
        plan = []
        for nb in self.plan(coords.detach(), None):  # one fully observed item: padding only at the ends
            s, k = int(nb.centroid_ok.sum()), int(nb.nbr_ok[0, 0].sum())
            plan.append(
                Neighbourhood(
                    nb.centroid_idx[:, :s], nb.centroid_ok[:, :s], nb.nbr_idx[:, :s, :k], nb.nbr_ok[:, :s, :k]
                )
            )
        self._cache = (coords.detach().clone(), plan)
        return plan

    def forward(self, points: PointSet, shared: bool | None = None) -> Tensor:
        if points.coord_dim != self.coord_dim or points.channels != self.channels:
            raise ValueError(
                f"this discriminator reads {self.coord_dim}-D coordinates and {self.channels} channels; "
                f"got {points.coord_dim}-D and {points.channels}"
            )
        few = points.num_observed() < self.min_points
        if few.any():
            raise ValueError(
                f"the discriminator needs at least {self.min_points} observed points per item; item(s) "
                f"{few.nonzero().flatten().tolist()[:10]} have fewer"
            )
        if shared is None:
            shared = points.shares_coords()
        if shared:
            if points.mask is None:
                coords, feats = points.coords[:1], points.values
            else:
                keep = points.mask[0].nonzero().flatten()
                coords, feats = points.coords[:1, keep], points.values[:, keep]
            plan = self._shared_plan(coords)
        else:
            coords, ok = points.coords, points.observed
            feats = torch.where(ok.unsqueeze(-1), points.values, torch.zeros_like(points.values))
            plan = self.plan(coords.detach(), None if bool(ok.all()) else ok)
        pos = coords.to(feats.dtype)
        conv_i = 0
        for (kind, _, _), nb in zip(self.stages, plan):
            cpos = gather_points(pos, nb.centroid_idx)
            nbr_f = gather_points(feats, nb.nbr_idx)
            if kind == "conv":
                offsets = gather_points(pos, nb.nbr_idx) - cpos.unsqueeze(2)
                ok_n = None if bool(nb.nbr_ok.all()) else nb.nbr_ok
                feats = self.norms[conv_i](self.convs[conv_i](nbr_f, offsets, ok_n))
                if not (conv_i == len(self.convs) - 1 and self.logit_is_last):
                    feats = self.act(feats)
                conv_i += 1
            else:
                w = nb.nbr_ok.to(nbr_f.dtype).unsqueeze(-1)
                feats = (nbr_f * w).sum(2) / w.sum(2).clamp_min(1)
            pos = cpos
        h = feats.flatten(1)
        return (h if self.head is None else self.head(h)).squeeze(-1)


def _shared_coords(coords: Tensor) -> bool:
    return coords.shape[0] == 1 or coords.stride(0) == 0 or bool((coords == coords[:1]).all())


@register_model("gasp")
class GASP(INRModel):
    """GASP: hypernetwork generator of INRs + PointConv discriminator (see the module docstring).

    ``decode(z, coords)`` evaluates the generated functions; ``sample(n, coords)`` draws ``z ~ N(0, I)``;
    ``discriminator_loss(batch)`` / ``generator_loss(batch)`` are the two players' objectives, minimised
    alternately by ``inrgen.training.adversarial.AdversarialModule`` (the training procedure that
    ``inrgen train gasp-...`` runs); ``encode`` inverts the generator by optimisation.
    """

    config_class = GASPConfig
    generative = True
    training_procedure = "inrgen.training.adversarial:AdversarialModule"

    def __init__(self, config: GASPConfig) -> None:
        super().__init__(config)
        c = config
        if c.fourier_features > 0:
            self.features: nn.Module | None = GaussianFourierFeatures(
                c.coord_dim, c.fourier_features, c.fourier_sigma, c.fourier_seed
            )
            in_dim = 2 * c.fourier_features
        else:
            self.features = None
            in_dim = c.coord_dim
        self.inr_shapes = param_shapes(in_dim, c.inr_hidden, c.out_channels)
        self.hypernet = HyperNetwork(c.dim_z, c.hypernet_hidden, self.inr_shapes, 1, c.negative_slope)
        self.discriminator = PointConvDiscriminator(
            c.coord_dim,
            c.out_channels,
            c.disc_centroids,
            c.disc_neighbors,
            c.disc_out_channels,
            c.disc_weightnet_hidden,
            c.disc_avgpool_centroids,
            c.disc_avgpool_neighbors,
            batchnorm=c.disc_batchnorm,
            negative_slope=c.disc_negative_slope,
        )

    # ------------------------------------------------------------------ parameters of the two players
    def generator_parameters(self) -> Iterator[nn.Parameter]:
        return self.hypernet.parameters()

    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        return self.discriminator.parameters()

    # ------------------------------------------------------------------ values <-> discriminator inputs
    def to_disc(self, values: Tensor) -> Tensor:
        """Values in [0, 1] -> what the discriminator reads (``2 y - 1`` for ``value_range="symmetric"``)."""
        return 2 * values - 1 if self.config.value_range == "symmetric" else values

    def from_disc(self, t: Tensor) -> Tensor:
        return (t + 1) * 0.5 if self.config.value_range == "symmetric" else t

    # ------------------------------------------------------------------ the generator
    def generator_output(self, z: Tensor, coords: Tensor) -> Tensor:
        """``a_out(f_theta(z)(x))`` in the discriminator's range, ``(b, n, c)``."""
        self.check_coords(coords)
        if z.dim() != 2 or z.shape[1] != self.config.dim_z:
            raise ValueError(f"GASP latents have shape (b, {self.config.dim_z}); got {tuple(z.shape)}")
        if coords.shape[0] != z.shape[0]:
            raise ValueError(f"latent batch {z.shape[0]} != coords batch {coords.shape[0]}")
        p = self.hypernet.weights[0]
        x = coords.to(p.dtype)
        x = x[0] if _shared_coords(x) else x  # shared coordinates: gamma(x) once, one matmul per layer
        feats = x if self.features is None else self.features(x)
        out = mlp(feats, self.hypernet(z.to(p.dtype)), self.config.negative_slope)[:, 0]  # (b, n, c)
        return torch.tanh(out) if self.config.value_range == "symmetric" else torch.sigmoid(out)

    def decode(self, latent: Tensor, coords: Tensor, **kwargs: Any) -> Prediction:
        """Values in [0, 1] of the functions ``z`` at ``coords (b, n, d)``."""
        return Prediction(mean=self.from_disc(self.generator_output(latent, coords)))

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` latents ``z ~ N(0, I)``, ``(n, dim_z)``."""
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        p = self.hypernet.weights[0]
        z = torch.randn(int(n), self.config.dim_z, generator=generator, dtype=p.dtype)
        return z.to(p.device)

    def sample(self, n: int, coords: Tensor, generator: torch.Generator | None = None) -> Prediction:
        """Draw ``n`` functions and evaluate them at ``coords`` (``(N, d)`` or ``(n, N, d)``)."""
        if coords.dim() == 2:
            coords = coords.unsqueeze(0).expand(int(n), -1, -1)
        with torch.no_grad():
            return self.decode(self.sample_latent(n, generator), coords)

    # ------------------------------------------------------------------ inversion (no encoder)
    def encode(self, points: PointSet, steps: int | None = None) -> Tensor:
        """``argmin_z`` of the MSE on the observed points: Adam on ``z`` from 0 (the prior mean).

        The generator's parameters are left untouched (gradients are taken with respect to ``z`` only);
        gradients are enabled inside even under ``torch.no_grad()``. Returns ``z`` detached, ``(b, z)``.
        """
        self.check_points(points)
        steps = self.config.inversion_steps if steps is None else int(steps)
        p = self.hypernet.weights[0]
        z = torch.zeros(points.batch_size, self.config.dim_z, dtype=p.dtype, device=p.device)
        if steps == 0:
            return z
        z.requires_grad_(True)
        opt = torch.optim.Adam([z], lr=self.config.inversion_lr)
        target = points.values.to(p.dtype)
        with torch.enable_grad():
            for _ in range(steps):
                pred = self.decode(z, points.coords).mean
                loss = mse_per_item(pred, target, points.mask).sum()
                (z.grad,) = torch.autograd.grad(loss, z)
                opt.step()
        return z.detach()

    # ------------------------------------------------------------------ the adversarial objective
    def prepare_batch(
        self, batch: PointSet | PointSetPair, generator: torch.Generator | None = None
    ) -> PointSet:
        """The points one adversarial step sees: the batch, or ``train_max_points`` random observed
        points of it, one random subset shared by the batch (GASP's ``max_num_points``)."""
        if isinstance(batch, PointSetPair):
            raise TypeError("GASP trains on point sets (grids, volumes, fields), not context/target pairs")
        self.check_points(batch, "batch")
        m = self.config.train_max_points
        if m is None or int(batch.num_observed().max()) <= m:
            return batch
        scores = torch.rand(batch.num_points, generator=generator).to(batch.device)
        scores = scores.unsqueeze(0).masked_fill(~batch.observed, -1.0)
        return batch.gather(scores.topk(m, dim=1).indices)

    def _r1(self, logits: Tensor, values: Tensor) -> Tensor:
        """``E_b sum_{n,c} (d s_b / d y_bnc)^2`` with ``s = sigmoid(t)`` or ``t`` (``r1_on``)."""
        s = torch.sigmoid(logits) if self.config.r1_on == "probability" else logits
        (g,) = torch.autograd.grad(s.sum(), values, create_graph=True)
        return g.pow(2).flatten(1).sum(1).mean()

    def discriminator_loss(self, batch: PointSet, z: Tensor | None = None) -> dict[str, Tensor]:
        """``L_D`` on real ``batch`` and generated functions ``z`` (default: fresh prior draws) at its
        coordinates; the generated values are detached (this step trains the discriminator only)."""
        b = batch.batch_size
        z = self.sample_latent(b) if z is None else z
        with torch.no_grad():
            fake = self.generator_output(z, batch.coords)
        real = self.to_disc(batch.values.to(fake.dtype))
        r1_on = self.config.r1_weight > 0
        with torch.enable_grad():  # the R1 penalty differentiates D with respect to the real values
            if r1_on:
                real = real.detach().requires_grad_(True)
            t_real = self.discriminator(batch.with_values(real))
            t_fake = self.discriminator(batch.with_values(fake))
            d_real, d_fake = F.softplus(-t_real).mean(), F.softplus(t_fake).mean()
            r1 = self._r1(t_real, real) if r1_on else torch.zeros((), device=real.device)
            if not torch.is_grad_enabled():
                r1 = r1.detach()
        loss = d_real + d_fake + 0.5 * self.config.r1_weight * r1
        return {"d_loss": loss, "d_real": d_real, "d_fake": d_fake, "r1": r1}

    def generator_loss(self, batch: PointSet, z: Tensor | None = None) -> dict[str, Tensor]:
        """``L_G`` (non-saturating) of generated functions ``z`` (default: fresh draws) at the batch's
        coordinates (its mask, too: the discriminator sees the generated values where it sees real ones)."""
        z = self.sample_latent(batch.batch_size) if z is None else z
        fake = self.generator_output(z, batch.coords)
        t = self.discriminator(batch.with_values(fake))
        return {"g_loss": F.softplus(-t).mean()}

    def loss(self, batch: PointSet | PointSetPair, step: int = 0) -> dict[str, Tensor]:
        """Both players' objectives on one batch, for reporting (evaluation); ``loss = L_D + L_G``.

        Training minimises them *alternately* (``inrgen.training.adversarial``), never their sum.
        """
        points = self.prepare_batch(batch)
        d = self.discriminator_loss(points)
        g = self.generator_loss(points)
        out = {"loss": d["d_loss"] + g["g_loss"], **d, **g}
        return out if torch.is_grad_enabled() else {k: v.detach() for k, v in out.items()}

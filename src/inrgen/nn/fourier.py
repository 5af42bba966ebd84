"""Fourier feature encodings of coordinates.

``GaussianFourierFeatures`` (VaMoH Sec. 3.1, Tancik et al. 2020):

    gamma(x) = [cos(2 pi B x), sin(2 pi B x)],   B in R^{m x d},  B_ij ~ N(0, sigma^2)  (fixed buffer)

``LogSpacedFourierFeatures`` (locality-aware INR Eq. 4, IPC / TransINR):

    gamma_sigma(v) = [cos(pi w_j v_i), sin(pi w_j v_i)]  for i = 1..d_in, j = 0..n-1,
    w_j = sigma^(j / (n - 1))   (log-spaced from 1 to sigma; w_0 = 1 when n = 1)

Shapes: ``x`` is ``(..., d)``; outputs are ``(..., 2 m)`` and ``(..., 2 n d)`` respectively.
The log-spaced output is ordered ``[cos(all i, j), sin(all i, j)]`` with ``j`` fastest.

Example:
    >>> import torch
    >>> ff = LogSpacedFourierFeatures(2, num_freqs=4, sigma=8.0)
    >>> ff.freqs.tolist()
    [1.0, 2.0, 4.0, 8.0]
    >>> ff(torch.zeros(5, 2)).shape
    torch.Size([5, 16])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["GaussianFourierFeatures", "LogSpacedFourierFeatures", "log_spaced_freqs"]


class GaussianFourierFeatures(nn.Module):
    """Random Fourier features with a fixed Gaussian matrix ``B`` (``m`` rows, ``sigma`` scale).

    The matrix is drawn from its own generator seeded with ``seed``, so two models built with the same
    arguments have the same features regardless of the global RNG.
    """

    def __init__(
        self, in_dim: int, num_features: int = 128, sigma: float = 2.0, seed: int = 0, learnable: bool = False
    ) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        B = torch.randn(num_features, in_dim, generator=g) * sigma
        if learnable:
            self.B = nn.Parameter(B)
        else:
            self.register_buffer("B", B)
        self.in_dim = in_dim
        self.out_dim = 2 * num_features

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"expected coordinates (..., {self.in_dim}), got {tuple(x.shape)}")
        proj = 2 * math.pi * (x @ self.B.to(x.dtype).t())
        return torch.cat([proj.cos(), proj.sin()], dim=-1)


def log_spaced_freqs(num_freqs: int, sigma: float, dtype: torch.dtype = torch.float64) -> Tensor:
    """``w_j = sigma^(j/(n-1))``, j = 0..n-1 (exactly 1 and sigma at the ends)."""
    if num_freqs < 1:
        raise ValueError(f"num_freqs must be >= 1, got {num_freqs}")
    if sigma < 1:
        raise ValueError(f"the bandwidth sigma must be >= 1, got {sigma}")
    if num_freqs == 1:
        return torch.ones(1, dtype=dtype)
    j = torch.arange(num_freqs, dtype=torch.float64)
    return (float(sigma) ** (j / (num_freqs - 1))).to(dtype)


class LogSpacedFourierFeatures(nn.Module):
    """Deterministic log-spaced Fourier features with bandwidth ``sigma`` (see module docstring)."""

    def __init__(self, in_dim: int, num_freqs: int, sigma: float) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.num_freqs = num_freqs
        self.sigma = float(sigma)
        self.register_buffer("freqs", log_spaced_freqs(num_freqs, sigma, torch.float32))
        self.out_dim = 2 * num_freqs * in_dim

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"expected coordinates (..., {self.in_dim}), got {tuple(x.shape)}")
        freqs: Tensor = self.freqs  # type: ignore[assignment]
        proj = math.pi * x.unsqueeze(-1) * freqs.to(x.dtype)  # (..., d, n)
        proj = proj.flatten(-2)
        return torch.cat([proj.cos(), proj.sin()], dim=-1)

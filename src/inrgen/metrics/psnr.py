"""PSNR as the papers compute it: per image, then averaged.

    PSNR_b = -10 log10( mean_{n,c} (pred_bnc - target_bnc)^2 )      (values in [0, 1], peak 1)

``psnr`` returns the per-item values ``(B,)``; the papers report their mean over the test set. With
``clamp=True`` predictions are clipped to [0, 1] first (the clamped variant); a ``mask`` ``(B, N)``
restricts the mean to known points.

Two definitions are in use, and they differ for multi-channel values:

- ``psnr`` (per value): the squared error is averaged over points *and* channels. This is the usual
  image PSNR, the one IPC, TransINR, Functa and the locality-aware INR paper report (LA-GINR Tables 1-3,
  computed on unclamped predictions as IPC does).
- ``psnr_per_point`` (VaMoH Eq. 19-20): the squared error is *summed* over the ``C`` channels and
  averaged over the points only, ``PSNR = 20 log10(255) - 10 log10(1/N sum_n sum_c (255 e_nc)^2)``.
  That is ``10 log10(C)`` dB below ``psnr`` (4.77 dB for RGB, equal for grayscale); VaMoH's Tables 1, 2,
  4 and 5 use it. ``psnr_per_point = psnr - 10 log10(C)`` exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["psnr", "psnr_per_point", "mse_per_item"]


def mse_per_item(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error per item over all points and channels: ``(B,)``. Inputs ``(B, ...)``."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    err = (pred - target).pow(2)
    if mask is None:
        return err.reshape(err.shape[0], -1).mean(1)
    if err.dim() != 3 or mask.shape != err.shape[:2]:
        raise ValueError(
            f"a mask (B, N) needs values (B, N, C); got {tuple(err.shape)} and {tuple(mask.shape)}"
        )
    m = mask.to(err.dtype).unsqueeze(-1)
    return (err * m).sum((1, 2)) / (m.sum((1, 2)) * err.shape[2]).clamp_min(1)


def psnr(
    pred: Tensor, target: Tensor, mask: Tensor | None = None, clamp: bool = False, eps: float = 1e-10
) -> Tensor:
    """Per-item PSNR in dB for values in [0, 1]: ``(B,)``."""
    if clamp:
        pred = pred.clamp(0, 1)
    return -10 * torch.log10(mse_per_item(pred, target, mask) + eps)


def psnr_per_point(
    pred: Tensor, target: Tensor, mask: Tensor | None = None, clamp: bool = False, eps: float = 1e-10
) -> Tensor:
    """Per-item PSNR of VaMoH Eq. 19-20 (squared error summed over channels, averaged over points):
    ``(B,)``, equal to ``psnr(...) - 10 log10(C)`` for values ``(B, N, C)``."""
    if clamp:
        pred = pred.clamp(0, 1)
    c = pred.shape[-1] if pred.dim() == 3 else 1
    return -10 * torch.log10(mse_per_item(pred, target, mask) * c + eps)

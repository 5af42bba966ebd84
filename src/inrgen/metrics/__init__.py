"""Metrics: PSNR (the papers' per-image definition) and more (SSIM, FID, precision/recall)."""

from inrgen.metrics.psnr import mse_per_item, psnr

__all__ = ["psnr", "mse_per_item"]

"""Metrics: PSNR (the papers' per-image definition), SSIM, FID and improved precision/recall with a
pluggable feature extractor, and timing helpers for benchmarks.

``fid`` / ``precision_recall`` / ``ssim`` import their heavier dependencies (TorchScript Inception,
torchmetrics) only when called.
"""

from inrgen.metrics.fid import InceptionV3Features, fid, fid_from_features, frechet_distance, gaussian_stats
from inrgen.metrics.precision_recall import knn_radii, precision_recall
from inrgen.metrics.psnr import mse_per_item, psnr, psnr_per_point
from inrgen.metrics.ssim import ssim
from inrgen.metrics.timing import Timing, machine_info, num_threads, peak_rss, time_fn

__all__ = [
    "psnr",
    "psnr_per_point",
    "mse_per_item",
    "ssim",
    "fid",
    "fid_from_features",
    "frechet_distance",
    "gaussian_stats",
    "InceptionV3Features",
    "precision_recall",
    "knn_radii",
    "Timing",
    "time_fn",
    "num_threads",
    "peak_rss",
    "machine_info",
]

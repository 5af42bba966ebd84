"""SSIM (Wang et al. 2004), per image, via ``torchmetrics``.

    SSIM(x, y) = mean_w (2 mu_x mu_y + c1)(2 s_xy + c2) / ((mu_x^2 + mu_y^2 + c1)(s_x^2 + s_y^2 + c2))

with Gaussian windows (size 11, sigma 1.5), ``c1 = (0.01 L)^2``, ``c2 = (0.03 L)^2`` and ``L`` the data
range (1 for values in [0, 1]); channels are averaged. ``torchmetrics`` is imported on first use only.

Shapes: ``pred``, ``target`` ``(B, C, H, W)`` (or ``(B, C, D, H, W)`` volumes) -> ``(B,)``.

Example:
    >>> import torch
    >>> x = torch.rand(2, 3, 32, 32)
    >>> ssim(x, x).tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ssim"]


def ssim(
    pred: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    kernel_size: int = 11,
    sigma: float = 1.5,
    clamp: bool = False,
) -> Tensor:
    """Per-image SSIM ``(B,)`` of images ``(B, C, H, W)`` (values in [0, data_range])."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if pred.dim() not in (4, 5):
        raise ValueError(
            f"ssim needs images (B, C, H, W) or volumes (B, C, D, H, W), got {tuple(pred.shape)}; turn a "
            "PointSet into images with PointSet.to_image(values)"
        )
    if min(pred.shape[2:]) < kernel_size:
        raise ValueError(
            f"images of spatial size {tuple(pred.shape[2:])} are smaller than the SSIM window {kernel_size}; "
            "pass a smaller odd kernel_size"
        )
    from torchmetrics.functional.image import structural_similarity_index_measure

    if clamp:
        pred = pred.clamp(0, data_range)
    dtype = torch.promote_types(pred.dtype, torch.float32)
    out = structural_similarity_index_measure(
        pred.to(dtype),
        target.to(dtype),
        gaussian_kernel=True,
        sigma=sigma,
        kernel_size=kernel_size,
        reduction="none",
        data_range=data_range,
    )
    assert isinstance(out, torch.Tensor)
    return out.reshape(pred.shape[0])

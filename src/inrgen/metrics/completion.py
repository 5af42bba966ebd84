"""Completion quality on the hidden points, beside the trivial fills every claim must beat.

VaMoH's conditional tasks (Sec. 4.3, Fig. 9): encode only the kept points of an image, decode every
point. The score is the PSNR on the *hidden* points only; a completion is worth something when it beats

- ``zero``: the hidden points painted black;
- ``mean``: the per-point mean of the training images;
- ``nearest``: the training image closest (squared error) to the item on the kept points.

``completion_masks(shape)`` are the three masks of the demo and the benchmark: the VaMoH in-painting box
hidden (``box``), the left half kept (``half``), the central square of half the side kept (``outpaint``).
PSNRs are per item on values clamped to [0, 1], then averaged (``pooled_psnr``: the squared error pooled
over all items' hidden points, so blank holes predicted blank do not enter as 100 dB).

Example:
    >>> import torch
    >>> train, test = torch.rand(20, 16, 1), torch.rand(3, 16, 1)
    >>> keep = completion_masks((4, 4))["half"]
    >>> sorted(trivial_fills(train, test, keep))
    ['mean', 'nearest', 'zero']
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from inrgen.data.masks import half_mask, outpaint_mask, parse_mask
from inrgen.metrics.psnr import psnr

__all__ = ["COMPLETION_MASKS", "completion_masks", "trivial_fills", "hidden_psnr", "pooled_psnr"]

COMPLETION_MASKS = ("box", "half", "outpaint")


def completion_masks(shape: Sequence[int]) -> dict[str, Tensor]:
    """``(N,)`` keep-masks (True = observed) of the three completion tasks on a 2-D grid ``(H, W)``."""
    h, w = (int(s) for s in shape)
    return {
        "box": parse_mask("box", (h, w)),
        "half": half_mask((h, w), "left"),
        "outpaint": outpaint_mask((h, w), (h // 4, w // 4), (h // 2, w // 2)),
    }


def hidden_psnr(pred: Tensor, truth: Tensor, keep: Tensor) -> Tensor:
    """Per-item PSNR ``(B,)`` on the hidden points (``~keep``, ``(N,)``) of ``pred, truth (B, N, C)``."""
    hidden = (~keep).unsqueeze(0).expand(truth.shape[0], -1)
    return psnr(pred.float(), truth.float(), mask=hidden, clamp=True)


def pooled_psnr(pred: Tensor, truth: Tensor, keep: Tensor) -> float:
    """PSNR of the squared error pooled over every item's hidden points."""
    err = (pred.float().clamp(0, 1) - truth.float())[:, ~keep]
    return float(-10 * torch.log10(err.square().mean() + 1e-10))


def trivial_fills(train: Tensor, test: Tensor, keep: Tensor) -> dict[str, Tensor]:
    """Zero, training-mean and nearest-training-item completions of ``test (B, N, C)`` from ``train
    (M, N, C)`` (the kept points of ``test`` are those of ``keep (N,)``): predictions ``(B, N, C)``."""
    if train.shape[1:] != test.shape[1:]:
        raise ValueError(
            f"train {tuple(train.shape)} and test {tuple(test.shape)} differ in points or channels"
        )
    k = keep.to(train.dtype).view(1, -1, 1)
    tr, te = (train * k).flatten(1), (test * k).flatten(1)
    d = tr.square().sum(1).unsqueeze(0) - 2 * te @ tr.T  # |te - tr|^2 on the kept points, less |te|^2
    mean = train.mean(0, keepdim=True).expand_as(test).clone()
    return {"zero": torch.zeros_like(test), "mean": mean, "nearest": train[d.argmin(1)]}

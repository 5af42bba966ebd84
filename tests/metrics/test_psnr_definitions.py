"""The two PSNR definitions: per value (IPC, LA-GINR) and VaMoH Eq. 19-20 (channels summed)."""

import math

import torch

from inrgen.metrics.psnr import psnr, psnr_per_point


def test_vamoh_per_point_psnr_is_eq_19_20_computed_by_hand():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 10, 3, generator=g), torch.rand(2, 10, 3, generator=g)
    # Eq. 19-20 on 8-bit values: 20 log10(255) - 10 log10(1/N sum_n sum_c (255 (pred - target))^2)
    by_hand = [
        20 * math.log10(255) - 10 * math.log10(float((255 * (pred[b] - target[b])).square().sum()) / 10)
        for b in range(2)
    ]
    torch.testing.assert_close(psnr_per_point(pred, target), torch.tensor(by_hand), rtol=0, atol=1e-4)
    # 10 log10(C) below the per-value PSNR: 4.77 dB for RGB
    gap = psnr(pred, target) - psnr_per_point(pred, target)
    torch.testing.assert_close(gap, torch.full((2,), 10 * math.log10(3)))


def test_the_definitions_agree_for_one_channel_and_respect_masks():
    g = torch.Generator().manual_seed(1)
    pred, target = torch.rand(3, 12, 1, generator=g), torch.rand(3, 12, 1, generator=g)
    mask = torch.rand(3, 12, generator=g) > 0.4
    torch.testing.assert_close(psnr_per_point(pred, target, mask), psnr(pred, target, mask))

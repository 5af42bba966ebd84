"""SSIM (identity, a scikit-image reference) and the timing helpers."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from inrgen.metrics.ssim import ssim
from inrgen.metrics.timing import machine_info, num_threads, peak_rss, time_fn


def test_ssim_of_identical_images_is_one():
    x = torch.rand(3, 3, 24, 24, dtype=torch.float64)
    torch.testing.assert_close(ssim(x, x), torch.ones(3, dtype=torch.float64))


def test_ssim_matches_scikit_image_and_is_symmetric():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 32, 32, generator=g, dtype=torch.float64)
    y = (x + 0.2 * torch.randn(2, 1, 32, 32, generator=g, dtype=torch.float64)).clamp(0, 1)
    ours = ssim(x, y)
    for b in range(2):
        ref = structural_similarity(
            x[b, 0].numpy(), y[b, 0].numpy(), data_range=1.0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False,
        )  # fmt: skip
        assert ours[b].item() == pytest.approx(ref, abs=1e-2)  # border handling differs slightly
    torch.testing.assert_close(ssim(y, x), ours)
    assert (ours < 0.95).all()


def test_ssim_rejects_bad_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        ssim(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 15))
    with pytest.raises(ValueError, match="smaller than the SSIM window"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_time_fn_reports_median_and_spread_of_the_repeats():
    calls = []
    t = time_fn(lambda: (calls.append(1), time.sleep(0.01)), repeats=5, warmup=2)
    assert len(calls) == 7 and len(t.times) == 5
    assert t.min >= 0.01 and t.min <= t.q25 <= t.median <= t.q75 <= t.max
    assert t.median == pytest.approx(float(np.median(t.times)))
    assert t.to_dict()["iqr"] == pytest.approx(t.q75 - t.q25)
    with pytest.raises(ValueError):
        time_fn(lambda: None, repeats=0)


def test_num_threads_sets_and_restores():
    old = torch.get_num_threads()
    with num_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == old


def test_peak_rss_sees_a_large_allocation():
    def alloc():
        x = torch.ones(64 * 2**20 // 4 * 4)  # 256 MiB of float32, touched
        time.sleep(0.05)
        return float(x[-1])

    mem, out = peak_rss(alloc)
    assert out == 1.0
    assert mem["delta_mb"] > 200 and mem["peak_mb"] >= mem["baseline_mb"]


def test_machine_info_names_the_machine():
    info = machine_info()
    assert info["torch"] == torch.__version__ and info["cores"] >= 1

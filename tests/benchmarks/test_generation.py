"""The generation benchmark (VaMoH Tables 1 and 4 at CPU scale) end to end on its tiny profile, and its
pieces: the per-model training procedures switch phase within the budget, the pixel-Gaussian baseline,
the metrics of several sample sets."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import bench_generation as bg
from benchmarks import common
from inrgen.metrics.fid import fid_from_features
from inrgen.metrics.precision_recall import precision_recall
from inrgen.metrics.timing import num_threads


@pytest.fixture(autouse=True)
def _one_thread():
    with num_threads(1):
        yield


def test_tiny_profile_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv(common.TINY_ENV, "1")
    monkeypatch.setattr(bg, "CACHE", tmp_path / "cache")
    r = bg.run(quick=True, out_dir=tmp_path)
    assert r["profile"] == "tiny"
    saved = json.loads((tmp_path / "bench_generation.json").read_text())
    e = saved["datasets"]["MNIST"]
    assert set(e["rows"]) == {"real (held-out)", "VaMoH", "GASP", "Functa", "Gaussian (pixels)"}
    for label in ("VaMoH", "GASP", "Functa", "Gaussian (pixels)"):
        for res in ("x1", "x2"):
            for ref in ("tr", "tst"):
                m = e["rows"][label][res][ref]
                assert len(m["fid"]["values"]) == 5  # five independent sample sets
                assert all(0 <= v <= 1 for v in m["precision"]["values"] + m["recall"]["values"])
                assert m["fid"]["mean"] == pytest.approx(sum(m["fid"]["values"]) / 5)
    for label in ("VaMoH", "GASP", "Functa"):
        assert e["rows"][label]["train"]["steps"] >= 1
    # VaMoH's flow phase and Functa's flow stage started inside the budget
    assert e["rows"]["Functa"]["train"]["switch_step"] is not None
    assert (tmp_path / e["grid_x1"]).is_file() and (tmp_path / e["grid_x2"]).is_file()
    md = (tmp_path / "bench_generation.md").read_text()
    assert "MNIST, x2 (56x56)" in md and "Paper (VaMoH Table 4" in md
    # a second run reuses the cached models
    again = bg.run(quick=True, out_dir=tmp_path)
    assert all(again["datasets"]["MNIST"]["rows"][m]["train"]["cached"] for m in ("VaMoH", "GASP", "Functa"))


def test_train_budget_switches_phases_and_trains_gasp_both_players():
    imgs = common.load_images("mnist", "train", 64)
    for label in ("VaMoH", "Functa", "GASP"):
        model, preset = common.build(bg.MODELS[label])
        before = {k: v.clone() for k, v in model.state_dict().items()}
        stats = bg.train_budget(model, preset, imgs, budget_cpu_s=1.5)
        assert stats["steps"] >= 2
        if label == "Functa":
            assert model.config.flow_start_step == stats["switch_step"] and int(model.flow_steps) >= 1
        if label == "VaMoH":
            assert model.config.warmup_steps == stats["switch_step"]
        if label == "GASP":
            after = model.state_dict()
            for part in ("hypernet.", "discriminator."):
                assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith(part)), part


def test_pixel_gaussian_matches_the_data_moments():
    g = torch.Generator().manual_seed(0)
    data = 0.5 + 0.1 * torch.randn(4000, 1, 3, 3, generator=g) @ torch.randn(3, 3, generator=g)
    gauss = bg.PixelGaussian(data.clamp(0, 1))
    s = gauss.sample(4000, 3, seed=1)
    torch.testing.assert_close(s.mean(0), data.mean(0), atol=0.01, rtol=0)
    assert gauss.sample(2, 6, seed=0).shape == (2, 1, 6, 6)


def test_set_metrics_are_the_per_set_metrics():
    g = torch.Generator().manual_seed(0)
    real = {"tr": torch.randn(50, 4, generator=g), "tst": torch.randn(40, 4, generator=g)}
    sets = [torch.randn(30, 4, generator=g) + 0.3 * i for i in range(3)]
    m = bg.set_metrics(sets, real)
    for ref, feats in real.items():
        fids = [fid_from_features(feats, f) for f in sets]
        assert m[ref]["fid"]["values"] == pytest.approx(fids)
        assert m[ref]["fid"]["std"] == pytest.approx(float(torch.tensor(fids).std()))
        pr = [precision_recall(feats, f, k=3) for f in sets]
        assert m[ref]["recall"]["values"] == pytest.approx([r for _, r in pr])

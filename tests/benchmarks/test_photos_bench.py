"""``benchmarks/bench_photos.py`` end to end on its tiny profile (seconds), and its helpers."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from benchmarks import bench_photos, common
from inrgen.data.datasets import source_available
from inrgen.data.points import PointSet
from inrgen.metrics.psnr import psnr

pytestmark = pytest.mark.skipif(not source_available("photos"), reason="scikit-image is not installed")


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    monkeypatch.setenv(common.TINY_ENV, "1")
    monkeypatch.setattr(bench_photos, "CACHE", tmp_path / "cache")
    return tmp_path


def test_tiny_profile_writes_the_table_the_curves_and_the_locality_maps(tiny):
    out = tiny / "results"
    r = bench_photos.run(True, out, models=["laginr-photos64", "ipc-photos64"], command="tiny test")
    assert r["profile"] == "tiny" and set(r["models"]) == {"locality-aware", "IPC"}
    saved = json.loads((out / "bench_photos.json").read_text())
    assert saved["models"].keys() == r["models"].keys()
    md = (out / "bench_photos.md").read_text()
    assert "`tiny test`" in md and "mean colour" in md
    for name, row in r["models"].items():
        run_ = row["seeds"]["0"]
        assert run_["steps"] >= 1 and run_["cpu_s"] >= r["budget_cpu_s"]
        times = [t for t, _ in run_["curve"]]
        assert times[0] == 0.0 and times == sorted(times) and times[-1] == pytest.approx(run_["cpu_s"])
        assert row["psnr"] == pytest.approx(run_["psnr"]) and row["psnr_clamped"] >= row["psnr"] - 1e-6
        assert 0.1 <= row["locality_top10"] <= 1.0, name
        assert row["above_mean_colour_db"] == pytest.approx(row["psnr"] - r["mean_colour"]["psnr"])
    # IPC reaches its own final PSNR at the latest at the end of its budget
    ipc = r["models"]["IPC"]["seeds"]["0"]
    assert ipc["cpu_s_to_ipc_final"] <= ipc["cpu_s"] + 1e-9
    assert "locality-aware > IPC by >= 1 dB" in r["ordering"]
    for png in ("photos_learning_curve.png", "photos_locality.png"):
        with Image.open(out / png) as img:
            assert img.format == "PNG" and img.width > 300
    assert set(r["locality_figure"]["crops"]) == {"IPC", "locality-aware"}


def test_a_second_run_with_the_same_settings_loads_the_cached_models(tiny):
    kw = {"models": ["ipc-photos64"], "use_cache": True}
    first = bench_photos.run(True, tiny / "a", **kw)
    again = bench_photos.run(True, tiny / "b", **kw)
    a, b = first["models"]["IPC"]["seeds"]["0"], again["models"]["IPC"]["seeds"]["0"]
    assert not a["cached"] and b["cached"]
    assert b["steps"] == a["steps"] and b["curve"] == a["curve"] and b["psnr"] == pytest.approx(a["psnr"])


def test_mean_colour_baseline_is_the_psnr_of_predicting_each_crops_mean_colour():
    x = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    ps = PointSet.from_image(x)
    pred = ps.values.mean(dim=1, keepdim=True).expand_as(ps.values)
    assert torch.allclose(bench_photos.mean_colour_psnr(x), psnr(pred, ps.values), atol=1e-4)


def test_time_to_reach_interpolates_between_checkpoints():
    curve = [(0.0, 10.0), (60.0, 20.0), (120.0, 30.0)]
    assert bench_photos.time_to_reach(curve, 25.0) == pytest.approx(90.0)
    assert bench_photos.time_to_reach(curve, 5.0) == 0.0
    assert bench_photos.time_to_reach(curve, 30.0) == pytest.approx(120.0)
    assert bench_photos.time_to_reach(curve, 31.0) is None

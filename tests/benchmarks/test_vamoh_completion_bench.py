"""bench_vamoh_completion end to end on the tiny profile (4 steps, 8 held-out digits)."""

from __future__ import annotations

import json

import benchmarks.bench_vamoh_completion as B
import pytest
from benchmarks.common import TINY_ENV


def test_tiny_profile_writes_the_completion_table(tmp_path, monkeypatch):
    monkeypatch.setenv(TINY_ENV, "1")
    monkeypatch.setattr(B, "CACHE", tmp_path / "cache")
    res = B.run(True, tmp_path)
    job = res["jobs"]["mnist/preset/demo"]
    assert job["steps"] == 4 and len(res["jobs"]) == 1
    for m in B.MASKS:
        r = job["completion"][m]
        assert r["best_fill"] == max(r["zero"], r["mean"], r["nearest"])
        assert r["margin"] == pytest.approx(r["model"] - r["best_fill"])
    md = (tmp_path / "bench_vamoh_completion.md").read_text()
    assert "## MNIST" in md and "box fills (zero/mean/nearest)" in md
    assert json.loads((tmp_path / "bench_vamoh_completion.json").read_text())["profile"] == "tiny"
    # cached: a second run reads the result instead of training
    again = B.run(True, tmp_path)
    assert again["jobs"]["mnist/preset/demo"]["completion"] == job["completion"]


def test_fills_are_right_on_a_toy_set():
    import torch

    from inrgen.metrics.completion import trivial_fills

    train = torch.tensor([[[0.0], [0.0], [1.0]], [[1.0], [1.0], [0.0]]])  # 2 items, 3 points
    test = torch.tensor([[[0.9], [1.0], [0.2]]])
    keep = torch.tensor([True, True, False])
    f = trivial_fills(train, test, keep)
    assert torch.equal(f["nearest"], train[1:2])  # closest on the kept points
    torch.testing.assert_close(f["mean"], torch.full((1, 3, 1), 0.5))
    assert float(f["zero"].abs().sum()) == 0.0

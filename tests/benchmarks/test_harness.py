"""The benchmark harness end to end on a tiny configuration (timings are not asserted), and its helpers."""

from __future__ import annotations

import json
import math

import pytest
import torch

from benchmarks import common, run
from inrgen.metrics.timing import num_threads


@pytest.fixture(autouse=True)
def _one_thread():
    with num_threads(1):
        yield


def test_harness_runs_end_to_end_on_a_tiny_configuration(tmp_path):
    rc = run.main(["--tiny", "--only", "scaling", "--only", "bench_learned_init", "--out", str(tmp_path)])
    assert rc == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mode"] == "tiny"
    assert [b["name"] for b in summary["benchmarks"]] == ["bench_learned_init", "bench_scaling"]
    assert all(b["status"] == "ok" for b in summary["benchmarks"])
    md = (tmp_path / "SUMMARY.md").read_text()
    assert "Learned Init" in md and "Decoder time vs queries" in md and "torch " + torch.__version__ in md
    # the scaling exponents are the least-squares slopes of the reported medians
    sc = json.loads((tmp_path / "bench_scaling.json").read_text())
    for part in ("encoder", "decoder"):
        for row in sc[part].values():
            assert row["exponent"] == pytest.approx(common.fit_exponent(row["n"], row["median_s"]))
            assert all(t > 0 for t in row["median_s"])
    li = json.loads((tmp_path / "bench_learned_init.json").read_text())["models"]["Learned Init"]
    assert li["steps"] >= 1 and 0 < li["psnr"] < 60 and li["n"] == 8
    assert common.TINY_ENV not in __import__("os").environ  # the runner restored the environment


def test_a_failing_benchmark_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    def broken(quick, out_dir):
        raise RuntimeError("boom")

    def fine(quick, out_dir):
        common.write_outputs(out_dir, "bench_fine", {"quick": quick}, "# fine\n")

    monkeypatch.setattr(run, "discover", lambda folder=run.HERE: ["bench_broken", "bench_fine"])
    monkeypatch.setattr(run, "_load", lambda name: broken if name == "bench_broken" else fine)
    rc = run.main(["--quick", "--out", str(tmp_path)])
    assert rc == 1
    recs = {r["name"]: r for r in json.loads((tmp_path / "summary.json").read_text())["benchmarks"]}
    assert recs["bench_broken"]["status"] == "failed" and "boom" in recs["bench_broken"]["error"]
    assert recs["bench_fine"]["status"] == "ok"
    assert json.loads((tmp_path / "bench_fine.json").read_text()) == {"quick": True}
    assert "# fine" in (tmp_path / "SUMMARY.md").read_text()


def test_rerunning_one_benchmark_keeps_the_others_in_the_summary(tmp_path, monkeypatch):
    def make(name):
        def fn(quick, out_dir):
            common.write_outputs(out_dir, name, {}, f"# table of {name}\n")

        return fn

    monkeypatch.setattr(run, "discover", lambda folder=run.HERE: ["bench_a", "bench_b"])
    monkeypatch.setattr(run, "_load", make)
    assert run.main(["--quick", "--out", str(tmp_path)]) == 0
    assert run.main(["--quick", "--only", "b", "--out", str(tmp_path)]) == 0
    recs = json.loads((tmp_path / "summary.json").read_text())["benchmarks"]
    assert [r["name"] for r in recs] == ["bench_a", "bench_b"]
    assert recs[0]["command"].endswith(f"--quick --out {tmp_path}")
    assert "--only b" in recs[1]["command"]
    md = (tmp_path / "SUMMARY.md").read_text()
    assert "# table of bench_a" in md and "# table of bench_b" in md
    # a run of another mode starts a new summary
    assert run.main(["--tiny", "--only", "a", "--out", str(tmp_path)]) == 0
    assert [r["name"] for r in json.loads((tmp_path / "summary.json").read_text())["benchmarks"]] == [
        "bench_a"
    ]


def test_unknown_benchmark_names_are_rejected_with_the_list():
    with pytest.raises(SystemExit, match="available: .*functa"):
        run.main(["--only", "nosuchbench"])


def test_every_benchmark_module_exposes_run_quick_out_dir():
    names = run.discover()
    assert {"bench_functa", "bench_learned_init", "bench_scaling", "bench_throughput"} <= set(names)
    for name in names:
        run._load(name)  # raises if run(quick, out_dir) is missing


def test_fit_exponent_recovers_a_power_law():
    n = [256, 1024, 4096, 16384]
    assert common.fit_exponent(n, [3e-6 * x**1.5 for x in n]) == pytest.approx(1.5, abs=1e-12)
    assert common.fit_exponent(n, [0.2] * 4) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(common.fit_exponent([10], [1.0]))


def test_training_is_cached_and_reloaded(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "CACHE", tmp_path)
    images = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    model, preset = common.build("learnedinit-mnist-small")
    trained, stats = common.train_cached("li", preset, model, images, 0.2, data="rand8")
    assert not stats["cached"] and stats["steps"] >= 1
    again, stats2 = common.train_cached(
        "li", preset, common.build("learnedinit-mnist-small")[0], images, 0.2, "rand8"
    )
    assert stats2["cached"] and stats2["steps"] == stats["steps"]
    for a, b in zip(trained.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # another budget is another cache entry
    _, stats3 = common.train_cached(
        "li", preset, common.build("learnedinit-mnist-small")[0], images, 0.1, "rand8"
    )
    assert not stats3["cached"]


def test_spread_covers_a_class_sorted_split_evenly():
    assert common.spread(500, 10) == list(range(0, 500, 50))
    assert common.spread(7, None) == common.spread(7, 99) == list(range(7))


def test_md_table():
    assert common.md_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


@pytest.mark.slow
def test_every_benchmark_of_this_suite_runs_tiny(tmp_path):
    rc = run.main(
        ["--tiny", "--only", "functa", "--only", "throughput", "--only", "scaling", "--only", "learned_init",
         "--out", str(tmp_path)]
    )  # fmt: skip
    assert rc == 0
    f = json.loads((tmp_path / "bench_functa.json").read_text())
    for row in f["timing"].values():
        assert row["ratio Functa (10) / VaMoH"] == pytest.approx(
            row["Functa (10)"]["median"] / row["VaMoH"]["median"]
        )


def test_laginr_benchmark_runs_tiny_with_the_table4_orderings(tmp_path, monkeypatch):
    from benchmarks import bench_laginr

    monkeypatch.setenv(common.TINY_ENV, "1")
    r = bench_laginr.run(quick=True, out_dir=tmp_path)
    assert r["profile"] == "tiny" and r["n_test"] == 8
    m = r["models"]
    assert set(bench_laginr.MODELS) | set(bench_laginr.BANDWIDTHS) == set(m)
    assert set(bench_laginr.PAPER_TABLE4) <= set(m)
    for k in bench_laginr.BANDWIDTHS:  # the orderings are what the table says they are
        assert r["ordering"][f"default bands > {k}"] == (m["locality-aware"]["psnr"] > m[k]["psnr"])
    for row in m.values():
        assert row["steps"] >= 1 and row["psnr_clamped"] >= row["psnr"] - 1e-6  # clamping never hurts
        assert 0.0 < row["locality_top10"] <= 1.0
    render = r["render_1024"][0]
    assert render["complete"] and render["points_rendered"] == 64 * 64
    md = (tmp_path / "bench_laginr.md").read_text()
    assert "Bandwidth orderings (LA-GINR Table 4)" in md and "| bands (8, 16), q 4 (low band first) |" in md

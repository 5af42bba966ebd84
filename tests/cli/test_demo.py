"""`inrgen demo` (the main job, `make demo`) on a 2-step budget: every figure and metrics.json are
written, a finished demo is never overwritten, an interrupted one is completed."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from inrgen.cli import main

FIGURES = ["entropy.png", "half.png", "inpainting.png", "outpainting.png", "reconstructions.png",
           "samples-28.png", "samples-64.png", "segmentation.png", "superres-x4.png"]  # fmt: skip


def demo_args(out) -> list[str]:  # a 2-step demo writing into `out`
    return ["demo", "--out", str(out), "--max-steps", "2", "--no-progress", "--threads", "1",
            "data.num_eval=16"]  # fmt: skip


def test_demo_writes_every_output_once(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(demo_args(out)) == 0
    printed = capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["steps"] == 2 and m["num_eval"] == 16 and m["files"] == [*FIGURES, "metrics.json"]
    assert f"held-out PSNR {m['psnr_mean']:.2f}" in printed
    # 8 digits x 28 px drawn 3x larger, 2-px frames: reconstructions has 3 rows, completions 5 (the last the
    # predictive uncertainty), x4 is 112 px
    width = 8 * (84 + 2) + 2
    assert np.asarray(Image.open(out / "reconstructions.png")).shape == (3 * 86 + 2, width, 3)
    assert np.asarray(Image.open(out / "inpainting.png")).shape == (5 * 86 + 2, width, 3)
    # the hidden-pixel PSNR of every completion beside the three trivial fills, on the held-out digits
    table = m["completion"]
    assert table["num_items"] == 16 and not m["pretrained"]
    for mask in ("box", "half", "outpaint"):
        r = table[mask]
        assert r["best_fill"] == max(r["zero"], r["mean"], r["nearest"])
        assert abs(r["margin_db"] - (r["model"] - r["best_fill"])) < 1e-9
        assert f"{r['model']:6.2f} dB | {r['zero']:.2f} / {r['mean']:.2f} / {r['nearest']:.2f}" in printed
    assert np.asarray(Image.open(out / "superres-x4.png")).shape == (2 * 114 + 2, 8 * 114 + 2, 3)
    assert np.asarray(Image.open(out / "samples-64.png")).shape[:2] == (2 * 66 + 2, 8 * 66 + 2)
    assert (out / "run" / "checkpoint" / "model.safetensors").is_file()
    # a finished demo is reported again, not overwritten
    before = (out / "metrics.json").read_bytes()
    assert main(["demo", "--out", str(out), "--max-steps", "2", "--no-progress"]) == 0
    assert "already holds a finished demo" in capsys.readouterr().out
    assert (out / "metrics.json").read_bytes() == before
    # an interrupted demo (trained, figures missing) is completed without training again
    (out / "metrics.json").unlink()
    (out / "half.png").unlink()
    assert main(demo_args(out)) == 0
    assert (out / "half.png").is_file() and json.loads((out / "metrics.json").read_text())["steps"] == 2
    # someone else's folder is never touched
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    assert main(["demo", "--out", str(mine), "--max-steps", "2", "--overwrite"]) != 0
    assert "not written by inrgen" in capsys.readouterr().err


def test_demo_uses_the_shipped_checkpoint_by_default(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-progress", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["pretrained"] and m["steps"] == 10000 and not (out / "run").exists()
    assert "inrgen train vamoh-mnist-small" in m["trained_by"]
    table = m["completion"]
    assert table["num_items"] == 500
    for mask in ("box", "half", "outpaint"):  # the shipped model beats every fill of the hidden pixels
        assert table[mask]["margin_db"] > 0, mask
    assert "over the best fill" in printed and m["files"] == [*FIGURES, "metrics.json"]

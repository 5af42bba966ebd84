"""The VaMoH checkpoint shipped in the package: safetensors only, loadable with no training, and its
held-out numbers (recorded in heldout.json when it was made) re-measured here."""

from __future__ import annotations

import json

import pytest
import torch

import inrgen
from inrgen import pretrained
from inrgen.checkpoint import load_config
from inrgen.configs import get_preset
from inrgen.configs.base import config_to_dict
from inrgen.training.data import build_split
from inrgen.training.demo import completion_table

NAME = "vamoh-mnist-small"


def test_shipped_folder_holds_no_pickles_and_records_its_command():
    folder = pretrained.path(NAME)
    assert sorted(p.name for p in folder.iterdir()) == ["TRAINING.md", "config.json", "heldout.json",
                                                        "model.safetensors"]  # fmt: skip
    assert "inrgen train vamoh-mnist-small" in (folder / "TRAINING.md").read_text()
    with pytest.raises(FileNotFoundError, match="available: .*vamoh-mnist-small"):
        pretrained.path("no-such-model")


def test_shipped_checkpoint_is_the_preset_and_loads_by_name():
    model = inrgen.load(f"pretrained:{NAME}")
    assert config_to_dict(model.config) == config_to_dict(get_preset(NAME).model_config)
    rec = json.loads((pretrained.path(NAME) / "heldout.json").read_text())
    assert load_config(pretrained.path(NAME))["step"] == rec["steps"] == int(model.trained_steps) + 1


@torch.no_grad()
def test_shipped_checkpoint_heldout_numbers():
    rec = json.loads((pretrained.path(NAME) / "heldout.json").read_text())["items_100"]
    torch.set_num_threads(1)
    p = get_preset(NAME)
    model = inrgen.load(f"pretrained:{NAME}")
    test, train = build_split(p.data, "test"), build_split(p.data, "train")
    table = completion_table(model, test, train, 100, p.train.seed)
    assert table["num_items"] == 100
    for key in ("reconstruction_psnr_from_z", "reconstruction_psnr_posterior"):
        assert table[key] == pytest.approx(rec[key], abs=0.02)
    for mask in ("box", "half", "outpaint"):
        for col in ("model", "zero", "mean", "nearest"):
            assert table[mask][col] == pytest.approx(rec[mask][col], abs=0.02), (mask, col)
        # the completion beats every trivial fill of the hidden pixels (issue 10)
        assert table[mask]["model"] > table[mask]["best_fill"], mask

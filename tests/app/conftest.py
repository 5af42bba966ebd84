"""Checkpoints of real CPU presets trained 2 steps, shared by the web demo's tests."""

from __future__ import annotations

import pytest

from inrgen.configs import apply_overrides, get_preset
from inrgen.training import fit

SMALL = ["data.batch_size=4", "data.eval_batch_size=4", "data.num_eval=4", "train.eval_every=0"]


def train_two_steps(preset: str, out) -> str:
    p = apply_overrides(get_preset(preset), SMALL)
    return str(fit(p, out, max_steps=2, progress=False, evaluate=False).checkpoint)


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    return {
        name: train_two_steps(name, root / name)
        for name in ("vamoh-mnist-small", "laginr-mnist-small", "laginr-nvs-small")
    }

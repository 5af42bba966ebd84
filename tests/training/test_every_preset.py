"""Every registered preset trains two steps on CPU at its real architecture, on tiny data of its modality.

Presets are collected from ``inrgen.configs.PRESETS`` when the tests are collected, so a preset added
later is covered without editing this file. Only the data shrink: batch size 2, and where the preset's
source is not on this machine, a few items written in the source's real on-disk format by the matching
synthetic generator (the loader of the real source reads them).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

import inrgen.configs
from inrgen.checkpoint import save_checkpoint
from inrgen.configs.base import config_from_dict, config_to_dict
from inrgen.data import synthetic
from inrgen.data.datasets import SOURCES, source_available
from inrgen.models.base import MODELS, build_model
from inrgen.training import fit

PRESET_NAMES = sorted(inrgen.configs.PRESETS)

# generator options that set how much data is written, and their tiny values
SMALL = {"n": 10, "n_train": 8, "n_test": 2, "n_objects": 6, "n_views": 6, "limit": 12}
# real sources without a synthetic twin of the same loader: the generator that writes their format
TWIN = {"celebahq": "images-synthetic"}
# generator options that make the real format (the learnit ShapeNet renders are 128 x 128)
REAL_FORMAT = {"shapenet-views": {"size": 128}}
# Two CPU steps, measured on the 2-core machine (CPU seconds, one thread): every cpu-sized preset 0.1-1 s,
# the VaMoH paper presets 0.2-12.5 s (vamoh-celebahq64, 137M parameters, the largest). The paper-sized
# presets of the transformer and meta-learning models at 178-1024 px take far longer (ipc-celeba178 42 s,
# ipc-ffhq1024 over 100 s and 6.5 GB, functa-celebahq64 / -chairs / -era5 300-400 s), more than the whole
# suite's budget: they run with `-m slow`.
SLOW_MODELS = {"ipc", "transinr", "locality_aware", "learned_init", "latent_diffusion", "functa"}


def _slow(name: str) -> bool:
    p = inrgen.configs.get_preset(name)
    return not p.cpu_sized and p.model in SLOW_MODELS


def _twin(source: str) -> str | None:
    info = SOURCES[source]
    if source in TWIN:
        return TWIN[source]
    for name, s in SOURCES.items():
        if s.synthetic is not None and s.loader is info.loader:
            return name
    return None


def _generate(source: str, folder: Path, options: dict) -> str:
    info = SOURCES[_twin(source)]
    params = {k: SMALL.get(k, v) for k, v in info.generator_defaults.items()}
    params.update(REAL_FORMAT.get(source, {}))
    if "category" in params and options.get("category"):
        params["category"] = options["category"]  # the learnit layout is per category
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / info.generated_file if info.generated_file else folder
    getattr(synthetic, info.synthetic)(target, **params)
    return str(target)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    made: dict[tuple, str] = {}

    def root_for(source: str, options: dict) -> str:
        key = (source, tuple(sorted((k, str(v)) for k, v in options.items())))
        if key not in made:
            made[key] = _generate(source, tmp_path_factory.mktemp(source), options)
        return made[key]

    return root_for


def tiny(preset, root_for, monkeypatch, tmp_path):
    p = copy.deepcopy(preset)
    p.data.batch_size, p.data.eval_batch_size, p.data.num_eval, p.data.num_workers = 2, 2, 2, 0
    p.train.log_every = 1
    info = SOURCES[p.data.source]
    if info.synthetic is not None:  # a generator source: fewer items, into this test's folder
        p.data.options = {**p.data.options, **{k: SMALL[k] for k in info.generator_defaults if k in SMALL}}
        p.data.root = str(tmp_path / "gen")
    elif p.data.source == "polymnist" and p.data.root is None:  # built from the MNIST digits on first use
        monkeypatch.setenv("INRGEN_CACHE", str(tmp_path / "cache"))
        p.data.options = {**p.data.options, "limit": SMALL["limit"]}
    elif not source_available(p.data.source, p.data.root):
        twin = _twin(p.data.source)
        assert twin is not None, f"no generator writes the format of source {p.data.source!r}"
        p.data.root = root_for(p.data.source, p.data.options)
    mc = p.model_config
    if getattr(mc, "inr_checkpoint", "") is None and not getattr(mc, "inr_pretrain_steps", 0):
        # latent diffusion over a frozen INR needs that INR's checkpoint: an untrained one of its architecture
        cls = MODELS[mc.inr_model]
        save_checkpoint(tmp_path / "inr", cls(config_from_dict(cls.config_class, mc.inr_config)))
        mc.inr_checkpoint = str(tmp_path / "inr")
    return p


def _architecture(config) -> dict:
    d = config_to_dict(config)
    d.pop("inr_checkpoint", None)  # where weights come from, not the architecture
    return d


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if _slow(n) else n for n in PRESET_NAMES]
)
def test_preset_trains_two_steps(name, data_root, monkeypatch, tmp_path):
    preset = inrgen.configs.get_preset(name)
    p = tiny(preset, data_root, monkeypatch, tmp_path)
    torch.manual_seed(p.train.seed)
    model = build_model(p.model, p.model_config)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    # the architecture is the preset's: the data changed, the model config did not
    assert _architecture(p.model_config) == _architecture(preset.model_config)
    kw = {"progress": False, "log": False, "evaluate": False, "checkpoint": False}
    result = fit(p, tmp_path / "run", max_steps=2, model=model, **kw)
    assert result.step == 2
    end = result.model.state_dict()
    assert set(end) == set(start)
    changed = [k for k in end if end[k].is_floating_point() and not torch.equal(end[k], start[k])]
    assert changed, "two optimisation steps changed no parameter"
    assert all(torch.isfinite(v).all() for v in end.values() if v.is_floating_point())

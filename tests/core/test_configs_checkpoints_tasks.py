"""Configs (round trip, overrides), checkpoint folders and the chunked, model-agnostic tasks."""

from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

import inrgen
from inrgen import PointSet, tasks
from inrgen.checkpoint import CheckpointError, load_model, save_checkpoint
from inrgen.configs.base import (
    DataConfig,
    Preset,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
)
from inrgen.models.base import INRModel, Prediction, register_model


@dataclass
class ToyConfig:
    coord_dim: int = 2  # input dimension
    out_channels: int = 1  # output channels
    hidden: int = 16  # width
    sizes: tuple[int, int] = (3, 4)  # a tuple field (JSON list)
    note: str | None = None  # an optional field
    extra: dict = field(default_factory=dict)  # a dict field


@register_model("core-toy")
class Toy(INRModel):
    """latent = mean of observed values; prediction = MLP(coords) + latent (points are independent)."""

    config_class = ToyConfig
    generative = True

    def __init__(self, config):
        super().__init__(config)
        self.net = nn.Sequential(
            nn.Linear(config.coord_dim, config.hidden), nn.Tanh(), nn.Linear(config.hidden, 1)
        )

    def encode(self, points):
        self.check_points(points)
        m = points.observed.unsqueeze(-1).to(points.values.dtype)
        return (points.values * m).sum(1) / m.sum(1)

    def decode(self, latent, coords, values=None):
        self.check_coords(coords)
        out = self.net(coords) + latent.unsqueeze(1)
        return Prediction(mean=out, weights=torch.softmax(torch.cat([out, -out], -1), -1))

    def sample_latent(self, n, generator=None):
        return torch.randn(n, 1, generator=generator)


def test_config_round_trip_and_errors():
    cfg = ToyConfig(hidden=7, sizes=(1, 2), note="x")
    d = config_to_dict(cfg)
    assert d["sizes"] == [1, 2]
    assert config_from_dict(ToyConfig, d) == cfg
    with pytest.raises(KeyError, match="did you mean hidden"):
        config_from_dict(ToyConfig, {"hiden": 3})
    with pytest.raises(TypeError, match="expected int"):
        config_from_dict(ToyConfig, {"hidden": "wide"})


def _preset():
    return Preset("toy", "core-toy", ToyConfig(), DataConfig(source="mnist"), TrainConfig(), paper="none")


def test_overrides_typed_and_suggest_names():
    p = apply_overrides(_preset(), ["model.hidden=32", "train.lr=1e-4", "data.batch_size=8", "sizes=[5, 6]"])
    assert p.model_config.hidden == 32 and p.train.lr == 1e-4 and p.data.batch_size == 8
    assert p.model_config.sizes == (5, 6)
    with pytest.raises(KeyError, match="train.lr"):
        apply_overrides(_preset(), ["train.lrr=1"])
    with pytest.raises(ValueError, match="section.field=value"):
        apply_overrides(_preset(), ["train.lr"])
    assert Preset.from_dict(p.to_dict()).to_dict() == p.to_dict()


def test_checkpoint_round_trip_and_errors(tmp_path):
    torch.manual_seed(0)
    m = Toy(ToyConfig(hidden=5))
    save_checkpoint(tmp_path / "ck", m, extra={"preset": "toy"})
    m2 = inrgen.load(tmp_path / "ck")
    assert isinstance(m2, Toy) and m2.config == m.config
    x = torch.rand(1, 10, 2)
    assert torch.equal(m.net(x), m2.net(x))
    # overwrite keeps a whole checkpoint in place
    m3 = Toy(ToyConfig(hidden=5))
    save_checkpoint(tmp_path / "ck", m3)
    assert torch.equal(load_model(tmp_path / "ck").net(x), m3.net(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no temporary leftovers
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nope")
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(tmp_path / "ck")
    save_checkpoint(tmp_path / "ck2", Toy(ToyConfig(hidden=6)))
    cfg = (tmp_path / "ck2" / "config.json").read_text().replace('"hidden": 6', '"hidden": 9')
    (tmp_path / "ck2" / "config.json").write_text(cfg)
    with pytest.raises(CheckpointError, match="shape"):
        load_model(tmp_path / "ck2")


def test_chunked_decode_equals_full():
    torch.manual_seed(0)
    m = Toy(ToyConfig())
    ps = PointSet.from_image(torch.rand(3, 1, 9, 7))
    lat = m.encode(ps)
    full = tasks.decode_chunked(m, lat, ps.coords)
    for cs in (1, 5, 62, 63, 1000):
        ch = tasks.decode_chunked(m, lat, ps.coords, chunk_size=cs)
        assert torch.allclose(ch.mean, full.mean, atol=1e-6) and torch.allclose(ch.weights, full.weights)
    with pytest.raises(ValueError, match="chunk_size"):
        tasks.decode_chunked(m, lat, ps.coords, chunk_size=0)


def test_tasks_compose_encode_decode():
    torch.manual_seed(0)
    m = Toy(ToyConfig())
    img = torch.rand(2, 1, 6, 6)
    ps = PointSet.from_image(img)
    rec = tasks.reconstruct(m, ps)
    assert torch.allclose(rec.mean, m.decode(m.encode(ps), ps.coords).mean)
    sr, shape = tasks.superresolve(m, ps, 2.5, chunk_size=7)
    assert shape == (15, 15) and sr.mean.shape == (2, 225, 1)
    # completion only sees the kept points: the latent is the mean of the kept values
    keep = torch.zeros(36, dtype=torch.bool)
    keep[:6] = True
    out = tasks.complete(m, ps, keep)
    expected = m.decode(img[:, :, 0].mean(-1), ps.coords).mean
    assert torch.allclose(out.mean, expected, atol=1e-6)
    labels, ent, _ = tasks.segment(m, ps)
    assert labels.shape == (2, 36) and (ent >= 0).all() and (ent <= torch.log(torch.tensor(2.0)) + 1e-6).all()
    g = tasks.generate(m, 3, shape=(4, 5), generator=torch.Generator().manual_seed(1))
    assert g.mean.shape == (3, 20, 1)


def test_model_input_checks():
    m = Toy(ToyConfig())
    with pytest.raises(ValueError, match="1-channel"):
        m.encode(PointSet.from_image(torch.rand(1, 3, 4, 4)))
    with pytest.raises(ValueError, match="2-D coordinates"):
        m.encode(PointSet.from_volume(torch.rand(1, 1, 2, 2, 2)))
    empty = PointSet.from_image(torch.rand(2, 1, 2, 2)).with_mask(torch.tensor([[True] * 4, [False] * 4]))
    with pytest.raises(ValueError, match="no observed point"):
        m.encode(empty)
    with pytest.raises(ValueError, match="regular image or volume grid"):
        tasks.superresolve(m, PointSet(torch.rand(1, 3, 2), torch.rand(1, 3, 1)), 2)

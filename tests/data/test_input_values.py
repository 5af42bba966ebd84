"""Issue 12, item 2: uint8 and 0-255 inputs are converted or refused with what to do, never decoded as is."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from inrgen import PointSet, tasks
from inrgen.models.base import INRModel, Prediction


def test_uint8_images_and_views_are_divided_by_255():
    u8 = torch.tensor([[[0, 51], [204, 255]]], dtype=torch.uint8)
    ps = PointSet.from_image(u8)
    assert ps.values.dtype == torch.float32
    assert torch.allclose(ps.values.flatten(), torch.tensor([0.0, 0.2, 0.8, 1.0]))
    # the same pixels as floats in 0-255 need the range said, and give the same values
    same = PointSet.from_image(u8.double(), value_range=(0, 255))
    assert torch.allclose(same.values.float(), ps.values)
    views = u8.expand(2, 3, 2, 2)  # (V, C, H, W)
    c2w = torch.eye(4).expand(2, 4, 4)
    K = torch.tensor([[2.0, 0, 1], [0, 2.0, 1], [0, 0, 1]])
    pv = PointSet.from_views(views, c2w, K)
    assert pv.values.dtype == torch.float32 and float(pv.values.max()) == 1.0


@pytest.mark.parametrize(
    "image, msg",
    [
        (torch.rand(1, 4, 4) * 255, r"must be in \[0, 1\] but span .*value_range=\(0, 255\)"),
        (torch.rand(1, 4, 4) * 2 - 1, r"value_range=\(-1, 1\)"),
        (torch.rand(1, 4, 4) * 60000, r"65535"),
    ],
)
def test_float_images_outside_unit_range_are_refused_with_the_fix(image, msg):
    with pytest.raises(ValueError, match=msg):
        PointSet.from_image(image)


def test_other_integer_images_need_a_range_and_value_range_rescales():
    img = torch.randint(0, 256, (1, 3, 3), dtype=torch.int64)
    with pytest.raises(TypeError, match=r"int64.*value_range=\(0, 255\)"):
        PointSet.from_image(img)
    ps = PointSet.from_image(img, value_range=(0, 255))
    assert torch.allclose(ps.values.flatten(), img.flatten().float() / 255)
    norm = torch.tensor([[[-1.0, 0.0], [0.5, 1.0]]])
    assert torch.allclose(
        PointSet.from_image(norm, value_range=(-1, 1)).values.flatten(), torch.tensor([0.0, 0.5, 0.75, 1.0])
    )
    with pytest.raises(ValueError, match="leave \\[0, 1\\] after value_range"):
        PointSet.from_image(img, value_range=(0, 100))
    with pytest.raises(ValueError, match="hi > lo"):
        PointSet.from_image(norm, value_range=(1, 1))
    with pytest.raises(TypeError, match="torch.from_numpy"):
        PointSet.from_image(img.numpy())


def test_volumes_keep_occupancy_and_convert_8_bit():
    occ = torch.randint(0, 2, (1, 3, 3, 3), dtype=torch.uint8)
    assert torch.equal(PointSet.from_volume(occ).to_volume(), occ[None].float())
    assert torch.equal(PointSet.from_volume(occ.bool()).to_volume(), occ[None].float())
    grey = torch.tensor([0, 255, 51], dtype=torch.uint8).view(1, 1, 1, 3)
    assert torch.allclose(PointSet.from_volume(grey).values.flatten(), torch.tensor([0.0, 1.0, 0.2]))


def test_nan_pixels_are_ignored_by_the_range_check():
    img = torch.rand(1, 3, 3)
    img[0, 1, 1] = float("nan")
    ps = PointSet.from_image(img)
    assert int(ps.num_observed()) == 8


@dataclass
class _MeanConfig:
    coord_dim: int = 2
    out_channels: int = 1


class _Mean(INRModel):
    """The mean of the observed values everywhere (enough to drive the tasks)."""

    config_class = _MeanConfig

    def __init__(self) -> None:
        super().__init__(_MeanConfig())

    def encode(self, points):
        m = points.observed.unsqueeze(-1).float()
        return (points.values * m).sum(1) / m.sum(1)

    def decode(self, latent, coords, **kwargs):
        return Prediction(mean=latent.unsqueeze(1).expand(-1, coords.shape[1], -1))


@pytest.mark.parametrize("task", ["reconstruct", "superresolve", "complete", "segment"])
def test_tasks_refuse_raw_pixels_put_in_a_pointset_by_hand(task):
    good = PointSet.from_image(torch.rand(1, 1, 4, 4))
    keep = torch.ones(16, dtype=torch.bool)
    args = {"reconstruct": (), "superresolve": (2,), "complete": (keep,), "segment": ()}[task]
    raw8 = good.with_values((good.values * 255).round().to(torch.uint8))
    with pytest.raises(TypeError, match="uint8.*PointSet.from_image"):
        getattr(tasks, task)(_Mean(), raw8, *args)
    raw = good.with_values(good.values * 255)
    with pytest.raises(ValueError, match=r"span .* image values are in \[0, 1\]"):
        getattr(tasks, task)(_Mean(), raw, *args)


def test_as_image_in_one_call_after_superresolve():
    img = torch.rand(2, 1, 4, 6)
    ps = PointSet.from_image(img)
    out = tasks.as_image(*tasks.superresolve(_Mean(), ps, factor=2))
    assert out.shape == (2, 1, 8, 12)
    assert torch.allclose(out, img.mean((2, 3), keepdim=True).expand_as(out))
    rec = tasks.as_image(tasks.reconstruct(_Mean(), ps), ps.grid_shape)
    assert rec.shape == img.shape
    # clamped to what an image holds, unless asked not to
    over = torch.full((1, 4, 1), 1.5)
    assert float(tasks.as_image(over, (2, 2)).max()) == 1.0
    assert float(tasks.as_image(over, (2, 2), clamp=False).max()) == 1.5
    with pytest.raises(ValueError, match="do not fill a grid"):
        tasks.as_image(over, (3, 3))

"""The interface every inrgen model implements, and the `Prediction` it returns.

A model is an *amortiser*: ``encode`` maps observed points to a latent, ``decode`` maps (latent, any
coordinates) to predictions. Every task (reconstruct, super-resolve, complete, generate, novel view) is
a composition of the two (``inrgen.tasks``), so it is written once for all models::

    latent = model.encode(points)            # VaMoH: q(z | points), a Distribution; LA-GINR: tokens
    pred   = model.decode(latent, coords)    # Prediction with .mean (B, N, C)
    losses = model.loss(batch, step)         # dict with "loss" and the reported terms
    pred   = model.sample(n, coords)         # generative models only

A model owns its modules and its loss; it never runs a training loop (``inrgen.training`` does).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from inrgen.data.points import PointSet, PointSetPair

__all__ = ["Prediction", "INRModel", "MODELS", "register_model", "build_model"]


@dataclass
class Prediction:
    """What a decoder says about a function at a set of coordinates.

    mean        (B, N, C)     the predictive mean (mixture mean for mixtures)
    variance    (B, N, C)     the predictive variance, when the model has one
    mode        (B, N, C)     the mean of the most probable mixture component (VaMoH)
    components  (B, N, K, C)  per-component means (mixtures)
    weights     (B, N, K)     mixture weights (prior or posterior, see the model)
    distribution              the full predictive distribution over the points, when available (it is
                              dropped when a decode is chunked: use the tensors above instead)
    """

    mean: Tensor
    variance: Tensor | None = None
    mode: Tensor | None = None
    components: Tensor | None = None
    weights: Tensor | None = None
    distribution: Distribution | None = None

    _TENSORS: ClassVar[tuple[str, ...]] = ("mean", "variance", "mode", "components", "weights")

    @staticmethod
    def cat(parts: list[Prediction], dim: int = 1) -> Prediction:
        """Concatenate chunk predictions along the point dimension (the distribution is dropped)."""
        if len(parts) == 1:
            return parts[0]
        out: dict[str, Any] = {}
        for name in Prediction._TENSORS:
            vals = [getattr(p, name) for p in parts]
            out[name] = None if any(v is None for v in vals) else torch.cat(vals, dim=dim)
        return Prediction(**out)  # type: ignore[arg-type]

    def detach(self) -> Prediction:
        kw: dict[str, Any] = {
            n: (None if getattr(self, n) is None else getattr(self, n).detach()) for n in self._TENSORS
        }
        return Prediction(**kw)

    def entropy(self) -> Tensor:
        """Entropy of the mixture weights per point, ``(B, N)`` (nats); needs ``weights``."""
        if self.weights is None:
            raise ValueError("this prediction has no mixture weights (only mixture models such as VaMoH do)")
        w = self.weights.clamp_min(1e-12)
        return -(w * w.log()).sum(-1)

    def segmentation(self) -> Tensor:
        """Most probable mixture component per point, ``(B, N)`` (long); needs ``weights``."""
        if self.weights is None:
            raise ValueError("this prediction has no mixture weights (only mixture models such as VaMoH do)")
        return self.weights.argmax(-1)


MODELS: dict[str, type[INRModel]] = {}


def register_model(name: str):
    """Class decorator: make a model buildable by name (``build_model``) and loadable from checkpoints."""

    def deco(cls: type[INRModel]) -> type[INRModel]:
        cls.model_name = name
        MODELS[name] = cls
        return cls

    return deco


def build_model(name: str, config: Any) -> INRModel:
    import inrgen.models  # noqa: F401  (registers every model)

    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name](config)


class INRModel(nn.Module):
    """Base class: holds the typed config and checks inputs; subclasses implement the four calls.

    Subclasses set ``config_class`` (a dataclass with at least ``coord_dim`` and ``out_channels``) and
    ``generative``.
    """

    config_class: ClassVar[type] = object
    model_name: ClassVar[str] = ""
    generative: ClassVar[bool] = False

    config: Any

    def __init__(self, config: Any) -> None:
        super().__init__()
        if not dataclasses.is_dataclass(config):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {config!r}")
        self.config = config

    # ------------------------------------------------------------------ the interface
    def encode(self, points: PointSet) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def decode(self, latent: Any, coords: Tensor, **kwargs: Any) -> Prediction:  # pragma: no cover
        raise NotImplementedError

    def loss(self, batch: PointSet | PointSetPair, step: int = 0) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def sample(self, n: int, coords: Tensor, generator: torch.Generator | None = None) -> Prediction:
        raise NotImplementedError(
            f"{type(self).__name__} is not a generative model: it cannot sample without observations "
            "(use a generative model such as VaMoH, or latent diffusion over its latents)"
        )

    # ------------------------------------------------------------------ shared checks
    @property
    def coord_dim(self) -> int:
        return int(self.config.coord_dim)  # type: ignore[union-attr]

    @property
    def out_channels(self) -> int:
        return int(self.config.out_channels)  # type: ignore[union-attr]

    def check_coords(self, coords: Tensor, what: str = "coords") -> None:
        if coords.dim() != 3 or coords.shape[-1] != self.coord_dim:
            raise ValueError(
                f"{type(self).__name__} was built for {self.coord_dim}-D coordinates (B, N, "
                f"{self.coord_dim}); {what} has shape {tuple(coords.shape)}"
            )
        if not torch.isfinite(coords).all():
            raise ValueError(f"{what} contain NaN or inf")

    def check_points(self, points: PointSet, what: str = "points") -> None:
        """Clear errors for a set this model cannot read (dimension, channels, empty items, NaN)."""
        if not isinstance(points, PointSet):
            raise TypeError(f"{what} must be an inrgen.PointSet, got {type(points).__name__}")
        self.check_coords(points.coords, f"{what}.coords")
        if points.channels != self.out_channels:
            raise ValueError(
                f"{type(self).__name__} was trained on {self.out_channels}-channel values; {what} has "
                f"{points.channels} channels (convert the input, e.g. to grayscale or RGB, to match)"
            )
        empty = points.num_observed() == 0
        if empty.any():
            raise ValueError(
                f"{what}: item(s) {empty.nonzero().flatten().tolist()} have no observed point; "
                "every item needs at least one observed value to be encoded"
            )
        points.check_finite()

    # ------------------------------------------------------------------ checkpoints
    def save_pretrained(self, folder, extra: dict[str, Any] | None = None) -> None:
        """Write ``config.json`` + ``model.safetensors`` atomically (see ``inrgen.checkpoint``)."""
        from inrgen.checkpoint import save_checkpoint

        save_checkpoint(folder, self, extra=extra)

    @classmethod
    def from_pretrained(cls, folder, map_location: str | torch.device = "cpu") -> INRModel:
        from inrgen.checkpoint import load_model

        model = load_model(folder, map_location=map_location)
        if cls is not INRModel and not isinstance(model, cls):
            raise TypeError(f"{folder} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def extra_repr(self) -> str:
        names = [f.name for f in fields(self.config)][:6]
        return ", ".join(f"{n}={getattr(self.config, n)!r}" for n in names)

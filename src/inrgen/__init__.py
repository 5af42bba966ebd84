"""inrgen: generalizable and generative implicit neural representations.

A data point is a function ``f: coordinates -> values``. A model maps observed points to a latent
(``encode``) and decodes any coordinates from it (``decode``); every task is a composition of the two.

    >>> import inrgen
    >>> ps = inrgen.PointSet.from_image(torch.rand(1, 1, 28, 28))  # doctest: +SKIP
    >>> model = inrgen.load("checkpoints/vamoh-mnist-small")        # doctest: +SKIP
    >>> pred, shape = inrgen.superresolve(model, ps, factor=4)      # doctest: +SKIP
"""

from inrgen import coords
from inrgen.data.points import PointSet, PointSetPair
from inrgen.models.base import INRModel, Prediction
from inrgen.tasks import complete, decode_chunked, generate, novel_view, reconstruct, segment, superresolve

__version__ = "0.1.0"


def load(folder, map_location="cpu") -> INRModel:
    """Rebuild a trained model from its checkpoint folder (``config.json`` + ``model.safetensors``)."""
    from inrgen.checkpoint import load_model

    return load_model(folder, map_location=map_location)


def __getattr__(name: str):
    # Model classes, e.g. inrgen.VaMoH, imported on first use (keeps `import inrgen` light).
    import inrgen.models as _models

    for cls in _models.MODELS.values():
        if cls.__name__ == name:
            return cls
        if cls.config_class.__name__ == name:
            return cls.config_class
    raise AttributeError(f"module 'inrgen' has no attribute {name!r}")


__all__ = [
    "coords",
    "PointSet",
    "PointSetPair",
    "INRModel",
    "Prediction",
    "load",
    "reconstruct",
    "superresolve",
    "complete",
    "generate",
    "segment",
    "novel_view",
    "decode_chunked",
]

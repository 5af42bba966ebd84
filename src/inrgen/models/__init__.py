"""Models: every module here defines one model and registers it with ``@register_model``."""

import importlib as _importlib
import pkgutil as _pkgutil

from inrgen.models.base import MODELS, INRModel, Prediction, build_model, register_model

for _m in _pkgutil.iter_modules(__path__):
    if _m.name != "base":
        _importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["MODELS", "INRModel", "Prediction", "build_model", "register_model"]

"""Typed configs and named presets (one per paper table row, plus small CPU presets).

Importing this package registers every preset; ``get_preset(name)`` returns a fresh copy.
"""

# Every other module of this package defines presets with @register_preset; import them all.
import importlib as _importlib
import pkgutil as _pkgutil

from inrgen.configs.base import (
    PRESETS,
    DataConfig,
    Preset,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    get_preset,
    register_preset,
)

for _m in _pkgutil.iter_modules(__path__):
    if _m.name != "base":
        _importlib.import_module(f"{__name__}.{_m.name}")

__all__ = [
    "PRESETS",
    "DataConfig",
    "Preset",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "get_preset",
    "register_preset",
]

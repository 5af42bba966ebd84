"""Typed configs: dataclasses to and from JSON-able dicts, ``key=value`` overrides, and named presets.

Every model has a ``XConfig`` dataclass next to it (each field with a one-line comment); a *preset*
bundles a model config with the data and training settings of one paper experiment (one table row) or
one small CPU run. ``inrgen presets`` lists them; ``inrgen train PRESET key=value ...`` overrides any
field by its dotted path (``model.dim_z=32``, ``train.lr=1e-4``, ``data.batch_size=16``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DataConfig",
    "TrainConfig",
    "Preset",
    "PRESETS",
    "register_preset",
    "get_preset",
    "config_to_dict",
    "config_from_dict",
    "apply_overrides",
    "field_paths",
    "SEED_MAX",
]

SEED_MAX = 2**32 - 1  # seeds are unsigned 32-bit (numpy's global seed, Lightning's seed_everything)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _need(ok: bool, key: str, want: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"{key} must be {want}, got {value!r}")


def check_seed(seed: Any, key: str = "--seed") -> int:
    """``seed`` as an int in ``[0, SEED_MAX]``, or a ValueError naming ``key``."""
    _need(_is_int(seed) and 0 <= seed <= SEED_MAX, key, f"an integer in [0, {SEED_MAX}]", seed)
    return int(seed)


@dataclass
class DataConfig:
    """Which data a run reads and how it is batched."""

    source: str = "mnist"  # a data source name (``inrgen datasets`` lists them)
    root: str | None = None  # where the files are (None: the source's default location or generator)
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the source
    batch_size: int = 32  # training items per step (global batch)
    eval_batch_size: int = 64  # items per evaluation step
    num_workers: int = 0  # DataLoader worker processes
    num_eval: int = 256  # held-out items used for evaluation

    def validate(self) -> None:
        """Raise ValueError (naming the ``data.*`` key) for a setting no run can use."""
        for key in ("batch_size", "eval_batch_size", "num_eval"):
            v = getattr(self, key)
            _need(_is_int(v) and v >= 1, f"data.{key}", "an integer >= 1", v)
        _need(_is_int(self.num_workers) and self.num_workers >= 0, "data.num_workers", "an integer >= 0",
              self.num_workers)  # fmt: skip
        _need(isinstance(self.options, dict), "data.options", "a mapping", self.options)


@dataclass
class TrainConfig:
    """Optimisation settings (the model's own schedules, e.g. VaMoH's warm-up, live in its config)."""

    max_steps: int = 1000  # optimisation steps (``--max-steps``)
    lr: float = 1e-3  # Adam(W) learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    warmup_steps: int = 0  # linear learning-rate warm-up
    schedule: str = "constant"  # "constant" | "cosine" after the warm-up
    grad_clip: float | None = None  # clip the gradient norm (None: off)
    seed: int = 0  # global seed (data order, initialisation, sampling)
    log_every: int = 10  # steps between logged losses
    eval_every: int = 500  # steps between held-out evaluations and image grids
    checkpoint_every: int = 500  # steps between checkpoints
    precision: str = "32-true"  # Lightning precision ("bf16-mixed", "16-mixed" on GPU)

    def validate(self) -> None:
        """Raise ValueError (naming the ``train.*`` key) for a setting no run can use."""
        _need(_is_int(self.max_steps) and self.max_steps >= 1, "train.max_steps", "an integer >= 1",
              self.max_steps)  # fmt: skip
        _need(_is_real(self.lr) and self.lr > 0, "train.lr", "a finite number > 0", self.lr)
        _need(_is_real(self.weight_decay) and self.weight_decay >= 0, "train.weight_decay",
              "a finite number >= 0", self.weight_decay)  # fmt: skip
        b = self.betas
        ok = isinstance(b, (tuple, list)) and len(b) == 2 and all(_is_real(x) and 0 <= x < 1 for x in b)
        _need(ok, "train.betas", "two numbers in [0, 1), e.g. [0.9, 0.999]", b)
        _need(_is_int(self.warmup_steps) and self.warmup_steps >= 0, "train.warmup_steps",
              "an integer >= 0", self.warmup_steps)  # fmt: skip
        _need(self.schedule in ("constant", "cosine"), "train.schedule", "'constant' or 'cosine'",
              self.schedule)  # fmt: skip
        _need(self.grad_clip is None or (_is_real(self.grad_clip) and self.grad_clip > 0), "train.grad_clip",
              "a finite number > 0, or null (no clipping)", self.grad_clip)  # fmt: skip
        check_seed(self.seed, "train.seed")
        for key in ("log_every", "checkpoint_every"):
            v = getattr(self, key)
            _need(_is_int(v) and v >= 1, f"train.{key}", "an integer >= 1 (steps)", v)
        _need(_is_int(self.eval_every) and self.eval_every >= 0, "train.eval_every",
              "an integer >= 0 (steps; 0: evaluate only at the end)", self.eval_every)  # fmt: skip


@dataclass
class Preset:
    """One named experiment: model + data + training, and which paper result it reproduces."""

    name: str
    model: str  # model registry name (``inrgen.models.MODELS``)
    model_config: Any  # the model's typed config
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    paper: str = ""  # the table / figure this reproduces ("VaMoH Table 3, PolyMNIST")
    description: str = ""  # one line for ``inrgen presets``
    cpu_sized: bool = False  # trains in minutes on 2 CPU cores

    def validate(self) -> None:
        """Raise ValueError naming the first ``data.*`` / ``train.*`` setting no run can use."""
        self.data.validate()
        self.train.validate()

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.name,
            "model": self.model,
            "model_config": config_to_dict(self.model_config),
            "data": config_to_dict(self.data),
            "train": config_to_dict(self.train),
            "paper": self.paper,
            "description": self.description,
            "cpu_sized": self.cpu_sized,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preset:
        import inrgen.models  # noqa: F401
        from inrgen.models.base import MODELS

        model = d["model"]
        if model not in MODELS:
            raise KeyError(f"unknown model {model!r} in config; known: {', '.join(sorted(MODELS))}")
        return cls(
            name=d.get("preset", "custom"),
            model=model,
            model_config=config_from_dict(MODELS[model].config_class, d["model_config"]),
            data=config_from_dict(DataConfig, d.get("data", {})),
            train=config_from_dict(TrainConfig, d.get("train", {})),
            paper=d.get("paper", ""),
            description=d.get("description", ""),
            cpu_sized=d.get("cpu_sized", False),
        )


PRESETS: dict[str, typing.Callable[[], Preset]] = {}


def register_preset(fn: typing.Callable[[], Preset]) -> typing.Callable[[], Preset]:
    """Decorator for a zero-argument function returning a fresh :class:`Preset` (registered by its name)."""
    p = fn()
    if p.name in PRESETS:
        raise ValueError(f"preset {p.name!r} is registered twice")
    PRESETS[p.name] = fn
    return fn


def get_preset(name: str) -> Preset:
    import inrgen.configs  # noqa: F401  (registers every preset)

    if name not in PRESETS:
        near = difflib.get_close_matches(name, list(PRESETS), n=3)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise KeyError(f"unknown preset {name!r}.{hint} Known presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]()


# ------------------------------------------------------------------------------- (de)serialisation


def config_to_dict(cfg: Any) -> Any:
    """A dataclass (nested) to plain JSON-able Python (tuples become lists)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    return cfg


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if value is None:
        return None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return config_from_dict(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, path)
            except (TypeError, ValueError):
                continue
        raise TypeError(f"{path}: {value!r} does not fit {tp}")
    if origin is tuple and isinstance(value, (list, tuple)):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, path) for v in value)
        if args and len(args) != len(value):
            raise ValueError(f"{path}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(a, v, path) for a, v in zip(args, value)) if args else tuple(value)
    if origin is list and isinstance(value, (list, tuple)):
        return [_coerce(args[0], v, path) if args else v for v in value]
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{path}: {value!r} is not one of {list(args)}")
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise TypeError(f"{path}: expected {tp.__name__}, got {value!r}")
    return value


def config_from_dict(cls: type, d: dict[str, Any], path: str = "") -> Any:
    """Rebuild a (nested) dataclass from :func:`config_to_dict` output; unknown keys are an error."""
    if not isinstance(d, dict):
        raise TypeError(f"{path or cls.__name__}: expected a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(d) - names
    if unknown:
        k = sorted(unknown)[0]
        near = difflib.get_close_matches(k, sorted(names), n=3)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise KeyError(f"{cls.__name__} has no field {(path + '.' if path else '') + k!r}{hint}")
    kw = {k: _coerce(hints[k], v, f"{path}.{k}" if path else k) for k, v in d.items()}
    return cls(**kw)


def field_paths(cfg: Any, prefix: str = "") -> list[str]:
    """Every dotted field path of a (nested) dataclass."""
    out = []
    for f in dataclasses.fields(cfg):
        p = f"{prefix}{f.name}"
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out.extend(field_paths(v, p + "."))
        else:
            out.append(p)
    return out


def _parse_value(text: str) -> Any:
    import yaml

    for conv in (int, float):  # YAML 1.1 reads "1e-4" as a string
        try:
            return conv(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(preset: Preset, overrides: list[str]) -> Preset:
    """Apply ``section.field=value`` overrides (sections: ``model``, ``data``, ``train``).

    Values are parsed as YAML (``1e-4``, ``[64, 64]``, ``true``, ``null``). Unknown keys raise with the
    nearest valid names.
    """
    sections = {"model": "model_config", "data": "data", "train": "train"}
    d = preset.to_dict()
    all_paths = (
        [f"model.{p}" for p in field_paths(preset.model_config)]
        + [f"data.{p}" for p in field_paths(preset.data)]
        + [f"train.{p}" for p in field_paths(preset.train)]
    )
    for ov in overrides:
        if "=" not in ov:
            raise ValueError(f"override {ov!r} must look like section.field=value, e.g. train.lr=1e-4")
        key, text = ov.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        if parts[0] not in sections:
            # allow a bare field name when it is unique across sections
            matches = [p for p in all_paths if p.split(".", 1)[1] == key]
            if len(matches) == 1:
                parts = matches[0].split(".")
        if parts[0] not in sections or key not in all_paths and ".".join(parts) not in all_paths:
            if parts[0] == "data" and len(parts) >= 3 and parts[1] == "options":
                pass
            else:
                near = difflib.get_close_matches(key, all_paths, n=3, cutoff=0.5)
                hint = f" Did you mean {', '.join(near)}?" if near else ""
                raise KeyError(
                    f"unknown config key {key!r}.{hint} (`inrgen presets --fields NAME` lists all)"
                )
        node = d[sections[parts[0]]]
        for p in parts[1:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = _parse_value(text)
    return Preset.from_dict(d)

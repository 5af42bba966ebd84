"""Small CPU checkpoints that ship inside the package, trained by the library's own ``inrgen train``.

Each is a folder ``inrgen/pretrained/<name>/`` with the model's ``config.json``, its weights as
``model.safetensors`` (no pickles) and ``TRAINING.md``: the exact command that trained it, its CPU time
and its held-out numbers (a test re-measures them). Load one with ``inrgen.load("pretrained:<name>")``
(every command-line checkpoint argument accepts the same spelling) or with :func:`path`.

Example:
    >>> sorted(available())  # doctest: +SKIP
    ['vamoh-mnist-small']
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT", "PREFIX", "available", "path", "resolve"]

ROOT = Path(__file__).resolve().parent
PREFIX = "pretrained:"


def available() -> list[str]:
    """Names of the shipped checkpoints."""
    ok = [p for p in ROOT.iterdir() if (p / "config.json").is_file() and (p / "model.safetensors").is_file()]
    return sorted(p.name for p in ok)


def path(name: str) -> Path:
    """The folder of the shipped checkpoint ``name``; a clear error lists the names that exist."""
    folder = ROOT / name
    if not name or "/" in name or not (folder / "config.json").is_file():
        names = ", ".join(available()) or "none"
        raise FileNotFoundError(f"no shipped checkpoint named {name!r}; available: {names}")
    return folder


def resolve(spec) -> Path:
    """``pretrained:<name>`` -> its folder; any other path is returned unchanged (as a Path)."""
    s = str(spec)
    return path(s[len(PREFIX) :]) if s.startswith(PREFIX) else Path(spec)

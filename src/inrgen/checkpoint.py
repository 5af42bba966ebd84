"""Checkpoint folders: ``config.json`` + ``model.safetensors`` (+ ``training_state.pt``).

A folder is written next to its final place under a temporary name and renamed into place only when
every file is complete, so a crash or kill during a write leaves the previous checkpoint intact.
``load_model(folder)`` rebuilds the model from the folder alone.

The one moment a folder is absent is between moving the previous checkpoint aside (to
``.<name>.old-<pid>``) and renaming the new one into place; a process killed exactly then leaves the
previous checkpoint there, and :func:`recover_checkpoint` (called by every load and save) moves it back.
The leftovers of killed writes (``.<name>.tmp-<pid>-*``, and ``.<name>.old-<pid>`` of a process killed
while removing it) are removed by the next save, never those of a process still running.

A write that fails (a full disk, a read-only folder) raises :class:`CheckpointWriteError` naming the
cause; the earlier checkpoint stays. Loading refuses weights that are NaN or infinite (a diverged run)
and, in ``training_state.pt``, anything but tensors and plain Python values (no pickled objects run).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "save_checkpoint",
    "load_model",
    "load_config",
    "recover_checkpoint",
    "resolve_folder",
    "CheckpointError",
    "CheckpointWriteError",
    "load_training_state",
]

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
STATE = "training_state.pt"


class CheckpointError(ValueError):
    """A checkpoint folder that is missing files or does not match its config."""


class CheckpointWriteError(CheckpointError, OSError):
    """A checkpoint that could not be written (the earlier one is kept); the message names the cause."""


def _write_failure(err: BaseException, where: Path) -> str:
    """What made a write into ``where`` fail, in words (full disk, permissions, or the error itself)."""
    text = str(err)
    code = getattr(err, "errno", None)
    full = code in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text or "os error 28" in text
    if not full and ("inline_container" in text or "PytorchStreamWriter" in text):
        try:  # torch's own writer reports a full disk as a position mismatch
            full = shutil.disk_usage(where).free < 64 * 2**20
        except OSError:
            pass
    if full:
        try:
            free = f" ({shutil.disk_usage(where).free / 2**20:.0f} MB free)"
        except OSError:
            free = ""
        return f"the disk is full: no space left on the device holding {where}{free}"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where} is not writable ({os.strerror(code)})"
    return f"{type(err).__name__}: {text}"


def save_checkpoint(
    folder: str | os.PathLike,
    model: torch.nn.Module,
    extra: dict[str, Any] | None = None,
    training_state: dict[str, Any] | None = None,
) -> Path:
    """Atomically write ``folder`` (replacing an earlier checkpoint there only once the new one is whole).

    ``extra`` is merged into config.json (e.g. the preset); ``training_state`` is saved with torch.save
    and must hold only tensors and plain Python (it is read back with ``weights_only=True``).
    """
    from safetensors.torch import save_file

    from inrgen.configs.base import config_to_dict
    from inrgen.training.outputs import fix_modes, remove_stale

    folder = Path(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        why = _write_failure(err, folder.parent)
        raise CheckpointWriteError(f"cannot write the checkpoint {folder}: {why}") from None
    if not os.access(folder.parent, os.W_OK):
        raise PermissionError(f"cannot write a checkpoint into {folder.parent}: the folder is not writable")
    recover_checkpoint(folder)
    remove_stale(folder.parent, folder.name, current=True)  # leftovers of killed writes
    cfg = {
        "model": getattr(model, "model_name", type(model).__name__),
        "model_config": config_to_dict(model.config),
        "format": "inrgen-checkpoint-1",
    }
    if extra:
        cfg.update({k: v for k, v in extra.items() if k not in ("model", "model_config")})
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-{os.getpid()}-", dir=folder.parent))
    try:
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(_untie(state), str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(json.dumps(cfg, indent=2, sort_keys=True))
        if training_state is not None:
            with open(tmp / STATE, "wb") as fh:  # a Python file: a full disk raises ENOSPC, not a torch error
                torch.save(training_state, fh)
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        fix_modes(tmp)
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(folder, old)
        os.replace(tmp, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except Exception as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, CheckpointError):
            raise
        kept = " (the earlier checkpoint there is kept)" if (folder / CONFIG).is_file() else ""
        raise CheckpointWriteError(
            f"cannot write the checkpoint {folder}: {_write_failure(err, folder.parent)}{kept}"
        ) from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _untie(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storage: clone tensors that alias another entry."""
    seen: dict[int, str] = {}
    out = {}
    for k, v in state.items():
        ptr = v.data_ptr() if v.numel() else -id(v)
        out[k] = v.clone() if ptr in seen else v
        seen[ptr] = k
    return out


def recover_checkpoint(folder: str | os.PathLike) -> bool:
    """If ``folder`` is missing because a write was killed while swapping folders, move the previous
    checkpoint (``.<name>.old-<pid>``) back into place. Returns True when it did."""
    folder = Path(folder)
    if folder.exists() or not folder.parent.is_dir():
        return False
    olds = sorted(
        (p for p in folder.parent.glob(f".{folder.name}.old-*") if (p / CONFIG).is_file()),
        key=lambda p: p.stat().st_mtime,
    )
    if not olds:
        return False
    os.replace(olds[-1], folder)
    return True


def resolve_folder(folder: str | os.PathLike) -> Path:
    """``folder``, or the ``checkpoint/`` inside it when ``folder`` is a training run folder
    (``pretrained:<name>``: a checkpoint shipped in the package, :mod:`inrgen.pretrained`)."""
    from inrgen.pretrained import resolve

    folder = resolve(folder)
    if not (folder / CONFIG).is_file() and folder.is_dir():
        recover_checkpoint(folder / "checkpoint")
        if (folder / "checkpoint" / CONFIG).is_file():
            return folder / "checkpoint"
    return folder


def load_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint folder (or of a run folder's ``checkpoint/``), checked."""
    folder = resolve_folder(folder)
    recover_checkpoint(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist (expected a folder with {CONFIG})")
    path = folder / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{folder} is not an inrgen checkpoint: {CONFIG} is missing")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON ({err})") from err
    if "model" not in cfg or "model_config" not in cfg:
        raise CheckpointError(f"{path} lacks the 'model' and 'model_config' entries of an inrgen checkpoint")
    return cfg


def load_model(folder: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Rebuild the model saved in ``folder`` from the folder alone."""
    from safetensors.torch import load_file

    import inrgen.models  # noqa: F401
    from inrgen.configs.base import config_from_dict
    from inrgen.models.base import MODELS

    folder = resolve_folder(folder)
    cfg = load_config(folder)
    name = cfg["model"]
    if name not in MODELS:
        raise CheckpointError(f"{folder}: unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    cls = MODELS[name]
    try:
        config = config_from_dict(cls.config_class, cfg["model_config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{folder}/{CONFIG} does not match {cls.__name__}'s config: {err}") from err
    model = cls(config)
    wpath = folder / WEIGHTS
    if not wpath.is_file():
        raise CheckpointError(f"{folder} is missing {WEIGHTS}")
    try:
        state = load_file(str(wpath), device=str(map_location))
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"{wpath} cannot be read ({err}); the file is corrupt or truncated") from err
    for k, v in model.state_dict().items():
        if k in state and state[k].shape != v.shape:
            raise CheckpointError(
                f"{wpath}: {k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}"
            )
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{wpath} does not match the model in {CONFIG}: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    bad = [n for n, p in model.named_parameters() if p.is_floating_point() and not torch.isfinite(p).all()]
    if bad:
        raise CheckpointError(
            f"{wpath} holds NaN or infinite weights ({len(bad)} tensor(s), e.g. {', '.join(bad[:3])}): the "
            "run diverged before this checkpoint; use an earlier checkpoint, or train again with a lower "
            "train.lr or with train.grad_clip"
        )
    model.eval()
    return model


def _first_line(err: BaseException) -> str:
    """The telling line of a torch.load error (its first line is advice about ``weights_only``)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("Unsupported", "Trying", "WeightsUnpickler error:")) and not ln.endswith(":"):
            return ln
    tell = [ln for ln in lines if not ln.startswith(("Weights only load failed", "Please file", "Check the"))]
    return (tell or lines or [type(err).__name__])[0][:200]


def load_training_state(folder: str | os.PathLike) -> dict[str, Any]:
    """``training_state.pt`` of a checkpoint folder, read with ``weights_only=True`` (tensors and plain
    Python only: a file holding other pickled objects is refused, and none of them runs)."""
    import pickle

    path = Path(folder) / STATE
    if not path.is_file():
        raise CheckpointError(
            f"{folder} has no {STATE}, so it cannot be resumed (it holds weights only); "
            "start a new run instead"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        what = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(err))
        if what is not None or "allowed global" in str(err):
            names = f" (e.g. {what.group(1)})" if what else ""
            raise CheckpointError(
                f"{path} holds pickled Python objects{names} besides tensors and plain values; inrgen does "
                "not load them, for safety (nothing in the file was run). inrgen's trainer never writes such "
                "objects: do not resume from a file you do not trust, or start a new run"
            ) from None
        raise CheckpointError(f"{path} cannot be read ({_first_line(err)}); the file is damaged") from None
    except Exception as err:  # noqa: BLE001 - any other unpickling failure means a damaged file
        raise CheckpointError(f"{path} cannot be read ({_first_line(err)}); the file is damaged") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not the dict inrgen's trainer writes")
    for key in ("step", "optimizer", "rng"):
        if key not in state:
            raise CheckpointError(f"{path} lacks {key!r}: it was not written by inrgen's trainer")
    return state

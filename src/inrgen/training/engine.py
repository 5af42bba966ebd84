"""`fit`: train a preset into a run folder with Lightning, on one CPU/GPU or many (DDP), resumable.

A run folder ``out/`` holds ``checkpoint/`` (the latest checkpoint folder, see ``inrgen.checkpoint``),
``logs/metrics.csv`` and ``logs/tensorboard/`` (loss terms, learning rate, held-out PSNR),
``images/`` (reconstruction and sample grids) and ``eval.json`` (the latest held-out evaluation).

Resuming (``resume=True``) reads ``out/checkpoint``: the preset stored there, the weights, the optimizer,
the step ``N`` and the RNG states. Because the data stream and every item's randomness are functions of
``(seed, step)`` (``inrgen.training.data``) and the learning rate is a function of the step, a run stopped
at step ``N`` and resumed ends, on CPU, with exactly the parameters of an uninterrupted run. ``overrides``
(``train.*`` / ``data.*``) change the stored settings from step ``N`` on; the changes are printed and
recorded in ``config.json`` (``"resumes"``); a model override that changes the model is refused.

What a run promises about the folder:

- everything that can be checked (settings, the data of both splits, the files of an image folder, that
  the data fits the model, the output folder) is checked before the folder is made;
- ``overwrite=True`` trains beside the earlier run (``.RUN.tmp-<pid>-*``) and replaces it only when the
  new run completes: a failure or a kill leaves the earlier run as it was;
- SIGINT / SIGTERM stop after the current step with a checkpoint and raise :class:`TrainInterrupted`
  (a ``KeyboardInterrupt`` holding the :class:`TrainResult`; an interrupted replacement is kept as
  ``RUN.new``, resumable); ``logs/metrics.csv`` is appended and
  flushed row by row and keeps its history across resumes.

Example:
    >>> from inrgen.configs import get_preset
    >>> result = fit(get_preset("vamoh-mnist-small"), "runs/mnist", max_steps=100)  # doctest: +SKIP
    >>> result.eval["psnr_mean"]                                                      # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from inrgen.checkpoint import CheckpointError, load_config, load_model, load_training_state
from inrgen.configs.base import Preset, apply_overrides, config_to_dict
from inrgen.data.points import PointSet, PointSetPair
from inrgen.models.base import INRModel, build_model
from inrgen.training.callbacks import (
    CheckpointCallback,
    EvalCallback,
    RestoreState,
    StepProgressBar,
    StopAtStep,
    StopOnSignal,
)
from inrgen.training.datamodule import INRDataModule
from inrgen.training.module import lr_factor, procedure_for
from inrgen.training.outputs import RunFolder, check_run_dir

__all__ = [
    "fit",
    "TrainResult",
    "TrainError",
    "TrainInterrupted",
    "load_training_state",
    "check_data_fits",
    "global_rank_from_env",
]


class TrainError(ValueError):
    """A run that cannot start: its settings, data or checkpoint do not fit together."""


@dataclass
class TrainResult:
    """What :func:`fit` returns."""

    out: Path  # the run folder
    checkpoint: Path  # out / "checkpoint"
    step: int  # optimisation steps completed
    model: INRModel  # the trained model (eval mode, on the CPU)
    preset: Preset  # the preset that was trained (with overrides)
    eval: dict[str, Any] | None  # the final held-out evaluation (None without evaluation)
    interrupted: str | None = None  # "SIGINT" / "SIGTERM" when a signal stopped the run early
    saved_step: int | None = None  # the step of the latest checkpoint in ``checkpoint``
    changes: dict[str, list[Any]] | None = None  # settings a resume changed: {key: [old, new]}


class TrainInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT / SIGTERM after saving a checkpoint; ``result`` says where and at which
    step (``result.interrupted`` names the signal, ``result.out`` is the folder to resume)."""

    def __init__(self, result: TrainResult) -> None:
        super().__init__(f"interrupted ({result.interrupted}) at step {result.step}")
        self.result = result


def global_rank_from_env() -> int:
    """This process's global rank when a launcher (Lightning, torchrun, SLURM) started it, else 0."""
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key])
    local = int(os.environ.get("LOCAL_RANK", 0))
    node = int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", 0)))
    return node * 1_000_000 + local if node else local


def check_data_fits(model: INRModel, item: PointSet | PointSetPair, preset: Preset) -> None:
    """Raise :class:`TrainError` when the data's coordinates or channels do not fit the model."""
    pts = item.context if isinstance(item, PointSetPair) else item
    try:
        model.check_points(pts, what="the training data")
    except (ValueError, TypeError) as err:
        raise TrainError(
            f"data source {preset.data.source!r} (root {preset.data.root}) does not fit preset "
            f"{preset.name!r}: {err}"
        ) from err


def _strategy(strategy: str, accelerator: str):
    if strategy in ("ddp", "ddp_find_unused_parameters_true"):
        from lightning.pytorch.strategies import DDPStrategy

        # models may leave parameters out of some steps (VaMoH's flow prior during the warm-up)
        return DDPStrategy(find_unused_parameters=True)
    return strategy


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*Experiment logs directory.*")
    warnings.filterwarnings("ignore", message=".*The number of training batches.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=".*batch_size=None.*")
    warnings.filterwarnings("ignore", message=".*overridden `transfer_batch_to_device`.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # frozen sub-models


def _changes(old: Preset, new: Preset) -> dict[str, list[Any]]:
    """``{"train.lr": [old, new], ...}`` for the data / train fields that differ."""
    out: dict[str, list[Any]] = {}
    for sec in ("data", "train"):
        a, b = config_to_dict(getattr(old, sec)), config_to_dict(getattr(new, sec))
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                out[f"{sec}.{k}"] = [a.get(k), b.get(k)]
    return out


def _image_files(data) -> list[Path]:
    """The image files below ``data.root`` when the source reads a folder of images (else none)."""
    from inrgen.data.datasets import SOURCES

    info = SOURCES.get(data.source)
    if info is None or info.modality != "image" or data.root is None:
        return []
    from inrgen.data.datasets.images import IMAGE_EXTENSIONS, list_images

    root = Path(data.root).expanduser()
    if root.is_file():  # an image, or a container (Shapes3D's .h5) its own loader checks
        return [root] if root.name.lower().endswith(IMAGE_EXTENSIONS) else []
    if not root.is_dir():
        return []

    return list_images(root)


def _preflight(preset: Preset, datamodule: INRDataModule, evaluate: bool) -> int:
    """Check the data of both splits before the run folder is made; returns the training set's size."""
    from inrgen.training.outputs import display_images

    where = f"data source {preset.data.source!r} (root {preset.data.root})"
    n_train = len(datamodule.train_set)  # type: ignore[arg-type]
    if preset.data.batch_size > n_train:
        raise TrainError(
            f"data.batch_size={preset.data.batch_size} is larger than the {n_train} training items of "
            f"{where}: every step would repeat items; choose data.batch_size <= {n_train}"
        )
    if not evaluate:
        return n_train
    n_test = len(datamodule.test_set)  # type: ignore[arg-type]
    if n_test == 0:
        raise TrainError(
            f"{where} has no held-out (test) items to evaluate: its {n_train} item(s) all went to training; "
            "a run needs at least one item in each split (e.g. a NetCDF file with more time steps)"
        )
    try:
        item = datamodule.eval_set()[0]
    except (OSError, KeyError, ValueError, TypeError, IndexError) as err:
        raise TrainError(f"cannot load the held-out items of {where}: {err}") from err
    target = item.target if isinstance(item, PointSetPair) else item
    if target.kind == "sphere" and target.grid_shape is not None and min(target.grid_shape) < 2:
        raise TrainError(
            f"{where}: the fields are on a {target.grid_shape[0]} x {target.grid_shape[1]} latitude x "
            "longitude grid; a field on the sphere needs at least 2 latitudes and 2 longitudes"
        )
    try:  # the image grids drawn at every evaluation
        display_images(target.values, target.grid_shape, target.kind, target.meta)
    except (ValueError, TypeError, RuntimeError) as err:
        raise TrainError(f"cannot draw the held-out items of {where}: {err}") from err
    return n_train


def _interrupt_message(err: BaseException, step: int) -> str | None:
    """A one-line reason for an out-of-memory failure (None for other errors)."""
    text = str(err)
    if isinstance(err, torch.OutOfMemoryError) or "can't allocate memory" in text or "out of memory" in text:
        first = text.strip().splitlines()[0][:200] if text.strip() else type(err).__name__
        return f"out of memory at step {step} ({first})"
    return None


def fit(
    preset: Preset,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    overwrite: bool = False,
    max_steps: int | None = None,
    epochs: float | None = None,
    devices: int | str = 1,
    num_nodes: int = 1,
    strategy: str = "auto",
    accelerator: str = "auto",
    precision: str | None = None,
    stop_at: int | None = None,
    progress: bool = True,
    log: bool = True,
    evaluate: bool = True,
    checkpoint: bool = True,
    train_set: Dataset | None = None,
    test_set: Dataset | None = None,
    data_info: dict[str, Any] | None = None,
    model: INRModel | None = None,
    overrides: list[str] | None = None,
) -> TrainResult:
    """Train ``preset`` into the run folder ``out`` (see the module docstring).

    ``max_steps`` / ``epochs`` override ``preset.train.max_steps`` (epochs are converted to steps of the
    global batch). ``stop_at`` stops after that step as if the run were interrupted (the schedule still
    targets ``max_steps``). ``train_set`` / ``test_set`` replace the preset's data sets (already built).
    ``checkpoint=False`` writes no checkpoint (smoke tests). ``model`` trains an already built model of
    the preset (instead of a fresh one). Resuming, ``preset`` names the run and the stored settings are
    used, with ``overrides`` (``key=value``) applied to them. Everything that can be checked is checked
    before the run folder is made.
    """
    import lightning.pytorch as pl

    _quiet_lightning()
    preset = copy.deepcopy(preset)
    out = Path(out)
    rank = global_rank_from_env()
    state = None
    start = 0
    changes: dict[str, list[Any]] = {}
    resumes: list[dict[str, Any]] = []
    if max_steps is not None and epochs is not None:
        raise TrainError("pass either max_steps or epochs, not both")
    if epochs is not None and not (isinstance(epochs, (int, float)) and math.isfinite(epochs) and epochs > 0):
        raise TrainError(f"--epochs must be a finite number > 0, got {epochs}")
    if max_steps is not None and not (isinstance(max_steps, int) and max_steps >= 1):
        raise TrainError(f"--max-steps must be an integer >= 1, got {max_steps}")
    if rank == 0:
        check_run_dir(out, overwrite=overwrite, resume=resume, protect=[preset.data.root])
    if resume:
        ckpt = out / "checkpoint"
        cfg = load_config(ckpt)
        stored = Preset.from_dict(cfg)
        if stored.name != preset.name:
            raise TrainError(
                f"cannot resume {out}: it holds a run of preset {stored.name!r}, not {preset.name!r}"
            )
        try:
            new = apply_overrides(stored, list(overrides)) if overrides else copy.deepcopy(stored)
        except (KeyError, ValueError, TypeError) as err:
            msg = err.args[0] if isinstance(err, KeyError) and err.args else err
            raise TrainError(str(msg)) from err
        if new.model_config != stored.model_config:
            raise TrainError(
                f"cannot resume {out} with a different model configuration; model overrides cannot change "
                "on resume (start a new run with --out elsewhere)"
            )
        if max_steps is not None:
            new.train.max_steps = int(max_steps)
        preset = new  # the stored data/train sections, with the overrides; max_steps / epochs may extend it
        state = load_training_state(ckpt)
        start = int(state["step"])
        resumes = list(cfg.get("resumes") or [])
    elif overrides:
        preset = apply_overrides(preset, list(overrides))
    if max_steps is not None:
        preset.train.max_steps = int(max_steps)
    try:
        preset.validate()
    except ValueError as err:
        raise TrainError(str(err)) from err
    lr_factor(0, preset.train.warmup_steps, preset.train.max_steps, preset.train.schedule)

    from inrgen.training.inputs import InputError, check_image_file

    try:
        for f in _image_files(preset.data):  # a truncated file or a decompression bomb, named, up front
            check_image_file(f)
    except InputError as err:
        raise TrainError(f"data of preset {preset.name!r}: {err}") from err
    dm_kwargs: dict[str, Any] = {"train": train_set, "test": test_set}
    try:
        datamodule = INRDataModule(
            preset.data, preset.train.seed, total_steps=1, start_step=start, **dm_kwargs
        )
    except (OSError, KeyError, ValueError, TypeError) as err:
        if isinstance(err, TrainError):
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        raise TrainError(f"cannot load the data of preset {preset.name!r}: {msg}") from err
    n_train = _preflight(preset, datamodule, evaluate)
    if epochs is not None:
        max_steps = max(1, math.ceil(epochs * n_train / preset.data.batch_size))
        preset.train.max_steps = int(max_steps)
    total = preset.train.max_steps
    if start >= total:
        raise TrainError(
            f"{out}/checkpoint is already at step {start} >= max_steps {total}; pass a larger --max-steps "
            "to train further"
        )
    datamodule.total_steps = total
    if resume:
        changes = _changes(stored, preset)
        if changes:
            resumes.append({"step": start, "changes": changes})
        if rank == 0:
            what = ", ".join(f"{k} {json.dumps(v[0])} -> {json.dumps(v[1])}" for k, v in changes.items())
            how = f", with changed settings: {what}" if what else " with its stored settings"
            print(f"resuming {out} at step {start} of {total}{how}")

    pl.seed_everything(preset.train.seed, workers=True, verbose=False)
    if state is not None:
        if model is not None:
            raise TrainError("pass either resume=True or a model to train, not both")
        model = load_model(out / "checkpoint")
        model.train()
    elif model is not None:
        if getattr(model, "model_name", None) != preset.model or model.config != preset.model_config:
            raise TrainError(f"the model passed to fit is not the model of preset {preset.name!r}")
        model.train()
    else:
        model = build_model(preset.model, preset.model_config)
    check_data_fits(model, datamodule.train_set[0], preset)
    if evaluate:
        item = datamodule.eval_set()[0]
        pts = item.context if isinstance(item, PointSetPair) else item
        try:
            model.check_points(pts, what="the held-out data")
        except (ValueError, TypeError) as err:
            raise TrainError(
                f"the held-out data of preset {preset.name!r} does not fit the model: {err}"
            ) from err

    run = RunFolder(out, overwrite=overwrite, resume=resume)
    work = run.work  # ``out``, or its temporary sibling when replacing an earlier run
    module = procedure_for(model)(model, preset.train, start_step=start, training_state=state)
    if data_info is None and hasattr(datamodule.train_set, "normalization_state"):
        data_info = datamodule.train_set.normalization_state()  # e.g. the statistics of sphere fields
    stop = StopOnSignal()
    callbacks: list[pl.Callback] = [stop]
    ckpt_cb = None
    if checkpoint:
        ckpt_cb = CheckpointCallback(work, preset, preset.train.checkpoint_every, data_info, stop, resumes)
        callbacks.append(ckpt_cb)
    if progress:
        callbacks.append(StepProgressBar())
    eval_cb = None
    if evaluate:
        history = _eval_history(work, start) if resume else None
        eval_cb = EvalCallback(work, datamodule, preset.train.eval_every, history=history, stop=stop)
        callbacks.append(eval_cb)
    if stop_at is not None:
        callbacks.append(StopAtStep(stop_at))
    if state is not None:
        callbacks.append(RestoreState(state))
    loggers: list[Any] = []
    if log:
        from lightning.pytorch.loggers import TensorBoardLogger

        from inrgen.training.loggers import CSVMetrics

        loggers = [
            CSVMetrics(work / "logs" / "metrics.csv", resume_step=start if resume else None),
            TensorBoardLogger(work, name="logs", version="tensorboard", default_hp_metric=False),
        ]
    try:
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=devices,
            num_nodes=num_nodes,
            strategy=_strategy(strategy, accelerator),
            precision=precision or preset.train.precision,
            max_steps=total - start,
            max_epochs=-1,
            gradient_clip_val=preset.train.grad_clip,
            gradient_clip_algorithm="norm",
            logger=loggers if loggers else False,
            callbacks=callbacks,
            enable_checkpointing=False,
            enable_progress_bar=progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            use_distributed_sampler=False,
            log_every_n_steps=max(1, preset.train.log_every),
            default_root_dir=work,
        )
        if preset.data.batch_size % trainer.world_size:
            raise TrainError(
                f"data.batch_size={preset.data.batch_size} (the global batch) must be divisible by the "
                f"{trainer.world_size} processes (devices x nodes)"
            )
    except Exception as err:  # noqa: BLE001 - Lightning's MisconfigurationException is no ValueError
        if isinstance(err, TrainError):
            raise
        raise TrainError(f"cannot set up training: {err}") from err
    if rank == 0:  # launched DDP workers re-run this function: only the first process makes the folder
        run.begin("train", preset=preset.name)

    try:
        with stop.installed():
            trainer.fit(module, datamodule=datamodule)
    except BaseException as err:
        step = module.step
        if stop.signum is not None and not isinstance(err, (FloatingPointError, CheckpointError)):
            pass  # stopped by a signal (Lightning raises on SIGTERM; a second Ctrl-C stops at once)
        else:
            if rank == 0:
                run.abandon()
            if isinstance(err, FloatingPointError):
                raise TrainError(str(err)) from err
            if isinstance(err, CheckpointError):
                raise TrainError(f"{err}; fix that, then resume with --resume") from err
            why = _interrupt_message(err, step) if isinstance(err, Exception) else None
            if why is not None:
                raise TrainError(
                    f"{why}: lower data.batch_size (now {preset.data.batch_size}) or the model's size"
                    + ("; the earlier run is kept unchanged" if run.replacing else "")
                ) from err
            raise
    model.eval().cpu()
    final = eval_cb.latest if eval_cb is not None else None
    saved = ckpt_cb.saved_step if ckpt_cb is not None else None
    if saved is None and resume:
        saved = start
    interrupted = stop.name if stop.signum is not None and module.step < total else None
    if rank == 0:
        where = run.keep_aside() if interrupted else run.finish()
    else:
        where = out
    result = TrainResult(where, where / "checkpoint", module.step, model, preset, final, interrupted, saved,
                         changes or None)  # fmt: skip
    if interrupted:
        raise TrainInterrupted(result)
    return result


def _eval_history(out: Path, step: int) -> list[dict[str, Any]]:
    """The evaluations an earlier run of ``out`` wrote into eval.json, up to ``step``."""
    try:
        hist = json.loads((out / "eval.json").read_text()).get("history", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [h for h in hist if isinstance(h, dict) and int(h.get("step", 1 << 62)) <= step]

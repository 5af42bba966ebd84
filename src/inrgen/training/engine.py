"""`fit`: train a preset into a run folder with Lightning, on one CPU/GPU or many (DDP), resumable.

A run folder ``out/`` holds ``checkpoint/`` (the latest checkpoint folder, see ``inrgen.checkpoint``),
``logs/metrics.csv`` and ``logs/tensorboard/`` (loss terms, learning rate, held-out PSNR),
``images/`` (reconstruction and sample grids) and ``eval.json`` (the latest held-out evaluation).

Resuming (``resume=True``) reads ``out/checkpoint``: the preset stored there, the weights, the optimizer,
the step ``N`` and the RNG states. Because the data stream and every item's randomness are functions of
``(seed, step)`` (``inrgen.training.data``) and the learning rate is a function of the step, a run stopped
at step ``N`` and resumed ends, on CPU, with exactly the parameters of an uninterrupted run.

Example:
    >>> from inrgen.configs import get_preset
    >>> result = fit(get_preset("vamoh-mnist-small"), "runs/mnist", max_steps=100)  # doctest: +SKIP
    >>> result.eval["psnr_mean"]                                                      # doctest: +SKIP
"""

from __future__ import annotations

import copy
import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from inrgen.checkpoint import CheckpointError, load_config, load_model
from inrgen.configs.base import Preset
from inrgen.data.points import PointSet, PointSetPair
from inrgen.models.base import INRModel, build_model
from inrgen.training.callbacks import (
    CheckpointCallback,
    EvalCallback,
    RestoreState,
    StepProgressBar,
    StopAtStep,
)
from inrgen.training.datamodule import INRDataModule
from inrgen.training.module import lr_factor, procedure_for
from inrgen.training.outputs import check_run_dir, prepare_run_dir

__all__ = [
    "fit",
    "TrainResult",
    "TrainError",
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


def global_rank_from_env() -> int:
    """This process's global rank when a launcher (Lightning, torchrun, SLURM) started it, else 0."""
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key])
    local = int(os.environ.get("LOCAL_RANK", 0))
    node = int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", 0)))
    return node * 1_000_000 + local if node else local


def load_training_state(folder: str | os.PathLike) -> dict[str, Any]:
    """``training_state.pt`` of a checkpoint folder, read with ``weights_only=True``."""
    path = Path(folder) / "training_state.pt"
    if not path.is_file():
        raise CheckpointError(
            f"{folder} has no training_state.pt, so it cannot be resumed (it holds weights only); "
            "start a new run instead"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise CheckpointError(f"{path} cannot be read ({err}); the file is damaged") from err
    for key in ("step", "optimizer", "rng"):
        if key not in state:
            raise CheckpointError(f"{path} lacks {key!r}: it was not written by inrgen's trainer")
    return state


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
) -> TrainResult:
    """Train ``preset`` into the run folder ``out`` (see the module docstring).

    ``max_steps`` / ``epochs`` override ``preset.train.max_steps`` (epochs are converted to steps of the
    global batch). ``stop_at`` stops after that step as if the run were interrupted (the schedule still
    targets ``max_steps``). ``train_set`` / ``test_set`` replace the preset's data sets (already built).
    ``checkpoint=False`` writes no checkpoint (smoke tests). ``model`` trains an already built model of
    the preset (instead of a fresh one). Everything that can be checked is checked before training starts.
    """
    import lightning.pytorch as pl

    _quiet_lightning()
    preset = copy.deepcopy(preset)
    out = Path(out)
    rank = global_rank_from_env()
    state = None
    start = 0
    if max_steps is not None and epochs is not None:
        raise TrainError("pass either max_steps or epochs, not both")
    if rank == 0:
        check_run_dir(out, overwrite=overwrite, resume=resume)
    if resume:
        ckpt = out / "checkpoint"
        cfg = load_config(ckpt)
        stored = Preset.from_dict(cfg)
        if stored.name != preset.name:
            raise TrainError(
                f"cannot resume {out}: it holds a run of preset {stored.name!r}, not {preset.name!r}"
            )
        if stored.model_config != preset.model_config:
            raise TrainError(
                f"cannot resume {out} with a different model configuration; model overrides cannot change "
                "on resume (start a new run with --out elsewhere)"
            )
        preset = stored  # the stored data/train sections win; max_steps / epochs may extend the run
        state = load_training_state(ckpt)
        start = int(state["step"])
    lr_factor(0, preset.train.warmup_steps, preset.train.max_steps, preset.train.schedule)

    dm_kwargs: dict[str, Any] = {"train": train_set, "test": test_set}
    try:
        datamodule = INRDataModule(
            preset.data, preset.train.seed, total_steps=1, start_step=start, **dm_kwargs
        )
    except (OSError, KeyError, ValueError, TypeError) as err:
        if isinstance(err, TrainError):
            raise
        raise TrainError(f"cannot load the data of preset {preset.name!r}: {err}") from err
    n_train = len(datamodule.train_set)  # type: ignore[arg-type]
    if epochs is not None:
        if not epochs > 0:
            raise TrainError(f"--epochs must be > 0, got {epochs}")
        max_steps = max(1, math.ceil(epochs * n_train / preset.data.batch_size))
    if max_steps is not None:
        if max_steps < 1:
            raise TrainError(f"--max-steps must be >= 1, got {max_steps}")
        preset.train.max_steps = int(max_steps)
    total = preset.train.max_steps
    if start >= total:
        raise TrainError(
            f"{out}/checkpoint is already at step {start} >= max_steps {total}; pass a larger --max-steps "
            "to train further"
        )
    datamodule.total_steps = total

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

    module = procedure_for(model)(model, preset.train, start_step=start, training_state=state)
    if data_info is None and hasattr(datamodule.train_set, "normalization_state"):
        data_info = datamodule.train_set.normalization_state()  # e.g. the statistics of sphere fields
    callbacks: list[pl.Callback] = []
    if checkpoint:
        callbacks.append(CheckpointCallback(out, preset, preset.train.checkpoint_every, data_info))
    if progress:
        callbacks.append(StepProgressBar())
    eval_cb = None
    if evaluate:
        eval_cb = EvalCallback(out, datamodule, preset.train.eval_every)
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
            CSVMetrics(out / "logs" / "metrics.csv", resume_step=start if resume else None),
            TensorBoardLogger(out, name="logs", version="tensorboard", default_hp_metric=False),
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
            default_root_dir=out,
        )
    except Exception as err:  # noqa: BLE001 - Lightning's MisconfigurationException is no ValueError
        raise TrainError(f"cannot set up training: {err}") from err
    if preset.data.batch_size % trainer.world_size:
        raise TrainError(
            f"data.batch_size={preset.data.batch_size} (the global batch) must be divisible by the "
            f"{trainer.world_size} processes (devices x nodes)"
        )
    if rank == 0:  # launched DDP workers re-run this function: only the first process prepares the folder
        prepare_run_dir(out, overwrite=overwrite, resume=resume, command="train", preset=preset.name)

    trainer.fit(module, datamodule=datamodule)
    model.eval().cpu()
    final = eval_cb.latest if eval_cb is not None else None
    return TrainResult(out, out / "checkpoint", module.step, model, preset, final)

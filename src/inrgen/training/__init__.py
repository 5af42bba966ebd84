"""The training engine: Lightning drives any inrgen model through its own ``loss``.

- :func:`fit` trains a preset into a run folder (checkpoints, logs, image grids, held-out evaluation),
  on one CPU/GPU or many processes (DDP), and resumes exactly;
- :class:`INRLightningModule` / :class:`INRDataModule` are the Lightning pieces;
- :func:`evaluate` computes per-item held-out PSNR (mean and spread) and the loss terms.

Names are imported on first use, so the inference commands (``inrgen reconstruct`` ...) never import
Lightning.

Example:
    >>> from inrgen.configs import get_preset
    >>> from inrgen.training import fit
    >>> result = fit(get_preset("vamoh-mnist-small"), "runs/mnist", max_steps=200)  # doctest: +SKIP
"""

import importlib as _importlib

_WHERE = {
    "fit": "engine",
    "TrainResult": "engine",
    "TrainError": "engine",
    "TrainInterrupted": "engine",
    "load_training_state": "engine",
    "INRLightningModule": "module",
    "lr_factor": "module",
    "INRDataModule": "datamodule",
    "StepSampler": "data",
    "evaluate": "evaluation",
    "format_table": "evaluation",
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(_importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

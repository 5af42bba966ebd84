"""The training engine: Lightning drives any inrgen model through its own ``loss``.

- :func:`fit` trains a preset into a run folder (checkpoints, logs, image grids, held-out evaluation),
  on one CPU/GPU or many processes (DDP), and resumes exactly;
- :class:`INRLightningModule` / :class:`INRDataModule` are the Lightning pieces;
- :func:`evaluate` computes per-item held-out PSNR (mean and spread) and the loss terms.

Example:
    >>> from inrgen.configs import get_preset
    >>> from inrgen.training import fit
    >>> result = fit(get_preset("vamoh-mnist-small"), "runs/mnist", max_steps=200)  # doctest: +SKIP
"""

from inrgen.training.data import INRDataModule, StepSampler
from inrgen.training.engine import TrainError, TrainResult, fit, load_training_state
from inrgen.training.evaluation import evaluate, format_table
from inrgen.training.module import INRLightningModule, lr_factor

__all__ = [
    "fit",
    "TrainResult",
    "TrainError",
    "load_training_state",
    "INRLightningModule",
    "INRDataModule",
    "StepSampler",
    "evaluate",
    "format_table",
    "lr_factor",
]

"""`INRLightningModule`: one LightningModule that trains any inrgen model through its own ``loss``.

At optimisation step ``s`` (0-based, counted over the whole run, resumes included) the module calls
``model.loss(batch, s)``, so the model's own schedules (VaMoH's prior warm-up then flow phase, point
dropout) run inside the model, and minimises ``loss["loss"]`` with AdamW. The learning rate is a pure
function of the step,

    lr(s) = lr * min(1, (s + 1) / warmup)                                     (s < warmup)
    lr(s) = lr                                   "constant"                   (s >= warmup)
    lr(s) = lr * (1 + cos(pi (s - warmup) / (max_steps - warmup))) / 2        "cosine"

so it needs no scheduler state to resume. Gradient-norm clipping (``train.grad_clip``) is done by the
Lightning trainer. Every term the model reports is shown in the progress bar and written to the loggers
every ``train.log_every`` steps under ``train/<term>``.

Example:
    >>> lr_factor(0, warmup_steps=10, max_steps=100, schedule="cosine")
    0.1
    >>> lr_factor(100, warmup_steps=0, max_steps=100, schedule="cosine")
    0.0
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from inrgen.configs.base import TrainConfig
from inrgen.data.points import PointSet, PointSetPair
from inrgen.models.base import INRModel
from inrgen.training.evaluation import move_batch

__all__ = ["INRLightningModule", "lr_factor", "SCHEDULES", "procedure_for"]

SCHEDULES = ("constant", "cosine")


def lr_factor(step: int, warmup_steps: int, max_steps: int, schedule: str) -> float:
    """The multiplier of the base learning rate at step ``step`` (see the module docstring)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"train.schedule must be one of {SCHEDULES}, got {schedule!r}")
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, max_steps - warmup_steps)
    t = min(1.0, max(0.0, (step - warmup_steps) / span))
    return 0.5 * (1.0 + math.cos(math.pi * t))


class INRLightningModule(pl.LightningModule):
    """Drives ``model`` (any registered inrgen model) with the optimisation settings ``train``.

    ``start_step`` is the step a resumed run starts at (the module's step is ``start_step`` plus the
    trainer's ``global_step``); ``training_state`` (from a checkpoint) restores the optimizer.
    """

    def __init__(
        self,
        model: INRModel,
        train: TrainConfig,
        start_step: int = 0,
        training_state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        lr_factor(0, train.warmup_steps, train.max_steps, train.schedule)  # validates the schedule name
        self.model = model
        self.train_cfg = train
        self.start_step = int(start_step)
        self._resume_state = training_state
        self.last_terms: dict[str, float] = {}

    # ------------------------------------------------------------------------------------ steps
    @property
    def step(self) -> int:
        """Optimisation steps completed over the whole run."""
        trainer = self._trainer
        return self.start_step + (int(trainer.global_step) if trainer is not None else 0)

    def current_lr(self, step: int | None = None) -> float:
        t = self.train_cfg
        s = self.step if step is None else step
        return t.lr * lr_factor(s, t.warmup_steps, t.max_steps, t.schedule)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        if isinstance(batch, (PointSet, PointSetPair)):
            return move_batch(batch, device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        lr = self.current_lr()
        for opt in self.trainer.optimizers:
            for group in opt.param_groups:
                group["lr"] = lr

    def training_step(self, batch: PointSet | PointSetPair, batch_idx: int) -> Tensor:
        step = self.step
        terms = self.model.loss(batch, step)
        if "loss" not in terms:
            raise KeyError(f"{type(self.model).__name__}.loss must return a dict with a 'loss' entry")
        loss = terms["loss"]
        self.report(terms, step, batch.batch_size)
        return loss

    def report(self, terms: dict[str, Any], step: int, batch_size: int) -> None:
        """Check ``terms["loss"]`` is finite, show every term in the progress bar and log them every
        ``train.log_every`` steps (also used by the procedures that subclass this module)."""
        loss = terms["loss"]
        if not torch.isfinite(loss.detach()).all():
            raise FloatingPointError(
                f"the loss is {float(loss.detach())} at step {step}: training diverged (lower train.lr, "
                "set train.grad_clip, or check the data range)"
            )
        shown = {
            k: float(v.detach().float().mean()) if isinstance(v, Tensor) else float(v)
            for k, v in terms.items()
        }
        self.last_terms = shown
        for k, v in shown.items():
            self.log(k, v, prog_bar=True, logger=False, on_step=True, on_epoch=False, batch_size=batch_size)
        if (step + 1) % max(1, self.train_cfg.log_every) == 0 and self.trainer.is_global_zero:
            metrics = {f"train/{k}": v for k, v in shown.items()}
            metrics["train/lr"] = self.current_lr(step)
            for lg in self.loggers:
                lg.log_metrics(metrics, step=step + 1)

    # ------------------------------------------------------------------------------ optimiser
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.adamw([p for p in self.model.parameters() if p.requires_grad])

    def adamw(self, params) -> torch.optim.Optimizer:
        """AdamW over ``params`` (a list, or parameter groups) with the run's lr, betas and weight decay,
        restored from the resumed checkpoint's optimizer state when there is one."""
        t = self.train_cfg
        betas = (float(t.betas[0]), float(t.betas[1]))
        opt = torch.optim.AdamW(params, lr=t.lr, betas=betas, weight_decay=t.weight_decay)
        if self._resume_state is not None and "optimizer" in self._resume_state:
            try:
                opt.load_state_dict(self._resume_state["optimizer"])
            except (ValueError, KeyError) as err:
                raise ValueError(
                    f"the checkpoint's optimizer state does not fit this model ({err}); it was written by a "
                    "different model or configuration"
                ) from err
        return opt

    def optimizer_state(self) -> dict[str, Any]:
        return self.trainer.optimizers[0].state_dict()


def procedure_for(model: INRModel) -> type[INRLightningModule]:
    """The LightningModule class that trains ``model``: this module, or the procedure its class names in
    ``training_procedure = "package.module:Class"`` (GASP's alternating adversarial updates,
    ``inrgen.training.adversarial``). A procedure subclasses :class:`INRLightningModule`."""
    path = getattr(model, "training_procedure", None)
    if not path:
        return INRLightningModule
    mod, _, name = str(path).partition(":")
    cls = getattr(importlib.import_module(mod), name)
    if not (isinstance(cls, type) and issubclass(cls, INRLightningModule)):
        raise TypeError(f"{type(model).__name__}.training_procedure {path!r} is not an INRLightningModule")
    return cls

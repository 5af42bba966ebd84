"""`AdversarialModule`: the alternating GAN updates of GASP (Dupont et al. 2022), as a training procedure.

Per batch (released code, ``Trainer.train_batch``), with the model's two objectives
(``inrgen.models.gasp``):

    1. z ~ N(0, I);  minimise  L_D(real batch, G(z))  over the discriminator     (one Adam step)
    2. z' ~ N(0, I); minimise  L_G(G(z'))             over the generator         (one Adam step)

Adam with ``train.betas`` (GASP: (0.5, 0.999)) and no weight decay by default; the generator's learning
rate is ``train.lr`` (with the engine's warm-up / cosine schedule, a pure function of the step) and the
discriminator's ``model.config.disc_lr`` (None: 4 x ``train.lr``, the ratio of every released config)
under the same schedule factor. Both players live in one Adam(W) with two parameter groups: Adam's
statistics are per parameter and a parameter without a gradient is skipped, so this is exactly two
optimisers, and the run's checkpoint (``training_state.pt``) and resume need nothing new.

Lightning counts optimiser steps as training steps under manual optimisation, so the discriminator
step goes through the strategy (mixed precision and gradient hooks apply) without being counted: one
training step is one batch, one update of each player, as ``train.max_steps`` expects. Gradient-norm
clipping (``train.grad_clip``) is not supported (GASP does not clip).

Example:
    >>> from inrgen.configs import get_preset
    >>> from inrgen.training import fit
    >>> fit(get_preset("gasp-mnist-small"), "runs/gasp", max_steps=100)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, cast

import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor

from inrgen.configs.base import TrainConfig
from inrgen.data.points import PointSet, PointSetPair
from inrgen.models.base import INRModel
from inrgen.training.module import INRLightningModule, lr_factor

__all__ = ["AdversarialModule", "DISC_LR_RATIO"]

DISC_LR_RATIO = 4.0  # discriminator / generator learning rate in every released GASP config


class AdversarialModule(INRLightningModule):
    """Trains a model with ``discriminator_loss`` / ``generator_loss`` (GASP) by alternating updates.

    The model provides ``prepare_batch(batch)``, ``discriminator_loss(points)`` (with ``d_loss``),
    ``generator_loss(points)`` (with ``g_loss``), ``generator_parameters()`` and
    ``discriminator_parameters()``.
    """

    def __init__(
        self,
        model: INRModel,
        train: TrainConfig,
        start_step: int = 0,
        training_state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(model, train, start_step=start_step, training_state=training_state)
        for name in ("prepare_batch", "discriminator_loss", "generator_loss", "generator_parameters"):
            if not callable(getattr(model, name, None)):
                raise TypeError(f"{type(model).__name__} has no {name}(): it cannot be trained adversarially")
        if train.grad_clip is not None:
            raise ValueError(
                "train.grad_clip is not supported by the adversarial procedure (GASP does not clip); "
                "set train.grad_clip=null"
            )
        self.automatic_optimization = False

    # ------------------------------------------------------------------------------ learning rates
    def disc_lr(self, step: int | None = None) -> float:
        t = self.train_cfg
        base = self.model.config.disc_lr
        base = DISC_LR_RATIO * t.lr if base is None else float(base)
        s = self.step if step is None else step
        return base * lr_factor(s, t.warmup_steps, t.max_steps, t.schedule)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        for opt in self.trainer.optimizers:
            for group in opt.param_groups:
                group["lr"] = self.disc_lr() if group.get("name") == "discriminator" else self.current_lr()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        t = self.train_cfg
        model: Any = self.model
        gen = [p for p in model.generator_parameters() if p.requires_grad]
        disc = [p for p in model.discriminator_parameters() if p.requires_grad]
        groups = [
            {"params": gen, "lr": t.lr, "name": "generator"},
            {"params": disc, "lr": self.disc_lr(0), "name": "discriminator"},
        ]
        return self.adamw(groups)

    # ------------------------------------------------------------------------------------ one step
    @staticmethod
    def _keep_grads(opt: torch.optim.Optimizer, name: str) -> None:
        """Drop the gradients of every parameter group but ``name`` (Adam then skips them)."""
        for group in opt.param_groups:
            if group.get("name") != name:
                for p in group["params"]:
                    p.grad = None

    def training_step(self, batch: PointSet | PointSetPair, batch_idx: int) -> Tensor:
        step = self.step
        opt = cast(LightningOptimizer, self.optimizers())
        raw = opt.optimizer  # the torch optimizer under Lightning's wrapper
        model: Any = self.model
        points = model.prepare_batch(batch)
        # 1. the discriminator, on real data and a detached generated batch (not counted as a step)
        d = model.discriminator_loss(points)
        opt.zero_grad()
        self.manual_backward(d["d_loss"])
        self._keep_grads(raw, "discriminator")
        self.trainer.strategy.optimizer_step(raw, closure=lambda: None, model=self)
        # 2. the generator, on a fresh generated batch through the updated discriminator (counted)
        g = model.generator_loss(points)
        opt.zero_grad()
        self.manual_backward(g["g_loss"])
        self._keep_grads(raw, "generator")
        opt.step()
        opt.zero_grad()
        terms = {"loss": d["d_loss"].detach() + g["g_loss"].detach(), **d, **g}
        self.report(terms, step, points.batch_size)
        return terms["loss"]

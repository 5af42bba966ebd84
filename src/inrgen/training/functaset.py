"""Generative Functa as a procedure: meta-learn the INR, then fit a flow to the functaset.

Functa (Dupont et al. 2022, Sec. 4) becomes a generative model in two stages; VaMoH compares against
"Functa with a normalizing flow as generator of modulation vectors" (Tables 1 and 4):

    1. steps [0, flow_start_step): meta-learning of the shared INR (the model's meta-SGD loss);
    2. steps [flow_start_step, max_steps): the INR is frozen; the *functaset* (each item's modulations
       fitted by ``functaset_steps`` inner steps) is the data of a maximum-likelihood flow ``p_psi(phi)``.

The stage is a function of the step inside ``Functa.loss``, so a run resumes anywhere. This module adds
what the generic engine does not: the flow has its own learning rate (``model.config.flow_lr``,
constant; None: ``train.lr`` with its schedule), as a second parameter group of the same Adam(W)
(Adam's statistics are per parameter: two groups are two optimisers, and checkpoints need nothing new).

:func:`fit_functaset` returns the functaset of a data set (e.g. to inspect it or to fit another
generative model on it).

Example:
    >>> from inrgen.configs import get_preset
    >>> from inrgen.training import fit
    >>> fit(get_preset("functa-flow-mnist-small"), "runs/functa-flow")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from inrgen.data.points import collate
from inrgen.models.base import INRModel
from inrgen.training.module import INRLightningModule

__all__ = ["FunctaFlowModule", "fit_functaset"]


class FunctaFlowModule(INRLightningModule):
    """The engine's module with the flow's parameters in their own group (learning rate ``flow_lr``)."""

    def _flow_lr(self) -> float:
        lr = self.model.config.flow_lr
        return self.current_lr() if lr is None else float(lr)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        for opt in self.trainer.optimizers:
            for group in opt.param_groups:
                group["lr"] = self._flow_lr() if group.get("name") == "flow" else self.current_lr()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        t = self.train_cfg
        model: Any = self.model
        flow = [p for p in model.prior_parameters() if p.requires_grad]
        ids = {id(p) for p in flow}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        groups = [{"params": rest, "lr": t.lr, "name": "inr"}]
        if flow:
            lr = self.model.config.flow_lr
            groups.append({"params": flow, "lr": t.lr if lr is None else lr, "name": "flow"})
        return self.adamw(groups)


@torch.no_grad()
def fit_functaset(model: INRModel, dataset: Dataset, batch_size: int = 64) -> Tensor:
    """The modulations ``(len(dataset), latent_dim)`` of every item (``model.functaset``), in order."""
    out = []
    device = next(model.parameters()).device
    for s in range(0, len(dataset), batch_size):  # type: ignore[arg-type]
        batch = collate([dataset[i] for i in range(s, min(s + batch_size, len(dataset)))])  # type: ignore[arg-type]
        out.append(model.functaset(batch.to(device)).cpu())  # type: ignore[operator,union-attr]
    return torch.cat(out)

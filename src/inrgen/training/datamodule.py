"""`INRDataModule`: the Lightning data module of a run: the training stream of
:class:`~inrgen.training.data.StepSampler` batches and the held-out evaluation set.

Example:
    >>> dm = INRDataModule(preset.data, seed=0, total_steps=1000)  # doctest: +SKIP
    >>> batch = next(iter(dm.train_dataloader()))                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from inrgen.configs.base import DataConfig
from inrgen.data.points import collate
from inrgen.training.data import EvalDataset, StepSampler, StreamDataset, build_split

__all__ = ["INRDataModule"]


class INRDataModule(pl.LightningDataModule):
    """Training stream and held-out evaluation set of one :class:`DataConfig`.

    ``train`` / ``test`` may be given directly (already built data sets); otherwise they are built
    with :func:`build_split` (``split="train"`` and ``"test"``).
    """

    def __init__(
        self,
        data: DataConfig,
        seed: int,
        total_steps: int,
        start_step: int = 0,
        train: Dataset | None = None,
        test: Dataset | None = None,
    ) -> None:
        super().__init__()
        self.data, self.seed = data, seed
        self.total_steps, self.start_step = total_steps, start_step
        self.train_set = train if train is not None else build_split(data, "train")
        self.test_set = test if test is not None else build_split(data, "test")
        if len(self.train_set) == 0:  # type: ignore[arg-type]
            raise ValueError(f"data source {data.source!r} (root {data.root}) has no training items")

    def _world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._world()
        sampler = StepSampler(
            len(self.train_set),  # type: ignore[arg-type]
            self.data.batch_size,
            self.seed,
            self.start_step,
            self.total_steps - self.start_step,
            rank,
            world,
        )
        return DataLoader(
            StreamDataset(self.train_set, self.seed),
            sampler=sampler,
            batch_size=None,  # the sampler yields whole batches
            num_workers=self.data.num_workers,
            persistent_workers=False,
            # an own generator: creating the iterator must not draw from the global torch generator
            generator=torch.Generator().manual_seed(self.seed),
        )

    def eval_set(self) -> EvalDataset:
        return EvalDataset(self.test_set, self.data.num_eval, self.seed)

    def eval_batches(self, batch_size: int | None = None) -> Iterator[Any]:
        """The held-out items in fixed order, collated in batches of ``data.eval_batch_size``."""
        ds = self.eval_set()
        bs = batch_size or self.data.eval_batch_size
        for s in range(0, len(ds), bs):
            yield collate([ds[i] for i in range(s, min(len(ds), s + bs))])

"""The data side of training: a resumable data stream that does not depend on the number of processes.

The training data is one endless stream of items: epoch ``e`` is the permutation
``randperm(n, seed=mix_seed(seed, e))`` of the ``n`` training items, and the epochs follow each other.
Optimisation step ``s`` reads stream positions ``[s B, (s + 1) B)`` (``B`` = the global batch), and
with ``P`` processes, process ``r`` reads the ``r``-th of ``P`` equal slices of them. So

- the data a step sees is a function of ``(seed, s)`` only: a run resumed at step ``N`` reads exactly
  what an uninterrupted run reads from step ``N`` on;
- ``P`` processes together see the same global batch as one process (DDP averages their gradients, so
  the update equals the single-process one up to float rounding);
- each item is loaded under ``seeded(mix_seed(seed, position))``: its own randomness (e.g. random
  point subsets) depends on its stream position, not on the process or worker that loads it, and
  loading never touches the global generators the model draws from.

Shapes: a batch is a ``PointSet`` ``(B / P, N, d)`` (or a ``PointSetPair`` for novel views).

Example:
    >>> s = StepSampler(n=5, batch_size=4, seed=0, start_step=0, num_steps=3)
    >>> [len(idx) for _, idx in s]
    [4, 4, 4]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Dataset

from inrgen.configs.base import DataConfig
from inrgen.data.points import collate
from inrgen.training.state import mix_seed, seeded

__all__ = ["StepSampler", "StreamDataset", "EvalDataset", "build_split"]

_EVAL_SALT = 0x5EED_E7A1


class StepSampler(torch.utils.data.Sampler):
    """Yields, for steps ``start_step .. start_step + num_steps - 1``, this process's
    ``(positions, indices)``: stream positions and the dataset indices at them (see module docstring)."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        start_step: int,
        num_steps: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if n < 1:
            raise ValueError("the training set is empty: it needs at least one item")
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        if batch_size % world_size:
            raise ValueError(
                f"data.batch_size={batch_size} (the global batch) must be divisible by the number of "
                f"processes ({world_size} = devices x nodes); choose e.g. data.batch_size="
                f"{max(world_size, batch_size // world_size * world_size)}"
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start_step, self.num_steps = start_step, num_steps
        self.rank, self.world_size = rank, world_size
        self._perm: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        return self.num_steps

    def index_at(self, position: int) -> int:
        """The dataset index at a stream position."""
        epoch, offset = divmod(position, self.n)
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
            self._perm = (epoch, torch.randperm(self.n, generator=g))
        return int(self._perm[1][offset])

    def __iter__(self) -> Iterator[tuple[list[int], list[int]]]:
        per = self.batch_size // self.world_size
        for step in range(self.start_step, self.start_step + self.num_steps):
            first = step * self.batch_size + self.rank * per
            positions = list(range(first, first + per))
            yield positions, [self.index_at(p) for p in positions]


class StreamDataset(Dataset):
    """Loads one step's items (a ``(positions, indices)`` pair from :class:`StepSampler`) and collates
    them; each item under ``seeded(mix_seed(seed, position))``."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[Sequence[int], Sequence[int]]):
        positions, indices = key
        items = []
        for p, i in zip(positions, indices):
            with seeded(mix_seed(self.seed, p)):
                items.append(self.dataset[i])
        return collate(items)


class EvalDataset(Dataset):
    """``num`` items of a held-out set, evenly spread over it (item ``j`` is ``floor(j n / num)``: a split
    stored in class order is still sampled across its classes), each loaded under a seed fixed by its
    position, so every evaluation sees the same items with the same random subsets."""

    def __init__(self, dataset: Dataset, num: int, seed: int) -> None:
        self.dataset, self.seed = dataset, seed
        n = len(dataset)  # type: ignore[arg-type]
        self.num = min(int(num), n)
        self.indices = [(j * n) // self.num for j in range(self.num)] if self.num else []

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, j: int):
        with seeded(mix_seed(self.seed, _EVAL_SALT, j)):
            return self.dataset[self.indices[j]]


def build_split(data: DataConfig, split: str) -> Dataset:
    """``build_dataset(data.source, data.root, split, **data.options)`` (the data sets package)."""
    from inrgen.data.datasets import build_dataset

    return build_dataset(data.source, root=data.root, split=split, **data.options)

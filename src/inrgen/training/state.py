"""Random-number-generator state as plain tensors, and the seeding that makes a run resumable.

A training run is exactly resumable on CPU when everything random is a function of the seed and of the
step: the data order (``inrgen.training.data.StepSampler``), each item's own randomness (seeded from
its position in the data stream by :func:`seeded`), and the global generators the model draws from in
its ``loss`` (saved at every checkpoint by :func:`capture_rng` and put back by :func:`restore_rng`).

The captured state holds only tensors, ints and lists, so ``training_state.pt`` loads with
``torch.load(weights_only=True)``:

    torch   uint8 tensor       torch.get_rng_state()
    cuda    list of tensors    torch.cuda.get_rng_state_all() (empty without CUDA)
    numpy   dict               MT19937 key (int64 tensor, 624), pos, has_gauss, cached_gaussian
    python  dict               version, the 625 state words (int64 tensor), gauss_next

Example:
    >>> import torch
    >>> s = capture_rng()
    >>> a = torch.rand(3)
    >>> restore_rng(s)
    >>> torch.equal(a, torch.rand(3))
    True
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng", "restore_rng", "preserve_rng", "seeded", "mix_seed"]

_MASK64 = (1 << 64) - 1


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (SplitMix64 finaliser over the parts): nearby inputs give unrelated
    seeds, so ``mix_seed(seed, epoch)`` and ``mix_seed(seed, epoch + 1)`` start independent streams."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & _MASK64)) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h = h ^ (h >> 31)
    return h & ((1 << 63) - 1)


def capture_rng() -> dict[str, Any]:
    """The state of the torch (CPU and CUDA), numpy and Python global generators, as plain tensors."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    version, words, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {
            "kind": str(kind),
            "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {
            "version": int(version),
            "words": torch.tensor(words, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put back a state from :func:`capture_rng` (CUDA states only where the devices exist)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(int(w) for w in p["words"].tolist()), p["gauss_next"]))


@contextlib.contextmanager
def preserve_rng() -> Iterator[None]:
    """Run a block (evaluation, image grids) without changing any global generator's state."""
    state = capture_rng()
    try:
        yield
    finally:
        restore_rng(state)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch, numpy and Python for a block, then put every global generator back as it was.

    Data items are loaded under ``seeded(mix_seed(run_seed, position))`` so their randomness depends on
    their position in the data stream only, not on how many processes or workers load them.
    """
    cpu, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        torch.default_generator.manual_seed(seed)  # CPU only: CUDA generators are not touched
        np.random.seed(seed % (1 << 32))
        random.seed(seed)
        yield
    finally:
        torch.set_rng_state(cpu)
        np.random.set_state(np_state)
        random.setstate(py_state)

"""Suite-wide settings: one torch thread per test worker (``make test`` runs two workers on two cores;
more threads than cores makes every elementwise op several times slower)."""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

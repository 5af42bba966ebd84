"""Tiny meta-learning problems run fastest single-threaded (and do not oversubscribe cores under xdist)."""

import pytest

from inrgen.metrics.timing import num_threads


@pytest.fixture(autouse=True)
def _one_thread():
    with num_threads(1):
        yield

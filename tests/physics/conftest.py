"""One intra-op thread for the physics tests: their tensors are tiny, and on a busy machine the thread pool's
synchronisation costs milliseconds per op (a 3 x 4 padded convolution measured 31 ms with 2 threads, 0.01 ms with 1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

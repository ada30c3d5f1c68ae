from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import lightning as L
import pytest
import torch
from helpers import quiet_trainer


@pytest.fixture
def make_trainer(tmp_path: Any) -> Callable[..., L.Trainer]:
    """A tiny, quiet CPU Trainer writing into the test's own directory (see :func:`helpers.quiet_trainer`)."""
    return functools.partial(quiet_trainer, tmp_path)


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)

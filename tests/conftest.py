from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import pytest
import torch


@pytest.fixture
def make_trainer(tmp_path: Any) -> Callable[..., L.Trainer]:
    """A tiny, quiet CPU Trainer writing into the test's own directory."""

    def factory(**kwargs: Any) -> L.Trainer:
        options: dict[str, Any] = {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": 1,
            "default_root_dir": tmp_path,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "enable_checkpointing": False,
        }
        options.update(kwargs)
        return L.Trainer(**options)

    return factory


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)

"""EpochMetrics: an epoch starts from empty metrics, whatever an interrupted epoch left behind."""

from __future__ import annotations

import pytest
import torch

from nnlit import MulticlassMLP
from nnlit.models.epoch_metrics import EpochMetrics


@pytest.mark.parametrize(("hook", "stage"), [("on_train_epoch_start", "train"), ("on_validation_epoch_start", "val")])
def test_an_epoch_start_forgets_what_an_interrupted_epoch_left(hook, stage):
    module = MulticlassMLP(in_features=2, num_classes=3)
    buffer = module._step_buffer(stage)
    x, y = torch.randn(8, 2), torch.randint(0, 3, (8,))
    for _ in range(buffer.every + 1):  # one update handed over to the metrics, one step pending
        module.step_loss((x, y), stage)
    assert buffer.loss_metric.update_count == 1 and not buffer.untouched()
    getattr(EpochMetrics(), hook)(None, module)
    assert buffer.untouched()
    module.step_loss((x[:2], y[:2]), stage)
    buffer.flush()
    assert buffer.loss_metric.update_count == 1  # only the new epoch's step
    expected = torch.nn.functional.cross_entropy(module(x[:2]), y[:2])
    torch.testing.assert_close(buffer.loss_metric.compute(), expected)
    accuracy = (module(x[:2]).argmax(dim=1) == y[:2]).float().mean()
    torch.testing.assert_close(buffer.metrics.compute()[f"{stage}/acc"], accuracy)

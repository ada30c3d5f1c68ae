from __future__ import annotations

import pytest
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryF1Score

from nnlit.models.weighted_mean import WeightedMean
from nnlit.speed.step_buffer import StepBuffer


def _binary_metrics():
    return MetricCollection({"acc": BinaryAccuracy(), "f1": BinaryF1Score(), "auroc": BinaryAUROC()})


def test_buffered_updates_equal_per_step_updates():
    g = torch.Generator().manual_seed(0)
    steps = [(torch.rand(n, generator=g), torch.randint(0, 2, (n,), generator=g)) for n in [16] * 70 + [5]]
    direct, direct_loss = _binary_metrics(), WeightedMean()
    buffered, buffered_loss = _binary_metrics(), WeightedMean()
    buffer = StepBuffer(buffered, buffered_loss, every=32)
    for preds, target in steps:
        loss = (preds - target).abs().mean()
        direct.update(preds, target)
        direct_loss.update(loss, len(preds))
        buffer.add(preds, target, loss, len(preds))
    assert buffered_loss.update_count == 2  # 64 of the 71 steps handed over, 7 pending
    buffer.flush()
    expected, got = direct.compute(), buffered.compute()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name])
    torch.testing.assert_close(buffered_loss.compute(), direct_loss.compute())
    rows = torch.tensor([len(p) for p, _ in steps], dtype=torch.float32)
    losses = torch.stack([(p - t).abs().mean() for p, t in steps])
    torch.testing.assert_close(buffered_loss.compute(), (losses * rows).sum() / rows.sum())


def test_clear_drops_pending_steps():
    metrics, loss = _binary_metrics(), WeightedMean()
    buffer = StepBuffer(metrics, loss)
    buffer.add(torch.tensor([0.9]), torch.tensor([1]), torch.tensor(0.1), 1)
    buffer.clear()
    buffer.flush()
    assert loss.update_count == 0


@pytest.mark.parametrize("every", [0, -1, 1.5, True])
def test_bad_every(every):
    with pytest.raises(ValueError, match="every"):
        StepBuffer(_binary_metrics(), WeightedMean(), every=every)


def test_untouched_until_a_step_is_added_and_again_after_a_reset():
    metrics, loss = _binary_metrics(), WeightedMean()
    buffer = StepBuffer(metrics, loss, every=2)
    assert buffer.untouched()
    buffer.add(torch.tensor([0.9]), torch.tensor([1]), torch.tensor(0.1), 1)
    assert not buffer.untouched()  # pending
    buffer.flush()
    assert not buffer.untouched()  # handed to the metrics
    loss.reset()
    assert not buffer.untouched()  # the metrics still hold the step
    metrics.reset()
    assert buffer.untouched()
    metrics.update(torch.tensor([0.2]), torch.tensor([0]))  # a metric updated directly, not through the buffer
    assert not buffer.untouched()

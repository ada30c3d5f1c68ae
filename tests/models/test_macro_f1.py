"""``MacroF1`` keeps torchmetrics' states and result for the macro F1, counted without ``torch.bincount``."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import f1_score
from torchmetrics.classification import MulticlassF1Score

from nnlit.models.macro_f1 import MacroF1


@pytest.mark.parametrize("inputs", ["logits", "probabilities", "labels"])
def test_same_states_and_score_as_torchmetrics_and_sklearn(inputs):
    g = torch.Generator().manual_seed(0)
    ours, theirs = MacroF1(num_classes=5), MulticlassF1Score(num_classes=5, average="macro")
    all_preds, all_target = [], []
    for rows in (37, 1, 64, 12):
        scores = torch.randn(rows, 5, generator=g)
        scores[:, 4] -= 10  # class 4 is never predicted
        target = torch.randint(0, 4, (rows,), generator=g)  # nor a target: torchmetrics leaves it out of the mean
        preds = {"logits": scores, "probabilities": scores.softmax(1), "labels": scores.argmax(1)}[inputs]
        ours.update(preds, target)
        theirs.update(preds, target)
        all_preds.append(scores.argmax(1))
        all_target.append(target)
    for state in ("tp", "fp", "tn", "fn"):
        assert torch.equal(getattr(ours, state), getattr(theirs, state)), state
    expected = f1_score(torch.cat(all_target), torch.cat(all_preds), average="macro", labels=[0, 1, 2, 3])
    assert ours.compute().item() == pytest.approx(expected, abs=1e-6)
    assert torch.equal(ours.compute(), theirs.compute())


def test_update_reads_nothing_on_the_host(monkeypatch):
    # torch.bincount is what reads the values on a GPU: the update must not reach it
    def refuse(*args, **kwargs):
        raise AssertionError("bincount was called")

    monkeypatch.setattr(torch, "bincount", refuse)
    f1 = MacroF1(num_classes=3)
    f1.update(torch.randn(8, 3), torch.randint(0, 3, (8,)))
    assert int(f1.tp.sum() + f1.fp.sum()) == 8


def test_labels_out_of_range_are_left_out():
    # an out-of-range index would stop a CUDA device; such rows are not counted, the others are as usual
    preds, target = torch.tensor([0, 1, 2, 1, 0]), torch.tensor([0, 1, 7, -1, 2])
    ours, valid_only = MacroF1(num_classes=3), MacroF1(num_classes=3)
    ours.update(preds, target)
    valid_only.update(preds[[0, 1, 4]], target[[0, 1, 4]])
    for state in ("tp", "fp", "tn", "fn"):
        assert torch.equal(getattr(ours, state), getattr(valid_only, state)), state
    assert int(ours.tp.sum() + ours.fn.sum()) == 3


@pytest.mark.parametrize("value", [1, 0, 2.0, True, None])
def test_bad_num_classes(value):
    with pytest.raises(ValueError, match=f"`num_classes` must be an integer >= 2, got {value!r}"):
        MacroF1(num_classes=value)

import functools

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from nnlit import BinaryMLP, MLPModule, MulticlassMLP, RegressionMLP, TabularDataModule
from nnlit.nn.options import MLPOptions

HEADS = {
    "binary": (BinaryMLP, {}, dict(dataset="circle")),
    "multiclass": (MulticlassMLP, {"num_classes": 3}, dict(dataset="spiral", n_classes=3)),
    "regression": (RegressionMLP, {}, dict(dataset="sine")),
}


def build(head, activation="relu", n_samples=300, **model_kwargs):
    cls, head_kwargs, data_kwargs = HEADS[head]
    dm = TabularDataModule(n_samples=n_samples, batch_size=32, **data_kwargs)
    model = cls(in_features=2, hidden=[16, 16], activation=activation, **head_kwargs, **model_kwargs)
    return model, dm


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "prelu", "selu", "maxout", None])
def test_heads_train_with_every_activation(head, activation, make_trainer):
    model, dm = build(head, activation)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = make_trainer(max_epochs=2)
    trainer.fit(model, datamodule=dm)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    logged = trainer.callback_metrics
    assert {"train/loss", "val/loss"} <= set(logged)
    assert torch.isfinite(logged["val/loss"])


def collect(model, dm):
    """Validation predictions and targets, computed directly from the network."""
    model.eval()
    xs, ys = zip(*dm.val_dataloader())
    with torch.no_grad():
        outputs = model(torch.cat(xs))
    return outputs, torch.cat(ys)


def test_binary_metrics_match_sklearn(make_trainer):
    model, dm = build("binary")
    trainer = make_trainer(max_epochs=3)
    trainer.fit(model, datamodule=dm)
    logged = trainer.validate(model, datamodule=dm, verbose=False)[0]
    outputs, y = collect(model, dm)
    prob = torch.sigmoid(outputs.view(-1)).numpy()
    assert logged["val/acc"] == pytest.approx(skm.accuracy_score(y, prob >= 0.5), abs=1e-6)
    assert logged["val/f1"] == pytest.approx(skm.f1_score(y, prob >= 0.5), abs=1e-6)
    assert logged["val/auroc"] == pytest.approx(skm.roc_auc_score(y, prob), abs=1e-5)
    bce = torch.nn.functional.binary_cross_entropy(torch.as_tensor(prob), y.float())
    assert logged["val/loss"] == pytest.approx(bce.item(), rel=1e-4)


def test_multiclass_metrics_match_sklearn(make_trainer):
    model, dm = build("multiclass")
    trainer = make_trainer(max_epochs=3)
    trainer.fit(model, datamodule=dm)
    logged = trainer.validate(model, datamodule=dm, verbose=False)[0]
    outputs, y = collect(model, dm)
    pred = outputs.argmax(1).numpy()
    assert logged["val/acc"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-6)
    assert logged["val/f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-6)
    logprob = torch.log_softmax(outputs, 1).numpy()
    assert logged["val/loss"] == pytest.approx(skm.log_loss(y, np.exp(logprob), labels=[0, 1, 2]), rel=1e-4)


def test_regression_metrics_match_sklearn(make_trainer):
    model, dm = build("regression")
    trainer = make_trainer(max_epochs=3)
    trainer.fit(model, datamodule=dm)
    logged = trainer.validate(model, datamodule=dm, verbose=False)[0]
    outputs, y = collect(model, dm)
    pred, y = outputs.view(-1).numpy(), y.view(-1).numpy()
    assert logged["val/mse"] == pytest.approx(skm.mean_squared_error(y, pred), rel=1e-4)
    assert logged["val/mae"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-4)
    assert logged["val/r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-4, abs=1e-5)


@pytest.mark.parametrize(("loss", "fn"), [("mse", "mse_loss"), ("mae", "l1_loss"), ("huber", "huber_loss")])
def test_regression_losses(loss, fn):
    model = RegressionMLP(in_features=2, out_features=3, loss=loss, huber_delta=1.0)
    out, target = torch.randn(8, 3), torch.randn(8, 3)
    assert torch.allclose(model.compute_loss(out, target), getattr(torch.nn.functional, fn)(out, target))


def test_multi_output_regression_r2_matches_sklearn():
    model = RegressionMLP(in_features=2, out_features=2)
    out, target = torch.randn(50, 2), torch.randn(50, 2)
    metrics = model.stage_metrics("val")
    metrics.update(*model.metric_inputs(out, target))
    values = metrics.compute()
    assert values["val/r2"].item() == pytest.approx(skm.r2_score(target, out), rel=1e-5)
    assert values["val/mse"].tolist() == pytest.approx(skm.mean_squared_error(target, out, multioutput="raw_values"))


def test_one_hot_targets_give_the_same_loss_as_indices():
    model = MulticlassMLP(in_features=2, num_classes=4)
    logits, labels = torch.randn(10, 4), torch.randint(0, 4, (10,))
    one_hot = torch.nn.functional.one_hot(labels, 4).float()
    assert torch.allclose(model.compute_loss(logits, labels), model.compute_loss(logits, one_hot))
    assert torch.equal(model.metric_inputs(logits, one_hot)[1], labels)


def test_class_weights_and_label_smoothing():
    model = MulticlassMLP(in_features=2, num_classes=3, class_weights=[1.0, 2.0, 3.0], label_smoothing=0.1)
    logits, labels = torch.randn(10, 3), torch.randint(0, 3, (10,))
    expected = torch.nn.functional.cross_entropy(
        logits, labels, weight=torch.tensor([1.0, 2.0, 3.0]), label_smoothing=0.1
    )
    assert torch.allclose(model.compute_loss(logits, labels), expected)


def test_pos_weight_matches_the_formula():
    model = BinaryMLP(in_features=2, pos_weight=3.0)
    logits, y = torch.randn(10, 1), torch.randint(0, 2, (10,))
    p = torch.sigmoid(logits.view(-1))
    manual = -(3.0 * y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    assert torch.allclose(model.compute_loss(logits, y), manual, atol=1e-6)


def test_predict_outputs():
    binary = BinaryMLP(in_features=2, threshold=0.7).predict_outputs(torch.tensor([[0.0], [2.0]]))
    assert binary["label"].tolist() == [0, 1] and torch.allclose(
        binary["probability"], torch.sigmoid(torch.tensor([0.0, 2.0]))
    )
    multi = MulticlassMLP(in_features=2, num_classes=3).predict_outputs(torch.tensor([[0.0, 3.0, 1.0]]))
    assert multi["label"].tolist() == [1] and torch.allclose(multi["probabilities"].sum(1), torch.ones(1))


def test_optimizer_gets_only_trainable_parameters():
    model = MulticlassMLP(
        in_features=2, num_classes=3, hidden=[8], optimizer=functools.partial(torch.optim.SGD, lr=0.1)
    )
    model.network.linear1.requires_grad_(False)
    optimizer = model.configure_optimizers()
    params = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert params == {id(model.network.output.weight), id(model.network.output.bias)}
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["lr"] == 0.1


def test_everything_frozen_is_an_error():
    model = RegressionMLP(in_features=2)
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="Every parameter is frozen"):
        model.configure_optimizers()


def test_scheduler_is_returned_with_monitor_under_automatic_optimization():
    model = RegressionMLP(
        in_features=2, lr_scheduler=functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    )
    config = model.configure_optimizers()
    assert isinstance(config["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.StepLR)
    assert "monitor" not in config["lr_scheduler"]  # nnlit steps schedulers itself (tests/speed/)
    model.automatic_optimization = True
    assert model.configure_optimizers()["lr_scheduler"]["monitor"] == "val/loss"


@pytest.mark.parametrize("head", sorted(HEADS))
def test_checkpoint_round_trip(head, make_trainer, tmp_path):
    model, dm = build(head)
    trainer = make_trainer(max_epochs=1)
    trainer.fit(model, datamodule=dm)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    loaded = type(model).load_from_checkpoint(path)
    assert set(loaded.hparams) == set(model.hparams)
    x = torch.randn(4, 2)
    model.eval()
    loaded.eval()
    assert torch.equal(loaded(x), model(x))


def test_hparams_hold_only_the_class_arguments():
    model = MulticlassMLP(in_features=2, num_classes=3)
    assert "out_features" not in model.hparams and model.hparams.num_classes == 3
    assert "num_classes" not in RegressionMLP(in_features=2).hparams


def test_checkpoint_with_another_shape_names_the_layer(make_trainer, tmp_path):
    model, dm = build("multiclass")
    trainer = make_trainer(max_epochs=1)
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    wider = MulticlassMLP(in_features=2, num_classes=3, hidden=[32, 16])
    with pytest.raises(
        ValueError, match=r"network.linear1.weight: \(16, 2\) in the checkpoint, \(32, 2\) in the model"
    ):
        make_trainer().validate(wider, datamodule=dm, ckpt_path=tmp_path / "m.ckpt")


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: MulticlassMLP(in_features=2, num_classes=1), "`num_classes` must be an integer >= 2, got 1"),
        (lambda: MulticlassMLP(in_features=2, num_classes=None), "got None .*use RegressionMLP"),
        (lambda: MulticlassMLP(in_features=2, num_classes=3, class_weights=[1.0]), "needs 3 values"),
        (lambda: MulticlassMLP(in_features=2, num_classes=3, label_smoothing=1.0), "`label_smoothing` must be"),
        (lambda: BinaryMLP(in_features=2, num_classes=3), "BinaryMLP needs exactly 2 classes, got num_classes=3"),
        (lambda: BinaryMLP(in_features=2, pos_weight=0.0), "`pos_weight` must be > 0"),
        (lambda: BinaryMLP(in_features=2, threshold=1.0), r"`threshold` must be in \(0, 1\)"),
        (lambda: RegressionMLP(in_features=2, loss="l2"), "Unknown loss 'l2'. Valid losses: huber, mae, mse"),
        (lambda: RegressionMLP(in_features=2, hidden=[0]), r"`hidden\[0\]` must be a positive integer, got 0"),
        (lambda: RegressionMLP(in_features=2, activation="swish"), "Unknown activation 'swish'"),
    ],
)
def test_bad_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_data_width_mismatch(make_trainer):
    dm = TabularDataModule(dataset="xor", n_samples=50)
    with pytest.raises(ValueError, match="The data has 2 features but the model was built with in_features=3"):
        make_trainer().fit(BinaryMLP(in_features=3), datamodule=dm)
    x = torch.zeros(4, 5)
    with pytest.raises(ValueError, match=r"Expected a batch of shape \(rows, 3\) .* got \(4, 5\)"):
        BinaryMLP(in_features=3).training_step((x, torch.zeros(4)), 0)


def test_class_count_mismatch(make_trainer):
    dm = TabularDataModule(dataset="spiral", n_classes=3, n_samples=60)
    with pytest.raises(ValueError, match="The data has 3 classes but the model was built with num_classes=4"):
        make_trainer().fit(MulticlassMLP(in_features=2, num_classes=4), datamodule=dm)
    with pytest.raises(ValueError, match="BinaryMLP needs 2 classes but the data has 3"):
        make_trainer().fit(BinaryMLP(in_features=2), datamodule=dm)
    with pytest.raises(ValueError, match="RegressionMLP needs a regression data set"):
        make_trainer().fit(RegressionMLP(in_features=2), datamodule=dm)


def test_labels_out_of_range_without_datamodule():
    model = MulticlassMLP(in_features=2, num_classes=3)
    with pytest.raises(ValueError, match=r"Class labels must be in \[0, 3\) for num_classes=3, got \[3, -1\]"):
        model.training_step((torch.zeros(4, 2), torch.tensor([0, 3, 1, -1])), 0)


def test_binary_targets_not_zero_one():
    with pytest.raises(ValueError, match=r"BinaryMLP targets must be 0 or 1, got \[2\]"):
        BinaryMLP(in_features=2).training_step((torch.zeros(3, 2), torch.tensor([0, 2, 1])), 0)


class WithExtraArgument(MulticlassMLP):
    def __init__(self, width: int = 8, **kwargs):
        super().__init__(hidden=[width], **kwargs)


def test_subclass_with_kwargs_round_trips(make_trainer, tmp_path):
    model = WithExtraArgument(width=5, in_features=2, num_classes=3)
    assert model.hparams.width == 5 and model.network.linear1.out_features == 5
    trainer = make_trainer()
    trainer.fit(model, datamodule=TabularDataModule(dataset="spiral", n_classes=3, n_samples=60))
    trainer.save_checkpoint(tmp_path / "s.ckpt")
    assert WithExtraArgument.load_from_checkpoint(tmp_path / "s.ckpt").network.linear1.out_features == 5


def test_base_is_abstract():
    with pytest.raises(NotImplementedError):
        MLPModule(in_features=2, out_features=1).stage_metrics("val")  # the metrics are built on first use


def test_the_network_options_are_documented_once():
    assert MLPOptions.__doc__ and "hidden: hidden layer widths" in MLPOptions.__doc__
    assert "hidden: hidden layer widths" not in (MLPModule.__doc__ or "")


def test_targets_checked_per_stage_after_the_sanity_check(make_trainer):
    """The sanity-check validation batch must not use up the check of the training targets."""
    from nnlit.data import TensorBatchLoader

    good = TensorBatchLoader([torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])], 4)
    bad = TensorBatchLoader([torch.zeros(4, 2), torch.tensor([0, 1, 2, 1])], 4)
    with pytest.raises(ValueError, match="BinaryMLP targets must be 0 or 1"):
        make_trainer().fit(BinaryMLP(in_features=2), train_dataloaders=bad, val_dataloaders=good)


def test_batch_norm_with_a_one_row_batch_explains(make_trainer):
    dm = TabularDataModule(dataset="spiral", n_classes=3, n_samples=81, batch_size=64, val_fraction=0.2)
    with pytest.raises(ValueError, match="single row, and BatchNorm cannot normalise one row: set .*drop_last"):
        make_trainer().fit(MulticlassMLP(in_features=2, num_classes=3, norm="batch"), datamodule=dm)


def test_scheduler_interval():
    model = RegressionMLP(
        in_features=2,
        lr_scheduler=functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1, total_steps=100),
        scheduler_interval="step",
    )
    assert model.configure_optimizers()["lr_scheduler"]["interval"] == "step"
    with pytest.raises(ValueError, match="`scheduler_interval` must be 'epoch' or 'step', got 'batch'"):
        RegressionMLP(in_features=2, scheduler_interval="batch")


def test_float_labels_read_as_regression_explained():
    with pytest.raises(ValueError, match="Set its `task: classification`"):
        BinaryMLP(in_features=2, num_classes=None)
    with pytest.raises(ValueError, match="set its `task: classification`"):
        MulticlassMLP(in_features=2, num_classes=None)


def test_regression_learns_standardised_targets_and_reports_in_their_units():
    model = RegressionMLP(in_features=2, out_features=2, hidden=[4], target_mean=[100.0, -5.0], target_std=[20.0, 0.5])
    x = torch.randn(6, 2)
    raw = model.network(x)
    assert torch.allclose(model(x), raw * torch.tensor([20.0, 0.5]) + torch.tensor([100.0, -5.0]))
    target = torch.tensor([[120.0, -5.5]] * 6)
    expected = torch.nn.functional.mse_loss(raw, (target - torch.tensor([100.0, -5.0])) / torch.tensor([20.0, 0.5]))
    assert torch.allclose(model.compute_loss(model(x), target), expected, atol=1e-6)
    assert torch.equal(model.predict_step(x, 0)["prediction"], model(x))


def test_target_scale_linked_from_the_data_by_the_cli():
    from pathlib import Path

    from nnlit.cli import build

    config = Path(__file__).resolve().parents[2] / "configs/heads/regression.yaml"
    cli = build(["--config", str(config)])
    dm = cli.datamodule
    train_y = dm.table.y[dm.split_indices("train")]
    assert cli.model.target_mean.tolist() == pytest.approx(train_y.mean(0).tolist())
    assert cli.model.target_std.tolist() == pytest.approx(train_y.std(0, unbiased=False).tolist())
    assert TabularDataModule(dataset="xor").target_mean is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_mean": [1.0, 2.0]}, "`target_mean` needs 1 values"),
        ({"target_std": [0.0]}, r"`target_std` must be > 0, got \[0.0\]"),
    ],
)
def test_bad_target_scale(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RegressionMLP(in_features=2, **kwargs)


def test_regression_of_several_targets_logs_each_and_their_mean(make_trainer):
    x = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    y = torch.stack([x[:, 0] * 3.0, x[:, 1] - 5.0], dim=1)
    dm = TabularDataModule.from_arrays(x, y, batch_size=20)
    model = RegressionMLP(in_features=3, out_features=2, hidden=[8])
    trainer = make_trainer()
    trainer.fit(model, datamodule=dm)
    metrics = trainer.callback_metrics
    for name in ("val/mae", "val/mse", "train/mae"):
        parts = [float(metrics[f"{name}_{j}"]) for j in range(2)]
        assert float(metrics[name]) == pytest.approx(sum(parts) / 2, rel=1e-6)
    x_val, y_val = dm.split_tensors("val")
    with torch.no_grad():
        errors = (model(x_val) - y_val).abs().mean(dim=0)
    assert float(metrics["val/mae_1"]) == pytest.approx(float(errors[1]), rel=1e-5)


def test_loggers_save_every_few_seconds_and_hold_every_epoch_at_the_end(make_trainer, tmp_path, monkeypatch):
    from lightning.pytorch.loggers import CSVLogger

    import nnlit.models.epoch_metrics

    class CountingLogger(CSVLogger):
        saves = 0

        def save(self) -> None:
            CountingLogger.saves += 1
            super().save()

    monkeypatch.setattr(nnlit.models.epoch_metrics, "LOGGER_SAVE_SECONDS", 3600.0)
    trainer = make_trainer(max_epochs=20, logger=CountingLogger(tmp_path))
    trainer.fit(RegressionMLP(in_features=2, hidden=[4]), datamodule=TabularDataModule(dataset="sine", n_samples=100))
    lines = (tmp_path / "lightning_logs/version_0/metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert sorted(int(row["epoch"]) for row in rows if row["val/loss"]) == list(range(20))  # saved at the fit's end
    assert 2 <= CountingLogger.saves <= 3  # the first epoch, the fit's end (Lightning's finalize), not 20

import functools
import tempfile

import lightning as L
import pytest
import torch
from helpers import quiet_trainer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from nnlit import BinaryMLP, RegressionMLP, TabularDataModule
from nnlit.callbacks import DeadReLUCounter, GradientSaturationMonitor, SavePlots
from nnlit.plots import read_metrics_csv

plt = pytest.importorskip("matplotlib.pyplot")


def fit(model, data, callbacks, logger, epochs=4, **kwargs):
    root = getattr(logger, "save_dir", None) or tempfile.gettempdir()  # the test's folder when it logs
    trainer = quiet_trainer(root, max_epochs=epochs, logger=logger, callbacks=callbacks, **kwargs)
    L.seed_everything(0)
    trainer.fit(model, datamodule=data)
    return trainer


def relu_xor():
    return BinaryMLP(in_features=2, hidden=[8, 6], optimizer=functools.partial(torch.optim.Adam, lr=0.05))


def test_writes_every_picture_that_applies(tmp_path):
    plots = SavePlots()
    counter, monitor = DeadReLUCounter(), GradientSaturationMonitor()
    fit(relu_xor(), TabularDataModule(dataset="xor", n_samples=400), [counter, monitor, plots], CSVLogger(tmp_path))
    folder = tmp_path / "lightning_logs" / "version_0" / "plots"
    expected = {  # (height, width): the figure sizes at 100 dpi
        "curves.png": (350, 1000),  # loss and accuracy
        "decision_boundary.png": (500, 500),
        "dead_units.png": (400, 720),  # two ReLU layers
        "gradients.png": (380, 650),  # no sigmoid / tanh: gradient norms only
    }
    assert sorted(p.name for p in plots.written) == sorted(expected)
    for name, size in expected.items():
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert plt.imread(folder / name).shape[:2] == size, name
    # the curves' numbers are the ones the CSVLogger wrote, epoch by epoch
    logged = read_metrics_csv(tmp_path / "lightning_logs" / "version_0" / "metrics.csv")
    for key in ("train/loss", "val/loss", "train/acc", "val/acc"):
        assert plots.metrics[key].keys() == logged[key].keys() == set(range(4)), key
        assert plots.metrics[key] == pytest.approx(logged[key]), key


def test_dead_units_picture_shows_the_dead_layer(tmp_path):
    """A layer killed at the start (NegativeInit) is black across the whole heatmap; the live layer is not."""
    from nnlit.callbacks import NegativeInit

    counter, plots = DeadReLUCounter(threshold=1.0), SavePlots(dirpath=str(tmp_path / "pics"))
    model = BinaryMLP(in_features=2, hidden=[16, 16])
    fit(
        model,
        TabularDataModule(dataset="circle", n_samples=300),
        [NegativeInit(modules=["network.linear2"]), counter, plots],
        logger=False,
        epochs=3,
    )
    assert all(h["dead_units"]["network.act2"].all() for h in counter.history)
    image = plt.imread(tmp_path / "pics" / "dead_units.png")[..., :3]
    height, width = image.shape[:2]
    # the second panel's plotting area sits in the right half of the figure: all black there
    left_panel = image[int(height * 0.3) : int(height * 0.7), int(width * 0.15) : int(width * 0.4)]
    right_panel = image[int(height * 0.3) : int(height * 0.7), int(width * 0.65) : int(width * 0.9)]
    assert right_panel.max() < 0.05
    assert left_panel.mean() > 0.5  # most units of the first layer fire


def test_regression_and_resume_keep_the_whole_history(tmp_path):
    data = TabularDataModule(dataset="sine", n_samples=200)
    plots = SavePlots(dirpath=str(tmp_path / "p"))
    trainer = fit(
        RegressionMLP(in_features=2, hidden=[8]), data, [plots], logger=False, epochs=2, default_root_dir=tmp_path
    )
    assert [p.name for p in plots.written] == ["curves.png"]  # regression: no boundary; no monitors
    assert plt.imread(plots.written[0]).shape[:2] == (350, 1000)  # loss and R²
    trainer.save_checkpoint(tmp_path / "two.ckpt")
    resumed = SavePlots(dirpath=str(tmp_path / "q"))
    again = quiet_trainer(tmp_path, max_epochs=4, callbacks=[resumed])
    again.fit(RegressionMLP(in_features=2, hidden=[8]), datamodule=data, ckpt_path=tmp_path / "two.ckpt")
    assert resumed.metrics["train/loss"].keys() == set(range(4))
    assert {e: v for e, v in resumed.metrics["train/loss"].items() if e < 2} == plots.metrics["train/loss"]


def test_pictures_go_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboardX")
    logger = TensorBoardLogger(tmp_path, name="tb")
    fit(relu_xor(), TabularDataModule(dataset="xor", n_samples=200), [SavePlots(), DeadReLUCounter()], logger, epochs=2)
    logger.experiment.flush()
    (events,) = (tmp_path / "tb" / "version_0").glob("events.out.tfevents.*")
    content = events.read_bytes()
    for tag in (b"plots/curves", b"plots/decision_boundary", b"plots/dead_units"):
        assert tag in content, tag
    assert content.count(b"\x89PNG") == 3  # each image is stored PNG-encoded
    assert (tmp_path / "tb" / "version_0" / "plots" / "curves.png").is_file()


def test_errors():
    with pytest.raises(ValueError, match="`resolution` must be an integer >= 2, got 1"):
        SavePlots(resolution=1)


def test_without_matplotlib_the_fit_runs_and_says_no_pictures_are_drawn(tmp_path, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else find_spec(name, *a)
    )
    with pytest.warns(UserWarning, match=r"SavePlots draws no pictures: matplotlib is not installed .*nnlit\[plots\]"):
        plots = SavePlots()
    trainer = fit(relu_xor(), TabularDataModule(dataset="xor", n_samples=200), [plots], CSVLogger(tmp_path), epochs=2)
    assert trainer.current_epoch == 2
    assert plots.written == [] and not (tmp_path / "lightning_logs" / "version_0" / "plots").exists()

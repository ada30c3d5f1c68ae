import functools
import sys

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from nnlit import BinaryMLP, MulticlassMLP, TabularDataModule
from nnlit.plots import AXES_BOX, plot_decision_boundary, plot_training_curves

plt = pytest.importorskip("matplotlib.pyplot")


def fit(model, data, tmp_path, epochs):
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    L.seed_everything(0)
    trainer.fit(model, datamodule=data)
    return trainer


def pixel(image, fx, fy):
    """The RGB of the picture at a fraction (fx, fy) of the plotting area, y pointing up."""
    height, width = image.shape[:2]
    left, bottom, box_w, box_h = AXES_BOX
    col = int((left + fx * box_w) * width)
    row = int((1 - (bottom + fy * box_h)) * height)
    return image[row, col, :3]


def test_xor_boundary_has_each_class_in_its_quadrants(tmp_path):
    data = TabularDataModule(dataset="xor", n_samples=800, noise=0.0, seed=0)
    model = BinaryMLP(
        in_features=2, hidden=[8], activation="tanh", optimizer=functools.partial(torch.optim.Adam, lr=0.05)
    )
    fit(model, data, tmp_path, epochs=15)
    path = plot_decision_boundary(model, data, tmp_path / "boundary.png")
    image = plt.imread(path)
    assert image.shape[:2] == (500, 500)
    for fx, fy, label in [(0.8, 0.8, 1), (0.2, 0.2, 1), (0.8, 0.2, 0), (0.2, 0.8, 0)]:  # class 1 where x1 * x2 >= 0
        r, _, b = pixel(image, fx, fy)
        assert (b > r) if label == 1 else (r > b), (fx, fy, label, r, b)  # RdBu: blue is class 1, red class 0


def test_multiclass_boundary_and_training_curves(tmp_path):
    data = TabularDataModule(dataset="spiral", n_classes=3, n_samples=300, seed=0)
    trainer = fit(MulticlassMLP(in_features=2, num_classes=3, hidden=[16]), data, tmp_path, epochs=3)
    boundary = plot_decision_boundary(trainer.lightning_module, data, tmp_path / "b.png")
    curves = plot_training_curves(f"{trainer.logger.log_dir}/metrics.csv", tmp_path / "curves.png")
    assert plt.imread(boundary).shape[:2] == (500, 500)
    assert plt.imread(curves).shape[:2] == (350, 1000)  # two panels: loss and accuracy


def test_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="drawn for 2 features; the data has 8"):
        plot_decision_boundary(
            BinaryMLP(in_features=8), TabularDataModule(dataset="xor", n_features=8), tmp_path / "x.png"
        )
    with pytest.raises(FileNotFoundError, match="No metrics file at"):
        plot_training_curves(tmp_path / "missing.csv", tmp_path / "c.png")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'nnlit\[plots\]'"):
        plot_decision_boundary(BinaryMLP(in_features=2), TabularDataModule(dataset="xor"), tmp_path / "x.png")

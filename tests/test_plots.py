import functools
import sys

import lightning as L
import pytest
import torch
from helpers import quiet_trainer
from lightning.pytorch.loggers import CSVLogger

from nnlit import BinaryMLP, MulticlassMLP, TabularDataModule
from nnlit.plots import AXES_BOX, plot_decision_boundary, plot_training_curves

plt = pytest.importorskip("matplotlib.pyplot")


def fit(model, data, tmp_path, epochs):
    trainer = quiet_trainer(tmp_path, max_epochs=epochs, logger=CSVLogger(tmp_path))
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


def test_nnlit_plot_draws_a_finished_run(tmp_path, monkeypatch, capsys):
    """`nnlit fit` on a lesson, then `nnlit plot` on its run directory, redraws what SavePlots drew at fit end."""
    from pathlib import Path

    from nnlit.cli import main

    monkeypatch.chdir(tmp_path)
    config = Path(__file__).resolve().parents[1] / "configs" / "demos" / "vanishing_sigmoid.yaml"
    main(["fit", "--config", str(config), "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false"])
    log_dir = tmp_path / "runs" / "demos" / "vanishing_sigmoid" / "lightning_logs" / "version_0"
    at_fit_end = sorted(p.name for p in (log_dir / "plots").glob("*.png"))
    assert at_fit_end == ["curves.png", "decision_boundary.png", "gradients.png"]  # plane: 2 features, 2 classes
    capsys.readouterr()

    # no ModelCheckpoint in this lesson: Lightning's default one wrote to version_0/checkpoints, found by itself
    main(["plot", str(tmp_path / "runs" / "demos" / "vanishing_sigmoid"), "--out", str(tmp_path / "again")])
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == at_fit_end
    for name in at_fit_end:
        redrawn, original = plt.imread(tmp_path / "again" / name), plt.imread(log_dir / "plots" / name)
        assert redrawn.shape == original.shape, name
    gradients = plt.imread(tmp_path / "again" / "gradients.png")
    assert gradients.shape[:2] == (380, 1300)  # two panels: norms and the sigmoids' saturation


def test_nnlit_plot_errors(tmp_path, capsys):
    from nnlit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["plot", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "No metrics.csv in" in capsys.readouterr().err
    (tmp_path / "metrics.csv").write_text("epoch,step,train/loss\n0,1,0.5\n")
    with pytest.raises(SystemExit):
        main(["plot", str(tmp_path), "--ckpt_path", str(tmp_path / "nope.ckpt")])
    assert "No checkpoint at" in capsys.readouterr().err
    main(["plot", str(tmp_path)])  # a metrics file and no checkpoint: the curves only, said so
    out = capsys.readouterr().out
    assert "drew the training curves only" in out and (tmp_path / "plots" / "curves.png").is_file()


class OwnBinary(BinaryMLP):
    """A user's head, named in the run's config."""


def test_nnlit_plot_draws_a_run_of_a_users_own_class(tmp_path, capsys):
    """The checkpoint records a class another program cannot find (a script's `__main__.OwnBinary`): the run's config
    names it, and `nnlit plot` takes it from there."""
    from nnlit.cli import main

    args = ["--model=test_plots.OwnBinary", "--data=nnlit.TabularDataModule", "--data.dataset=xor"]
    args += ["--data.n_samples=200", "--trainer.max_epochs=1", f"--trainer.default_root_dir={tmp_path}"]
    main(["fit", *args, "--trainer.enable_progress_bar=false", "--report=false"])
    (ckpt,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")  # Lightning's default ModelCheckpoint
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["nnlit"]["class_path"] = "__main__.OwnBinary"
    torch.save(checkpoint, ckpt)
    capsys.readouterr()
    main(["plot", str(tmp_path), "--ckpt_path", str(ckpt), "--out", str(tmp_path / "again")])
    assert "decision_boundary.png" in capsys.readouterr().out


def test_a_folder_of_runs_draws_the_newest_fit_not_a_later_validate_run(tmp_path):
    import os

    from nnlit.runs import find_fit_run

    runs = tmp_path / "lightning_logs"
    for version, header in enumerate(["epoch,step,train/loss,val/loss", "epoch,step,train/loss", "epoch,step,val/acc"]):
        (runs / f"version_{version}").mkdir(parents=True)
        (runs / f"version_{version}" / "metrics.csv").write_text(header + "\n")
        os.utime(runs / f"version_{version}" / "metrics.csv", (1000 + version, 1000 + version))
    assert find_fit_run(tmp_path) == runs / "version_1"  # version_2 (newest) is a validate run
    assert find_fit_run(runs / "version_2") == runs / "version_2"  # a run named outright is taken as it is
    (runs / "version_0" / "metrics.csv").write_text("epoch,val/acc\n")
    (runs / "version_1" / "metrics.csv").write_text("epoch,test/acc\n")
    with pytest.raises(FileNotFoundError, match=r"No fit run below .*: the runs there \(.*version_2.*\) logged no"):
        find_fit_run(tmp_path)

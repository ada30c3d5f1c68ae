"""Every shipped config, trained for its full length, learns its task (slow: about two minutes on 2 cores)."""

from pathlib import Path

import pytest

from nnlit.cli import build

ROOT = Path(__file__).resolve().parents[1]

# config -> (metric, lowest acceptable value after the full run)
EXPECTED = {
    "quickstart.yaml": ("val/acc", 0.95),
    "heads/binary.yaml": ("val/acc", 0.95),
    "heads/multiclass.yaml": ("val/acc", 0.85),
    "heads/regression.yaml": ("val/r2", 0.9),
    "optimizers/sgd_momentum.yaml": ("val/acc", 0.95),
    "optimizers/adagrad.yaml": ("val/acc", 0.95),
    "optimizers/rmsprop.yaml": ("val/acc", 0.95),
    "optimizers/adam.yaml": ("val/acc", 0.95),
}


def test_every_config_has_an_expectation():
    shipped = {p.relative_to(ROOT / "configs").as_posix() for p in ROOT.glob("configs/**/*.yaml")}
    # demos: tests/test_demos.py; cluster: tests/test_slurm.py and, on a laptop, test_cli's fast run;
    # real: bench/quality.py, against scikit-learn; search: nnlit tune's search spaces (bench/tune.py)
    elsewhere = ("demos/", "cluster/", "real/", "search/")
    assert {name for name in shipped if not name.startswith(elsewhere)} == set(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_reaches_its_quality(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--config", str(ROOT / "configs" / name), "--trainer.enable_progress_bar=false", "--trainer.logger=false"]
    cli = build(args)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    metric, lowest = EXPECTED[name]
    value = float(cli.trainer.callback_metrics[metric])
    assert value >= lowest, f"{name}: {metric} = {value:.3f} < {lowest}"

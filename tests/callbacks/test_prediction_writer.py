import csv

import numpy as np
import pytest
import torch

from nnlit import BinaryMLP, RegressionMLP, TabularDataModule
from nnlit.callbacks import CSVPredictionWriter


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_binary_labels_decoded_with_both_probabilities(make_trainer, tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 2))
    dm = TabularDataModule.from_arrays(x, np.where(x[:, 0] > 0, "yes", "no"), batch_size=8)
    out = tmp_path / "p.csv"
    trainer = make_trainer(callbacks=[CSVPredictionWriter(str(out))])
    model = BinaryMLP(in_features=2, hidden=[4])
    trainer.predict(model, datamodule=dm)
    rows = read(out)
    assert list(rows[0]) == ["row", "prediction", "prob_no", "prob_yes"] and len(rows) == 30
    assert {r["prediction"] for r in rows} <= {"yes", "no"}
    for r in rows:
        assert float(r["prob_no"]) + float(r["prob_yes"]) == pytest.approx(1.0)
        assert r["prediction"] == ("yes" if float(r["prob_yes"]) >= 0.5 else "no")
    assert [p.name for p in tmp_path.iterdir()] == ["p.csv"]  # no temporary file left behind


def test_multi_output_regression_columns(make_trainer, tmp_path):
    dm = TabularDataModule.from_arrays(np.random.rand(12, 3), np.random.rand(12, 2), batch_size=5)
    trainer = make_trainer(callbacks=[CSVPredictionWriter()], default_root_dir=tmp_path)
    model = RegressionMLP(in_features=3, out_features=2, hidden=[4])
    trainer.predict(model, datamodule=dm)
    rows = read(tmp_path / "predictions.csv")
    assert list(rows[0]) == ["row", "prediction_0", "prediction_1"] and len(rows) == 12
    dm.setup("predict")
    expected = model(dm.transform(dm.table.x)).detach()
    got = torch.tensor([[float(r["prediction_0"]), float(r["prediction_1"])] for r in rows])
    assert torch.allclose(got, expected, atol=1e-6)


def test_non_dict_predictions_rejected(make_trainer, tmp_path):
    class Plain(RegressionMLP):
        def predict_step(self, batch, batch_idx, dataloader_idx=0):
            return self(batch[0])

    dm = TabularDataModule.from_arrays(np.random.rand(4, 2), np.random.rand(4))
    trainer = make_trainer(callbacks=[CSVPredictionWriter(str(tmp_path / "p.csv"))])
    with pytest.raises(TypeError, match="needs predict_step to return a dict of tensors, got Tensor"):
        trainer.predict(Plain(in_features=2), datamodule=dm)
    assert not (tmp_path / "p.csv").exists()


def test_low_precision_outputs_are_written(make_trainer, tmp_path):
    """A bf16 predict run: numpy has no bfloat16, so the outputs are written as float32."""
    x = np.random.default_rng(1).normal(size=(20, 2))
    dm = TabularDataModule.from_arrays(x, np.where(x[:, 0] > 0, 1, 0), batch_size=8)
    out = tmp_path / "p.csv"
    trainer = make_trainer(callbacks=[CSVPredictionWriter(str(out))], precision="bf16-true")
    trainer.predict(BinaryMLP(in_features=2, hidden=[4]), datamodule=dm)
    rows = read(out)
    assert len(rows) == 20 and all(0.0 <= float(r["prob_1"]) <= 1.0 for r in rows)


def test_the_file_gets_the_mode_a_plain_open_would_give_or_keeps_its_own(make_trainer, tmp_path):
    import os
    import stat

    dm = TabularDataModule.from_arrays(np.zeros((8, 2)), np.arange(8) % 2, batch_size=8)
    out = tmp_path / "p.csv"
    old = os.umask(0o022)
    try:
        make_trainer(callbacks=[CSVPredictionWriter(str(out))]).predict(BinaryMLP(in_features=2), datamodule=dm)
        assert stat.S_IMODE(out.stat().st_mode) == 0o644  # not mkstemp's 0o600: others may read predictions
        out.chmod(0o640)
        make_trainer(callbacks=[CSVPredictionWriter(str(out))]).predict(BinaryMLP(in_features=2), datamodule=dm)
        assert stat.S_IMODE(out.stat().st_mode) == 0o640  # a replaced file keeps its mode
    finally:
        os.umask(old)

"""What nnlit's Python API prints: no Lightning product tips, deprecations raised inside Lightning or torch, nor the
`weights_only` line, in a fresh process (the README's snippet, an estimator with verbose=True, nnlit.load, Predictor,
export); and a model summary whose FLOPs are counted."""

import sys

import pytest
from doc_blocks import ROOT, blocks
from helpers import run_python
from lightning.pytorch.utilities.model_summary import ModelSummary

from nnlit import BinaryMLP, MulticlassMLP

#: what none of the runs below may print
NOISE = ("Tip:", "litlogger", "litmodels", "LeafSpec", "weights_only", "Warning:")

SCRIPT = """
import numpy as np

import nnlit
from nnlit.export import export
from nnlit.sklearn import MLPClassifier

x = np.random.default_rng(0).normal(size=(120, 3)).astype(np.float32)
clf = MLPClassifier(hidden=(8,), max_epochs=2, verbose=True).fit(x, (x[:, 0] > 0).astype(int))
clf.save("estimator.ckpt")
model = nnlit.load("spiral.ckpt")
predictor = nnlit.Predictor.from_checkpoint("estimator.ckpt")
print(type(model).__name__, predictor.predict(x[:2])["prediction"], export("spiral.ckpt").name)
"""


@pytest.mark.integration
def test_the_python_api_prints_no_lightning_noise(tmp_path):
    """Deprecations are errors in the process (`-W error::FutureWarning`), and nothing of NOISE reaches stderr."""
    pytest.importorskip("sklearn")
    pytest.importorskip("onnxscript")
    readme = next(code for code in blocks(ROOT / "README.md", "python") if "spiral.ckpt" in code)
    run = run_python("-W", "error::FutureWarning", "-c", readme + SCRIPT, cwd=tmp_path)
    assert "['row', 'prediction', 'prob_0', 'prob_1', 'prob_2'] 2" in run.stdout
    assert "MulticlassMLP" in run.stdout and "spiral.onnx" in run.stdout
    assert "`Trainer.fit` stopped: `max_epochs=2` reached." in run.stderr  # verbose: Lightning's run lines stay
    shown = [line for line in run.stderr.splitlines() if any(noise in line for noise in NOISE)]
    assert not shown, shown


@pytest.mark.integration
def test_a_users_own_deprecation_warnings_still_show(tmp_path):
    """nnlit drops torch's LeafSpec deprecation only where Lightning raises it: a user's own use still warns."""
    code = "import nnlit\nfrom torch.utils._pytree import LeafSpec\nLeafSpec()\n"
    run = run_python("-c", code, cwd=tmp_path)
    assert "LeafSpec" in run.stderr


@pytest.mark.parametrize("head", [BinaryMLP, MulticlassMLP])
def test_the_model_summary_counts_flops(head):
    """Lightning's summary counts a forward pass of one row: 2 FLOPs per weight of each Linear layer."""
    kwargs = {"num_classes": 3} if head is MulticlassMLP else {}
    model = head(in_features=5, hidden=[16, 8], **kwargs)
    linears = [m for m in model.network.modules() if m.__class__.__name__ == "Linear"]
    expected = sum(2 * m.in_features * m.out_features for m in linears)
    summary = ModelSummary(model, max_depth=1)
    assert summary.total_flops == expected
    assert "In sizes" in str(summary) and "[1, 5]" in str(summary)


def test_nnlit_import_leaves_other_lines_alone(caplog):
    import logging

    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger="lightning.pytorch.utilities.rank_zero"):
        logger.info("GPU available: False, used: False")
        logger.info("💡 Tip: For seamless cloud logging")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]
    assert sys.modules["nnlit"]

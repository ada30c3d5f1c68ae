"""Exporting a trained nnlit model for serving without Python's nnlit: ONNX or TorchScript (``nnlit export``)."""

from __future__ import annotations

import importlib.util
import os
from collections import OrderedDict
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor, nn

from nnlit import quiet, safe_write
from nnlit.checkpoint import load
from nnlit.data.fitted_preprocessing import FittedPreprocessing, read_data_state
from nnlit.lightning_internals import jit_is_scripting
from nnlit.models.base import MLPModule
from nnlit.models.regression import RegressionMLP
from nnlit.nn.mlp import MLP
from nnlit.quiet import quiet_onnx_exporter
from nnlit.raw_rows_onnx import write_raw_rows_onnx
from nnlit.runs import resolve_checkpoint

#: format -> suffix of the file written next to the checkpoint when no ``out`` is given
FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
#: the names of the ONNX graph's input and output
ONNX_INPUT, ONNX_OUTPUT = "features", "outputs"
# protobuf cannot hold an ONNX file over 2 GiB: weights over 1 GiB go to a `<out>.data` file beside the model
_ONNX_INLINE_BYTES = 1 << 30


def export(
    ckpt_path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    format: str = "onnx",
    opset_version: int | None = None,
    *,
    trusted: bool = False,
    raw_rows: bool = False,
) -> Path:
    """Writes the model of an nnlit checkpoint as an ONNX or TorchScript file, for serving.

    The file maps a float32 batch of preprocessed features, shape ``(batch, in_features)`` for any batch size, to what
    the module's ``forward`` returns: the logits of :class:`~nnlit.BinaryMLP` (``(batch, 1)``) and
    :class:`~nnlit.MulticlassMLP` (``(batch, num_classes)``), the predictions of :class:`~nnlit.RegressionMLP` in the
    target's units. Features are preprocessed as the data module does it (numeric, standardised with the training
    mean and std, which the checkpoint holds under ``"TabularDataModule"``); the sigmoid / softmax and the threshold
    are left to the caller. The model is exported in eval mode (dropout off, BatchNorm's running statistics).

    TorchScript: the network is compiled with ``torch.jit.script`` (a ``Sequential`` of the :class:`~nnlit.MLP`'s
    layers); a module whose ``forward`` cannot be scripted, such as a subclass's own ``forward``, is traced instead.
    ONNX: ``torch.onnx.export`` with its default ``torch.export``-based exporter (needs ``onnx`` and ``onnxscript``:
    ``pip install 'nnlit[onnx]'``); the batch dimension is dynamic, the input is named ``features`` and the output
    ``outputs``.

    Args:
        ckpt_path: the nnlit checkpoint (loaded with :func:`nnlit.load`, on the CPU).
        out: the file to write; default the checkpoint's path with the suffix ``.onnx`` or ``.pt``.
        format: ``"onnx"`` or ``"torchscript"``.
        opset_version: the ONNX opset; default, the exporter's.
        trusted: as in :func:`nnlit.load`, for a checkpoint you made yourself.
        raw_rows: ONNX only: a file that takes the table's own columns (numbers with missing values, text categories)
            and returns the decoded prediction and the probabilities, the preprocessing of training inside the graph
            (:mod:`nnlit.raw_rows_onnx`); the checkpoint must hold the data module's preprocessing.

    Returns:
        The path of the written file.

    Raises:
        ValueError: for an unknown format, naming it and the accepted ones; for a file that is not an nnlit checkpoint.
        FileNotFoundError: naming a checkpoint that does not exist.
        ImportError: for ONNX without the ``onnx`` / ``onnxscript`` packages.

    Example::

        >>> from nnlit import BinaryMLP, TabularDataModule
        >>> trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        ...                     enable_model_summary=False, default_root_dir=getfixture("tmp_path"))
        >>> model = BinaryMLP(in_features=2, hidden=[4], activation="maxout")
        >>> trainer.fit(model, datamodule=TabularDataModule(dataset="xor", n_samples=40))
        >>> trainer.save_checkpoint(getfixture("tmp_path") / "xor.ckpt")
        >>> path = export(getfixture("tmp_path") / "xor.ckpt", format="torchscript")
        >>> path.name
        'xor.pt'
        >>> torch.jit.load(path)(torch.zeros(5, 2)).shape
        torch.Size([5, 1])
    """
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}. Accepted formats: {', '.join(sorted(FORMATS))}")
    if raw_rows and format != "onnx":
        raise ValueError(f"`raw_rows` writes an ONNX file: give format='onnx', got format={format!r}")
    if format == "onnx":
        _check_onnx_installed()
    module = load(ckpt_path, map_location="cpu", trusted=trusted).float()
    path = Path(out) if out is not None else Path(ckpt_path).with_suffix(FORMATS[format])
    served = ServedModel(module).eval()
    with safe_write.replacing(path) as new:  # written beside, then renamed: a link at `path` is replaced, not followed
        if format == "torchscript":
            torch.jit.save(_to_torchscript(served), str(new))
        elif raw_rows:
            preprocessing = FittedPreprocessing.from_state_dict(read_data_state(ckpt_path))
            write_raw_rows_onnx(module, preprocessing, served, new, opset_version)
            _check_opset(new, opset_version)
        else:
            _to_onnx(served, new, opset_version)
    return path


class ServedModel(nn.Module):
    """What an exported file computes: the ``forward`` of an :class:`~nnlit.MLPModule`, without the LightningModule.

    The network alone for a module that keeps ``MLPModule.forward``; the network and the target's mean and std for
    :class:`~nnlit.RegressionMLP`; the module itself when a subclass writes its own ``forward`` (then only tracing
    exports it). The input width is checked first, with a message naming both widths.

    Args:
        module: the trained module (its layers are shared, not copied).

    Example::

        >>> from nnlit import RegressionMLP
        >>> ServedModel(RegressionMLP(in_features=2, hidden=[3], target_mean=[10.0], target_std=[2.0]))
        ServedModel(
          in_features=2, rescaled=True
          (body): Sequential(
            (linear1): Linear(in_features=2, out_features=3, bias=True)
            (act1): ReLU()
            (output): Linear(in_features=3, out_features=1, bias=True)
          )
        )
    """

    def __init__(self, module: MLPModule) -> None:
        super().__init__()
        self.in_features = int(module.in_features)
        forward = type(module).forward
        self.rescaled = forward is RegressionMLP.forward
        self.body: nn.Module = module
        if forward is MLPModule.forward or self.rescaled:
            network = module.network
            # an MLP's properties (num_parameters) do not script; a Sequential of the same layers does
            self.body = nn.Sequential(OrderedDict(network.named_children())) if isinstance(network, MLP) else network
        std, mean = torch.ones(module.out_features), torch.zeros(module.out_features)
        if self.rescaled and isinstance(module, RegressionMLP):
            std, mean = module.target_std, module.target_mean
        self.register_buffer("target_std", std.detach().clone().float())
        self.register_buffer("target_mean", mean.detach().clone().float())

    def forward(self, x: Tensor) -> Tensor:
        if not torch.jit.is_tracing() and x.shape[-1] != self.in_features:  # a trace fixes the width anyway
            raise ValueError(f"Expected features of shape (batch, {self.in_features}), got {list(x.shape)}")
        outputs = self.body(x)
        if self.rescaled:
            outputs = outputs * self.target_std + self.target_mean
        return outputs

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, rescaled={self.rescaled}"


def _to_torchscript(served: ServedModel) -> torch.jit.ScriptModule:
    """``torch.jit.script``, or a trace of a batch of 2 rows when the model does not script (a LightningModule's own
    ``forward`` is traced without trying: scripting one compiles the whole LightningModule)."""
    if not isinstance(served.body, L.LightningModule):
        try:
            return torch.jit.script(served)
        except Exception as err:  # the compiler raises several types (NotSupportedError, RuntimeError, …)
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            rank_zero_warn(
                f"torch.jit.script cannot compile the network ({reason}); it is traced instead, so Python "
                "branches in its forward are fixed to the path an example batch takes"
            )
    # the trace reads every attribute of the module; Lightning's flag keeps `trainer` & co. from raising without one
    with jit_is_scripting():
        return torch.jit.trace(served, torch.zeros(2, served.in_features))


def _to_onnx(served: ServedModel, path: Path, opset_version: int | None) -> None:
    example = (torch.zeros(2, served.in_features),)  # not 1: torch.export would fix a batch of 1 as a constant
    weight_bytes = sum(t.numel() * t.element_size() for t in served.state_dict().values())
    with quiet_onnx_exporter():
        torch.onnx.export(
            served,
            example,
            str(path),
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=opset_version,
            external_data=weight_bytes > _ONNX_INLINE_BYTES,
            dynamo=True,  # the default from torch 2.9; named for older versions, whose default exporter is another
            verbose=False,
        )
    _check_opset(path, opset_version)


def _check_opset(path: Path, requested: int | None) -> None:
    """Removes the file and raises when the exporter wrote another opset than the one asked for: it falls back to its
    own when it cannot convert, with a logged traceback but no error."""
    import onnx

    written = next(o.version for o in onnx.load(str(path), load_external_data=False).opset_import if o.domain == "")
    if requested is None or written == requested:
        return
    for file in (path, path.with_name(path.name + ".data")):
        file.unlink(missing_ok=True)
    raise ValueError(
        f"The ONNX exporter cannot write opset {requested}: it wrote opset {written} instead (the file is removed). "
        f"Give no opset_version (the exporter's default, {written}), or an opset it converts to"
    )


def _check_onnx_installed() -> None:
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"ONNX export needs the {' and '.join(missing)} package{'s' if len(missing) > 1 else ''}: "
            "pip install 'nnlit[onnx]' (which also brings onnxruntime, to run the file)"
        )


def main(args: list[str]) -> None:
    """``nnlit export --ckpt_path X [--format onnx|torchscript] [--out Y] [--opset_version N]``: writes the file and
    prints its path. ``args`` are the arguments after ``nnlit export``; a bad one exits with status 2 and a message."""
    parser = quiet.CommandParser(
        prog="nnlit export",
        description="Write a trained nnlit checkpoint as an ONNX or TorchScript file for serving.",
    )
    parser.add_argument(
        "--ckpt_path",
        required=True,
        help="the nnlit checkpoint: a .ckpt file, a run folder (its newest run's best checkpoint), or best / last (the "
        "newest run's under the working directory)",
    )
    parser.add_argument("--format", choices=sorted(FORMATS), default="onnx", help="the file format (default: onnx)")
    parser.add_argument("--out", default=None, help="the file to write (default: the checkpoint's path, .onnx / .pt)")
    parser.add_argument("--opset_version", type=int, default=None, help="the ONNX opset (default: the exporter's)")
    parser.add_argument(
        "--trusted", action="store_true", help="for a checkpoint you made yourself: read it as Lightning does"
    )
    parser.add_argument(
        "--raw-rows",
        "--raw_rows",
        dest="raw_rows",
        action="store_true",
        help="ONNX: a file that takes the table's own columns (missing values, text categories) and returns the "
        "decoded prediction and probabilities, the preprocessing of training inside",
    )
    options = parser.parse_args(args)
    # an error goes up to the command (nnlit.cli.main), which ends it with one line `nnlit: error: …`
    ckpt_path = resolve_checkpoint(options.ckpt_path)
    path = export(
        ckpt_path, options.out, options.format, options.opset_version, trusted=options.trusted,
        raw_rows=options.raw_rows,
    )  # fmt: skip
    print(f"Wrote {path}")

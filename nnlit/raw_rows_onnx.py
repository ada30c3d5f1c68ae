"""An ONNX file that serves raw rows of a table: the fitted preprocessing, the network and the decoded prediction in one
graph (``nnlit export --format onnx --raw-rows``).

The graph has one input per feature column of the table, named after it, of shape ``(batch,)``: ``float`` for a
numeric column (NaN where a value is missing), ``string`` for a text category (``""`` where it is missing), ``float``
for a category of numbers (NaN where missing). Its outputs are ``prediction`` (the decoded class label, or the
regression prediction in the target's units) and, for a classifier, ``probabilities`` (``(batch, classes)``, in the
order of the classes).

Everything between comes from the :class:`~nnlit.data.fitted_preprocessing.FittedPreprocessing` of training, the same
object :class:`~nnlit.Predictor` and the data module use, never a copy of its arithmetic:

- the category codes are the output of :meth:`CategoryCodes.encode` on each training value (and on a missing one),
  written as an ``ai.onnx.ml`` ``LabelEncoder`` whose default is the unknown code 0;
- the median filling, the was-missing columns and the standardisation are :meth:`FittedPreprocessing.transform`
  itself, exported with the network by ``torch.onnx.export``, as is the module's own ``predict_outputs`` (sigmoid /
  softmax, threshold, argmax);
- the class labels are looked up from the preprocessing's ``classes`` (``Gather``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from nnlit.data.fitted_preprocessing import FittedPreprocessing
from nnlit.data.preprocessing import CategoryCodes
from nnlit.models.base import MLPModule
from nnlit.quiet import quiet_onnx_exporter

#: the names of the graph's outputs
PREDICTION, PROBABILITIES = "prediction", "probabilities"
#: the opset of ``ai.onnx.ml`` the graph imports (``LabelEncoder`` with ``default_int64``)
ML_OPSET = 3
#: the prefix of every value name the graph holds besides its inputs and outputs (a column may be called anything)
_INTERNAL = "nnlit::"
_STRING, _FLOAT = "string", "float"


class RawRowsModel(nn.Module):
    """What the exported graph computes after the category codes are looked up: from the numeric features (NaN where
    missing) and the codes, in one float matrix, to the module's decoded outputs, through
    :meth:`FittedPreprocessing.transform` and the served network.

    Args:
        module: the trained module.
        preprocessing: its fitted preprocessing.
        served: the module as an export serves it (:class:`~nnlit.export.ServedModel`).

    Its ``forward`` returns ``(label, probabilities)`` for a classifier (``probabilities`` of every class, the
    binary one's too) and ``(prediction,)`` for a regression (one column dropped to ``(batch,)``).
    """

    def __init__(self, module: MLPModule, preprocessing: FittedPreprocessing, served: nn.Module) -> None:
        super().__init__()
        self.served = served
        self.num_numeric = len(preprocessing.numeric)
        self.num_categorical = len(preprocessing.categorical)
        # plain attributes, not submodules: the preprocessing's statistics are constants of the graph, and the
        # module's predict_outputs is called, not its parameters registered twice
        self.preprocessing = preprocessing
        self.predict_outputs = module.predict_outputs

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        numeric = x[:, : self.num_numeric]
        codes = x[:, self.num_numeric :] if self.num_categorical else None
        outputs = self.predict_outputs(self.served(self.preprocessing.transform(numeric, codes)))
        if "label" not in outputs:
            prediction = outputs["prediction"]
            return (prediction.reshape(-1) if prediction.shape[1] == 1 else prediction,)
        if "probability" in outputs:  # binary: the probability of class 1, as two columns like Predictor's
            positive = outputs["probability"].reshape(-1, 1)
            return outputs["label"].reshape(-1), torch.cat([1 - positive, positive], dim=1)
        return outputs["label"].reshape(-1), outputs["probabilities"]


def write_raw_rows_onnx(
    module: MLPModule,
    preprocessing: FittedPreprocessing,
    served: nn.Module,
    path: Path,
    opset_version: int | None = None,
) -> None:
    """Writes the ONNX file of raw rows for a module and its fitted preprocessing (see the module's docstring).

    Raises:
        ValueError: for a categorical column whose training values mix text and numbers, a feature named like an
            output, or classes that are neither all text nor all numbers: each named.
    """
    import onnx

    kinds = _category_kinds(preprocessing)
    taken = sorted({PREDICTION, PROBABILITIES} & set(preprocessing.feature_names))
    if taken:
        raise ValueError(
            f"The raw-rows ONNX graph names its outputs {PREDICTION!r} and {PROBABILITIES!r}; feature columns {taken} "
            "are named the same: rename them in the training table"
        )
    classify = preprocessing.classes is not None
    network = RawRowsModel(module, preprocessing, served).eval()
    graph_model = _export_network(network, len(preprocessing.feature_names), opset_version, classify)
    model = _with_columns(graph_model, preprocessing, kinds, classify)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _category_kinds(preprocessing: FittedPreprocessing) -> list[str]:
    """``"string"`` or ``"float"``: the input type of each categorical column, from its training values."""
    kinds = []
    for name, vocabulary in zip(preprocessing.categorical, preprocessing.vocabularies):
        values = [v for v in vocabulary if v is not None]
        if all(isinstance(v, str) for v in values):
            kinds.append(_STRING)
        elif all(_is_number(v) for v in values):
            kinds.append(_FLOAT)
        else:
            found = sorted({type(v).__name__ for v in values})
            raise ValueError(
                f"Categorical column {name!r} has training values of several types ({', '.join(found)}): the ONNX "
                "graph takes a column of text or of numbers"
            )
    return kinds


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(float(value))


def _export_network(network: RawRowsModel, width: int, opset_version: int | None, classify: bool) -> Any:
    """The ONNX model of :class:`RawRowsModel` from ``torch.onnx.export``: input ``x`` (batch × width), outputs
    ``label`` and ``probabilities`` or ``prediction``."""
    outputs = ["label", PROBABILITIES] if classify else [PREDICTION]
    example = (torch.zeros(2, width),)  # not 1: torch.export would fix a batch of 1 as a constant
    with quiet_onnx_exporter():
        program = torch.onnx.export(
            network,
            example,
            input_names=["x"],
            output_names=outputs,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=opset_version,
            dynamo=True,
            verbose=False,
        )
    if program is None:  # only without a file name and with dynamo=False, neither of which is the case here
        raise RuntimeError("torch.onnx.export returned no ONNX program")
    return program.model_proto


def _with_columns(model: Any, preprocessing: FittedPreprocessing, kinds: list[str], classify: bool) -> Any:
    """The network's graph with the table's columns as inputs (the codes looked up in front) and the class labels
    looked up behind."""
    from onnx import TensorProto, helper

    graph = model.graph
    _prefix_names(graph)
    x_name = _INTERNAL + "x"
    nodes, inputs, parts = [], [], []
    for name in preprocessing.numeric:
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch"]))
        parts.append(name)
    for name, codes, kind in zip(preprocessing.categorical, preprocessing.codes, kinds):
        elem = TensorProto.STRING if kind == _STRING else TensorProto.FLOAT
        inputs.append(helper.make_tensor_value_info(name, elem, ["batch"]))
        nodes.extend(_code_nodes(name, codes, kind))
        parts.append(_INTERNAL + name + "/code")
    axes = _INTERNAL + "axes"
    graph.initializer.append(helper.make_tensor(axes, TensorProto.INT64, [1], [1]))
    columns = []
    for part in parts:
        columns.append(part + "/column")
        nodes.append(helper.make_node("Unsqueeze", [part, axes], [columns[-1]]))
    nodes.append(helper.make_node("Concat", columns, [x_name], axis=1))
    del graph.input[:]
    graph.input.extend(inputs)
    for node in reversed(nodes):
        graph.node.insert(0, node)
    if classify and preprocessing.classes is not None:
        _decode_labels(graph, preprocessing.classes)
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    return model


def _code_nodes(name: str, codes: CategoryCodes, kind: str) -> list[Any]:
    """The nodes from one categorical column to its codes (float32): a ``LabelEncoder`` from each training value to
    the code :meth:`CategoryCodes.encode` gives it, default 0 (unknown), and the code of a missing value for ``""``
    (text) or NaN (numbers)."""
    from onnx import TensorProto, helper

    known = [v for v in codes.vocabulary if v is not None]
    values = codes.encode(known)[0].tolist()
    missing_code = int(codes.encode([None])[0][0])
    code, out = _INTERNAL + name + "/int_code", _INTERNAL + name + "/code"
    if kind == _STRING:
        if "" not in known:  # the text of a missing value
            known, values = [*known, ""], [*values, missing_code]
        encoder = helper.make_node(
            "LabelEncoder", [name], [code], domain="ai.onnx.ml", keys_strings=known, values_int64s=values,
            default_int64=0,
        )  # fmt: skip
        return [encoder, helper.make_node("Cast", [code], [out], to=TensorProto.FLOAT)]
    encoder = helper.make_node(
        "LabelEncoder", [name], [code], domain="ai.onnx.ml", keys_floats=[float(v) for v in known],
        values_int64s=values, default_int64=0,
    )  # fmt: skip
    nan, missing = _INTERNAL + name + "/nan", _INTERNAL + name + "/missing_code"
    return [
        encoder,
        helper.make_node("Cast", [code], [code + "/float"], to=TensorProto.FLOAT),
        helper.make_node("IsNaN", [name], [nan]),
        helper.make_node("Constant", [], [missing], value=_scalar(missing_code)),
        helper.make_node("Where", [nan, missing, code + "/float"], [out]),
    ]


def _scalar(value: float) -> Any:
    from onnx import TensorProto, helper

    return helper.make_tensor("", TensorProto.FLOAT, [], [value])


def _decode_labels(graph: Any, classes: Sequence[Any]) -> None:
    """The class label of each row's index: ``Gather`` from the classes, as the graph's ``prediction``."""
    from onnx import TensorProto, helper

    labels = _INTERNAL + "classes"
    if all(isinstance(c, str) for c in classes):
        tensor = helper.make_tensor(labels, TensorProto.STRING, [len(classes)], [c.encode() for c in classes])
        elem = TensorProto.STRING
    elif all(isinstance(c, (bool, np.bool_)) for c in classes):
        tensor = helper.make_tensor(labels, TensorProto.BOOL, [len(classes)], [bool(c) for c in classes])
        elem = TensorProto.BOOL
    elif all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes):
        tensor = helper.make_tensor(labels, TensorProto.INT64, [len(classes)], [int(c) for c in classes])
        elem = TensorProto.INT64
    elif all(_is_number(c) for c in classes):
        tensor = helper.make_tensor(labels, TensorProto.DOUBLE, [len(classes)], [float(c) for c in classes])
        elem = TensorProto.DOUBLE
    else:
        found = sorted({type(c).__name__ for c in classes})
        raise ValueError(f"The classes {list(classes)} mix types ({', '.join(found)}): the ONNX graph needs one type")
    graph.initializer.append(tensor)
    label = _INTERNAL + "label"
    graph.node.append(helper.make_node("Gather", [labels, label], [PREDICTION], axis=0))
    index = next(i for i, output in enumerate(graph.output) if output.name == label)
    del graph.output[index]
    graph.output.insert(0, helper.make_tensor_value_info(PREDICTION, elem, ["batch"]))


def _prefix_names(graph: Any) -> None:
    """Every value name of the exported network's graph, inputs and outputs included, prefixed with ``nnlit::``:
    a column named like one of them (``val_3``) would otherwise collide. The outputs ``probabilities`` and
    ``prediction`` keep their names."""
    kept = {PREDICTION, PROBABILITIES}

    def rename(name: str) -> str:
        return name if not name or name in kept else _INTERNAL + name

    for node in graph.node:
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
        for attribute in node.attribute:
            if attribute.g is not None and attribute.g.node:
                _prefix_names(attribute.g)
    for collection in (graph.input, graph.output, graph.value_info):
        for value in collection:
            value.name = rename(value.name)
    for tensor in graph.initializer:
        tensor.name = rename(tensor.name)


__all__ = ["PREDICTION", "PROBABILITIES", "RawRowsModel", "write_raw_rows_onnx"]

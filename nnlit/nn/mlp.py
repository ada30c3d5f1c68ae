"""The multilayer perceptron builder."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn

from nnlit.nn.activations import ActivationSpec, get_activation
from nnlit.nn.categorical import CategoricalEncoder
from nnlit.nn.maxout import Maxout
from nnlit.validation import check_int

NORMS: dict[str, type[nn.Module]] = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}


class MLP(nn.Sequential):
    """Linear → [norm] → activation → [dropout] for each hidden width, then a final Linear.

    Children are named ``linear1, norm1, act1, dropout1, linear2, …, output`` so callbacks and freeze patterns can
    address a layer by name (``"linear1"``, ``"act*"``), and ``mlp[0]`` is still the first Linear. With
    ``categories``, a :class:`~nnlit.nn.categorical.CategoricalEncoder` named ``encoder`` comes first: the last
    ``len(categories)`` input columns hold category codes, one-hot encoded or embedded before ``linear1``.

    Args:
        in_features: number of input features.
        hidden: widths of the hidden layers; ``[]`` gives a single Linear (logistic / linear regression).
        out_features: number of outputs.
        activation: a name (see :data:`nnlit.nn.ACTIVATIONS`), an ``nn.Module`` class or instance, or ``None``
            for a purely linear network. Every hidden layer gets its own instance.
        activation_kwargs: keyword arguments for the activation class, e.g. ``{"negative_slope": 0.2}``.
        dropout: dropout probability after each hidden activation, in ``[0, 1)``.
        norm: ``None``, ``"batch"`` (``BatchNorm1d``) or ``"layer"`` (``LayerNorm``), placed after each hidden Linear.
        bias: whether the Linear layers have a bias.
        categories: the number of codes (unknown included) of each categorical column, the last input columns; see
            :class:`~nnlit.nn.categorical.CategoricalEncoder`. ``None`` or ``[]``: every column is numeric.
        max_one_hot: a categorical column of at most this many codes is one-hot encoded, a wider one embedded.
        embedding_dim: the width of every embedding; default a width per column that grows with its codes.

    Raises:
        ValueError: for a non-positive width, a dropout outside ``[0, 1)``, an unknown norm or activation name.

    Example::

        >>> mlp = MLP(8, [4], 2, activation=None)  # the capacity lesson: 8*4 + 4 + 4*2 + 2
        >>> mlp.num_parameters
        46
        >>> mlp.layer_parameters()
        {'linear1': 36, 'output': 10}
        >>> MLP(2, [3], 1, activation="maxout", activation_kwargs={"pieces": 2})
        MLP(
          (linear1): Linear(in_features=2, out_features=6, bias=True)
          (act1): Maxout(pieces=2)
          (output): Linear(in_features=3, out_features=1, bias=True)
        )
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activation: ActivationSpec = "relu",
        activation_kwargs: dict[str, Any] | None = None,
        dropout: float = 0.0,
        norm: str | None = None,
        bias: bool = True,
        categories: Sequence[int] | None = None,
        max_one_hot: int = 16,
        embedding_dim: int | None = None,
    ) -> None:
        check_int("in_features", in_features)
        check_int("out_features", out_features)
        hidden = list(hidden)
        for i, width in enumerate(hidden):
            check_int(f"hidden[{i}]", width)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout!r}")
        if norm is not None and norm not in NORMS:
            raise ValueError(f"Unknown norm {norm!r}. Valid values: None, {', '.join(sorted(NORMS))}")
        kwargs = dict(activation_kwargs or {})
        get_activation(activation, **kwargs)  # fail on a bad activation before building anything

        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width_in = in_features
        if categories:
            encoder = CategoricalEncoder(in_features, categories, max_one_hot, embedding_dim)
            layers["encoder"] = encoder
            width_in = encoder.out_features
        for i, width in enumerate(hidden, start=1):
            act = get_activation(activation, **kwargs)
            pieces = act.pieces if isinstance(act, Maxout) else 1
            layers[f"linear{i}"] = nn.Linear(width_in, width * pieces, bias=bias)
            if norm is not None:
                layers[f"norm{i}"] = NORMS[norm](width * pieces)
            layers[f"act{i}"] = act
            if dropout > 0:
                layers[f"dropout{i}"] = nn.Dropout(dropout)
            width_in = width
        layers["output"] = nn.Linear(width_in, out_features, bias=bias)
        super().__init__(layers)
        self.in_features = in_features
        self.hidden = hidden
        self.out_features = out_features
        self.categories = list(categories or [])

    @property
    def num_parameters(self) -> int:
        """The model capacity: the number of parameters (trainable or frozen)."""
        return sum(p.numel() for p in self.parameters())

    def layer_parameters(self) -> dict[str, int]:
        """Parameter count per child layer that has parameters, in order."""
        counts = {name: sum(p.numel() for p in child.parameters()) for name, child in self.named_children()}
        return {name: n for name, n in counts.items() if n}

"""The options of an MLP's body, declared once.

:class:`MLPOptions` is the one place where an option of the network's body (its widths, activation, dropout, norm,
categorical encoding) gets its name, type, default and documentation. :class:`~nnlit.MLPModule` and the heads take them
as keyword arguments and hand them on to it unchanged, LightningCLI lists them from it (``nnlit fit --model.help
nnlit.BinaryMLP``), :class:`~nnlit.MLP` builds from them, and the scikit-learn estimators expose each as a parameter.
Adding an option: a field here with its line under ``Args:``, its use in :class:`~nnlit.MLP`, and a parameter of the
estimators in :mod:`nnlit.sklearn` (a test fails until there is one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class MLPOptions:
    """The options of an MLP's body: everything :class:`~nnlit.MLP` takes besides its input and output widths.

    Args:
        hidden: hidden layer widths.
        activation: activation name (see :data:`nnlit.nn.ACTIVATIONS`).
        activation_kwargs: keyword arguments of the activation, e.g. ``{"negative_slope": 0.1}``.
        dropout: dropout probability after each hidden activation.
        norm: ``None``, ``"batch"`` or ``"layer"``.
        bias: whether the Linear layers have a bias.
        categories: the number of codes of each categorical input column (the last ``len(categories)`` of the
            ``in_features``; the nnlit CLI links it from the data module): those columns are one-hot encoded or
            embedded inside the network (see :class:`~nnlit.nn.categorical.CategoricalEncoder`). ``None``: every input
            column is numeric.
        max_one_hot: a categorical column of at most this many codes (unknown included) is one-hot encoded; a wider
            one gets a learned embedding. ``0`` embeds every column.
        embedding_dim: the width of every embedding; default ``min(600, round(1.6 · codes^0.56))`` per column.

    Example::

        >>> options = MLPOptions(hidden=[8], activation="tanh")
        >>> options.hidden, options.dropout
        ([8], 0.0)
        >>> MLPOptions.names()[:3]
        ('hidden', 'activation', 'activation_kwargs')
    """

    hidden: Sequence[int] = (64, 64)
    activation: str | None = "relu"
    activation_kwargs: dict[str, Any] | None = None
    dropout: float = 0.0
    norm: str | None = None
    bias: bool = True
    categories: Sequence[int] | None = None
    max_one_hot: int = 16
    embedding_dim: int | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The options' names, in the order they are declared."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def check_names(cls, owner: str, given: Iterable[str]) -> None:
        """Raises a ``TypeError`` naming ``owner`` (the class that was given them) and every option when a name in
        ``given`` is not an option (a dataclass would name only itself).

        Raises:
            TypeError: for an unknown name.
        """
        unknown = sorted(set(given) - set(cls.names()))
        if unknown:
            raise TypeError(
                f"{owner} got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; the network's options "
                f"are {', '.join(cls.names())}"
            )

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of :class:`~nnlit.MLP` (``hidden`` as a list)."""
        kwargs = {name: getattr(self, name) for name in self.names()}
        kwargs["hidden"] = list(self.hidden)
        return kwargs


__all__ = ["MLPOptions"]

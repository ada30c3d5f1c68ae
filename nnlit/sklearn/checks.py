"""The scikit-learn estimators' checks of their parameters and inputs, with the words scikit-learn uses."""

from __future__ import annotations

import copy
import difflib
import inspect
import warnings
from typing import Any

import numpy as np
from lightning.pytorch.callbacks import Callback

#: scikit-learn's MLP parameters that nnlit names otherwise: their name here, and how they differ when they do
SKLEARN_NAMES: dict[str, str] = {
    "hidden_layer_sizes": "`hidden`",
    "max_iter": "`max_epochs`",
    "learning_rate_init": "`lr`",
    "alpha": "`weight_decay` (the optimizer's weight decay, where scikit-learn adds an L2 penalty to the loss)",
    "early_stopping": "`val_fraction` (early stopping is on when it is above 0)",
    "validation_fraction": "`val_fraction`",
    "n_iter_no_change": "`patience`",
    "solver": "`optimizer` (a torch.optim class such as torch.optim.SGD or torch.optim.Adam)",
    "momentum": "`optimizer=functools.partial(torch.optim.SGD, lr=..., momentum=...)`",
    "nesterovs_momentum": "`optimizer=functools.partial(torch.optim.SGD, lr=..., momentum=..., nesterov=True)`",
    "beta_1": "`optimizer=functools.partial(torch.optim.Adam, lr=..., betas=(beta_1, beta_2))`",
    "beta_2": "`optimizer=functools.partial(torch.optim.Adam, lr=..., betas=(beta_1, beta_2))`",
    "epsilon": "`optimizer=functools.partial(torch.optim.Adam, lr=..., eps=...)`",
}


def _check_parameter_names(cls: type, given: dict[str, Any]) -> None:
    """Raises for a keyword ``cls.__init__`` does not take, naming nnlit's name for a scikit-learn one or the closest
    of the accepted ones."""
    accepted = list(inspect.signature(cls).parameters)
    unknown = [name for name in given if name not in accepted]
    if not unknown:
        return
    name = unknown[0]
    if name in SKLEARN_NAMES:
        hint = f"; nnlit's {cls.__name__} calls scikit-learn's `{name}` {SKLEARN_NAMES[name]}"
    else:
        close = difflib.get_close_matches(name, accepted, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
    raise TypeError(
        f"{cls.__name__} got an unexpected keyword argument {name!r}{hint}. It takes: {', '.join(accepted)}"
    )


def _copies(callbacks: Any, name: str) -> list[Callback]:
    """Deep copies of ``callbacks`` for one fit: a fit never changes the estimator's parameters."""
    try:
        return copy.deepcopy(list(callbacks or []))
    except (TypeError, AttributeError) as err:
        raise TypeError(
            f"The callbacks in `{name}` are copied for each fit (the estimator's parameters stay as given), and one "
            f"cannot be: {err}"
        ) from err


def _string_columns(frame: Any) -> Any:
    """``frame`` with its column names as strings (the feature names nnlit matches by), unchanged when they are."""
    if all(isinstance(name, str) for name in frame.columns):
        return frame
    return frame.set_axis([str(name) for name in frame.columns], axis=1)


def _refuse_repeated_names(frame: Any) -> None:
    """Refuses a frame two of whose columns have the same name as text (``1`` and ``"1"``): nnlit matches columns by
    that name.

    Raises:
        ValueError: naming the columns.
    """
    seen: dict[str, Any] = {}
    for name in frame.columns:
        if str(name) in seen:
            raise ValueError(
                f"X has two columns named {str(name)!r} as text ({seen[str(name)]!r} and {name!r}): nnlit matches "
                "columns by their names as strings; rename one"
            )
        seen[str(name)] = name


def _refuse_sparse(X: Any) -> None:
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            "Sparse input is not supported: nnlit's MLPs take a dense matrix (use X.toarray(), or a dense "
            "transformer before the estimator)"
        )


#: the largest integer float32 holds exactly, with every integer below it
FLOAT32_EXACT_INTEGERS = 2**24


def _float32_targets(y: np.ndarray) -> np.ndarray:
    """``y`` (float64) as float32, the network's precision: a value beyond float32's range is refused, and a rounding
    that changes a value beyond 2**24 (where float32 no longer holds every integer) is said, once per fit.

    Raises:
        ValueError: naming the first value beyond float32's range and its row.
    """
    limit = float(np.finfo(np.float32).max)
    beyond = np.flatnonzero((np.abs(y) > limit).reshape(len(y), -1).any(axis=1))
    if beyond.size:
        value = y.reshape(len(y), -1)[beyond[0]]
        raise ValueError(
            f"Input y holds {value.tolist() if value.size > 1 else value.item()!r} (row {beyond[0]}), beyond float32's "
            f"range of ±{limit:.1e}, in which the network computes: rescale the target (divide it by a power of ten)"
        )
    rounded = y.astype(np.float32)
    changed = (np.abs(y) > FLOAT32_EXACT_INTEGERS) & (rounded.astype(np.float64) != y)
    if changed.any():
        warnings.warn(
            f"{int(changed.sum())} target value(s) beyond 2**24 = {FLOAT32_EXACT_INTEGERS}, where float32 no longer "
            f"holds every integer, change when the network reads them as float32 (the largest change: "
            f"{float(np.abs(rounded.astype(np.float64) - y).max()):g}): subtract an offset or rescale y to keep them",
            UserWarning,
            stacklevel=4,
        )
    return rounded

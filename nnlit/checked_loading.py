"""Lightning's ``load_from_checkpoint`` on checked plain data: the one implementation behind
:meth:`MLPModule.load_from_checkpoint <nnlit.models.base.MLPModule.load_from_checkpoint>` and
:meth:`TabularDataModule.load_from_checkpoint <nnlit.TabularDataModule.load_from_checkpoint>`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from nnlit.checkpoint_io import checked_hyperparameters, read_bytes


def checked_load_arguments(
    cls: Any,
    checkpoint_path: str | Path,
    hparams_file: str | Path | None,
    weights_only: bool | None,
    kwargs: dict[str, Any],
    refusal: str = "",
) -> tuple[io.BytesIO, dict[str, Any]]:
    """What to hand Lightning's ``load_from_checkpoint`` of ``cls``: the file's bytes (read once, so that Lightning
    builds from exactly the bytes that were checked) and the keyword arguments to build it with, its hyperparameters
    checked against nnlit's allowlist (see :mod:`nnlit.trust`) with ``kwargs`` over them, and no ``_instantiator``
    (so the class is built with ``cls(**hparams)``, never through one a file names).

    Raises:
        ValueError: for ``weights_only=False`` (``refusal`` says what to do instead); for a hyperparameter nnlit
            refuses to build from (:class:`~nnlit.trust.UntrustedCheckpointError`).
    """
    if weights_only is False:
        raise ValueError(
            f"weights_only=False builds the pickled objects of a checkpoint, which runs their code{refusal}"
        )
    data = read_bytes(checkpoint_path)
    hparams = checked_hyperparameters(checkpoint_path, cls.CHECKPOINT_HYPER_PARAMS_KEY, hparams_file, data)
    return io.BytesIO(data), {**hparams, "_instantiator": None, **kwargs}


__all__ = ["checked_load_arguments"]

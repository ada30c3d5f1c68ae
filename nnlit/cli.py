"""The ``nnlit`` command: one thin layer that hands each subcommand to its own module, imported only when it runs.

``nnlit fit`` / ``validate`` / ``test`` / ``predict`` go to the LightningCLI (:mod:`nnlit.lightning_cli`), ``nnlit
tune`` to :mod:`nnlit.tune`, ``nnlit doctor`` to :mod:`nnlit.doctor.command`, ``nnlit export`` to
:mod:`nnlit.export`, ``nnlit plot`` to :mod:`nnlit.plots`: ``nnlit --help`` and ``nnlit fit --print_config`` import
neither Optuna, scikit-learn, ONNX nor the plots. Nothing below this module imports it.
"""

from __future__ import annotations

import importlib
import os
import shlex
import sys
from typing import Any

from nnlit import quiet
from nnlit.callbacks.non_finite_loss import DOCTOR_HINT, NonFiniteLossError
from nnlit.command_errors import explain

#: the subcommands that are not Lightning's, and the module whose ``main(args)`` runs each
SUBCOMMANDS = {
    "plot": "nnlit.plots",
    "export": "nnlit.export",
    "doctor": "nnlit.doctor.command",
    "tune": "nnlit.tune",
}

#: set to 1 to see an error's traceback instead of its one-line message (as the ``--debug`` flag does)
DEBUG_VARIABLE = "NNLIT_DEBUG"


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``nnlit`` console script; ``args`` replaces ``sys.argv[1:]`` (for tests).

    ``nnlit plot …``, ``export``, ``doctor`` and ``tune`` go to the ``main`` of the module :data:`SUBCOMMANDS` names;
    every other subcommand (``fit``, ``validate``, ``test``, ``predict``) to the LightningCLI. An error ends the
    command with one message on stderr and exit status 2 (1 for an error nnlit did not foresee, and for a fit whose
    loss became NaN or infinite: the config ran and training failed); ``--debug`` anywhere in the arguments, or
    ``NNLIT_DEBUG=1``, shows the traceback instead."""
    argv = sys.argv[1:] if args is None else list(args)
    debug = "--debug" in argv or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    if "--debug" in argv:
        argv = [arg for arg in argv if arg != "--debug"]
        if args is None:
            sys.argv = [sys.argv[0], *argv]
        else:
            args = argv
    try:
        with quiet.command_output(argv[0] if argv else None):
            if argv and argv[0] in SUBCOMMANDS:
                importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
            else:
                from nnlit.lightning_cli import make

                make(args, run=True)  # None lets LightningCLI read sys.argv itself
    except Exception as err:
        if debug:
            raise
        message, foreseen = explain(err)
        if isinstance(err, NonFiniteLossError) and argv and argv[0] == "fit":  # the fit's own arguments, to copy
            message = message.replace(DOCTOR_HINT, _doctor_command(argv))
        sys.stderr.write(f"nnlit: error: {message}\n(--debug or {DEBUG_VARIABLE}=1 shows the traceback)\n")
        raise SystemExit(2 if foreseen else 1) from None


def _doctor_command(argv: list[str]) -> str:
    """``nnlit doctor`` with the arguments of ``nnlit fit …`` (``argv``, without the program)."""
    return "`" + shlex.join(["nnlit", "doctor", *argv[1:]]) + "`"


def __getattr__(name: str) -> Any:
    """``nnlit.cli.build`` and ``nnlit.cli.NNLitCLI``, imported from :mod:`nnlit.lightning_cli` when first asked for
    (``from nnlit.cli import build`` keeps working without every command importing the LightningCLI)."""
    if name in ("build", "NNLitCLI"):
        return getattr(importlib.import_module("nnlit.lightning_cli"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()

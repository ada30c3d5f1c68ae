"""The example configs shipped inside the package, reachable by name: ``nnlit fit --config quickstart``.

The repository's ``configs/`` folder is installed as ``nnlit/configs/`` (in a source checkout ``nnlit/configs`` is a
link to it), so a ``pip install``-ed nnlit has the quick start and the lessons without a clone. A ``--config`` value
that names an existing file is that file (``NAME.yaml`` in the working folder included); otherwise a name such as
``quickstart`` or ``heads/binary`` (``.yaml`` optional) is looked up among the shipped configs.
"""

from __future__ import annotations

import re
from pathlib import Path

#: the shipped configs' folder
FOLDER = Path(__file__).resolve().parent / "configs"

#: what a config name looks like (a path without spaces, braces or colons; inline YAML is left to the parser)
_NAME = re.compile(r"[\w./-]+")


def names() -> list[str]:
    """The shipped configs' names, ``quickstart`` and ``heads/binary`` style, sorted."""
    return sorted(path.relative_to(FOLDER).with_suffix("").as_posix() for path in FOLDER.rglob("*.yaml"))


def resolve(value: str) -> str:
    """``value`` when it is an existing file or not a name; else the shipped config it names, as a path.

    Raises:
        FileNotFoundError: ``value`` looks like a name or path but is neither a file nor a shipped config; the message
            lists the shipped names.
    """
    if Path(value).is_file() or not _NAME.fullmatch(value):
        return value
    if not value.endswith(".yaml") and Path(f"{value}.yaml").is_file():  # a user's own NAME.yaml comes first
        return f"{value}.yaml"
    name = value.removesuffix(".yaml").removeprefix("configs/")
    shipped = FOLDER / f"{name}.yaml"
    if shipped.is_file() and FOLDER.resolve() in shipped.resolve().parents:
        return str(shipped)
    raise FileNotFoundError(
        f"--config {value!r}: no such file, and no shipped config of that name. Shipped configs: {', '.join(names())}"
    )


def resolve_arguments(args: list[str]) -> list[str]:
    """``args`` with each ``--config`` / ``-c`` value passed through :func:`resolve`."""
    out = list(args)
    for index, arg in enumerate(out):
        if arg in ("--config", "-c") and index + 1 < len(out):
            out[index + 1] = resolve(out[index + 1])
        elif arg.startswith("--config="):
            out[index] = "--config=" + resolve(arg.removeprefix("--config="))
    return out

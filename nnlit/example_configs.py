"""The example configs shipped inside the package, reachable by name: ``nnlit fit --config quickstart``.

The repository's ``configs/`` folder is installed as ``nnlit/configs/`` (in a source checkout ``nnlit/configs`` is a
link to it), so a ``pip install``-ed nnlit has the quick start and the lessons without a clone. A ``--config`` value
that names an existing file is that file (``NAME.yaml`` in the working folder included); otherwise a name such as
``quickstart`` or ``heads/binary`` (``.yaml`` optional) is looked up among the shipped configs.

The search spaces of ``nnlit tune`` for those configs live in ``configs/search/`` under the config's name
(``configs/search/real/iris.yaml`` for ``real/iris``), reachable by name the same way
(``nnlit tune --config real/iris --search real/iris``); they are not configs, so :func:`names` and :func:`resolve`
leave them out.
"""

from __future__ import annotations

import re
from pathlib import Path

#: the shipped configs' folder
FOLDER = Path(__file__).resolve().parent / "configs"

#: the shipped search spaces' folder, inside the configs' and apart from them
SEARCH_FOLDER = FOLDER / "search"

#: what a config name looks like (a path without spaces, braces or colons; inline YAML is left to the parser)
_NAME = re.compile(r"[\w./-]+")


def names() -> list[str]:
    """The shipped configs' names, ``quickstart`` and ``heads/binary`` style, sorted (the search spaces left out)."""
    return _names(FOLDER, exclude=SEARCH_FOLDER)


def search_names() -> list[str]:
    """The shipped search spaces' names, ``quickstart`` and ``real/iris`` style, sorted."""
    return _names(SEARCH_FOLDER)


def resolve(value: str) -> str:
    """``value`` when it is an existing file or not a name; else the shipped config it names, as a path.

    Raises:
        FileNotFoundError: ``value`` looks like a name or path but is neither a file nor a shipped config; the message
            lists the shipped names.
    """
    return _resolve(value, "--config", "config", FOLDER, exclude=SEARCH_FOLDER, prefix="configs/")


def resolve_search(value: str) -> str:
    """``value`` when it is an existing file or not a name; else the shipped search space it names, as a path.

    Raises:
        FileNotFoundError: ``value`` looks like a name or path but is neither a file nor a shipped search space; the
            message lists the shipped names.
    """
    return _resolve(value, "--search", "search space", SEARCH_FOLDER, prefix="configs/search/")


def _names(folder: Path, exclude: Path | None = None) -> list[str]:
    paths = (path for path in folder.rglob("*.yaml") if exclude is None or exclude not in path.parents)
    return sorted(path.relative_to(folder).with_suffix("").as_posix() for path in paths)


def _resolve(value: str, flag: str, kind: str, folder: Path, prefix: str, exclude: Path | None = None) -> str:
    if Path(value).is_file() or not _NAME.fullmatch(value):
        return value
    if not value.endswith(".yaml") and Path(f"{value}.yaml").is_file():  # a user's own NAME.yaml comes first
        return f"{value}.yaml"
    name = value.removesuffix(".yaml").removeprefix(prefix)
    shipped = (folder / f"{name}.yaml").resolve()
    inside = folder.resolve() in shipped.parents and (exclude is None or exclude.resolve() not in shipped.parents)
    if shipped.is_file() and inside:
        return str(folder / f"{name}.yaml")
    shipped_names = ", ".join(_names(folder, exclude))
    raise FileNotFoundError(
        f"{flag} {value!r}: no such file, and no shipped {kind} of that name. Shipped {kind}s: {shipped_names}"
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

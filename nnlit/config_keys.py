"""Dotted config keys: ``--key=value`` arguments read, and a key set in a config tree.

``nnlit tune`` writes ``best.yaml`` and ``nnlit doctor --write-config`` a fixed config with these: the base config,
the command's overrides, then the searched or fixed values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml


def parse_overrides(overrides: Sequence[str]) -> list[tuple[str, Any]]:
    """``--key=value`` (or ``--key value``; a ``--key`` alone is ``true``) arguments as ``(key, value)`` pairs, each
    value read as YAML (``--trainer.max_epochs=3`` gives ``("trainer.max_epochs", 3)``).

    Raises:
        ValueError: an argument that does not start with ``--``, naming it.
    """
    pairs, items = [], list(overrides)
    while items:
        item = items.pop(0)
        if not item.startswith("--"):
            raise ValueError(f"Expected --key=value, got {item!r}")
        key, equals, value = item[2:].partition("=")
        if not equals:
            value = items.pop(0) if items and not items[0].startswith("--") else "true"
        pairs.append((key, yaml.safe_load(value)))
    return pairs


def set_key(tree: dict[str, Any], key: str, value: Any, where: str = "the config") -> None:
    """Sets dotted ``key`` in a config tree, making the mappings on its way; a class given by its path alone
    (``optimizer: torch.optim.SGD``) becomes its ``class_path``. ``where`` names the tree in the error.

    Example::

        >>> tree = {"model": {"init_args": {"optimizer": "torch.optim.SGD"}}}
        >>> set_key(tree, "model.init_args.optimizer.init_args.lr", 0.01)
        >>> tree
        {'model': {'init_args': {'optimizer': {'class_path': 'torch.optim.SGD', 'init_args': {'lr': 0.01}}}}}

    Raises:
        ValueError: a key below a value that is not a mapping (``trainer.max_epochs.x``), naming both.
    """
    node = tree
    *parents, last = key.split(".")
    for part in parents:
        child = node.get(part)
        if isinstance(child, str):  # a class given by its path alone
            child = node[part] = {"class_path": child}
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ValueError(f"Cannot set {key!r}: {part!r} is not a mapping in {where}")
        node = child
    node[last] = value


__all__ = ["parse_overrides", "set_key"]

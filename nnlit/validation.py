"""The argument check nnlit writes once: an integer with a lower bound, its message naming the argument and value."""

from __future__ import annotations

from typing import Any


def check_int(
    name: str, value: Any, minimum: int = 1, allow_none: bool = False, where: str = "", hint: str = ""
) -> None:
    """Raises unless ``value`` is an ``int`` (a ``bool`` is not) of at least ``minimum``, or ``None`` when allowed.

    Args:
        name: the argument, as the message names it (in backticks).
        value: what was given.
        minimum: the smallest value accepted.
        allow_none: ``None`` is accepted too.
        where: words after the name, e.g. ``" of a built-in set"``.
        hint: words after the value, e.g. what to do instead.

    Raises:
        ValueError: ``"`name` must be a positive integer, got 0"`` (``an integer >= N`` for another minimum).

    Example::

        >>> check_int("batch_size", 64)
        >>> check_int("pieces", 1, minimum=2)
        Traceback (most recent call last):
        ...
        ValueError: `pieces` must be an integer >= 2, got 1
    """
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"`{name}`{where} must be {what}{' or None' if allow_none else ''}, got {value!r}{hint}")


__all__ = ["check_int"]

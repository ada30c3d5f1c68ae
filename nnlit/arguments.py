"""The arguments a class's constructor accepts, as LightningCLI sees them.

A class that hands ``**kwargs`` on (a head to :class:`~nnlit.MLPModule`, which hands its own to
:class:`~nnlit.nn.options.MLPOptions`) accepts more than its signature names. jsonargparse, which LightningCLI builds
classes with, follows those ``**kwargs`` through the source; :func:`init_arguments` asks it, so that the saved
hyperparameters, the command's "did you mean" and the checkpoint reader agree with ``nnlit fit --model.help``.
"""

from __future__ import annotations

import functools
import inspect

from jsonargparse import ArgumentParser


@functools.cache
def init_arguments(cls: type) -> tuple[str, ...]:
    """The names of the keyword arguments ``cls(...)`` accepts, in order, ``**kwargs`` followed to where they are
    used; an argument that a subclass passes on itself (``out_features`` for :class:`~nnlit.BinaryMLP`) is not one of
    them. Where jsonargparse cannot read the class, its signature's names.

    Example::

        >>> from nnlit import BinaryMLP
        >>> names = init_arguments(BinaryMLP)
        >>> names[:4], "hidden" in names, "out_features" in names
        (('in_features', 'num_classes', 'pos_weight', 'threshold'), True, False)
    """
    parser = ArgumentParser(exit_on_error=False)
    try:
        keys = parser.add_class_arguments(cls, "init", fail_untyped=False, sub_configs=True)
    except Exception:  # a class jsonargparse cannot read (no source, an unsupported type): what Python says
        parameters = inspect.signature(cls).parameters.values()
        return tuple(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return tuple(key.removeprefix("init.") for key in keys)


__all__ = ["init_arguments"]

"""A Griffe extension for the API reference (mkdocs.yml): nnlit's docstrings cross-reference with Sphinx roles
(:class:`~nnlit.MLP`, :meth:`compute_loss`) and introduce doctests with reST's ``Example::``, which Markdown would
show as written. Each role becomes inline code of the name it shows (the last part of a ``~``-prefixed target, the
whole target otherwise), and ``Example::`` a Google-style ``Examples:`` section."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|attr|data|mod|obj|exc):`(~?)([^`]+)`")
EXAMPLE = re.compile(r"^([ \t]*)Examples?::[ \t]*\n(?:[ \t]*\n)?", flags=re.M)


def _code(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = EXAMPLE.sub(r"\1Examples:\n", ROLE.sub(_code, obj.docstring.value))

"""The code blocks of the README and the documentation pages, and the checks every one of them gets.

A page's ``--8<-- "path"`` lines (the snippets extension of mkdocs.yml) are replaced by the file they name, as the
site shows them. Every ```python block runs in a folder of its own and must be checked for something: what it prints
(a ``prints`` table keyed by a piece of its code) or the pictures it writes. Every ```yaml block must name classes
that import, and the callbacks among them must build.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = re.compile(r'^[ \t]*--8<--[ \t]+"([^"]+)"[ \t]*$', flags=re.M)


def expand_snippets(text: str) -> str:
    """``text`` with each ``--8<-- "path"`` line replaced by that file (relative to the repository root)."""
    return SNIPPET.sub(lambda match: ROOT.joinpath(match.group(1)).read_text().rstrip("\n"), text)


def blocks(path: Path, language: str) -> list[str]:
    """The fenced blocks of ``language`` in a Markdown file, snippets included."""
    return re.findall(rf"```{language}\n(.*?)```", expand_snippets(path.read_text()), flags=re.S)


def run_python_block(code: str, name: str, folder: Path, prints: Mapping[str, list[str]], capsys: Any) -> None:
    """Runs one example in ``folder`` (the current directory) and checks what it printed or drew."""
    exec(compile(code, name, "exec"), {"__name__": "doc_example"})
    out = capsys.readouterr().out
    if "print(" in code:
        expected = [text for marker, texts in prints.items() if marker in code for text in texts]
        assert expected, f"{name} prints something no test checks: add it to PRINTS"
        assert all(text in out for text in expected), (expected, out)
    pictures = re.findall(r'"(\w+\.png)"', code)
    assert all((folder / picture).stat().st_size > 0 for picture in pictures)
    assert "print(" in code or pictures, f"{name} is checked for nothing: print something or write a picture"


def class_specs(node: Any) -> Iterator[dict[str, Any]]:
    """Every {class_path, init_args} mapping in a parsed YAML tree."""
    if isinstance(node, dict):
        if "class_path" in node:
            yield node
        for value in node.values():
            yield from class_specs(value)
    elif isinstance(node, list):
        for value in node:
            yield from class_specs(value)


def check_yaml_block(text: str) -> None:
    """The classes a YAML example names import, and its callbacks build from their ``init_args``."""
    import yaml

    specs = list(class_specs(yaml.safe_load(text)))
    assert specs
    for spec in specs:
        module, _, name = spec["class_path"].rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        if spec["class_path"].startswith(("nnlit.callbacks", "lightning.pytorch.callbacks")):
            cls(**spec.get("init_args", {}))


def relative_links(path: Path) -> list[str]:
    """The targets of a Markdown file's links and images that are not web addresses, anchors kept."""
    targets = re.findall(r"\]\(([^)\s]+)\)", path.read_text())
    return [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]

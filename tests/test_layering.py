"""The import rules of docs/architecture.md, read from the source with ``ast``: what each layer may import, no cycle
at import time, nothing but the top layer importing the command or the package root; and what ``nnlit --help`` and
``nnlit fit --print_config`` load."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nnlit"

#: the layers of docs/architecture.md, from the ground up: a module imports only its own layer and those before it
LAYERS = [
    ("ground", ["nnlit.validation", "nnlit.arguments", "nnlit.version", "nnlit.safe_write", "nnlit.quiet",
                "nnlit.lightning_internals", "nnlit.optuna_internals", "nnlit.prediction_table", "nnlit.distributed"]),
    ("nn, diagnosis", ["nnlit.nn", "nnlit.diagnosis"]),
    ("checkpoints", ["nnlit.trust", "nnlit.checkpoint_io", "nnlit.checked_loading", "nnlit.runs"]),
    ("data", ["nnlit.data"]),
    ("speed", ["nnlit.speed"]),
    ("callbacks, loggers", ["nnlit.callbacks", "nnlit.loggers"]),
    ("models", ["nnlit.models"]),
    ("library", ["nnlit.checkpoint", "nnlit.predictor", "nnlit.config_keys", "nnlit.sklearn"]),
    ("commands", ["nnlit.lightning_cli", "nnlit.command_errors", "nnlit.tune", "nnlit.doctor", "nnlit.export",
                  "nnlit.raw_rows_onnx", "nnlit.plots", "nnlit.example_configs"]),
    ("top", ["nnlit.cli", "nnlit.__main__", "nnlit"]),
]  # fmt: skip
COMMANDS = (*LAYERS[-2][1], "nnlit.cli")
#: the library below the commands
LOW = tuple(name for _, names in LAYERS[:-2] for name in names)
#: what the callbacks may import of nnlit (besides torch and Lightning): they run on any LightningModule
CALLBACKS_MAY_IMPORT = ("nnlit.callbacks", "nnlit.diagnosis", "nnlit.validation", "nnlit.safe_write",
                        "nnlit.prediction_table")  # fmt: skip
#: the one import of a higher layer: SavePlots draws with nnlit.plots (matplotlib, an optional extra) when a fit ends
DRAWING = ("nnlit.callbacks.save_plots", "nnlit.plots")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> list[tuple[str, bool]]:
    """Each nnlit module ``path`` imports, and whether at import time (not inside a function nor for type checking).
    ``from nnlit import quiet`` imports the module ``nnlit.quiet``; ``from nnlit import MLP`` the package root."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, at_import: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, at_import) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                for alias in child.names:
                    name = f"{child.module}.{alias.name}"
                    found.append((name if is_module(name) else child.module, at_import))
            inside = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, at_import and not inside)

    visit(ast.parse(path.read_text()), True)
    return [(name, at_import) for name, at_import in found if name == "nnlit" or name.startswith("nnlit.")]


GRAPH = {module_name(path): imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def test_the_graph_is_read():
    assert ("nnlit.nn.mlp", True) in GRAPH["nnlit.models.base"]
    assert ("nnlit.lightning_cli", False) in GRAPH["nnlit.cli"]  # inside main: imported when a subcommand runs


def test_nothing_but_the_package_itself_imports_names_from_the_package_root():
    offenders = [module for module, names in GRAPH.items() if module != "nnlit" and ("nnlit", True) in names]
    offenders += [module for module, names in GRAPH.items() if module != "nnlit" and ("nnlit", False) in names]
    assert not offenders, f"import from the module that defines the name, not from the package root: {offenders}"


def test_only_the_top_layer_imports_the_command():
    importers = [module for module, names in GRAPH.items() if any(name == "nnlit.cli" for name, _ in names)]
    assert importers == ["nnlit.__main__"]


def test_the_library_below_the_commands_imports_none_of_them():
    offenders = [
        (module, name)
        for module, names in GRAPH.items()
        if within(module, LOW)
        for name, at_import in names
        if within(name, COMMANDS)
        and not (module == "nnlit.callbacks.save_plots" and name == "nnlit.plots" and not at_import)
    ]  # SavePlots draws with nnlit.plots (matplotlib, an optional extra) when the fit ends, imported there
    assert not offenders


def test_the_callbacks_import_only_what_any_lightning_module_has():
    offenders = [
        (module, name)
        for module, names in GRAPH.items()
        if within(module, ("nnlit.callbacks",))
        for name, at_import in names
        if at_import and not within(name, CALLBACKS_MAY_IMPORT)
    ]
    assert not offenders


def test_the_network_and_the_diagnosis_rules_stand_alone():
    for package, allowed in (("nnlit.nn", ("nnlit.nn", "nnlit.validation")), ("nnlit.diagnosis", ("nnlit.diagnosis",))):
        outside = [
            (m, n) for m, names in GRAPH.items() if within(m, (package,)) for n, _ in names if not within(n, allowed)
        ]
        assert not outside, package


def layer(module: str) -> int:
    """The index in :data:`LAYERS` of the longest prefix that names ``module``."""
    found = [
        (len(p), i)
        for i, (_, names) in enumerate(LAYERS)
        for p in names
        if module == p or (p != "nnlit" and within(module, (p,)))  # the package root is itself alone
    ]
    assert found, f"{module} is in no layer of docs/architecture.md: add it to LAYERS and to the page"
    return max(found)[1]


def test_every_module_imports_only_its_layer_and_those_below():
    upward = [
        f"{module} ({LAYERS[layer(module)][0]}) imports {name} ({LAYERS[layer(name)][0]})"
        for module, names in GRAPH.items()
        for name, at_import in names
        if layer(name) > layer(module) and not ((module, name) == DRAWING and not at_import)
    ]
    assert not upward


@pytest.mark.parametrize("inside_functions", [False, True])
def test_no_import_cycle(inside_functions):
    edges = {
        module: {name for name, at_import in names if (at_import or inside_functions) and name in GRAPH}
        for module, names in GRAPH.items()
    }
    edges["nnlit"] = set()  # the package root re-exports; each module's own imports are what can cycle
    cycles = []
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for name in sorted(edges[module]):
            if state.get(name) == 1:
                cycles.append([*path[path.index(name) :], name])
            elif name not in state:
                walk(name, [*path, name])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            walk(module, [module])
    assert not cycles


#: packages nnlit's command imports only for the subcommand that needs them (Lightning itself imports matplotlib,
#: scipy and rich when they are installed, so those are not nnlit's to leave out)
NOT_FOR_FIT = ("optuna", "sklearn", "onnx", "onnxruntime", "pandas", "pyarrow", "nnlit.plots", "nnlit.tune",
               "nnlit.doctor", "nnlit.export", "nnlit.raw_rows_onnx", "nnlit.sklearn")  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize("args", [["--help"], ["fit", "--config", "quickstart", "--print_config"]])
def test_the_command_loads_only_what_the_subcommand_uses(args):
    code = (
        "import sys\nfrom nnlit.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', ' '.join(m for m in {NOT_FOR_FIT!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = done.stdout.rsplit("LOADED", 1)[1].split()
    assert loaded == []

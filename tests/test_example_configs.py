"""Shipped configs by name: ``nnlit fit --config quickstart`` without a clone."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnlit import example_configs
from nnlit.cli import build

ROOT = Path(__file__).resolve().parents[1]


def test_every_repository_config_and_search_space_is_shipped_under_its_name():
    found = [p.relative_to(ROOT / "configs").with_suffix("").as_posix() for p in ROOT.glob("configs/**/*.yaml")]
    assert example_configs.names() == sorted(name for name in found if not name.startswith("search/"))
    assert example_configs.search_names() == sorted(n.removeprefix("search/") for n in found if n.startswith("search/"))
    assert "quickstart" in found and "heads/binary" in found
    # a search space beside each real config and the quick start
    assert {"quickstart", "real/iris", "real/wine", "real/breast_cancer", "real/diabetes"} <= set(
        example_configs.search_names()
    )


def test_the_package_data_globs_take_every_file_of_configs():
    """The wheel takes configs/ through pyproject's package-data globs (scripts/check_package.sh compares the installed
    list with the repository's too)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["nnlit"]
    taken = {p for pattern in globs for p in (ROOT / "nnlit").glob(pattern) if p.is_file()}
    every = {ROOT / "nnlit" / p.relative_to(ROOT) for p in ROOT.glob("configs/**/*") if p.is_file()}
    assert every and every <= taken


@pytest.mark.parametrize("value", ["quickstart", "quickstart.yaml", "configs/quickstart.yaml"])
def test_a_name_resolves_to_the_shipped_file(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    resolved = Path(example_configs.resolve(value))
    assert resolved.read_text() == (ROOT / "configs/quickstart.yaml").read_text()


def test_an_existing_file_and_inline_yaml_are_left_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("quickstart").write_text("trainer: {max_epochs: 1}\n")
    assert example_configs.resolve("quickstart") == "quickstart"
    inline = "{trainer: {max_epochs: 1}}"
    assert example_configs.resolve(inline) == inline


@pytest.mark.parametrize("value", ["nosuch", "heads/nosuch", "../pyproject"])
def test_an_unknown_name_lists_the_shipped_configs(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        FileNotFoundError, match=rf"--config '{value}': no such file, .* quickstart, real/breast_cancer"
    ):
        example_configs.resolve(value)


def test_the_command_takes_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["--config", "heads/binary"], ["--config=heads/binary"], ["-c", "heads/binary"]):
        cli = build(["--trainer.max_epochs=1", *args])
        assert type(cli.model).__name__ == "BinaryMLP"


@pytest.mark.parametrize("value", ["real/iris", "real/iris.yaml", "configs/search/real/iris.yaml"])
def test_a_search_name_resolves_to_the_shipped_search_space(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    resolved = Path(example_configs.resolve_search(value))
    assert resolved.read_text() == (ROOT / "configs/search/real/iris.yaml").read_text()


def test_a_search_space_is_not_a_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not any(name.startswith("search/") for name in example_configs.names())
    with pytest.raises(FileNotFoundError, match=r"--config 'search/real/iris': no such file, .* Shipped configs: "):
        example_configs.resolve("search/real/iris")


@pytest.mark.parametrize("value", ["nosuch", "real/nosuch", "../quickstart"])
def test_an_unknown_search_name_lists_the_shipped_search_spaces(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    match = rf"--search '{value}': no such file, and no shipped search space of that name. Shipped search spaces: "
    with pytest.raises(FileNotFoundError, match=match + "quickstart, real/breast_cancer, real/diabetes, real/iris"):
        example_configs.resolve_search(value)

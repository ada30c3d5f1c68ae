"""The README's layout section names every module of the package: a newcomer finds each concept in the file named
after it."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_layout_names_every_module():
    readme = ROOT.joinpath("README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    modules = [p for p in ROOT.joinpath("nnlit").rglob("*.py") if p.name != "__init__.py"]
    unnamed = []
    for path in modules:
        relative = path.relative_to(ROOT).as_posix()
        folder = path.parent.relative_to(ROOT).as_posix() + "/"
        if relative not in layout and path.name not in layout and f"{folder} " not in layout:
            unnamed.append(relative)
    assert not unnamed, f"modules the README's layout does not name: {unnamed}"

"""What the pages say about installing is what pyproject.toml and requirements/ declare: the versions they quote, the
extras they name and list, the torch release and the README's no-clone line."""

import re

import pytest
from doc_blocks import ROOT
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")  # Python 3.11+: 3.10 runs the rest of the suite

PYPROJECT = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text())["project"]
PAGES = [ROOT / "README.md", *sorted(ROOT.joinpath("docs").glob("*.md"))]
#: a quoted lower bound: "scikit-learn ≥ 1.6.1", "numpy >= 1.24"
QUOTED = re.compile(r"\b([A-Za-z][A-Za-z0-9_.-]*) ?(?:≥|>=) ?([0-9]+(?:\.[0-9]+)*)")


def lower_bounds():
    """The lowest version of each requirement of nnlit and its extras, by lower-case name; Python's too."""
    bounds = {"python": PYPROJECT["requires-python"].removeprefix(">=")}
    extras = PYPROJECT["optional-dependencies"].values()
    requirements = [*PYPROJECT["dependencies"], *(r for extra in extras for r in extra)]
    for text in requirements:
        requirement = Requirement(text)
        for spec in requirement.specifier:
            if spec.operator == ">=":
                bounds[requirement.name.lower()] = spec.version
    return bounds


def quoted_versions():
    for page in PAGES:
        for name, version in QUOTED.findall(page.read_text().replace("\n", " ")):
            yield page.name, name.lower(), version


def test_the_pages_quote_pyprojects_lower_bounds():
    bounds = lower_bounds()
    quoted = [(page, name, version) for page, name, version in quoted_versions() if name in bounds]
    assert len(quoted) >= 10  # serving.md's "Honest versions" lists them all
    wrong = [(page, name, version, bounds[name]) for page, name, version in quoted if version != bounds[name]]
    assert not wrong, f"pages quoting other versions than pyproject.toml (page, name, quoted, declared): {wrong}"


def test_the_quoted_names_are_declared():
    bounds = lower_bounds()
    others = {name for _, name, _ in quoted_versions()} - set(bounds)
    assert not others, f"the pages quote versions of packages pyproject.toml does not declare: {others}"


def test_the_pages_name_existing_extras():
    extras = set(PYPROJECT["optional-dependencies"])
    named = {e.strip() for page in PAGES for group in re.findall(r"nnlit\[([a-z,]+)\]", page.read_text())
             for e in group.split(",")}  # fmt: skip
    named |= {e.strip() for group in re.findall(r'-e "\.\[([a-z,]+)\]"', ROOT.joinpath("README.md").read_text())
              for e in group.split(",")}  # fmt: skip
    assert named and named <= extras, named - extras


def test_every_extra_is_listed_with_what_it_is_for():
    page = ROOT.joinpath("docs", "getting-started.md").read_text()
    listed = set(re.findall(r"^\| `([a-z]+)` +\|", page, flags=re.M))
    assert listed == set(PYPROJECT["optional-dependencies"])


def test_the_torch_release_the_pages_install_is_the_pinned_one():
    lines = ROOT.joinpath("requirements", "torch-cpu.txt").read_text().splitlines()
    (pinned,) = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    assert pinned.name == "torch"
    quoted = {version for page in PAGES for version in re.findall(r"torch==([0-9.]+)", page.read_text())}
    assert quoted == {str(next(iter(pinned.specifier)).version)}


def test_the_readme_installs_enough_for_a_csv():
    """The first own CSV needs pandas: the no-clone line installs the files extra."""
    readme = ROOT.joinpath("README.md").read_text()
    (line,) = re.findall(r'pip install "nnlit\[([a-z,]+)\]"', readme)
    assert "files" in line.split(",")
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme.replace("\n", " ")

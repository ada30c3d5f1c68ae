"""The documentation pages: their examples run as written, the figures they quote come from a run, and the site
builds with no warning (mkdocs.yml; broken links and anchors are warnings)."""

import math
import os
import re
import subprocess
import sys

import pytest
import yaml
from doc_blocks import ROOT, blocks, check_yaml_block, relative_links, run_python_block
from helpers import load_script

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
BLOCKS = [(page, index, code) for page in PAGES for index, code in enumerate(blocks(page, "python"))]
YAML_BLOCKS = [(page, index, text) for page in PAGES for index, text in enumerate(blocks(page, "yaml"))]
FIGURES = DOCS / "figures" / "quickstart.md"

#: what a page's example that prints must print, keyed by a piece of its code
PRINTS = {
    "layer_parameters": ["{'linear1': 36, 'output': 10}", "val/acc = "],
    'export("spiral.ckpt"': ["True ["],  # the ONNX file's outputs equal the module's
    'Predictor.from_checkpoint("credit.ckpt")': ["['row', 'prediction', 'prob_no', 'prob_yes'] (5, 4)"],
    'Predictor.from_checkpoint("customers.ckpt")': ["4 [4, 31]", "{'city': 1, 'plan': 0}"],
    "GridSearchCV(pipeline": ["['mlpclassifier__hidden', 'mlpclassifier__lr'] True"],
    "MLPRegressor(hidden=(32,)": ["['city'] 40 True"],
    'table.to_csv("customers.csv"': ["{'customer_id': 0, 'age': 147, 'city': 45, 'plan': 0, 'zone': 0, 'bought': 0}"],
    'export("customers.ckpt", "customers.onnx", raw_rows=True)': [
        "[('age', 'tensor(float)'), ('city', 'tensor(string)'), ('plan', 'tensor(string)')]"
    ],
}
#: examples run elsewhere, keyed by a piece of their code: the test that runs them
RUN_ELSEWHERE = {
    'ort.InferenceSession("customers.onnx")': "tests/test_raw_rows_onnx.py runs the client in a process without torch",
}


def block_id(block):
    page, index, _ = block
    return f"{page.name}[{index}]"


def test_pages_have_python_examples():
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_page_example_runs(block, tmp_path, monkeypatch, capsys):
    page, index, code = block
    elsewhere = [test for marker, test in RUN_ELSEWHERE.items() if marker in code]
    if elsewhere:
        pytest.skip(elsewhere[0])
    monkeypatch.chdir(tmp_path)
    run_python_block(code, f"docs/{page.name}[python block {index}]", tmp_path, PRINTS, capsys)


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=block_id)
def test_page_yaml_builds(block, tmp_path):
    page, _, text = block
    if page.name == "sweeps.md":  # a search space, not a config: nnlit tune reads it
        from nnlit.tune import read_search

        (tmp_path / "search.yaml").write_text(text)
        assert read_search(tmp_path / "search.yaml")
        return
    check_yaml_block(text)


def test_the_key_by_key_config_is_the_quick_start_file():
    """configs.md explains configs/quickstart.yaml with a comment per key: the values must be the file's."""
    explained = [text for page, _, text in YAML_BLOCKS if page.name == "configs.md" and "seed_everything" in text]
    assert len(explained) == 1
    assert yaml.safe_load(explained[0]) == yaml.safe_load(ROOT.joinpath("configs", "quickstart.yaml").read_text())


def test_every_page_is_in_the_nav():
    config = ROOT.joinpath("mkdocs.yml").read_text()
    nav = set(re.findall(r"^  - [^:]+: (\S+\.md)$", config, flags=re.M))
    assert nav == {page.name for page in PAGES}


def test_readme_links_into_the_pages_find_their_headings():
    slugify = pytest.importorskip("markdown.extensions.toc").slugify
    for link in relative_links(ROOT / "README.md"):
        path, _, anchor = link.partition("#")
        if anchor and path.startswith("docs/"):
            headings = re.findall(r"^#+ (.+)$", ROOT.joinpath(path).read_text(), flags=re.M)
            assert anchor in {slugify(h.replace("`", ""), "-") for h in headings}, link


def quickstart_figures():
    """scripts/docs_figures.py, imported from its file (scripts/ is not a package)."""
    return load_script("scripts/docs_figures.py", "nnlit_docs_figures")


def test_the_committed_figures_are_complete():
    text = FIGURES.read_text()
    assert all(name in text for name in ("val/acc", "val/f1", "val/loss", "row,prediction,prob_0,prob_1,prob_2"))
    assert len(quickstart_figures().figures(text)) == 3 + 5 * 5  # three metrics, five rows of five numbers


@pytest.mark.slow
@pytest.mark.integration
def test_the_figures_the_pages_quote_still_hold(tmp_path):
    """Reruns the quick start (seeded: repeatable on a CPU) and compares with docs/figures/quickstart.md. When it
    fails because nnlit's training changed on purpose, rerun `python scripts/docs_figures.py` and commit the file."""
    out = tmp_path / "quickstart.md"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "docs_figures.py"), "--out", str(out)], check=True)
    figures = quickstart_figures().figures
    fresh, committed = figures(out.read_text()), figures(FIGURES.read_text())
    assert len(fresh) == len(committed)
    assert all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) for a, b in zip(fresh, committed)), (fresh, committed)


@pytest.mark.integration
def test_the_site_builds_without_warnings(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "index.html").is_file()

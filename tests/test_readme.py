"""The README's examples run as written, and its links lead to files that exist."""

import pytest
from doc_blocks import ROOT, blocks, check_yaml_block, relative_links, run_python_block

README = ROOT / "README.md"
BLOCKS = blocks(README, "python")
YAML_BLOCKS = blocks(README, "yaml")

#: what a README example that prints must print, keyed by a piece of its code (the pages' are in test_docs.py)
PRINTS = {
    'Predictor.from_checkpoint("spiral.ckpt")': ["['row', 'prediction', 'prob_0', 'prob_1', 'prob_2'] 2"],
}


def test_readme_has_python_examples():
    assert BLOCKS


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run_python_block(BLOCKS[index], f"README.md[python block {index}]", tmp_path, PRINTS, capsys)


def test_readme_yaml_builds():
    for text in YAML_BLOCKS:  # the README may have none: the configs are explained in docs/configs.md
        check_yaml_block(text)


def test_readme_links_lead_to_files():
    missing = [link for link in relative_links(README) if not ROOT.joinpath(link.split("#")[0]).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_readme_keeps_the_two_commands():
    """The project's promise: a fresh clone needs `make demo` and `make test`, and the README says so."""
    text = README.read_text()
    assert "make demo   # " in text and "make test   # " in text
    makefile = ROOT.joinpath("Makefile").read_text()
    assert "\ndemo:" in makefile and "\ntest:" in makefile

"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


#: what a README example that prints must print, keyed by a piece of its code
PRINTS = {
    "layer_parameters": ["{'linear1': 36, 'output': 10}", "val/acc = "],
    "ort.InferenceSession": ["True ["],  # the ONNX file's outputs equal the module's
    'Predictor.from_checkpoint("credit.ckpt")': ["['row', 'prediction', 'prob_no', 'prob_yes'] (5, 4)"],
    "customers.ckpt": ["4 [4, 31]", "{'city': 1, 'plan': 0}"],
}


def test_readme_has_python_examples():
    assert BLOCKS


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    if "print(" in BLOCKS[index]:
        expected = [text for marker, texts in PRINTS.items() if marker in BLOCKS[index] for text in texts]
        assert expected, "a README example prints something no test checks: add it to PRINTS"
        assert all(text in out for text in expected), (expected, out)
    pictures = re.findall(r'"(\w+\.png)"', BLOCKS[index])
    assert all((tmp_path / name).stat().st_size > 0 for name in pictures)
    assert "print(" in BLOCKS[index] or pictures  # every example is checked for something


YAML_BLOCKS = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)


def class_specs(node):
    """Every {class_path, init_args} mapping in a parsed YAML tree."""
    if isinstance(node, dict):
        if "class_path" in node:
            yield node
        for value in node.values():
            yield from class_specs(value)
    elif isinstance(node, list):
        for value in node:
            yield from class_specs(value)


@pytest.mark.parametrize("index", range(len(YAML_BLOCKS)))
def test_readme_yaml_builds(index):
    import importlib

    import yaml

    specs = list(class_specs(yaml.safe_load(YAML_BLOCKS[index])))
    assert specs
    for spec in specs:
        module, _, name = spec["class_path"].rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        if spec["class_path"].startswith(("nnlit.callbacks", "lightning.pytorch.callbacks")):
            cls(**spec.get("init_args", {}))

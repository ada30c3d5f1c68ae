"""docs/data.md's "Your own table", as written: its Python block makes the files, its YAML block is the config, its
commands run in order through the `nnlit` command's entry point, and each error of its table is what the command says
for the cause it gives."""

import io
import os
import re
import shutil
import sys

import pytest
import yaml
from doc_blocks import ROOT, expand_snippets

from nnlit.cli import main

pd = pytest.importorskip("pandas")

PAGE = ROOT / "docs" / "data.md"


def section():
    text = expand_snippets(PAGE.read_text())
    start = text.index("## Your own table")
    return text[start : text.index("\n## ", start + 1)]


def block(language, containing=""):
    (found,) = [b for b in re.findall(rf"```{language}\n(.*?)```", section(), flags=re.S) if containing in b]
    return found


def commands():
    lines = [line.split("  #")[0].strip() for line in block("bash").splitlines()]
    return [line.split()[1:] for line in lines if line.startswith("nnlit ")]


def error_rows():
    """(the start of the message, the fix) of each row of the page's table of errors."""
    rows = re.findall(r"^\| `(.+?)` \| .+? \| (.+?) \|$", section(), flags=re.M)
    return [(start.replace("…", ""), fix) for start, fix in rows]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The page's files and config, in a folder of their own."""
    root = tmp_path_factory.mktemp("own_table")
    here = os.getcwd()
    os.chdir(root)
    try:
        exec(compile(block("python", "customers.csv"), "data.md[your own table]", "exec"), {"__name__": "page"})
    finally:
        os.chdir(here)
    (root / "customers.yaml").write_text(block("yaml", "path: customers.csv"))
    return root


def nnlit(args, capsys):
    """``nnlit ARGS``: what it printed on stdout and stderr, or SystemExit's code with them."""
    capsys.readouterr()
    code = 0
    try:
        main(args)
    except SystemExit as exited:
        code = exited.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow  # four commands, one a 20-epoch fit and one an ONNX export
def test_the_pages_commands_run_as_written(folder, capsys, monkeypatch):
    monkeypatch.chdir(folder)
    ran = [cmd[0] for cmd in commands()]
    assert ran == ["fit", "validate", "predict", "export"]
    outputs = {}
    for args in commands():
        code, out, err = nnlit(args, capsys)
        assert code == 0, err[-3000:]
        outputs[args[0]] = out + err
    (report,) = folder.glob("runs/customers/lightning_logs/version_0/report.txt")
    assert "20 epochs" in report.read_text()
    assert (report.parent / "checkpoints" / "best.ckpt").is_file()
    assert "val/acc" in outputs["validate"] and "val/auroc" in outputs["validate"]
    assert "columns that are not features of the model, ignored: 'customer_id'" in outputs["predict"]
    written = pd.read_csv(folder / "predictions.csv")
    shown = pd.read_csv(io.StringIO(block("text", "row,prediction")))
    assert list(written.columns) == list(shown.columns) == ["row", "prediction", "prob_no", "prob_yes"]
    assert len(written) == 5
    clear = (shown["prob_yes"] - 0.5).abs() > 0.2  # the rows far from the threshold: the same label on any machine
    assert (written["prediction"][clear] == shown["prediction"][clear]).all(), written
    assert (folder / "customers.onnx").stat().st_size > 0 and "Wrote customers.onnx" in outputs["export"]


def cause(start, folder, monkeypatch):
    """The arguments that meet the error a row of the table names, from the page's own config and files."""
    fit = ["fit", "--config", "customers.yaml", "--trainer.max_epochs=1", "--report=false"]
    fit += ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    if start.startswith("Give exactly one data source"):  # the quick start's config with the page's file
        return ["fit", "--config", "quickstart", "--data.init_args.path=customers.csv"]
    if start.startswith("Data file not found"):
        return [*fit, "--data.init_args.path=customer.csv"]
    if start.startswith("Target column"):
        return [*fit, "--data.init_args.target=buyer"]
    if start.startswith("NaN in"):
        return [*fit, "--data.init_args.missing=error"]
    if start.startswith("Categorical column 'age'"):
        table = pd.read_csv(folder / "customers.csv").astype({"age": object})
        table.loc[5, "age"] = "unknown"
        table.to_csv(folder / "typo.csv", index=False)
        return [*fit, "--data.init_args.path=typo.csv"]
    if start.startswith("No best checkpoint"):  # the page's config without its checkpoint callbacks
        config = yaml.safe_load((folder / "customers.yaml").read_text())
        del config["trainer"]["callbacks"]
        (folder / "customers.yaml").write_text(yaml.safe_dump(config))
        assert main(fit) is None
        return ["validate", "--config", "customers.yaml", "--ckpt_path", "best"]
    if start.startswith("The prediction file"):
        assert main(fit) is None
        pd.read_csv(folder / "new_customers.csv").drop(columns="plan").to_csv(folder / "new_customers.csv", index=False)
        return ["predict", "--config", "customers.yaml", "--ckpt_path", "best"]
    if start.startswith("Reading 'customers.csv' needs pandas"):
        monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` fails, as without the files extra
        return fit
    raise AssertionError(f"no cause for the table's row {start!r}")


def test_the_table_lists_the_errors():
    starts = [start for start, _ in error_rows()]
    assert len(starts) == 8 and starts[0] == "Give exactly one data source"


@pytest.mark.parametrize("row", range(8))
def test_each_error_of_the_table_is_what_the_command_says(row, folder, tmp_path, capsys, monkeypatch):
    start, _ = error_rows()[row]
    for name in ("customers.csv", "new_customers.csv", "customers.yaml"):  # copies: the causes change files
        shutil.copy(folder / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    args = cause(start, tmp_path, monkeypatch)
    code, _, err = nnlit(args, capsys)
    assert code == 2, err[-2000:]
    line = next(line for line in err.splitlines() if line.startswith("nnlit: error: "))
    assert line.removeprefix("nnlit: error: ").startswith(start.rstrip("…").strip()), (start, line)

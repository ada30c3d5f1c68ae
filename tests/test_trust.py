"""A corpus of malicious checkpoints: every nnlit entry point that reads a checkpoint refuses each one, naming the key,
and none of their payloads runs (each would create a marker file)."""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import run_python

import nnlit
import nnlit.export
from nnlit import MulticlassMLP, Predictor, TabularDataModule
from nnlit.cli import main
from nnlit.trust import LIGHTNING_INSTANTIATORS, UntrustedCheckpointError

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--report=false"]


class _Payload:
    """A pickle that runs a shell command when it is read."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


def _popen(marker: Path) -> dict[str, Any]:
    return {"class_path": "subprocess.Popen", "init_args": {"args": ["touch", str(marker)]}}


def _set(*keys: str, value: Callable[[Path], Any]) -> Callable[[dict[str, Any], Path], None]:
    def change(checkpoint: dict[str, Any], marker: Path) -> None:
        target = checkpoint
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value(marker)

    return change


#: name -> (how the clean checkpoint is changed, the key the refusal must name)
CORPUS: dict[str, tuple[Callable[[dict[str, Any], Path], None], str]] = {
    "pickle payload": (_set("hyper_parameters", value=lambda m: _Payload(f"touch {m}")), r"posix\.system"),
    "class_path in activation_kwargs": (
        _set("hyper_parameters", "activation_kwargs", value=_popen),
        r"hyper_parameters\.activation_kwargs holds a class_path \('subprocess\.Popen'\)",
    ),
    "class_path nested in a list": (
        _set("hyper_parameters", "activation_kwargs", value=lambda m: {"inner": [_popen(m)]}),
        r"hyper_parameters\.activation_kwargs\.inner\[0\] holds a class_path",
    ),
    "class_path in the optimizer's init_args": (
        _set(
            "hyper_parameters",
            "optimizer",
            value=lambda m: {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1, "foreach": _popen(m)}},
        ),
        r"hyper_parameters\.optimizer\.init_args\.foreach holds a class_path",
    ),
    "optimizer naming a function": (
        _set(
            "hyper_parameters",
            "optimizer",
            value=lambda m: {"class_path": "pydoc.pipepager", "init_args": {"text": "", "cmd": f"touch {m}"}},
        ),
        r"hyper_parameters\.optimizer\.class_path names 'pydoc\.pipepager'",
    ),
    "optimizer naming a non-optimizer class": (
        _set("hyper_parameters", "optimizer", value=_popen),
        r"hyper_parameters\.optimizer\.class_path names 'subprocess\.Popen', which is not a subclass of "
        r"torch\.optim\.optimizer\.Optimizer",
    ),
    "scheduler naming a non-scheduler class": (
        _set("hyper_parameters", "lr_scheduler", value=_popen),
        r"hyper_parameters\.lr_scheduler\.class_path names 'subprocess\.Popen', which is not a subclass of "
        r"torch\.optim\.lr_scheduler\.LRScheduler",
    ),
    "foreign class in the nnlit record": (
        _set("nnlit", "class_path", value=lambda m: "subprocess.Popen"),
        r"nnlit\.class_path names 'subprocess\.Popen', which is not a LightningModule class",
    ),
    "foreign _class_path for LightningCLI's instantiator": (
        lambda c, m: c["hyper_parameters"].update(
            _class_path="subprocess.Popen", _instantiator=LIGHTNING_INSTANTIATORS[0], args=["touch", str(m)]
        ),
        r"hyper_parameters\._class_path names 'subprocess\.Popen'",
    ),
    "foreign _instantiator": (
        _set("hyper_parameters", "_instantiator", value=lambda m: "os.system"),
        r"hyper_parameters\._instantiator names 'os\.system'",
    ),
    "class_path in the data module's hyperparameters": (
        _set("datamodule_hyper_parameters", "features", value=_popen),
        r"datamodule_hyper_parameters is set, which nnlit never writes",
    ),
    "a path in the data module's hyperparameters": (
        _set("datamodule_hyper_parameters", "predict_path", value=lambda m: "/etc/hostname"),
        r"datamodule_hyper_parameters is set, which nnlit never writes",
    ),
    "hyperparameters under a legacy key": (
        lambda c, m: c.update(hparams={"pretrained": str(m)}),
        r"hparams holds hyperparameters in a form Lightning merges into the checked ones",
    ),
    "a callable as the hyperparameters' type": (
        lambda c, m: c.update(hparams_type=collections.OrderedDict),
        r"hparams_type must be a string, got type",
    ),
    "a checkpoint callback naming a file outside its folder": (
        lambda c, m: next(v for k, v in c["callbacks"].items() if k.startswith("ModelCheckpoint")).update(
            best_k_models={f"{m.parent}/checkpoints/../../important": 0.5}
        ),
        r"callbacks\[\"ModelCheckpoint.*\]\.best_k_models names '.*\.\./\.\./important', outside its own folder",
    ),
    "a checkpoint callback naming a local:// URL": (
        lambda c, m: next(v for k, v in c["callbacks"].items() if k.startswith("ModelCheckpoint")).update(
            best_model_path=f"local://{m.parent}"
        ),
        r"callbacks\[\"ModelCheckpoint.*\]\.best_model_path names 'local://.*', a path with a protocol \(local\)",
    ),
    "a checkpoint callback naming a remote URL outside its folder": (
        lambda c, m: next(v for k, v in c["callbacks"].items() if k.startswith("ModelCheckpoint")).update(
            last_model_path="s3://someone-elses-bucket/data"
        ),
        r"\.last_model_path names 's3://someone-elses-bucket/data', a path with a protocol \(s3\) outside the",
    ),
    "class_path in the fitted preprocessing": (
        _set("TabularDataModule", "classes", value=lambda m: [_popen(m), 1, 2]),
        r"TabularDataModule\.classes\[0\] holds a class_path",
    ),
    "a pretrained file named in the hyperparameters": (
        _set("hyper_parameters", "pretrained", value=lambda m: str(m)),
        r"hyper_parameters\.pretrained names a file",
    ),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One quick-start fit by the `nnlit` command: its folder, config and best checkpoint."""
    folder = tmp_path_factory.mktemp("run")
    config = ROOT / "configs/quickstart.yaml"
    args = ["--config", str(config), "--data.init_args.n_samples=300", f"--trainer.default_root_dir={folder}"]
    main(["fit", *args, "--trainer.max_epochs=1", *QUIET])
    (ckpt,) = folder.glob("lightning_logs/version_0/checkpoints/best.ckpt")
    rows = folder / "rows.csv"
    rows.write_text("x1,x2\n0.1,0.2\n-0.3,0.4\n")
    return {"folder": folder, "config": config, "ckpt": ckpt, "rows": rows}


def _entry_points(run: dict[str, Path], out: Path) -> dict[str, Callable[[Path], Any]]:
    base = ["--config", str(run["config"]), "--data.init_args.n_samples=300", f"--trainer.default_root_dir={out}"]
    plots = pytest.importorskip("nnlit.plots")
    return {
        "nnlit.load": lambda p: nnlit.load(p),
        "Predictor.from_checkpoint": lambda p: Predictor.from_checkpoint(p),
        "export": lambda p: nnlit.export.export(p, out / "m.pt", format="torchscript"),
        "plot": lambda p: plots.plot_run(next(run["folder"].glob("lightning_logs/version_0")), p, out),
        "nnlit predict --ckpt_path": lambda p: main(["predict", *base, f"--ckpt_path={p}", *QUIET]),
        "nnlit validate --ckpt_path": lambda p: main(["validate", *base, f"--ckpt_path={p}", *QUIET]),
        "nnlit test --ckpt_path": lambda p: main(
            ["test", *base, "--data.init_args.test_fraction=0.2", f"--ckpt_path={p}", *QUIET]
        ),
        "pretrained": lambda p: MulticlassMLP(in_features=2, num_classes=3, hidden=[64, 64], pretrained=str(p)),
        "data checkpoint": lambda p: TabularDataModule(checkpoint=str(p), predict_path=str(run["rows"])),
        "MulticlassMLP.load_from_checkpoint": lambda p: MulticlassMLP.load_from_checkpoint(p),
        "TabularDataModule.load_from_checkpoint": lambda p: TabularDataModule.load_from_checkpoint(p, dataset="xor"),
    }


ENTRY_POINTS = [
    "nnlit.load",
    "Predictor.from_checkpoint",
    "export",
    "plot",
    "nnlit predict --ckpt_path",
    "nnlit validate --ckpt_path",
    "nnlit test --ckpt_path",
    "pretrained",
    "data checkpoint",
    "MulticlassMLP.load_from_checkpoint",
    "TabularDataModule.load_from_checkpoint",
]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_the_clean_checkpoint_loads_everywhere(entry, run, tmp_path):
    _entry_points(run, tmp_path)[entry](run["ckpt"])


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_entry_point_refuses_every_malicious_file(name, entry, run, tmp_path, capsys):
    change, key = CORPUS[name]
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    checkpoint = torch.load(run["ckpt"], weights_only=True)
    change(checkpoint, marker)
    torch.save(checkpoint, path)
    call = _entry_points(run, tmp_path / "out")[entry]
    if entry.startswith("nnlit "):
        with pytest.raises(SystemExit) as exited:
            call(path)
        assert exited.value.code != 0
        message = capsys.readouterr().err
        assert message.count("\n") <= 3 and "Traceback" not in message, message
    else:
        with pytest.raises(UntrustedCheckpointError) as raised:
            call(path)
        message = str(raised.value)
    assert str(path) in message
    assert re.search(key, message), message
    assert not marker.exists(), f"{name}: the payload ran through {entry}"


def test_a_module_the_file_names_is_never_imported(run, tmp_path):
    path = tmp_path / "zen.ckpt"
    checkpoint = torch.load(run["ckpt"], weights_only=True)
    checkpoint["nnlit"]["class_path"] = "this.Zen"
    torch.save(checkpoint, path)
    sys.modules.pop("this", None)
    with pytest.raises(UntrustedCheckpointError, match=r"saved by 'this\.Zen' .* whose module is not imported"):
        nnlit.load(path)
    assert "this" not in sys.modules


def test_a_users_optimizer_and_scheduler_from_an_imported_module_load(run, tmp_path):
    """Classes outside torch.optim are built when the caller's program has imported their module, and refused
    otherwise, with no import."""
    path = tmp_path / "own.ckpt"
    checkpoint = torch.load(run["ckpt"], weights_only=True)
    checkpoint["hyper_parameters"]["optimizer"] = {"class_path": f"{__name__}.OwnSGD", "init_args": {"lr": 0.5}}
    checkpoint["hyper_parameters"]["lr_scheduler"] = {"class_path": f"{__name__}.OwnStep", "init_args": {}}
    torch.save(checkpoint, path)
    model = nnlit.load(path)
    optimizer = model.optimizer(model.parameters())
    assert type(optimizer) is OwnSGD and optimizer.defaults["lr"] == 0.5
    assert type(model.lr_scheduler(optimizer)) is OwnStep
    checkpoint["hyper_parameters"]["optimizer"]["class_path"] = "not_imported_package.Lion"
    torch.save(checkpoint, path)
    with pytest.raises(
        UntrustedCheckpointError, match=r"optimizer\.class_path names 'not_imported_package\.Lion', whose"
    ):
        nnlit.load(path)


def test_trusted_opts_into_lightnings_own_loading(run, tmp_path):
    path = tmp_path / "trusted.ckpt"
    shutil.copy(run["ckpt"], path)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"]["activation_kwargs"] = {"inplace": True}
    torch.save(checkpoint, path)
    assert nnlit.load(path, trusted=True).network.act1.inplace
    with pytest.raises(ValueError, match=r"weights_only=False builds the pickled objects .* trusted=True"):
        MulticlassMLP.load_from_checkpoint(path, weights_only=False)


class OwnSGD(torch.optim.SGD):
    """A user's optimizer, in a module the program has imported."""


class OwnStep(torch.optim.lr_scheduler.StepLR):
    """A user's scheduler."""

    def __init__(self, optimizer: torch.optim.Optimizer, step_size: int = 3) -> None:
        super().__init__(optimizer, step_size)


def test_a_list_shared_at_every_level_is_checked_once(run, tmp_path):
    """Pickle keeps shared objects shared: 64 levels of one list are a small file but a tree of 2**64 leaves."""
    import time

    from nnlit.trust import check_checkpoint

    shared: list[Any] = [1.0]
    for _ in range(64):
        shared = [shared, shared]
    checkpoint = torch.load(run["ckpt"], weights_only=True)
    checkpoint["hyper_parameters"]["activation_kwargs"] = {"deep": shared}
    torch.save(checkpoint, tmp_path / "deep.ckpt")
    assert (tmp_path / "deep.ckpt").stat().st_size < 200_000
    started = time.perf_counter()
    check_checkpoint(torch.load(tmp_path / "deep.ckpt", weights_only=True, map_location="meta"), "deep.ckpt")
    assert time.perf_counter() - started < 5


@pytest.mark.integration
def test_looking_a_class_up_imports_nothing(run, tmp_path):
    """A module's __getattr__ may import (concurrent.futures imports its process pool on first access): nnlit looks
    names up statically, so the refusal comes before any import. In a fresh process, where nothing else imported it."""
    path = tmp_path / "lazy.ckpt"
    checkpoint = torch.load(run["ckpt"], weights_only=True)
    spec = {"class_path": "concurrent.futures.ProcessPoolExecutor", "init_args": {}}
    checkpoint["hyper_parameters"]["optimizer"] = spec
    torch.save(checkpoint, path)
    script = (
        "import sys, concurrent.futures, nnlit\n"
        "assert 'concurrent.futures.process' not in sys.modules\n"
        "try:\n    nnlit.load(sys.argv[1])\nexcept ValueError as err:\n    print(err)\n"
        "print('imported' if 'concurrent.futures.process' in sys.modules else 'not imported')\n"
    )
    result = run_python("-c", script, path, timeout=120)
    assert "optimizer.class_path names 'concurrent.futures.ProcessPoolExecutor'" in result.stdout
    assert result.stdout.strip().endswith("not imported")


def test_a_remote_checkpoint_is_read_as_plain_data(run, tmp_path, monkeypatch):
    """Lightning reads an http(s) checkpoint with weights_only=False unless told otherwise; nnlit tells it True."""
    import functools
    import http.server
    import threading

    from nnlit.checkpoint_io import AtomicCheckpointIO

    marker = tmp_path / "pwned"
    torch.save({"state_dict": {}, "payload": _Payload(f"touch {marker}")}, tmp_path / "evil.ckpt")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    monkeypatch.setattr(http.server.SimpleHTTPRequestHandler, "log_message", lambda *args: None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/evil.ckpt"
        with pytest.raises(Exception, match=r"GLOBAL posix\.system|Unsupported global"):
            AtomicCheckpointIO().load_checkpoint(url)
        server.shutdown()
    assert not marker.exists()


# ------------------------------------------------------------------ second round: what a file may make nnlit do
def _changed(run: dict[str, Path], path: Path, change: Callable[[dict[str, Any]], None], name: str = "last") -> Path:
    checkpoint = torch.load(run["folder"] / f"lightning_logs/version_0/checkpoints/{name}.ckpt", weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, path)
    return path


def _unmonitored(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The state of the ModelCheckpoint without a monitor (the quick start's last.ckpt; Lightning's default one), which
    removes its previous `best_model_path` at its next save."""
    return next(v for k, v in checkpoint["callbacks"].items() if "'monitor': None" in k)


def _resume(run: dict[str, Path], ckpt: Path, root: Path) -> None:
    args = ["--config", str(run["config"]), "--data.init_args.n_samples=300", f"--trainer.default_root_dir={root}"]
    main(["fit", *args, "--trainer.max_epochs=2", f"--ckpt_path={ckpt}", *QUIET])


def test_a_resumed_checkpoint_removes_no_folder(run, tmp_path, capsys):
    """Lightning removes a non-`file` fsspec URL recursively, without its "inside my folder" check: `local:///dir`."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    path = _changed(run, tmp_path / "evil.ckpt", lambda c: _unmonitored(c).update(best_model_path=f"local://{victim}"))
    with pytest.raises(SystemExit) as exited:
        _resume(run, path, tmp_path / "resumed")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert re.search(rf"nnlit: error: '{re.escape(str(path))}': callbacks\[.*\]\.best_model_path names 'local://", err)
    assert (victim / "precious.txt").read_text() == "keep me"


def test_a_resumed_checkpoint_removes_nothing_outside_the_runs_folders(run, tmp_path, capsys):
    """A remote path inside the checkpoint's own recorded folder passes the file's checks (a run that saved to remote
    storage); AtomicCheckpointIO still removes only files in the folders this run saves to."""
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    memory.pipe("/victim-bucket/precious", b"keep me")

    def plant(checkpoint: dict[str, Any]) -> None:
        _unmonitored(checkpoint).update(
            dirpath="memory://victim-bucket", best_model_path="memory://victim-bucket/precious"
        )

    _resume(run, _changed(run, tmp_path / "evil.ckpt", plant), tmp_path / "resumed")
    assert memory.cat("/victim-bucket/precious") == b"keep me"
    assert "Kept 'memory://victim-bucket/precious', which a callback asked to remove" in capsys.readouterr().err
    memory.rm("/victim-bucket", recursive=True)


def test_atomic_checkpoint_io_removes_only_files_it_saved_beside(tmp_path):
    from nnlit.checkpoint_io import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    folder, elsewhere = tmp_path / "checkpoints", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.ckpt").write_text("other")
    io.save_checkpoint({"state_dict": {}}, folder / "epoch=0.ckpt")
    (folder / "old.ckpt").write_text("an earlier run's, same folder")
    (folder / "sub").mkdir()
    os.symlink(elsewhere / "a.ckpt", folder / "link.ckpt")
    with pytest.warns(UserWarning, match=r"Kept .*a\.ckpt'.* not folders, in the folders this run saves"):
        io.remove_checkpoint(elsewhere / "a.ckpt")
    with pytest.warns(UserWarning, match=r"Kept .*sub'"):
        io.remove_checkpoint(folder / "sub")
    with pytest.warns(UserWarning, match=r"Kept 'file://"):
        io.remove_checkpoint(f"file://{folder / 'old.ckpt'}")
    io.remove_checkpoint(folder / "link.ckpt")  # the link, not the file it names
    io.remove_checkpoint(folder / "old.ckpt")
    io.remove_checkpoint(folder / "epoch=0.ckpt")
    assert sorted(p.name for p in folder.iterdir()) == ["sub"] and (elsewhere / "a.ckpt").read_text() == "other"


def _tune_folder(tmp_path: Path, params: dict[str, Any], attrs: dict[str, Any] | None = None) -> Path:
    """A sweep folder whose study holds one complete trial with ``params`` (planted: no fit runs)."""
    optuna = pytest.importorskip("optuna")
    (tmp_path / "search.yaml").write_text("model.init_args.hidden: {choices: [[8], [16]]}\n")
    (tmp_path / "sweep").mkdir()
    storage = f"sqlite:///{tmp_path / 'sweep' / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="nnlit", direction="maximize")
    distributions = {key: optuna.distributions.CategoricalDistribution([json.dumps(v)]) for key, v in params.items()}
    study.add_trial(
        optuna.trial.create_trial(
            params={key: json.dumps(v) for key, v in params.items()},
            distributions=distributions,
            value=0.9,
            user_attrs=attrs or {},
        )
    )
    return tmp_path / "sweep"


def _tune(tmp_path: Path, *extra: str) -> None:
    search = str(tmp_path / "search.yaml")
    main(
        [
            "tune",
            "--config",
            "quickstart",
            "--search",
            search,
            "--trials",
            "1",
            "--out",
            str(tmp_path / "sweep"),
            *extra,
        ]
    )


def test_a_planted_trial_writes_nothing_into_best_yaml(tmp_path, capsys):
    params = {"model.init_args.hidden": [8], "trainer.default_root_dir": "/somewhere/else"}
    out = _tune_folder(tmp_path, params)
    with pytest.raises(SystemExit) as exited:
        _tune(tmp_path)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "nnlit: error: Trial 0 of study 'nnlit' in" in err and "study.db' holds 'trainer.default_root_dir'" in err
    assert not (out / "best.yaml").exists() and not (out / "trials.csv").exists()


def test_a_trials_std_that_is_not_a_number_is_named(tmp_path, capsys):
    out = _tune_folder(tmp_path, {"model.init_args.hidden": [8]}, {"std": "abc", "folds": [0.9, 0.9]})
    with pytest.raises(SystemExit) as exited:
        _tune(tmp_path, "--folds", "2")
    assert exited.value.code == 2
    assert "holds a `folds` or `std` attribute that is not a number ('abc')" in capsys.readouterr().err
    assert not (out / "best.yaml").exists()


def test_tune_outputs_replace_planted_links(tmp_path, capsys):
    out = _tune_folder(tmp_path, {"model.init_args.hidden": [16]})
    victims = {}
    for name in ("best.yaml", "trials.csv", "history.png"):
        victims[name] = tmp_path / f"victim_{name}"
        victims[name].write_text("keep me")
        os.symlink(victims[name], out / name)
    _tune(tmp_path)
    assert all(victim.read_text() == "keep me" for victim in victims.values())
    assert not any((out / name).is_symlink() for name in victims)
    assert "hidden:\n    - 16" in (out / "best.yaml").read_text()


def test_export_and_plot_replace_planted_links(run, tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    os.symlink(victim, tmp_path / "model.pt")
    main(["export", f"--ckpt_path={run['ckpt']}", "--format=torchscript", f"--out={tmp_path / 'model.pt'}"])
    assert zipfile.is_zipfile(tmp_path / "model.pt") and victim.read_text() == "keep me"
    plots_folder = tmp_path / "plots"
    plots_folder.mkdir()
    for name in ("curves.png", "decision_boundary.png"):
        os.symlink(victim, plots_folder / name)
    main(["plot", str(run["folder"] / "lightning_logs/version_0"), f"--out={plots_folder}"])
    assert victim.read_text() == "keep me"
    assert not any(p.is_symlink() for p in plots_folder.iterdir()) and (plots_folder / "curves.png").stat().st_size


#: the calls that write a file, by attribute name (``path.write_text``, ``figure.savefig``…) or full name
WRITER_ATTRIBUTES = {"write_text", "write_bytes", "savefig", "to_csv", "to_parquet"}
WRITER_NAMES = {"torch.save", "torch.jit.save", "torch.onnx.export", "yaml.dump", "yaml.safe_dump", "json.dump"}
#: writers that write a path handed to them by a safe_write block in their caller: (file, call)
WRITES_A_SAFE_PATH = {
    ("nnlit/export.py", "torch.onnx.export"),  # the path export() takes from safe_write.replacing
    ("nnlit/raw_rows_onnx.py", "torch.onnx.export"),  # no file: the program is returned in memory
    ("nnlit/raw_rows_onnx.py", "onnx.save"),  # the path export() takes from safe_write.replacing
    ("nnlit/loggers/resumable_csv.py", "self._fs.open"),  # a remote metrics.csv; a local one goes through safe_write
}


def test_every_file_nnlit_writes_goes_through_safe_write():
    """Reads nnlit's source: every call that writes a file (and every ``open`` for writing) sits in a ``with`` block of
    ``safe_write.opened`` / ``safe_write.replacing``, or is a ``safe_write`` function, so that none follows a link."""
    import ast

    found = []
    for source in sorted((ROOT / "nnlit").rglob("*.py")):
        if source.name == "safe_write.py":
            continue
        tree = ast.parse(source.read_text())
        guarded = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.With) and "safe_write." in ast.unparse(node.items[0].context_expr)
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or id(node) in guarded:
                continue
            name = ast.unparse(node.func)
            attr = node.func.attr if isinstance(node.func, ast.Attribute) else name
            mode = [ast.unparse(a) for a in node.args[1:2]] + [
                ast.unparse(k.value) for k in node.keywords if k.arg == "mode"
            ]
            opens_for_writing = attr in ("open", "fdopen") and any(c in m for m in mode for c in "wax+")
            writes = attr in WRITER_ATTRIBUTES or (name in WRITER_NAMES and len(node.args) > 1)
            where = (str(source.relative_to(ROOT)), name)
            if (opens_for_writing or writes) and where not in WRITES_A_SAFE_PATH and not name.startswith("safe_write."):
                found.append(f"{where[0]}:{node.lineno}: {ast.unparse(node)[:100]}")
    assert not found, "files written without nnlit.safe_write:\n" + "\n".join(found)


def _declaring(run: dict[str, Path], path: Path, width: int, views: bool) -> Path:
    """The checkpoint with ``hidden: [width, width]`` declared; its weights the trained ones, or (``views``) tensors of
    the declared shapes that are views of one number (a tiny file: stride 0)."""

    def change(checkpoint: dict[str, Any]) -> None:
        checkpoint["hyper_parameters"]["hidden"] = [width, width]
        if views:
            state = checkpoint["state_dict"]
            shapes = {"linear1.weight": (width, 2), "linear1.bias": (width,), "linear2.weight": (width, width)}
            shapes |= {"linear2.bias": (width,), "output.weight": (3, width)}  # 36,042,003 floats: 137.5 MiB
            for name, shape in shapes.items():
                state[f"network.{name}"] = torch.zeros(1).expand(*shape)

    return _changed(run, path, change, name="best")


@pytest.mark.parametrize(
    ("views", "match"),
    [
        (False, r"the hyperparameters declare network\.linear1\.weight of shape \(6000, 2\), but state_dict\.network"),
        (True, r"the network its hyperparameters declare holds 137 MiB, but the file stores 0\.0 MiB of weights"),
    ],
)
@pytest.mark.parametrize("entry", ["nnlit.load", "Predictor.from_checkpoint", "export"])
def test_declared_sizes_are_checked_before_anything_is_built(entry, views, match, run, tmp_path, monkeypatch):
    built = []
    linear_init = torch.nn.Linear.__init__

    def record(self: torch.nn.Linear, *args: Any, **kwargs: Any) -> None:
        linear_init(self, *args, **kwargs)
        if self.weight.device.type != "meta":
            built.append(tuple(self.weight.shape))

    monkeypatch.setattr(torch.nn.Linear, "__init__", record)
    path = _declaring(run, tmp_path / "big.ckpt", 6000, views)
    assert path.stat().st_size < 200_000
    with pytest.raises(UntrustedCheckpointError, match=match) as raised:
        _entry_points(run, tmp_path / "out")[entry](path)
    assert str(path) in str(raised.value)
    assert not any(6000 in shape for shape in built), built  # refused before a real layer of that size was made


def _tampered(run: dict[str, Path], path: Path) -> Path:
    """A tensor larger than its stored data (the storage record shortened)."""

    def change(checkpoint: dict[str, Any]) -> None:
        weight = checkpoint["state_dict"]["network.linear1.weight"].clone()
        weight.untyped_storage().resize_(16)
        checkpoint["state_dict"]["network.linear1.weight"] = weight

    return _changed(run, path, change, name="best")


def _out_of_order(run: dict[str, Path], path: Path) -> Path:
    """The storage records named in another order than the pickle first meets them ('1' before '0')."""
    source = _changed(run, path.with_suffix(".orig"), lambda c: None, name="best")
    with zipfile.ZipFile(source) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    renamed = {"/data/0": "/data/1", "/data/1": "/data/0"}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for info, data in entries:
            if info.filename.endswith("/data.pkl"):
                data = data.replace(b"X\x01\x00\x00\x000", b"X\x01\x00\x00\x00#").replace(
                    b"X\x01\x00\x00\x001", b"X\x01\x00\x00\x000"
                )
                data = data.replace(b"X\x01\x00\x00\x00#", b"X\x01\x00\x00\x001")
            name = next(
                (info.filename.replace(k, v) for k, v in renamed.items() if info.filename.endswith(k)), info.filename
            )
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("make", [_tampered, _out_of_order], ids=["tampered storage", "storage records out of order"])
@pytest.mark.parametrize("entry", ["nnlit.load", "Predictor.from_checkpoint", "export"])
def test_damaged_tensor_records_are_named(entry, make, run, tmp_path):
    path = make(run, tmp_path / "damaged.ckpt")
    with pytest.raises(ValueError, match=r"holds tensors that do not fit their stored data \(the file was altered"):
        _entry_points(run, tmp_path / "out")[entry](path)


@pytest.mark.parametrize(
    ("csv", "match"),
    [
        ("epoch,step,train/loss\n0,1,abc\n", r"metrics\.csv', line 2, column 'train/loss': 'abc' is not a number"),
        ("epoch,step,train/loss\ninf,1,0.5\n", r"metrics\.csv', line 2, column 'epoch': 'inf' is not an epoch"),
        ("epoch,step,train/loss\n0,1,0.5,7\n", r"metrics\.csv', line 2: more values than columns"),
    ],
)
def test_a_bad_metrics_csv_is_named(csv, match, tmp_path, capsys):
    (tmp_path / "metrics.csv").write_text(csv)
    with pytest.raises(SystemExit) as exited:
        main(["plot", str(tmp_path)])
    assert exited.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("nnlit")]
    assert len(lines) == 1 and re.search(rf"^nnlit: error: '{re.escape(str(tmp_path))}/{match}", lines[0]), lines


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["plot"], r"nnlit: error: the following arguments are required: run_dir \(see nnlit plot --help\)"),
        (["export", "--format", "onnx"], r"nnlit: error: the following arguments are required: --ckpt_path"),
        (["export", "--ckpt_path", "nowhere.ckpt"], r"nnlit: error: Checkpoint not found: 'nowhere\.ckpt'"),
        (["tune", "--config", "quickstart"], r"nnlit: error: the following arguments are required: --search"),
        (
            ["fit", "--model.class_path=os.system"],
            r"nnlit: error: model\.class_path: 'os\.system' is not a subclass of",
        ),
    ],
)
def test_subcommand_errors_end_with_the_commands_one_line(args, match, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and not re.search(r"nnlit (plot|export|tune): error", err), err


def test_export_names_a_link_to_a_text_file_without_reading_it_out(tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n")
    os.symlink(secret, tmp_path / "model.ckpt")
    with pytest.raises(SystemExit):
        main(["export", f"--ckpt_path={tmp_path / 'model.ckpt'}"])
    err = capsys.readouterr().err
    assert "is not an nnlit checkpoint: it is a text file" in err and "hunter2" not in err and "password" not in err


def test_prediction_labels_that_a_spreadsheet_would_run_are_escaped(tmp_path):
    """CSV injection: a label from the training data starting with = + - @ is written with a leading quote."""
    import csv

    import lightning as L
    import numpy as np

    from nnlit import BinaryMLP
    from nnlit.callbacks import CSVPredictionWriter

    x = np.random.default_rng(0).normal(size=(60, 2)).astype("float32")
    labels = np.where(x[:, 0] > 0, '=HYPERLINK("http://example.invalid","x")', "@SUM(1)")
    data = TabularDataModule.from_arrays(x, labels)
    written = {}
    for escape in (True, False):
        out = tmp_path / f"escape_{escape}.csv"
        trainer = L.Trainer(
            max_epochs=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[CSVPredictionWriter(str(out), escape_formulas=escape)],
        )
        model = BinaryMLP(in_features=2, hidden=[4])
        trainer.fit(model, datamodule=data)
        trainer.predict(model, datamodule=data)
        with out.open(newline="") as file:
            written[escape] = list(csv.reader(file))
    header, *rows = written[True]
    assert header[2:] == ['prob_=HYPERLINK("http://example.invalid","x")', "prob_@SUM(1)"]  # "p": not a formula
    assert rows and all(row[1].startswith("'") for row in rows)
    assert all(row[1][0] in "=@" for row in written[False][1:])
    with pytest.raises(TypeError, match=r"`escape_formulas` must be True or False, got 'yes'"):
        CSVPredictionWriter(escape_formulas="yes")  # type: ignore[arg-type]


def test_regression_targets_beyond_float32_are_named_not_called_infinite():
    np = pytest.importorskip("numpy")
    sklearn = pytest.importorskip("nnlit.sklearn")
    x = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=r"Input y holds 1e\+39 \(row 19\), beyond float32's range of ±3\.4e\+38"):
        sklearn.MLPRegressor(max_epochs=1).fit(x, np.r_[np.zeros(19), 1e39])
    with pytest.warns(
        UserWarning, match=r"1 target value\(s\) beyond 2\*\*24 = 16777216, .* \(the largest change: 1\)"
    ):
        sklearn.MLPRegressor(max_epochs=1).fit(x, np.r_[np.zeros(19), 2**24 + 1])
    assert float(np.float32(2**24 + 1)) == 2**24  # what float32 makes of it: the change the warning names


@pytest.mark.parametrize("columns", [[1, "1"], ["a", "a"]])
def test_columns_with_one_name_as_text_are_named(columns):
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    sklearn = pytest.importorskip("nnlit.sklearn")
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 2)), columns=columns)
    with pytest.raises(ValueError, match=r"X has two columns named '(1|a)' as text .*: nnlit matches columns by"):
        sklearn.MLPClassifier(max_epochs=1).fit(x, np.arange(20) % 2)


@pytest.mark.parametrize("missing", ["median", "median_indicator"])
def test_a_column_with_no_value_is_not_filled_with_a_made_up_median(missing, tmp_path):
    rows = "".join(f"{i},,{i % 2}\n" for i in range(40))
    (tmp_path / "t.csv").write_text("a,b,y\n" + rows)
    data = TabularDataModule(path=str(tmp_path / "t.csv"), target="y", missing=missing)
    with pytest.raises(
        ValueError, match=rf"Feature column 'b' has no value in the \d+ training rows .* missing={missing!r}"
    ):
        data.setup("fit")


def test_safe_write_replaces_links_and_leaves_nothing_on_an_error(tmp_path):
    from nnlit import safe_write

    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_text("keep me")
    os.symlink(target, tmp_path / "out.png")  # a link to a folder: replaced like any link
    with safe_write.replacing(tmp_path / "out.png") as new:
        new.write_bytes(b"png")
        new.with_name("out.png.data").write_bytes(b"side file")  # ONNX's external data, say
    assert (tmp_path / "out.png").read_bytes() == b"png" and (tmp_path / "out.png.data").is_file()
    assert (target / "keep").read_text() == "keep me"
    with pytest.raises(RuntimeError, match="half-way"), safe_write.opened(tmp_path / "out.png", "wb") as file:
        file.write(b"half")
        raise RuntimeError("half-way")
    assert (tmp_path / "out.png").read_bytes() == b"png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "out.png", "out.png.data"]
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match=r"Cannot write '.*folder': a folder is there"):
        safe_write.write_text(tmp_path / "folder", "x")

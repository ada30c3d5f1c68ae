"""A corpus of malicious checkpoints: every nnlit entry point that reads a checkpoint refuses each one, naming the key,
and none of their payloads runs (each would create a marker file)."""

from __future__ import annotations

import collections
import os
import shutil
import sys
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
    assert __import__("re").search(key, message), message
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

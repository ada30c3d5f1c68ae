"""Training makes no per-step host read: nothing that, on a GPU, would make the host wait for the device.

A CPU has nothing to wait for, so this records what would wait instead. A dispatch mode sees every aten op, and these
wait on a GPU:
- reading a value on the host (``.item()``, ``bool(t)``, ``float(t)``: ``_local_scalar_dense``);
- ops whose output size depends on the values (``nonzero``, boolean-mask indexing, ``unique``, …);
- a tensor made from host data (``torch.tensor(…, device=…)``: ``lift_fresh``), which is a blocking copy to the device.

``.tolist()``, ``.cpu()`` and ``.numpy()`` of a CPU tensor never reach the dispatcher, so they are recorded by wrapping
them.

What this cannot see: a copy of a host tensor to the device (``.to(device)`` is a plain copy on a CPU) and an explicit
``torch.cuda.synchronize()``. On a GPU, the last test checks with ``torch.cuda.set_sync_debug_mode("warn")``, which
flags blocking copies, value reads and stream synchronisations (not ``torch.cuda.synchronize()``);
``nnlit.speed.host_syncs`` puts each down to the line of nnlit's code that led to it. Both run with the progress bar
off: the bar reads its values on the host at every redraw (twice a second by default).
"""

from __future__ import annotations

import collections
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils._python_dispatch import TorchDispatchMode

from nnlit.callbacks import DeadReLUCounter, FreezeLayers, GradientSaturationMonitor, UniformInit
from nnlit.cli import build

WAITING_OPS = {
    "_local_scalar_dense",
    "lift_fresh",
    "nonzero",
    "masked_select",
    "_unique2",
    "unique_dim",
    "unique_consecutive",
    "equal",
    "is_nonzero",
    # their output size is read from the values on a GPU (histc: without an explicit range; repeat_interleave: with
    # tensor repeats and no output_size); the other forms are recorded too, to be looked at if they ever show
    "_unique",
    "bincount",
    "histc",
    "repeat_interleave",
}
TORCH = str(Path(torch.__file__).parent) + os.sep
# Host reads that do not wait for a GPU, though they show on a CPU:
NOT_WAITING = {
    # optimizers keep their step counts on the host (unless `capturable`), and read them there
    "torch/optim",
    # torchmetrics checks on the host whether CPU predictions are probabilities; on a device, with `torch.where`
    "torchmetrics/utilities/compute.py:normalize_logits_if_needed",
}


def _frame_name(frame: Any) -> str:
    path = Path(frame.f_code.co_filename)
    return f"{path.parent.parent.name}/{path.parent.name}/{path.name}:{frame.f_code.co_name}"


def _callers() -> tuple[list[str], str]:
    """The torch frames that ran the op (innermost first) and the innermost frame outside torch, each as
    ``dir/dir/file.py:function``."""
    frame, inside = sys._getframe(2), []
    while frame is not None and frame.f_code.co_filename.startswith(TORCH):
        inside.append(_frame_name(frame))
        frame = frame.f_back
    return inside, "?" if frame is None else _frame_name(frame)


def _waits(inside: list[str], caller: str) -> bool:
    return not any(place in name for place in NOT_WAITING for name in [*inside, caller])


class HostReads(TorchDispatchMode):
    def __init__(self, seen: collections.Counter[tuple[str, str]]) -> None:
        super().__init__()
        self.seen = seen

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func.overloadpacket.__name__
        mask_index = name in ("index", "index_put") and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None
        )
        if name in WAITING_OPS or mask_index:
            inside, caller = _callers()
            if _waits(inside, caller):
                self.seen[(name, caller)] += 1
        return func(*args, **(kwargs or {}))


class TrainingWindow(Callback):
    """Calls :meth:`_start` as each training epoch starts and :meth:`_stop` at its validation (or its end, or an
    exception): the window holds every group's gathering, training step and batch hooks."""

    def _start(self, trainer: Any) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._start(trainer)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self._stop()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._stop()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._stop()


class DuringTraining(TrainingWindow):
    """Records host reads in the training window."""

    def __init__(self) -> None:
        self.seen: collections.Counter[tuple[str, str]] = collections.Counter()
        self.mode: HostReads | None = None

    def _start(self, trainer: Any) -> None:
        self.mode = HostReads(self.seen)
        self.mode.__enter__()

    def _stop(self) -> None:
        if self.mode is not None:
            self.mode.__exit__(None, None, None)
            self.mode = None


def _mixed_table(path: Path) -> list[str]:
    """A file with missing numbers (imputed, with a was-missing column) and a text column: every transform step."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3010, 2))
    x[::9, 1] = np.nan
    colour = rng.choice(["red", "green", "blue"], 3010)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "colour": colour, "y": (x[:, 0] > 0).astype(int)})
    frame.to_csv(path / "mixed.csv", index=False)
    return [
        f"--data.init_args.path={path / 'mixed.csv'}",
        "--data.init_args.target=y",
        "--data.init_args.missing=median_indicator",
    ]


@pytest.mark.parametrize(
    ("model", "dataset"),
    [
        ("nnlit.MulticlassMLP", "spiral"),
        ("nnlit.BinaryMLP", "xor"),
        ("nnlit.RegressionMLP", "sine"),
        ("nnlit.BinaryMLP", "mixed"),
    ],
)
def test_training_reads_nothing_on_the_host_per_step(model, dataset, tmp_path, monkeypatch):
    probe = DuringTraining()
    for method in ("tolist", "cpu", "numpy"):
        original = getattr(torch.Tensor, method)

        def recording(
            self: torch.Tensor, *args: Any, _original: Any = original, _name: str = method, **kwargs: Any
        ) -> Any:
            if probe.mode is not None:
                probe.seen[(_name, _callers()[1])] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, recording)
    cli = build(
        [
            f"--model={model}",
            "--model.init_args.hidden=[16, 8]",
            "--data=nnlit.TabularDataModule",
            *(_mixed_table(tmp_path) if dataset == "mixed" else [f"--data.init_args.dataset={dataset}"]),
            "--data.init_args.n_samples=3010",
            "--data.init_args.batch_size=32",
            "--trainer.max_epochs=2",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    cli.trainer.callbacks.extend(
        [
            UniformInit(-0.2, 0.2),
            FreezeLayers(first_n=1, unfreeze_at_epoch=1),
            GradientSaturationMonitor(),
            DeadReLUCounter(),
            probe,
        ]
    )
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.global_step == 2 * 76  # 2408 training rows: 75 batches of 32 and one of 8, two epochs
    seen = dict(probe.seen)
    # the heads check the targets' values once, on the first training batch (documented in check_targets)
    first_batch = {key: n for key, n in seen.items() if key[1].endswith(":check_targets")}
    assert all(n == 1 for n in first_batch.values())
    per_step = {key: n for key, n in seen.items() if key not in first_batch}
    assert per_step == {}


class TrainingSteps(TrainingWindow):
    """Lets ``speed.host_syncs``' recorder record in the training window, and notes where the training loader's table
    is."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.table_devices: set[str] = set()

    def _start(self, trainer: Any) -> None:
        self.table_devices.update(t.device.type for t in trainer.train_dataloader.tensors)
        self.recorder.paused = False

    def _stop(self) -> None:
        self.recorder.paused = True


@pytest.mark.gpu
def test_a_gpu_fit_with_the_four_callbacks_makes_no_host_sync_from_nnlit(tmp_path, monkeypatch):
    from nnlit.speed.host_syncs import HostSyncs

    cli = build(
        [
            "--model=nnlit.MulticlassMLP",
            "--data=nnlit.TabularDataModule",
            "--data.init_args.dataset=spiral",
            "--data.init_args.n_samples=20000",
            "--data.init_args.batch_size=64",
            "--trainer.max_epochs=2",
            "--trainer.accelerator=gpu",
            "--trainer.devices=1",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    callbacks = [UniformInit(-0.2, 0.2), FreezeLayers(first_n=1, unfreeze_at_epoch=1), GradientSaturationMonitor()]
    with HostSyncs(cli.trainer) as recorder:
        recorder.paused = True
        window = TrainingSteps(recorder)
        cli.trainer.callbacks.extend([*callbacks, DeadReLUCounter(), window])
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.global_step == 2 * 250  # 16000 training rows in batches of 64, two epochs
    assert window.table_devices == {"cuda"}  # table_on_device="auto": the table was copied to the GPU
    where = collections.Counter(sync.place for sync in recorder.syncs)
    from_nnlit = [sync for sync in recorder.syncs if sync.in_nnlit]
    # the heads check the targets' values once, on the first batch (MulticlassMLP.check_targets)
    assert all("(check_targets)" in sync.place for sync in from_nnlit), where
    assert len(from_nnlit) <= 1, where

"""Training throughput of nnlit against a hand-written loop, scikit-learn and a naive Lightning module.

    python bench/throughput.py [--rows 100000] [--epochs 5] [--batch-size 256] [--threads 2]

Every row trains the same network (32 → 128 → 64 → 4, ReLU) with SGD (lr 0.05, momentum 0.9), batch 256, on the same
standardised training rows (a 4-class problem labelled by a random teacher network), for the same number of epochs:

- ``hand-written loop``: eager PyTorch, a permutation per epoch, batches sliced from the tensors (the 1.00× baseline);
- ``sklearn MLPClassifier``: ``solver="sgd"``, the same hyperparameters, no L2 penalty;
- ``naive Lightning``: a LightningModule over ``DataLoader(TensorDataset)``, ``self.log`` of the loss every step;
- ``nnlit fit``: the ``nnlit`` command's objects (``nnlit.cli.build``) with the Trainer's default settings: progress
  bar, logger, checkpointing and metrics on;
- ``diagnostic, no Lightning step calls``: the same fit with ``manual_backward`` replaced by ``loss.backward()`` and
  Lightning's optimizer wrapper by the bare optimizer. Not a way to train (callback hooks around the step, precision
  plugins and step counting are skipped): it shows how much of the gap to the hand loop is Lightning's per-step cost.

samples/s counts training rows per second of training: each epoch's validation pass is timed apart (Lightning rows)
or not run (the baselines). Accuracy is measured on the same held-out rows for every row of the table.

A second throughput figure, for the steady state: the median time of one group of minibatches, nnlit's Lightning
training step (from one step's start to the next, the gathering of the next group included) against the hand loop's
same number of minibatches, read every group only. Epoch ends (checkpointing, metric logging) and bursts of load from
elsewhere move it little.

The cost of nnlit's four callbacks is measured apart, in pairs: a fit without them and one with them, back to back
(the order alternating from pair to pair), so that both runs of a pair see the same load on a shared machine. The
median of the pairs' ratios is printed with their range, for the whole training time and for the median time from
one Lightning training step's start to the next (a step, its hooks and the next batch's gathering, with the
validation passes and epoch ends left out). A burst of load from elsewhere lengthens a few steps and moves the
median little, where it moves the whole run's time; the per-epoch work of the callbacks is left out of the second
figure.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

FEATURES, CLASSES, HIDDEN = 32, 4, (128, 64)
LR, MOMENTUM = 0.05, 0.9


# ---------------------------------------------------------------------------------------------------------- data
def write_table(rows: int, path: Path, seed: int = 0) -> None:
    """``rows`` training rows plus a quarter as many validation rows, labelled by a random teacher MLP."""
    import pandas as pd

    g = torch.Generator().manual_seed(seed)
    total = rows + rows // 4
    x = torch.randn(total, FEATURES, generator=g)
    teacher = [torch.randn(FEATURES, 64, generator=g), torch.randn(64, CLASSES, generator=g)]
    y = (torch.tanh(x @ teacher[0]) @ teacher[1]).argmax(1)
    frame = pd.DataFrame(x.numpy(), columns=[f"f{i}" for i in range(FEATURES)])
    frame["label"] = y.numpy()
    frame.to_parquet(path)


def nnlit_args(path: Path, epochs: int, batch_size: int, workdir: Path) -> list[str]:
    return [
        "--seed_everything=0",
        f"--trainer.max_epochs={epochs}",
        f"--trainer.default_root_dir={workdir}",
        "--model=nnlit.MulticlassMLP",
        f"--model.init_args.hidden=[{HIDDEN[0]}, {HIDDEN[1]}]",
        "--model.init_args.optimizer=torch.optim.SGD",
        f"--model.init_args.optimizer.init_args.lr={LR}",
        f"--model.init_args.optimizer.init_args.momentum={MOMENTUM}",
        "--data=nnlit.TabularDataModule",
        f"--data.init_args.path={path}",
        "--data.init_args.target=label",
        "--data.init_args.val_fraction=0.2",
        f"--data.init_args.batch_size={batch_size}",
    ]


def network() -> nn.Module:
    return nn.Sequential(
        nn.Linear(FEATURES, HIDDEN[0]), nn.ReLU(), nn.Linear(*HIDDEN), nn.ReLU(), nn.Linear(HIDDEN[1], CLASSES)
    )


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


# ---------------------------------------------------------------------------------------------------------- rows
def hand_loop(x: Tensor, y: Tensor, epochs: int, batch_size: int, group: int = 16) -> tuple[float, nn.Module, float]:
    """Training seconds, the trained network, and the median time of ``group`` consecutive minibatches (the work of
    one nnlit training step) within an epoch."""
    torch.manual_seed(0)
    model = network()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    groups: list[float] = []
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        mark = None
        for step, i in enumerate(range(0, len(x), batch_size)):
            if step % group == 0:  # a clock read every `group` minibatches only
                now = time.perf_counter()
                if mark is not None:
                    groups.append(now - mark)
                mark = now
            idx = order[i : i + batch_size]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    return seconds, model, statistics.median(groups) if groups else float("nan")


def sklearn_mlp(x: Tensor, y: Tensor, epochs: int, batch_size: int) -> tuple[float, object]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        HIDDEN,
        solver="sgd",
        learning_rate_init=LR,
        momentum=MOMENTUM,
        nesterovs_momentum=False,
        alpha=0.0,
        batch_size=batch_size,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        random_state=0,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x.numpy(), y.numpy())
    return time.perf_counter() - start, clf


def wait_for_device(module: nn.Module) -> None:
    """Waits for the kernels queued on ``module``'s CUDA device, so that a clock read counts them; nothing on a CPU."""
    device = next(module.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class EpochTimer:
    """Training time of a fit with each validation pass left out, and the time from each training step's start to the
    next one's within an epoch (``step_s``: the step and Lightning's work around it, validation never included). On a
    GPU the clock is read after the queued kernels have run, at epoch and validation boundaries (step times are the
    host's)."""

    def __new__(cls) -> object:
        from lightning.pytorch.callbacks import Callback

        class _Timer(Callback):
            def __init__(self) -> None:
                self.train_s = 0.0
                self.val_s = 0.0
                self.step_s: list[float] = []
                self._step: float | None = None

            def on_train_epoch_start(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
                wait_for_device(pl_module)
                self._epoch = time.perf_counter()
                self._step = None

            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
                now = time.perf_counter()
                if self._step is not None:
                    self.step_s.append(now - self._step)
                self._step = now

            def on_validation_start(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
                wait_for_device(pl_module)
                self._val = time.perf_counter()
                self._step = None

            def on_validation_end(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
                wait_for_device(pl_module)
                elapsed = time.perf_counter() - self._val
                self.val_s += elapsed
                if not trainer.sanity_checking:
                    self.train_s -= elapsed  # validation inside the epoch is not training time

            def on_train_epoch_end(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
                wait_for_device(pl_module)
                self.train_s += time.perf_counter() - self._epoch

        return _Timer()


def naive_lightning(x: Tensor, y: Tensor, epochs: int, batch_size: int, workdir: Path) -> tuple[float, nn.Module]:
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    class Naive(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = network()

        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            loss = nn.functional.cross_entropy(self.net(batch[0]), batch[1])
            self.log("train_loss", loss, prog_bar=True)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=LR, momentum=MOMENTUM)

    L.seed_everything(0, verbose=False)
    model, timer = Naive(), EpochTimer()
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    trainer = L.Trainer(max_epochs=epochs, default_root_dir=workdir, callbacks=[timer])
    trainer.fit(model, loader)
    return timer.train_s, model.net


def nnlit_fit(
    args: list[str], callbacks: list[object] | None = None, bypass_lightning_step: bool = False
) -> tuple[float, float, nn.Module, object, float]:
    """Training seconds, validation seconds, the trained network, the data module and the median step time."""
    from nnlit.cli import build

    cli = build(args)
    if bypass_lightning_step:  # the diagnostic row only
        model, optimizers = cli.model, cli.model.optimizers
        model.manual_backward = lambda loss: loss.backward()  # type: ignore[method-assign]
        model.optimizers = lambda: optimizers().optimizer  # type: ignore[method-assign]
    timer = EpochTimer()
    cli.trainer.callbacks.append(timer)
    for callback in callbacks or []:
        cli.trainer.callbacks.append(callback)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    step = statistics.median(timer.step_s) if timer.step_s else float("nan")  # nan: one step per epoch
    return timer.train_s, timer.val_s, cli.model.eval(), cli.datamodule, step


def four_callbacks() -> list[object]:
    """nnlit's four callbacks, set up so that the network does the same work as without them: FreezeLayers freezes
    the first layer and gives it back to the optimizer as epoch 0 starts."""
    from nnlit.callbacks import DeadReLUCounter, FreezeLayers, GradientSaturationMonitor, UniformInit

    return [
        UniformInit(-0.1, 0.1),
        FreezeLayers(first_n=1, unfreeze_at_epoch=0),
        GradientSaturationMonitor(),
        DeadReLUCounter(),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="training rows")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each row, interleaved; the fastest counts")
    parser.add_argument("--pairs", type=int, default=8, help="pairs of fits without / with the four callbacks")
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(options.threads)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")

    best: dict[str, tuple[float, float]] = {}
    steps_hand: list[float] = []  # per repeat: the median time of one group of minibatches
    steps_nnlit: list[float] = []

    def record(name: str, seconds: float, acc: float) -> None:
        if name not in best or seconds < best[name][0]:
            best[name] = (seconds, acc)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "table.parquet"
        write_table(options.rows, path)
        for repeat in range(options.repeats):
            run_dir = workdir / f"run{repeat}"
            args = nnlit_args(path, options.epochs, options.batch_size, run_dir / "nnlit")
            nnlit_s, _, model, dm, nnlit_step = nnlit_fit(args)
            x, y = dm.split_tensors("train")
            x_val, y_val = dm.split_tensors("val")
            seconds, net, hand_step = hand_loop(x, y, options.epochs, options.batch_size, dm.batches_per_step)
            record("hand-written loop", seconds, accuracy(net, x_val, y_val))
            steps_hand.append(hand_step)
            steps_nnlit.append(nnlit_step)
            seconds, clf = sklearn_mlp(x, y, options.epochs, options.batch_size)
            record("sklearn MLPClassifier", seconds, float(clf.score(x_val.numpy(), y_val.numpy())))
            seconds, net = naive_lightning(x, y, options.epochs, options.batch_size, run_dir / "naive")
            record("naive Lightning", seconds, accuracy(net, x_val, y_val))
            record("nnlit fit (defaults)", nnlit_s, accuracy(model, x_val, y_val))
            one = [*args, "--data.init_args.batches_per_step=1"]
            seconds, _, model, _, _ = nnlit_fit(one)
            record("nnlit, 1 batch per step", seconds, accuracy(model, x_val, y_val))
            seconds, _, model, _, _ = nnlit_fit(args, bypass_lightning_step=True)
            record("diagnostic, no Lightning step calls", seconds, accuracy(model, x_val, y_val))

        ratios, step_ratios, fastest_step = [], [], {False: float("inf"), True: float("inf")}
        for pair in range(options.pairs):
            args = nnlit_args(path, options.epochs, options.batch_size, workdir / f"pair{pair}")
            seconds, steps = {}, {}
            for with_callbacks in (False, True) if pair % 2 == 0 else (True, False):
                fit = nnlit_fit(args, four_callbacks() if with_callbacks else None)
                seconds[with_callbacks], steps[with_callbacks], model = fit[0], fit[4], fit[2]
                if with_callbacks:
                    record("nnlit + 4 callbacks", seconds[True], accuracy(model, x_val, y_val))
            ratios.append(seconds[True] / seconds[False] - 1)
            step_ratios.append(steps[True] / steps[False] - 1)
            fastest_step = {k: min(fastest_step[k], steps[k]) for k in steps}

    samples = len(x) * options.epochs
    base = samples / best["hand-written loop"][0]
    print(
        f"\n{len(x)} rows x {FEATURES} features, batch {options.batch_size}, {options.epochs} epochs, "
        f"{options.threads} threads, fastest of {options.repeats} interleaved runs"
    )
    print(f"| {'row':<35} | {'samples/s':>10} | {'ratio':>6} | {'val acc':>7} |")
    print(f"| {'-' * 35} | {'-' * 9}: | {'-' * 5}: | {'-' * 6}: |")
    for name, (seconds, acc) in best.items():
        rate = samples / seconds
        print(f"| {name:<35} | {rate:>10,.0f} | {rate / base:>5.2f}x | {acc:>7.4f} |")
    if not any(math.isnan(t) for t in steps_hand + steps_nnlit):
        hand, fit = min(steps_hand), min(steps_nnlit)
        print(
            f"\nsteady state, the median time of one group of minibatches (nnlit: one Lightning training step, from "
            f"one step's start to the next; the hand loop: as many minibatches), fastest of {len(steps_hand)} runs' "
            f"medians: hand loop {hand * 1e3:.2f} ms, nnlit fit (defaults) {fit * 1e3:.2f} ms: {hand / fit:.2f}x"
        )
    if ratios:
        print(
            f"\nthe four callbacks cost {statistics.median(ratios):+.1%} of nnlit's training time (median of "
            f"{len(ratios)} pairs; the pairs ranged from {min(ratios):+.1%} to {max(ratios):+.1%})"
        )
        if any(math.isnan(r) for r in step_ratios):
            print("(one training step per epoch: no step-to-step times to compare)")
            return
        print(
            f"and {statistics.median(step_ratios):+.1%} of the median Lightning training step (a group of minibatches; "
            f"median of the pairs, which ranged from {min(step_ratios):+.1%} to {max(step_ratios):+.1%})"
        )
        print(
            f"and {fastest_step[True] / fastest_step[False] - 1:+.1%} between the fastest median steps of the "
            f"{len(ratios)} fits with and the {len(ratios)} without ({fastest_step[True] * 1e3:.2f} ms against "
            f"{fastest_step[False] * 1e3:.2f} ms)"
        )


if __name__ == "__main__":
    main()

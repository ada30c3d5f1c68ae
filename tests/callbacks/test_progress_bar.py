from __future__ import annotations

import pytest
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar

from nnlit import MulticlassMLP, TabularDataModule
from nnlit.callbacks import TimedProgressBar
from nnlit.cli import build


def _fit(make_trainer, bar):
    data = TabularDataModule(dataset="gauss", n_classes=3, n_samples=600, batch_size=16, eval_batch_size=16, seed=0)
    model = MulticlassMLP(in_features=2, num_classes=3, hidden=[8])
    trainer = make_trainer(max_epochs=2, enable_progress_bar=True, callbacks=[bar], num_sanity_val_steps=0)
    trainer.fit(model, datamodule=data)
    return trainer


def test_redraws_by_the_clock_not_per_batch(make_trainer):
    # 2 training batches (30 minibatches in groups of 16) and 8 validation batches per epoch; with an hour between
    # redraws only the first epoch's start and the validation bar's last batch draw (the fit's end draws on close)
    bar = _fit(make_trainer, TimedProgressBar(interval=3600, plain=False)).progress_bar_callback
    assert bar.redraws == 1 + 2  # the first epoch's start; the validation bar's end, 2 epochs


def test_interval_zero_redraws_every_batch(make_trainer):
    bar = _fit(make_trainer, TimedProgressBar(interval=0, plain=False)).progress_bar_callback
    assert bar.redraws == 2 * (1 + 2 + 8 + 1)  # an epoch's start, its batches, its validation batches, its end


def test_shows_the_latest_training_loss(make_trainer):
    trainer = _fit(make_trainer, TimedProgressBar(interval=3600, plain=False))
    trainer.training = True
    metrics = trainer.progress_bar_callback.get_metrics(trainer, trainer.lightning_module)
    assert float(metrics["loss"]) > 0
    assert "val/acc" in metrics


@pytest.mark.parametrize("interval", [-1, "1", True])
def test_bad_interval(interval):
    with pytest.raises(ValueError, match="interval"):
        TimedProgressBar(interval=interval)
    with pytest.raises(ValueError, match="line_interval"):
        TimedProgressBar(line_interval=interval)
    with pytest.raises(ValueError, match="`plain` must be True, False or None, got 'yes'"):
        TimedProgressBar(plain="yes")


def _bars(args):
    trainer = build(["--config", "configs/quickstart.yaml", *args]).trainer
    return [c for c in trainer.callbacks if isinstance(c, (TQDMProgressBar, RichProgressBar))]


def test_the_command_uses_the_timed_bar_by_default():
    assert [type(b) for b in _bars([])] == [TimedProgressBar]


def test_the_command_keeps_a_configured_bar_or_none():
    bar = "--trainer.callbacks+=lightning.pytorch.callbacks.TQDMProgressBar"
    assert [type(b) for b in _bars([bar])] == [TQDMProgressBar]
    assert _bars(["--trainer.enable_progress_bar=false"]) == []


def test_counts_minibatches_when_the_loader_groups_them(make_trainer):
    """30 minibatches of 16 rows a training epoch, in 2 Lightning steps: the bar says 30/30, as the logged step and the
    checkpoint names count, not 2/2."""
    totals = []

    class Recording(TimedProgressBar):
        def on_train_epoch_end(self, trainer, pl_module):
            totals.append((self.train_progress_bar.n, self.train_progress_bar.total))
            super().on_train_epoch_end(trainer, pl_module)

    trainer = _fit(make_trainer, Recording(interval=0, plain=False))
    assert trainer.num_training_batches == 2 and trainer.global_step == 60
    assert totals == [(30, 30), (30, 30)]


def test_plain_output_is_a_line_per_epoch_by_the_clock_and_the_last_one(make_trainer, capsys):
    bar = _fit(make_trainer, TimedProgressBar(plain=True, line_interval=3600)).progress_bar_callback
    out = capsys.readouterr().out
    assert bar.redraws == 0 and "\r" not in out and "it/s" not in out  # no bar drawn
    assert [line.split(":")[0] for line in bar.lines] == ["Epoch 1/2", "Epoch 2/2"]  # the first and the last
    assert all(line in out.splitlines() for line in bar.lines)
    assert "val/acc=" in bar.lines[0] and "train/loss=" in bar.lines[0]  # the epoch's own training metrics too


def test_plain_output_every_epoch_with_no_interval(make_trainer):
    data = TabularDataModule(dataset="gauss", n_classes=3, n_samples=300, seed=0)
    bar = TimedProgressBar(plain=True, line_interval=0)
    trainer = make_trainer(max_epochs=4, enable_progress_bar=True, callbacks=[bar])
    trainer.fit(MulticlassMLP(in_features=2, num_classes=3, hidden=[8]), datamodule=data)
    assert [line.split(":")[0] for line in bar.lines] == [f"Epoch {n}/4" for n in range(1, 5)]


def test_plain_is_chosen_when_the_output_is_not_a_terminal(make_trainer, monkeypatch):
    import sys

    for tty in (True, False):
        monkeypatch.setattr(sys.stdout, "isatty", lambda tty=tty: tty, raising=False)
        bar = TimedProgressBar(interval=3600)
        _fit(make_trainer, bar)
        assert bool(bar.lines) is not tty and (bar.redraws > 0) is tty


def test_plain_lines_without_an_epoch_limit_or_validation_say_only_what_ran(make_trainer):
    data = TabularDataModule(dataset="gauss", n_classes=3, n_samples=300, seed=0)
    bar = TimedProgressBar(plain=True, line_interval=0)
    trainer = make_trainer(
        max_epochs=-1, max_steps=16, check_val_every_n_epoch=2, enable_progress_bar=True, callbacks=[bar]
    )
    trainer.fit(MulticlassMLP(in_features=2, num_classes=3, hidden=[8]), datamodule=data)
    assert [line.split(":")[0] for line in bar.lines] == ["Epoch 1", "Epoch 2", "Epoch 3", "Epoch 4"]  # no "/-1"
    validated = ["val/acc=" in line for line in bar.lines]
    assert validated == [False, True, False, True]  # every other epoch; no stale values on the others


def test_quick_epochs_draw_by_the_clock_and_the_fit_ends_on_its_last_state(make_trainer, capsys):
    # one validation batch (eval_batch_size 1024): no validation bar in the fit; an hour between redraws: only the
    # first epoch's start draws, and closing the bar draws the last epoch's full count and metrics
    data = TabularDataModule(dataset="gauss", n_classes=3, n_samples=600, batch_size=16, seed=0)
    model = MulticlassMLP(in_features=2, num_classes=3, hidden=[8])
    bar = TimedProgressBar(interval=3600, plain=False)
    trainer = make_trainer(max_epochs=3, callbacks=[bar], enable_progress_bar=True, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=data)
    assert bar.redraws == 1 and bar._val_progress_bar is None
    out = capsys.readouterr()
    last = (out.out + out.err).strip().split("\r")[-1]
    assert "Epoch 2" in last and "30/30" in last and "val/acc=" in last and "val/loss=" in last

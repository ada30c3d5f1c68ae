"""The sweep on one line of a terminal, rewritten in place while the worker prints its lines above it."""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO


class Progress:
    """The sweep on one line of a terminal, rewritten in place: trials done of ``--trials`` (the pruned among them),
    running, failed, the best value so far and the time since this worker started.

    Writes nothing when ``stream`` is not a terminal (a pipe, a log file, a SLURM job's output): the per-trial lines
    say it all there. Use it as a context manager around the worker, and print the worker's lines with the function
    :meth:`watch` returns, which clears the line, prints and draws it again.

    Args:
        options: the command's options (``--trials``, ``--metric``, ``--direction``).
        stream: where the line goes (the command gives ``sys.stderr``); ``None`` for none.
        every: seconds between two readings of the study, which other workers change.
    """

    def __init__(self, options: argparse.Namespace, stream: TextIO | None, every: float = 2.0) -> None:
        self.options, self.stream, self.every = options, stream, every
        self.live = stream is not None and stream.isatty()
        self.study: Any = None
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._text = ""

    def __repr__(self) -> str:
        return f"Progress(live={self.live}, every={self.every})"

    def __enter__(self) -> Progress:
        if self.live:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._draw("")

    def watch(self, study: Any) -> Callable[[str, TextIO], None]:
        """Shows ``study`` from now on; returns the function printing a line above the progress line."""
        self.study = study
        self.refresh()
        return self.echo

    def line(self) -> str:
        """The progress line: ``nnlit tune: 7/20 done (1 pruned), 2 running, 0 failed, best val/acc 0.9667 (trial 4),
        1:23``."""
        states = [trial.state.name for trial in self.study.get_trials(deepcopy=False)]
        complete, pruned = states.count("COMPLETE"), states.count("PRUNED")
        text = (
            f"nnlit tune: {complete + pruned}/{self.options.trials} done ({pruned} pruned), "
            f"{states.count('RUNNING')} running, {states.count('FAIL')} failed"
        )
        if complete:
            best = self.study.best_trial  # the storage's own choice, by the study's direction
            text += f", best {self.options.metric} {best.value:.4g} (trial {best.number})"
        minutes, seconds = divmod(int(time.monotonic() - self.started), 60)
        hours, minutes = divmod(minutes, 60)
        return text + (f", {hours}:{minutes:02d}:{seconds:02d}" if hours else f", {minutes}:{seconds:02d}")

    def refresh(self) -> None:
        """Reads the study and draws the line again (nothing when not on a terminal)."""
        if not self.live or self.study is None:
            return
        text = self.line()
        with self._lock:
            self._draw(text)

    def echo(self, text: str, stream: TextIO) -> None:
        """Prints ``text`` to ``stream`` on a line of its own, above the progress line."""
        with self._lock:
            shown = self._text
            self._draw("")
            print(text, file=stream, flush=True)
            self._draw(shown)
        self.refresh()

    @staticmethod
    def plain(text: str, stream: TextIO) -> None:
        """Prints ``text`` to ``stream``, with no progress line to keep."""
        print(text, file=stream, flush=True)

    def _draw(self, text: str) -> None:
        """Replaces the line on the terminal with ``text``, cut to the terminal's width (a wrapped line could not be
        rewritten)."""
        if not self.live or self.stream is None or text == self._text:
            return
        width = shutil.get_terminal_size((100, 24)).columns - 1
        self.stream.write("\r\033[K" + text[:width])
        self.stream.flush()
        self._text = text

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.refresh()
            except Exception:  # a storage busy or gone for a moment: the next reading will do
                continue

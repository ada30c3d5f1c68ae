"""Loggers: Lightning's, made safe for a run folder that is reused (a requeued or continued run)."""

from nnlit.loggers.resumable_csv import ResumableCSVLogger

__all__ = ["ResumableCSVLogger"]

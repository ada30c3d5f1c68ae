"""Where runs keep their checkpoints, and which file ``--ckpt_path best`` / ``last`` or a run folder means; which
run ``nnlit plot`` draws. The one notion of the newest run: the one whose files were written last (:func:`_newest`).

Each ``nnlit fit`` keeps its checkpoints in its own log folder (``<default_root_dir>/lightning_logs/version_N/
checkpoints/``), so a second run never replaces the first one's files. Commands and arguments that take a checkpoint
also take ``best`` or ``last`` (the newest run's) or a folder (the newest run under it): :func:`resolve_checkpoint`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from nnlit.checkpoint_io import read_checkpoint

#: the words a checkpoint argument takes besides a path
WHICH = ("best", "last")


def resolve_checkpoint(value: str | os.PathLike[str], root: str | os.PathLike[str] = ".") -> Path:
    """The checkpoint file ``value`` means: ``"best"`` or ``"last"`` of the newest run under ``root``; a folder:
    the best checkpoint of the newest run under it (its ``last.ckpt`` when it has no best); else the path itself.

    Raises:
        FileNotFoundError: naming what was searched, when no run there has such a checkpoint.
    """
    if str(value) in WHICH:
        return find_checkpoint(root, str(value))
    if Path(value).is_dir():
        try:
            return find_checkpoint(value, "best")
        except FileNotFoundError:
            return find_checkpoint(value, "last")
    return Path(value)


def find_checkpoint(root: str | os.PathLike[str], which: str = "best") -> Path:
    """The ``which`` (``"best"`` or ``"last"``) checkpoint of the newest run under ``root``.

    The newest run is the folder below ``root`` whose newest ``.ckpt`` file is the most recent. Its best checkpoint is
    the one its ``ModelCheckpoint`` recorded as best (``best_model_path``), else ``best.ckpt``; its last is
    ``last.ckpt`` (or a SLURM requeue's ``hpc_ckpt_N.ckpt``, when newer).

    Raises:
        ValueError: for a ``which`` other than ``"best"`` / ``"last"``.
        FileNotFoundError: naming ``root``, when no run under it has such a checkpoint.
    """
    if which not in WHICH:
        raise ValueError(f"`which` must be one of {', '.join(WHICH)}, got {which!r}")
    root = Path(root)
    files = [p for p in root.glob("**/*.ckpt") if p.is_file()] if root.is_dir() else []
    by_folder: dict[Path, list[Path]] = {}
    for path in files:
        by_folder.setdefault(path.parent, []).append(path)
    for folder in _newest(by_folder, key=lambda folder: by_folder[folder]):
        paths = by_folder[folder]
        found = _last(paths) if which == "last" else _best(paths)
        if found is not None:
            return found
    if not files:
        raise FileNotFoundError(
            f"No {which} checkpoint under {str(root)!r} (no .ckpt file): train first, or give a file"
        )
    newest = max(files, key=_mtime)
    kept_by = (
        "a ModelCheckpoint with a `monitor` records the best one (or one is named best.ckpt)"
        if which == "best"
        else "a ModelCheckpoint with `save_last: true` or `filename: last` writes last.ckpt"
    )
    raise FileNotFoundError(
        f"No {which} checkpoint under {str(root)!r} ({len(files)} .ckpt files in {len(by_folder)} folders): {kept_by}, "
        f"and none did. Give a file, such as the newest, {str(newest)!r}, or add the checkpoint callbacks of "
        "configs/quickstart.yaml to the config's `trainer: callbacks:`"
    )


def claim_version(folder: str | os.PathLike[str]) -> int:
    """The next free ``version_N`` under ``folder``, claimed by creating its directory (an atomic step): two runs
    started at the same moment in one folder get two versions, where listing the folder alone would give both the
    same one.

    Example::

        >>> folder = getfixture("tmp_path")
        >>> claim_version(folder), claim_version(folder), sorted(p.name for p in folder.iterdir())
        (0, 1, ['version_0', 'version_1'])
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name[8:]) for p in folder.glob("version_*") if p.name[8:].isdigit()]
    version = max(taken, default=-1) + 1
    while True:
        try:
            (folder / f"version_{version}").mkdir()
            return version
        except FileExistsError:
            version += 1


def run_checkpoint(run_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path | None:
    """The last checkpoint of the run whose folder is ``run_dir`` (its ``last.ckpt``, or the newer ``hpc_ckpt_N.ckpt``
    a requeue saved), or ``None``, saying so: the run then trains from scratch, and the message names the other runs
    under ``root`` that could be continued on purpose.
    """
    try:
        return find_checkpoint(run_dir, "last")
    except FileNotFoundError:
        pass
    others = []
    if root is not None and Path(root).is_dir():
        for path in sorted(Path(root).glob("**/*.ckpt")):
            folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
            if folder.resolve() != Path(run_dir).resolve() and folder.name not in others:
                others.append(folder.name)
    note = f"; runs with checkpoints beside it: {', '.join(others)} (give one's name to continue it)" if others else ""
    rank_zero_info(f"No checkpoint in this run's folder {str(run_dir)!r}: training from scratch{note}")
    return None


def check_resumable(model: Any, path: str | os.PathLike[str], run_dir: str | os.PathLike[str]) -> None:
    """Refuses to resume ``model`` from the checkpoint ``path`` of the run in ``run_dir`` when the checkpoint holds
    another model: another class, or tensors of other names or shapes.

    Raises:
        ValueError: naming the run, the checkpoint, each difference, and how to train this config instead.
    """
    checkpoint = read_checkpoint(path)
    problems = []
    saved_class = (checkpoint.get("nnlit") or {}).get("class_path") if isinstance(checkpoint, dict) else None
    own_class = f"{type(model).__module__}.{type(model).__qualname__}"
    if saved_class is not None and saved_class != own_class:
        problems.append(f"the class: {saved_class} in the checkpoint, {own_class} in the config")
    saved = checkpoint.get("state_dict") or {} if isinstance(checkpoint, dict) else {}
    own = model.state_dict()
    for name in sorted(set(saved) | set(own)):
        if name not in own or name not in saved:
            problems.append(f"{name}: {'only in the checkpoint' if name in saved else 'only in the config'}")
        elif tuple(saved[name].shape) != tuple(own[name].shape):
            shapes = f"{tuple(saved[name].shape)} in the checkpoint, {tuple(own[name].shape)} in the config"
            problems.append(f"{name}: {shapes}")
    if problems:
        raise ValueError(
            f"--ckpt_path last: the run in {str(run_dir)!r} trained another model than this config, so it cannot be "
            f"continued ({path}):\n  " + "\n  ".join(problems[:10]) + "\nTo train this config, start a new run (a new "
            "job, or another logger version); to continue that run, give the config it was started with (its "
            "config.yaml)."
        )


def find_fit_run(root: str | os.PathLike[str]) -> Path:
    """The log directory of the run ``nnlit plot`` draws: ``root`` itself when it holds a ``metrics.csv``, else the
    newest run below it that trained (its ``metrics.csv`` has ``train/`` columns): ``nnlit validate``, ``test`` and
    ``predict`` make runs of their own, with one point and no training curves.

    Raises:
        FileNotFoundError: no ``metrics.csv`` below ``root``, or none of a fit (naming the runs found).
    """
    root = Path(root)
    if (root / "metrics.csv").is_file():
        return root
    found = list(root.glob("**/metrics.csv"))
    if not found:
        raise FileNotFoundError(
            f"No metrics.csv in {str(root)!r} or below it: give the log directory of a run made with a CSVLogger "
            "(the nnlit command's default), e.g. runs/quickstart/lightning_logs/version_0"
        )
    fits = [path.parent for path in found if _trained(path)]
    if not fits:
        runs = ", ".join(str(path.parent) for path in found)
        raise FileNotFoundError(f"No fit run below {str(root)!r}: the runs there ({runs}) logged no training metrics")
    return _newest(fits, key=lambda folder: [folder / "metrics.csv"])[0]


def run_checkpoint_to_draw(run_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint of a finished run for ``nnlit plot``: the last one (:func:`find_checkpoint`) of its
    ``checkpoints/`` folder or of the folders its ``ModelCheckpoint``s wrote to (its saved ``config.yaml`` names
    them), else the newest ``.ckpt`` there; ``None`` when there is none."""
    run_dir = Path(run_dir)
    folders = [run_dir / "checkpoints", *_checkpoint_folders(run_dir / "config.yaml")]
    for folder in folders:
        try:
            return find_checkpoint(folder, "last")
        except FileNotFoundError:
            pass
    found = [p for folder in folders for p in folder.glob("*.ckpt")]
    return max(found, key=_mtime) if found else None


def _checkpoint_folders(config: Path) -> list[Path]:
    """The ``dirpath`` of each callback of a run's saved config (the ModelCheckpoints that write elsewhere)."""
    saved = yaml.safe_load(config.read_text()) if config.is_file() else None
    callbacks = ((saved if isinstance(saved, dict) else {}).get("trainer") or {}).get("callbacks") or []
    folders = []
    for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
        dirpath = isinstance(callback, dict) and (callback.get("init_args") or {}).get("dirpath")
        if dirpath:
            folders.append(Path(dirpath))
    return folders


def _trained(metrics_csv: Path) -> bool:
    with metrics_csv.open() as file:
        return any(column.startswith("train/") for column in file.readline().strip().split(","))


def _newest(runs: Iterable[Path], key: Callable[[Path], Iterable[Path]]) -> list[Path]:
    """The run folders ``runs``, the newest first: the one whose files (``key(run)``) were written last."""
    return sorted(runs, key=lambda run: max((_mtime(p) for p in key(run)), default=0.0), reverse=True)


def _last(paths: list[Path]) -> Path | None:
    candidates = [p for p in paths if p.name == "last.ckpt" or p.name.startswith("hpc_ckpt_")]
    return max(candidates, key=_mtime) if candidates else None


def _best(paths: list[Path]) -> Path | None:
    names = {p.name: p for p in paths}
    newest = max(paths, key=_mtime)
    try:
        callbacks = read_checkpoint(newest).get("callbacks") or {}
    except (ValueError, OSError):
        callbacks = {}
    for key, state in callbacks.items():
        if str(key).startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("monitor") is not None:
            best = Path(str(state.get("best_model_path") or "")).name
            if best in names:
                return names[best]
    return names.get("best.ckpt")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


__all__ = [
    "WHICH",
    "check_resumable",
    "claim_version",
    "find_checkpoint",
    "find_fit_run",
    "resolve_checkpoint",
    "run_checkpoint",
    "run_checkpoint_to_draw",
]

"""Where runs keep their checkpoints, and which file ``--ckpt_path best`` / ``last`` or a run folder means.

Each ``nnlit fit`` keeps its checkpoints in its own log folder (``<default_root_dir>/lightning_logs/version_N/
checkpoints/``), so a second run never replaces the first one's files. Commands and arguments that take a checkpoint
also take ``best`` or ``last`` (the newest run's) or a folder (the newest run under it): :func:`resolve_checkpoint`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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
    newest_first = sorted(by_folder.items(), key=lambda item: max(_mtime(p) for p in item[1]), reverse=True)
    for _, paths in newest_first:
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


__all__ = ["WHICH", "check_resumable", "claim_version", "find_checkpoint", "resolve_checkpoint", "run_checkpoint"]

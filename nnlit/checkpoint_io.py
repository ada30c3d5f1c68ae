"""Reading and writing checkpoint files: :func:`read_checkpoint` (plain data, checked) and :class:`AtomicCheckpointIO`
(atomic saves wherever ``TMPDIR`` is)."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import re
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from typing_extensions import override

from nnlit import safe_write
from nnlit.trust import UntrustedCheckpointError, check_checkpoint

MapLocation = (
    str
    | torch.device
    | dict[torch.device | str | int, torch.device | str | int]
    | Callable[[torch.UntypedStorage, str], torch.UntypedStorage | None]
    | None
)

#: what a checkpoint whose tensors do not fit their stored data is (after its path, in messages)
DAMAGED_TENSORS = "holds tensors that do not fit their stored data (the file was altered or damaged)"


def read_checkpoint(
    path: str | os.PathLike[str], map_location: MapLocation = "meta", trusted: bool = False, data: bytes | None = None
) -> dict[str, Any]:
    """A checkpoint file as plain data, checked by :func:`nnlit.trust.check_checkpoint`; with ``trusted=True``, as
    Lightning reads it (``weights_only=False``: pickled objects are built, which runs their code).

    ``map_location="meta"`` (the default) reads the structure only: no tensor data. ``data``: the file's bytes, read
    by the caller (who then hands exactly what was checked on to Lightning); ``path`` names them in messages.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: for a folder or a file that is not a checkpoint (empty, truncated by an interrupted save, text,
            TorchScript, ONNX), saying what it is and naming the newest readable checkpoint next to it.
        UntrustedCheckpointError: for pickled objects or a ``class_path`` beyond the allowlist, naming the key.
    """
    path = _existing_file(path)
    if _is_torchscript(path):  # torch.load would hand it to torch.jit.load, with a warning, then fail
        raise ValueError(f"{str(path)!r} is not an nnlit checkpoint: it is {describe_file(path)}")
    try:
        source = path if data is None else io.BytesIO(data)
        checkpoint = torch.load(source, map_location=map_location, weights_only=not trusted)  # type: ignore[arg-type]
    except pickle.UnpicklingError as err:
        named = re.search(r"GLOBAL (\S+)", str(err))
        if not trusted and named is not None:
            raise UntrustedCheckpointError(
                f"{str(path)!r} holds pickled Python objects ({named.group(1)}), which run code when they are read: "
                "nnlit reads checkpoints as plain data. If you made this file yourself, load it with trusted=True"
            ) from err
        raise ValueError(f"{str(path)!r} is not an nnlit checkpoint: it is {describe_file(path)}") from err
    except (RuntimeError, AssertionError) as err:  # torch asserts on storage records out of order
        if isinstance(err, AssertionError) or "storage" in str(err):
            raise ValueError(f"{str(path)!r} {DAMAGED_TENSORS} ({str(err) or type(err).__name__})") from None
        raise ValueError(
            f"{str(path)!r} is not an nnlit checkpoint: it is {describe_file(path)}{newest_good_hint(path)}"
        ) from err
    except (EOFError, OSError) as err:
        raise ValueError(
            f"{str(path)!r} is not an nnlit checkpoint: it is {describe_file(path)}{newest_good_hint(path)}"
        ) from err
    if not trusted:
        check_checkpoint(checkpoint, str(path))
    return checkpoint


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """A checkpoint file's bytes, to be checked and then handed on, so that what is used is what was checked.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: for a folder, listing its ``.ckpt`` files.
    """
    return _existing_file(path).read_bytes()


def _existing_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.is_dir():
        found = ", ".join(sorted(p.name for p in path.glob("*.ckpt"))[:8]) or "none"
        raise ValueError(f"{str(path)!r} is a folder, not a checkpoint file (the .ckpt files in it: {found})")
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint not found: {str(path)!r}")
    return path


def describe_file(path: Path) -> str:
    """What a file that ``torch.load`` cannot read looks like: TorchScript, truncated, empty, text, or binary."""
    if _is_torchscript(path):
        return "a TorchScript archive (open it with torch.jit.load)"
    if zipfile.is_zipfile(path):
        return "a zip archive that torch.load does not read"
    with path.open("rb") as file:
        head = file.read(512)
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        return "a truncated checkpoint (its archive has no end: a save was interrupted, or a copy is incomplete)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        kind = "an ONNX model (run it with onnxruntime)" if path.suffix == ".onnx" else "a binary file"
        return f"{kind}, not a file torch.load reads"
    # what the text says is not repeated: the path may be a link to a file whose first line is a secret
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    looks_like = (
        " (a YAML config, by its look: give it to --config)" if re.match(r"^(#|[A-Za-z_][\w.-]*:(\s|$))", first) else ""
    )
    return f"a text file{looks_like}"


def describe_object(obj: Any) -> str:
    """What ``torch.load`` returned, when it is not a Lightning checkpoint."""
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = list(obj)
        shown = ", ".join(map(str, keys[:3])) + (", …" if len(keys) > 3 else "")
        return (
            f"a plain state_dict of {len(keys)} tensors ({shown}): build the model and call load_state_dict, or pass "
            "the file as the model's `pretrained` argument"
        )
    if isinstance(obj, dict):
        return f"a dict without a 'state_dict' entry (keys: {', '.join(map(str, list(obj)[:8]))})"
    return f"a saved {type(obj).__name__}"


def newest_good_hint(path: Path) -> str:
    """``"; the newest readable checkpoint next to it is …"`` when the file's folder holds one, else ``""``."""
    siblings = [p for p in path.parent.glob("*.ckpt") if p != path and p.is_file()]
    for candidate in sorted(siblings, key=lambda p: p.stat().st_mtime, reverse=True)[:20]:
        try:
            torch.load(candidate, map_location="meta", weights_only=True)
        except Exception:
            continue
        return f"; the newest readable checkpoint next to it is {str(candidate)!r}"
    return ""


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves checkpoints atomically next to their target and reads them as checked plain data.

    Lightning's default writes through fsspec, which puts the temporary file in ``TMPDIR`` and, when that is another
    filesystem (usual on clusters), moves it by emptying the target and copying into it: a job killed during the copy
    leaves an empty or truncated ``last.ckpt``. Here the file is written in the target's own folder under a hidden
    temporary name, flushed to disk (``fsync``), then renamed over the target (``os.replace``): a reader sees the old
    file or the new one, never a part. Temporary files of a process that died are removed by the next save in the
    folder. Remote paths (``s3://…``) keep Lightning's behaviour.

    Loading reads plain data only (``weights_only=True`` unless the Trainer is told ``weights_only=False``), checked
    like :func:`nnlit.load`; a truncated or empty file is an error naming it and the newest readable checkpoint next
    to it.

    A save that would replace a checkpoint this run did not write (another run's, in a folder several runs share)
    warns once per file, naming it: nothing is replaced without a word. The file a fit resumed from, and the checkpoints
    beside it, count as this run's.

    A removal (``ModelCheckpoint`` dropping a checkpoint that is no longer among the best) removes one file, never a
    folder, and only in a folder this run saved a checkpoint to: a resumed checkpoint's callback state may name any
    path (``local:///home``, ``s3://bucket``), and Lightning's own removal is recursive and, for a path with a
    protocol, does not check the folder. Anything else is kept, with a warning naming it.

    The ``nnlit`` command installs it; from Python: ``Trainer(plugins=[AtomicCheckpointIO()])``.
    """

    def __init__(self) -> None:
        super().__init__()
        # path -> (inode, size, mtime) of the file as this run last wrote or read it
        self._known: dict[str, tuple[int, int, int]] = {}
        self._warned: set[str] = set()
        # the folders this run saved checkpoints to (resolved local paths, or remote URLs): the only ones it removes in
        self._folders: set[str] = set()

    @override
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or _is_remote(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            self._folders.add(str(path).rstrip("/").rpartition("/")[0])
            return
        path = Path(path)
        self._folders.add(str(path.parent.resolve()))
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_orphans(path.parent)
        self._warn_if_foreign(path)
        try:
            with safe_write.opened(path, "wb", durable=True) as file:
                torch.save(checkpoint, file)
        except OSError as err:
            raise OSError(err.errno, f"Could not write the checkpoint {str(path)!r}: {err.strerror or err}") from err
        self._remember(path)

    @override
    def remove_checkpoint(self, path: Any) -> None:
        text = str(path)
        if "::" in text or text.startswith(("file://", "local://")):  # chained URLs; a plain path names a local file
            folder, is_file = "", False
        elif _is_remote(text):
            folder, is_file = text.rstrip("/").rpartition("/")[0], _remote_is_file(text)
        elif not os.path.lexists(text):
            return  # nothing to remove, as Lightning's own
        else:
            folder, is_file = str(Path(text).parent.resolve()), not os.path.isdir(text)
        if folder in self._folders and is_file:
            if _is_remote(text):
                super().remove_checkpoint(text)
            else:
                os.unlink(text)  # a link is removed, not the file it names
            return
        rank_zero_warn(
            f"Kept {text!r}, which a callback asked to remove: nnlit removes only checkpoint files, not folders, in "
            "the folders this run saves checkpoints to (a resumed checkpoint's callback state can name any path)"
        )

    @override
    def load_checkpoint(
        self, path: Any, map_location: Any | None = lambda storage, loc: storage, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if _is_remote(path):
            # Lightning reads an http(s) URL with weights_only=False unless told: only a trusting caller gets that
            trusted = weights_only is False
            checkpoint = super().load_checkpoint(path, map_location, weights_only=not trusted)
            if not trusted:
                check_checkpoint(checkpoint, str(path))
            return checkpoint
        checkpoint = read_checkpoint(path, map_location=map_location, trusted=weights_only is False)
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            raise ValueError(f"{str(path)!r} is not a Lightning checkpoint: it is {describe_object(checkpoint)}")
        if "pytorch-lightning_version" not in checkpoint:
            raise ValueError(
                f"{str(path)!r} is not a Lightning checkpoint: it has a 'state_dict' but no "
                "'pytorch-lightning_version' (a Trainer did not save it); pass it as the model's `pretrained` argument "
                "to start from its weights"
            )
        # the checkpoints beside the one resumed from are the same run's (a requeued job's last.ckpt beside its
        # hpc_ckpt_N.ckpt): replacing them is no surprise
        for sibling in [Path(path), *Path(path).parent.glob("*.ckpt")]:
            self._remember(sibling)
        return checkpoint

    def _remember(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            self._known[str(path.resolve())] = _identity(path)

    def _warn_if_foreign(self, path: Path) -> None:
        key = str(path.resolve())
        try:
            identity = _identity(path)
        except FileNotFoundError:
            return
        if self._known.get(key) != identity and key not in self._warned:
            self._warned.add(key)
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(identity[2] / 1e9))
            rank_zero_warn(
                f"Replacing {str(path)!r}, a checkpoint this run did not write (written {when}, by another run that "
                "shares the folder): leave ModelCheckpoint's `dirpath` unset to give each run its own folder"
            )


_HOST = safe_write.HOST
_TMP_NAME = safe_write.TMP_NAME


def remove_orphans(folder: Path) -> list[Path]:
    """Removes the temporary files that saves of this host left in ``folder`` when their process died (killed during
    a save); returns them. Files of live processes and of other hosts are kept."""
    removed = []
    for candidate in folder.glob(".*.tmp"):
        match = _TMP_NAME.match(candidate.name)
        if match is None or match["host"] != _HOST or _alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):  # best effort: another user's file, a folder of that name
            candidate.unlink()
            removed.append(candidate)
    return removed


def _identity(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _remote_is_file(url: str) -> bool:
    from lightning.fabric.utilities.cloud_io import get_filesystem

    fs = get_filesystem(url)
    try:
        return bool(fs.isfile(url))
    except Exception:  # an unreachable store: nothing is removed
        return False


def _is_remote(path: Any) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def checked_hyperparameters(
    checkpoint_path: Any, key: str, hparams_file: str | os.PathLike[str] | None = None, data: bytes | None = None
) -> dict[str, Any]:
    """The hyperparameters (under ``key``) of a checkpoint read as checked plain data, or of ``hparams_file`` (a YAML
    file, read with ``yaml.safe_load`` and checked the same way), without LightningCLI's ``_class_path`` and
    ``_instantiator``: what an nnlit class's ``load_from_checkpoint`` builds the object from, so that Lightning hands
    nothing to jsonargparse. ``data``: the checkpoint's bytes, as :func:`read_checkpoint` takes them.

    Raises:
        UntrustedCheckpointError: as :func:`read_checkpoint`, naming the key.
    """
    checkpoint = read_checkpoint(checkpoint_path, data=data)
    hparams = checkpoint.get(key) or {} if isinstance(checkpoint, dict) else {}
    if hparams_file is not None:  # replaces the checkpoint's (both checked: Lightning still sees the checkpoint's)
        import yaml

        source = str(hparams_file)
        if Path(source).suffix.lower() not in (".yaml", ".yml"):
            raise ValueError(f"`hparams_file` must be a .yaml / .yml file, got {source!r}")
        hparams = yaml.safe_load(Path(source).read_text()) or {}
        check_checkpoint({key: hparams}, source)
    return {name: value for name, value in hparams.items() if name not in ("_class_path", "_instantiator")}


__all__ = [
    "AtomicCheckpointIO",
    "MapLocation",
    "UntrustedCheckpointError",
    "checked_hyperparameters",
    "read_bytes",
    "read_checkpoint",
]

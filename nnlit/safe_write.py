"""Writing a file without following a link planted at its path: :func:`replacing`, :func:`write_text`,
:func:`write_bytes`.

Every file nnlit writes (checkpoints, predictions, plots, exports, a sweep's outputs, reports) goes through here. A
plain ``open(path, "w")`` follows a symbolic link at ``path``: whoever can write in the output folder (a shared run
folder, a sweep's ``--out``) could plant ``best.yaml -> ~/.bashrc`` and have nnlit overwrite the file the link names.
Here the content is written to a new file beside the target (created with ``O_EXCL``, so no existing file or link is
opened), then renamed over the target: the rename replaces the link itself, never the file it names. A reader sees the
old file or the new one, never a part.

Example::

    >>> import os
    >>> folder = getfixture("tmp_path")
    >>> (folder / "secret").write_text("keep me")
    7
    >>> os.symlink(folder / "secret", folder / "best.yaml")
    >>> write_text(folder / "best.yaml", "lr: 0.1\\n").name
    'best.yaml'
    >>> (folder / "secret").read_text(), (folder / "best.yaml").is_symlink()
    ('keep me', False)
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

#: this host's name as temporary names carry it (a shared folder's orphans are told apart by host and process)
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
#: the name of a temporary file or folder this module makes beside a target
TMP_NAME = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def temporary_name(path: Path) -> Path:
    """A fresh hidden name beside ``path``: ``.<name>.<host>.<pid>.<random>.tmp``."""
    return path.parent / f".{path.name[:120]}.{HOST}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str], durable: bool = False) -> Iterator[Path]:
    """A path to write the new content of ``path`` to, for writers that take a path (``savefig``, ``torch.jit.save``,
    ONNX's exporter, which may add side files such as ``model.onnx.data``).

    The path yielded has ``path``'s name, inside a new hidden folder beside it; when the block ends without an error,
    every file written in that folder is renamed to ``path``'s folder (over what is there, a link included, which is
    replaced rather than followed), and the folder is removed. On an error nothing is renamed and everything written is
    removed. A replaced file keeps its permissions. ``durable``: flush the files and the folder to disk (``fsync``)
    before and after the rename, as a checkpoint needs.

    Raises:
        IsADirectoryError: naming ``path`` when a folder is there.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():  # a link to a folder is replaced like any other
        raise IsADirectoryError(f"Cannot write {str(path)!r}: a folder is there")
    scratch = temporary_name(path)
    scratch.mkdir(mode=0o700)
    try:
        yield scratch / path.name
        written = sorted(scratch.iterdir())
        for item in written:
            target = path.parent / item.name
            _keep_mode(item, target)
            if durable:
                _fsync(item)
            os.replace(item, target)
        if durable:
            _fsync(path.parent)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def opened(path: str | os.PathLike[str], mode: str = "w", durable: bool = False, **kwargs: Any) -> Iterator[IO[Any]]:
    """``open(path, mode)`` for a new file beside ``path``, renamed over it when the block ends without an error (see
    :func:`replacing`). ``mode``: ``"w"`` or ``"wb"``; ``kwargs`` go to ``open`` (``newline=""``, ``encoding``)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"`mode` must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():  # a link to a folder is replaced like any other
        raise IsADirectoryError(f"Cannot write {str(path)!r}: a folder is there")
    tmp = temporary_name(path)
    # O_EXCL: a new file, never an existing one nor a link's target; 0o666 less the umask, as open() makes files
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        with os.fdopen(fd, mode, **kwargs) as file:
            yield file
            file.flush()
            if durable:
                os.fsync(file.fileno())
        _keep_mode(tmp, path)
        os.replace(tmp, path)
        if durable:
            _fsync(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Writes ``text`` to ``path`` through :func:`opened`; returns the path."""
    with opened(path, "w", encoding=encoding, newline="") as file:
        file.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Writes ``data`` to ``path`` through :func:`opened`; returns the path."""
    with opened(path, "wb") as file:
        file.write(data)
    return Path(path)


def _keep_mode(new: Path, old: Path) -> None:
    """The new file takes the permissions of the file it replaces (not of a link's target: ``lstat``)."""
    with contextlib.suppress(FileNotFoundError):
        old_stat = os.lstat(old)
        if stat.S_ISREG(old_stat.st_mode):
            os.chmod(new, stat.S_IMODE(old_stat.st_mode))


def _fsync(path: Path) -> None:
    """Flushes a file or folder to disk (a no-op where folders cannot be opened, as on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["opened", "replacing", "write_bytes", "write_text"]

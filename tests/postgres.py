"""A PostgreSQL server of its own for a test, in a temporary folder: ``from postgres import postgres_server``.

Started with ``initdb`` and ``pg_ctl`` where they are on ``PATH`` (as the ``postgres`` user when the tests run as
root, which the server refuses to be), listening on a free port of 127.0.0.1 with no password (``trust``), with
``fsync`` off (a test's data need not survive a crash); else with the ``pgserver`` package, which brings its own
binaries. Stopped, and its folder removed, when the block ends. Where neither exists the test is skipped, saying so,
unless ``NNLIT_REQUIRE_POSTGRES=1`` (set by CI, whose machine has the server), which makes it fail instead.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest


@contextmanager
def postgres_server() -> Iterator[str]:
    """Runs a PostgreSQL server for the block; yields its URL, ``postgresql://nnlit@127.0.0.1:PORT/postgres``.

    Raises:
        pytest.skip.Exception: no server to start (or ``pytest.fail`` under ``NNLIT_REQUIRE_POSTGRES=1``).
    """
    try:
        import psycopg  # noqa: F401  (SQLAlchemy 2.1's default driver for postgresql:// URLs)
    except ImportError:
        _missing("the psycopg driver is not installed (pip install 'nnlit[tune]')")
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        with _from_binaries(initdb, pg_ctl) as url:
            yield url
        return
    try:
        import pgserver
    except ImportError:
        _missing("no PostgreSQL server: neither initdb and pg_ctl on PATH nor the pgserver package installed")
    folder = Path(tempfile.mkdtemp(prefix="nnlit-pgserver-"))
    server = pgserver.get_server(folder, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _from_binaries(initdb: str, pg_ctl: str) -> Iterator[str]:
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="nnlit-postgres-"))  # under /tmp, which every user may enter
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _missing("the tests run as root, and there is no 'postgres' user to run the server as")
        runner = shutil.which("runuser")
        as_user = (
            [runner, "-u", "postgres", "--"] if runner else ["su", "-s", "/bin/sh", "-c", 'exec "$0" "$@"', "postgres"]
        )
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data, log, port = folder / "data", folder / "server.log", _free_port()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
    try:
        _run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "nnlit", "-E", "UTF8", "--no-sync"])
        _run([*as_user, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"], log)
        try:
            yield f"postgresql://nnlit@127.0.0.1:{port}/postgres"
        finally:
            _run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"], log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(command: list[str], log: Path | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode:
        server_log = log.read_text()[-2000:] if log is not None and log.exists() else ""
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}{server_log}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _missing(reason: str) -> NoReturn:
    if os.environ.get("NNLIT_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"NNLIT_REQUIRE_POSTGRES=1, but {reason}")
    pytest.skip(reason)

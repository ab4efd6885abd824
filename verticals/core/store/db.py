"""Engines and migrations.

The schema exists only through Alembic migrations shipped in the wheel
(``verticals/migrations``). The embedded SQLite default is upgraded to head
automatically on first use (zero setup); any other database must be upgraded
explicitly with ``verticals db upgrade`` and is refused until it is.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from verticals.core.text import load_json

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")

log = logging.getLogger(__name__)


class DatabaseNotReady(RuntimeError):
    """The database schema is not at the revision this code expects."""


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    heads = ScriptDirectory.from_config(_alembic_config("sqlite://")).get_heads()
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = _alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def sqlite_path(url: str) -> Path | None:
    """The database file of an SQLite URL (None: another backend, in-memory or a ``file:`` URI)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:" \
            or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def private_sqlite_files(path: Path) -> None:
    """Create the database file with mode 0600 (before SQLite does, with the umask's mode), and take group
    and other permissions off an existing one and its -wal, -shm and -journal files.

    SQLite creates the -wal, -shm and -journal files with the database file's mode, so they are 0600 too.
    Files of another user are left alone (SQLite may still be able to use them).
    """
    if path.parent.is_dir() and not path.exists():
        try:
            os.close(os.open(path, os.O_CREAT | os.O_RDWR | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    for suffix in SQLITE_SUFFIXES:
        file = Path(f"{path}{suffix}")
        try:
            info = file.stat()
            if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
                file.chmod(stat.S_IMODE(info.st_mode) & 0o700)
        except FileNotFoundError:
            continue
        except PermissionError:  # pragma: no cover - not ours after all
            log.warning("cannot restrict the permissions of %s", file)


def scrub_sqlite(engine: Engine, timeout_s: float = 10.0) -> bool:
    """Push everything in the write-ahead log into the database file and truncate the log to zero bytes.

    Called after inputs are purged: ``secure_delete`` (on for every connection) zeroes the freed content
    in the database file's pages; this makes sure no older copy of a page stays in ``*-wal``. A checkpoint
    waits for readers of older snapshots; after ``timeout_s`` it gives up and returns False (the next
    purge or checkpoint completes it). A no-op (True) for other databases.
    """
    if engine.url.get_backend_name() != "sqlite":
        return True
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    with engine.connect() as connection:
        while True:
            busy, _frames, _done = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            if not busy:
                return True
            if time.monotonic() > deadline:
                log.warning("WAL checkpoint after purge did not complete in %.0fs (busy readers); "
                            "it completes at the next checkpoint", timeout_s)
                return False
            time.sleep(delay)
            delay = min(0.5, delay * 2)


def storage_problem(error: BaseException) -> str | None:
    """What went wrong when the database could not be written for lack of space (SQLite: ``database or disk
    is full``, a write past a file size limit; PostgreSQL: SQLSTATE 53100 disk_full), in words; None for any
    other error."""
    import errno

    original = getattr(error, "orig", None) or error
    text = str(original).lower()
    if "database or disk is full" in text or "disk is full" in text:
        return "the database's disk is full"
    if "disk i/o error" in text:
        return "the database's file could not be written (disk I/O error: a full disk or a file size limit)"
    if isinstance(original, OSError) and original.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return f"the database could not be written ({original.strerror})"
    sqlstate = getattr(original, "sqlstate", None) or getattr(getattr(original, "diag", None), "sqlstate", None)
    if sqlstate == "53100":
        return "the database server's disk is full"
    return None


def _set_wal(cursor: sqlite3.Cursor, timeout_s: float = 30.0) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another process holds the file: on a fresh database the
    switch needs an exclusive lock and SQLite answers "database is locked" at once instead of waiting for
    its busy timeout (two first runs opening the same new file at the same moment)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(0.5, delay * 2)


@functools.cache
def make_engine(url: str) -> Engine:
    """One engine per URL per process. SQLite gets WAL, a busy timeout, foreign keys, secure_delete and
    database files only its owner can read (0600)."""
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            private_sqlite_files(path)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               json_deserializer=load_json)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            _set_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA secure_delete=ON")  # purged inputs (PHI) must not linger in free pages
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, json_deserializer=load_json)


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold an exclusive lock on ``<database>.migrate.lock`` (next to the SQLite file) while migrating.

    Two processes opening a fresh database at once (two first ``verticals run``s) would otherwise both
    run the migrations and one would fail ("table alembic_version already exists"). ``fcntl.flock`` is
    released by the kernel when its process dies, so a crashed migration never leaves the lock behind.
    In-memory databases and systems without ``fcntl`` need (or get) no lock.
    """
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    if path is None or not path.parent.is_dir():
        yield
        return
    descriptor = os.open(f"{path}.migrate.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def ensure_ready(engine: Engine) -> None:
    """Upgrade an embedded SQLite database (under :func:`migration_lock`); refuse any other database
    not at head."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if engine.url.get_backend_name() == "sqlite":
        with migration_lock(engine):
            if current_revision(engine) != head:  # another process may have migrated while we waited
                upgrade(engine)
        return
    raise DatabaseNotReady(
        f"database {engine.url.render_as_string(hide_password=True)} is at revision {current or 'none (empty)'}, "
        f"this verticals expects {head}. Run: verticals db upgrade"
    )

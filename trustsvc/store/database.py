"""One data layer over SQLite (embedded default) and PostgreSQL (shared state for several daemons).

SQL is written once with ``?`` placeholders and portable types; the PostgreSQL dialect rewrites
placeholders to ``%s``. Each component (seals, tokens, audit ...) owns a list of migrations,
applied in order and recorded in ``schema_migrations``; a migration never changes once released.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from trustsvc.errors import StoreError

_PLACEHOLDER = re.compile(r"\?")


class Transaction:
    """A cursor inside one transaction; ``execute`` takes ``?`` placeholders on every dialect."""

    def __init__(self, db: Database, cursor: Any) -> None:
        self._db = db
        self._cur = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Transaction:
        try:
            self._cur.execute(self._db.translate(sql), tuple(params))
        except Exception as exc:
            raise self._db.wrap_error(exc) from exc
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Transaction:
        """One statement over many parameter rows (one driver call)."""
        try:
            self._cur.executemany(self._db.translate(sql), [tuple(r) for r in rows])
        except Exception as exc:
            raise self._db.wrap_error(exc) from exc
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cur.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._cur.fetchall())

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)


def sqlite_path(url: str) -> str | None:
    """The SQLite file (or ``:memory:``) a database URL names; None for PostgreSQL."""
    if url.startswith(("postgresql://", "postgres://")):
        return None
    return url.removeprefix("sqlite:///").removeprefix("sqlite://")


def connect_sqlite_read_only(path: str, *, timeout: float = 30) -> sqlite3.Connection:
    """A connection that never creates or changes a file (``mode=ro``), checked by one read.

    SQLite cannot open a WAL database read-only on a read-only location (a read-only mount, archive media)
    unless its -shm file is there. When there is no -wal file either, no writer has the database open and every
    commit is in the main file, so it is opened ``immutable``; with a -wal file the error says what to copy."""
    uri = Path(path).resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        if Path(path).is_file() and not os.access(Path(path).parent, os.W_OK):
            if Path(f"{path}-wal").exists():
                raise sqlite3.OperationalError(
                    f"{exc}: on a read-only location a database in WAL mode needs its -shm file beside it; copy the "
                    "database with its -wal and -shm files, or close its writer first") from None
            return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=timeout, isolation_level=None,
                                   check_same_thread=False)
        raise


class Database:
    """A database by URL: ``sqlite:///path/file.db``, a bare path, or ``postgresql://...``.

    ``read_only``: for auditors' tools. Nothing is created or written (SQLite opens the file with
    ``mode=ro``, PostgreSQL sessions default to read-only transactions); ``transaction()`` is refused
    and ``migrate()`` only checks that the component's tables are there.
    """

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only
        self._local = threading.local()
        self._lock = threading.Lock()
        path = sqlite_path(url)
        if path is None:
            self.dialect = "postgresql"
            import psycopg  # noqa: F401  (fail early when missing)
        else:
            self.dialect = "sqlite"
            self.path = path
            if self.path != ":memory:" and not read_only:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if read_only:
            return
        with self.transaction() as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                       "component TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (component, version))")

    # connections ------------------------------------------------------------------
    def _connect(self) -> Any:
        if self.dialect == "postgresql":
            import psycopg

            if self.read_only:
                return psycopg.connect(self.url, autocommit=False, options="-c default_transaction_read_only=on")
            return psycopg.connect(self.url, autocommit=False)
        if self.read_only:
            conn = (sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                    if self.path == ":memory:" else connect_sqlite_read_only(self.path))
            conn.execute("PRAGMA query_only=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except Exception as exc:
                raise StoreError(f"cannot open the database ({self.dialect}): {exc}",
                                 reason="STORE_UNAVAILABLE") from exc
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A transaction: committed on success, rolled back on any exception."""
        if self.read_only:
            raise StoreError("the database was opened read-only", reason="STORE_READ_ONLY")
        with self._transaction() as tx:
            yield tx

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        conn = self._connection()
        if self.dialect == "sqlite":
            cur = self._sqlite_begin(conn, "IMMEDIATE")
            try:
                yield Transaction(self, cur)
                cur.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    cur.execute("ROLLBACK")
                raise
        else:
            try:
                with conn.transaction():
                    with conn.cursor() as cur:
                        yield Transaction(self, cur)
            except Exception as exc:
                if conn.broken or conn.closed:
                    self._local.conn = None
                if isinstance(exc, StoreError) or not _is_driver_error(exc):
                    raise
                raise self.wrap_error(exc) from exc

    @contextlib.contextmanager
    def within(self, tx: Transaction | None, *, read: bool = False) -> Iterator[Transaction]:
        """``tx`` when the caller has one open (the caller commits or rolls it back), else a transaction
        of our own, committed on success: for stores whose changes may join an audited transaction.
        ``read``: our own is a read-only snapshot (``read()``)."""
        if tx is not None:
            yield tx
            return
        with self.read() if read else self.transaction() as own:
            yield own

    @contextlib.contextmanager
    def read(self) -> Iterator[Transaction]:
        """A read-only snapshot: on SQLite a deferred transaction, so readers never take the write lock."""
        if self.dialect != "sqlite":
            with self._transaction() as tx:
                yield tx
            return
        cur = self._sqlite_begin(self._connection(), "DEFERRED")
        try:
            yield Transaction(self, cur)
        finally:
            with contextlib.suppress(sqlite3.Error):
                cur.execute("ROLLBACK")

    def _sqlite_begin(self, conn: Any, mode: str) -> Any:
        """A cursor in a new SQLite transaction (BEGIN IMMEDIATE takes the write lock, DEFERRED does not)."""
        cur = conn.cursor()
        try:
            cur.execute(f"BEGIN {mode}")
        except sqlite3.Error as exc:
            raise self.wrap_error(exc) from exc
        return cur

    # dialect ----------------------------------------------------------------------
    def translate(self, sql: str) -> str:
        if self.dialect == "postgresql":
            return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))
        return sql

    def wrap_error(self, exc: BaseException) -> StoreError:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        name = type(exc).__name__
        if "UniqueViolation" in name or "UNIQUE constraint" in text or "IntegrityError" in name:
            from trustsvc.errors import Conflict

            return Conflict(f"conflicts with stored data: {text}", reason="DUPLICATE")  # type: ignore[return-value]
        if "readonly" in text or "read-only" in text or "permission" in text.lower():
            return StoreError(f"the store is not writable: {text}", reason="STORE_READ_ONLY")
        return StoreError(f"database error: {text}", reason="STORE_ERROR")

    # migrations -------------------------------------------------------------------
    def migrate(self, component: str, migrations: Sequence[str]) -> int:
        """Apply ``migrations[i]`` as version i+1 of ``component`` if not yet applied; return the version.
        Read-only: refuse (SCHEMA_MISSING) unless every migration has been applied."""
        if self.read_only:
            current = self._applied(component)
            if current < len(migrations):
                raise StoreError(f"the database holds no {component} tables (schema version {current} of "
                                 f"{len(migrations)}); opened read-only, it is not changed", reason="SCHEMA_MISSING")
            return current
        with self._lock, self.transaction() as tx:
            if self.dialect == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (component,))
            row = tx.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?",
                             (component,)).fetchone()
            current = int(row[0]) if row else 0
            for version, script in enumerate(migrations, start=1):
                if version <= current:
                    continue
                for statement in (s.strip() for s in script.split(";")):
                    if statement:
                        tx.execute(statement)
                tx.execute("INSERT INTO schema_migrations (component, version) VALUES (?, ?)", (component, version))
            return max(current, len(migrations))


    def _applied(self, component: str) -> int:
        """The version of ``component`` recorded in ``schema_migrations``; 0 when there is no such table."""
        try:
            with self.read() as tx:
                row = tx.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?",
                                 (component,)).fetchone()
        except StoreError as exc:
            if "schema_migrations" not in exc.message:
                raise
            return 0
        return int(row[0]) if row else 0


def _is_driver_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(("psycopg", "sqlite3"))


def open_database(url: str) -> Database:
    """Open (and create, for SQLite) a database by URL."""
    return Database(url)

"""The state store's connection: opening it, transactions, and its health.

Owns `StoreConnection`, the base every part of the store builds on: the one SQLite
connection (WAL, `synchronous=NORMAL`), `_transaction` (BEGIN IMMEDIATE ... COMMIT,
rolled back on any error), and the store's health. Every SQLite error passes through
`_WatchedConnection`, is classified by `classify_error` (disk_full, read_only, io,
corrupt, other), counted in `statement_monitor_state_errors_total{kind}`, and makes
`healthy` false (so `/readyz` answers 503) until a write commits again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from monitor import metrics
from monitor.errors import StateError
from monitor.state.schema import prepare

__all__ = ["StoreConnection", "chunks", "classify_error"]

# SQLite primary result codes (the low byte of `sqlite_errorcode`) → the bounded
# `kind` label of statement_monitor_state_errors_total.
_ERROR_KINDS = {13: "disk_full", 8: "read_only", 10: "io", 14: "io", 11: "corrupt", 26: "corrupt"}
_ERROR_WORDS = (
    ("disk is full", "disk_full"),
    ("readonly", "read_only"),
    ("read-only", "read_only"),
    ("i/o error", "io"),
    ("unable to open", "io"),
    ("malformed", "corrupt"),
    ("not a database", "corrupt"),
)


def classify_error(exc: sqlite3.Error) -> str:
    """The kind of a state store error: disk_full, read_only, io, corrupt or other."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _ERROR_KINDS:
        return _ERROR_KINDS[code & 0xFF]
    message = str(exc).lower()
    for words, kind in _ERROR_WORDS:
        if words in message:
            return kind
    return "other"


class _WatchedConnection(sqlite3.Connection):
    """A connection that reports every SQLite error to its store before raising it:
    the one place all reads and writes pass, so no failure goes uncounted."""

    on_error: Any = None  # (sqlite3.Error) -> None, set by StateStore.open

    def execute(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        try:
            return super().execute(*args, **kwargs)
        except sqlite3.Error as exc:
            self._report(exc)
            raise

    def executemany(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        try:
            return super().executemany(*args, **kwargs)
        except sqlite3.Error as exc:
            self._report(exc)
            raise

    def _report(self, exc: sqlite3.Error) -> None:
        # "cannot start a transaction within a transaction" and the like are our bugs,
        # not the store's health: only operational and database errors count.
        ours = isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError))
        if isinstance(exc, sqlite3.DatabaseError) and not ours and self.on_error is not None:
            self.on_error(exc)


class StoreConnection:
    """The one SQLite connection of a store. Not thread-safe: use it from the loop."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        # Committed write transactions: a reader that polls the store for changes
        # (the coordination write-out) skips its queries while this stands still.
        self.writes = 0
        # The last SQLite error, as (kind, message), until a write commits again.
        self.failure: tuple[str, str] | None = None

    def open(self) -> None:
        self.failure = None
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                factory=_WatchedConnection,
            )
            db.on_error = self._failed
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            prepare(db)
        except sqlite3.Error as exc:
            if self.failure is None:  # not counted by the connection (connect itself failed)
                self._failed(exc)
            raise StateError(f"cannot open the state store at {self.path}: {exc}") from exc
        self._db = db

    def _failed(self, exc: sqlite3.Error) -> None:
        kind = classify_error(exc)
        metrics.STATE_ERRORS.labels(kind=kind).inc()
        self.failure = (kind, str(exc))

    @property
    def healthy(self) -> tuple[bool, str]:
        """(ok, detail) for `/readyz`: open, and no SQLite error since the last commit."""
        if self._db is None:
            return False, f"{self.path}: not open"
        if self.failure is not None:
            kind, message = self.failure
            return False, f"{self.path}: {kind}: {message}"
        return True, str(self.path)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def is_open(self) -> bool:
        return self._db is not None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StateError("the state store is not open")
        return self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
            self.writes += 1
            self.failure = None  # the store takes writes again
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


def chunks(items: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    """SQLite caps bound parameters: long id lists are queried in chunks."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])

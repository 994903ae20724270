"""The SQLite state store: source validators, statement records, the outbox.

It is the memory that makes delivery safe across restarts. Three tables:

- `sources`: per-source HTTP validators (ETag, Last-Modified, a body hash) and
  whether the source has been seen before (for `backfill`).
- `statements`: one row per statement (source, entry key), with its current
  version and content hash, and whether the broker acknowledged it.
- `outbox`: encoded events waiting for the broker's acknowledgement, in the
  order they were recorded.

The order of writes is the whole promise (see ARCHITECTURE.md): a statement
and its outbox row are written in one transaction, and validators are saved
only after every entry they cover has been recorded. A crash in between makes
the next poll fetch the feed in full again, never hide an entry behind a 304.

Writes are small transactions run on the event loop: in WAL mode with
`synchronous=NORMAL` each is a few tens of microseconds and survives `kill -9`.
Validators are cached in memory, so the 304 path never touches the disk.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import StateError

__all__ = [
    "KnownStatement",
    "OutboxRecord",
    "StateStore",
    "Validators",
]

_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    source_id     TEXT PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    body_hash     TEXT,
    updated_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS statements (
    statement_id  TEXT PRIMARY KEY,
    source_id     TEXT NOT NULL,
    entry_key     TEXT NOT NULL,
    url           TEXT,
    content_hash  TEXT NOT NULL,
    version       INTEGER NOT NULL,
    published     INTEGER NOT NULL,   -- 0: recorded silently (backfill off), 1: sent to the outbox
    acked_at      REAL,               -- when the broker acknowledged the latest version
    detected_at   REAL NOT NULL,
    UNIQUE (source_id, entry_key)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL,
    statement_id  TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    topic         TEXT NOT NULL,
    key           BLOB NOT NULL,
    value         BLOB NOT NULL,
    headers       TEXT NOT NULL,
    created_at    REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Validators:
    """What a source answered last time, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None


@dataclass(frozen=True, slots=True)
class KnownStatement:
    statement_id: str
    content_hash: str
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxRecord:
    """One encoded event waiting for the broker."""

    seq: int
    event_id: str
    statement_id: str
    source_id: str
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class NewStatementRow:
    """What `record_statement` writes: the statement record and its event."""

    statement_id: str
    source_id: str
    entry_key: str
    url: str | None
    content_hash: str
    version: int
    detected_at: float
    event_id: str
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class StateStore:
    """The one SQLite database of an instance. Not thread-safe: use it from the loop."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._validators: dict[str, Validators] = {}
        self._seen_sources: set[str] = set()

    # -- lifecycle -------------------------------------------------------

    def open(self) -> None:
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(_SCHEMA_VERSION),),
            )
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the state store at {self.path}: {exc}") from exc
        self._db = db
        self._load_sources()

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
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _load_sources(self) -> None:
        rows = self.db.execute("SELECT source_id, etag, last_modified, body_hash FROM sources")
        for source_id, etag, last_modified, body_hash in rows:
            self._validators[source_id] = Validators(etag, last_modified, body_hash)
            self._seen_sources.add(source_id)

    # -- sources ---------------------------------------------------------

    def validators(self, source_id: str) -> Validators:
        """The saved validators of a source, from memory (the 304 path reads no disk)."""
        return self._validators.get(source_id) or Validators()

    def has_seen(self, source_id: str) -> bool:
        """Whether a poll of this source has ever been fully recorded."""
        return source_id in self._seen_sources

    def save_validators(self, source_id: str, validators: Validators) -> None:
        """Save validators: call only once every entry they cover is recorded."""
        with self._transaction() as db:
            self._write_validators(db, source_id, validators)

    def _write_validators(
        self, db: sqlite3.Connection, source_id: str, validators: Validators
    ) -> None:
        db.execute(
            "INSERT INTO sources(source_id, etag, last_modified, body_hash, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(source_id) DO UPDATE SET "
            "etag=excluded.etag, last_modified=excluded.last_modified, "
            "body_hash=excluded.body_hash, updated_at=excluded.updated_at",
            (
                source_id,
                validators.etag,
                validators.last_modified,
                validators.body_hash,
                time.time(),
            ),
        )
        self._validators[source_id] = validators
        self._seen_sources.add(source_id)

    # -- statements ------------------------------------------------------

    def known(self, source_id: str, entry_keys: Iterable[str]) -> dict[str, KnownStatement]:
        """Which of these entry keys of a source are already recorded."""
        keys = list(dict.fromkeys(entry_keys))
        found: dict[str, KnownStatement] = {}
        # SQLite caps bound parameters; a 10,000-item feed is looked up in chunks.
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT entry_key, statement_id, content_hash, version FROM statements "
                f"WHERE source_id = ? AND entry_key IN ({marks})",
                (source_id, *chunk),
            )
            for entry_key, statement_id, content_hash, version in rows:
                found[entry_key] = KnownStatement(statement_id, content_hash, version)
        return found

    def record_statement(self, row: NewStatementRow) -> None:
        """Write a statement record and its outbox row in one transaction."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO statements(statement_id, source_id, entry_key, url, content_hash, "
                "version, published, acked_at, detected_at) VALUES (?, ?, ?, ?, ?, ?, 1, NULL, ?) "
                "ON CONFLICT(statement_id) DO UPDATE SET content_hash=excluded.content_hash, "
                "version=excluded.version, url=excluded.url, published=1, acked_at=NULL",
                (
                    row.statement_id,
                    row.source_id,
                    row.entry_key,
                    row.url,
                    row.content_hash,
                    row.version,
                    row.detected_at,
                ),
            )
            db.execute(
                "INSERT INTO outbox(event_id, statement_id, source_id, topic, key, value, headers, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.event_id,
                    row.statement_id,
                    row.source_id,
                    row.topic,
                    row.key,
                    row.value,
                    _encode_headers(row.headers),
                    time.time(),
                ),
            )

    def record_silently(
        self,
        source_id: str,
        entries: Sequence[tuple[str, str, str | None]],
        validators: Validators,
    ) -> None:
        """At first sight with backfill off: mark entries seen, unpublished, with the validators.

        `entries` holds `(statement_id, entry_key, url)`. One transaction, so
        the validators can never be saved without the entries they cover.
        """
        now = time.time()
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO statements(statement_id, source_id, entry_key, url, "
                "content_hash, version, published, acked_at, detected_at) "
                "VALUES (?, ?, ?, ?, '', 0, 0, NULL, ?)",
                [(sid, source_id, key, url, now) for sid, key, url in entries],
            )
            self._write_validators(db, source_id, validators)

    def statement_count(self, source_id: str | None = None) -> int:
        if source_id is None:
            return int(self.db.execute("SELECT COUNT(*) FROM statements").fetchone()[0])
        return int(
            self.db.execute(
                "SELECT COUNT(*) FROM statements WHERE source_id = ?", (source_id,)
            ).fetchone()[0]
        )

    # -- outbox ----------------------------------------------------------

    def outbox_batch(self, limit: int) -> list[OutboxRecord]:
        """The oldest pending events, in the order they were recorded."""
        rows = self.db.execute(
            "SELECT seq, event_id, statement_id, source_id, topic, key, value, headers, "
            "created_at FROM outbox ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [
            OutboxRecord(
                seq=seq,
                event_id=event_id,
                statement_id=statement_id,
                source_id=source_id,
                topic=topic,
                key=bytes(key),
                value=bytes(value),
                headers=_decode_headers(headers),
                created_at=created_at,
            )
            for (
                seq,
                event_id,
                statement_id,
                source_id,
                topic,
                key,
                value,
                headers,
                created_at,
            ) in rows
        ]

    def outbox_acked(self, records: Sequence[OutboxRecord]) -> None:
        """The broker acknowledged these: drop them from the outbox, mark the statements."""
        if not records:
            return
        now = time.time()
        with self._transaction() as db:
            db.executemany("DELETE FROM outbox WHERE seq = ?", [(r.seq,) for r in records])
            db.executemany(
                "UPDATE statements SET acked_at = ? WHERE statement_id = ?",
                [(now, r.statement_id) for r in records],
            )

    def outbox_stats(self) -> tuple[int, float | None]:
        """(pending events, creation time of the oldest or None)."""
        count, oldest = self.db.execute("SELECT COUNT(*), MIN(created_at) FROM outbox").fetchone()
        return int(count), oldest


def _encode_headers(headers: Sequence[tuple[str, bytes]]) -> str:
    return json.dumps([[name, value.decode("utf-8")] for name, value in headers])


def _decode_headers(text: str) -> tuple[tuple[str, bytes], ...]:
    return tuple((name, value.encode("utf-8")) for name, value in json.loads(text))

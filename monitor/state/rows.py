"""The rows the state store reads and writes: plain frozen dataclasses, no SQL.

Owns the shapes that cross the store's edge: what a source answered last
(`Validators`), what detect needs of a known entry (`KnownStatement`), what a write
takes (`NewStatementRow`, `AliasRow`, `VersionRow`, `RecoveredStatement`), and what the
relay and the re-check read back (`OutboxRecord`, `DueStatement`, `WebSubRow`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AliasRow",
    "DueStatement",
    "KnownStatement",
    "NewStatementRow",
    "OutboxRecord",
    "RecoveredStatement",
    "Validators",
    "VersionRow",
    "WebSubRow",
]


@dataclass(frozen=True, slots=True)
class Validators:
    """What a source answered last time, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSubRow:
    """One saved WebSub subscription. `lease_expires_at` is wall-clock (time.time())."""

    source_id: str
    hub: str
    topic: str
    secret: str = field(repr=False)
    lease_expires_at: float | None
    state: str


@dataclass(frozen=True, slots=True)
class KnownStatement:
    statement_id: str
    content_hash: str
    version: int
    entry_fingerprint: str | None = None
    published: bool = True
    retracted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DueStatement:
    """A published statement whose page is due for a re-check."""

    statement_id: str
    source_id: str
    url: str
    content_hash: str
    version: int
    data: dict[str, Any]


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
class _EntryRecord:
    """What a new statement record and a recovered one both hold: the entry it came
    from, the version and hash of its text, and when it was first detected."""

    statement_id: str
    source_id: str
    entry_key: str
    url: str | None
    content_hash: str
    version: int
    detected_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class NewStatementRow(_EntryRecord):
    """What `record_statement` writes: the statement record and its event."""

    event_id: str
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    # Schema 2: what edits and retractions need later. Optional, so older callers work.
    entry_fingerprint: str | None = None
    title: str | None = None
    text: str | None = None
    data: dict[str, Any] | None = None
    # Schema 4: the normalised URLs the statement is known by (a later entry with any
    # of them is an alias), and the watchlist topics the event also goes to.
    url_keys: tuple[str, ...] = ()
    alert_topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AliasRow:
    """An entry that carried a statement already published: recorded, not published."""

    statement_id: str  # the entry's own id, statement_key(source, entry key)
    source_id: str
    entry_key: str
    url: str | None
    alias_of: str  # the statement it duplicates
    entry_fingerprint: str | None = None
    url_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionRow:
    """What `record_version` writes: a statement's next version (or retraction) and its event.

    `previous_version` guards the write: if another writer recorded a version in
    between, nothing is written and `record_version` returns False.
    """

    statement_id: str
    source_id: str
    previous_version: int
    version: int
    content_hash: str
    entry_fingerprint: str | None
    title: str | None
    text: str | None
    data: dict[str, Any]
    event_id: str
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    retracted_at: float | None = None
    alert_topics: tuple[str, ...] = ()  # watchlist topics the event also goes to


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveredStatement(_EntryRecord):
    """A statement learnt back from the output topic: the last version published."""

    title: str | None
    text: str | None
    data: dict[str, Any]
    retracted_at: float | None = None
    url_keys: tuple[str, ...] = ()


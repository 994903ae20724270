"""The SQLite state store: source validators, statement records, the outbox.

It is the memory that makes delivery safe across restarts. Three tables:

- `sources`: per-source HTTP validators (ETag, Last-Modified, a body hash) and
  whether the source has been seen before (for `backfill`).
- `statements`: one row per statement (source, entry key), with its current
  version and content hash, and whether the broker acknowledged it; since
  schema 2 also the feed entry's fingerprint (to notice edits in the feed
  cheaply), the last published title, text and event data (for `.updated`
  diffs and `.retracted`), when it was last re-checked and when retracted.
- `outbox`: encoded events waiting for the broker's acknowledgement, in the
  order they were recorded.
- since schema 3, `sources.discovered_url` (the feed a home page links to,
  found by autodiscovery) and `websub_subscriptions` (one row per source with a
  WebSub subscription: hub, topic, secret, lease end in wall-clock seconds, state).
- since schema 4, `statement_urls` (the normalised URLs a published statement
  is known by: its link and its canonical URL, see `detect.url_key`) and
  `statements.alias_of`: an entry of another source (or feed) that carried a
  statement already published is recorded as an alias, unpublished, and its
  source is added to the statement's `data.sources`. The duplicate check and
  the write are one transaction, so two sources racing with one statement
  publish it once.
- since schema 5, what of it has been written to the coordination state topic
  (monitor/coordination.py): `statements.state_version` and
  `sources.state_synced_at`. Used only with `coordination`; the store is then
  the cache of the state topic, restored from it on assignment.
- `recovered_sources` (additive, no schema bump): sources whose statements were
  learnt back from the output topic after the store was found empty
  (monitor/recovery.py), with the horizon before which an entry absent from the
  topic is taken as already handled; the row goes at the source's next saved
  validators.

Its health is visible: every SQLite error is classified (disk_full, read_only,
io, corrupt, other), counted in `statement_monitor_state_errors_total{kind}`,
and makes `healthy` false (so `/readyz` answers 503) until a write commits again.

The order of writes is the whole promise (see ARCHITECTURE.md), and it is kept in
`statements.py`, the one place a statement's event is written:

1. `record_statement` writes the statement record, its URLs and its outbox rows in
   ONE transaction (BEGIN IMMEDIATE ... COMMIT, `connection.py`); an entry whose URL
   is already a published statement's is written as an alias in that same
   transaction, with no outbox row. `record_version` likewise for an edit or a
   retraction, guarded by the version it read.
2. Validators are saved (`sources.py: save_validators`) only after every entry
   they cover has been recorded; `record_silently` writes a first poll's entries
   together with them, in one transaction.
3. The relay (monitor/outbox.py) sends outbox rows in order and deletes them, and
   marks the statements acknowledged, only once the broker has acknowledged them
   (`outbox.py: outbox_acked`).

A crash in between makes the next poll fetch the feed in full again, never hide an
entry behind a 304; an event recorded and not yet acknowledged is sent again.

Writes are small transactions run on the event loop: in WAL mode with
`synchronous=NORMAL` each is a few tens of microseconds and survives `kill -9`.
Validators are cached in memory, so the 304 path never touches the disk.

One module per concern, composed by `StateStore` below:

- `connection.py`: the connection, transactions, SQLite error classification, health;
- `schema.py`: the tables and the additive migrations;
- `rows.py`: the row dataclasses that cross the store's edge;
- `sources.py`: validators, seen sources, discovered feeds (and their memory);
- `statements.py`: statements, versions, aliases, the re-check schedule;
- `outbox.py`: the outbox rows;
- `websub.py`: WebSub subscriptions;
- `coordination.py`: the store as the cache of the coordination state topic;
- `recovery.py`: recovery from the output topic.
"""

from __future__ import annotations

from monitor.state.connection import classify_error
from monitor.state.coordination import CoordinationCache
from monitor.state.recovery import RecoveryStore
from monitor.state.rows import (
    AliasRow,
    DueStatement,
    KnownStatement,
    NewStatementRow,
    OutboxRecord,
    RecoveredStatement,
    Validators,
    VersionRow,
    WebSubRow,
)
from monitor.state.statements import StatementStore
from monitor.state.websub import WebSubSubscriptions

__all__ = [
    "AliasRow",
    "DueStatement",
    "KnownStatement",
    "NewStatementRow",
    "OutboxRecord",
    "RecoveredStatement",
    "StateStore",
    "Validators",
    "VersionRow",
    "WebSubRow",
    "classify_error",
]


class StateStore(StatementStore, RecoveryStore, CoordinationCache, WebSubSubscriptions):
    """The one SQLite database of an instance. Not thread-safe: use it from the loop.

    Each part is a class of its own module (see above), all built on one
    `StoreConnection`; the outbox and sources parts come in through `StatementStore`,
    whose transactions write to them.
    """

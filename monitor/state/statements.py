"""Statements and their versions: the records that say what was published.

Owns the `statements` and `statement_urls` tables. The write that matters most is
here, in one place: `record_statement` writes a statement record, its URLs and its
outbox rows in ONE transaction (or, if one of its URLs is a published statement's,
the alias row instead, checked and written in that same transaction so two sources
racing with one statement publish it once). `record_version` does the same for an
edit or a retraction, guarded by the version it read; `record_silently` writes a
first poll's entries with the feed's validators in one transaction. The order of
writes these keep is told in monitor/state/__init__.py.

Also: which entries of a feed are known (`known`), aliases, the re-check schedule
(`due_for_recheck`, `mark_checked`) and the counts of the status views.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from monitor.state.connection import chunks
from monitor.state.outbox import OutboxRows
from monitor.state.rows import (
    AliasRow,
    DueStatement,
    KnownStatement,
    NewStatementRow,
    Validators,
    VersionRow,
)
from monitor.state.sources import SourceStore

__all__ = ["StatementStore"]


class StatementStore(OutboxRows, SourceStore):
    """The statements part of `StateStore`: it writes outbox rows and validators in
    its own transactions, so it builds on both."""

    def known(self, source_id: str, entry_keys: Iterable[str]) -> dict[str, KnownStatement]:
        """Which of these entry keys of a source are already recorded."""
        keys = list(dict.fromkeys(entry_keys))
        found: dict[str, KnownStatement] = {}
        # SQLite caps bound parameters; a 10,000-item feed is looked up in chunks.
        for chunk in chunks(keys):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT entry_key, statement_id, content_hash, version, entry_fingerprint, "
                f"published, retracted_at FROM statements "
                f"WHERE source_id = ? AND entry_key IN ({marks})",
                (source_id, *chunk),
            )
            for entry_key, statement_id, hash_, version, fingerprint, published, gone in rows:
                found[entry_key] = KnownStatement(
                    statement_id,
                    hash_,
                    version,
                    entry_fingerprint=fingerprint,
                    published=bool(published),
                    retracted=gone is not None,
                )
        return found

    def statement_for_urls(self, url_keys: Iterable[str]) -> str | None:
        """The published statement known by any of these normalised URLs, if one is."""
        for url_key in url_keys:
            row = self.db.execute(
                "SELECT statement_id FROM statement_urls WHERE url_key = ?", (url_key,)
            ).fetchone()
            if row is not None:
                return str(row[0])
        return None

    def record_statement(self, row: NewStatementRow) -> str | None:
        """Write a statement record and its outbox rows in one transaction.

        Unless one of `row.url_keys` is already a published statement's: then the
        entry is recorded as its alias instead, nothing goes to the outbox, and the
        id of that statement is returned (None when the statement was recorded).
        """
        with self._transaction() as db:
            existing = self.statement_for_urls(row.url_keys)
            if existing is not None and existing != row.statement_id:
                self._write_alias(
                    db,
                    AliasRow(
                        statement_id=row.statement_id,
                        source_id=row.source_id,
                        entry_key=row.entry_key,
                        url=row.url,
                        alias_of=existing,
                        entry_fingerprint=row.entry_fingerprint,
                        url_keys=row.url_keys,
                    ),
                )
                return existing
            db.execute(
                "INSERT INTO statements(statement_id, source_id, entry_key, url, content_hash, "
                "version, published, acked_at, detected_at, entry_fingerprint, title, text, data) "
                "VALUES (?, ?, ?, ?, ?, ?, 1, NULL, ?, ?, ?, ?, ?) "
                "ON CONFLICT(statement_id) DO UPDATE SET content_hash=excluded.content_hash, "
                "version=excluded.version, url=excluded.url, published=1, acked_at=NULL, "
                "entry_fingerprint=excluded.entry_fingerprint, title=excluded.title, "
                "text=excluded.text, data=excluded.data",
                (
                    row.statement_id,
                    row.source_id,
                    row.entry_key,
                    row.url,
                    row.content_hash,
                    row.version,
                    row.detected_at,
                    row.entry_fingerprint,
                    row.title,
                    row.text,
                    None if row.data is None else json.dumps(row.data, ensure_ascii=False),
                ),
            )
            db.executemany(
                "INSERT OR IGNORE INTO statement_urls(url_key, statement_id) VALUES (?, ?)",
                [(url_key, row.statement_id) for url_key in row.url_keys],
            )
            for topic in (row.topic, *row.alert_topics):
                self._write_outbox(
                    db, row.event_id, row.statement_id, row.source_id, topic,
                    row.key, row.value, row.headers,
                )
        return None

    def record_alias(self, row: AliasRow) -> None:
        """Record an entry that carries `row.alias_of`, found before its page was fetched."""
        with self._transaction() as db:
            self._write_alias(db, row)

    def _write_alias(self, db: sqlite3.Connection, row: AliasRow) -> None:
        """The alias row (unpublished, so detect never treats it as new or edited), its
        URLs, and its source added to the statement's `data.sources` for later versions."""
        db.execute(
            "INSERT INTO statements(statement_id, source_id, entry_key, url, content_hash, "
            "version, published, acked_at, detected_at, entry_fingerprint, alias_of) "
            "VALUES (?, ?, ?, ?, '', 0, 0, NULL, ?, ?, ?) ON CONFLICT(statement_id) DO UPDATE "
            "SET alias_of=excluded.alias_of, entry_fingerprint=excluded.entry_fingerprint",
            (
                row.statement_id,
                row.source_id,
                row.entry_key,
                row.url,
                time.time(),
                row.entry_fingerprint,
                row.alias_of,
            ),
        )
        db.executemany(
            "INSERT OR IGNORE INTO statement_urls(url_key, statement_id) VALUES (?, ?)",
            [(url_key, row.alias_of) for url_key in row.url_keys],
        )
        found = db.execute(
            "SELECT data, source_id FROM statements WHERE statement_id = ?", (row.alias_of,)
        ).fetchone()
        if found is None or found[0] is None:
            return
        data = json.loads(found[0])
        sources = list(dict.fromkeys([*(data.get("sources") or [found[1]]), row.source_id]))
        if sources != data.get("sources"):
            data["sources"] = sources
            db.execute(
                "UPDATE statements SET data = ? WHERE statement_id = ?",
                (json.dumps(data, ensure_ascii=False), row.alias_of),
            )

    def aliases(self, statement_id: str) -> list[tuple[str, str]]:
        """(source id, entry key) of every entry recorded as an alias of the statement."""
        rows = self.db.execute(
            "SELECT source_id, entry_key FROM statements WHERE alias_of = ? ORDER BY rowid",
            (statement_id,),
        )
        return [(str(source_id), str(entry_key)) for source_id, entry_key in rows]

    def record_version(self, row: VersionRow) -> bool:
        """Write a statement's next version (or its retraction) and its outbox row, in one
        transaction. False, and nothing written, if the statement is no longer at
        `row.previous_version` or is already retracted (another writer got there first)."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE statements SET content_hash = ?, version = ?, entry_fingerprint = "
                "COALESCE(?, entry_fingerprint), title = ?, text = ?, data = ?, "
                "retracted_at = ?, acked_at = NULL "
                "WHERE statement_id = ? AND version = ? AND retracted_at IS NULL",
                (
                    row.content_hash,
                    row.version,
                    row.entry_fingerprint,
                    row.title,
                    row.text,
                    json.dumps(row.data, ensure_ascii=False),
                    row.retracted_at,
                    row.statement_id,
                    row.previous_version,
                ),
            )
            if cursor.rowcount != 1:
                return False
            for topic in (row.topic, *row.alert_topics):
                self._write_outbox(
                    db, row.event_id, row.statement_id, row.source_id, topic,
                    row.key, row.value, row.headers,
                )
        return True

    def set_fingerprints(self, fingerprints: Sequence[tuple[str, str]]) -> None:
        """Store `(statement_id, entry_fingerprint)` pairs silently: no event."""
        if not fingerprints:
            return
        with self._transaction() as db:
            db.executemany(
                "UPDATE statements SET entry_fingerprint = ? WHERE statement_id = ?",
                [(fingerprint, sid) for sid, fingerprint in fingerprints],
            )

    def due_for_recheck(
        self,
        source_ids: Sequence[str],
        *,
        interval: float,
        window: float,
        limit: int,
        now: float | None = None,
    ) -> list[DueStatement]:
        """Published, unretracted statements of these sources, first detected within
        `window` seconds, not checked for `interval` seconds: the most overdue first.

        Statements recorded before schema 2 (no last data) are not re-checked: there
        is nothing to compare with, nor to say in a retraction."""
        now = time.time() if now is None else now
        due: list[DueStatement] = []
        for chunk in chunks(source_ids):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT statement_id, source_id, url, content_hash, version, data "
                f"FROM statements WHERE source_id IN ({marks}) AND published = 1 "
                f"AND retracted_at IS NULL AND url IS NOT NULL AND data IS NOT NULL "
                f"AND detected_at >= ? AND COALESCE(last_checked_at, detected_at) <= ? "
                f"ORDER BY COALESCE(last_checked_at, detected_at) LIMIT ?",
                (*chunk, now - window, now - interval, limit - len(due)),
            )
            for statement_id, source_id, url, hash_, version, data in rows:
                due.append(
                    DueStatement(
                        statement_id=statement_id,
                        source_id=source_id,
                        url=url,
                        content_hash=hash_,
                        version=version,
                        data=json.loads(data),
                    )
                )
            if len(due) >= limit:
                break
        return due

    def mark_checked(self, statement_ids: Sequence[str], when: float | None = None) -> None:
        """Note a re-check, before it is made: a crash still moves the schedule on."""
        if not statement_ids:
            return
        when = time.time() if when is None else when
        with self._transaction() as db:
            db.executemany(
                "UPDATE statements SET last_checked_at = ? WHERE statement_id = ?",
                [(when, sid) for sid in statement_ids],
            )

    def last_published(self, statement_id: str) -> dict[str, Any] | None:
        """The `data` of the statement's last published event, if recorded (schema 2)."""
        row = self.db.execute(
            "SELECT data FROM statements WHERE statement_id = ?", (statement_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        data: dict[str, Any] = json.loads(row[0])
        return data

    def record_silently(
        self,
        source_id: str,
        entries: Sequence[tuple[str, str, str | None] | tuple[str, str, str | None, str]],
        validators: Validators | None,
    ) -> None:
        """At first sight with backfill off: mark entries seen, unpublished, with the validators.

        `entries` holds `(statement_id, entry_key, url)`, optionally with the entry's
        fingerprint as a fourth item. One transaction, so the validators can never
        be saved without the entries they cover.
        """
        now = time.time()
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO statements(statement_id, source_id, entry_key, url, "
                "content_hash, version, published, acked_at, detected_at, entry_fingerprint) "
                "VALUES (?, ?, ?, ?, '', 0, 0, NULL, ?, ?)",
                [
                    (entry[0], source_id, entry[1], entry[2], now, (*entry, None)[3])
                    for entry in entries
                ],
            )
            if validators is not None:  # None: more entries of this poll are still to come
                self._write_validators(db, source_id, validators)

    def statement_count(self, source_id: str | None = None) -> int:
        if source_id is None:
            return int(self.db.execute("SELECT COUNT(*) FROM statements").fetchone()[0])
        return int(
            self.db.execute(
                "SELECT COUNT(*) FROM statements WHERE source_id = ?", (source_id,)
            ).fetchone()[0]
        )

    def statement_counts(self) -> dict[str, int]:
        """Published statements per source, in one query (for the status views)."""
        rows = self.db.execute(
            "SELECT source_id, COUNT(*) FROM statements WHERE published = 1 GROUP BY source_id"
        )
        return {str(source_id): int(count) for source_id, count in rows}

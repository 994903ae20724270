"""The store as the cache of the coordination state topic (monitor/coordination.py).

Owns what schema 5 added for `coordination`: which acknowledged state the topic
still lacks (`statements.state_version`, `sources.state_synced_at`), marking it
written, and restoring a shard's records into the store on assignment, where the
store's own record wins only if it is newer.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from monitor.state.connection import chunks
from monitor.state.rows import Validators
from monitor.state.sources import SourceStore
from monitor.statesync import StateRecord

__all__ = ["CoordinationCache"]


_STATE_COLUMNS = (
    "statement_id, source_id, entry_key, url, content_hash, version, published, "
    "entry_fingerprint, retracted_at, alias_of, detected_at, title, text, data"
)


class CoordinationCache(SourceStore):
    """The store as the cache of the coordination state topic (monitor/coordination.py).

    Mixed into `StateStore`: which acknowledged state is not yet in the topic, marking
    it written, and restoring a shard's records into the store.
    """

    def unsynced_statements(self, source_ids: Sequence[str], limit: int) -> list[StateRecord]:
        """Entries whose current version the topic lacks, once the broker has it: a
        published version once acknowledged, an unpublished entry (silent, alias) at once."""
        found: list[StateRecord] = []
        for chunk in chunks(source_ids):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT {_STATE_COLUMNS} FROM statements WHERE source_id IN ({marks}) "
                f"AND (state_version IS NULL OR state_version < version) "
                f"AND (published = 0 OR acked_at IS NOT NULL) LIMIT ?",
                (*chunk, limit - len(found)),
            )
            found.extend(self._statement_record(row) for row in rows)
            if len(found) >= limit:
                break
        return found

    def _statement_record(self, row: tuple[Any, ...]) -> StateRecord:
        (statement_id, source_id, entry_key, url, hash_, version, published, fingerprint,
         retracted_at, alias_of, detected_at, title, text, data) = row
        keys = [
            key
            for (key,) in self.db.execute(
                "SELECT url_key FROM statement_urls WHERE statement_id = ?", (statement_id,)
            )
        ]
        return StateRecord(
            source_id,
            entry_key,
            {
                "statement_id": statement_id,
                "url": url,
                "content_hash": hash_,
                "version": version,
                "published": bool(published),
                "entry_fingerprint": fingerprint,
                "retracted_at": retracted_at,
                "alias_of": alias_of,
                "detected_at": detected_at,
                "title": title,
                "text": text,
                "data": None if data is None else json.loads(data),
                "url_keys": keys if not alias_of else [],
            },
        )

    def mark_statements_synced(self, records: Sequence[StateRecord]) -> None:
        with self._transaction() as db:
            db.executemany(
                "UPDATE statements SET state_version = ? WHERE statement_id = ?",
                [(r.value["version"], r.value["statement_id"]) for r in records],
            )

    def unsynced_validators(self, source_ids: Sequence[str]) -> list[StateRecord]:
        """Validators newer than the topic's, of sources with nothing waiting: no event in
        the outbox, no statement record unwritten (a 304 must never hide an entry)."""
        found: list[StateRecord] = []
        for chunk in chunks(source_ids):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT source_id, etag, last_modified, body_hash, discovered_url, updated_at "
                f"FROM sources s WHERE source_id IN ({marks}) "
                f"AND (state_synced_at IS NULL OR state_synced_at < updated_at) "
                f"AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.source_id = s.source_id) "
                f"AND NOT EXISTS (SELECT 1 FROM statements t WHERE t.source_id = s.source_id "
                f"AND (t.state_version IS NULL OR t.state_version < t.version))",
                chunk,
            )
            for source_id, etag, last_modified, body_hash, discovered, updated_at in rows:
                found.append(
                    StateRecord(
                        source_id,
                        None,
                        {
                            "etag": etag,
                            "last_modified": last_modified,
                            "body_hash": body_hash,
                            "discovered_url": discovered,
                            "updated_at": updated_at,
                        },
                    )
                )
        return found

    def mark_validators_synced(self, records: Sequence[StateRecord]) -> None:
        with self._transaction() as db:
            db.executemany(
                "UPDATE sources SET state_synced_at = ? WHERE source_id = ?",
                [(r.value["updated_at"], r.source_id) for r in records],
            )

    def restore(self, records: Sequence[StateRecord]) -> None:
        """Apply state-topic records: each replaces what the store has unless the store's
        is newer (a later version; validators saved later)."""
        with self._transaction() as db:
            for record in records:
                if record.is_validators:
                    self._restore_validators(db, record)
                else:
                    self._restore_statement(db, record)

    def _restore_validators(self, db: sqlite3.Connection, record: StateRecord) -> None:
        value = record.value
        updated_at = float(value.get("updated_at") or 0.0)
        db.execute(
            "INSERT INTO sources(source_id, etag, last_modified, body_hash, updated_at, "
            "discovered_url, state_synced_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(source_id) DO UPDATE SET etag=excluded.etag, "
            "last_modified=excluded.last_modified, body_hash=excluded.body_hash, "
            "updated_at=excluded.updated_at, discovered_url=excluded.discovered_url, "
            "state_synced_at=excluded.state_synced_at WHERE sources.updated_at <= ?",
            (
                record.source_id,
                value.get("etag"),
                value.get("last_modified"),
                value.get("body_hash"),
                updated_at,
                value.get("discovered_url"),
                updated_at,
                updated_at,
            ),
        )
        row = db.execute(
            "SELECT etag, last_modified, body_hash, discovered_url FROM sources "
            "WHERE source_id = ?",
            (record.source_id,),
        ).fetchone()
        self._validators[record.source_id] = Validators(row[0], row[1], row[2])
        self._seen_sources.add(record.source_id)
        if row[3]:
            self._discovered[record.source_id] = row[3]

    def _restore_statement(self, db: sqlite3.Connection, record: StateRecord) -> None:
        value = record.value
        data = value.get("data")
        version = int(value.get("version") or 0)
        published = bool(value.get("published"))
        db.execute(
            "INSERT INTO statements(statement_id, source_id, entry_key, url, content_hash, "
            "version, published, acked_at, detected_at, entry_fingerprint, title, text, data, "
            "retracted_at, alias_of, state_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(statement_id) DO UPDATE SET url=excluded.url, "
            "content_hash=excluded.content_hash, version=excluded.version, "
            "published=excluded.published, acked_at=excluded.acked_at, "
            "entry_fingerprint=excluded.entry_fingerprint, title=excluded.title, "
            "text=excluded.text, data=COALESCE(excluded.data, statements.data), "
            "retracted_at=excluded.retracted_at, alias_of=excluded.alias_of, "
            "state_version=excluded.state_version WHERE statements.version <= excluded.version",
            (
                value["statement_id"],
                record.source_id,
                record.entry_key,
                value.get("url"),
                value.get("content_hash") or "",
                version,
                int(published),
                time.time() if published else None,  # it is in the topic: it was acknowledged
                float(value.get("detected_at") or time.time()),
                value.get("entry_fingerprint"),
                value.get("title"),
                value.get("text"),
                None if data is None else json.dumps(data, ensure_ascii=False),
                value.get("retracted_at"),
                value.get("alias_of"),
                version,
            ),
        )
        db.executemany(
            "INSERT OR IGNORE INTO statement_urls(url_key, statement_id) VALUES (?, ?)",
            [(key, value["statement_id"]) for key in value.get("url_keys") or ()],
        )

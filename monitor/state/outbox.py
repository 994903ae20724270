"""The outbox rows: encoded events waiting for the broker's acknowledgement.

Owns the `outbox` table: the row written inside a statement's own transaction
(`_write_outbox`, called only from `StatementStore`), the relay's reads in the order
the rows were recorded (`outbox_batch`), and their deletion once acknowledged
(`outbox_acked`). The relay that sends them is monitor/outbox.py.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence

from monitor.state.connection import StoreConnection
from monitor.state.rows import OutboxRecord

__all__ = ["OutboxRows"]


class OutboxRows(StoreConnection):
    """The outbox part of `StateStore`."""

    def _write_outbox(
        self,
        db: sqlite3.Connection,
        event_id: str,
        statement_id: str,
        source_id: str,
        topic: str,
        key: bytes,
        value: bytes,
        headers: Sequence[tuple[str, bytes]],
    ) -> None:
        db.execute(
            "INSERT INTO outbox(event_id, statement_id, source_id, topic, key, value, headers, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                statement_id,
                source_id,
                topic,
                key,
                value,
                _encode_headers(headers),
                time.time(),
            ),
        )

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

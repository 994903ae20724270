"""Recovery from the output topic (monitor/recovery.py): the store's side.

Owns `recovered_sources` (additive, no schema bump): when the store is found empty
(`is_empty`), the statements learnt back from the output topic are recorded as
published and acknowledged, and their sources as seen, each with a horizon before
which an entry absent from the topic is taken as already handled. The horizon row
goes at the source's next saved validators (see `SourceStore._write_validators`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from monitor.state.rows import RecoveredStatement
from monitor.state.sources import SourceStore

__all__ = ["RecoveryStore"]


class RecoveryStore(SourceStore):
    """The recovery part of `StateStore`."""

    def is_empty(self) -> bool:
        """No statement, no source and no outbox row: a first start, or a lost store."""
        for table in ("statements", "sources", "outbox", "recovered_sources"):
            if self.db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                return False
        return True

    def recover_statements(
        self, rows: Sequence[RecoveredStatement], horizons: dict[str, float]
    ) -> None:
        """Record statements learnt from the output topic as published and acknowledged,
        and their sources as seen, with a horizon each, in one transaction.

        The fingerprint is left empty, so the first poll stores it without an event."""
        now = time.time()
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO statements(statement_id, source_id, entry_key, url, "
                "content_hash, version, published, acked_at, detected_at, title, text, data, "
                "retracted_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        row.statement_id, row.source_id, row.entry_key, row.url,
                        row.content_hash, row.version, now, row.detected_at, row.title,
                        row.text, json.dumps(row.data, ensure_ascii=False), row.retracted_at,
                    )
                    for row in rows
                ],
            )
            db.executemany(
                "INSERT OR IGNORE INTO statement_urls(url_key, statement_id) VALUES (?, ?)",
                [(key, row.statement_id) for row in rows for key in row.url_keys],
            )
            db.executemany(
                "INSERT OR REPLACE INTO recovered_sources(source_id, horizon) VALUES (?, ?)",
                sorted(horizons.items()),
            )
        self._horizons.update(horizons)
        self._seen_sources.update(horizons)

    def recovery_horizon(self, source_id: str) -> float | None:
        """For a source recovered from the topic and not polled in full since: the
        Unix time before which an entry the topic lacks was already handled."""
        return self._horizons.get(source_id)

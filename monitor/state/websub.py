"""The WebSub subscriptions the store keeps (since schema 3).

Owns the `websub_subscriptions` table: one row per source with a subscription (hub,
topic, secret, lease end in wall-clock seconds, state), read at start-up and written
as the hub answers. The subscriber itself is monitor/websub.py.
"""

from __future__ import annotations

from monitor.state.connection import StoreConnection
from monitor.state.rows import WebSubRow

__all__ = ["WebSubSubscriptions"]


class WebSubSubscriptions(StoreConnection):
    """The WebSub part of `StateStore`."""

    def websub_subscriptions(self) -> list[WebSubRow]:
        """Every saved WebSub subscription (read at start-up, not on a hot path)."""
        rows = self.db.execute(
            "SELECT source_id, hub, topic, secret, lease_expires_at, state "
            "FROM websub_subscriptions ORDER BY source_id"
        )
        return [
            WebSubRow(
                source_id=source_id, hub=hub, topic=topic, secret=secret,
                lease_expires_at=expires, state=state,
            )
            for source_id, hub, topic, secret, expires, state in rows
        ]

    def save_websub_subscription(self, row: WebSubRow) -> None:
        """Insert or replace the subscription of `row.source_id`."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO websub_subscriptions(source_id, hub, topic, secret, "
                "lease_expires_at, state) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(source_id) DO UPDATE SET hub=excluded.hub, topic=excluded.topic, "
                "secret=excluded.secret, lease_expires_at=excluded.lease_expires_at, "
                "state=excluded.state",
                (row.source_id, row.hub, row.topic, row.secret, row.lease_expires_at, row.state),
            )

    def delete_websub_subscription(self, source_id: str, hub: str, topic: str) -> None:
        """Forget a subscription, only if it is still this one (hub and topic)."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM websub_subscriptions WHERE source_id = ? AND hub = ? AND topic = ?",
                (source_id, hub, topic),
            )

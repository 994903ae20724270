"""The sources the store knows: validators, whether seen, the discovered feed.

Owns the `sources` table and its memory: the HTTP validators of each source (ETag,
Last-Modified, a body hash), cached so the 304 path reads no disk; whether a poll of
the source was ever fully recorded (a row means "seen", which decides `backfill`);
the feed its home page links to (autodiscovery, schema 3); and the horizons of
sources recovered from the output topic, dropped at their next saved validators.

Validators are saved only once every entry they cover is recorded: see the order of
writes in monitor/state/__init__.py.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from monitor.state.connection import StoreConnection
from monitor.state.rows import Validators

__all__ = ["SourceStore"]


class SourceStore(StoreConnection):
    """The sources part of `StateStore`, with the in-memory caches the others read."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        self._validators: dict[str, Validators] = {}
        self._seen_sources: set[str] = set()
        self._discovered: dict[str, str] = {}
        self._horizons: dict[str, float] = {}  # recovered sources (see recover_statements)

    def open(self) -> None:
        super().open()
        self._load_sources()

    def _load_sources(self) -> None:
        rows = self.db.execute(
            "SELECT source_id, etag, last_modified, body_hash, discovered_url FROM sources"
        )
        for source_id, etag, last_modified, body_hash, discovered_url in rows:
            self._validators[source_id] = Validators(etag, last_modified, body_hash)
            self._seen_sources.add(source_id)
            if discovered_url:
                self._discovered[source_id] = discovered_url
        for source_id, horizon in self.db.execute(
            "SELECT source_id, horizon FROM recovered_sources"
        ):
            self._horizons[source_id] = horizon
            self._seen_sources.add(source_id)

    def validators(self, source_id: str) -> Validators:
        """The saved validators of a source, from memory (the 304 path reads no disk)."""
        return self._validators.get(source_id) or Validators()

    def has_seen(self, source_id: str) -> bool:
        """Whether a poll of this source has ever been fully recorded."""
        return source_id in self._seen_sources

    def discovered_url(self, source_id: str) -> str | None:
        """The feed the source's home page links to (autodiscovery), from memory."""
        return self._discovered.get(source_id)

    def set_discovered_url(self, source_id: str, url: str | None) -> None:
        """Remember (or, with None, forget) the feed a source's home page links to.

        Written at once for a source already seen; otherwise with its first
        validators, so a source row never exists before its first poll is recorded
        (a row means "seen", which decides `backfill`)."""
        if url is None:
            if self._discovered.pop(source_id, None) is None:
                return
        elif self._discovered.get(source_id) == url:
            return
        else:
            self._discovered[source_id] = url
        if source_id in self._seen_sources:
            with self._transaction() as db:
                db.execute(
                    "UPDATE sources SET discovered_url = ? WHERE source_id = ?", (url, source_id)
                )

    def save_validators(self, source_id: str, validators: Validators) -> None:
        """Save validators: call only once every entry they cover is recorded."""
        with self._transaction() as db:
            self._write_validators(db, source_id, validators)

    def _write_validators(
        self, db: sqlite3.Connection, source_id: str, validators: Validators
    ) -> None:
        db.execute(
            "INSERT INTO sources(source_id, etag, last_modified, body_hash, updated_at, "
            "discovered_url) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(source_id) DO UPDATE SET "
            "etag=excluded.etag, last_modified=excluded.last_modified, "
            "body_hash=excluded.body_hash, updated_at=excluded.updated_at, "
            "discovered_url=excluded.discovered_url",
            (
                source_id,
                validators.etag,
                validators.last_modified,
                validators.body_hash,
                time.time(),
                self._discovered.get(source_id),
            ),
        )
        self._validators[source_id] = validators
        self._seen_sources.add(source_id)
        if source_id in self._horizons:
            # A poll after recovery is recorded in full: the horizon has done its work.
            db.execute("DELETE FROM recovered_sources WHERE source_id = ?", (source_id,))
            del self._horizons[source_id]

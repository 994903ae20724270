"""The state store's tables, and the additive migrations that bring any earlier schema up.

Owns the SQL that creates the tables (`SCHEMA`), the columns each schema added, and
`prepare`, run by `StoreConnection.open` on every start. What each table holds is told
in `monitor/state/__init__.py`. A database written by an older schema opens as it is:
columns are only ever added, so an older release can still read a newer file.
"""

from __future__ import annotations

import sqlite3

__all__ = ["SCHEMA", "SCHEMA_VERSION", "prepare"]

SCHEMA_VERSION = 5

# Schema 2 (edits and retractions): columns added to `statements`, additively, so a
# database written by schema 1 opens as it is (see `_migrate`).
_STATEMENT_COLUMNS_V2 = (
    ("entry_fingerprint", "TEXT"),  # hash of the feed entry's title, summary, content, date
    ("title", "TEXT"),  # last published title
    ("text", "TEXT"),  # last published text
    ("data", "TEXT"),  # last published event `data`, JSON
    ("last_checked_at", "REAL"),  # last re-check of the page (set before fetching)
    ("retracted_at", "REAL"),  # when the `.retracted` event was recorded
)

# Schema 3: the discovered feed URL of a source, and WebSub subscriptions (a new table).
_SOURCE_COLUMNS_V3 = (("discovered_url", "TEXT"),)
# Schema 4: one statement reached through several sources (see monitor/state/__init__.py).
_STATEMENT_COLUMNS_V4 = (("alias_of", "TEXT"),)
# Schema 5: the version of a statement, and the time of a source's validators, that
# the coordination state topic holds (NULL: not written there yet).
_STATEMENT_COLUMNS_V5 = (("state_version", "INTEGER"),)
_SOURCE_COLUMNS_V5 = (("state_synced_at", "REAL"),)

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS statement_urls (
    url_key       TEXT PRIMARY KEY,   -- detect.url_key() of a link or canonical URL
    statement_id  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS websub_subscriptions (
    source_id        TEXT PRIMARY KEY,
    hub              TEXT NOT NULL,
    topic            TEXT NOT NULL,
    secret           TEXT NOT NULL,
    lease_expires_at REAL,            -- wall-clock seconds; NULL until verified
    state            TEXT NOT NULL    -- pending, verified, expired, denied
);
CREATE TABLE IF NOT EXISTS recovered_sources (
    source_id     TEXT PRIMARY KEY,
    horizon       REAL NOT NULL       -- an absent entry dated before this was handled
);
"""



def prepare(db: sqlite3.Connection) -> None:
    """Create the tables a new database lacks, then migrate an older one in place."""
    db.executescript(SCHEMA)
    _migrate(db)


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a database of any earlier schema up to `SCHEMA_VERSION`, additively."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(statements)")}
    for name, kind in _STATEMENT_COLUMNS_V2:
        if name not in columns:
            db.execute(f"ALTER TABLE statements ADD COLUMN {name} {kind}")
    columns = {row[1] for row in db.execute("PRAGMA table_info(sources)")}
    for name, kind in _SOURCE_COLUMNS_V3:
        if name not in columns:
            db.execute(f"ALTER TABLE sources ADD COLUMN {name} {kind}")
    columns = {row[1] for row in db.execute("PRAGMA table_info(statements)")}
    for name, kind in (*_STATEMENT_COLUMNS_V4, *_STATEMENT_COLUMNS_V5):
        if name not in columns:
            db.execute(f"ALTER TABLE statements ADD COLUMN {name} {kind}")
    columns = {row[1] for row in db.execute("PRAGMA table_info(sources)")}
    for name, kind in _SOURCE_COLUMNS_V5:
        if name not in columns:
            db.execute(f"ALTER TABLE sources ADD COLUMN {name} {kind}")
    db.execute("CREATE INDEX IF NOT EXISTS outbox_source ON outbox(source_id)")
    db.execute("CREATE INDEX IF NOT EXISTS statements_alias ON statements(alias_of)")
    db.execute(
        "CREATE INDEX IF NOT EXISTS statements_recheck "
        "ON statements(source_id, retracted_at, detected_at)"
    )
    db.execute(
        "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(SCHEMA_VERSION),),
    )


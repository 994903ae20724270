"""The state store's health is visible: its errors turn /readyz to 503 and are counted.

Real SQLite failures, made by SQLite itself on the service's own connection:
`PRAGMA query_only` makes every write fail as on a read-only store
(SQLITE_READONLY), `PRAGMA max_page_count` at the current size makes the next
growth fail as on a full disk (SQLITE_FULL). Lifting them, the next write
commits, /readyz is 200 again and the statement is published: nothing lost.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiohttp
import pytest

from monitor import metrics
from monitor.state import classify_error
from tests.conftest import EventReader, counter, make_config, running, wait_until
from tests.sites.loopback import LoopbackSite
from tests.sites.stream import StatementStream

pytestmark = pytest.mark.integration


async def readyz(port: int) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/readyz") as response,
    ):
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("kind", "fail", "heal"),
    [
        ("read_only", "PRAGMA query_only=ON", "PRAGMA query_only=OFF"),
        ("disk_full", "PRAGMA max_page_count={pages}", "PRAGMA max_page_count=1073741823"),
    ],
)
async def test_a_failing_state_store_turns_readyz_to_503_and_is_counted(
        tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str,
        kind: str, fail: str, heal: str) -> None:
    stream = StatementStream(site)
    config = make_config(
        tmp_path, bootstrap=kafka_bootstrap, topic=topic,
        sources=[{"id": "ministry", "url": site.url("/feed.xml"), "backfill": True,
                  "interval": 0.3}],
    )
    reader = EventReader(kafka_bootstrap, topic)
    async with running(config) as service:
        stream.add()
        await reader.read(1, timeout=30)
        assert service.server is not None
        port = service.server.port  # bound by now
        await wait_until(lambda: service.store.outbox_stats()[0] == 0)
        status, _ = await readyz(port)
        assert status == 200

        errors_before = counter(metrics.STATE_ERRORS, kind=kind)
        db = service.store.db
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(fail.format(pages=pages))
        for _ in range(5):  # more than the free space left in the pages there are
            stream.add()
        await wait_until(lambda: counter(metrics.STATE_ERRORS, kind=kind) > errors_before,
                         timeout=20)
        status, body = await readyz(port)
        assert status == 503
        state = body["checks"]["state"]  # type: ignore[index]
        assert state["ok"] is False and kind in state["detail"]

        db.execute(heal)
        events = await reader.read(6, timeout=30, settle=0.5)
        await wait_until(lambda: service.store.healthy[0], timeout=20)
        status, _ = await readyz(port)
        assert status == 200
    assert sorted(e["data"]["guid"] for e in events) == sorted(stream.guids)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("database or disk is full", "disk_full"),
        ("attempt to write a readonly database", "read_only"),
        ("disk I/O error", "io"),
        ("database disk image is malformed", "corrupt"),
        ("file is not a database", "corrupt"),
        ("database is locked", "other"),
    ],
)
def test_state_errors_fall_into_bounded_kinds(message: str, kind: str) -> None:
    assert classify_error(sqlite3.OperationalError(message)) == kind


def test_a_corrupt_state_file_is_refused_and_counted(tmp_path: Path) -> None:
    """A file that is not a SQLite database: a clear error at start, counted as corrupt."""
    from monitor.errors import StateError
    from monitor.state import StateStore

    path = tmp_path / "monitor.db"
    path.write_bytes(b"this is not a database, it is a mangled volume " * 200)
    before = counter(metrics.STATE_ERRORS, kind="corrupt")
    store = StateStore(path)
    with pytest.raises(StateError, match="cannot open the state store"):
        store.open()
    assert counter(metrics.STATE_ERRORS, kind="corrupt") == before + 1
    assert store.healthy[0] is False

"""A stream of statements for delivery tests and benchmarks, and the books to check it.

`StatementStream` adds one statement at a time to a feed on a loopback site.
`delivery_report` compares what was sent with what consumers received:
delivered, missing, repeated under the same event id (allowed: at-least-once),
and repeated under a *new* id (never allowed).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite

REPO = Path(__file__).resolve().parents[2]
RSS = "application/rss+xml; charset=utf-8"


@dataclass
class StatementStream:
    """Publishes statements one by one on `site` at `path`."""

    site: LoopbackSite
    path: str = "/feed.xml"
    items: list[Item] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._publish()

    @property
    def guids(self) -> list[str]:
        return [item.guid for item in self.items if item.guid]

    def add(self) -> str:
        n = len(self.items) + 1
        url = self.site.put(
            f"/statement/{n}.html",
            page(f"Statement {n}", [f"Statement {n} of the ministry, announced today in full, "
                                    "with the details that the press office released."]),
        )
        self.items.insert(0, Item(f"Statement {n}", url, guid=f"stmt-{n}"))
        self._publish()
        return f"stmt-{n}"

    async def run(self, count: int, every: float) -> None:
        for _ in range(count):
            self.add()
            await asyncio.sleep(every)

    def _publish(self) -> None:
        self.site.put(self.path, rss(self.items), content_type=RSS)


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    delivered: int
    missing: tuple[str, ...]
    duplicates_same_id: int
    duplicates_new_id: int

    def line(self) -> str:
        return (f"sent={self.sent} delivered={self.delivered} missing={len(self.missing)} "
                f"duplicated_same_id={self.duplicates_same_id} "
                f"duplicated_new_id={self.duplicates_new_id}")


def delivery_report(sent_guids: Iterable[str], events: Iterable[dict[str, Any]]) -> DeliveryReport:
    """Books of one run: every sent guid once, repeats only under the same event id."""
    sent = list(sent_guids)
    ids_by_version: dict[tuple[str, int], set[str]] = defaultdict(set)
    statements_by_guid: dict[str, set[str]] = defaultdict(set)
    copies: Counter[str] = Counter()
    for event in events:
        data = event["data"]
        ids_by_version[(data["statement_id"], data["version"])].add(event["id"])
        statements_by_guid[data["guid"]].add(data["statement_id"])
        copies[event["id"]] += 1
    new_ids = sum(len(ids) - 1 for ids in ids_by_version.values())
    new_ids += sum(len(s) - 1 for s in statements_by_guid.values())
    return DeliveryReport(
        sent=len(sent),
        delivered=sum(1 for guid in sent if guid in statements_by_guid),
        missing=tuple(guid for guid in sent if guid not in statements_by_guid),
        duplicates_same_id=sum(n - 1 for n in copies.values()),
        duplicates_new_id=new_ids,
    )


class ServiceProcess:
    """`monitor run` as a real subprocess, to be stopped politely or killed."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR__")}
        env["PYTHONPATH"] = str(REPO)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(self.config_path)],
                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log,
            )

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def kill_if_running(self) -> None:
        """SIGKILL, if it runs still: the cleanup after a test that failed midway."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    async def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM; the exit code (raises TimeoutError if it takes longer than `timeout`)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.process.poll() is None:
            if loop.time() > deadline:
                self.process.kill()
                raise TimeoutError(f"monitor run did not exit within {timeout} s of SIGTERM")
            await asyncio.sleep(0.05)
        return self.process.returncode

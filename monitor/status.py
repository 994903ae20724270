"""Source health at a glance: what `GET /status`, `monitor status`, the page at `/`,
the periodic `sources: ...` log line and the `statement_monitor_sources` gauge show.

The service tells the board each poll's outcome (`polled`) and each event the
broker acknowledged (`acked`); the board keeps, per source, the last poll and
its outcome, the last success, the errors in a row, the next poll and the last
statement, plus the last `RECENT` statements of all sources. Statement totals
come from the state store. Everything is in memory and covers this run of the
service (a restart starts with every source "never reached" until its first
poll, and with no recent statements).

A source is in one of three states:

- `healthy`: its last poll succeeded (200 or 304);
- `failing`: its last poll failed, after a success earlier in this run;
- `never_reached`: no poll has succeeded in this run (not polled yet, or every
  poll failed: a wrong URL, no network).

`/readyz` does not depend on these: it says whether the service can work
(config, state store, broker), not whether the sites it watches answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor import metrics
from monitor.models import Source
from monitor.state import OutboxRecord

__all__ = [
    "RECENT", "STATES", "SourceHealth", "StatusBoard", "report_periodically", "summary_line",
]

STATES = ("healthy", "failing", "never_reached")
RECENT = 20  # statements the page lists
_SUMMARY_NAMES = 10  # failing sources named in the log line; the rest counted


@dataclass(slots=True)
class SourceHealth:
    """What this run knows of one source."""

    source_id: str
    name: str
    kind: str
    interval: float
    last_poll: float | None = None  # Unix seconds
    last_outcome: str | None = None  # "200", "304" or an error kind (the polls metric's label)
    last_success: float | None = None
    consecutive_errors: int = 0
    next_poll: float | None = None  # None until the first poll placed it
    last_statement_time: float | None = None
    last_statement_title: str | None = None

    @property
    def state(self) -> str:
        if self.last_success is None:
            return "never_reached"
        return "healthy" if self.consecutive_errors == 0 else "failing"


@dataclass(frozen=True, slots=True)
class _Recent:
    event_id: str
    time: float
    title: str | None
    source_id: str
    type: str
    url: str | None
    quotes: int


class StatusBoard:
    """Per-source health and the latest statements, for the status views."""

    def __init__(
        self,
        sources: Iterable[Source],
        *,
        counts: Callable[[], dict[str, int]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._counts = counts
        self._sources: dict[str, SourceHealth] = {}
        self._recent: deque[_Recent] = deque(maxlen=RECENT)
        self._seen: set[str] = set()  # event ids among `_recent` (an alert-topic copy is one)
        self.first_round = asyncio.Event()  # set once every source was polled once
        self._unpolled: set[str] = set()  # sources not polled yet: the first round's rest
        self.track(sources)

    # -- what the service tells it -------------------------------------------------

    def track(self, sources: Iterable[Source]) -> None:
        """Sources this instance polls (all of them, or the shards it was assigned)."""
        for source in sources:
            if source.id not in self._sources:
                self._sources[source.id] = SourceHealth(
                    source_id=source.id, name=source.name, kind=source.kind,
                    interval=source.interval,
                )
                self._unpolled.add(source.id)
        self.publish_gauge()

    def forget(self, source_ids: Iterable[str]) -> None:
        """Sources another instance now polls."""
        for source_id in source_ids:
            self._sources.pop(source_id, None)
            self._unpolled.discard(source_id)
        self.publish_gauge()

    def polled(self, source_id: str, *, outcome: str, ok: bool, errors: int,
               next_in: float | None) -> None:
        """One poll ended: `errors` failed polls in a row now, next poll in `next_in` s."""
        health = self._sources.get(source_id)
        if health is None:
            return
        now = self._clock()
        was = health.state
        health.last_poll, health.last_outcome = now, outcome
        health.consecutive_errors = 0 if ok else max(errors, 1)
        if ok:
            health.last_success = now
        health.next_poll = None if next_in is None else now + next_in
        # Every poll passes here: with 10,000 sources, a count over all of them per
        # poll made the 304 path quadratic (bench/unchanged_feeds.py fell from
        # 1,100 to 44 304s a second). The gauge moves by one, and the first round
        # is the set of sources not polled yet.
        if health.state != was:
            metrics.SOURCES.labels(state=was).dec()
            metrics.SOURCES.labels(state=health.state).inc()
        self._unpolled.discard(source_id)
        if not self._unpolled:
            self.first_round.set()

    def acked(self, records: Sequence[OutboxRecord]) -> None:
        """Events the broker acknowledged: each source's last statement, the recent list."""
        for record in records:
            if record.event_id in self._seen:
                continue  # the same event on a watchlist's topic
            try:
                event = json.loads(record.value)
                data = event.get("data") or {}
            except (ValueError, AttributeError):
                continue  # not ours to judge here; the relay sent it as it was
            title = data.get("title") if isinstance(data.get("title"), str) else None
            recent = _Recent(
                event_id=record.event_id, time=self._clock(), title=title,
                source_id=record.source_id, type=str(event.get("type", "")).rsplit(".", 1)[-1],
                url=data.get("url") if isinstance(data.get("url"), str) else None,
                quotes=len(data.get("quotes") or ()),
            )
            if len(self._recent) == self._recent.maxlen:
                self._seen.discard(self._recent[0].event_id)
            self._recent.append(recent)
            self._seen.add(record.event_id)
            health = self._sources.get(record.source_id)
            if health is not None:
                health.last_statement_time, health.last_statement_title = recent.time, title

    # -- what it shows ------------------------------------------------------------

    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(STATES, 0)
        for health in self._sources.values():
            totals[health.state] += 1
        return totals

    def publish_gauge(self) -> None:
        for state, count in self.totals().items():
            metrics.SOURCES.labels(state=state).set(count)

    def snapshot(self) -> dict[str, Any]:
        """The JSON of `GET /status`: sources failing first, then by id."""
        counts = self._counts() if self._counts is not None else {}
        sources = sorted(self._sources.values(), key=_failing_first)
        return {
            "time": _iso(self._clock()),
            "totals": {**self.totals(), "sources": len(self._sources)},
            "sources": [_source_json(h, counts.get(h.source_id, 0)) for h in sources],
            "recent_statements": [_recent_json(r) for r in reversed(self._recent)],
        }

    def summary(self) -> str:
        return summary_line(self._sources.values())

    def all_polled(self) -> bool:
        return not self._unpolled


def _failing_first(health: SourceHealth) -> tuple[int, str]:
    order = {"failing": 0, "never_reached": 1, "healthy": 2}
    return order[health.state], health.source_id


def summary_line(sources: Iterable[SourceHealth]) -> str:
    """`sources: 12 healthy, 2 failing (ecb-press: dns, un-news: http_503)`, and the
    sources never reached (with their last error, or `not polled yet`) when there are any."""
    by_state: dict[str, list[SourceHealth]] = {state: [] for state in STATES}
    for health in sorted(sources, key=lambda h: h.source_id):
        by_state[health.state].append(health)
    line = f"sources: {len(by_state['healthy'])} healthy, {len(by_state['failing'])} failing"
    line += _named(by_state["failing"])
    if by_state["never_reached"]:
        line += f", {len(by_state['never_reached'])} never reached"
        line += _named(by_state["never_reached"])
    return line


def _named(sources: list[SourceHealth]) -> str:
    if not sources:
        return ""
    names = [f"{h.source_id}: {h.last_outcome or 'not polled yet'}"
             for h in sources[:_SUMMARY_NAMES]]
    if len(sources) > _SUMMARY_NAMES:
        names.append(f"{len(sources) - _SUMMARY_NAMES} more")
    return " (" + ", ".join(names) + ")"


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _source_json(health: SourceHealth, statements: int) -> dict[str, Any]:
    last = None
    if health.last_statement_time is not None:
        last = {"time": _iso(health.last_statement_time), "title": health.last_statement_title}
    return {
        "id": health.source_id,
        "name": health.name,
        "kind": health.kind,
        "state": health.state,
        "interval_seconds": health.interval,
        "last_poll": _iso(health.last_poll),
        "last_outcome": health.last_outcome,
        "last_success": _iso(health.last_success),
        "consecutive_errors": health.consecutive_errors,
        "next_poll": _iso(health.next_poll),
        "statements_total": statements,
        "last_statement": last,
    }


def _recent_json(recent: _Recent) -> dict[str, Any]:
    return {
        "time": _iso(recent.time),
        "title": recent.title,
        "source_id": recent.source_id,
        "type": recent.type,
        "url": recent.url,
        "quotes": recent.quotes,
    }


async def report_periodically(
    board: StatusBoard, interval: float, emit: Callable[[StatusBoard], None],
    *, first_within: float = 60.0,
) -> None:
    """Emit the summary once every source has been polled (at most `first_within` s
    after start: the first round of polls), then every `interval` s, until cancelled."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(min(first_within, interval)):
            await board.first_round.wait()
    while True:
        emit(board)
        await asyncio.sleep(interval)

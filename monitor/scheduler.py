"""The scheduler: one heap of due times for every source.

Ten thousand sources are ten thousand heap entries, not ten thousand sleeping
tasks. One coroutine (`due()`) sleeps until the earliest entry is due and
yields it. As Miniflux does, the next check is set *before* the poll runs, so
a poll that crashes or hangs still moves the schedule; a source whose previous
poll is still running is not polled twice at once.

After each poll the pipeline reports the outcome (`done`), and the scheduler
places the next check: the interval with jitter on success, an exponential
backoff (capped) after errors, and never sooner than a Retry-After allows.

A source with an adaptive interval (`interval: {min, max}`) has its interval
recomputed at every successful poll from the publication times the pipeline
reports (adaptive.py); a fixed interval stays fixed. A cache lifetime
(max-age, Expires, RSS <ttl>) comes in as `min_interval`, a floor on the
next delay only.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass

from monitor import metrics
from monitor.adaptive import adapted_interval, publication_rate
from monitor.models import Source

__all__ = ["Scheduler"]


@dataclass(slots=True)
class _Entry:
    source: Source
    due: float
    errors: int = 0
    running: bool = False
    failing_since: float = 0.0  # wall-clock time of the first failure in a row
    interval: float = 0.0  # the current interval: the source's, or the adapted one
    # Adaptive sources: (median gap, newest publication), once a parsed feed was seen.
    rate: tuple[float, float] | None = None
    observed: bool = False
    unhealthy_shown: bool = True  # the health gauges may show trouble: reset them when it ends


class Scheduler:
    """Yields sources as they fall due, on one timer."""

    def __init__(
        self,
        sources: Iterable[Source],
        *,
        jitter: float = 0.1,
        max_backoff: float = 3600.0,
        initial_spread: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock  # publication dates are wall-clock times
        self._rng = rng or random.Random()
        self._jitter = jitter
        self._max_backoff = max_backoff
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, str]] = []
        self._changed = asyncio.Event()
        self._initial_spread = initial_spread
        self.add(sources)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, sources: Iterable[Source]) -> None:
        """Schedule these sources, first polls soon (at start, or when coordination
        assigns their shards to this instance). A source already scheduled stays as is."""
        now = self._clock()
        for source in sources:
            if source.id in self._entries:
                continue
            # Spread the first polls a little, so start-up is not one thundering herd.
            first = now + self._rng.uniform(0, min(self._initial_spread, source.interval))
            self._entries[source.id] = _Entry(source, first, interval=source.interval)
            metrics.SOURCE_EFFECTIVE_INTERVAL.labels(source_id=source.id).set(source.interval)
            heapq.heappush(self._heap, (first, source.id))
        self._changed.set()

    def remove(self, source_ids: Iterable[str]) -> None:
        """Stop scheduling these sources (their shards went to another instance). Their
        heap items stay, and are skipped when they come up."""
        for source_id in source_ids:
            self._entries.pop(source_id, None)

    async def due(self) -> AsyncIterator[tuple[Source, float]]:
        """Yield `(source, lateness_seconds)` forever, as each source falls due."""
        while True:
            entry = self._pop_due()
            if entry is None:
                await self._sleep_until_next()
                continue
            lateness = max(self._clock() - entry.due, 0.0)
            # Set the next check before polling: a crash or a hang still moves it.
            entry.running = True
            self._push(entry, self._clock() + self._next_delay(entry, None))
            yield entry.source, lateness

    def done(
        self,
        source_id: str,
        *,
        ok: bool,
        retry_after: float | None = None,
        min_interval: float | None = None,
        published: Sequence[float] | None = None,
    ) -> float:
        """Record a poll's outcome, place the source's next check, return its delay.

        `published` holds the publication times (Unix seconds) of the entries of
        a feed this poll parsed, None when it parsed none (a 304, an error); only
        adaptive sources use them.
        """
        entry = self._entries.get(source_id)
        if entry is None:
            return 0.0
        entry.running = False
        if ok:
            entry.errors, entry.failing_since = 0, 0.0
            if entry.source.adaptive:
                self._adapt(entry, published)
        else:
            entry.errors += 1
            entry.failing_since = entry.failing_since or time.time()
        delay = self._next_delay(entry, retry_after)
        if min_interval is not None:
            delay = max(delay, min_interval)
        self._push(entry, self._clock() + delay)
        self._report_health(entry, delay, backing_off=not ok or retry_after is not None)
        return delay

    def _adapt(self, entry: _Entry, published: Sequence[float] | None) -> None:
        """Recompute an adaptive source's interval: at every success, 304s included."""
        source = entry.source
        assert source.interval_min is not None and source.interval_max is not None
        now = self._wall_clock()
        if published is not None:
            entry.rate = publication_rate(published, now=now)
            entry.observed = True
        if not entry.observed:
            return  # no feed parsed yet: stay at the starting interval
        interval = adapted_interval(
            entry.rate, now=now, minimum=source.interval_min, maximum=source.interval_max
        )
        if interval != entry.interval:
            entry.interval = interval
            metrics.SOURCE_EFFECTIVE_INTERVAL.labels(source_id=source.id).set(interval)

    def interval(self, source_id: str) -> float:
        """The current interval of a source (adapted, for an adaptive one), before jitter."""
        entry = self._entries.get(source_id)
        return entry.interval if entry else 0.0

    @staticmethod
    def _report_health(entry: _Entry, delay: float, *, backing_off: bool) -> None:
        extra = max(delay - entry.interval, 0.0) if backing_off else 0.0
        trouble = entry.errors > 0 or extra > 0
        if not trouble and not entry.unhealthy_shown:
            return  # the hot path: a healthy source whose gauges already read 0
        source_id = entry.source.id
        metrics.SOURCE_CONSECUTIVE_ERRORS.labels(source_id=source_id).set(entry.errors)
        metrics.SOURCE_FAILING_SINCE.labels(source_id=source_id).set(entry.failing_since)
        metrics.SOURCE_BACKOFF.labels(source_id=source_id).set(extra)
        entry.unhealthy_shown = trouble

    def errors(self, source_id: str) -> int:
        entry = self._entries.get(source_id)
        return entry.errors if entry else 0

    def _next_delay(self, entry: _Entry, retry_after: float | None) -> float:
        interval = entry.interval
        if entry.errors:
            interval = min(
                interval * (2 ** min(entry.errors, 16)), max(self._max_backoff, interval)
            )
        delay = interval * self._rng.uniform(1 - self._jitter, 1 + self._jitter)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def _push(self, entry: _Entry, due: float) -> None:
        entry.due = due
        heapq.heappush(self._heap, (due, entry.source.id))
        self._changed.set()

    def _pop_due(self) -> _Entry | None:
        now = self._clock()
        while self._heap and self._heap[0][0] <= now:
            due, source_id = heapq.heappop(self._heap)
            entry = self._entries.get(source_id)
            # Stale heap items (rescheduled since) are skipped, not searched for and removed.
            if entry is None or entry.due != due:
                continue
            if entry.running:
                # Still polling from last time: check again one interval later.
                self._push(entry, now + entry.interval)
                continue
            return entry
        return None

    async def _sleep_until_next(self) -> None:
        self._changed.clear()
        timeout = None
        if self._heap:
            timeout = max(self._heap[0][0] - self._clock(), 0.0)
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
        # cancellation that lands as the event is set, and then shutdown hangs.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()

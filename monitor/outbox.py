"""The outbox relay: drains durably recorded events to the sink, in order.

Events enter the outbox (a table of the state store) in the same transaction
as their statement record. This relay sends them in the order they were
recorded and deletes each row only after the broker acknowledged it, so:

- a crash or `kill -9` at any moment loses nothing: the rows are still there
  and are sent again, with the same event id;
- a broker outage of any length only makes the relay wait, while polling and
  extraction go on filling the outbox up to `state.outbox_max_events`;
- per statement key, versions are sent in order: when a record fails, later
  records with the same key stay in the outbox even if the broker took them,
  and are sent again after it (a repeat with the same id, never a reordering);
- a record the broker refuses for good (too large, invalid, not authorized)
  never blocks the rows behind it: the records left of that batch are sent
  again one at a time, so the refused one is told apart from the neighbours
  the broker refused with it, and it alone goes to the dead-letter topic
  `<topic>.dlq` (counted in `events_dead_lettered_total{reason}`). If even the
  dead-letter record is refused for good, the row is logged, counted in
  `events_dropped_total{reason}` and dropped. Either way the broker stays "up":
  `broker_up` and `/readyz` speak of the broker, not of one record.

The relay waits on an event rather than sleeping in a loop: `notify()` wakes
it when a row is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence

import structlog

from monitor import metrics
from monitor.errors import BrokerRefusedError, RecordRejectedError, SinkError
from monitor.sinks.base import Sink
from monitor.state import OutboxRecord, StateStore

__all__ = ["OutboxRelay", "acked_prefix"]

log = structlog.get_logger(__name__)

STALLED_AFTER = 3.0  # seconds without an acknowledgement before the broker counts as down


def acked_prefix(
    records: Sequence[OutboxRecord], outcomes: Sequence[BaseException | None]
) -> list[OutboxRecord]:
    """The records that may leave the outbox.

    Those acknowledged, except any behind a failed record of the same key.
    """
    blocked_keys: set[bytes] = set()
    done: list[OutboxRecord] = []
    for record, outcome in zip(records, outcomes, strict=True):
        if outcome is not None or record.key in blocked_keys:
            blocked_keys.add(record.key)
        else:
            done.append(record)
    return done


class OutboxRelay:
    """One task that moves outbox rows to the sink."""

    def __init__(
        self,
        store: StateStore,
        sink: Sink,
        *,
        max_pending: int,
        batch_size: int = 500,
        min_backoff: float = 0.2,
        max_backoff: float = 30.0,
        idle_probe: float = 15.0,
    ) -> None:
        self._store = store
        self._sink = sink
        self._max_pending = max_pending
        self._batch_size = batch_size
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._idle_probe = idle_probe
        self._wake = asyncio.Event()
        self._has_room = asyncio.Event()
        self._stopped = asyncio.Event()
        self._pending, _ = store.outbox_stats()
        self.broker_ok = False
        self._send_started: float | None = None  # monotonic time of the publish in flight
        metrics.BROKER_UP.set_function(lambda: 1.0 if self.broker_state()[0] else 0.0)
        self.last_error: str | None = None
        # Told of each acknowledged batch (the status board's recent statements).
        self.on_acked: Callable[[Sequence[OutboxRecord]], None] | None = None
        self._pending_changed()

    # -- producers of rows ---------------------------------------------

    def notify(self) -> None:
        """A row was written: wake the relay."""
        self._pending += 1
        self._pending_changed()
        self._wake.set()

    async def wait_for_room(self) -> None:
        """Backpressure: wait while the outbox holds `max_pending` events or more."""
        if self._has_room.is_set():
            return
        log.warning("outbox_full", pending=self._pending, max_pending=self._max_pending)
        await self._has_room.wait()

    def _pending_changed(self) -> None:
        metrics.OUTBOX_PENDING.set(self._pending)
        if self._pending < self._max_pending or self._stopping:
            self._has_room.set()
        else:
            self._has_room.clear()

    @property
    def pending(self) -> int:
        return self._pending

    # -- the relay loop ------------------------------------------------

    async def run(self) -> None:
        """Relay until `stop()`; never raises for broker trouble.

        Waits use `asyncio.timeout`, not `wait_for`, which on Python 3.11 can
        swallow a cancellation that arrives as the awaited event is set.
        """
        backoff = self._min_backoff
        self._mark_broker_from_probe(await self._probe())  # so /readyz knows at once
        self._wake.set()  # rows left by an earlier run go out first
        while not self._stopping:
            woken = await self._wait_for_work()
            if not woken:
                # Idle: still check the broker, so /readyz tells the truth.
                self._mark_broker_from_probe(await self._probe())
                continue
            while not self._stopping:
                sent = await self._relay_batch()
                if sent is None:  # the broker is in trouble: wait, then try again
                    await self._sleep(backoff * random.uniform(0.8, 1.2))
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                backoff = self._min_backoff
                if sent == 0:
                    break

    async def _wait_for_work(self) -> bool:
        """Wait for a row or a stop; False after `idle_probe` seconds of neither."""
        try:
            async with asyncio.timeout(self._idle_probe):
                await self._wake.wait()
        except TimeoutError:
            return False
        self._wake.clear()
        return True

    async def _probe(self) -> BaseException | None:
        try:
            await self._sink.check()
        except SinkError as exc:
            return exc
        return None

    def _mark_broker_from_probe(self, error: BaseException | None) -> None:
        if error is None:
            self._mark_broker(ok=True)
        elif self.broker_ok or str(error) != self.last_error:
            log.error("broker_unavailable", error=str(error), pending=self._pending)
            self.last_error = str(error)
            self._mark_broker(ok=False)

    async def drain(self, timeout: float) -> bool:
        """At shutdown: send what is pending within `timeout`. True if nothing is left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            remaining = deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(remaining, 0.01)):
                    sent = await self._relay_batch()
            except TimeoutError:
                break
            if sent == 0:
                return True
            if sent is None:
                await asyncio.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
        return self._store.outbox_stats()[0] == 0

    @property
    def _stopping(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        self._stopped.set()
        self._has_room.set()  # release writers waiting for room: shutdown is under way
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        """Back off for `seconds`, or less if the relay is stopped."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopped.wait()

    async def _relay_batch(self) -> int | None:
        """Send one batch. The number acknowledged, or None when the broker failed."""
        records = self._store.outbox_batch(self._batch_size)
        self._update_age(records)
        if not records:
            return 0
        metrics.INFLIGHT.labels(stage="publish").set(len(records))
        self._send_started = time.monotonic()
        dead: set[int] = set()
        try:
            outcomes = await self._send(records)
            if any(isinstance(o, RecordRejectedError) for o in outcomes):
                outcomes = await self._one_at_a_time(records, outcomes, dead)
        except SinkError as exc:
            outcomes = [exc] * len(records)
        finally:
            self._send_started = None
            metrics.INFLIGHT.labels(stage="publish").set(0)
        done = acked_prefix(records, outcomes)
        if done:
            self._store.outbox_acked(done)
            self._record_acks([r for r in done if r.seq not in dead], removed=len(done))
        failures = [o for o in outcomes if o is not None]
        if failures:
            self._record_failure(failures[0], len(failures))
            return None
        self._mark_broker(ok=True)
        return len(done)

    async def _send(self, records: Sequence[OutboxRecord]) -> list[BaseException | None]:
        """Send a batch; say so once if the broker takes too long to acknowledge it."""
        sending = asyncio.ensure_future(self._sink.send(records))
        done, _ = await asyncio.wait({sending}, timeout=STALLED_AFTER)
        if not done:
            log.warning(
                "publish_stalled", seconds=STALLED_AFTER, batch=len(records), pending=self._pending
            )
            self.broker_ok = False  # so the acknowledgement, when it comes, is logged
        return await sending

    async def _one_at_a_time(
        self,
        records: Sequence[OutboxRecord],
        outcomes: Sequence[BaseException | None],
        dead: set[int],
    ) -> list[BaseException | None]:
        """After a permanent refusal: the records left of the batch, alone and in order.

        A broker refuses a whole produce batch for one bad record, so the refused
        record is only known by sending alone. Each one refused alone is
        dead-lettered (its seq added to `dead`) and counts as done. A transient
        failure stops the pass; the records not sent yet stay for the next round.
        """
        settled = {r.seq for r in acked_prefix(records, outcomes)}
        result: list[BaseException | None] = [None] * len(records)
        for index, record in enumerate(records):
            if record.seq in settled:
                continue
            self._send_started = time.monotonic()  # a stall is per send, not per pass
            try:
                (outcome,) = await self._sink.send([record])
            except SinkError as exc:  # what this pass settled stays settled
                outcome = exc
            if isinstance(outcome, RecordRejectedError):
                outcome = await self._dead_letter(record, outcome)
                if outcome is None:
                    dead.add(record.seq)
            if outcome is not None:
                for later in range(index, len(records)):
                    if records[later].seq not in settled:
                        result[later] = outcome
                break
        return result

    async def _dead_letter(
        self, record: OutboxRecord, error: RecordRejectedError
    ) -> BaseException | None:
        """Send `record` to its dead-letter topic; None once it is gone from the stream."""
        context = {
            "statement_id": record.statement_id,
            "event_id": record.event_id,
            "source_id": record.source_id,
            "topic": record.topic,
            "reason": error.reason,
            "bytes": len(record.value),
        }
        try:
            await self._sink.dead_letter(record, error)
        except RecordRejectedError as refused:
            metrics.EVENTS_DROPPED.labels(reason=error.reason).inc()
            log.error("event_dropped", **context, error=str(error), dead_letter_error=str(refused))
            return None
        except SinkError as exc:
            return exc  # the broker is in trouble: the row stays, and is retried
        metrics.EVENTS_DEAD_LETTERED.labels(reason=error.reason).inc()
        log.error("event_dead_lettered", **context, error=str(error))
        return None

    def _record_acks(self, published: Sequence[OutboxRecord], *, removed: int) -> None:
        for record in published:
            metrics.EVENTS_PUBLISHED.labels(source_id=record.source_id).inc()
        if published:
            metrics.LAST_STATEMENT.set(time.time())
        if published and self.on_acked is not None:
            try:
                self.on_acked(published)
            except Exception:  # a display must never stop delivery
                log.exception("on_acked_failed")
        self._pending = max(self._pending - removed, 0)
        self._pending_changed()

    def _record_failure(self, error: BaseException, count: int) -> None:
        reason = "refused" if isinstance(error, BrokerRefusedError) else "unavailable"
        metrics.PUBLISH_FAILURES.labels(reason=reason).inc(count)
        message = str(error)
        if self.broker_ok or message != self.last_error:
            # Log the change of state, not every retry of a long outage.
            log.error("publish_failed", reason=reason, error=message, pending=self._pending)
        self.last_error = message
        self._mark_broker(ok=False)

    def _mark_broker(self, *, ok: bool) -> None:
        if ok and not self.broker_ok:
            log.info("broker_available", pending=self._pending)
            self.last_error = None
        self.broker_ok = ok

    def broker_state(self) -> tuple[bool, str]:
        """Whether the broker is taking events now, and why not.

        A producer retries a batch quietly until its request timeout, so a
        publish that has waited `STALLED_AFTER` seconds already means trouble.
        """
        if self._send_started is not None:
            waiting = time.monotonic() - self._send_started
            if waiting > STALLED_AFTER:
                return False, f"no acknowledgement for {waiting:.0f} s: is the broker reachable?"
        if self.broker_ok:
            return True, "acknowledging"
        return False, self.last_error or "no contact with the broker yet"

    def _update_age(self, records: Sequence[OutboxRecord]) -> None:
        oldest = records[0].created_at if records else None
        metrics.OUTBOX_OLDEST_AGE.set(max(time.time() - oldest, 0.0) if oldest else 0.0)

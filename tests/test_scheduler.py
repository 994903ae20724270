"""The scheduler: one heap, due times set before polling, backoff and Retry-After."""

from __future__ import annotations

import asyncio
import random

from monitor.models import Source
from monitor.scheduler import Scheduler


def source(source_id: str, interval: float) -> Source:
    return Source(id=source_id, name=source_id, url=f"http://127.0.0.1/{source_id}",
                  interval=interval, timeout=1, backfill=False, topic="t")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def take(scheduler: Scheduler, count: int) -> list[str]:
    seen: list[str] = []
    async for due_source, _ in scheduler.due():
        seen.append(due_source.id)
        if len(seen) == count:
            break
    return seen


async def test_sources_fall_due_in_order_of_their_intervals() -> None:
    clock = Clock()
    scheduler = Scheduler([source("fast", 10), source("slow", 100)], jitter=0, initial_spread=0,
                          clock=clock, rng=random.Random(1))
    assert sorted(await take(scheduler, 2)) == ["fast", "slow"]
    scheduler.done("fast", ok=True)
    scheduler.done("slow", ok=True)
    clock.now += 10
    assert await take(scheduler, 1) == ["fast"]


async def test_a_running_poll_is_not_started_twice() -> None:
    clock = Clock()
    scheduler = Scheduler([source("a", 1)], jitter=0, initial_spread=0, clock=clock)
    assert await take(scheduler, 1) == ["a"]
    clock.now += 5  # due again, but the first poll never reported back
    waiting = asyncio.ensure_future(take(scheduler, 1))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    scheduler.done("a", ok=True)
    clock.now += 1
    scheduler._changed.set()
    assert await asyncio.wait_for(waiting, 1) == ["a"]


def test_backoff_grows_and_resets_and_retry_after_is_a_floor() -> None:
    clock = Clock()
    scheduler = Scheduler([source("a", 10)], jitter=0, initial_spread=0, clock=clock, max_backoff=60)
    delays = []
    for _ in range(4):
        scheduler.done("a", ok=False)
        delays.append(scheduler._entries["a"].due - clock.now)
    assert delays == [20, 40, 60, 60]
    scheduler.done("a", ok=True)
    assert scheduler._entries["a"].due - clock.now == 10
    scheduler.done("a", ok=True, retry_after=120)
    assert scheduler._entries["a"].due - clock.now == 120


async def test_ten_thousand_sources_cost_one_task() -> None:
    scheduler = Scheduler([source(f"s{i}", 60) for i in range(10_000)], initial_spread=0.01)
    before = len(asyncio.all_tasks())
    seen = await asyncio.wait_for(take(scheduler, 10_000), 5)
    assert len(set(seen)) == 10_000
    assert len(asyncio.all_tasks()) == before


def test_source_health_is_visible_in_metrics() -> None:
    from monitor import metrics

    clock = Clock()
    scheduler = Scheduler([source("sick", 10)], jitter=0, initial_spread=0, clock=clock)

    def gauge(metric: object) -> float:
        return float(metric.value(source_id="sick"))  # type: ignore[attr-defined]

    scheduler.done("sick", ok=False)
    scheduler.done("sick", ok=False)
    assert gauge(metrics.SOURCE_CONSECUTIVE_ERRORS) == 2
    assert gauge(metrics.SOURCE_FAILING_SINCE) > 0
    assert gauge(metrics.SOURCE_BACKOFF) == 30  # 40 s delay for a 10 s interval
    scheduler.done("sick", ok=True)
    assert gauge(metrics.SOURCE_CONSECUTIVE_ERRORS) == 0
    assert gauge(metrics.SOURCE_FAILING_SINCE) == 0
    assert gauge(metrics.SOURCE_BACKOFF) == 0

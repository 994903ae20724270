"""Adaptive intervals: the pure rule, and the scheduler applying it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from monitor import metrics
from monitor.adaptive import adapted_interval, publication_rate
from monitor.config import Config, load_config
from monitor.errors import ConfigError
from monitor.models import Source
from monitor.scheduler import Scheduler

NOW = 1_700_000_000.0
MIN, MAX = 60.0, 3600.0


def every(gap: float, count: int, *, last: float = NOW) -> list[float]:
    return [last - i * gap for i in range(count)]


def test_half_the_median_gap() -> None:
    rate = publication_rate(every(600, 10), now=NOW)
    assert rate == (600, NOW)
    assert adapted_interval(rate, now=NOW, minimum=MIN, maximum=MAX) == 300


def test_the_median_ignores_one_odd_gap() -> None:
    times = [*every(600, 6), NOW - 86400]  # a week-end gap among ten-minute ones
    rate = publication_rate(times, now=NOW)
    assert rate is not None and rate[0] == 600


def test_clamped_to_min_and_max() -> None:
    fast = publication_rate(every(10, 10), now=NOW)
    slow = publication_rate(every(86400, 10), now=NOW)
    assert adapted_interval(fast, now=NOW, minimum=MIN, maximum=MAX) == MIN
    assert adapted_interval(slow, now=NOW, minimum=MIN, maximum=MAX) == MAX


def test_silence_slows_a_source_down() -> None:
    rate = publication_rate(every(600, 10), now=NOW)
    assert adapted_interval(rate, now=NOW + 1200, minimum=MIN, maximum=MAX) == 600
    assert adapted_interval(rate, now=NOW + 100_000, minimum=MIN, maximum=MAX) == MAX


def test_too_few_dates_means_max_and_future_dates_are_ignored() -> None:
    assert publication_rate([], now=NOW) is None
    assert publication_rate([NOW - 5], now=NOW) is None
    assert publication_rate([NOW - 5, NOW - 5], now=NOW) is None  # duplicates
    assert publication_rate([NOW - 5, NOW + 86400 * 365], now=NOW) is None
    assert adapted_interval(None, now=NOW, minimum=MIN, maximum=MAX) == MAX


def test_only_the_recent_entries_count() -> None:
    times = [*every(60, 10), *every(86400, 50, last=NOW - 600)]
    rate = publication_rate(times, now=NOW)
    assert rate is not None and rate[0] == 60


# --- in the scheduler ------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def adaptive_source(source_id: str = "a") -> Source:
    return Source(id=source_id, name=source_id, url="http://127.0.0.1/f", interval=464.0,
                  interval_min=MIN, interval_max=MAX, timeout=1, backfill=False, topic="t")  # fmt: skip


def delay(scheduler: Scheduler, clock: Clock, source_id: str = "a") -> float:
    return scheduler._entries[source_id].due - clock.now


def test_the_scheduler_adapts_and_keeps_adapting_on_304s() -> None:
    clock, wall = Clock(1000.0), Clock(NOW)
    scheduler = Scheduler([adaptive_source()], jitter=0, initial_spread=0, clock=clock,
                          wall_clock=wall, rng=random.Random(1))  # fmt: skip
    scheduler.done("a", ok=True)  # a 304 before any parse: the starting interval
    assert delay(scheduler, clock) == 464
    scheduler.done("a", ok=True, published=every(600, 10))
    assert delay(scheduler, clock) == 300
    assert metrics.SOURCE_EFFECTIVE_INTERVAL.value(source_id="a") == 300
    wall.now += 3000  # quiet for 50 minutes, polled with 304s
    scheduler.done("a", ok=True)
    assert delay(scheduler, clock) == 1500
    scheduler.done("a", ok=False)  # errors back off from the adapted interval
    assert delay(scheduler, clock) == 3000
    scheduler.done("a", ok=True, published=[*every(120, 10, last=wall.now)])
    assert delay(scheduler, clock) == MIN


def test_a_cache_floor_and_retry_after_still_bind_an_adaptive_source() -> None:
    clock, wall = Clock(1000.0), Clock(NOW)
    scheduler = Scheduler([adaptive_source()], jitter=0, initial_spread=0, clock=clock,
                          wall_clock=wall)  # fmt: skip
    scheduler.done("a", ok=True, published=every(60, 10), min_interval=900)
    assert delay(scheduler, clock) == 900
    scheduler.done("a", ok=True, retry_after=1200)
    assert delay(scheduler, clock) == 1200


def test_a_fixed_interval_stays_fixed() -> None:
    clock = Clock(1000.0)
    fixed = Source(id="f", name="f", url="http://127.0.0.1/f", interval=300, timeout=1,
                   backfill=False, topic="t")  # fmt: skip
    scheduler = Scheduler([fixed], jitter=0, initial_spread=0, clock=clock)
    scheduler.done("f", ok=True, published=every(10, 10))
    assert delay(scheduler, clock, "f") == 300


def test_config_min_max_reaches_the_source() -> None:
    config = Config.model_validate(
        {
            "sources": [
                {"id": "a", "url": "http://x/", "interval": {"min": "1m", "max": "1h"}},
                {"id": "b", "url": "http://x/", "interval": "5m"},
                {"id": "c", "url": "http://x/"},
            ]
        }
    )
    a, b, c = config.resolved_sources()
    assert (a.adaptive, a.interval_min, a.interval_max) == (True, 60, 3600)
    assert 60 < a.interval < 3600  # starts at the geometric mean
    assert (b.adaptive, b.interval, c.adaptive, c.interval) == (False, 300, False, 300)


def test_config_errors_name_the_path(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "sources:\n"
        "  - {id: a, url: 'http://x/'}\n"
        "  - {id: b, url: 'http://x/', interval: {min: 0, max: 1h}}\n"
        "  - {id: c, url: 'http://x/', interval: {min: 2h, max: 1h}}\n"
        "  - {id: d, url: 'http://x/', interval: {min: 1m, mx: 1h}}\n"
        "  - {id: e, url: 'http://x/', robots: false}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    problems = raised.value.problems
    assert "sources[1].interval.min: must be a positive duration" in problems
    assert "sources[2].interval: min must not be greater than max" in problems
    assert any(p.startswith("sources[3].interval.mx: unknown key") for p in problems)
    assert any(p.startswith("sources[4]: robots_reason: is required") for p in problems)

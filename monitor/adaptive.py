"""Adaptive poll intervals: poll a source about as often as it publishes. Pure functions.

A source configured with `interval: {min: 1m, max: 1h}` is polled at

    clamp(max(median gap, silence) / 2, min, max)

where *median gap* is the median time between consecutive publication dates
among the source's `RECENT` newest dated entries, and *silence* is the time
since the newest of them. Half the typical gap means a new statement waits on
average a quarter of a gap (Nyquist's rule of thumb, as feed readers use).
The silence term slows a source down as it goes quiet (a ministry that
publishes every ten minutes by day is polled every few minutes by day, and
less and less at night), and it is recomputed at every poll, 304s included,
from two numbers kept per source, so no poll allocates for it.

Without two dated entries there is no rate to observe: the interval is `max`,
the longest wait the user accepted. Dates in the future (bad clocks, bad
feeds) are ignored. A fixed interval (`interval: 5m`) never adapts.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from typing import Final

__all__ = ["RECENT", "adapted_interval", "publication_rate"]

RECENT: Final = 10  # newest dated entries that define a source's rhythm


def publication_rate(
    published: Iterable[float], *, now: float, recent: int = RECENT
) -> tuple[float, float] | None:
    """`(median_gap, newest)` from publication times (Unix seconds); None below two dates.

    Times after `now` are dropped, as are duplicates (one entry listed twice,
    or a batch published at the same second, says nothing about the rhythm).
    """
    times = sorted({t for t in published if t <= now}, reverse=True)[:recent]
    if len(times) < 2:
        return None
    gaps = [newer - older for newer, older in itertools.pairwise(times)]
    return float(statistics.median(gaps)), times[0]


def adapted_interval(
    rate: tuple[float, float] | None, *, now: float, minimum: float, maximum: float
) -> float:
    """The next poll interval from `publication_rate`'s answer, within `[minimum, maximum]`."""
    if rate is None:
        return maximum
    median_gap, newest = rate
    silence = max(now - newest, 0.0)
    return min(max(max(median_gap, silence) / 2, minimum), maximum)

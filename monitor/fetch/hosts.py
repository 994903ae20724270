"""Per-host slots: how politely the fetcher treats each web server.

This module owns the limits the fetcher applies to one hostname, in the spirit
of Scrapy's downloader `Slot`: at most `connections` requests in flight to the
host, and at least `delay` seconds between the starts of two requests to it.
The limits are per host, never per source: a ministry that serves three hundred
feeds from one server still sees at most `connections` requests at a time.

A slot is created the first time its host is seen and lives as long as the
fetcher: one small object per host, so ten thousand sources on a few hundred
hosts cost a few hundred slots. A redirect to another host is a request to
that host: the fetcher gives the first host's slot back and takes the other's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Final

__all__ = ["DEFAULT_LIMITS", "HostLimits", "HostSlot", "HostSlots"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HostLimits:
    """The politeness limits of one host."""

    connections: int = 2  # max concurrent requests to this host
    delay: float = 0.0  # min seconds between the starts of two requests to this host

    def __post_init__(self) -> None:
        if self.connections < 1:
            raise ValueError(f"HostLimits.connections must be >= 1, got {self.connections}")
        if self.delay < 0:
            raise ValueError(f"HostLimits.delay must be >= 0, got {self.delay}")


DEFAULT_LIMITS: Final = HostLimits()


class HostSlot:
    """The gate in front of one host. Use it as `async with slot:` around a request.

    Entering waits for a free connection, then for the host's next start time.
    The slot itself is the context manager, so passing through it creates no
    object per request. `acquire` and `release` are the same two steps for a
    caller that moves from one slot to another, as the fetcher does when a
    redirect leads to another host.
    """

    __slots__ = ("_delay", "_next_start", "_semaphore", "limits")

    def __init__(self, limits: HostLimits) -> None:
        self.limits = limits
        self._semaphore = asyncio.Semaphore(limits.connections)
        self._delay = limits.delay
        self._next_start = 0.0  # loop time before which no request may start

    async def acquire(self) -> None:
        """Wait for a free connection and the host's turn. Pair it with one `release`."""
        await self._semaphore.acquire()
        if self._delay <= 0:
            return
        try:
            await self._wait_turn()
        except BaseException:
            self._semaphore.release()
            raise

    def release(self) -> None:
        """Give back the connection taken by `acquire`."""
        self._semaphore.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._semaphore.release()

    async def _wait_turn(self) -> None:
        """Reserve the next start time of the host and sleep until it comes.

        The reservation is made without awaiting, so it is atomic on the event
        loop: reserved times are `delay` apart whatever the number of waiters.
        A waiter cancelled in its sleep only leaves a gap, never a burst.
        """
        now = asyncio.get_running_loop().time()
        start = max(now, self._next_start)
        self._next_start = start + self._delay
        if start > now:
            await asyncio.sleep(start - now)


class HostSlots:
    """Every host's slot, created lazily from the default limits or an override."""

    __slots__ = ("_default", "_overrides", "_slots")

    def __init__(
        self,
        default: HostLimits = DEFAULT_LIMITS,
        overrides: Mapping[str, HostLimits] | None = None,
    ) -> None:
        self._default = default
        self._overrides = {host.lower(): limits for host, limits in (overrides or {}).items()}
        self._slots: dict[str, HostSlot] = {}

    def slot(self, host: str) -> HostSlot:
        """The slot of `host`, a lowercase hostname (as `yarl.URL.host` gives it)."""
        slot = self._slots.get(host)
        if slot is None:
            slot = self._slots[host] = HostSlot(self._overrides.get(host, self._default))
        return slot

    def limits(self, host: str) -> HostLimits:
        """The limits that apply to `host`, whether or not its slot exists yet."""
        return self._overrides.get(host.lower(), self._default)

    def __len__(self) -> int:
        return len(self._slots)

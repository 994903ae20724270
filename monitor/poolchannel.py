"""The loop's end of one worker's socket pair: task frames out, results in, in order.

`WorkerPool` (monitor/pool.py) owns the workers; each worker's socket is read by
a `_Channel`, an asyncio protocol, which keeps the queue of the tasks sent to that
worker, starts each task's deadline when the worker gets to it, and fails what it
held when the worker dies (`_WorkerLost`) or overruns (`_Deadline`). The worker's
side of the same socket is monitor/poolworker.py.
"""

from __future__ import annotations

import asyncio
import collections
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monitor.poolworker import FRAME

__all__: list[str] = []  # private to the pool: imported by monitor/pool.py alone


class _WorkerLost(Exception):
    """The worker holding a task died or was killed before answering.

    `started`: the worker was running this task (it may be the cause), rather
    than holding it queued behind another one."""

    def __init__(self, name: str, *, started: bool) -> None:
        super().__init__(name)
        self.started = started


class _Deadline(Exception):
    """The task ran past its deadline; its worker is being killed."""


@dataclass(eq=False)
class _Sent:
    """One task in a worker's queue: its answer, its deadline, and its clock."""

    future: asyncio.Future[Any]
    timeout: float
    started_at: float | None = None
    timer: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class _Channel(asyncio.Protocol):
    """The loop's end of one worker's socket: frames out, results in, in order."""

    name: str
    transport: asyncio.Transport | None = None
    closed: bool = False
    # Called when the task running has overrun its deadline (kill the worker), and
    # whenever a task leaves the queue (a waiting caller may now have a worker).
    on_expired: Callable[[], None] = lambda: None
    on_change: Callable[[], None] = lambda: None
    _buffer: bytearray = field(default_factory=bytearray)
    _waiting: collections.deque[_Sent] = field(default_factory=collections.deque)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, payload: bytes, timeout: float = math.inf) -> asyncio.Future[Any]:
        """Send one task; the future is its result (or the exception it raised).

        `timeout` is its deadline in seconds of running, counted from when the
        worker gets to it."""
        assert self.transport is not None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Sent(future, timeout))
        self.transport.writelines((FRAME.pack(len(payload)), payload))
        if len(self._waiting) == 1:
            self._start_clock()
        return future

    def started(self, future: asyncio.Future[Any]) -> bool:
        """Whether the worker has got to this task (it runs it, or it is answered)."""
        return not any(sent.future is future for sent in list(self._waiting)[1:])

    def running_for(self, now: float) -> float:
        """How long the task the worker runs now has been running (0 when idle)."""
        if not self._waiting or self._waiting[0].started_at is None:
            return 0.0
        return now - self._waiting[0].started_at

    def _start_clock(self) -> None:
        head = self._waiting[0]
        loop = asyncio.get_running_loop()
        head.started_at = loop.time()
        if math.isfinite(head.timeout):
            head.timer = loop.call_later(head.timeout, self._expire, head)

    def _expire(self, head: _Sent) -> None:
        if self.closed or not self._waiting or self._waiting[0] is not head:
            return
        if not head.future.done():
            head.future.set_exception(_Deadline(self.name))
        self.on_expired()  # the worker is killed; the tasks behind it are displaced

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= FRAME.size:
            (size,) = FRAME.unpack_from(self._buffer)
            end = FRAME.size + size
            if len(self._buffer) < end:
                return
            try:
                ok, value = pickle.loads(memoryview(self._buffer)[FRAME.size : end])
            except Exception as exc:  # an exception class that will not unpickle here
                ok, value = False, RuntimeError(f"{self.name} sent an unreadable answer: {exc!r}")
            del self._buffer[:end]
            sent = self._waiting.popleft()
            if sent.timer is not None:
                sent.timer.cancel()
            if self._waiting:
                self._start_clock()  # the worker goes on to the next task now
            future = sent.future
            if not future.done():  # its caller may have been cancelled and gone
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
            self.on_change()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        started = True  # the first task out is the one the worker was running
        while self._waiting:
            sent = self._waiting.popleft()
            if sent.timer is not None:
                sent.timer.cancel()
            if not sent.future.done():
                sent.future.set_exception(_WorkerLost(self.name, started=started))
            started = False
        self.on_change()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

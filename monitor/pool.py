"""The process pool for CPU work: feed parsing and extraction, off the event loop.

A 40 MB page must never stall polling, so everything that parses runs here.
Tasks take bytes and return plain data. Each task is bounded by a timeout; a
worker that overruns it is killed and replaced, and a worker that dies (the
OOM killer, a crash in lxml) costs the tasks it held one retry each, so one
poison page costs one task, not the service.

Each worker is a process joined to the event loop by a socket pair: a task goes
down as one length-prefixed pickle, its result comes back the same way, and the
loop reads results itself (`_Channel`, an asyncio protocol). There is no manager
thread, no queue feeder thread and no cross-process lock, as there are in
`concurrent.futures.ProcessPoolExecutor`: on bench/backfill.py pages the
executor cost the service's own process 0.38 ms of CPU a task (a quarter of its
CPU during a backfill) and left workers waiting for the manager thread between
tasks; this pool costs 0.18 ms.

Backpressure: at most `max_queued` tasks are handed to workers at once (two per
worker by default, so a worker finds its next task waiting when it finishes one);
the rest wait in `run()` without having been pickled.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import multiprocessing
import multiprocessing.forkserver
import pickle
import signal
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any, Final, TypeVar

import structlog

__all__ = ["WORKER_PRELOAD", "PoolTimeout", "WorkerPool", "start_forkserver"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

# What the service's workers need, imported (and the language model loaded) once in the
# forkserver: see monitor/extract/preload.py.
WORKER_PRELOAD: Final = ("monitor.extract.preload",)
_FRAME: Final = struct.Struct("!I")  # the length of the pickle that follows
_ATTEMPTS: Final = 2  # a task whose worker died is given to another worker once


def start_forkserver(preload: Sequence[str]) -> None:
    """Start the forkserver that forks the workers, with `preload` imported in it.

    It starts on its own, without waiting: the service calls this first thing,
    so the forkserver's imports (about a second for extraction) run while the
    service's own process imports and reads its config.
    """
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(preload))
    multiprocessing.forkserver.ensure_running()


class PoolTimeout(Exception):
    """A task did not finish within its timeout, or broke two workers."""


class _WorkerLost(Exception):
    """The worker holding a task died or was killed before answering."""


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    channel: _Channel
    in_flight: int = 0

    @property
    def alive(self) -> bool:
        return not self.channel.closed


@dataclass(eq=False)
class _Channel(asyncio.Protocol):
    """The loop's end of one worker's socket: frames out, results in, in order."""

    name: str
    transport: asyncio.Transport | None = None
    closed: bool = False
    _buffer: bytearray = field(default_factory=bytearray)
    _waiting: collections.deque[asyncio.Future[Any]] = field(default_factory=collections.deque)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        """Send one task; the future is its result (or the exception it raised)."""
        assert self.transport is not None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self.transport.writelines((_FRAME.pack(len(payload)), payload))
        return future

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _FRAME.size:
            (size,) = _FRAME.unpack_from(self._buffer)
            end = _FRAME.size + size
            if len(self._buffer) < end:
                return
            try:
                ok, value = pickle.loads(memoryview(self._buffer)[_FRAME.size : end])
            except Exception as exc:  # an exception class that will not unpickle here
                ok, value = False, RuntimeError(f"{self.name} sent an unreadable answer: {exc!r}")
            del self._buffer[:end]
            future = self._waiting.popleft()
            if not future.done():  # its caller may have timed out and gone
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(_WorkerLost(self.name))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class WorkerPool:
    """Worker processes fed by the event loop, with a bounded number of tasks out."""

    def __init__(
        self,
        workers: int,
        *,
        max_queued: int | None = None,
        initializer: Callable[[], None] | None = None,
        preload: Sequence[str] = (),
    ) -> None:
        """`initializer` runs in each worker before its first task: imports and models
        loaded there while the service starts, not in the way of the first task.

        `preload` names modules the forkserver imports before it forks any worker
        (if this process has not started it yet): what they load is in every worker
        at once, shared copy-on-write, and imported once rather than per worker.
        """
        if preload:
            multiprocessing.get_context("forkserver").set_forkserver_preload(list(preload))
        self.workers = workers
        self._slots = asyncio.Semaphore(max_queued or workers * 2)
        self._initializer = initializer
        self._pool: list[_Worker] = []
        self._spawning = asyncio.Lock()
        self._starting: asyncio.Task[None] | None = None
        self._closed = False
        self._spawned = 0

    def start(self) -> None:
        """Take tasks (again, after `close()`); the workers start in the background."""
        self._closed = False
        if self._starting is None or self._starting.done():
            self._starting = asyncio.get_running_loop().create_task(self._start_in_background())

    def close(self) -> None:
        """Stop every worker; tasks in flight fail as their workers go."""
        self._closed = True
        if self._starting is not None:
            self._starting.cancel()
        pool, self._pool = self._pool, []
        for worker in pool:
            _stop(worker)

    async def run(self, timeout: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` in a worker; raise PoolTimeout after `timeout` seconds.

        `fn` travels by name, so it must be a module-level function. An
        exception it raises is raised here.
        """
        async with self._slots:
            payload = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
            for attempt in range(1, _ATTEMPTS + 1):
                worker = await self._least_busy()
                worker.in_flight += 1
                try:
                    async with asyncio.timeout(timeout):
                        result: T = await worker.channel.send(payload)
                        return result
                except TimeoutError:
                    # A worker stuck in C code cannot be interrupted: replace it.
                    log.warning("pool_task_timeout", task=fn.__name__, timeout=timeout)
                    self._discard(worker)
                    raise PoolTimeout(f"{fn.__name__} took longer than {timeout:.0f} s") from None
                except _WorkerLost:
                    log.warning("pool_worker_lost", task=fn.__name__, attempt=attempt)
                    self._discard(worker)
                finally:
                    worker.in_flight -= 1
            raise PoolTimeout(f"{fn.__name__} broke a worker twice")

    async def _least_busy(self) -> _Worker:
        if self._closed:
            raise PoolTimeout("the worker pool is closed")
        if len(self._pool) < self.workers or not all(worker.alive for worker in self._pool):
            await self._fill()
        return min(self._pool, key=lambda worker: worker.in_flight)

    async def _fill(self) -> None:
        async with self._spawning:  # one caller fills the pool, the others wait for it
            self._pool = [worker for worker in self._pool if worker.alive]
            while len(self._pool) < self.workers and not self._closed:
                self._pool.append(await self._spawn())

    async def _start_in_background(self) -> None:
        try:
            await self._fill()
        except Exception as exc:  # the first task tries again, and raises
            log.warning("pool_start_failed", error=repr(exc))

    async def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        self._spawned += 1
        # forkserver: the workers are forked from a fresh interpreter, so they do not
        # inherit the event loop, sockets or the SQLite handle of this process.
        process = multiprocessing.get_context("forkserver").Process(
            target=_serve,
            args=(theirs, self._initializer),
            name=f"monitor-worker-{self._spawned}",
            daemon=True,
        )
        try:
            await _start_in_thread(process, theirs)
            loop = asyncio.get_running_loop()
            _, channel = await loop.create_connection(lambda: _Channel(process.name), sock=ours)
        except BaseException:  # a worker that starts anyway reads EOF on its socket and ends
            ours.close()
            raise
        return _Worker(process, channel)

    def _discard(self, worker: _Worker) -> None:
        with contextlib.suppress(ValueError):
            self._pool.remove(worker)
        _stop(worker)


async def _start_in_thread(process: BaseProcess, theirs: socket.socket) -> None:
    """`process.start()`, off the event loop, in a thread nobody has to wait for.

    A start waits for the forkserver, which may still be importing (about a
    second after the service starts). The thread owns the worker's end of the
    socket and closes it once the worker has its copy; it is a daemon and not
    the loop's executor, so a service stopping meanwhile exits at once instead
    of waiting for it (asyncio.run waits for its executor's threads).
    """
    loop = asyncio.get_running_loop()
    started: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if started.done():
            return
        if error is None:
            started.set_result(None)
        else:
            started.set_exception(error)

    def start() -> None:
        error: BaseException | None = None
        try:
            process.start()
        except BaseException as exc:
            error = exc
        finally:
            theirs.close()  # the worker's end lives in the worker only: its exit is our EOF
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=start, name=f"{process.name}-start", daemon=True).start()
    await started


def _stop(worker: _Worker) -> None:
    """Kill the worker (a running task cannot be stopped otherwise) and close its channel.

    The forkserver, whose child it is, reaps it."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        worker.process.kill()
    worker.channel.close()


# --- in the worker process ---------------------------------------------------------


def _serve(channel: socket.socket, initializer: Callable[[], None] | None) -> None:
    """A worker's life: read a task, run it, send back (True, result) or (False, exception).

    It ends when the service closes its end of the socket. Ctrl-C in a terminal
    reaches the whole process group; the service, not the worker, decides when
    the worker stops. A failing initializer leaves the failure to the tasks.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        with contextlib.suppress(Exception):
            initializer()
    # What the worker inherited and loaded so far lives as long as it does: out of the
    # collector's sight, its pages are not written by collections (they stay shared
    # with the forkserver and the other workers), and collections are cheaper.
    gc.freeze()
    with channel, channel.makefile("rb") as incoming:
        while header := incoming.read(_FRAME.size):
            (size,) = _FRAME.unpack(header)
            fn, args, kwargs = pickle.loads(incoming.read(size))
            answer = _answer(fn, args, kwargs)
            channel.sendall(_FRAME.pack(len(answer)) + answer)


def _answer(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    try:
        outcome: tuple[bool, Any] = (True, fn(*args, **kwargs))
    except Exception as exc:
        outcome = (False, exc)
    try:
        return pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an unpicklable result or exception still gets an answer
        failure = RuntimeError(f"{fn.__name__}: cannot send back {outcome[1]!r}: {exc!r}")
        return pickle.dumps((False, failure), protocol=pickle.HIGHEST_PROTOCOL)

"""The process pool for CPU work: feed parsing and extraction, off the event loop.

A 40 MB page must never stall polling, so everything that parses runs here.
Tasks take bytes and return plain data. Each task is bounded by a timeout; a
worker that overruns it is killed and replaced, and a worker that dies (the
OOM killer, a crash in lxml) costs the tasks it held one retry each, so one
poison page costs one task, not the service.

Each worker is a process joined to the event loop by a socket pair: a task goes
down as one length-prefixed pickle, its result comes back the same way, and the
loop reads results itself (`_Channel` in monitor/poolchannel.py, an asyncio
protocol; the worker's side is monitor/poolworker.py). There is no manager
thread, no queue feeder thread and no cross-process lock, as there are in
`concurrent.futures.ProcessPoolExecutor`: on bench/backfill.py pages the
executor cost the service's own process 0.38 ms of CPU a task (a quarter of its
CPU during a backfill) and left workers waiting for the manager thread between
tasks; this pool costs 0.18 ms.

Backpressure: at most `max_queued` tasks are handed to workers at once (two per
worker by default, so a worker finds its next task waiting when it finishes one);
the rest wait in `run()` without having been pickled.

Hostile pages (issue 13) shape the rest:
- The deadline is a task's running time, counted from when its worker starts it
  (when the answer before it arrives), not from when it was queued: a task that
  waited behind a slow neighbour still gets its full time. A task over its
  deadline gets its worker killed.
- A worker that dies or is killed costs an attempt only to the task it was
  running. The tasks queued behind it never started: they go to another worker
  at no cost (`_WorkerLost.started`), so a poison page never fails its neighbours.
- A task is queued behind a busy worker only while that worker's current task is
  young (`_QUEUE_BEHIND`); behind an old one it waits in the pool for the first
  worker to come free, rather than bet on a task that may run to its deadline.
  A task whose bet was lost (the task ahead of it turned slow) is sent again to
  the first idle worker, and the first answer wins (`_settle`).
- `memory_mb` caps each worker's address space (RLIMIT_AS): a task that hits it
  fails with `PoolMemoryExceeded` and its worker is replaced.
- `run_priority()` is a lane of its own (feed parsing): `priority_workers`
  workers that take nothing else, plus any idle worker of the main lane, with its
  own backpressure, so polling never waits behind page extraction.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.forkserver
import pickle
import socket
import threading
from asyncio import FIRST_COMPLETED
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any, Final, TypeVar

import structlog

from monitor import metrics
from monitor.poolchannel import _Channel, _Deadline, _WorkerLost
from monitor.poolworker import serve

__all__ = [
    "WORKER_PRELOAD",
    "PoolMemoryExceeded",
    "PoolTimeout",
    "WorkerPool",
    "start_forkserver",
]

log = structlog.get_logger(__name__)

T = TypeVar("T")

# What the service's workers need, imported (and the language model loaded) once in the
# forkserver: see monitor/extract/preload.py.
WORKER_PRELOAD: Final = ("monitor.extract.preload",)
_ATTEMPTS: Final = 2  # a task whose worker died running it is given to another worker once
# A task whose worker died before starting it (a neighbour's fault) goes to another
# worker at no cost, this many times at most: a bound, not a budget anyone should reach.
_DISPLACEMENTS: Final = 20
_QUEUE_DEPTH: Final = 2  # tasks out per worker: the one it runs and the next
# Queue behind a busy worker only while its task has run less than this: a page takes
# milliseconds, so a task older than this may well run to its deadline.
_QUEUE_BEHIND: Final = 0.25
_PRIORITY: Final = "priority"
_MAIN: Final = "main"


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


class PoolMemoryExceeded(PoolTimeout):
    """A task hit its worker's memory limit; the worker was replaced."""


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    channel: _Channel
    lane: str = _MAIN
    in_flight: int = 0

    @property
    def alive(self) -> bool:
        return not self.channel.closed


class WorkerPool:
    """Worker processes fed by the event loop, with a bounded number of tasks out."""

    def __init__(
        self,
        workers: int,
        *,
        max_queued: int | None = None,
        initializer: Callable[[], None] | None = None,
        preload: Sequence[str] = (),
        priority_workers: int = 0,
        memory_mb: int = 0,
    ) -> None:
        """`initializer` runs in each worker before its first task: imports and models
        loaded there while the service starts, not in the way of the first task.

        `preload` names modules the forkserver imports before it forks any worker
        (if this process has not started it yet): what they load is in every worker
        at once, shared copy-on-write, and imported once rather than per worker.

        `priority_workers` are workers of `run_priority()`'s lane only; `memory_mb`
        caps each worker's address space (0: no cap).
        """
        if preload:
            multiprocessing.get_context("forkserver").set_forkserver_preload(list(preload))
        self.workers = workers
        self.priority_workers = priority_workers
        self.memory_mb = memory_mb
        self._slots = asyncio.Semaphore(max_queued or workers * _QUEUE_DEPTH)
        self._priority_slots = asyncio.Semaphore(max(1, priority_workers) * _QUEUE_DEPTH)
        self._initializer = initializer
        self._pool: list[_Worker] = []
        self._spawning = asyncio.Lock()
        self._starting: asyncio.Task[None] | None = None
        self._closed = False
        self._spawned = 0
        self._waiters: list[asyncio.Future[None]] = []

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
        self._wake()

    async def run(self, timeout: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` in a worker; raise PoolTimeout after `timeout`
        seconds of running (its worker is killed).

        `fn` travels by name, so it must be a module-level function. An
        exception it raises is raised here; PoolMemoryExceeded when it hit the
        worker's memory limit.
        """
        async with self._slots:
            return await self._run(_MAIN, timeout, fn, args, kwargs)

    async def run_priority(
        self, timeout: float, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """`run()` in the priority lane: never queued behind `run()`'s tasks."""
        async with self._priority_slots:
            return await self._run(_PRIORITY, timeout, fn, args, kwargs)

    async def _run(
        self,
        lane: str,
        timeout: float,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        payload = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        attempts = displaced = 0
        while True:
            worker = await self._worker_for(lane)
            future = self._send(worker, payload, timeout)
            worker, future = await self._settle(lane, payload, timeout, worker, future)
            try:
                result: T = future.result()
                return result
            except _Deadline:
                # A worker stuck in C code cannot be interrupted: it was killed.
                log.warning("pool_task_timeout", task=fn.__name__, timeout=timeout)
                self._discard(worker, "deadline")
                raise PoolTimeout(f"{fn.__name__} took longer than {timeout:.0f} s") from None
            except MemoryError:
                log.warning("pool_task_memory_exceeded", task=fn.__name__, limit_mb=self.memory_mb)
                self._discard(worker, "memory")  # its heap is spent: a fresh worker takes over
                raise PoolMemoryExceeded(
                    f"{fn.__name__} exceeded the worker memory limit of {self.memory_mb} MB"
                ) from None
            except _WorkerLost as lost:
                self._discard(worker, "lost")
                if lost.started:
                    attempts += 1
                    log.warning("pool_worker_lost", task=fn.__name__, attempt=attempts)
                    if attempts >= _ATTEMPTS:
                        raise PoolTimeout(f"{fn.__name__} broke a worker twice") from None
                else:  # queued behind the task that cost the worker: not this one's fault
                    displaced += 1
                    if displaced > _DISPLACEMENTS:
                        raise PoolTimeout(
                            f"{fn.__name__} lost {displaced} workers to other tasks"
                        ) from None

    def _send(self, worker: _Worker, payload: bytes, timeout: float) -> asyncio.Future[Any]:
        worker.in_flight += 1
        future = worker.channel.send(payload, timeout)

        def settled(done: asyncio.Future[Any]) -> None:
            worker.in_flight -= 1
            if not done.cancelled():
                done.exception()  # seen: a copy nobody waits for any more is no error
            self._wake()

        future.add_done_callback(settled)
        return future

    async def _settle(
        self,
        lane: str,
        payload: bytes,
        timeout: float,
        worker: _Worker,
        future: asyncio.Future[Any],
    ) -> tuple[_Worker, asyncio.Future[Any]]:
        """The first answer to the task, and the worker that gave it.

        A task queued behind a task that has turned out slow is sent again to
        the first idle worker, and the first answer wins: the bet that the task
        ahead would take milliseconds was lost, and the deadline of the one
        ahead (seconds) must not become this one's wait. Tasks are pure, so
        running one twice costs CPU, never a wrong answer."""
        racing = {future: worker}
        loop = asyncio.get_running_loop()
        while True:
            queued = len(racing) == 1 and not worker.channel.started(future)
            done, _ = await asyncio.wait(
                racing, timeout=_QUEUE_BEHIND if queued else None, return_when=FIRST_COMPLETED
            )
            if not done:
                if worker.channel.running_for(loop.time()) >= _QUEUE_BEHIND:
                    other = self._idle(lane)
                    if other is not None:
                        log.info("pool_task_sent_again", worker=other.channel.name)
                        racing[self._send(other, payload, timeout)] = other
                continue
            finished = done.pop()
            if len(racing) > 1 and _displaced(finished):  # the other copy is still on its way
                del racing[finished]
                continue
            return racing[finished], finished

    def _idle(self, lane: str) -> _Worker | None:
        """An idle worker for a task of `lane`, if there is one now."""
        worker = self._pick(lane, asyncio.get_running_loop().time())
        return worker if worker is not None and worker.in_flight == 0 else None

    async def _worker_for(self, lane: str) -> _Worker:
        """The worker to send a task of `lane` to, once one can take it."""
        while True:
            if self._closed:
                raise PoolTimeout("the worker pool is closed")
            if self._missing():
                await self._fill()
                continue
            worker = self._pick(lane, asyncio.get_running_loop().time())
            if worker is not None:
                return worker
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _pick(self, lane: str, now: float) -> _Worker | None:
        """An idle worker of the lane, else one whose current task is young and
        has room behind it, else none (wait).

        The priority lane also takes any idle worker of the main lane, and the
        main lane's workers when it has none of its own."""
        main = [w for w in self._pool if w.lane == _MAIN and w.alive]
        if lane == _PRIORITY:
            own = [w for w in self._pool if w.lane == _PRIORITY and w.alive]
            candidates = (own + [w for w in main if w.in_flight == 0]) if own else main
        else:
            candidates = main
        for worker in candidates:
            if worker.in_flight == 0:
                return worker
        behind = [
            w
            for w in candidates
            if w.in_flight < _QUEUE_DEPTH and w.channel.running_for(now) < _QUEUE_BEHIND
        ]
        return min(behind, key=lambda w: w.in_flight, default=None)

    def _wake(self) -> None:
        """Let every caller waiting for a worker look again."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _missing(self) -> bool:
        alive = [worker for worker in self._pool if worker.alive]
        return len(alive) < self.workers + self.priority_workers

    async def _fill(self) -> None:
        async with self._spawning:  # one caller fills the pool, the others wait for it
            self._pool = [worker for worker in self._pool if worker.alive]
            for lane, size in ((_PRIORITY, self.priority_workers), (_MAIN, self.workers)):
                while sum(w.lane == lane for w in self._pool) < size and not self._closed:
                    self._pool.append(await self._spawn(lane))
                    self._wake()

    async def _start_in_background(self) -> None:
        try:
            await self._fill()
        except Exception as exc:  # the first task tries again, and raises
            log.warning("pool_start_failed", error=repr(exc))

    async def _spawn(self, lane: str) -> _Worker:
        ours, theirs = socket.socketpair()
        self._spawned += 1
        # forkserver: the workers are forked from a fresh interpreter, so they do not
        # inherit the event loop, sockets or the SQLite handle of this process.
        process = multiprocessing.get_context("forkserver").Process(
            target=serve,
            args=(theirs, self._initializer, self.memory_mb),
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
        worker = _Worker(process, channel, lane)
        channel.on_expired = lambda: self._discard(worker, "deadline")
        channel.on_change = self._wake
        return worker

    def _discard(self, worker: _Worker, reason: str) -> None:
        if worker in self._pool:  # counted once, whoever sees it first
            self._pool.remove(worker)
            if not self._closed:
                metrics.POOL_WORKERS_REPLACED.labels(reason=reason).inc()
        _stop(worker)
        self._wake()


def _displaced(future: asyncio.Future[Any]) -> bool:
    """Whether the task's worker died before it got to the task."""
    if future.cancelled():
        return False
    error = future.exception()
    return isinstance(error, _WorkerLost) and not error.started


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

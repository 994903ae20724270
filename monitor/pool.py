"""The process pool for CPU work: feed parsing and extraction, off the event loop.

A 40 MB page must never stall polling, so everything that parses runs here.
Tasks take bytes and return plain data. Each task is bounded by a timeout, and
a pool that breaks (a worker killed by the OOM killer, a crash in lxml) is
replaced, so one poison page costs one task, not the service.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, TypeVar

import structlog

__all__ = ["PoolTimeout", "WorkerPool"]

log = structlog.get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class PoolTimeout(Exception):
    """A task did not finish within its timeout; the pool was recycled."""


class WorkerPool:
    """A restartable ProcessPoolExecutor with a bounded queue."""

    def __init__(self, workers: int, *, max_queued: int | None = None) -> None:
        self.workers = workers
        # Backpressure: at most this many tasks submitted at once, so a burst
        # of candidates waits here instead of piling up pickled pages in memory.
        self._slots = asyncio.Semaphore(max_queued or workers * 2)
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self._executor is None:
            # forkserver: workers do not inherit the event loop, sockets or the
            # SQLite handle of the parent.
            context = multiprocessing.get_context("forkserver")
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context
            )

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, timeout: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` in a worker; raise PoolTimeout after `timeout` seconds."""
        async with self._slots:
            for attempt in (1, 2):
                self.start()
                assert self._executor is not None
                loop = asyncio.get_running_loop()
                future = loop.run_in_executor(self._executor, _call, fn, args, kwargs)
                try:
                    async with asyncio.timeout(timeout):
                        return await future
                except TimeoutError:
                    # A worker stuck in C code cannot be interrupted: replace the pool.
                    log.warning("pool_task_timeout", task=fn.__name__, timeout=timeout)
                    self._recycle()
                    raise PoolTimeout(f"{fn.__name__} took longer than {timeout:.0f} s") from None
                except BrokenProcessPool:
                    log.warning("pool_broken", task=fn.__name__, attempt=attempt)
                    self._recycle()
            raise PoolTimeout(f"{fn.__name__} broke the worker pool twice")

    def _recycle(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        for process in list(getattr(executor, "_processes", {}).values()):
            process.kill()  # the executor has no public way to stop a running task
        executor.shutdown(wait=False, cancel_futures=True)


def _call(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    return fn(*args, **kwargs)

"""The worker pool: results and exceptions cross it, a stuck or dying worker costs
one task, and no more than `max_queued` tasks are handed out at once."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from monitor import metrics
from monitor.errors import ExtractionError
from monitor.pool import PoolMemoryExceeded, PoolTimeout, WorkerPool, _Channel

REPO = Path(__file__).resolve().parents[1]

# --- tasks: module-level, so that workers import them by name ----------------------


def add(a: int, b: int, *, times: int = 1) -> int:
    return (a + b) * times


def digest(body: bytes) -> tuple[int, str]:
    return len(body), hashlib.sha256(body).hexdigest()


def fail(reason: str) -> None:
    raise ExtractionError(reason, "the page said no", retriable=True)


def sleep_then(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def pid() -> int:
    return os.getpid()


def die() -> None:
    os._exit(3)  # as the OOM killer would leave it: no answer, no exception


def die_once(marker: str) -> str:
    """Die the first time (when `marker` does not exist yet), answer the second."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os._exit(3)
    return "answered"


def unpicklable() -> Any:
    return lambda: None


def note_start() -> None:
    os.environ["POOL_TEST_PREPARED_AT"] = repr(time.time())


def prepared_at() -> float | None:
    value = os.environ.get("POOL_TEST_PREPARED_AT")
    return float(value) if value else None


def broken_initializer() -> None:
    raise RuntimeError("cannot warm up")


def die_after(seconds: float) -> None:
    time.sleep(seconds)
    os._exit(3)


def pid_then_sleep(marker: str, seconds: float) -> None:
    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)


def hog(megabytes: int) -> int:
    return len(bytearray(megabytes * 1024 * 1024))


def record_and_sleep(seconds: float, value: int) -> tuple[int, float]:
    time.sleep(seconds)
    return value, time.time()


def replaced(reason: str) -> float:
    """Workers replaced so far for `reason`. (Not tests.conftest's helper: workers
    import this module to find their tasks, and conftest would cost them seconds.)"""
    return float(metrics.POOL_WORKERS_REPLACED.labels(reason=reason)._value.get())


# --- tests -------------------------------------------------------------------------


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    workers = WorkerPool(2)
    workers.start()
    yield workers
    workers.close()


async def test_results_and_keyword_arguments_cross(pool: WorkerPool) -> None:
    results = await asyncio.gather(*(pool.run(30, add, n, 1, times=2) for n in range(20)))
    assert results == [(n + 1) * 2 for n in range(20)]


async def test_a_large_body_crosses_whole(pool: WorkerPool) -> None:
    body = os.urandom(5_000_000)  # many socket reads on both sides
    assert await pool.run(30, digest, body) == (len(body), hashlib.sha256(body).hexdigest())


async def test_exceptions_cross_with_their_fields(pool: WorkerPool) -> None:
    with pytest.raises(ExtractionError) as caught:
        await pool.run(30, fail, "not_html")
    assert caught.value.reason == "not_html" and caught.value.retriable
    assert await pool.run(30, add, 1, 2) == 3  # the worker lives on


async def test_an_unpicklable_result_is_an_error_not_a_hang(pool: WorkerPool) -> None:
    with pytest.raises(RuntimeError, match="cannot send back"):
        await pool.run(30, unpicklable)
    assert await pool.run(30, add, 1, 2) == 3


async def test_work_runs_in_other_processes(pool: WorkerPool) -> None:
    pids = set(await asyncio.gather(*(pool.run(30, pid) for _ in range(8))))
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2


async def test_a_task_over_its_timeout_is_stopped_and_its_worker_replaced(
    pool: WorkerPool,
) -> None:
    started = time.monotonic()
    with pytest.raises(PoolTimeout, match="took longer than"):
        await pool.run(0.5, sleep_then, 30, 0)
    assert time.monotonic() - started < 5
    # the pool answers again, from live workers
    assert await asyncio.gather(*(pool.run(30, add, n, 0) for n in range(6))) == list(range(6))


async def test_a_task_queued_behind_a_stuck_one_is_given_to_a_new_worker() -> None:
    pool = WorkerPool(1, max_queued=2)  # both tasks land on the one worker
    try:
        stuck = asyncio.ensure_future(pool.run(0.5, sleep_then, 30, 0))
        await asyncio.sleep(0.05)
        behind = asyncio.ensure_future(pool.run(30, add, 2, 3))
        with pytest.raises(PoolTimeout):
            await stuck
        assert await behind == 5
    finally:
        pool.close()


async def test_a_worker_that_dies_costs_its_task_one_retry(
    pool: WorkerPool, tmp_path: Path
) -> None:
    assert await pool.run(30, die_once, str(tmp_path / "marker")) == "answered"
    with pytest.raises(PoolTimeout, match="broke a worker twice"):
        await pool.run(30, die)
    assert await pool.run(30, add, 1, 1) == 2


async def test_no_more_than_max_queued_tasks_are_out_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = 0
    most = 0
    send = _Channel.send

    def counting_send(self: _Channel, payload: bytes, timeout: float) -> asyncio.Future[Any]:
        nonlocal out, most
        out += 1
        most = max(most, out)
        future = send(self, payload, timeout)

        def done(_: Any) -> None:
            nonlocal out
            out -= 1

        future.add_done_callback(done)
        return future

    monkeypatch.setattr(_Channel, "send", counting_send)
    pool = WorkerPool(2, max_queued=3)
    try:
        results = await asyncio.gather(*(pool.run(30, sleep_then, 0.05, n) for n in range(12)))
    finally:
        pool.close()
    assert results == list(range(12))
    assert most == 3


async def test_start_readies_the_workers_before_the_first_task() -> None:
    pool = WorkerPool(2, initializer=note_start)
    pool.start()
    try:
        await asyncio.sleep(2.0)  # a service fetching its first feeds
        asked_at = time.time()
        times = await asyncio.gather(*(pool.run(30, prepared_at) for _ in range(4)))
    finally:
        pool.close()
    assert all(t is not None and t < asked_at for t in times)
    assert "POOL_TEST_PREPARED_AT" not in os.environ  # it ran in the workers only


async def test_a_failing_initializer_leaves_the_workers_serving() -> None:
    pool = WorkerPool(1, initializer=broken_initializer)
    try:
        assert await pool.run(30, add, 2, 2) == 4
    finally:
        pool.close()


async def test_a_closed_pool_refuses_work_until_started_again() -> None:
    pool = WorkerPool(1)
    first = await pool.run(30, pid)
    pool.close()
    with pytest.raises(PoolTimeout, match="closed"):
        await pool.run(30, add, 1, 1)
    pool.start()
    try:
        assert await pool.run(30, pid) != first  # a new worker
    finally:
        pool.close()


async def test_close_fails_the_tasks_in_flight() -> None:
    pool = WorkerPool(1)
    task = asyncio.ensure_future(pool.run(30, sleep_then, 30, 0))
    await asyncio.sleep(0.5)
    pool.close()
    with pytest.raises(PoolTimeout):
        await asyncio.wait_for(task, 5)


def test_a_service_stopping_while_a_worker_starts_exits_at_once(tmp_path: Path) -> None:
    """A worker start waits for the forkserver (still importing here); the exit must not."""
    script = tmp_path / "stop_early.py"
    script.write_text(
        "import asyncio, time\n"
        "from monitor.pool import WorkerPool, start_forkserver\n"
        "start_forkserver(['tests.slow_preload'])\n"
        "async def main():\n"
        "    pool = WorkerPool(1)\n"
        "    pool.start()\n"
        "    await asyncio.sleep(0.5)  # the start is under way, waiting for the forkserver\n"
        "    pool.close()\n"
        "asyncio.run(main())\n"
    )
    started = time.monotonic()
    with (tmp_path / "stderr").open("wb") as stderr:  # a file: the forkserver shares it
        process = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        assert process.wait(timeout=60) == 0, (tmp_path / "stderr").read_text()
    assert time.monotonic() - started < 4.0  # not the forkserver's 5 s


# --- issue 13: hostile tasks never cost their neighbours --------------------------


async def test_workers_killed_under_a_queued_task_never_fail_it() -> None:
    """A task queued behind others on a worker that dies did not start: it goes to
    another worker at no cost, however many workers its neighbours take down."""
    pool = WorkerPool(1, max_queued=3)  # all three on the one worker at first
    try:
        first = asyncio.ensure_future(pool.run(30, die_after, 0.3))
        await asyncio.sleep(0.05)
        neighbour = asyncio.ensure_future(pool.run(30, add, 2, 3))
        second = asyncio.ensure_future(pool.run(30, die_after, 0.3))
        assert await neighbour == 5
        for poison in (first, second):
            with pytest.raises(PoolTimeout, match="broke a worker twice"):
                await poison
    finally:
        pool.close()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def test_the_deadline_kills_a_stuck_worker(pool: WorkerPool, tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    await asyncio.gather(*(pool.run(30, pid) for _ in range(4)))  # both workers up
    before = replaced("deadline")
    with pytest.raises(PoolTimeout, match="took longer than"):
        await pool.run(1.0, pid_then_sleep, str(marker), 60)
    assert replaced("deadline") == before + 1
    stuck = int(marker.read_text())
    for _ in range(50):
        if not _alive(stuck):
            break
        await asyncio.sleep(0.1)
    assert not _alive(stuck)
    assert stuck not in set(await asyncio.gather(*(pool.run(30, pid) for _ in range(4))))


async def test_the_deadline_counts_running_time_not_the_wait_behind_a_neighbour() -> None:
    pool = WorkerPool(1, max_queued=2)
    try:
        ahead = asyncio.ensure_future(pool.run(30, sleep_then, 1.0, 1))
        await asyncio.sleep(0.05)
        # Queued behind `ahead` (young enough to queue behind): 1.45 s after it is
        # sent, but 0.5 s of running, well within its deadline of 1.2 s.
        behind = asyncio.ensure_future(pool.run(1.2, sleep_then, 0.5, 2))
        assert await asyncio.gather(ahead, behind) == [1, 2]
    finally:
        pool.close()


async def test_the_memory_limit_fails_the_task_and_replaces_its_worker() -> None:
    pool = WorkerPool(1, memory_mb=800)
    try:
        before = await pool.run(30, pid)
        replaced_before = replaced("memory")
        with pytest.raises(PoolMemoryExceeded, match="memory limit of 800 MB"):
            await pool.run(30, hog, 2000)
        assert replaced("memory") == replaced_before + 1
        assert await pool.run(30, hog, 50) == 50 * 1024 * 1024  # within the limit
        assert await pool.run(30, pid) != before  # a new worker
    finally:
        pool.close()


async def test_feed_parsing_goes_ahead_of_queued_page_extractions() -> None:
    pool = WorkerPool(1, priority_workers=1)
    pool.start()
    try:
        await asyncio.gather(pool.run(30, add, 0, 0), pool.run_priority(30, add, 0, 0))
        pages = [asyncio.ensure_future(pool.run(30, record_and_sleep, 1.0, n)) for n in range(4)]
        await asyncio.sleep(0.1)
        assert await pool.run_priority(30, add, 1, 2) == 3
        assert not any(page.done() for page in pages)  # all four still ahead of it in line
        assert [value for value, _ in await asyncio.gather(*pages)] == [0, 1, 2, 3]
    finally:
        pool.close()


async def test_the_priority_lane_borrows_an_idle_worker_of_the_main_lane() -> None:
    pool = WorkerPool(1, priority_workers=1)
    try:
        slow = asyncio.ensure_future(pool.run_priority(30, sleep_then, 1.5, 0))
        await asyncio.sleep(0.3)
        quick = asyncio.ensure_future(pool.run_priority(30, add, 1, 1))
        assert await quick == 2
        assert not slow.done()  # not queued behind the slow parse
        await slow
    finally:
        pool.close()


async def test_a_task_queued_behind_one_that_turns_slow_is_sent_to_the_first_free_worker() -> None:
    pool = WorkerPool(2)
    try:
        await asyncio.gather(*(pool.run(30, add, n, 0) for n in range(4)))  # both up
        slow = asyncio.ensure_future(pool.run(60, sleep_then, 6.0, 1))  # the first worker
        await asyncio.sleep(0.02)
        other = asyncio.ensure_future(pool.run(60, sleep_then, 1.0, 2))  # the second
        await asyncio.sleep(0.02)
        # Both busy with young tasks: this one is queued behind the slow one...
        behind = asyncio.ensure_future(pool.run(60, add, 3, 3))
        # ...and answered by the second worker once it is free, not after 6 s.
        assert await behind == 6
        assert not slow.done()
        assert await asyncio.gather(slow, other) == [1, 2]
    finally:
        pool.close()

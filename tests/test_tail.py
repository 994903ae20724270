"""`monitor tail` as a person runs it: before the broker, the last N, across restarts,
unknown ids, `-c` on every verb. Real broker processes (the embedded tansu), the real CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.events import build_event
from monitor.sinks.embedded import EmbeddedBroker
from tests.conftest import free_port, make_config
from tests.test_cli import start_monitor
from tests.test_consumer import create_topics, produce, record, statement

TOPIC = "statements"
BASE = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=30)


def _events(numbers: range) -> list[Any]:
    return [record(build_event(statement(n, detected_at=BASE + dt.timedelta(seconds=n)),
                               topic=TOPIC)) for n in numbers]


def _config(tmp_path: Path, bootstrap: str) -> Path:
    config = make_config(tmp_path, bootstrap=bootstrap, topic=TOPIC,
                         sources=[{"id": "bank", "url": "http://127.0.0.1:9/feed.xml"},
                                  {"id": "army", "url": "http://127.0.0.1:9/army.xml"}])
    config["watchlists"] = [{"id": "rates", "terms": ["rate"]}]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Tail:
    """A running `monitor tail --json`, its lines read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stderr = b""

    async def ids(self, count: int, timeout: float = 30.0) -> list[str]:
        assert self.process.stdout is not None
        found: list[str] = []
        try:
            async with asyncio.timeout(timeout):
                while len(found) < count:
                    line = await self.process.stdout.readline()
                    assert line, f"tail ended: {await self._err()}"
                    found.append(json.loads(line)["data"]["statement_id"])
        except TimeoutError:
            self.process.terminate()
            pytest.fail(f"{count} lines expected, {found} came; stderr: {await self._err()}")
        return found

    async def nothing_more(self, settle: float = 2.5) -> None:
        assert self.process.stdout is not None
        with pytest.raises(TimeoutError):
            line = await asyncio.wait_for(self.process.stdout.readline(), settle)
            pytest.fail(f"unexpected line: {line!r}")

    async def err_line(self, timeout: float = 20.0) -> str:
        assert self.process.stderr is not None
        line = await asyncio.wait_for(self.process.stderr.readline(), timeout)
        return line.decode()

    async def _err(self) -> str:
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode(errors="replace")


async def _tail(path: Path, *args: str) -> AsyncIterator[Tail]:
    process = await start_monitor("tail", "-c", str(path), "--json", *args)
    try:
        yield Tail(process)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
async def broker(port: int) -> AsyncIterator[EmbeddedBroker]:
    """A broker of this test's own, on `port`, that the test may restart."""
    running = EmbeddedBroker(port=port)
    yield running
    running.stop()


@pytest.mark.integration
async def test_tail_waits_for_kafka_then_prints_the_last_n_then_follows(
    tmp_path: Path, port: int, broker: EmbeddedBroker
) -> None:
    path = _config(tmp_path, f"127.0.0.1:{port}")
    async for tail in _tail(path, "--last", "3"):
        assert await tail.err_line() == f"waiting for Kafka at 127.0.0.1:{port} (KafkaConnectionError) ...\n"
        broker.start()
        await create_topics(broker.bootstrap_servers, TOPIC, partitions=3)
        await asyncio.sleep(3.0)  # tail retries every second: it is reading before the events
        await produce(broker.bootstrap_servers, TOPIC, _events(range(1, 9)))
        # Started before the events: it prints them as they come, all of them.
        assert sorted(await tail.ids(8)) == sorted(f"st-{n}" for n in range(1, 9))
    async for tail in _tail(path, "--last", "3"):
        # Started after: the last 3 by detection time, oldest first, then what comes.
        assert await tail.ids(3) == ["st-6", "st-7", "st-8"]
        await tail.nothing_more()
        await produce(broker.bootstrap_servers, TOPIC, _events(range(9, 10)))
        assert await tail.ids(1) == ["st-9"]


@pytest.mark.integration
@pytest.mark.parametrize("after", [1, 4], ids=["shorter-new-log", "longer-new-log"])
async def test_tail_resumes_after_a_broker_restart_without_missing_or_repeating(
    tmp_path: Path, port: int, broker: EmbeddedBroker, after: int
) -> None:
    """The embedded broker restarts empty (as with `monitor run` restarted): the new
    log, shorter or longer than the position tail had reached, is read from its start."""
    broker.start()
    await create_topics(broker.bootstrap_servers, TOPIC)
    await produce(broker.bootstrap_servers, TOPIC, _events(range(1, 3)))
    path = _config(tmp_path, broker.bootstrap_servers)
    async for tail in _tail(path):
        assert await tail.ids(2) == ["st-1", "st-2"]
        broker.stop()
        await asyncio.sleep(1.0)
        broker.start()
        await create_topics(broker.bootstrap_servers, TOPIC)
        await produce(broker.bootstrap_servers, TOPIC, _events(range(10, 10 + after)))
        assert await tail.ids(after) == [f"st-{n}" for n in range(10, 10 + after)]
        await tail.nothing_more()
        await produce(broker.bootstrap_servers, TOPIC, _events(range(20, 21)))
        assert await tail.ids(1) == ["st-20"]


def test_an_unknown_source_or_watchlist_lists_the_configured_ids(tmp_path: Path) -> None:
    path = _config(tmp_path, "127.0.0.1:1")
    runner = CliRunner()
    result = runner.invoke(main, ["tail", "-c", str(path), "--source", "other"])
    assert result.exit_code == 2
    assert "'other' is not configured; the ids in the config: army, bank" in result.output
    result = runner.invoke(main, ["tail", "-c", str(path), "--watchlist", "nope"])
    assert result.exit_code == 2
    assert "'nope' is not configured; the ids in the config: rates" in result.output


@pytest.mark.parametrize("verb", ["run", "check", "extract", "tail", "status"])
def test_c_is_short_for_config_on_every_verb(verb: str) -> None:
    result = CliRunner().invoke(main, [verb, "--help"])
    assert result.exit_code == 0 and "-c, --config" in result.output


def test_tail_help_says_where_it_starts() -> None:
    result = CliRunner().invoke(main, ["tail", "--help"])
    assert "Print the last N statements (--last, default 10), then follow" in result.output
    assert "--from-beginning" in result.output and "--since" in result.output

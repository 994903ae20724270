"""Coordination: shards split by the consumer group, state that moves with a source."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from monitor.config import CoordinationConfig, KafkaConfig
from monitor.coordination import Coordinator, ShardMap, shard_of
from monitor.models import Source
from monitor.state import NewStatementRow, StateStore, Validators
from monitor.statesync import StateRecord, decode_state_record, encode_state_record
from tests.conftest import wait_until


def source(n: int, host: str | None = None) -> Source:
    return Source(
        id=f"s{n}",
        name=f"s{n}",
        url=f"https://{host or f'site{n}.example'}/feed.xml",
        interval=1.0,
        timeout=5.0,
        backfill=False,
        topic="statements",
    )


# -- shards -------------------------------------------------------------------------


def test_a_source_always_lands_in_the_same_shard_and_a_host_in_one() -> None:
    sources = [source(n) for n in range(50)]
    first = ShardMap.of(sources, 8)
    again = ShardMap.of(list(reversed(sources)), 8)
    assert first.shard_by_source == again.shard_by_source
    assert set(first.by_shard) <= set(range(8)) and len(first.by_shard) > 4
    # Two feeds of one site (www. or not) share a shard: one instance polls a host.
    assert shard_of(source(1, "www.mil.example"), 8) == shard_of(source(2, "mil.example"), 8)
    assert first.sources_of(first.by_shard) == {s.id for s in sources}


# -- the state topic's records -----------------------------------------------------------


def test_state_records_survive_encoding_and_oversized_data_is_dropped() -> None:
    validators = StateRecord("mod", None, {"etag": '"x"', "updated_at": 1.0})
    statement = StateRecord("mod", "guid\x001", {"statement_id": "a", "data": {"text": "t"}})
    for record in (validators, statement):
        assert decode_state_record(*encode_state_record(record)) == record
    huge = StateRecord("mod", "g", {"statement_id": "a", "version": 2, "data": "x" * 2_000_000})
    key, value = encode_state_record(huge)
    assert decode_state_record(key, value) == StateRecord("mod", "g", {"statement_id": "a", "version": 2})
    assert decode_state_record(b"z\x00mod", b"{}") is None  # a kind from a later version
    assert decode_state_record(key, None) is None  # a tombstone


def test_the_store_writes_out_acknowledged_state_only(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "a.db")
    store.open()
    store.record_statement(statement_row("mod", 1))
    store.save_validators("mod", Validators(etag='"v1"'))
    # The event is not acknowledged yet: neither it nor the validators may go out.
    assert store.unsynced_statements(["mod"], 10) == []
    assert store.unsynced_validators(["mod"]) == []
    store.outbox_acked(store.outbox_batch(10))
    (record,) = store.unsynced_statements(["mod"], 10)
    assert record.value["version"] == 1 and record.value["published"] is True
    # Validators wait for the statement records they cover.
    assert store.unsynced_validators(["mod"]) == []
    store.mark_statements_synced([record])
    (validators,) = store.unsynced_validators(["mod"])
    assert validators.value["etag"] == '"v1"'
    store.mark_validators_synced([validators])
    assert store.unsynced_statements(["mod"], 10) == store.unsynced_validators(["mod"]) == []

    # Restored into an empty store: it knows the statement, the source and its validators.
    other = StateStore(tmp_path / "b.db")
    other.open()
    other.restore([record, validators])
    assert other.known("mod", ["e1"])["e1"].statement_id == "mod-1"
    assert other.has_seen("mod") and other.validators("mod").etag == '"v1"'
    # An older record never replaces a newer version.
    older = StateRecord("mod", "e1", {**record.value, "version": 0, "content_hash": "old"})
    other.restore([older])
    assert other.known("mod", ["e1"])["e1"].content_hash == record.value["content_hash"]
    store.close()
    other.close()


def statement_row(source_id: str, n: int) -> NewStatementRow:
    return NewStatementRow(
        statement_id=f"{source_id}-{n}",
        source_id=source_id,
        entry_key=f"e{n}",
        url=f"https://x.example/{n}",
        content_hash="sha256:" + "1" * 64,
        version=1,
        detected_at=0.0,
        event_id=f"event-{n}",
        topic="statements",
        key=b"k",
        value=b"{}",
        headers=(),
        data={"statement_id": f"{source_id}-{n}", "text": "t"},
        url_keys=(f"x.example/{n}",),
    )


# -- against the broker ----------------------------------------------------------------


class Instance:
    """A coordinator with its own store, recording what it is told to poll."""

    def __init__(self, tmp_path: Path, name: str, config: CoordinationConfig, bootstrap: str,
                 sources: list[Source]) -> None:
        self.store = StateStore(tmp_path / f"{name}.db")
        self.store.open()
        self.polling: set[str] = set()
        self.coordinator = Coordinator(
            config,
            KafkaConfig(bootstrap_servers=bootstrap, enable_idempotence=False, partitions=1),
            bootstrap_servers=bootstrap,
            sources=sources,
            store=self.store,
            on_assigned=self._assigned,
            on_revoked=self._revoked,
        )

    async def _assigned(self, ids: frozenset[str]) -> None:
        self.polling |= ids

    async def _revoked(self, ids: frozenset[str]) -> None:
        self.polling -= ids


@pytest.mark.integration
@pytest.mark.slow
async def test_instances_split_the_shards_and_take_over_and_restore(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    sources = [source(n) for n in range(12)]
    config = CoordinationConfig(
        group_id=f"test-{uuid.uuid4().hex[:8]}", shards=6, session_timeout=6.0,
        heartbeat_interval=1.0,
    )
    a = Instance(tmp_path, "a", config, kafka_bootstrap, sources)
    b = Instance(tmp_path, "b", config, kafka_bootstrap, sources)
    await a.coordinator.start()
    await wait_until(lambda: len(a.polling) == 12, timeout=30)
    # A writes what it knows: one acknowledged statement of a source it polls.
    a.store.record_statement(statement_row("s3", 1))
    a.store.outbox_acked(a.store.outbox_batch(10))
    assert await a.coordinator.write_out(["s3"]) == 1
    await b.coordinator.start()
    # The group splits the shards: every source polled by exactly one instance.
    await wait_until(lambda: a.polling and b.polling and len(a.polling | b.polling) == 12,
                     timeout=40)
    assert not a.polling & b.polling
    await a.coordinator.stop()
    await wait_until(lambda: len(b.polling) == 12, timeout=40)
    # B restored s3's state from the topic: it will not publish that statement again.
    assert b.store.known("s3", ["e1"])["e1"].statement_id == "s3-1"
    await b.coordinator.stop()
    assert b.polling == set()
    for instance in (a, b):
        instance.store.close()


@pytest.mark.integration
async def test_a_shard_count_that_does_not_match_the_topic_is_refused(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    from monitor.coordination import CoordinationError

    group = f"test-{uuid.uuid4().hex[:8]}"
    first = Instance(tmp_path, "a", CoordinationConfig(group_id=group, shards=2), kafka_bootstrap,
                     [source(1)])
    await first.coordinator._ensure_topics()
    second = Instance(tmp_path, "b", CoordinationConfig(group_id=group, shards=3),
                      kafka_bootstrap, [source(1)])
    with pytest.raises(CoordinationError, match=r"has 2 partitions but coordination\.shards is 3"):
        await asyncio.wait_for(second.coordinator._ensure_topics(), 30)


def test_check_shows_the_coordination_and_refuses_a_bad_one(tmp_path: Path) -> None:
    from tests.test_config import run_cli

    path = tmp_path / "config.yaml"
    path.write_text(
        "coordination: {group_id: mon, shards: 8}\n"
        "sources:\n"
        "  - {id: a, url: 'https://a.example/feed'}\n"
        "  - {id: b, url: 'https://www.a.example/other'}\n"
    )
    good = run_cli("check", "--config", str(path))
    assert good.returncode == 0, good.stderr
    assert "coordination: group mon, 8 shards (1 with sources), topics mon.control and " \
        "mon.state" in good.stdout
    path.write_text("coordination: {group_id: mon, session_timeout: 3s}\n")
    bad = run_cli("check", "--config", str(path))
    assert bad.returncode == 2
    assert "coordination: heartbeat_interval: must be at most a third of session_timeout" in (
        bad.stdout + bad.stderr
    )


async def test_the_write_out_scans_the_store_only_after_it_changed() -> None:
    class CountingStore:
        writes = 0
        scans = 0

        def unsynced_statements(self, source_ids: object, limit: int) -> list[StateRecord]:
            self.scans += 1
            return []

        def unsynced_validators(self, source_ids: object) -> list[StateRecord]:
            return []

    async def nothing(ids: frozenset[str]) -> None:
        return None

    store = CountingStore()
    coordinator = Coordinator(
        CoordinationConfig(group_id="g"),
        KafkaConfig(),
        bootstrap_servers="127.0.0.1:1",
        sources=[source(1)],
        store=store,  # type: ignore[arg-type]
        on_assigned=nothing,
        on_revoked=nothing,
    )
    coordinator.FLUSH_INTERVAL = 0.01
    coordinator._owned = frozenset({"s1"})
    coordinator._producer = object()  # type: ignore[assignment]  # never used: nothing to send
    loop = asyncio.create_task(coordinator._write_out_loop())
    await asyncio.sleep(0.2)
    assert store.scans == 1  # once at the start, then nothing changed
    store.writes += 1
    await asyncio.sleep(0.2)
    assert store.scans == 2
    loop.cancel()

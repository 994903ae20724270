"""The records of the coordination state topic, and their encoding.

Shared by the state store (which produces and restores them) and the
coordinator (which writes them to Kafka and reads them back); see
monitor/coordination.py for what the topic is for.

Keys are what compaction keeps the last value of:

    b"v\x00" + source_id                        a source's HTTP validators
    b"s\x00" + source_id + b"\x00" + entry_key   one entry's statement record

Values are JSON objects. A decoder that meets a key kind it does not know
skips the record, so a later version can add kinds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "MAX_STATE_VALUE_BYTES",
    "StateRecord",
    "StateSync",
    "decode_state_record",
    "encode_state_record",
]

# Kafka's default max.message.bytes is 1 MB: a statement record larger than this
# keeps everything but the last published data (re-checks of it then wait for the
# next version), rather than fail the hand-over.
MAX_STATE_VALUE_BYTES = 900_000
_VALIDATORS = b"v"
_STATEMENT = b"s"
_SEP = b"\x00"


@dataclass(frozen=True, slots=True)
class StateRecord:
    """One record of the state topic: a source's validators, or one entry's statement.

    `entry_key` is None for validators. `value` is the JSON-ready payload.
    """

    source_id: str
    entry_key: str | None
    value: dict[str, Any] = field(default_factory=dict)

    @property
    def is_validators(self) -> bool:
        return self.entry_key is None


def encode_state_record(record: StateRecord) -> tuple[bytes, bytes]:
    """(key, value) of a state record; the key is what compaction keeps the last of."""
    source = record.source_id.encode("utf-8")
    if record.entry_key is None:
        key = _VALIDATORS + _SEP + source
    else:
        key = _STATEMENT + _SEP + source + _SEP + record.entry_key.encode("utf-8")
    value = json.dumps(record.value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(value) > MAX_STATE_VALUE_BYTES and "data" in record.value:
        trimmed = {k: v for k, v in record.value.items() if k != "data"}
        value = json.dumps(trimmed, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return key, value


def decode_state_record(key: bytes, value: bytes | None) -> StateRecord | None:
    """The record, or None for a tombstone or a record this version does not know."""
    if value is None:
        return None
    kind, _, rest = key.partition(_SEP)
    try:
        payload = json.loads(value)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    if kind == _VALIDATORS:
        return StateRecord(rest.decode("utf-8"), None, payload)
    if kind == _STATEMENT and _SEP in rest:
        source, _, entry = rest.partition(_SEP)
        return StateRecord(source.decode("utf-8"), entry.decode("utf-8"), payload)
    return None


class StateSync(Protocol):
    """What the coordinator asks of the state store (`StateStore` implements it)."""

    writes: int  # committed write transactions so far: nothing is unsynced while it stays

    def unsynced_statements(self, source_ids: Sequence[str], limit: int) -> list[StateRecord]:
        """Acknowledged entries of these sources the topic lacks, at most `limit`."""
        ...

    def mark_statements_synced(self, records: Sequence[StateRecord]) -> None: ...

    def unsynced_validators(self, source_ids: Sequence[str]) -> list[StateRecord]:
        """Validators the topic lacks, of sources with nothing left to write first."""
        ...

    def mark_validators_synced(self, records: Sequence[StateRecord]) -> None: ...

    def restore(self, records: Sequence[StateRecord]) -> None:
        """Apply records read back from the topic."""
        ...

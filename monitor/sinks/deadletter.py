"""Records the broker refuses for good, and the dead-letter records that replace them.

A produce error is either transient (the broker is away, a leader moves: the
relay retries with backoff, as long as it takes) or permanent for that one
record (too large, invalid, not authorized: no retry will ever succeed). This
module tells the two apart, with a reason from a bounded set, and builds the
record sent instead to the dead-letter topic `<topic>.dlq`:

- the same key and value, the original headers, and `dlq-reason`,
  `dlq-error`, `dlq-topic`, `dlq-event-id` and `dlq-statement-id` headers;
- when the value itself is what is too large, a small JSON stand-in
  (`{"event_id", "statement_id", "source_id", "topic", "reason", "bytes"}`)
  with a `dlq-value: omitted` header: the statement is still in the state store.
"""

from __future__ import annotations

import json

from aiokafka import errors as kafka_errors
from aiokafka.errors import (
    BrokerResponseError,
    ClusterAuthorizationFailedError,
    CorruptRecordException,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)

from monitor import metrics
from monitor.errors import RecordRejectedError
from monitor.state import OutboxRecord

__all__ = [
    "DLQ_SUFFIX",
    "REJECTION_REASONS",
    "InvalidRecordError",
    "dead_letter_record",
    "dead_letter_topic",
    "rejection",
]

DLQ_SUFFIX = ".dlq"
REJECTION_REASONS = ("too_large", "invalid_record", "unauthorized", "invalid_topic")
_MAX_ERROR_HEADER = 500  # characters of the error kept in the `dlq-error` header


class InvalidRecordError(BrokerResponseError):  # type: ignore[misc]  # aiokafka is untyped
    """INVALID_RECORD (87, KIP-467): the broker validated the record and refused it,
    as a schema-validating broker does.

    aiokafka 0.14 predates the code and reports it as a bare `UnknownError`, which
    says nothing; registered below so that such a record is told apart.
    """

    errno = 87
    message = "INVALID_RECORD"
    description = "This record has failed the validation on broker and hence be rejected."
    retriable = False


kafka_errors.kafka_errors.setdefault(InvalidRecordError.errno, InvalidRecordError)

_PERMANENT: tuple[tuple[type[KafkaError], str], ...] = (
    (MessageSizeTooLargeError, "too_large"),
    (RecordListTooLargeError, "too_large"),
    (RecordTooLargeError, "too_large"),
    (InvalidRecordError, "invalid_record"),
    (CorruptRecordException, "invalid_record"),
    (TopicAuthorizationFailedError, "unauthorized"),
    (ClusterAuthorizationFailedError, "unauthorized"),
    (InvalidTopicError, "invalid_topic"),
)


def rejection(exc: BaseException) -> RecordRejectedError | None:
    """The permanent refusal `exc` is, or None if a retry may succeed."""
    for kind, reason in _PERMANENT:
        if isinstance(exc, kind):
            return RecordRejectedError(reason, f"the record was refused for good: {_say(exc)}")
    return None


def _say(exc: BaseException) -> str:
    """aiokafka's text of the error, with the broker's name for its code."""
    text = str(exc)
    name = getattr(exc, "message", None)
    if isinstance(exc, BrokerResponseError) and isinstance(name, str) and name not in text:
        text = f"{text} ({name})"
    return text


def dead_letter_topic(topic: str) -> str:
    """Where the events of `topic` that the broker refused go."""
    return topic + DLQ_SUFFIX


def dead_letter_record(
    record: OutboxRecord, error: RecordRejectedError, *, omit_value: bool = False
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """(value, headers) of the dead-letter record of `record`; its key stays the same."""
    headers = [
        *record.headers,
        ("dlq-reason", error.reason.encode()),
        ("dlq-error", str(error)[:_MAX_ERROR_HEADER].encode("utf-8", "replace")),
        ("dlq-topic", record.topic.encode("utf-8")),
        ("dlq-event-id", record.event_id.encode("utf-8")),
        ("dlq-statement-id", record.statement_id.encode("utf-8")),
    ]
    if not omit_value:
        return record.value, headers
    stand_in = {
        "event_id": record.event_id,
        "statement_id": record.statement_id,
        "source_id": record.source_id,
        "topic": record.topic,
        "reason": error.reason,
        "bytes": len(record.value),
    }
    headers = [(name, value) for name, value in headers if name != "content-type"]
    headers.append(("dlq-value", b"omitted"))
    return json.dumps(stand_in).encode(), headers


# Every reason's series exists from the start at 0: Prometheus's increase() does
# not count a counter's first sample, so a series born at 1 would hide the first
# dead-lettered event from the alert.
for _reason in REJECTION_REASONS:
    metrics.EVENTS_DEAD_LETTERED.labels(reason=_reason)
    metrics.EVENTS_DROPPED.labels(reason=_reason)

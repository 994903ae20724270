"""The sink interface: the one seam between the outbox relay and a broker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from monitor.errors import RecordRejectedError
from monitor.state import OutboxRecord

__all__ = ["Sink"]


class Sink(Protocol):
    """Publishes encoded events and says, per record, whether the broker took it."""

    async def start(self) -> None:
        """Connect; raise `SinkError` if the broker cannot be reached."""

    async def send(self, records: Sequence[OutboxRecord]) -> list[BaseException | None]:
        """Send in order; one outcome per record: None once acknowledged, else the error.

        A `RecordRejectedError` outcome means that record will never be accepted.
        """
        ...

    async def dead_letter(self, record: OutboxRecord, error: RecordRejectedError) -> None:
        """Send a record the broker refused for good to its dead-letter topic.

        Raises `RecordRejectedError` if that is refused too, `SinkError` if the
        broker did not answer.
        """

    async def check(self) -> None:
        """Raise `SinkError` unless the broker answers now."""

    async def stop(self) -> None:
        """Flush what is in flight and disconnect."""

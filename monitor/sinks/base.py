"""The sink interface: the one seam between the outbox relay and a broker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from monitor.state import OutboxRecord

__all__ = ["Sink"]


class Sink(Protocol):
    """Publishes encoded events and says, per record, whether the broker took it."""

    async def start(self) -> None:
        """Connect; raise `SinkError` if the broker cannot be reached."""

    async def send(self, records: Sequence[OutboxRecord]) -> list[BaseException | None]:
        """Send in order; one outcome per record: None once acknowledged, else the error."""
        ...

    async def check(self) -> None:
        """Raise `SinkError` unless the broker answers now."""

    async def stop(self) -> None:
        """Flush what is in flight and disconnect."""

"""The error tree of statement-monitor.

Every error says whether retrying may help, so callers decide in one place:

    MonitorError
    ├── ConfigError            the config is invalid (not retriable; fix the file)
    ├── StateError             the state store cannot be opened or written
    ├── ExtractionError        a page could not be turned into a statement
    └── SinkError              the broker did not take an event
        ├── BrokerRefusedError the broker refused a producer feature (not retriable)
        └── RecordRejectedError the broker refused one record for good (dead-lettered)
"""

from __future__ import annotations

__all__ = [
    "BrokerRefusedError",
    "ConfigError",
    "ExtractionError",
    "MonitorError",
    "RecordRejectedError",
    "SinkError",
    "StateError",
]


class MonitorError(Exception):
    """Base of every error this package raises on purpose."""

    retriable: bool = False


class ConfigError(MonitorError):
    """The configuration is invalid. `problems` holds one `path: message` per error."""

    def __init__(self, problems: list[str], *, origin: str | None = None) -> None:
        self.problems = problems
        self.origin = origin
        where = f" in {origin}" if origin else ""
        super().__init__(f"{len(problems)} configuration error(s){where}:\n" + "\n".join(problems))


class StateError(MonitorError):
    """The SQLite state store failed."""


class ExtractionError(MonitorError):
    """A statement page could not be extracted. `reason` is a bounded metric label."""

    def __init__(self, reason: str, message: str, *, retriable: bool = False) -> None:
        self.reason = reason
        self.retriable = retriable
        super().__init__(message)

    @property
    def kind(self) -> str:
        """The `kind` label of its failure count: "internal" for a bug in extraction
        (reason `internal`), "page" for the page's or the network's fault."""
        return "internal" if self.reason == "internal" else "page"

    def __reduce__(self) -> tuple[object, ...]:
        # Raised inside pool workers: pickling must keep `reason` and `retriable`,
        # or the parent fails to rebuild it and reports a broken pool instead.
        return (type(self), (self.reason, str(self)), {"retriable": self.retriable})


class SinkError(MonitorError):
    """The broker did not acknowledge an event. Retried by the outbox relay."""

    retriable = True


class BrokerRefusedError(SinkError):
    """The broker refused something no retry will fix, such as idempotent producers."""

    retriable = False


class RecordRejectedError(SinkError):
    """The broker (or the producer) refused one record for good: too large, invalid, not
    authorized. Retrying cannot help: the relay dead-letters the record and moves on.

    `reason` is one of a bounded set, fit for a metric label.
    """

    retriable = False

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

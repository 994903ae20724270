"""Isolation of extraction steps: a bug in one step never costs more than that step.

Extraction meets pages nobody here wrote, and its own code has bugs. This
module owns how such an internal error is carried, so that every caller (the
service's pool workers, `monitor extract`) drops exactly what failed:

* `run_step(step, fn, ...)` runs one enrichment step (quotes, watchlists,
  figures) and returns its result, or a `StepFailure` with the traceback
  formatted where it happened (a traceback does not cross the process pool).
* `InternalExtractionError` is the `ExtractionError` (reason `internal`) that
  `extract_article` is turned into when it raises anything but an
  `ExtractionError`: the statement then falls back to the feed's content as
  for a broken page, and the traceback travels with it.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from monitor.errors import ExtractionError

__all__ = ["INTERNAL", "InternalExtractionError", "StepFailure", "internal_error", "run_step"]

INTERNAL = "internal"
_MAX_TRACEBACK_CHARS = 8_000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StepFailure:
    """A step that raised: its name (a bounded label), the error and its traceback."""

    step: str
    error: str
    traceback: str


class InternalExtractionError(ExtractionError):
    """A bug in extraction (not in the page): reason `internal`, never retriable."""

    def __init__(self, reason: str, message: str, *, traceback: str = "") -> None:
        super().__init__(reason, message, retriable=False)
        self.traceback = traceback

    def __reduce__(self) -> tuple[object, ...]:
        # Raised in a pool worker: the traceback must survive pickling.
        return (type(self), (self.reason, str(self)), {"traceback": self.traceback})


def _formatted(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    return text[-_MAX_TRACEBACK_CHARS:]


def internal_error(exc: Exception) -> InternalExtractionError:
    """`exc`, raised by extraction code, as the `ExtractionError` callers handle."""
    return InternalExtractionError(INTERNAL, f"internal error: {exc!r}", traceback=_formatted(exc))


def run_step(step: str, fn: Callable[[], T]) -> tuple[T | None, StepFailure | None]:
    """`fn()`, or None and why it failed: the step is dropped, the rest goes on."""
    try:
        return fn(), None
    except Exception as exc:  # a bug in one step must not cost the statement
        return None, StepFailure(step, repr(exc), _formatted(exc))

"""The pieces every config section is built of: the strict base model, durations, names.

`Strict` (unknown keys are errors, values frozen), `parse_duration` and the
`Duration` type (`90s`, `5m`, `1h`), the checks of Kafka topic names and of
control characters in URLs, the pattern of ids that become metric labels, and
the bounds (issue 13) on what a config may ask of the machine and of the sites
it polls.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

__all__ = [
    "MAX_CONCURRENT_POLLS",
    "MAX_CONNECTIONS",
    "MIN_INTERVAL",
    "MIN_WORKER_MEMORY_MB",
    "WORKERS_PER_CPU",
    "Duration",
    "Strict",
    "check_http_url",
    "check_label",
    "check_topic",
    "parse_duration",
    "refuse_control_characters",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SOURCE_ID = re.compile(r"^[a-z0-9_-]+$")
# Issue 13: bounds on what a config may ask of the machine and of the sites it polls.
MIN_INTERVAL = 1.0  # seconds; lower only with allow_fast_polling: true
WORKERS_PER_CPU = 4
MIN_WORKER_MEMORY_MB = 512
MAX_CONNECTIONS = 256  # per host
MAX_CONCURRENT_POLLS = 10_000
# C0 and C1 control characters and DEL: never part of a URL, and a CR or LF in one
# is a request-splitting attempt rather than a typo.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def parse_duration(value: Any) -> float:
    """Seconds from a number (`1`, `0.5`) or a duration string (`90s`, `5m`, `1h`, `250ms`)."""
    if isinstance(value, bool):
        raise PydanticCustomError("duration", "must be a positive duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        unit = (match.group(2) or "s").lower()
        seconds = float(match.group(1)) * _UNIT_SECONDS[unit]
    else:
        raise PydanticCustomError(
            "duration",
            "must be a positive duration: a number of seconds or a string like 90s, 5m, 1h",
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise PydanticCustomError("duration", "must be a positive duration")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def refuse_control_characters(value: str) -> None:
    if found := _CONTROL_CHARS.search(value):
        raise PydanticCustomError(
            "url_control_character",
            "must not contain control characters (CR, LF, NUL, ...), found {char} at "
            "position {position} of {value}",
            {"char": repr(found.group()), "position": found.start(), "value": repr(value)},
        )


def check_topic(value: str) -> str:
    if not _TOPIC.match(value) or value in {".", ".."}:
        raise PydanticCustomError(
            "topic",
            "must be a legal Kafka topic name (letters, digits, '.', '_', '-'; at most 249)",
        )
    return value


def check_http_url(value: str) -> str:
    """`value`, an absolute http(s) URL without control characters; else the error."""
    refuse_control_characters(value)
    if not re.match(r"^https?://[^/\s]+", value, re.IGNORECASE):
        raise PydanticCustomError(
            "url",
            "must be an absolute http:// or https:// URL, got {value}",
            {"value": repr(value)},
        )
    return value


def check_label(value: str, kind: str) -> str:
    """`value`, an id fit to be a metric label; else the error of type `kind`."""
    if not _SOURCE_ID.match(value):
        raise PydanticCustomError(
            kind,
            "must match [a-z0-9_-]+ (it becomes a metric label), got {value}",
            {"value": repr(value)},
        )
    return value

"""structlog configuration: JSON lines in production, pretty output on a TTY.

Library code gets its logger with `structlog.get_logger(__name__)` and binds
`source_id` and `url`; it never prints.

Secrets never reach a log line. The composition root registers every secret
value of the config (`configure_logging(..., secrets=secret_values(config))`,
or `register_secret(value)`), and from then on each rendered line, structlog's
and the standard library's (aiokafka logs through it), shows "***" wherever a
registered value would appear: in any field, in exception text, and in the
escaped forms a JSON renderer or `repr()` gives it. With no secret registered
the redaction costs one global read per line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TextIO

import structlog
from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = [
    "REDACTED",
    "LogFormat",
    "configure_logging",
    "forget_secrets",
    "redact",
    "register_secret",
    "secret_values",
]

LogFormat = Literal["auto", "json", "console"]

REDACTED = "***"

# Every form of every registered secret, and one pattern that finds any of them.
# Replaced, never mutated, so a reader on another thread sees either the old or
# the new pattern, both valid.
_forms: frozenset[str] = frozenset()
_pattern: re.Pattern[str] | None = None


def configure_logging(
    level: str = "info",
    fmt: LogFormat = "auto",
    secrets: Iterable[str | SecretStr | None] = (),
    *,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the standard library's root logger once, at start-up.

    `secrets` are registered with `register_secret`; `stream` (default stderr) is
    where structlog writes, a seam for tests.
    """
    for secret in secrets:
        register_secret(secret)
    out = sys.stderr if stream is None else stream
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    numeric_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
            _redact_rendered,  # last: it sees the whole line, whatever the renderer did
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=True,
    )
    # Libraries (aiokafka, trafilatura) log through the standard library: keep
    # their warnings, drop their chatter.
    logging.basicConfig(level=max(numeric_level, logging.WARNING), stream=sys.stderr)
    _redact_standard_library_handlers()
    for noisy in ("trafilatura", "htmldate", "courlan", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # At DEBUG aiokafka.conn logs every request it sends, SASL ones included: a
    # PLAIN password in clear. Never let it, whatever the level asked for.
    logging.getLogger("aiokafka.conn").setLevel(max(numeric_level, logging.INFO))
    # During a broker outage aiokafka logs an error for every reconnect attempt,
    # several a second. The outbox relay logs each change of the broker's state
    # once, with the reason, and /readyz and statement_monitor_broker_up show it;
    # below debug, keep only aiokafka's critical messages. (At debug, everything: set
    # both ways, since logging may be configured again in one process.)
    logging.getLogger("aiokafka").setLevel(
        logging.CRITICAL if numeric_level > logging.DEBUG else logging.NOTSET
    )


def register_secret(value: str | SecretStr | None) -> None:
    """Never log `value`: every later log line shows "***" in its place.

    Empty values and None are ignored. Registering twice is harmless.
    """
    global _forms, _pattern
    plain = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not plain:
        return
    forms = _forms | _escaped_forms(plain)
    if forms == _forms:
        return
    # Longest first, so a secret that contains another is replaced whole.
    ordered = sorted(forms, key=len, reverse=True)
    _forms, _pattern = forms, re.compile("|".join(re.escape(form) for form in ordered))


def forget_secrets() -> None:
    """Forget every registered secret (for tests)."""
    global _forms, _pattern
    _forms, _pattern = frozenset(), None


def redact(text: str) -> str:
    """`text` with every registered secret replaced by "***"."""
    pattern = _pattern
    return text if pattern is None else pattern.sub(REDACTED, text)


def secret_values(model: BaseModel) -> list[str]:
    """The plain values of every `SecretStr` and `SecretBytes` field in `model`, nested too."""
    found: list[str] = []
    _collect_secrets(model, found)
    return found


def _collect_secrets(value: object, found: list[str]) -> None:
    if isinstance(value, SecretStr):
        found.append(value.get_secret_value())
    elif isinstance(value, SecretBytes):
        found.append(value.get_secret_value().decode("utf-8", "replace"))
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _collect_secrets(getattr(value, name), found)
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect_secrets(item, found)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _collect_secrets(item, found)


def _escaped_forms(secret: str) -> frozenset[str]:
    """`secret` as a rendered line may hold it: as is, as repr(), bytes or a URL show it,
    and each of those escaped as JSONRenderer escapes strings."""
    shown = {
        secret,
        repr(secret)[1:-1],  # an exception message or a console value that went through repr()
        repr(secret.encode())[2:-1],  # inside bytes, as aiokafka logs a SASL PLAIN message
        urllib.parse.quote(secret, safe=""),  # inside a URL
    }
    forms = shown | {json.dumps(form)[1:-1] for form in shown}
    return frozenset(form for form in forms if form)


def _redact_rendered(_logger: object, _method: str, rendered: Any) -> Any:
    """The last processor: redact the rendered line (str or bytes)."""
    pattern = _pattern
    if pattern is None:
        return rendered
    if isinstance(rendered, str):
        return pattern.sub(REDACTED, rendered)
    if isinstance(rendered, bytes | bytearray):
        return pattern.sub(REDACTED, bytes(rendered).decode("utf-8", "replace")).encode()
    return rendered


class _RedactingFilter(logging.Filter):
    """A handler filter that redacts a standard library record's message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is None:
            return True
        try:
            record.msg, record.args = redact(record.getMessage()), None
        except (TypeError, ValueError):
            return True  # a malformed call: let the handler report it as usual
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_REDACTING_FILTER = _RedactingFilter()


def _redact_standard_library_handlers() -> None:
    """Put the redacting filter on every handler of the root logger, once."""
    for handler in logging.getLogger().handlers:
        if _REDACTING_FILTER not in handler.filters:
            handler.addFilter(_REDACTING_FILTER)

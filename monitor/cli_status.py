"""`monitor status`: a running service's `GET /status`, as a table a person reads.

The service is found on the metrics port of the config (`metrics.host`, a
wildcard host meaning this machine), or at `--url`. Rows come failing first:
failing, then never reached, then healthy, each by id.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from monitor.config import Config
from monitor.errors import MonitorError

__all__ = ["fetch_status", "format_status", "status_url"]

_ORDER = {"failing": 0, "never_reached": 1, "healthy": 2}
_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}
_COLUMNS = ("SOURCE", "KIND", "STATE", "LAST POLL", "OUTCOME", "ERRORS", "LAST SUCCESS",
            "NEXT POLL", "STATEMENTS", "LAST STATEMENT")
_TITLE_WIDTH = 50


def status_url(config: Config) -> str:
    """`http://HOST:PORT/status` of the service that runs this config."""
    if not config.metrics.enabled:
        raise MonitorError("metrics.enabled is false: the service serves no /status (use --url)")
    if not config.metrics.port:
        raise MonitorError("metrics.port is 0 (a random port): give the service's --url")
    host = config.metrics.host
    host = "127.0.0.1" if host in _WILDCARDS else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{config.metrics.port}/status"


def fetch_status(url: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """The JSON at `url`; MonitorError when the service does not answer it."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            document = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MonitorError(f"no status at {url} (is `monitor run` running?): {reason}") from exc
    if not isinstance(document, dict) or "sources" not in document:
        raise MonitorError(f"{url} did not answer a statement-monitor status")
    return document


def _short(when: object) -> str:
    """`2025-03-14T09:30:00Z` as `03-14 09:30:00`: the year and zone are noise in a table."""
    if not isinstance(when, str) or len(when) < 19:
        return "-"
    return f"{when[5:10]} {when[11:19]}"


def _row(source: Mapping[str, Any]) -> list[str]:
    last = source.get("last_statement") or {}
    title = str(last.get("title") or "") if last else ""
    if len(title) > _TITLE_WIDTH:
        title = title[: _TITLE_WIDTH - 1] + "…"
    return [
        str(source.get("id", "?")),
        str(source.get("kind") or "-"),
        str(source.get("state", "?")).replace("_", " "),
        _short(source.get("last_poll")),
        str(source.get("last_outcome") or "-"),
        str(source.get("consecutive_errors", 0)),
        _short(source.get("last_success")),
        _short(source.get("next_poll")),
        str(source.get("statements_total", 0)),
        f"{_short(last.get('time'))} {title}" if last else "-",
    ]


def _sorted(sources: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(sources, key=lambda s: (_ORDER.get(str(s.get("state")), 3), str(s.get("id"))))


def format_status(document: Mapping[str, Any]) -> str:
    """A totals line, then one row per source, failing first (times in UTC)."""
    totals = document.get("totals") or {}
    head = (
        f"{totals.get('sources', 0)} sources: {totals.get('healthy', 0)} healthy, "
        f"{totals.get('failing', 0)} failing, {totals.get('never_reached', 0)} never reached"
        f"  (as of {document.get('time', '?')}, times in UTC)"
    )
    rows = [list(_COLUMNS), *(_row(s) for s in _sorted(document.get("sources") or ()))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    return "\n".join([head, "", *lines])

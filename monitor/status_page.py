"""The status page at `/` on the metrics port: `GET /status` as one HTML page.

Server-rendered from the same snapshot as `/status`: a table of the sources
(failing first) in plain colours, then the last statements (title, source,
time, quotes). No scripts, no external assets (the style is inline), so it
works without JavaScript and offline. Every value is escaped with
`html.escape`: titles and error kinds come from the web.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render_status_page"]

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f4f4f4; }
tr.healthy td.state { background: #dff0d8; color: #2b542c; }
tr.failing td.state { background: #f2dede; color: #843534; }
tr.never_reached td.state { background: #fcf8e3; color: #8a6d3b; }
.totals span { margin-right: 1.2em; }
td.num { text-align: right; }
"""

_COLUMNS = (
    "source", "kind", "state", "last poll", "outcome", "last success", "errors in a row",
    "next poll", "statements", "last statement",
)


def _e(value: object) -> str:
    """Escaped text of any value; `—` for none."""
    return "—" if value is None or value == "" else html.escape(str(value), quote=True)


def _source_row(source: Mapping[str, Any]) -> str:
    last = source.get("last_statement") or {}
    last_text = f"{_e(last.get('title'))} ({_e(last.get('time'))})" if last else "—"
    state = str(source.get("state", ""))
    cells = (
        f'<td title="{_e(source.get("name"))}">{_e(source.get("id"))}</td>',
        f"<td>{_e(source.get('kind'))}</td>",
        f'<td class="state">{_e(state.replace("_", " "))}</td>',
        f"<td>{_e(source.get('last_poll'))}</td>",
        f"<td>{_e(source.get('last_outcome'))}</td>",
        f"<td>{_e(source.get('last_success'))}</td>",
        f'<td class="num">{_e(source.get("consecutive_errors"))}</td>',
        f"<td>{_e(source.get('next_poll'))}</td>",
        f'<td class="num">{_e(source.get("statements_total"))}</td>',
        f"<td>{last_text}</td>",
    )
    return f'<tr class="{_e(state)}">' + "".join(cells) + "</tr>"


def _statement_row(statement: Mapping[str, Any]) -> str:
    return (
        "<tr>"
        f"<td>{_e(statement.get('title'))}</td>"
        f"<td>{_e(statement.get('source_id'))}</td>"
        f"<td>{_e(statement.get('type'))}</td>"
        f"<td>{_e(statement.get('time'))}</td>"
        f'<td class="num">{_e(statement.get("quotes"))}</td>'
        "</tr>"
    )


def _table(table_id: str, headers: Sequence[str], rows: Sequence[str], empty: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(rows) or f'<tr><td colspan="{len(headers)}">{_e(empty)}</td></tr>'
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_status_page(snapshot: Mapping[str, Any]) -> str:
    """The whole page, from a `StatusBoard.snapshot()`."""
    totals = snapshot.get("totals") or {}
    summary = "".join(
        f'<span class="{key}">{_e(label)}: <b>{_e(totals.get(key, 0))}</b></span>'
        for key, label in (("healthy", "healthy"), ("failing", "failing"),
                           ("never_reached", "never reached"), ("sources", "sources"))
    )
    sources = _table("sources", _COLUMNS, [_source_row(s) for s in snapshot.get("sources", ())],
                     "no sources on this instance")
    recent = _table(
        "statements", ("title", "source", "type", "time", "quotes"),
        [_statement_row(s) for s in snapshot.get("recent_statements", ())],
        "no statement published since the service started",
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>statement-monitor status</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>statement-monitor status</h1><p class=\"totals\">{summary}</p>"
        f"<p>as of {_e(snapshot.get('time'))} · JSON at <a href=\"status\">/status</a>,"
        " metrics at <a href=\"metrics\">/metrics</a></p>"
        f"<h2>Sources</h2>{sources}<h2>Last statements</h2>{recent}"
        "</body></html>\n"
    )

"""The command line: `monitor run | check | extract | tail | status`.

Exit codes: 0 success, 1 a runtime failure (an extract input failed, the
broker cannot be reached by `tail`), 2 an invalid config or invalid usage.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import structlog

from monitor import __version__
from monitor.config import Config, default_config_path, load_config
from monitor.errors import ConfigError, MonitorError
from monitor.log import configure_logging, secret_values
from monitor.pool import WORKER_PRELOAD, start_forkserver

if TYPE_CHECKING:
    from monitor.consumer import Statement

__all__ = ["main"]

log = structlog.get_logger(__name__)

EXIT_INVALID = 2

_config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file. Default: $MONITOR_CONFIG, else ./config.yaml.",
)


def _load(config_path: Path | None) -> Config:
    path = config_path or default_config_path()
    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(f"invalid config {path}:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(EXIT_INVALID)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="statement-monitor")
def main() -> None:
    """statement-monitor: official statements, as CloudEvents on Kafka."""


@main.command()
@_config_option
def run(config_path: Path | None) -> None:
    """Poll the sources and publish statements until SIGTERM or SIGINT."""
    start_forkserver(WORKER_PRELOAD)  # its imports run while this process does its own
    config = _load(config_path)
    configure_logging(config.log.level, config.log.format, secrets=secret_values(config))
    from monitor.app import run_service  # heavy imports only for the verbs that need them

    try:
        run_service(config)
    except MonitorError as exc:
        log.error("service_failed", error=str(exc))
        sys.exit(1)


@main.command()
@_config_option
@click.option(
    "--probe",
    is_flag=True,
    help="Also fetch each source once and print what was found; exit 1 if any failed.",
)
def check(config_path: Path | None, probe: bool) -> None:
    """Validate a config: print every error with its path; exit 0 if valid, 2 if not."""
    config = _load(config_path)
    topics = ", ".join(config.topics())
    click.echo(f"config OK: {len(config.sources)} sources, topics: {topics}")
    if config.coordination is not None:
        from monitor.coordination import ShardMap

        shards = ShardMap.of(config.resolved_sources(), config.coordination.shards)
        used = len(shards.by_shard)
        click.echo(
            f"coordination: group {config.coordination.group_id}, "
            f"{config.coordination.shards} shards ({used} with sources), topics "
            f"{config.coordination.control} and {config.coordination.state}"
        )
    if probe:
        configure_logging("error", config.log.format, secrets=secret_values(config))
        from monitor.probe import format_table
        from monitor.probe import probe as run_probe

        rows = asyncio.run(run_probe(config))
        click.echo(format_table(rows))
        sys.exit(0 if all(row.ok for row in rows) else 1)


@main.command()
@click.option(
    "--url", default=None, help="The page's URL, for file inputs (canonical and relative links)."
)
@click.option(
    "--timeout", default=30.0, show_default=True, help="Fetch timeout for URL inputs, seconds."
)
@_config_option
@click.option(
    "--source",
    "source_id",
    metavar="ID",
    default=None,
    help="Apply the extraction rules of this configured source (read from --config).",
)
@click.option("--content-selector", metavar="CSS", help="CSS selector of the statement body.")
@click.option("--title-selector", metavar="CSS", help="CSS selector of the statement's title.")
@click.option("--date-selector", metavar="CSS", help="CSS selector of the publication date.")
@click.option(
    "--date-format",
    metavar="FORMAT",
    help="strptime format of that date, e.g. '%d.%m.%Y'. Default: parse leniently.",
)
@click.option(
    "--remove-selector",
    "remove_selectors",
    metavar="CSS",
    multiple=True,
    help="CSS selector of elements to remove before extraction (repeatable).",
)
@click.option(
    "--render",
    type=click.Choice(["http", "browser"]),
    default="http",
    show_default=True,
    help="browser: load URL inputs in headless Chromium first (pages built by JavaScript).",
)
@click.argument("inputs", metavar="SOURCE...", nargs=-1, required=True)
def extract(
    url: str | None,
    timeout: float,
    config_path: Path | None,
    source_id: str | None,
    content_selector: str | None,
    title_selector: str | None,
    date_selector: str | None,
    date_format: str | None,
    remove_selectors: tuple[str, ...],
    render: str,
    inputs: tuple[str, ...],
) -> None:
    """Extract statements from files or http(s) URLs; one JSON object per line per SOURCE.

    The rule options (and --source) try extraction rules before they go into the
    config; each line then lists the rules that matched nothing in "rule_misses".
    """
    configure_logging("error", "json")
    from monitor.cli_extract import command_line_rules, extract_inputs, source_rules

    if config_path is not None and source_id is None:
        raise click.UsageError("--config is read only for the rules of --source ID")
    try:
        base = None if source_id is None else source_rules(_load(config_path), source_id)
        rules = command_line_rules(
            base,
            content_selector=content_selector,
            title_selector=title_selector,
            date_selector=date_selector,
            date_format=date_format,
            remove_selectors=remove_selectors,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    failures = asyncio.run(
        extract_inputs(
            inputs, url=url, timeout=timeout, out=sys.stdout, rules=rules, render=render
        )
    )
    sys.exit(1 if failures else 0)


@main.command()
@_config_option
@click.option(
    "--topic",
    "topics",
    multiple=True,
    help="Topic to follow (repeatable). Default: every statement topic of the config.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="ID",
    help="Only statements from this source, or also carried by it (repeatable).",
)
@click.option(
    "--watchlist",
    "watchlists",
    multiple=True,
    metavar="ID",
    help="Only statements that matched this watchlist (repeatable); follows its topic too.",
)
@click.option(
    "--since",
    default=None,
    metavar="WHEN",
    help="Start at this time: a duration back from now (30m, 2h, 1d) or an RFC 3339 time.",
)
@click.option(
    "--last",
    "last",
    default=10,
    show_default=True,
    metavar="N",
    type=click.IntRange(min=0),
    help="Start by printing the last N statements, then follow new ones.",
)
@click.option(
    "--from-beginning", is_flag=True, help="Print every retained statement, then follow."
)
@click.option("--json", "as_json", is_flag=True, help="Print each raw CloudEvent as one JSON line.")
def tail(
    config_path: Path | None,
    topics: tuple[str, ...],
    sources: tuple[str, ...],
    watchlists: tuple[str, ...],
    since: str | None,
    last: int,
    from_beginning: bool,
    as_json: bool,
) -> None:
    """Print the last N statements (--last, default 10), then follow new ones.

    Where it starts reading: the last N statements already on the topics (of
    those that pass --source and --watchlist); --from-beginning, every retained
    statement; --since, the first statement detected at or after that time.
    It waits for Kafka ("waiting for Kafka at ..."), and after a broker or
    service restart it reconnects and resumes where it was, without missing or
    repeating an event. Stop it with Ctrl-C.
    """
    start = _since_option(since, from_beginning)
    config = _load(config_path)
    _known_ids("--source", sources, [s.id for s in config.sources])
    _known_ids("--watchlist", watchlists, [w.id for w in config.watchlists])
    configure_logging("warning", config.log.format, secrets=secret_values(config))
    selection = TailFilter(sources=frozenset(sources), watchlists=frozenset(watchlists))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _tail(
                config,
                tail_topics(config, topics, watchlists),
                selection,
                last=None if from_beginning or start is not None else last,
                since=start,
                as_json=as_json,
            )
        )


def _known_ids(option: str, given: tuple[str, ...], configured: list[str]) -> None:
    """An id the config does not have is a usage error that lists the ones it has."""
    unknown = [value for value in given if value not in configured]
    if unknown:
        listed = ", ".join(sorted(configured)) or "none"
        raise click.BadParameter(
            f"{', '.join(map(repr, unknown))} is not configured; the ids in the config: {listed}",
            param_hint=option,
        )


@main.command()
@_config_option
@click.option("--url", default=None, help="The service's /status URL. Default: from the config.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON of /status as it is.")
def status(config_path: Path | None, url: str | None, as_json: bool) -> None:
    """Show a running service's sources as a table, failing first (its GET /status)."""
    from monitor.cli_status import fetch_status, format_status, status_url

    try:
        document = fetch_status(url or status_url(_load(config_path)))
    except MonitorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps(document, indent=2, ensure_ascii=False) if as_json
               else format_status(document))


def _since_option(value: str | None, from_beginning: bool) -> dt.datetime | None:
    if value is None:
        return None
    if from_beginning:
        raise click.UsageError("--since and --from-beginning are exclusive: give one")
    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


def parse_since(value: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """`--since`: a duration back from `now` (`90s`, `30m`, `2h`, `1d`) or an ISO 8601 time.

    A time without an offset is UTC. Raises ValueError for anything else.
    """
    from monitor.config import parse_duration

    with contextlib.suppress(ValueError):
        return (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=parse_duration(value))
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a duration (30m, 2h, 1d) nor an RFC 3339 time "
            "(2025-06-01T08:00:00Z)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def tail_topics(config: Config, topics: tuple[str, ...], watchlists: tuple[str, ...]) -> list[str]:
    """The `--topic`s, else every statement topic of the config and the watchlists' topics."""
    if topics:
        return list(topics)
    watched = {w.topic for w in config.watchlists if w.id in watchlists}
    return sorted({*config.topics(), *watched})


@dataclass(frozen=True, slots=True)
class TailFilter:
    """`--source` and `--watchlist`: which statements `tail` prints (empty: no condition)."""

    sources: frozenset[str] = frozenset()
    watchlists: frozenset[str] = frozenset()

    def __call__(self, statement: Statement) -> bool:
        if self.sources and not any(statement.carried_by(s) for s in self.sources):
            return False
        return not self.watchlists or bool(self.watchlists & statement.watchlists)


class _RecentIds:
    """The last event ids seen: an event on two topics (a watchlist hit) is printed once."""

    def __init__(self, size: int = 10_000) -> None:
        self._ids: set[str] = set()
        self._order: collections.deque[str] = collections.deque()
        self._size = size

    def add(self, event_id: str) -> bool:
        """Remember the id; False if it was seen already."""
        if event_id in self._ids:
            return False
        self._ids.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True


async def _tail(
    config: Config,
    topics: list[str],
    selection: TailFilter,
    *,
    last: int | None,
    since: dt.datetime | None,
    as_json: bool,
) -> None:
    """`last` None: print everything from the start (--from-beginning, --since)."""
    from monitor.consumer import parse_record
    from monitor.sinks.embedded import EmbeddedBroker
    from monitor.sinks.kafka import client_options
    from monitor.tail import TailReader

    bootstrap = (
        EmbeddedBroker().bootstrap_servers
        if config.kafka.embedded
        else config.kafka.bootstrap_servers
    )
    filtered = bool(selection.sources or selection.watchlists)
    reader = TailReader(
        topics,
        bootstrap_servers=bootstrap,
        notify=lambda message: click.echo(message, err=True),
        # With filters, look further back for N statements that pass them.
        backlog=0 if last is None else (max(last * 20, 1000) if filtered else last),
        from_beginning=last is None and since is None,
        since=since,
        kafka_options=client_options(config.kafka, bootstrap),
    )
    seen = _RecentIds()
    held: list[Statement] | None = None if last is None else []

    def show(statement: Statement) -> None:
        click.echo(
            json.dumps(statement.document, ensure_ascii=False)
            if as_json
            else format_event(statement.document, topic=statement.topic)
        )

    async for record in reader.records():
        if record is None:  # the backlog is in: its last N, oldest first, then live
            if held is not None and last:
                for statement in sorted(held, key=lambda s: s.detected_at)[-last:]:
                    show(statement)
            held = None
            continue
        found = parse_record(record)
        if found is None or (since is not None and found.detected_at < since):
            continue
        if not selection(found) or not seen.add(found.event_id):
            continue
        if held is not None:
            held.append(found)
        else:
            show(found)


def format_event(event: Mapping[str, Any], *, topic: str, lines: int = 4) -> str:
    """One readable block per statement: source, time, title, first lines."""
    data = event.get("data") or {}
    when = data.get("published_at") or event.get("time") or ""
    with_time = when
    with contextlib.suppress(ValueError, AttributeError):
        with_time = dt.datetime.fromisoformat(when.replace("Z", "+00:00")).strftime(
            "%Y-%m-%d %H:%M UTC"
        )
    paragraphs = [p for p in (data.get("text") or "").split("\n\n") if p.strip()]
    body = textwrap.fill(" ".join(paragraphs)[:600], width=88, max_lines=lines, placeholder=" …")
    header = f"── {data.get('source_name') or data.get('source_id')} · {with_time} · {topic}"
    version = data.get("version", 1)
    kind = str(event.get("type", "")).rsplit(".", 1)[-1]
    return "\n".join(
        part
        for part in (
            header,
            f"   {data.get('title') or '(no title)'}"
            + (f"  [v{version} {kind}]" if version != 1 else ""),
            textwrap.indent(body, "   ") if body else None,
            f"   {data.get('url') or event.get('subject') or ''}",
            "",
        )
        if part is not None
    )

"""The command line: `monitor run | check | extract | tail`.

Exit codes: 0 success, 1 a runtime failure (an extract input failed, the
broker cannot be reached by `tail`), 2 an invalid config or invalid usage.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import click
import structlog

from monitor import __version__
from monitor.config import Config, default_config_path, load_config
from monitor.errors import ConfigError, MonitorError
from monitor.log import configure_logging, secret_values

__all__ = ["main"]

log = structlog.get_logger(__name__)

EXIT_INVALID = 2

_config_option = click.option(
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
@click.argument("inputs", metavar="SOURCE...", nargs=-1, required=True)
def extract(url: str | None, timeout: float, inputs: tuple[str, ...]) -> None:
    """Extract statements from files or http(s) URLs; one JSON object per line per SOURCE."""
    configure_logging("error", "json")
    from monitor.cli_extract import extract_inputs

    failures = asyncio.run(extract_inputs(inputs, url=url, timeout=timeout, out=sys.stdout))
    sys.exit(1 if failures else 0)


@main.command()
@_config_option
@click.option(
    "--topic",
    "topics",
    multiple=True,
    help="Topic to follow (repeatable). Default: every statement topic of the config.",
)
@click.option("--from-beginning", is_flag=True, help="Start from the oldest retained event.")
@click.option("--json", "as_json", is_flag=True, help="Print each raw CloudEvent as one JSON line.")
def tail(
    config_path: Path | None, topics: tuple[str, ...], from_beginning: bool, as_json: bool
) -> None:
    """Follow the statement topic(s) and print each event as it arrives."""
    config = _load(config_path)
    configure_logging("warning", config.log.format, secrets=secret_values(config))
    try:
        asyncio.run(_tail(config, list(topics) or config.topics(), from_beginning, as_json))
    except KeyboardInterrupt:
        pass
    except MonitorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


async def _tail(config: Config, topics: list[str], from_beginning: bool, as_json: bool) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaError

    from monitor.events import decode_record
    from monitor.sinks.embedded import EmbeddedBroker
    from monitor.sinks.kafka import client_options

    bootstrap = (
        EmbeddedBroker().bootstrap_servers
        if config.kafka.embedded
        else config.kafka.bootstrap_servers
    )
    consumer = AIOKafkaConsumer(
        *topics,
        **client_options(config.kafka, bootstrap),
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        raise MonitorError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        async for record in consumer:
            try:
                event = decode_record(record.value)
            except ValueError as exc:
                click.echo(
                    f"[{record.topic}] skipped a record that is not a statement event: {exc}",
                    err=True,
                )
                continue
            click.echo(
                json.dumps(event, ensure_ascii=False)
                if as_json
                else format_event(event, topic=record.topic)
            )
    finally:
        await consumer.stop()


def format_event(event: dict[str, Any], *, topic: str, lines: int = 4) -> str:
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

"""Dangerous configs are refused with path-precise errors (issue 13, §4)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from monitor.config import Config, load_config
from monitor.errors import ConfigError
from monitor.extract.watchlists import _regex_pattern, match_watchlists
from monitor.models import Watchlist
from monitor.sources.listing import parse_listing
from monitor.userregex import ENGINE, UserRegexError, compile_user_regex

URL = "https://example.org/feed.xml"


def problems(config: dict[str, Any], tmp_path: Path, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env or {})
    return caught.value.problems


def loads(config: dict[str, Any], tmp_path: Path, env: dict[str, str] | None = None) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return load_config(path, env=env or {})


def source(**fields: Any) -> dict[str, Any]:
    return {"id": "s", "url": URL, **fields}


# --- the poll interval ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"sources": [source(), source(id="t", interval="1ms")]}, "sources[1].interval"),
        ({"sources": [source(interval={"min": "100ms", "max": "1m"})]}, "sources[0].interval.min"),
        ({"defaults": {"interval": 0.5}, "sources": [source()]}, "defaults.interval"),
    ],
)
def test_an_interval_under_a_second_is_refused(
    config: dict[str, Any], path: str, tmp_path: Path
) -> None:
    [problem] = problems(config, tmp_path)
    assert problem.startswith(f"{path}: must be at least 1 s, got ")
    assert "allow_fast_polling: true" in problem


def test_fast_polling_is_allowed_per_source_or_for_all(tmp_path: Path) -> None:
    per_source = loads({"sources": [source(interval=0.2, allow_fast_polling=True)]}, tmp_path)
    assert per_source.resolved_sources()[0].interval == 0.2
    for_all = loads(
        {"defaults": {"interval": 0.5, "allow_fast_polling": True}, "sources": [source()]},
        tmp_path,
    )
    assert for_all.fast_polling() == [("defaults.interval", 0.5)]
    # A source may still say no for itself.
    [problem] = problems(
        {
            "defaults": {"interval": 0.5, "allow_fast_polling": True},
            "sources": [source(allow_fast_polling=False)],
        },
        tmp_path,
    )
    assert problem.startswith("sources[0].interval (from defaults.interval): must be at least 1 s")
    assert loads({"sources": [source(interval=1)]}, tmp_path).fast_polling() == []


async def test_allowed_fast_polling_is_logged_at_start(tmp_path: Path) -> None:
    from monitor.app import Service

    config = Config.model_validate(
        {
            "state": {"path": str(tmp_path / "state.db")},
            "kafka": {"bootstrap_servers": "127.0.0.1:1"},  # never reached: stopped at once
            "metrics": {"enabled": False},
            "sources": [source(interval=0.25, allow_fast_polling=True)],
        }
    )
    import asyncio

    service = Service(config)
    stop = asyncio.Event()
    stop.set()
    with capture_logs() as logs:
        task = asyncio.create_task(service.run(stop))
        with contextlib.suppress(Exception):  # no broker there; the warning comes first
            await asyncio.wait_for(task, 20)
    [line] = [entry for entry in logs if entry["event"] == "fast_polling_allowed"]
    assert line["path"] == "sources[0].interval" and line["interval"] == 0.25
    assert line["log_level"] == "warning"


# --- workers and connections ---------------------------------------------------------


def test_workers_are_bounded_by_the_cpus(tmp_path: Path) -> None:
    cpus = os.cpu_count() or 1
    [problem] = problems({"extract": {"workers": 1_000_000}, "sources": [source()]}, tmp_path)
    assert problem.startswith(f"extract.workers: must be at most {4 * cpus} (4 per CPU")
    assert loads({"extract": {"workers": 4 * cpus}, "sources": [source()]}, tmp_path)


def test_a_worker_memory_limit_too_small_to_start_is_refused(tmp_path: Path) -> None:
    [problem] = problems({"extract": {"worker_memory_mb": 64}, "sources": [source()]}, tmp_path)
    assert problem.startswith("extract.worker_memory_mb: must be 0 (no limit) or at least 512")
    assert loads({"extract": {"worker_memory_mb": 0}, "sources": [source()]}, tmp_path)


@pytest.mark.parametrize(
    ("fetch", "path"),
    [
        ({"per_host_connections": 10**12}, "fetch.per_host_connections"),
        ({"max_concurrent_polls": 10**12}, "fetch.max_concurrent_polls"),
        ({"hosts": {"example.org": {"connections": 10**12}}}, "fetch.hosts.example.org.connections"),
        ({"max_redirects": 1000}, "fetch.max_redirects"),
    ],
)
def test_connection_limits_are_bounded(fetch: dict[str, Any], path: str, tmp_path: Path) -> None:
    [problem] = problems({"fetch": fetch, "sources": [source()]}, tmp_path)
    assert problem.startswith(f"{path}: Input should be less than or equal to")


# --- environment overrides -----------------------------------------------------------


def test_an_override_of_a_missing_list_item_is_an_error(tmp_path: Path) -> None:
    found = problems(
        {"sources": [source()]}, tmp_path, env={"MONITOR__SOURCES__7__INTERVAL": "1m"}
    )
    assert found == [
        "MONITOR__SOURCES__7__INTERVAL: sources[7] does not exist "
        "(sources has 1 item, numbered from 0)"
    ]
    nested = problems(
        {"sources": [source(remove_selectors=["nav"])]},
        tmp_path,
        env={"MONITOR__SOURCES__0__REMOVE_SELECTORS__3": "footer"},
    )
    assert nested == [
        "MONITOR__SOURCES__0__REMOVE_SELECTORS__3: sources[0].remove_selectors[3] does not "
        "exist (sources[0].remove_selectors has 1 item, numbered from 0)"
    ]
    config = loads({"sources": [source()]}, tmp_path, env={"MONITOR__SOURCES__0__INTERVAL": "1m"})
    assert config.resolved_sources()[0].interval == 60


# --- URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\r", "\n", "\x00", "\t", "\x1b", "\x7f", "\x85"])
def test_control_characters_in_a_url_are_an_error(char: str, tmp_path: Path) -> None:
    [problem] = problems(
        {"sources": [source(), source(id="t", url=f"https://example.org/a{char}b")]}, tmp_path
    )
    assert problem.startswith("sources[1].url: must not contain control characters")
    assert f"found {char!r} at position 21" in problem


def test_control_characters_in_the_websub_callback_are_an_error(tmp_path: Path) -> None:
    [problem] = problems(
        {"websub": {"callback_base": "https://me.example\r\nX: y"}, "sources": [source()]},
        tmp_path,
    )
    assert problem.startswith("websub.callback_base: must not contain control characters")


# --- user regexes: RE2 -----------------------------------------------------------------

CATASTROPHIC = ["(a+)+$", "(a|aa)+$", "(.*a){20}", "(a*)*b", "^(\\w+\\s?)*$"]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_catastrophic_patterns_run_on_the_linear_time_engine(pattern: str) -> None:
    compiled = compile_user_regex(pattern)
    assert type(compiled).__module__.startswith(ENGINE)  # RE2's, not `re`'s
    # On `re` this input takes longer than the test run; on RE2 it is linear.
    compiled.search("a" * 50_000 + "!")


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_watchlists_and_link_patterns_match_with_re2(pattern: str, tmp_path: Path) -> None:
    assert type(_regex_pattern(pattern)).__module__.startswith(ENGINE)
    watchlist = Watchlist(id="w", terms=(), regex=(pattern,), topic="alerts", sources=())
    match_watchlists("t", "a" * 30_000 + "!", (watchlist,))  # returns: no backtracking
    config = loads(
        {
            "sources": [
                source(kind="listing", link_pattern=pattern),
            ],
            "watchlists": [{"id": "w", "regex": [pattern]}],
        },
        tmp_path,
    )
    assert config.sources[0].link_pattern == pattern
    links = "".join(f'<a href="/{"a" * 3000}{n}!">x</a>' for n in range(20))
    parse_listing(
        f"<html><body>{links}</body></html>".encode(),
        source_id="s",
        feed_url="https://example.org/",
        link_pattern=pattern,
    )


def test_the_listing_and_watchlists_call_the_re2_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine in use is RE2's, asserted by what the matching code calls."""
    import monitor.extract.watchlists as watchlists
    import monitor.sources.listing as listing

    seen: list[str] = []

    def spy(pattern: str, *, ignore_case: bool = False) -> Any:
        seen.append(pattern)
        return compile_user_regex(pattern, ignore_case=ignore_case)

    monkeypatch.setattr(listing, "compile_user_regex", spy)
    monkeypatch.setattr(watchlists, "compile_user_regex", spy)
    parse_listing(
        b'<html><body><a href="/news/2024/one">One statement</a></body></html>',
        source_id="s",
        feed_url="https://example.org/",
        link_pattern="/news/",
    )
    match_watchlists("t", "Sanctions", (Watchlist(id="w", terms=(), regex=("sanction",),
                                                  topic="a", sources=()),))
    assert seen == ["/news/", "sanction"]


@pytest.mark.parametrize(
    ("pattern", "why"),
    [("(a)\\1", "backreference"), ("(?<=a)b", "(?<="), ("(?=a)", "(?=")],
)
def test_a_pattern_re2_cannot_run_is_a_config_error(
    pattern: str, why: str, tmp_path: Path
) -> None:
    with pytest.raises(UserRegexError):
        compile_user_regex(pattern)
    found = problems(
        {
            "sources": [source(kind="listing", link_pattern=pattern)],
            "watchlists": [{"id": "w", "regex": ["ok", pattern]}],
        },
        tmp_path,
    )
    assert [p.split(":")[0] for p in found] == ["sources[0].link_pattern", "watchlists[0].regex[1]"]
    assert all("must be a valid regular expression for RE2" in p for p in found)
    assert all(why in p for p in found), found


# --- Kafka -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_a_sasl_password_without_sasl_is_an_error(protocol: str, tmp_path: Path) -> None:
    [problem] = problems(
        {
            "kafka": {"security_protocol": protocol, "sasl_plain_password": "s3cret-pw"},
            "sources": [source()],
        },
        tmp_path,
    )
    assert problem.startswith(
        f"kafka.sasl_plain_password: is set, but security_protocol {protocol} sends no SASL"
    )
    assert "s3cret-pw" not in problem
    env = {"MONITOR__KAFKA__SASL_PLAIN_PASSWORD": "s3cret-pw"}
    [problem] = problems({"sources": [source()]}, tmp_path, env=env)
    assert problem.startswith("kafka.sasl_plain_password: is set, but security_protocol PLAINTEXT")
    ok = loads({"kafka": {"security_protocol": "SASL_SSL"}, "sources": [source()]}, tmp_path, env)
    assert ok.kafka.sasl_plain_password is not None

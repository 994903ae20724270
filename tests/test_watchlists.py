"""Watchlists: matching rules, config errors, and alerts routed to their own topic."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from monitor import metrics
from monitor.config import Config, load_config
from monitor.errors import ConfigError
from monitor.extract.watchlists import alert_topics, applies_to, match_watchlists
from monitor.models import Watchlist
from tests.conftest import EventReader, counter, make_config, running, wait_until
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite

RSS = "application/rss+xml; charset=utf-8"


def found(title: str | None, text: str, *watchlists: Watchlist) -> dict[str, int]:
    return {m.term: m.count for m in match_watchlists(title, text, watchlists)}


def test_terms_match_whole_words_and_phrases_ignoring_case() -> None:
    watch = Watchlist(id="w", terms=("Iran", "rate decision", "U.S."))
    text = "IRAN said. Iranian media. The Rate\n  Decision was firm; the U.S. agreed. iran!"
    assert found(None, text, watch) == {"Iran": 2, "rate decision": 1, "U.S.": 1}


def test_title_and_text_are_both_searched() -> None:
    watch = Watchlist(id="w", terms=("sanctions",))
    assert found("New sanctions", "The sanctions apply from Monday.", watch) == {"sanctions": 2}


def test_matching_is_unicode_aware() -> None:
    watch = Watchlist(id="w", terms=("Лавров", "Straße", "café"))
    text = "Сергей Лавров заявил. Слова Лаврова. STRASSE closed. Cafe\u0301 open, cafés shut."
    # Cyrillic letters are word characters: "Лаврова" is another word. Case folding
    # makes "STRASSE" the same as "Straße"; NFC makes a decomposed é an é.
    assert found(None, text, watch) == {"Лавров": 1, "Straße": 1, "café": 1}


def test_regex_entries_are_reported_under_their_pattern() -> None:
    watch = Watchlist(id="w", regex=(r"\b\d+(?:\.\d+)? ?(?:per ?cent|%)", r"x*"))
    text = "Inflation rose to 7.5 per cent; the key rate is 16%."
    # `x*` matches only empty strings here: empty matches are not mentions.
    assert found(None, text, watch) == {r"\b\d+(?:\.\d+)? ?(?:per ?cent|%)": 2}


def test_no_hit_reports_nothing() -> None:
    assert match_watchlists("Title", "Nothing of interest.", [Watchlist(id="w", terms=("x",))]) == ()


def test_watchlists_apply_to_their_sources_and_route_to_their_topics() -> None:
    everywhere = Watchlist(id="all", terms=("a",), topic="alerts")
    narrow = Watchlist(id="narrow", terms=("a",), topic="alerts.narrow", sources=("mod",))
    same = Watchlist(id="same", terms=("a",), topic="statements")
    assert applies_to(everywhere, "cbr") and applies_to(narrow, "mod")
    assert not applies_to(narrow, "cbr")
    lists = [everywhere, narrow, same]
    assert alert_topics({"all", "narrow", "same"}, lists, exclude="statements") == (
        "alerts",
        "alerts.narrow",
    )
    assert alert_topics(set(), lists, exclude="statements") == ()


def test_a_huge_text_is_matched_quickly() -> None:
    watch = Watchlist(id="w", terms=("needle in", "haystack"), regex=(r"(a+)+b",))
    text = ("hay " * 400_000) + "needle in a haystack"  # 1.6 MB
    started = time.perf_counter()
    result = found(None, text, watch)
    assert result == {"needle in": 1, "haystack": 1}
    assert time.perf_counter() - started < 5


# -- config ------------------------------------------------------------------


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(body)
    return path


SOURCES = "sources:\n  - {id: mod, url: 'https://mil.example/feed'}\n"


def test_watchlists_resolve_with_a_default_topic(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, SOURCES + "watchlists:\n  - {id: syria, terms: [Syria, '  hot   line ']}\n")
    )
    (watchlist,) = config.resolved_watchlists()
    assert watchlist == Watchlist(id="syria", terms=("Syria", "hot line"), topic="statements.alerts")
    assert "statements.alerts" in config.topics()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{id: w, terms: [a], regex: ['(unclosed']}", "watchlists[0].regex[0]: must be a valid"),
        ("{id: W!, terms: [a]}", "watchlists[0].id: must match [a-z0-9_-]+"),
        ("{id: w}", "watchlists[0]: a watchlist needs at least one entry in terms or regex"),
        ("{id: w, terms: ['  ']}", "watchlists[0].terms[0]: must not be blank"),
        ("{id: w, terms: [a], sources: [nope]}", "watchlists[0].sources[0]: no source has"),
        ("{id: w, terms: [a], topic: 'bad topic'}", "watchlists[0].topic:"),
        ("{id: w, terms: [a], colour: red}", "watchlists[0].colour:"),
    ],
)
def test_watchlist_config_errors_name_their_path(
    tmp_path: Path, entry: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, SOURCES + f"watchlists:\n  - {entry}\n"))
    assert message in str(caught.value)


def test_duplicate_watchlist_ids_are_refused() -> None:
    with pytest.raises(ValueError, match=r"watchlists\[1\]\.id: duplicate id 'w'"):
        Config.model_validate(
            {"watchlists": [{"id": "w", "terms": ["a"]}, {"id": "w", "terms": ["b"]}]}
        )


# -- end to end ----------------------------------------------------------------


def statement(site: LoopbackSite, n: int, sentence: str) -> str:
    return site.put(
        f"/news/{n}.html",
        page(
            f"Statement {n}",
            [
                sentence,
                "The ministry will publish further details on its website in due course.",
            ],
        ),
    )


@pytest.mark.integration
async def test_a_hit_goes_to_the_alert_topic_too_and_a_miss_never_does(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    when = dt.datetime(2025, 5, 1, 9, tzinfo=dt.UTC)
    items = [
        Item("Statement 1", statement(site, 1, "New sanctions on steel imports were announced "
             "today; the sanctions apply from Monday."), guid="g-1", published=when),
        Item("Statement 2", statement(site, 2, "The minister opened a new school in the north "
             "of the country and met teachers."), guid="g-2", published=when),
    ]
    site.put("/feed.xml", rss(items), content_type=RSS)
    alerts = f"{topic}.alerts"
    config: dict[str, Any] = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[{"id": "mfa", "url": site.url("/feed.xml"), "backfill": True}],
    )
    config["watchlists"] = [
        {"id": "trade", "terms": ["sanctions", "tariff"], "regex": [r"steel\w*"], "topic": alerts},
        {"id": "elsewhere", "terms": ["school"], "topic": alerts, "sources": []},
    ]
    before = counter(metrics.WATCHLIST_HITS, watchlist="trade")
    async with running(config) as service:
        await wait_until(lambda: service.store.statement_count("mfa") == 2)
        published = await events.read(2, settle=1.0)
        alerted = await EventReader(kafka_bootstrap, alerts).read(2, settle=1.5)
    by_title = {e["data"]["title"]: e for e in published}
    assert by_title["Statement 1"]["data"]["matches"] == [
        {"watchlist": "trade", "term": "sanctions", "count": 2},
        {"watchlist": "trade", "term": r"steel\w*", "count": 1},
    ]
    assert by_title["Statement 2"]["data"]["matches"] == [
        {"watchlist": "elsewhere", "term": "school", "count": 1}
    ]
    # Both hit a watchlist, each once on the alert topic, as the same event.
    assert sorted(e["data"]["title"] for e in alerted) == ["Statement 1", "Statement 2"]
    assert {e["id"] for e in alerted} == {e["id"] for e in published}
    assert counter(metrics.WATCHLIST_HITS, watchlist="trade") == before + 1


@pytest.mark.integration
async def test_a_watchlist_limited_to_other_sources_does_not_route(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    items = [Item("Statement 1", statement(site, 1, "New sanctions on steel imports were "
                  "announced today by the trade ministry."), guid="g-1")]
    site.put("/feed.xml", rss(items), content_type=RSS)
    site.put("/other.xml", rss([]), content_type=RSS)
    alerts = f"{topic}.alerts"
    config: dict[str, Any] = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[
            {"id": "mfa", "url": site.url("/feed.xml"), "backfill": True},
            {"id": "other", "url": site.url("/other.xml")},
        ],
    )
    config["watchlists"] = [
        {"id": "trade", "terms": ["sanctions"], "topic": alerts, "sources": ["other"]}
    ]
    async with running(config) as service:
        await wait_until(lambda: service.store.statement_count("mfa") == 1)
        published = await events.read(1, settle=0.5)
        alerted = await EventReader(kafka_bootstrap, alerts).read(1, timeout=2.0)
    assert published[0]["data"]["matches"] == []
    assert alerted == []


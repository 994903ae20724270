"""`monitor check --probe`: one fetch per source, a table of what was found."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import Config
from monitor.probe import format_table, probe
from tests.conftest import free_port
from tests.sites.feeds import Item, rss
from tests.sites.loopback import LoopbackSite

RSS = "application/rss+xml; charset=utf-8"
OLD = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
NEW = dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.UTC)

ATOM_WITH_HUB = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>News</title><id>urn:x</id>
<updated>2025-03-14T09:30:00Z</updated>
<link rel="hub" href="https://hub.example/"/><link rel="self" href="{self}"/>
<entry><title>One</title><id>urn:1</id><link href="{link}"/><updated>2025-03-14T09:30:00Z</updated>
</entry></feed>"""


async def test_probe_reports_kind_status_items_newest_hub_and_robots(site: LoopbackSite) -> None:
    site.put("/robots.txt", "User-agent: *\nDisallow: /closed/\n", content_type="text/plain")
    items = [Item("New", site.url("/n/2"), guid="2", published=NEW),
             Item("Old", site.url("/n/1"), guid="1", published=OLD)]  # fmt: skip
    site.put("/rss.xml", rss(items), content_type=RSS)
    site.put("/atom.xml", ATOM_WITH_HUB.format(self=site.url("/atom.xml"), link=site.url("/n/3")),
             content_type="application/atom+xml")  # fmt: skip
    site.put("/closed/feed.xml", rss(items), content_type=RSS)
    config = Config.model_validate(
        {
            "sources": [
                {"id": "rss", "url": site.url("/rss.xml")},
                {"id": "atom", "url": site.url("/atom.xml")},
                {"id": "closed", "url": site.url("/closed/feed.xml")},
                {"id": "gone", "url": site.url("/missing.xml")},
                {"id": "mine", "url": site.url("/closed/feed.xml"), "robots": False,
                 "robots_reason": "our own feed"},
            ]
        }
    )  # fmt: skip
    rows = {row.source_id: row for row in await probe(config)}
    assert (rows["rss"].kind, rows["rss"].status, rows["rss"].items) == ("rss20", "200", 2)
    assert rows["rss"].newest == NEW and rows["rss"].ok
    assert rows["rss"].robots == "allowed (robots.txt 200)"
    assert rows["atom"].kind.startswith("atom") and rows["atom"].items == 1
    assert rows["atom"].hub == "https://hub.example/"
    assert rows["closed"].status == "skipped" and rows["closed"].robots.startswith("disallowed")
    assert not rows["closed"].ok
    assert site.hits("/closed/feed.xml") and len(site.hits("/closed/feed.xml")) == 1  # "mine"
    assert rows["gone"].status == "http_4xx (404)" and not rows["gone"].ok
    assert rows["mine"].robots == "ignored: our own feed" and rows["mine"].items == 2
    assert len(site.hits("/robots.txt")) == 1

    table = format_table(list(rows.values()))
    header, *lines = table.splitlines()
    assert header.split() == ["source", "kind", "status", "items", "newest", "hub", "robots"]
    assert any(line.startswith("rss ") and "2025-03-14 09:30 UTC" in line for line in lines)
    assert any("https://hub.example/" in line for line in lines)
    assert "closed: robots.txt disallows the feed" in lines


def test_check_probe_prints_the_table_and_fails_on_a_bad_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # configure_logging changes process-wide logging (aiokafka to CRITICAL): not in a test.
    monkeypatch.setattr("monitor.cli.configure_logging", lambda *args, **kwargs: None)
    config = tmp_path / "config.yaml"
    config.write_text(
        "sources:\n"
        f"  - {{id: dead, url: 'http://127.0.0.1:{free_port()}/feed.xml', timeout: 2}}\n"
    )
    result = CliRunner().invoke(main, ["check", "--config", str(config), "--probe"])
    assert result.exit_code == 1, result.output
    assert "config OK" in result.output
    assert "dead" in result.output and "connect" in result.output
    plain = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert plain.exit_code == 0 and "source" not in plain.output.split("\n", 1)[1]


async def test_probe_shows_what_a_listing_page_without_selector_gives_and_why(
    site: LoopbackSite,
) -> None:
    rows = "".join(
        f'<li class="item"><span class="date">0{n}/0{n}/2015</span> '
        f'<a href="/news/item.php?id={n}">Statement number {n} of the ministry</a></li>'
        for n in range(7, 0, -1)
    )
    site.put(
        "/news/",
        '<!DOCTYPE html><html lang="en"><body><nav><a href="/news/about-the-ministry-long">'
        "About the ministry and its departments</a></nav><main><ul class='news'>"
        f"{rows}</ul></main></body></html>",
    )
    config = Config.model_validate(
        {"sources": [{"id": "news", "url": site.url("/news/"), "kind": "listing"}]}
    )
    [row] = await probe(config)
    assert row.kind == "listing" and row.items == 7
    assert len(row.samples) == 5
    assert row.samples[0] == (
        dt.datetime(2015, 7, 7, tzinfo=dt.UTC),
        "Statement number 7 of the ministry",
        site.url("/news/item.php?id=7"),
    )
    assert row.why is not None and "main > ul.news > li.item" in row.why
    assert "7 repeated <li.item> blocks" in row.why and "100% with a date" in row.why
    lines = format_table([row]).splitlines()
    assert lines[2].startswith("news: main list at main > ul.news > li.item")
    assert lines[3] == (
        f"  2015-07-07  Statement number 7 of the ministry  {site.url('/news/item.php?id=7')}"
    )
    assert len(lines) == 8  # header, row, why, five items


async def test_probe_shows_the_newest_posts_of_a_telegram_channel() -> None:
    from tests.sites.telegram import FakeChannel

    async with FakeChannel("mod_example", page_size=20) as channel:
        for n in range(1, 8):
            channel.post(f"Post number {n}. More text.")
        config = Config.model_validate(
            {"sources": [{"id": "tg", "kind": "telegram", "url": channel.url}]}
        )
        [row] = await probe(config)
    assert (row.kind, row.items, row.ok) == ("telegram", 7, True)
    assert [title for _, title, _ in row.samples] == [f"Post number {n}." for n in (7, 6, 5, 4, 3)]
    assert row.samples[0][2] == "https://t.me/mod_example/7"
    assert "tg: the newest posts of the channel's web preview (7 on the page)" in format_table([row])

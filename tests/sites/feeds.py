"""Builders of small, valid feeds for tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.utils import format_datetime
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Item:
    title: str
    link: str
    guid: str | None = None
    published: dt.datetime | None = None
    description: str = ""


def rss(
    items: list[Item], *, title: str = "Press releases", link: str = "http://127.0.0.1/"
) -> str:
    entries = []
    for item in items:
        parts = [f"<title>{escape(item.title)}</title>", f"<link>{escape(item.link)}</link>"]
        if item.guid:
            parts.append(f'<guid isPermaLink="false">{escape(item.guid)}</guid>')
        if item.published:
            parts.append(f"<pubDate>{format_datetime(item.published)}</pubDate>")
        if item.description:
            parts.append(f"<description>{escape(item.description)}</description>")
        entries.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>{escape(link)}</link>"
        "<description>Official statements</description>" + "".join(entries) + "</channel></rss>"
    )


def page(title: str, paragraphs: list[str], *, date: str = "2025-03-14") -> str:
    """A statement page with navigation and footer around the statement."""
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    nav = "".join(f'<li><a href="/section/{i}">Section {i}</a></li>' for i in range(12))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} | Ministry of Examples</title>
<meta property="og:title" content="{escape(title)}">
<meta property="og:site_name" content="Ministry of Examples">
<meta name="article:published_time" property="article:published_time" content="{date}T10:00:00+00:00">
</head><body>
<header><nav><ul>{nav}</ul></nav><div class="search">Search the site</div></header>
<main><article><h1>{escape(title)}</h1><time datetime="{date}">{date}</time>{body}</article></main>
<aside><h2>Related news</h2><ul><li><a href="/r/1">Minister visits the regional office</a></li>
<li><a href="/r/2">Annual report published</a></li></ul></aside>
<footer><p>© Ministry of Examples. All rights reserved.</p><a href="/privacy">Privacy</a>
<a href="/contacts">Contacts</a></footer></body></html>"""

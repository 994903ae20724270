"""Telegram channels: the preview page parser, titles, catching up with `?before=` (issue 16 §2)."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import Config
from monitor.models import Candidate, ParsedFeed, Source
from monitor.sources import parse_document
from monitor.sources.telegram import channel_of, page_url, parse_telegram, post_title
from monitor.state import StateStore, Validators
from monitor.telegram_poll import catch_up
from tests.sites.telegram import Post, render

URL = "https://t.me/s/mod_example"
T0 = dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.UTC)


def parse(posts: list[Post]) -> ParsedFeed:
    body = render("mod_example", posts).encode()
    return parse_document(body, source_id="tg", feed_url=URL, kind="telegram")


def extra(candidate: Candidate) -> dict[str, str]:
    return dict(candidate.extra)


POSTS = [
    Post(10, "Channel photo updated", service=True),
    Post(
        11,
        "Заявление Министерства обороны.<br/>Вторая строка с "
        '<a href="https://mil.example/" onclick="return confirm(\'Open?\')">ссылкой</a> '
        '<i class="emoji" style="background-image:url(\'//telegram.org/img/emoji/40/F09F87B7.png\')">'
        "<b>🇷🇺</b></i><br/><br/><b>Третий</b> абзац.",
        date=T0,
    ),
    Post(
        12,
        "A briefing by the spokesman",
        forwarded_from="Press Service",
        edited=True,
        date=T0 + dt.timedelta(minutes=5),
    ),
    Post(13, "", media="photo", date=T0 + dt.timedelta(minutes=6)),
    Post(
        14,
        "Answer to a question",
        reply_to=(11, "The question that was asked"),
        media="video",
        date=T0 + dt.timedelta(minutes=7),
    ),
]


def test_each_post_is_a_candidate_and_service_messages_are_not() -> None:
    parsed = parse(POSTS)
    assert parsed.error is None and parsed.format == "telegram"
    assert parsed.title == "Ministry of Defence"
    assert [c.url for c in parsed.entries] == [
        f"https://t.me/mod_example/{n}" for n in (11, 12, 13, 14)
    ]


def test_text_keeps_line_breaks_and_link_text_and_the_date_is_the_posts() -> None:
    post = parse(POSTS).entries[0]
    assert post.published_at == T0
    assert post.title == "Заявление Министерства обороны."
    assert post.content_html is not None
    assert "Вторая строка с ссылкой 🇷🇺" in post.content_html
    assert "<br>" in post.content_html and "<p>Третий абзац.</p>" in post.content_html
    assert extra(post) == {"channel": "mod_example", "id": "11"}


def test_forwarded_edited_media_only_and_replies() -> None:
    _, forwarded, photo, reply = parse(POSTS).entries
    assert extra(forwarded) == {
        "channel": "mod_example", "id": "12", "forwarded_from": "Press Service", "edited": "true"
    }  # fmt: skip
    assert photo.title is None and photo.content_html is None
    assert extra(photo)["media"] == "photo"
    # The quoted post's text is not this post's text.
    assert reply.title == "Answer to a question" and reply.content_html is not None
    assert "question that was asked" not in reply.content_html
    assert extra(reply)["media"] == "video"


def test_a_page_that_is_not_a_channel_preview_is_an_error() -> None:
    parsed = parse_telegram(b"<html><body><p>Telegram</p></body></html>", source_id="tg",
                            feed_url=URL)  # fmt: skip
    assert parsed.error is not None and "not a Telegram channel preview" in parsed.error
    empty = parse([])  # an empty channel is not an error
    assert empty.error is None and empty.entries == ()


def test_results_are_picklable() -> None:
    parsed = parse(POSTS)
    assert pickle.loads(pickle.dumps(parsed)) == parsed


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("One sentence. Another one.", "One sentence."),
        ("First line\nsecond line", "First line"),
        ("\n\n  Leading blank lines  \nrest", "Leading blank lines"),
        ("word " * 40, ("word " * 24).strip() + "…"),
        ("", None),
    ],
)
def test_title_is_the_first_line_cut_at_a_sentence_or_120_characters(
    text: str, title: str | None
) -> None:
    assert post_title(text) == title
    assert title is None or len(title) <= 121


@given(st.text(max_size=300))
@settings(max_examples=50)
def test_parser_never_raises(text: str) -> None:
    parse_telegram(text.encode("utf-8", "replace"), source_id="tg", feed_url=URL)


def test_urls() -> None:
    assert channel_of("https://t.me/s/mod_russia") == "mod_russia"
    assert channel_of("http://127.0.0.1:8080/s/mod_russia/") == "mod_russia"
    assert channel_of("https://t.me/mod_russia") is None
    assert page_url("https://t.me/s/mod_russia?q=x", before=120) == (
        "https://t.me/s/mod_russia?before=120"
    )


def test_config_channel_or_url() -> None:
    config = Config.model_validate(
        {"sources": [{"id": "a", "kind": "telegram", "channel": "mod_russia", "max_pages": 3}]}
    )
    [source] = config.resolved_sources()
    assert source.url == "https://t.me/s/mod_russia"
    assert (source.kind, source.max_pages) == ("telegram", 3)
    with pytest.raises(ValueError, match=r"https://t\.me/s/<channel>"):
        Config.model_validate(
            {"sources": [{"id": "a", "kind": "telegram", "url": "https://t.me/x1234"}]}
        )
    with pytest.raises(ValueError, match="only for kind: telegram"):
        Config.model_validate({"sources": [{"id": "a", "kind": "feed", "channel": "mod_russia"}]})
    alone = Config.model_validate({"sources": [{"id": "a", "channel": "mod_russia"}]})
    assert alone.resolved_sources()[0].kind == "telegram"


# --- catching up with ?before= -------------------------------------------------------------


def source(*, backfill: bool = False, max_pages: int = 10) -> Source:
    return Source(id="tg", name="tg", url=URL, interval=60, timeout=5, backfill=backfill,
                  topic="t", kind="telegram", max_pages=max_pages)  # fmt: skip


class Channel:
    """Pages of a channel with posts `ids`, five a page, as the preview serves them."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = sorted(ids)
        self.read: list[str] = []

    def page(self, before: int | None = None) -> ParsedFeed:
        shown = [i for i in self.ids if before is None or i < before][-5:]
        return parse([Post(i, f"Post {i}") for i in shown])

    async def read_page(self, url: str) -> ParsedFeed | None:
        self.read.append(url)
        return self.page(int(url.rsplit("=", 1)[1]))


def known_store(tmp_path: Path, ids: list[int]) -> StateStore:
    store = StateStore(tmp_path / "state.db")
    store.open()
    keys = [f"https://t.me/mod_example/{i}" for i in ids]
    store.record_silently("tg", [(f"s{k}", k, k) for k in keys], Validators())
    return store


def ids(parsed: ParsedFeed) -> list[int]:
    return sorted(int(extra(c)["id"]) for c in parsed.entries)


async def test_catch_up_pages_back_to_the_last_known_post(tmp_path: Path) -> None:
    channel = Channel([*range(1, 6), *range(6, 23)])  # 1-5 known, 6-22 posted during an outage
    store = known_store(tmp_path, list(range(1, 6)))
    parsed = await catch_up(source(), channel.page(), url=URL, store=store,
                            read_page=channel.read_page)  # fmt: skip
    assert ids(parsed) == list(range(3, 23))  # the page holding post 5 was the last read
    assert channel.read == [f"{URL}?before={n}" for n in (18, 13, 8)]


async def test_no_paging_when_the_page_holds_a_known_post(tmp_path: Path) -> None:
    channel = Channel(list(range(1, 9)))
    store = known_store(tmp_path, [1, 2, 3, 4, 5])
    parsed = await catch_up(source(), channel.page(), url=URL, store=store,
                            read_page=channel.read_page)  # fmt: skip
    assert ids(parsed) == [4, 5, 6, 7, 8] and channel.read == []


async def test_deleted_ids_and_the_page_limit_bound_the_paging(tmp_path: Path) -> None:
    # The last known post (1) was deleted, and so were 2-40: paging stops at the
    # channel's start, not in an endless search for the post.
    channel = Channel(list(range(41, 60)))
    store = known_store(tmp_path, [1])
    parsed = await catch_up(source(), channel.page(), url=URL, store=store,
                            read_page=channel.read_page)  # fmt: skip
    assert ids(parsed) == list(range(41, 60))
    assert len(channel.read) == 4  # the fourth page is empty: the start of the channel
    limited = Channel(list(range(100, 200)))
    parsed = await catch_up(source(max_pages=3), limited.page(), url=URL, store=store,
                            read_page=limited.read_page)  # fmt: skip
    assert len(limited.read) == 2 and len(parsed.entries) == 15


async def test_first_sight_pages_back_only_with_backfill(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.open()
    channel = Channel(list(range(1, 13)))
    parsed = await catch_up(source(), channel.page(), url=URL, store=store,
                            read_page=channel.read_page)  # fmt: skip
    assert ids(parsed) == list(range(8, 13)) and channel.read == []
    parsed = await catch_up(source(backfill=True, max_pages=2), channel.page(), url=URL,
                            store=store, read_page=channel.read_page)  # fmt: skip
    assert ids(parsed) == list(range(3, 13))


# --- deletions ------------------------------------------------------------------------------


def published(store: StateStore, n: int, posted: dt.datetime) -> None:
    from monitor.state import NewStatementRow

    url = f"https://t.me/mod_example/{n}"
    data = {"statement_id": f"s{n}", "source_id": "tg", "url": url, "title": f"Post {n}",
            "text": f"Post {n}", "content_hash": f"h{n}", "version": 1,
            "published_at": posted.isoformat(), "detected_at": posted.isoformat()}  # fmt: skip
    row = NewStatementRow(statement_id=f"s{n}", source_id="tg", entry_key=url, url=url,
                          content_hash=f"h{n}", version=1, detected_at=posted.timestamp(),
                          event_id=f"e{n}", topic="t", key=b"k", value=b"v", headers=(),
                          data=data)  # fmt: skip
    store.record_statement(row)


def test_deleted_posts_are_those_missing_between_listed_ones_within_the_window(
    tmp_path: Path,
) -> None:
    from monitor.telegram_poll import deleted_posts

    now = dt.datetime(2025, 3, 20, tzinfo=dt.UTC)
    store = StateStore(tmp_path / "state.db")
    store.open()
    for n in (1, 2, 3, 5, 7):
        published(store, n, now - dt.timedelta(days=1))
    published(store, 4, now - dt.timedelta(days=30))  # deleted, but long after it was posted
    store.record_silently("tg", [("s6", "https://t.me/mod_example/6", None)], Validators())
    # The page lists 2, 3 and 8: 4 to 7 are missing; 1 only scrolled off.
    page = parse([Post(i, f"Post {i}") for i in (2, 3, 8)])
    found = deleted_posts(source(), page, store, now=now)
    assert sorted(d["url"] for d in found) == [
        "https://t.me/mod_example/5", "https://t.me/mod_example/7"
    ]  # fmt: skip


def test_a_t_me_preview_url_is_a_telegram_source_without_kind() -> None:
    config = Config.model_validate({"sources": [{"id": "a", "url": "https://t.me/s/mod_russia"}]})
    assert config.resolved_sources()[0].kind == "telegram"

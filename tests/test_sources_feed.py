"""parse_document on small inline documents: every format, the entry rules, and hostile input."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from monitor.models import Candidate, ParsedFeed
from monitor.sources import parse_document

FEED_URL = "https://gov.example/news/feed.xml"
UTC = dt.UTC


def parse(body: bytes | str, content_type: str | None = None) -> ParsedFeed:
    data = body.encode() if isinstance(body, str) else body
    return parse_document(data, source_id="gov", feed_url=FEED_URL, content_type=content_type)


def rss(items: str, channel: str = "<title>Ministry news</title>") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel>{channel}{items}</channel></rss>"
    )


def only(result: ParsedFeed) -> Candidate:
    assert result.error is None, result.error
    assert len(result.entries) == 1, result.entries
    return result.entries[0]


# --- formats ---------------------------------------------------------------------------


def test_rss20_entry_fields() -> None:
    result = parse(
        rss(
            """<item>
              <title>Minister  visits
                 the port</title>
              <link>https://gov.example/news/1</link>
              <guid isPermaLink="false"> stmt-1 </guid>
              <description>&lt;p&gt;First paragraph.&lt;/p&gt;&lt;p&gt;Second.&lt;/p&gt;</description>
              <content:encoded><![CDATA[<p>Full <b>text</b>.</p>]]></content:encoded>
              <pubDate>Tue, 02 Jan 2024 10:00:00 +0200</pubDate>
              <dc:creator>Press Office</dc:creator>
              <category>Transport</category><category>Ports</category><category>Transport</category>
            </item>""",
            channel="<title>Ministry &amp; news</title><ttl>30</ttl>",
        )
    )
    assert result.format == "rss20"
    assert result.title == "Ministry & news"
    assert result.bozo is False
    assert result.ttl == 1800.0
    assert only(result) == Candidate(
        source_id="gov",
        feed_url=FEED_URL,
        url="https://gov.example/news/1",
        guid="stmt-1",
        title="Minister visits the port",
        summary="First paragraph.\n\nSecond.",
        content_html="<p>Full <b>text</b>.</p>",
        published_at=dt.datetime(2024, 1, 2, 8, 0, tzinfo=UTC),
        authors=("Press Office",),
        tags=("Transport", "Ports"),
    )


def test_rss10_rdf() -> None:
    result = parse(
        """<?xml version="1.0"?>
        <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
                 xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
          <channel rdf:about="https://gov.example/"><title>RDF news</title>
            <link>https://gov.example/</link><description>d</description></channel>
          <item rdf:about="https://gov.example/rdf/1">
            <title>RDF statement</title><link>https://gov.example/rdf/1</link>
            <description>Said things.</description><dc:date>2024-03-04T05:06:07Z</dc:date>
          </item>
        </rdf:RDF>"""
    )
    entry = only(result)
    assert result.format == "rss10"
    assert result.title == "RDF news"
    assert entry.url == "https://gov.example/rdf/1"
    assert entry.title == "RDF statement"
    assert entry.summary == "Said things."
    assert entry.published_at == dt.datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="html">Atom &lt;i&gt;news&lt;/i&gt;</title>
  <id>urn:feed</id><updated>2024-05-01T00:00:00Z</updated>
  {entries}
</feed>"""


def test_atom10_entry_fields() -> None:
    result = parse(
        ATOM.format(
            entries="""<entry>
              <id>urn:uuid:1</id>
              <title type="text">Plain &lt;not a tag&gt;</title>
              <link rel="self" href="https://gov.example/api/1"/>
              <link href="https://gov.example/atom/1"/>
              <published>2024-05-01T12:00:00-05:00</published>
              <updated>2024-05-02T12:00:00Z</updated>
              <author><name>Jane Roe</name></author><author><name>John Doe</name></author>
              <category term="budget" label="Budget"/>
              <summary type="html">&lt;p&gt;Short&lt;/p&gt;</summary>
              <content type="html">&lt;p&gt;Long body&lt;/p&gt;</content>
            </entry>"""
        )
    )
    entry = only(result)
    assert result.format == "atom10"
    assert result.title == "Atom news"
    assert entry.guid == "urn:uuid:1"
    assert entry.url == "https://gov.example/atom/1"
    assert entry.title == "Plain <not a tag>"  # type="text": angle brackets are text
    assert entry.published_at == dt.datetime(2024, 5, 1, 17, 0, tzinfo=UTC)
    assert entry.authors == ("Jane Roe", "John Doe")
    assert entry.tags == ("budget",)
    assert entry.summary == "Short"
    assert entry.content_html == "<p>Long body</p>"


def test_atom_first_alternate_link_when_no_html_link() -> None:
    result = parse(
        ATOM.format(
            entries="""<entry><id>urn:2</id><title>PDF only</title>
              <link rel="enclosure" href="https://gov.example/audio.mp3"/>
              <link rel="alternate" type="application/pdf" href="/docs/2.pdf"/>
              <updated>2024-05-02T12:00:00Z</updated></entry>"""
        )
    )
    assert only(result).url == "https://gov.example/docs/2.pdf"


def test_atom_updated_is_the_fallback_date_and_text_content_is_escaped() -> None:
    result = parse(
        ATOM.format(
            entries="""<entry><id>urn:3</id><title>t</title>
              <updated>2024-05-02T12:00:00+01:00</updated>
              <content type="text">a &lt;b&gt; c</content></entry>"""
        )
    )
    entry = only(result)
    assert entry.published_at == dt.datetime(2024, 5, 2, 11, 0, tzinfo=UTC)
    assert entry.content_html == "<p>a &lt;b&gt; c</p>"


JSON_10 = {
    "version": "https://jsonfeed.org/version/1",
    "title": "JSON &amp; news",
    "items": [
        {
            "id": 101,
            "url": "https://gov.example/json/1",
            "title": "Decree <b>signed</b>",
            "summary": "A decree.",
            "content_html": "<p>The decree.</p>",
            "date_published": "2024-02-03T04:05:06+01:00",
            "author": {"name": "Cabinet Office"},
            "tags": ["law", "law", "cabinet"],
        }
    ],
}

JSON_11 = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "JSON 1.1",
    "items": [
        {
            "id": "j-2",
            "url": "/json/2",
            "title": "Notice",
            "content_text": "Line one <raw>\nline two\n\nSecond paragraph",
            "date_modified": "2024-02-03T04:05:06Z",
            "authors": [{"name": "Ann"}, {"name": "Bob"}, {"url": "https://no.name"}],
        },
        {"id": "j-3", "external_url": "https://elsewhere.example/3", "title": "Linked"},
    ],
}


def test_json_feed_10() -> None:
    result = parse(json.dumps(JSON_10), content_type="application/feed+json")
    entry = only(result)
    assert result.format == "json1"
    assert result.title == "JSON & news"
    assert result.bozo is False
    assert entry == Candidate(
        source_id="gov",
        feed_url=FEED_URL,
        url="https://gov.example/json/1",
        guid="101",
        title="Decree signed",
        summary="A decree.",
        content_html="<p>The decree.</p>",
        published_at=dt.datetime(2024, 2, 3, 3, 5, 6, tzinfo=UTC),
        authors=("Cabinet Office",),
        tags=("law", "cabinet"),
    )


def test_json_feed_11_sniffed_from_the_body() -> None:
    body = b"\xef\xbb\xbf \n" + json.dumps(JSON_11).encode()
    result = parse(body, content_type="text/plain")
    assert result.format == "json1.1"
    first, second = result.entries
    assert first.url == "https://gov.example/json/2"
    assert (
        first.content_html == "<p>Line one &lt;raw&gt;<br>\nline two</p>\n<p>Second paragraph</p>"
    )
    assert first.published_at == dt.datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert first.authors == ("Ann", "Bob")
    assert second.url == "https://elsewhere.example/3"


def test_json_feed_in_utf16_and_with_lenient_version() -> None:
    document = {"version": "1.1", "items": [{"id": "é", "url": "https://gov.example/é"}]}
    result = parse(json.dumps(document, ensure_ascii=False).encode("utf-16"))
    assert result.format == "json1.1"
    assert only(result).guid == "é"


def test_json_content_type_on_an_xml_body_is_parsed_as_xml() -> None:
    body = rss("<item><guid>x-1</guid><link>https://gov.example/x</link></item>")
    result = parse(body, content_type="application/json")
    assert result.format == "rss20"
    assert only(result).guid == "x-1"


# --- entry rules -----------------------------------------------------------------------


def test_relative_links_are_resolved_against_the_feed_url() -> None:
    result = parse(
        rss(
            "<item><guid>a</guid><link>/press/a</link></item>"
            "<item><guid>b</guid><link>b.html</link></item>"
            "<item><guid>c</guid><link>//cdn.gov.example/c</link></item>"
        )
    )
    assert [c.url for c in result.entries] == [
        "https://gov.example/press/a",
        "https://gov.example/news/b.html",
        "https://cdn.gov.example/c",
    ]


def test_xml_base_is_honoured() -> None:
    result = parse(
        ATOM.format(
            entries="""<entry xml:base="https://other.example/root/"><id>urn:b</id>
              <title>t</title><link href="page"/><updated>2024-01-01T00:00:00Z</updated></entry>"""
        )
    )
    assert only(result).url == "https://other.example/root/page"


def test_entry_without_guid_is_keyed_by_its_link() -> None:
    entry = only(parse(rss("<item><title>No guid</title><link>/n/1</link></item>")))
    assert entry.guid is None
    assert entry.url == "https://gov.example/n/1"
    assert entry.key == "https://gov.example/n/1"


def test_entry_with_guid_but_no_link_is_kept_without_url() -> None:
    result = parse(
        rss(
            '<item><title>Opaque</title><guid isPermaLink="false">opaque-7</guid></item>'
            "<item><title>Permalink guid that is no URL</title><guid>12345</guid></item>"
            "<item><title>Permalink guid</title><guid>https://gov.example/p/9</guid></item>"
        )
    )
    assert [(c.guid, c.url) for c in result.entries] == [
        ("opaque-7", None),
        ("12345", None),  # not made into https://gov.example/news/12345
        ("https://gov.example/p/9", "https://gov.example/p/9"),
    ]


def test_non_http_links_become_none_and_unidentifiable_entries_are_dropped() -> None:
    result = parse(
        rss(
            "<item><guid>js</guid><link>javascript:alert(1)</link></item>"
            "<item><guid>mail</guid><link>mailto:press@gov.example</link></item>"
            "<item><title>nothing to key on</title><link>javascript:void(0)</link></item>"
            "<item><title>nothing at all</title></item>"
        )
    )
    assert [(c.guid, c.url) for c in result.entries] == [("js", None), ("mail", None)]


def test_duplicate_guids_keep_the_first_entry() -> None:
    result = parse(
        rss(
            "<item><guid>dup</guid><title>first</title><link>/1</link></item>"
            "<item><guid>other</guid><title>middle</title></item>"
            "<item><guid>dup</guid><title>second</title><link>/2</link></item>"
        )
    )
    assert [(c.guid, c.title) for c in result.entries] == [("dup", "first"), ("other", "middle")]


def test_json_duplicate_ids_keep_the_first_item() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [{"id": "1", "title": "a"}, {"id": 1, "title": "b"}, {"title": "no id, no url"}],
    }
    assert [c.title for c in parse(json.dumps(document)).entries] == ["a"]


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("Mon, 01 Jan 2024 23:30:00 -0500", dt.datetime(2024, 1, 2, 4, 30, tzinfo=UTC)),
        ("Mon, 01 Jan 2024 12:00:00 GMT", dt.datetime(2024, 1, 1, 12, 0, tzinfo=UTC)),
        ("2024-01-01T12:00:00+09:00", dt.datetime(2024, 1, 1, 3, 0, tzinfo=UTC)),
        ("yesterday-ish", None),
        ("Tue, 31 Feb 99999 99:99:99 +9999", None),
    ],
)
def test_rss_dates_become_aware_utc(pub_date: str, expected: dt.datetime | None) -> None:
    entry = only(parse(rss(f"<item><guid>d</guid><pubDate>{pub_date}</pubDate></item>")))
    assert entry.published_at == expected
    if entry.published_at is not None:
        assert entry.published_at.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-06-01T10:00:00.52-04:00", dt.datetime(2024, 6, 1, 14, 0, 0, 520000, tzinfo=UTC)),
        ("2024-06-01T10:00:00", dt.datetime(2024, 6, 1, 10, 0, tzinfo=UTC)),  # naive: UTC
        ("Fri, 31 May 2019 12:17:58 -0700", dt.datetime(2019, 5, 31, 19, 17, 58, tzinfo=UTC)),
        ("June 1, 2024 10:00 UTC", dt.datetime(2024, 6, 1, 10, 0, tzinfo=UTC)),
        ("Monday", None),
        ("0000-00-00T00:00:00Z", None),
        (12345, None),
        ("9" * 500, None),
    ],
)
def test_json_dates_become_aware_utc(value: object, expected: dt.datetime | None) -> None:
    document = {"version": "1.1", "items": [{"id": "1", "date_published": value}]}
    assert only(parse(json.dumps(document))).published_at == expected


def test_html_in_titles_is_stripped_and_entities_unescaped() -> None:
    entry = only(
        parse(
            rss(
                "<item><guid>h</guid>"
                "<title>&lt;b&gt;Breaking:&lt;/b&gt; tariffs &amp;amp; &lt;i&gt;quotas&lt;/i&gt;</title>"
                "<description>&lt;script&gt;alert(1)&lt;/script&gt;Only &lt;em&gt;this&lt;/em&gt;"
                "&lt;br/&gt;and this</description></item>"
            )
        )
    )
    assert entry.title == "Breaking: tariffs & quotas"
    assert entry.summary == "Only this\nand this"


def test_empty_title_and_summary_are_none() -> None:
    entry = only(parse(rss("<item><guid>e</guid><title>  </title><description/></item>")))
    assert entry.title is None
    assert entry.summary is None
    assert entry.content_html is None


@pytest.mark.parametrize(("ttl", "expected"), [("15", 900.0), ("soon", None), ("-5", None)])
def test_ttl_in_seconds(ttl: str, expected: float | None) -> None:
    assert parse(rss("", channel=f"<title>t</title><ttl>{ttl}</ttl>")).ttl == expected


# --- malformed and hostile documents ---------------------------------------------------


def test_invalid_xml_with_recoverable_entries_is_bozo() -> None:
    body = rss(
        "<item><guid>ok-1</guid><title>AT&T results</title><link>/r/1</link></item>"
        "<item><guid>ok-2</guid><title>Unclosed <b>bold</title><link>/r/2</link></item>"
    )
    result = parse(body)
    assert result.bozo is True
    assert result.error is None
    assert [c.guid for c in result.entries] == ["ok-1", "ok-2"]
    assert result.entries[0].url == "https://gov.example/r/1"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n",
        bytes(range(256)) * 4,
        b"\x00\x00\x00\x00",
        b"<html><head><title>Not found</title></head><body><p>404</p></body></html>",
        b"{not json",
        b'["a", "list"]',
        b'{"title": "no items, no version"}',
        b"[" * 100_000,
        b'{"a":' * 100_000,
        b"\xff\xfe<\x00r\x00",
    ],
)
def test_unusable_documents_give_an_error_and_never_raise(body: bytes) -> None:
    result = parse(body)
    assert result.format == "unknown"
    assert result.entries == ()
    assert result.error


def test_odd_content_types_never_raise() -> None:
    body = rss("<item><guid>ct</guid></item>").encode("utf-8")
    for content_type in ("text/xml; charset=bogus-42", "text/html", "", ";;;", "application/json"):
        assert only(parse(body, content_type=content_type)).guid == "ct"


def test_empty_feeds_have_no_entries_and_no_error() -> None:
    for body in (
        rss(""),
        ATOM.format(entries=""),
        json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": []}),
    ):
        result = parse(body)
        assert result.entries == ()
        assert result.error is None
        assert result.format != "unknown"


@pytest.mark.slow
def test_ten_thousand_items_parse_in_seconds() -> None:
    items = "".join(
        f"<item><title>Statement {i} &amp; more</title><link>/s/{i}</link><guid>g{i}</guid>"
        f"<pubDate>Mon, 03 Apr 2023 01:02:03 GMT</pubDate>"
        f"<description>&lt;p&gt;Paragraph {i}&lt;/p&gt;</description><category>c</category></item>"
        for i in range(10_000)
    )
    started = time.perf_counter()
    result = parse(rss(items))
    elapsed = time.perf_counter() - started
    assert len(result.entries) == 10_000
    assert result.entries[-1].url == "https://gov.example/s/9999"
    assert elapsed < 10, f"10,000 items took {elapsed:.1f} s"


def _xxe_documents(target: str) -> list[bytes]:
    rss_xxe = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "{target}">\n]>\n'
        "<rss version='2.0'><channel><title>&xxe;</title><item><guid>x</guid>"
        "<title>&xxe;</title><description>&xxe;</description></item></channel></rss>"
    )
    one_line = rss_xxe.replace("\n", "")
    atom_xxe = (
        f'<?xml version="1.0"?><!DOCTYPE feed [ <!ENTITY xxe SYSTEM "{target}"> ]>'
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>&xxe;</title>'
        "<entry><id>x</id><title>&xxe;</title><content>&xxe;</content></entry></feed>"
    )
    parameter = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % p SYSTEM "{target}"> %p;]>'
        "<rss version='2.0'><channel><item><guid>x</guid></item></channel></rss>"
    )
    utf16 = rss_xxe.replace('version="1.0"?>', 'version="1.0" encoding="utf-16"?>')
    return [
        rss_xxe.encode(),
        one_line.encode(),
        atom_xxe.encode(),
        parameter.encode(),
        utf16.encode("utf-16"),
    ]


def test_xxe_does_not_read_local_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:TOP-SECRET-MARKER\n")
    for target in ("file:///etc/passwd", secret.as_uri(), str(secret)):
        for body in _xxe_documents(target):
            result = parse(body)
            dumped = repr(result)
            assert "root:" not in dumped
            assert "TOP-SECRET-MARKER" not in dumped
            assert result.error is not None and "refused" in result.error


def _billion_laughs(separator: str) -> str:
    lines = ['<!ENTITY lol "lol">']
    for i in range(1, 10):
        reference = "&lol;" if i == 1 else f"&lol{i - 1};"
        lines.append(f'<!ENTITY lol{i} "{reference * 10}">')
    dtd = separator.join(lines)
    return (
        f'<?xml version="1.0"?>{separator}<!DOCTYPE rss [{separator}{dtd}{separator}]>'
        "<rss version='2.0'><channel><title>&lol9;</title>"
        "<item><guid>b</guid><title>&lol9;</title><description>&lol9;</description></item>"
        "</channel></rss>"
    )


def _quadratic_blowup() -> str:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "{"A" * 50_000}">\n]>\n'
        "<rss version='2.0'><channel><item><guid>q</guid>"
        f"<description>{'&a;' * 20_000}</description></item></channel></rss>"
    )


@pytest.mark.parametrize(
    "body",
    [
        _billion_laughs("\n").encode(),
        _billion_laughs("").encode(),  # the one-line form slips past feedparser's own filter
        _billion_laughs("\n  ").encode(),
        _billion_laughs("").replace('"1.0"?>', '"1.0" encoding="utf-16"?>').encode("utf-16"),
        _quadratic_blowup().encode(),  # feedparser's fallback parser expands this without limit
    ],
    ids=["multiline", "one-line", "indented", "utf-16", "quadratic"],
)
def test_entity_expansion_is_refused_quickly(body: bytes) -> None:
    started = time.perf_counter()
    result = parse(body)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"took {elapsed:.2f} s"
    assert len(repr(result)) < 2_000
    assert result.entries == ()
    assert result.error is not None and "refused" in result.error


def test_harmless_internal_entities_still_work() -> None:
    body = (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n  <!ENTITY id "tag:gov.example,">\n'
        '  <!ENTITY copy "&#169;">\n]>\n'
        "<rss version='2.0'><channel><item><guid isPermaLink='false'>&id;2024:/s/1</guid>"
        "<title>&copy; Ministry</title></item></channel></rss>"
    )
    entry = only(parse(body))
    assert entry.guid == "tag:gov.example,2024:/s/1"
    assert entry.title == "© Ministry"


# --- process pool contract -------------------------------------------------------------


def test_result_survives_a_pickle_round_trip() -> None:
    result = parse(
        rss("<item><guid>p</guid><pubDate>Mon, 01 Jan 2024 00:00:00 GMT</pubDate></item>")
    )
    assert pickle.loads(pickle.dumps(result)) == result
    failed = parse(b"garbage")
    assert pickle.loads(pickle.dumps(failed)) == failed


def test_runs_in_a_process_pool() -> None:
    body = rss("<item><guid>pool</guid><link>/pool</link></item>").encode()
    with ProcessPoolExecutor(max_workers=1) as pool:
        future = pool.submit(parse_document, body, source_id="gov", feed_url=FEED_URL)
        result = future.result(timeout=60)
    assert only(result).url == "https://gov.example/pool"

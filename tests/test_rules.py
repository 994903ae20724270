"""Per-source extraction rules: the rule functions, `extract_article(rules=...)`, `monitor extract`."""

from __future__ import annotations

import datetime as dt
import json
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import trafilatura
import yaml
from click.testing import CliRunner, Result

from monitor.cli import main
from monitor.errors import ExtractionError
from monitor.extract import EMPTY, extract_article
from monitor.extract.rules import (
    RuleOutcome,
    apply_rules,
    content_paragraphs,
    parse_date_text,
    remove_matches,
    selected_date,
    selected_title,
)
from monitor.models import Article, ExtractionRules
from tests.conftest import make_config

UTC = dt.UTC
NAV = (
    "<header><nav><ul>"
    + "".join(f'<li><a href="/en/section-{i}">Section {i}</a></li>' for i in range(12))
    + "</ul></nav></header>"
)

# --- realistic pages ---------------------------------------------------------------

# A ministry press release (a Drupal site): a short statement in div.field--name-body,
# then a "Related press releases" view of forty teasers that outweighs it.
MINISTRY_URL = "https://www.finance-ministry.example/en/press/2026/eurogroup-backstop"
MINISTRY_STATEMENT = (
    "The Federal Ministry of Finance welcomes today's agreement of the Eurogroup on the "
    "common backstop to the Single Resolution Fund.",
    "“This is an important step towards completing the banking union,” the Minister said "
    "after the meeting in Brussels.",
)
MINISTRY_TITLE = "Eurogroup agrees on common backstop"
TEASER = "Minister meets counterparts from partner countries"


def _teasers(count: int) -> str:
    return "".join(
        f'<div class="views-row"><article class="node--teaser"><h3><a href="/en/press/{i}">'
        f"{TEASER} to discuss fiscal policy, meeting {i}</a></h3>"
        '<div class="field--name-field-teaser"><p>The Minister held talks on budgetary '
        f"coordination, investment priorities and the recovery plan, round {i}, in Brussels.</p>"
        f'</div><time datetime="2026-10-{i % 28 + 1:02d}">{i % 28 + 1}.10.2026</time>'
        "</article></div>"
        for i in range(count)
    )


def ministry_page() -> str:
    body = "".join(f"<p>{paragraph}</p>" for paragraph in MINISTRY_STATEMENT)
    return f"""<!DOCTYPE html><html lang="en"><head>
<title>Press releases | Federal Ministry of Finance</title>
<meta property="og:site_name" content="Federal Ministry of Finance"></head><body>{NAV}
<main><div class="page-header"><h2 class="page-title">  {MINISTRY_TITLE}
</h2><span class="press-date">Press release 24.11.2026</span></div>
<div class="node__content"><div class="field--name-body">{body}</div></div>
<section class="view-related-news"><h2>Related press releases</h2>{_teasers(40)}</section>
</main><footer><p>© 2026 Federal Ministry of Finance</p></footer></body></html>"""


# A foreign ministry's "Comment by the Official Spokesperson": the CMS puts the body in
# div.comment-text, which Trafilatura discards as reader comments.
COMMENT_URL = "https://www.mfa.example/en/comments/1745"
COMMENT_QUOTE = "“Such claims have nothing to do with reality,” the Official Spokesperson said."
COMMENT_BODY = (
    "<p>We have taken note of the statement made yesterday by the foreign ministry of a "
    f"neighbouring country.</p><p>{COMMENT_QUOTE}</p>"
)
COMMENT_HEAD = (
    "<title>Comment by the Official Spokesperson</title>"
    '<meta property="og:site_name" content="Ministry of Foreign Affairs">'
    '<meta property="article:published_time" content="2026-11-24T12:00:00+03:00">'
)


def comment_page(*, with_navigation: bool = True) -> str:
    chrome = NAV if with_navigation else ""
    headline = "<h1>Comment by the Official Spokesperson on a statement</h1>" if chrome else ""
    return (
        f'<!DOCTYPE html><html lang="en"><head>{COMMENT_HEAD}</head><body>{chrome}'
        f'<main>{headline}<div class="comment-text">{COMMENT_BODY}</div></main>'
        f"{'<footer><p>© MFA</p></footer>' if chrome else ''}</body></html>"
    )


# A government statement whose "Related statements" box of teasers sits inside the
# article, where generic extraction takes it for more of the statement.
FLOOD_URL = "https://www.government.example/statements/flooding"
FLOOD_STATEMENT = (
    "The Government expresses its deepest condolences to the families of the victims of "
    "the flooding in the northern provinces.",
    "Emergency teams have been deployed and an additional 40 million euros has been "
    "released for reconstruction.",
)
RELATED = "The reconstruction fund set up after last year's wildfires has paid out"


def flood_page(date: str = "24 November 2026") -> str:
    body = "".join(f"<p>{paragraph}</p>" for paragraph in FLOOD_STATEMENT)
    return f"""<!DOCTYPE html><html lang="en"><head>
<title>Statement on the flooding in the northern provinces | Government of Examples</title>
</head><body>{NAV}<main><article><h1>Statement on the flooding in the northern provinces</h1>
<div class="meta"><span class="label">Published:</span> <span class="date">{date}</span></div>
<div class="field-body">{body}</div>
<div class="block-statements-list"><h2>Related statements</h2>
<div class="item"><h3>Statement on the storm warning for the coastal regions</h3><p>The Government
urged residents of the coastal regions to follow the instructions of the emergency services.</p></div>
<div class="item"><h3>Statement on the reconstruction fund</h3><p>{RELATED} 120 million
euros to households and municipalities.</p></div></div>
</article></main><footer><p>© 2026 Government of Examples</p></footer></body></html>"""


def tree_of(html: str) -> Any:
    return trafilatura.load_html(html)


# --- content_selector ----------------------------------------------------------------


def test_content_paragraphs_takes_every_match_in_order_without_nested_ones() -> None:
    tree = tree_of(
        "<html><body><div class='body'><p>First <b>block</b>.</p>"
        "<div class='body'><p>Nested match.</p></div></div>"
        "<p>Outside.</p><section class='body'>Line one<br>line two"
        "<dl><dt>Venue</dt><dd>Brussels</dd></dl></section></body></html>"
    )
    assert content_paragraphs(tree, ".body") == [
        "First block.",
        "Nested match.",
        "Line one",
        "line two",
        "Venue",
        "Brussels",
    ]


def test_content_paragraphs_leave_out_scripts_styles_and_forms() -> None:
    tree = tree_of(
        "<html><body><div id='s'><style>p{color:red}</style><p>Statement text.</p>"
        "<script>track('statement');</script><noscript>Enable JavaScript</noscript>"
        "<button>Print</button><p>End.</p></div></body></html>"
    )
    assert content_paragraphs(tree, "#s") == ["Statement text.", "End."]


def test_content_match_without_text_is_a_miss() -> None:
    tree = tree_of("<html><body><div class='body'> <script>x()</script> </div><p>t</p></body></html>")
    outcome = apply_rules(tree, ExtractionRules(content_selector="div.body"))
    assert outcome.paragraphs == ()
    assert outcome.misses == ("content_selector",)


# --- remove_selectors ----------------------------------------------------------------


def test_remove_matches_drops_elements_and_keeps_the_text_after_them() -> None:
    tree = tree_of(
        "<html><body><p>Before <span class='ad'>AD <span class='ad'>inner</span></span>"
        "after.</p><div class='share'>Share</div><p>Last.</p></body></html>"
    )
    assert remove_matches(tree, (".ad", ".share", ".absent")) == 2
    assert content_paragraphs(tree, "body") == ["Before after.", "Last."]


def test_remove_selectors_miss_only_when_none_matched() -> None:
    html = "<html><body><p class='x'>a</p><p>b</p></body></html>"
    matched = apply_rules(tree_of(html), ExtractionRules(remove_selectors=(".absent", ".x")))
    missed = apply_rules(tree_of(html), ExtractionRules(remove_selectors=(".absent", ".none")))
    assert matched.misses == ()
    assert missed.misses == ("remove_selectors",)


# --- title_selector --------------------------------------------------------------


def test_selected_title_is_the_first_match_with_text_on_one_line() -> None:
    tree = tree_of(
        "<html><head><meta property='og:title' content=' Meta  title '></head><body>"
        "<h2 class='t'> </h2><h2 class='t'>Statement\n  on the <em>budget</em><br>2027</h2>"
        "<h2 class='t'>Second</h2></body></html>"
    )
    assert selected_title(tree, "h2.t") == "Statement on the budget 2027"
    assert selected_title(tree, "meta[property='og:title']") == "Meta title"
    assert selected_title(tree, "h1") is None


# --- date_selector ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "date_format", "expected"),
    [
        ("24.11.2026", "%d.%m.%Y", dt.datetime(2026, 11, 24)),
        (" Press release  24.11.2026 ", "Press release %d.%m.%Y", dt.datetime(2026, 11, 24)),
        ("24.11.2026 14:30 +0100", "%d.%m.%Y %H:%M %z",
         dt.datetime(2026, 11, 24, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))),
        ("Published 24.11.2026", "%d.%m.%Y", None),  # a format is strict: fix it, or drop it
        ("24 November 2026", None, dt.datetime(2026, 11, 24)),
        ("Published on November 24, 2026 at 14:30 CET", None,
         dt.datetime(2026, 11, 24, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))),
        ("03.04.2026", None, dt.datetime(2026, 4, 3)),  # dotted dates are day-first
        ("2026-11-24T10:00:00Z", None, dt.datetime(2026, 11, 24, 10, tzinfo=UTC)),
        ("Monday", None, None),
        ("November 2026", None, None),  # no day: not a publication date
        ("Ref. No. 1745-26", None, None),
        ("", None, None),
    ],
)
def test_parse_date_text(text: str, date_format: str | None, expected: dt.datetime | None) -> None:
    assert parse_date_text(text, date_format) == expected


def test_selected_date_prefers_the_datetime_attribute_and_falls_back_to_the_text() -> None:
    tree = tree_of(
        "<html><body><time class='a' datetime='2026-11-24T09:00:00+02:00'>today</time>"
        "<time class='b' datetime='soon'>24.11.2026</time>"
        "<span class='c'>no date here</span><span class='c'>25.11.2026</span></body></html>"
    )
    cet = dt.timezone(dt.timedelta(hours=2))
    assert selected_date(tree, "time.a") == dt.datetime(2026, 11, 24, 9, tzinfo=cet)
    assert selected_date(tree, "time.b", "%d.%m.%Y") == dt.datetime(2026, 11, 24)
    assert selected_date(tree, "span.c") == dt.datetime(2026, 11, 25)
    assert selected_date(tree, "span.absent") is None


def test_apply_rules_without_rules_does_nothing() -> None:
    html = "<html><body><p>Text.</p></body></html>"
    assert apply_rules(tree_of(html), None) == RuleOutcome()
    assert apply_rules(tree_of(html), ExtractionRules()) == RuleOutcome()


def test_apply_rules_names_every_rule_that_matched_nothing() -> None:
    tree = tree_of("<html><body><h1>Title</h1><p class='d'>not a date</p></body></html>")
    rules = ExtractionRules(
        content_selector=".body",
        title_selector="h1",
        date_selector="p.d",
        remove_selectors=(".ad",),
    )
    outcome = apply_rules(tree, rules)
    assert outcome.title == "Title"
    assert outcome.misses == ("remove_selectors", "content_selector", "date_selector")


# --- extract_article with rules ------------------------------------------------------


def test_content_selector_rescues_a_statement_buried_under_related_news() -> None:
    generic = extract_article(ministry_page(), url=MINISTRY_URL)
    assert TEASER in generic.text  # generic extraction takes the related-news view

    ruled = extract_article(
        ministry_page(),
        url=MINISTRY_URL,
        rules=ExtractionRules(content_selector="div.field--name-body"),
    )
    assert ruled.text == "\n\n".join(MINISTRY_STATEMENT)
    assert ruled.rule_misses == ()
    assert ruled.sitename == "Federal Ministry of Finance"  # Trafilatura's metadata stays


def test_content_selector_rescues_a_statement_generic_extraction_drops() -> None:
    generic = extract_article(comment_page(), url=COMMENT_URL)
    assert COMMENT_QUOTE not in generic.text

    ruled = extract_article(
        comment_page(), url=COMMENT_URL, rules=ExtractionRules(content_selector="div.comment-text")
    )
    assert ruled.text.endswith(COMMENT_QUOTE)
    assert ruled.text.startswith("We have taken note")


def test_content_selector_wins_where_trafilatura_finds_no_text_at_all() -> None:
    html = comment_page(with_navigation=False)
    with pytest.raises(ExtractionError) as raised:
        extract_article(html, url=COMMENT_URL)
    assert raised.value.reason == EMPTY

    ruled = extract_article(
        html, url=COMMENT_URL, rules=ExtractionRules(content_selector="div.comment-text")
    )
    assert ruled.text.endswith(COMMENT_QUOTE)
    assert ruled.rule_misses == ()
    # the page's metadata is still read, without Trafilatura's main text
    assert ruled.title == "Comment by the Official Spokesperson"
    assert ruled.sitename == "Ministry of Foreign Affairs"
    assert ruled.published_at == dt.datetime(2026, 11, 24, 9, tzinfo=UTC)


def test_title_selector_overrides_a_section_name_title() -> None:
    generic = extract_article(ministry_page(), url=MINISTRY_URL)
    assert generic.title != MINISTRY_TITLE
    ruled = extract_article(
        ministry_page(), url=MINISTRY_URL, rules=ExtractionRules(title_selector="h2.page-title")
    )
    assert ruled.title == MINISTRY_TITLE
    assert ruled.text == generic.text


def test_date_selector_with_a_date_format() -> None:
    rules = ExtractionRules(date_selector=".press-date", date_format="Press release %d.%m.%Y")
    article = extract_article(ministry_page(), url=MINISTRY_URL, rules=rules)
    assert article.published_at == dt.datetime(2026, 11, 24, tzinfo=UTC)
    assert article.rule_misses == ()


def test_date_selector_without_a_format_parses_leniently_as_utc() -> None:
    rules = ExtractionRules(date_selector="span.date")
    article = extract_article(flood_page("24.11.2026, 16:45"), url=FLOOD_URL, rules=rules)
    assert article.published_at == dt.datetime(2026, 11, 24, 16, 45, tzinfo=UTC)


def test_a_day_only_rule_date_takes_the_feed_time_of_that_day() -> None:
    rules = ExtractionRules(date_selector="span.date", date_format="%d.%m.%Y")
    feed_time = dt.datetime(2026, 11, 24, 15, 5, tzinfo=UTC)
    article = extract_article(
        flood_page("24.11.2026"), url=FLOOD_URL, feed_published_at=feed_time, rules=rules
    )
    assert article.published_at == feed_time


def test_remove_selectors_drop_a_related_statements_box() -> None:
    generic = extract_article(flood_page(), url=FLOOD_URL)
    assert RELATED in generic.text

    ruled = extract_article(
        flood_page(),
        url=FLOOD_URL,
        rules=ExtractionRules(remove_selectors=("div.block-statements-list", "div.share")),
    )
    assert RELATED not in ruled.text
    assert ruled.text.endswith(FLOOD_STATEMENT[-1])
    assert ruled.rule_misses == ()


def test_every_rule_missing_is_reported_and_the_generic_result_stands() -> None:
    rules = ExtractionRules(
        content_selector="div.statement-body",
        title_selector="h1.statement-title",
        date_selector="time.published",
        date_format="%d.%m.%Y",
        remove_selectors=("div.related-items", "div.social-share"),
    )
    generic = extract_article(flood_page(), url=FLOOD_URL)
    ruled = extract_article(flood_page(), url=FLOOD_URL, rules=rules)
    assert ruled.rule_misses == (
        "remove_selectors",
        "content_selector",
        "title_selector",
        "date_selector",
    )
    assert (ruled.title, ruled.text, ruled.published_at) == (
        generic.title,
        generic.text,
        generic.published_at,
    )


def test_a_date_that_does_not_parse_is_a_miss() -> None:
    rules = ExtractionRules(date_selector="span.label")  # "Published:" holds no date
    article = extract_article(flood_page(), url=FLOOD_URL, rules=rules)
    assert article.rule_misses == ("date_selector",)


def _extract_with_rules(html: str) -> Article:
    return extract_article(
        html, url=MINISTRY_URL, rules=ExtractionRules(content_selector="div.field--name-body")
    )


def test_rules_cross_the_process_pool() -> None:
    rules = ExtractionRules(content_selector="div.x", remove_selectors=("p.y",))
    assert pickle.loads(pickle.dumps(rules)) == rules
    with ProcessPoolExecutor(max_workers=1) as pool:
        article = pool.submit(_extract_with_rules, ministry_page()).result(timeout=120)
    assert article.text == "\n\n".join(MINISTRY_STATEMENT)


# --- monitor extract ------------------------------------------------------------------


@pytest.fixture
def ministry_file(tmp_path: Path) -> Path:
    path = tmp_path / "press-release.html"
    path.write_text(ministry_page(), encoding="utf-8")
    return path


def run_extract(*args: str) -> Result:
    return CliRunner().invoke(main, ["extract", "--url", MINISTRY_URL, *args])


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def write_config(tmp_path: Path, **source: Any) -> Path:
    config = make_config(
        tmp_path,
        bootstrap="127.0.0.1:9092",
        topic="statements",
        sources=[
            {"id": "other", "url": "https://other.example/feed.xml"},
            {"id": "finance", "url": "https://www.finance-ministry.example/feed.xml", **source},
        ],
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_cli_tries_rules_on_a_file(ministry_file: Path) -> None:
    result = run_extract(
        "--content-selector", "div.field--name-body",
        "--title-selector", "h2.page-title",
        "--date-selector", ".press-date",
        "--date-format", "Press release %d.%m.%Y",
        "--remove-selector", "section.view-related-news",
        "--remove-selector", "div.cookie-banner",
        str(ministry_file),
    )
    assert result.exit_code == 0, result.output
    [line] = json_lines(result)
    assert line["title"] == MINISTRY_TITLE
    assert line["text"] == "\n\n".join(MINISTRY_STATEMENT)
    assert line["published_at"].startswith("2026-11-24T00:00:00")
    assert line["rule_misses"] == []


def test_cli_reports_rules_that_matched_nothing(ministry_file: Path) -> None:
    result = run_extract("--content-selector", "div.statement-body", str(ministry_file))
    assert result.exit_code == 0, result.output
    [line] = json_lines(result)
    assert line["rule_misses"] == ["content_selector"]
    assert TEASER in line["text"]  # the generic extraction stood in


def test_cli_without_rules_prints_no_rule_misses(ministry_file: Path) -> None:
    result = run_extract(str(ministry_file))
    assert result.exit_code == 0, result.output
    assert "rule_misses" not in json_lines(result)[0]


def test_cli_applies_the_rules_of_a_configured_source(tmp_path: Path, ministry_file: Path) -> None:
    config = write_config(
        tmp_path,
        content_selector="div.field--name-body",
        title_selector="h2.absent",
        date_selector=".press-date",
        date_format="Press release %d.%m.%Y",
    )
    result = run_extract("--config", str(config), "--source", "finance", str(ministry_file))
    assert result.exit_code == 0, result.output
    [line] = json_lines(result)
    assert line["text"] == "\n\n".join(MINISTRY_STATEMENT)
    assert line["rule_misses"] == ["title_selector"]

    # an option replaces the source's rule of the same name
    result = run_extract(
        "--config", str(config), "--source", "finance",
        "--title-selector", "h2.page-title", str(ministry_file),
    )
    [line] = json_lines(result)
    assert line["title"] == MINISTRY_TITLE and line["rule_misses"] == []


def test_cli_source_without_rules_extracts_generically(tmp_path: Path, ministry_file: Path) -> None:
    config = write_config(tmp_path)
    result = run_extract("--config", str(config), "--source", "other", str(ministry_file))
    assert result.exit_code == 0, result.output
    assert "rule_misses" not in json_lines(result)[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--content-selector", "div[", "x.html"], "--content-selector: not a valid CSS selector"),
        (["--remove-selector", "p", "--remove-selector", "::", "x.html"], "--remove-selector"),
        (["--date-format", "%d.%m.%Y", "x.html"], "--date-format: needs --date-selector"),
        (["--config", "config.yaml", "x.html"], "--config is read only for the rules of --source"),
    ],
)
def test_cli_rejects_unusable_rule_options(args: list[str], message: str) -> None:
    result = run_extract(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_cli_rejects_an_unknown_source(tmp_path: Path, ministry_file: Path) -> None:
    config = write_config(tmp_path)
    result = run_extract("--config", str(config), "--source", "nope", str(ministry_file))
    assert result.exit_code == 2
    assert "no source has the id 'nope' (configured: other, finance)" in result.output

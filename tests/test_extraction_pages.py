"""The official-layout pages of bench/pages and the extraction benchmark's scoring.

Each bench/pages case is a hand-built page modelled on a ministry, government
or central bank site, with its true text, title and date: extraction must
keep F1 >= `MIN_F1` on the text and get the title and the day exactly, so a
regression in extraction fails here rather than only in the benchmark.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from monitor.extract import clean_title, extract_article
from monitor.extract.text import trim_page_furniture

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "bench" / "pages"
CASES = sorted(path.name for path in PAGES.iterdir() if (path / "source.html").is_file())
MIN_F1 = 0.95


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_extraction", ROOT / "bench" / "extraction.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def test_there_are_enough_official_pages() -> None:
    assert len(CASES) >= 8


@pytest.mark.parametrize("case", CASES)
def test_official_page(case: str) -> None:
    folder = PAGES / case
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    expected = (folder / "expected.txt").read_text(encoding="utf-8")
    article = extract_article((folder / "source.html").read_bytes(), url=meta.get("url"))

    assert bench.shingle_score(article.text, expected).f1 >= MIN_F1
    assert article.title == meta["title"]
    assert article.published_at is not None
    assert article.published_at.date() == dt.date.fromisoformat(meta["published"])
    assert article.language == meta["lang"]
    # paragraphs are separated by exactly one blank line
    assert "\n\n\n" not in article.text and article.text == article.text.strip()


# --- the benchmark's scoring ---------------------------------------------------------


def test_tokens_are_unicode_words_lowercased_without_punctuation() -> None:
    assert bench.tokens("«Rien ne peut», a-t-il dit: МИД России_2025!") == [
        "rien",
        "ne",
        "peut",
        "a",
        "t",
        "il",
        "dit",
        "мид",
        "россии",
        "2025",
    ]


def test_identical_texts_score_one_whatever_the_layout() -> None:
    score = bench.shingle_score("One two three four five.\n\nSix", "one two, three four five six")
    assert (score.precision, score.recall, score.f1) == (1.0, 1.0, 1.0)


def test_precision_recall_and_f1_on_toy_strings() -> None:
    # reference: a b c d e f -> 3 shingles; extraction: a b c d e x y -> 4 shingles
    score = bench.shingle_score("a b c d e x y", "a b c d e f")
    assert score.precision == pytest.approx(2 / 4)  # abcd, bcde shared
    assert score.recall == pytest.approx(2 / 3)
    assert score.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_repeated_text_counts_as_often_as_it_comes() -> None:
    doubled = bench.shingle_score("a b c d a b c d", "a b c d")
    assert doubled.recall == 1.0 and doubled.precision == pytest.approx(1 / 5)


def test_empty_and_short_texts() -> None:
    assert bench.shingle_score("", "a b c d e").f1 == 0.0
    assert bench.shingle_score("", "").f1 == 1.0
    assert bench.shingle_score("a b", "a b").f1 == 1.0  # shorter than a shingle: one shingle
    assert bench.shingle_score("x y z w", "a b c d").f1 == 0.0


def test_titles_and_dates() -> None:
    assert bench.same_title("Monetary Policy  Decisions", "monetary policy decisions.")
    assert not bench.same_title("Mozilla", "Mozilla - Wikipedia")
    assert bench.same_title_but_site("Mozilla", "Mozilla - Wikipedia")
    assert bench.same_title_but_site("Headline", "Headline_Ministry_Site")
    assert not bench.same_title_but_site("Other headline", "Headline - Site")
    assert bench.same_day("2015-07-24T04:36:09Z", "2015-07-24T05:36:09+01:00")
    assert bench.same_day("2021-10-31T23:52:50Z", "2021-11-01T00:52:50+0100")  # UTC day counts
    assert not bench.same_day("2018-06-14T00:00:00Z", "2018-06-12T23:00:00.000Z")
    assert not bench.same_day(None, "2020-01-01")


def test_reference_html_keeps_blocks_apart() -> None:
    assert bench.tokens(bench.html_text("<div><p>end</p><p>Next</p></div>")) == ["end", "next"]


# --- the generic rules the official pages exercise --------------------------------------


@pytest.mark.parametrize(
    "paragraph",
    [
        "Updated: March 04, 2025 19:30",
        "Mis à jour le 15 novembre 2024",
        "12.03.2025 15:40",
        "Partager Twitter Facebook Courriel",
        "Поделиться: ВКонтакте Telegram",
    ],
)
def test_date_lines_and_share_bars_are_trimmed_at_the_ends(paragraph: str) -> None:
    body = ["The minister said the talks were useful.", "They will resume in May."]
    assert trim_page_furniture([paragraph, *body, paragraph]) == body


def test_dates_in_the_middle_and_datelines_in_sentences_stay() -> None:
    paragraphs = ["Moscow, 12 March 2025", "12 March 2025", "On 12 March 2025 the talks began."]
    assert trim_page_furniture(paragraphs) == paragraphs
    assert trim_page_furniture(["12 March 2025"]) == ["12 March 2025"]


def test_underscore_joins_headline_and_site() -> None:
    title = "Spokesperson's Regular Press Conference on March 4, 2025_Ministry of Foreign Affairs"
    headline = "Spokesperson's Regular Press Conference on March 4, 2025"
    assert clean_title(title, headlines=[headline]) == headline
    assert clean_title("Using os_path_join in Python") == "Using os_path_join in Python"


def test_unnamed_site_suffix_goes_only_when_nothing_names_the_site() -> None:
    assert clean_title("Lorem ipsum dolor sit amet – My website") == "Lorem ipsum dolor sit amet"
    assert clean_title("draft-dejong-remotestorage-04 - remoteStorage").endswith("remoteStorage")
    kept = "Kremlin statement on Syria - News"
    assert clean_title(kept, hostname="kremlin.ru") == kept


def test_headline_in_the_articles_own_header_is_not_a_logo() -> None:
    page = (
        "<html><head><title>Budget statement · Treasury</title></head><body>"
        "<header><h1><a href='/'>Treasury</a></h1></header><main><article><header>"
        "<h1>Budget statement</h1></header><p>"
        + "The budget is balanced this year. " * 8
        + "</p></article></main></body></html>"
    )
    assert extract_article(page).title == "Budget statement"

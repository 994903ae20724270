"""Property tests: extraction and every enrichment step are total functions.

Hypothesis feeds `find_quotes`, `enrich` and `find_figures` random and mutated
text (quotation marks at the very edges, unpaired marks, names at text edges,
empty paragraphs, only punctuation, mixed scripts, very long paragraphs), and
`extract_article` random and mutated HTML around the shared corpus pages. The
properties: no exception, bounded time (Hypothesis's per-example deadline),
and quotations that are substrings of the text they come from.

Example counts are kept small and the runs derandomized, so CI stays fast and
a failure reproduces.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.errors import ExtractionError
from monitor.extract.article import extract_article
from monitor.extract.enrich import enrich
from monitor.extract.quotes import find_quotes
from monitor.models import Watchlist
from tests.conftest import SHARED

_WS = re.compile(r"\s+")
# Generous: one example is milliseconds; the bound is there to catch runaway work.
PROPERTY = settings(
    max_examples=150,
    deadline=5000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Pieces that exercise the attribution code: marks of every kind, reporting verbs,
# names, particles ("Von", "de"), titles, pronouns, Cyrillic, digits, blank lines.
FRAGMENTS = [
    "“",
    "”",
    "„",
    "“",
    "«",
    "»",
    "‹",
    "›",
    "‚",
    "‘",
    "’",
    '"',
    "'",
    " ",
    "  ",
    "\n",
    "\n\n",
    ",",
    ".",
    ":",
    ";",
    "—",
    "-",
    "(",
    ")",
    "!",
    "?",
    "said",
    "says",
    "stated",
    "told",
    "added",
    "sagte",
    "erklärte",
    "a déclaré",
    "a-t-il déclaré",
    "заявил",
    "по словам",
    "According to",
    "Selon",
    "По словам",
    "he",
    "she",
    "He",
    "They",
    "the minister",
    "The Minister",
    "spokeswoman of the Ministry",
    "Andrei Kartapolov",
    "Kartapolov",
    "Maria Zakharova",
    "Von",
    "von",
    "De",
    "de",
    "Van",
    "Der",
    "bin",
    "Al",
    "M.",
    "Mr",
    "Colonel General",
    "Chief of the General Staff",
    "Лавров",
    "Лаврова",
    "Мария Захарова",
    "Сергей Викторович Лавров",
    "министр",
    "Scholz",
    "Bundesministerin",
    "ministère",
    "U.S.",
    "H.R. 5062",
    "46",
    "1,200",
    "$2.5 billion",
    "ISIS",
    "Wir werden das schaffen",
    "We will win",
    "Nous allons gagner",
    "Мы победим",
    "that",
    "dass",
    "que",
    "что",
    "and",
    "und",
    "of",
    "the",
]

edge_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=60).map(
    "".join
)


OPENERS = ["“", "„", "«", "»", "‹", "‚", '"', "'"]
CLOSERS = ["”", "“", "»", "«", "›", "‘", '"', "'"]
VERBS = ["said", "stated", "sagte", "a déclaré", "заявил", "added", "told"]
NAME_WORDS = [
    "Andrei",
    "Kartapolov",
    "Von",
    "von",
    "De",
    "de",
    "Van",
    "Al",
    "bin",
    "M.",
    "Colonel",
    "General",
    "Minister",
    "Лавров",
    "the",
    "he",
    "Ministry",
    "",
]


@st.composite
def quote_shaped(draw: st.DrawFn) -> str:
    """Text shaped like an attributed quotation, with its parts drawn at random:
    `“…,” said Name` and `Name said: “…”`, names at the very end or start."""
    words = draw(
        st.lists(st.sampled_from(["We", "will", "win", "this", "war", "now", "x"]), max_size=8)
    )
    quote = (
        draw(st.sampled_from(OPENERS))
        + " ".join(words)
        + draw(st.sampled_from([",", "", "."]))
        + draw(st.sampled_from(CLOSERS))
    )
    verb = draw(st.sampled_from(VERBS))
    name = " ".join(draw(st.lists(st.sampled_from(NAME_WORDS), max_size=4)))
    end = draw(st.sampled_from(["", ".", ",", " at the briefing."]))
    if draw(st.booleans()):
        return f"{quote} {verb} {name}{end}"
    return f"{name} {verb}{draw(st.sampled_from([':', ',', '']))} {quote}{end}"


def _seed_text() -> str | None:
    path = SHARED / "seed/official-statement-example.txt"
    return path.read_text(encoding="utf-8") if path.exists() else None


SEED_TEXT = _seed_text() or (
    "“Last week situation in Syria changed significantly,” said Andrei Kartapolov.\n\n"
    "According to him, 456 objects have been destroyed. “We go on,” he added."
)


@st.composite
def mutated(draw: st.DrawFn, base: str) -> str:
    """`base` cut, spliced and sprinkled with fragments, a few edits deep."""
    text = base
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["cut_head", "cut_tail", "delete", "insert", "dup"]))
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 200)))
        if op == "cut_head":
            text = text[i:]
        elif op == "cut_tail":
            text = text[:i]
        elif op == "delete":
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(FRAGMENTS)) + text[i:]
        else:
            text = text[:j] + text[i:j] + text[j:]
    return text


def assert_quotes_are_in(text: str) -> None:
    quotes, speakers = find_quotes(text)
    flat = _WS.sub(" ", text)
    for quote in quotes:
        assert quote.text, quote
        assert quote.text in flat, quote
        if quote.speaker is not None:
            assert quote.speaker.strip(), quote
    for speaker in speakers:
        assert speaker.name.strip(), speaker


# --- find_quotes ------------------------------------------------------------------


@PROPERTY
@given(edge_text)
def test_find_quotes_is_total_on_random_fragments(text: str) -> None:
    assert_quotes_are_in(text)


@PROPERTY
@given(quote_shaped())
def test_find_quotes_is_total_on_quote_shaped_text(text: str) -> None:
    assert_quotes_are_in(text)


@PROPERTY
@given(mutated(SEED_TEXT))
def test_find_quotes_is_total_on_the_mutated_seed(text: str) -> None:
    assert_quotes_are_in(text)


@PROPERTY
@given(st.text(max_size=300))
def test_find_quotes_is_total_on_any_unicode(text: str) -> None:
    assert_quotes_are_in(text)


@settings(max_examples=12, deadline=20000, derandomize=True, database=None)
@given(st.sampled_from(FRAGMENTS), st.sampled_from(["“", "«", '"', "„", "", "\n\n"]))
def test_find_quotes_on_paragraphs_of_100k_characters(fragment: str, mark: str) -> None:
    text = mark + (fragment + " ") * (100_000 // (len(fragment) + 1)) + mark
    assert_quotes_are_in(text)


@pytest.mark.parametrize(
    "text",
    [
        "“We will win this war now,” said Von.",
        "“We will win this war now,” said De",
        "“We will win this war now,” said Van",
        "„Wir werden das schaffen“, sagte Von",
        "Von said: “We will win this war now.”",
        "“",
        "”",
        "«»",
        "\n\n",
        "....",
        "“,” said",
        "said “",
        "“x” said Al",
    ],
)
def test_find_quotes_edge_cases_found_by_the_properties(text: str) -> None:
    assert_quotes_are_in(text)


# --- enrichment as the pool runs it -----------------------------------------------

WATCHLISTS = (Watchlist(id="w", terms=("Kartapolov", "ISIS", "Лавров"), regex=(r"\d+ objects",)),)


@PROPERTY
@given(st.one_of(edge_text, mutated(SEED_TEXT)), st.one_of(st.none(), edge_text))
def test_enrich_is_total(text: str, title: str | None) -> None:
    enrich(title, text, WATCHLISTS)


# --- extract_article on mutated corpus pages --------------------------------------


def _corpus_pages(limit: int) -> list[bytes]:
    root = SHARED / "corpus" / "readability" / "pages"
    if not root.is_dir():
        return []
    return [path.read_bytes() for path in sorted(root.glob("*/source.html"))[:limit]]


CORPUS_PAGES = _corpus_pages(40)
TAGS = [
    "<p>",
    "</p>",
    "<div>",
    "</div>",
    "<h1>",
    "</h1>",
    "<time>",
    "<script>",
    "<!--",
    "-->",
    "<![CDATA[",
    "<meta property='og:title' content='“x",
    "&#0;",
    "&amp",
    "\x00",
    "<",
    ">",
    "“",
    "»",
    "<html lang='zz'>",
    "<br>",
    "<table><tr><td>",
]


@st.composite
def mutated_page(draw: st.DrawFn) -> bytes:
    page = draw(st.sampled_from(CORPUS_PAGES))
    for _ in range(draw(st.integers(1, 5))):
        op = draw(st.sampled_from(["cut", "delete", "insert", "bytes"]))
        i = draw(st.integers(0, len(page)))
        if op == "cut":
            page = page[:i]
        elif op == "delete":
            page = page[:i] + page[i + draw(st.integers(0, 5000)) :]
        elif op == "insert":
            page = page[:i] + draw(st.sampled_from(TAGS)).encode() + page[i:]
        else:
            page = page[:i] + draw(st.binary(max_size=16)) + page[i:]
    return page


@pytest.mark.skipif(not CORPUS_PAGES, reason=f"readability corpus not found under {SHARED}")
@settings(
    max_examples=40,
    deadline=20000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_page())
def test_extract_and_enrich_are_total_on_mutated_corpus_pages(page: bytes) -> None:
    try:
        article = extract_article(page, url="https://example.org/a")
    except ExtractionError:
        return  # a clear "this page has nothing": the answer for a broken page
    enrich(article.title, article.text, WATCHLISTS)
    assert_quotes_are_in(article.text)


@settings(max_examples=60, deadline=10000, derandomize=True, database=None)
@given(st.one_of(st.binary(max_size=400), edge_text.map(lambda t: f"<html><body><p>{t}</p>")))
def test_extract_article_is_total_on_random_html(page: bytes | str) -> None:
    try:
        article = extract_article(page)
    except ExtractionError:
        return
    assert_quotes_are_in(article.text)

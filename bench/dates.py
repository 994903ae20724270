"""Dates and titles: the service's `published_at` and `title` next to htmldate's and
Trafilatura's on the same pages.

The dev set:

* readability: the pages of `../shared/corpus/readability/` whose reference has a
  `publishedTime` (33 of them), read at run time; their titles are scored on
  every page with a reference title, with "±site" as in bench/extraction.py
  (Readability keeps site names that the service strips by design);
* official: `bench/dates/pages/*.html` with `bench/dates/expected.json`, pages
  written to mirror official layouts (datelines, press-release date lines in
  four languages, `<time>` in the header, JSON-LD, GOV.UK, sidebars with newer
  dates, pages with no date at all). Regenerate them with
  `bench/dates/make_pages.py`.

Scoring: a date is right when its day is the reference's (a page with no date is
right only when the answer is null); a title is right when its tokens are the
reference's (case, punctuation and whitespace ignored).

Contenders, each on the page's bytes:

* service: `monitor.extract.extract_article(html)` (published_at, title);
* htmldate: `htmldate.find_date(html, original_date=True)`, as run alone;
* trafilatura: `trafilatura.extract_metadata(html)` (date, title).

    python bench/dates.py [--corpus PATH] [--misses]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from extraction import DEFAULT_CORPUS, ROOT, same_day, same_title, same_title_but_site

PAGES = ROOT / "bench" / "dates" / "pages"
EXPECTED = ROOT / "bench" / "dates" / "expected.json"


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    title: str | None
    published: str | None  # None: the page has no date (official set) or none known
    scored_date: bool  # whether the date is scored on this page
    title_but_site: bool  # titles scored with site names tolerated (readability)


@dataclass(frozen=True)
class Answer:
    title: str | None
    published: str | None


@dataclass
class Tally:
    dates: int = 0
    titles: int = 0
    misses: list[str] = field(default_factory=list)


def readability_cases(corpus: Path) -> list[Case]:
    cases = []
    for folder in sorted((corpus / "pages").iterdir()):
        source, meta_path = folder / "source.html", folder / "expected-metadata.json"
        if not source.is_file() or not meta_path.is_file():
            continue
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        published = meta.get("publishedTime") or None
        cases.append(
            Case(folder.name, source, meta.get("title") or None, published, bool(published), True)
        )
    return cases


def official_cases() -> list[Case]:
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    return [
        Case(name, PAGES / name, item["title"], item["published"], True, False)
        for name, item in sorted(expected.items())
    ]


def service(html: bytes) -> Answer:
    from monitor.errors import ExtractionError
    from monitor.extract import extract_article

    try:
        article = extract_article(html)
    except ExtractionError:
        return Answer(None, None)
    published = article.published_at.isoformat() if article.published_at else None
    return Answer(article.title, published)


def htmldate_alone(html: bytes) -> Answer:
    from htmldate import find_date

    try:
        return Answer(None, find_date(html, original_date=True))
    except Exception:  # a crash scores as no answer
        return Answer(None, None)


def trafilatura_metadata(html: bytes) -> Answer:
    import trafilatura

    try:
        meta = trafilatura.extract_metadata(html)
    except Exception:
        return Answer(None, None)
    return Answer(meta.title, meta.date) if meta else Answer(None, None)


CONTENDERS: dict[str, Callable[[bytes], Answer]] = {
    "service": service,
    "htmldate": htmldate_alone,
    "trafilatura": trafilatura_metadata,
}


def date_right(answer: str | None, case: Case) -> bool:
    if case.published is None:
        return answer is None
    return same_day(answer, case.published)


def title_right(answer: str | None, case: Case) -> bool:
    assert case.title is not None
    if case.title_but_site:
        return same_title_but_site(answer, case.title)
    return same_title(answer, case.title)


def score(cases: Sequence[Case]) -> dict[str, Tally]:
    tallies = {name: Tally() for name in CONTENDERS}
    for case in cases:
        html = case.path.read_bytes()
        for name, contender in CONTENDERS.items():
            answer = contender(html)
            tally = tallies[name]
            if case.scored_date:
                if date_right(answer.published, case):
                    tally.dates += 1
                else:
                    tally.misses.append(
                        f"{case.name}: date {answer.published!r}, expected {case.published!r}"
                    )
            if case.title and name != "htmldate":
                if title_right(answer.title, case):
                    tally.titles += 1
                else:
                    tally.misses.append(
                        f"{case.name}: title {answer.title!r}, expected {case.title!r}"
                    )
    return tallies


def _share(hits: int, total: int) -> str:
    return f"{hits}/{total} {100 * hits / total:.0f}%" if total else "-"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--misses", action="store_true", help="list every wrong answer")
    args = parser.parse_args(argv)
    sets = {"official": official_cases()}
    if (args.corpus / "pages").is_dir():
        sets["readability"] = readability_cases(args.corpus)
    else:
        print(f"(readability corpus not found at {args.corpus}: official pages only)")
    header = (
        f"{'set':<12} {'dates':>5}  {'service':>12} {'htmldate':>12} {'trafilatura':>12}"
        f"   {'titles':>6}  {'service':>12} {'trafilatura':>12}"
    )
    print(header)
    print("-" * len(header))
    all_misses: dict[str, list[str]] = {}
    started = time.perf_counter()
    total = {name: Tally() for name in CONTENDERS}
    dated_total = titled_total = 0
    rows = []
    for label, cases in sets.items():
        tallies = score(cases)
        dated = sum(case.scored_date for case in cases)
        titled = sum(case.title is not None for case in cases)
        rows.append((label, dated, titled, tallies))
        dated_total, titled_total = dated_total + dated, titled_total + titled
        for name, tally in tallies.items():
            all_misses[f"{label} {name}"] = tally.misses
            total[name].dates += tally.dates
            total[name].titles += tally.titles
    if len(rows) > 1:
        rows.append(("dev set", dated_total, titled_total, total))
    for label, dated, titled, tallies in rows:
        print(
            f"{label:<12} {dated:>5}  {_share(tallies['service'].dates, dated):>12} "
            f"{_share(tallies['htmldate'].dates, dated):>12} "
            f"{_share(tallies['trafilatura'].dates, dated):>12}   {titled:>6}  "
            f"{_share(tallies['service'].titles, titled):>12} "
            f"{_share(tallies['trafilatura'].titles, titled):>12}"
        )
    print(f"time: {time.perf_counter() - started:.1f} s")
    if args.misses:
        for key, misses in all_misses.items():
            for miss in misses:
                print(f"  {key}: {miss}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Extraction quality: `monitor extract` against Trafilatura's plain `extract()`.

Both extract the same pages in the same run: the service as a real
subprocess (`monitor extract FILE...`, once, every page as an input, no
`--url` since one URL cannot fit every page), Trafilatura in this process
with its defaults (`trafilatura.extract(html)` for the text,
`trafilatura.extract_metadata(html)` for its title and date). Each is scored
against the reference of every case and the means are printed side by side.

Corpora:

* readability: `../shared/corpus/readability/pages/<case>/` (Mozilla's test
  pages: `source.html`, `expected.html`, `expected-metadata.json`). Reported
  twice: "real" captures (a `source.html` of at least `REAL_CAPTURE_BYTES`;
  the hand-written edge cases are a kilobyte or two, a captured page carries a
  whole site's markup) and all cases.
* official: `bench/pages/<case>/` (`source.html`, `expected.txt`, `meta.json`),
  pages modelled on ministries', governments' and central banks' markup.

Scoring, as in article-extraction benchmarks:

* Tokens: Unicode-aware words (`\\w+` under Python's `re`, so letters and
  digits of any script; underscores are split off), case-folded; punctuation
  and whitespace are dropped, so paragraph separators do not count.
* Shingles: the multiset of overlapping token 4-grams; a text of fewer than
  4 tokens is one shingle of all its tokens.
* Precision = shared shingles / extracted shingles, recall = shared /
  reference shingles, F1 their harmonic mean ("shared" counts multiplicity).
  An empty extraction has precision 1 and recall 0 (F1 0); an empty
  extraction of an empty reference scores 1.
* Title: correct when the tokens are equal (case, punctuation and
  whitespace ignored); over the cases whose reference has a title. Readability
  keeps site names in titles ("Mozilla - Wikipedia") that the service strips
  by design, so a second column, "±site", also counts a title that equals the
  other with leading or trailing separated parts removed.
* Date: correct when the day matches; over the cases whose reference has a
  date. A reference with an offset counts its local day and its UTC day,
  because the service prints UTC.

    python bench/extraction.py [--corpus PATH] [--official PATH] [--cases N] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MONITOR_SHARED_DIR") or ROOT.parent / "shared")
DEFAULT_CORPUS = SHARED / "corpus" / "readability"
DEFAULT_OFFICIAL = Path(__file__).resolve().parent / "pages"
MONITOR = Path(sys.executable).parent / "monitor"

SHINGLE_SIZE = 4
REAL_CAPTURE_BYTES = 10_000
WORSE_BY = 0.05  # an F1 gap this large counts as "the service is worse here"
WORST_LISTED = 5

_TOKEN = re.compile(r"[^\W_]+")
# Where a page title joins its headline and its site's name ("A | Site", "A_Site").
_TITLE_SEPARATOR = re.compile(r"\s+(?:::|\|\||[|\-–—·•»/:])\s+|_|:\s+")  # "Site: Headline" too
# Elements that end a line of text in a browser; their text must not run together.
_BLOCKS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt"),
        *("figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header"),
        *("hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td"),
        *("tfoot", "th", "thead", "tr", "ul"),
    }
)


# --- scoring -------------------------------------------------------------------


def tokens(text: str) -> list[str]:
    """Case-folded Unicode words of `text`; punctuation, underscores and spaces dropped."""
    return _TOKEN.findall(text.casefold())


def shingle_counts(text: str, size: int = SHINGLE_SIZE) -> Counter[tuple[str, ...]]:
    """The multiset of token `size`-grams; a shorter text is one shingle of all its tokens."""
    words = tokens(text)
    if len(words) < size:
        return Counter([tuple(words)]) if words else Counter()
    return Counter(tuple(words[i : i + size]) for i in range(len(words) - size + 1))


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float


def shingle_score(extracted: str, reference: str) -> Score:
    """Token 4-gram shingle precision, recall and F1 of `extracted` against `reference`."""
    ours, theirs = shingle_counts(extracted), shingle_counts(reference)
    if not ours:
        return Score(1.0, 1.0, 1.0) if not theirs else Score(1.0, 0.0, 0.0)
    if not theirs:
        return Score(0.0, 1.0, 0.0)
    shared = sum((ours & theirs).values())
    precision, recall = shared / sum(ours.values()), shared / sum(theirs.values())
    f1 = 2 * precision * recall / (precision + recall) if shared else 0.0
    return Score(precision, recall, f1)


def same_title(extracted: str | None, reference: str) -> bool:
    """Titles match when their tokens do: case, punctuation and spacing are ignored."""
    return bool(extracted) and tokens(extracted or "") == tokens(reference)


def _title_parts(title: str) -> list[str]:
    return [part for part in _TITLE_SEPARATOR.split(title) if part.strip()]


def same_title_but_site(extracted: str | None, reference: str) -> bool:
    """Titles match, or one is the other plus leading or trailing separated parts.

    "Mozilla" matches "Mozilla - Wikipedia": the service strips site names
    that Readability's references keep; a different headline still fails.
    """
    if not extracted:
        return False
    if same_title(extracted, reference):
        return True
    for short, long in ((extracted, reference), (reference, extracted)):
        parts, key = _title_parts(long), tokens(short)
        for cut in range(1, len(parts)):
            if key in (tokens(" ".join(parts[:cut])), tokens(" ".join(parts[cut:]))):
                return True
    return False


def _days(value: str | None) -> set[dt.date]:
    """The calendar days an ISO timestamp can mean: its own, and its UTC day when zoned."""
    if not value:
        return set()
    text = value.strip().replace("Z", "+00:00")
    text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text)  # "+0100" -> "+01:00"
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # more than microseconds
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        match = re.match(r"\d{4}-\d\d-\d\d", text)
        return {dt.date.fromisoformat(match[0])} if match else set()
    days = {parsed.date()}
    if parsed.tzinfo is not None:
        days.add(parsed.astimezone(dt.UTC).date())
    return days


def same_day(extracted: str | None, reference: str) -> bool:
    return bool(_days(extracted) & _days(reference))


def html_text(markup: str) -> str:
    """The text of an HTML fragment, with block elements on lines of their own."""
    from lxml import html as lxml_html

    root = lxml_html.fromstring(markup)
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BLOCKS:
            element.tail = "\n" + (element.tail or "")
            element.text = "\n" + (element.text or "")
    return str(root.text_content())


# --- corpora -------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    source: Path
    text: str
    title: str | None
    published: str | None
    real: bool


def readability_cases(corpus: Path) -> list[Case]:
    cases = []
    for folder in sorted((corpus / "pages").iterdir()):
        source = folder / "source.html"
        if not source.is_file():
            continue
        meta = json.loads((folder / "expected-metadata.json").read_text(encoding="utf-8"))
        cases.append(
            Case(
                name=folder.name,
                source=source,
                text=html_text((folder / "expected.html").read_text(encoding="utf-8")),
                title=meta.get("title") or None,
                published=meta.get("publishedTime") or None,
                real=source.stat().st_size >= REAL_CAPTURE_BYTES,
            )
        )
    return cases


def official_cases(folder: Path) -> list[Case]:
    cases = []
    for case in sorted(folder.iterdir()):
        source = case / "source.html"
        if not source.is_file():
            continue
        meta = json.loads((case / "meta.json").read_text(encoding="utf-8"))
        cases.append(
            Case(
                name=case.name,
                source=source,
                text=(case / "expected.txt").read_text(encoding="utf-8"),
                title=meta.get("title") or None,
                published=meta.get("published") or None,
                real=True,
            )
        )
    return cases


# --- the two extractors ----------------------------------------------------------


@dataclass(frozen=True)
class Extraction:
    text: str
    title: str | None
    published: str | None


def start_service(paths: Sequence[Path]) -> subprocess.Popen[str]:
    """`monitor extract` on every page, one subprocess; read it with `read_service`."""
    # The installed `monitor` script when there is one; the same CLI through -m otherwise.
    cli = [str(MONITOR)] if MONITOR.is_file() else [sys.executable, "-m", "monitor"]
    command = [*cli, "extract", *(str(path) for path in paths)]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )


def read_service(process: subprocess.Popen[str]) -> dict[str, Extraction]:
    out, err = process.communicate()
    found: dict[str, Extraction] = {}
    for line in out.splitlines():
        record = json.loads(line)
        found[record["input"]] = Extraction(
            text=record.get("text") or "",
            title=record.get("title"),
            published=record.get("published_at"),
        )
    if not found and err:
        raise SystemExit(f"monitor extract printed nothing:\n{err}")
    return found


def trafilatura_extraction(path: Path) -> Extraction:
    """Trafilatura with its defaults: `extract()` for text, `extract_metadata()` for the rest."""
    import trafilatura

    html = path.read_bytes()
    try:
        text = trafilatura.extract(html) or ""
    except Exception:  # a crash on one page scores as an empty extraction
        text = ""
    try:
        meta = trafilatura.extract_metadata(html)
    except Exception:
        meta = None
    return Extraction(
        text=text,
        title=meta.title if meta else None,
        published=meta.date if meta else None,
    )


# --- the report ----------------------------------------------------------------


@dataclass
class Row:
    corpus: str
    cases: int
    service: Score
    trafilatura: Score
    titles: int  # cases whose reference has a title
    service_titles: int
    trafilatura_titles: int
    service_titles_but_site: int  # `same_title_but_site`: site names stripped or kept
    trafilatura_titles_but_site: int
    dates: int  # cases whose reference has a date
    service_dates: int
    trafilatura_dates: int
    worse: list[tuple[str, float, float]] = field(default_factory=list)  # (case, service, traf.)
    f1s: dict[str, tuple[float, float]] = field(default_factory=dict)  # case: (service, traf.)


def _mean(scores: Iterable[Score]) -> Score:
    items = list(scores)
    if not items:
        return Score(0.0, 0.0, 0.0)
    return Score(
        sum(s.precision for s in items) / len(items),
        sum(s.recall for s in items) / len(items),
        sum(s.f1 for s in items) / len(items),
    )


def score_corpus(
    name: str,
    cases: Sequence[Case],
    service: dict[str, Extraction],
    baseline: dict[str, Extraction],
) -> Row:
    ours, theirs, worse = [], [], []
    f1s: dict[str, tuple[float, float]] = {}
    titled = [c for c in cases if c.title]
    dated = [c for c in cases if c.published]
    for case in cases:
        mine = service.get(str(case.source), Extraction("", None, None))
        other = baseline[str(case.source)]
        ours.append(shingle_score(mine.text, case.text))
        theirs.append(shingle_score(other.text, case.text))
        f1s[case.name] = (round(ours[-1].f1, 4), round(theirs[-1].f1, 4))
        if ours[-1].f1 < theirs[-1].f1 - WORSE_BY:
            worse.append((case.name, ours[-1].f1, theirs[-1].f1))
    worse.sort(key=lambda item: item[1] - item[2])

    def titles(found: dict[str, Extraction], same: Callable[[str | None, str], bool]) -> int:
        return sum(same(found[str(c.source)].title, c.title or "") for c in titled)

    def dates(found: dict[str, Extraction]) -> int:
        return sum(same_day(found[str(c.source)].published, c.published or "") for c in dated)

    with_default = {
        str(c.source): service.get(str(c.source), Extraction("", None, None)) for c in cases
    }
    return Row(
        corpus=name,
        cases=len(cases),
        service=_mean(ours),
        trafilatura=_mean(theirs),
        titles=len(titled),
        service_titles=titles(with_default, same_title),
        trafilatura_titles=titles(baseline, same_title),
        service_titles_but_site=titles(with_default, same_title_but_site),
        trafilatura_titles_but_site=titles(baseline, same_title_but_site),
        dates=len(dated),
        service_dates=dates(with_default),
        trafilatura_dates=dates(baseline),
        worse=worse,
        f1s=f1s,
    )


def _share(hits: int, total: int) -> str:
    return f"{hits}/{total} {hits / total:.0%}" if total else "-"


def print_table(rows: Sequence[Row], *, seconds: dict[str, float]) -> None:
    header = (
        f"{'corpus':<17} {'n':>4}  {'service P/R/F1':<17}  {'trafilatura P/R/F1':<18}  "
        f"{'title svc':>12} {'title traf':>12}  {'±site svc':>12} {'±site traf':>12}  "
        f"{'date svc':>11} {'date traf':>11}  worse"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        svc, traf = row.service, row.trafilatura
        print(
            f"{row.corpus:<17} {row.cases:>4}  "
            f"{svc.precision:.3f}/{svc.recall:.3f}/{svc.f1:.3f}  "
            f"{traf.precision:.3f}/{traf.recall:.3f}/{traf.f1:.3f}   "
            f"{_share(row.service_titles, row.titles):>12} "
            f"{_share(row.trafilatura_titles, row.titles):>12}  "
            f"{_share(row.service_titles_but_site, row.titles):>12} "
            f"{_share(row.trafilatura_titles_but_site, row.titles):>12}  "
            f"{_share(row.service_dates, row.dates):>11} "
            f"{_share(row.trafilatura_dates, row.dates):>11}  {len(row.worse)}"
        )
    for row in rows:
        if row.worse:
            listed = ", ".join(f"{n} {s:.2f} vs {t:.2f}" for n, s, t in row.worse[:WORST_LISTED])
            print(f"worse by > {WORSE_BY} F1 ({row.corpus}): {listed}")
    print(
        f"time: service {seconds['service']:.1f} s (one subprocess), "
        f"trafilatura {seconds['trafilatura']:.1f} s (in process)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help="the readability corpus (holds pages/)"
    )
    parser.add_argument(
        "--official", type=Path, default=DEFAULT_OFFICIAL, help="the official pages (bench/pages)"
    )
    parser.add_argument(
        "--cases",
        type=int,
        default=None,
        help="only the first N cases of each corpus, for a quick run",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    readability = readability_cases(args.corpus) if args.corpus.is_dir() else []
    official = official_cases(args.official) if args.official.is_dir() else []
    if args.cases is not None:
        readability, official = readability[: args.cases], official[: args.cases]
    everything = [*readability, *official]
    if not everything:
        raise SystemExit("no cases found; see --corpus and --official")

    started = time.monotonic()
    process = start_service([case.source for case in everything])
    # Trafilatura runs while the service subprocess works: the same pages, the same run.
    baseline = {str(case.source): trafilatura_extraction(case.source) for case in everything}
    trafilatura_seconds = time.monotonic() - started
    service = read_service(process)
    seconds = {"service": time.monotonic() - started, "trafilatura": trafilatura_seconds}

    rows = [
        score_corpus("readability real", [c for c in readability if c.real], service, baseline),
        score_corpus("readability all", readability, service, baseline),
        score_corpus("official", official, service, baseline),
    ]
    rows = [row for row in rows if row.cases]
    if args.json:
        print(json.dumps({"rows": [asdict(row) for row in rows], "seconds": seconds}, indent=2))
    else:
        print_table(rows, seconds=seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Score the no-selector listing heuristic on the dev set in bench/listings/ (issue 16 §1).

    python bench/listings.py            # the heuristic of listing_blocks.py
    python bench/listings.py --baseline # also the old per-link heuristic, for comparison

Each page in bench/listings/ was written to mirror the markup of one CMS
(Drupal 7 and 8, Joomla blog and table views, WordPress, ColdFusion, a GOV.UK
finder, ASP.NET WebForms, Bitrix, a static .htm site, a German GSB-like
`dl` list, a PHP site; held out: TYPO3 tx_news, Sitefinity, Plone, written
after the heuristic was tuned on the others and scored before any change);
`truth.json` holds its true items, newest first.
Per page and overall it prints:

- newest: the first true item is taken, with its headline as title;
- taken/items: the links taken per item the page lists (target <= 1.2);
- recall: the true items taken; dates: true items taken with the right date;
- article pages given as a listing: the links taken (target: a handful, <= 5).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monitor.sources.listing import parse_listing

HERE = Path(__file__).parent / "listings"
RATIO_TARGET = 1.2
ARTICLE_TARGET = 5


def score(name: str, truth: dict[str, object], *, baseline: bool) -> dict[str, object]:
    body = (HERE / name).read_bytes()
    # An empty link_pattern takes the per-link path of listing.py: the old heuristic.
    parsed = parse_listing(
        body, source_id="bench", feed_url=str(truth["url"]), link_pattern="" if baseline else None
    )
    taken = [(c.url, c.title, c.published_at) for c in parsed.entries]
    items = [tuple(item) for item in truth["items"]]  # type: ignore[attr-defined]
    by_url = {url: (title, date) for url, title, date in taken}
    found = [item for item in items if item[0] in by_url]
    dated = [
        item for item in found
        if (d := by_url[item[0]][1]) is not None and d.date().isoformat() == item[2]
    ]  # fmt: skip
    newest = bool(items) and items[0][0] in by_url and by_url[items[0][0]][0] == items[0][1]
    return {
        "kind": truth["kind"],
        "held_out": bool(truth.get("held_out")),
        "items": len(items),
        "taken": len(taken),
        "found": len(found),
        "dated": len(dated),
        "newest": newest,
        "extra": [url for url, _, _ in taken if url not in {i[0] for i in items}],
    }


def report(baseline: bool) -> bool:
    truth = json.loads((HERE / "truth.json").read_text(encoding="utf-8"))
    rows = {name: score(name, t, baseline=baseline) for name, t in truth.items() if name[0] != "_"}
    print(f"{'page':<28} {'newest':>6} {'items':>5} {'taken':>5} {'ratio':>5} {'recall':>6} "
          f"{'dates':>5}")  # fmt: skip
    listing_items = listing_taken = newest = found = dated = 0
    article_worst = 0
    for name, row in rows.items():
        items, taken = int(row["items"]), int(row["taken"])  # type: ignore[call-overload]
        if row["kind"] == "article":
            article_worst = max(article_worst, taken)
            print(f"{name:<28} {'-':>6} {'-':>5} {taken:>5} {'-':>5} {'-':>6} {'-':>5}"
                  "   (article page as a listing)")  # fmt: skip
            continue
        listing_items += items
        listing_taken += taken
        newest += bool(row["newest"])
        found += int(row["found"])  # type: ignore[call-overload]
        dated += int(row["dated"])  # type: ignore[call-overload]
        held = "   (held out)" if row["held_out"] else ""
        print(f"{name:<28} {'yes' if row['newest'] else 'NO':>6} {items:>5} {taken:>5} "
              f"{taken / items:>5.2f} {int(row['found']) / items:>6.0%} {row['dated']:>5}{held}")  # type: ignore[call-overload]  # fmt: skip
        for url in row["extra"]:  # type: ignore[attr-defined]
            print(f"{'':<30}extra: {url}")
    pages = sum(1 for r in rows.values() if r["kind"] == "listing")
    ratio = listing_taken / listing_items
    print(
        f"\noverall: {pages} listing pages; newest found with its title on {newest}/{pages}; "
        f"links taken / items {listing_taken}/{listing_items} = {ratio:.2f} "
        f"(target <= {RATIO_TARGET}); recall {found / listing_items:.0%}; dates right "
        f"{dated}/{found}; article page as listing: at most {article_worst} links "
        f"(target <= {ARTICLE_TARGET})"
    )
    return newest == pages and ratio <= RATIO_TARGET and article_worst <= ARTICLE_TARGET


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--baseline", action="store_true", help="also score the old heuristic")
    args = parser.parse_args()
    if args.baseline:
        print("== old per-link heuristic ==")
        report(True)
        print("\n== main-list heuristic (listing_blocks.py) ==")
    ok = report(False)
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

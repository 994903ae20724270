"""Find the main list of a listing page without a selector, as a person reads the page.

The statements of a "News" page are a run of repeated sibling blocks (`li`,
`div.views-row`, `article.post`, table rows, repeated `h3`s), each holding
one headline link and often a date or a teaser, in the main content rather
than in a header, a menu, a sidebar or a footer. `find_main_list` groups the
children of every element by tag and shared classes, keeps the groups whose
blocks hold a statement link, scores each run and takes the best one's
headline links (a run in page furniture, a menu, a sidebar, is never taken):

    score = √blocks × headline words (capped) × (1 + dates) × (1 + teasers)
            × main content bonus ÷ links per block

Links are judged by `statement_url` too (listing_urls.py): topic, category,
"issues", tag, author, contact and pagination links are never statements,
however article-like they look; query-string articles (Joomla, ColdFusion,
WordPress `?p=`, `.aspx?id=`) and `.html`/`.cfm`/`.aspx`/`.php` pages are.

A headline link that sits before the run in the same content area (a
"featured" newest item styled apart from the list) is taken too. The date
printed in a block (or the sibling next to it, for flat lists) is the item's
`published_at` (see listing_dates.py). The choice is explained in
`MainList.reason`, which `monitor check --probe` prints. Pure; never raises
on its own (the caller catches what lxml might).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import lxml.html

from monitor.sources.base import plain_text
from monitor.sources.listing_dates import find_date
from monitor.sources.listing_urls import statement_url

__all__ = ["ListItem", "MainList", "find_main_list"]

# (absolute same-site URL or None, link text or None) for one anchor; listing.py's `_link`.
LinkResolver = Callable[[lxml.html.HtmlElement], tuple[str | None, str | None]]

MIN_BLOCKS = 2
MAX_FEATURED = 3  # headline links before the run, taken as well
_MAX_DEPTH = 14  # ancestors of a link looked at as possible blocks
_WORDS_CAP = 8

_FURNITURE_TAGS = frozenset({"nav", "header", "footer", "aside"})
_FURNITURE_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "menu"})
_FURNITURE_WORDS = frozenset(
    {
        "nav", "navbar", "navigation", "menu", "submenu", "megamenu", "breadcrumb",
        "breadcrumbs", "sidebar", "footer", "masthead", "pager", "pagination",
        "social", "share", "sharing", "related", "toolbar", "topbar", "secondary",
        "popular", "trending", "tagcloud", "sitemap",
    }
)  # fmt: skip
_MAIN_WORDS = frozenset({"main", "content", "maincontent", "primary"})
_TOKEN_SPLIT = re.compile(r"[\s_-]+")
# Classes that vary along a list (`views-row-3`, `odd`, `row-even`, `first`), not its kind.
_VARIABLE_CLASS = re.compile(
    r"\d|(?:^|[-_])(?:odd|even|first|last|alt|alternate|active|current|selected)$", re.I
)
# Whole class or id names of a page's header or widget column (a "header" or "widget"
# token alone would take Joomla's `page-header` or Elementor's `elementor-widget`).
_HEADER_NAMES = re.compile(
    r"^(?:header|site-header|global-header|main-header|top-header|topheader|header-top|"
    r"header-wrapper|header-wrap|headerwrap|header-container|widget-area|widgets)$",
    re.I,
)
_SECTIONING = frozenset({"article", "main", "section"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_TITLE_WORDS = frozenset({"title", "headline", "heading", "name"})
_GENERIC = re.compile(
    r"^(?:read more|more|more\W*|continue reading|full story|details|view|see more|"
    r"подробнее|читать далее|далее|ещё|еще|en savoir plus|lire la suite|lire plus|suite|"
    r"weiterlesen|mehr|mehr lesen|leer más|leer mas|ver más|seguir leyendo|»|›|>+)\W*$",
    re.IGNORECASE,
)
_DAY_FIRST_ENGLISH = ("en-gb", "en-ie", "en-au", "en-nz", "en-in", "en-za")


@dataclass(frozen=True, slots=True, kw_only=True)
class ListItem:
    """One statement of the main list: its headline link, and the date printed next to it."""

    url: str
    title: str | None
    published_at: dt.datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MainList:
    """The run of blocks chosen as the page's list of statements, and why."""

    items: tuple[ListItem, ...]
    path: str  # where the run sits, e.g. "main#content > ul.list > li.item"
    reason: str  # the figures the choice was made on, for `monitor check --probe`


@dataclass(slots=True)
class _Link:
    element: lxml.html.HtmlElement
    url: str
    text: str
    headline: bool  # in a heading, or a title-classed element


@dataclass(slots=True)
class _Run:
    parent: lxml.html.HtmlElement
    signature: str
    blocks: list[lxml.html.HtmlElement]
    # Each block's statement links, in order. Keyed by the element itself, never id():
    # lxml makes a new proxy (a new id) for a node whose proxy was freed.
    links: dict[lxml.html.HtmlElement, list[_Link]]
    dates_precede: bool | None = None
    members: set[lxml.html.HtmlElement] | None = None  # `blocks` as a set, made once


def find_main_list(
    root: lxml.html.HtmlElement, *, page_url: str, resolve: LinkResolver
) -> MainList | None:
    """The main list of statements on the page, or None when it has no run of blocks."""
    links = list(_statement_links(root, page_url, resolve))
    runs = _runs(links)
    # A run in page furniture (a menu, a sidebar's "related news") is never the main
    # list: a page with nothing else (an article page) has no list at all.
    runs = [run for run in runs if _furniture(run.parent) is None]
    if not runs:
        return None
    day_first = _day_first(root)
    scored = [(_score(run), run) for run in runs]
    best_score, best = max(scored, key=lambda pair: pair[0][0])
    items = [_item(block, best, day_first) for block in best.blocks]
    order = {element: index for index, element in enumerate(root.iter())}
    featured = _featured(best, links, {i.url for i in items}, day_first, order)
    kept = [*featured, *items]
    reason = best_score[1]
    if featured:
        reason += f"; {len(featured)} featured headline(s) above the list"
    return MainList(items=tuple(kept), path=_path(best), reason=reason)


def _statement_links(
    root: lxml.html.HtmlElement, page_url: str, resolve: LinkResolver
) -> Iterator[_Link]:
    for anchor in root.iter("a"):
        url, text = resolve(anchor)
        if url is None or not statement_url(url, page_url):
            continue
        yield _Link(element=anchor, url=url, text=text or "", headline=_is_headline(anchor))


def _is_headline(anchor: lxml.html.HtmlElement) -> bool:
    for element in (anchor, *list(anchor.iterancestors())[:2]):
        if element.tag in _HEADINGS or _TITLE_WORDS & _tokens(element):
            return True
    return False


def _runs(links: list[_Link]) -> list[_Run]:
    """Groups of same-signature siblings that hold statement links, two blocks or more."""
    runs: dict[tuple[lxml.html.HtmlElement, str], _Run] = {}
    signatures: dict[lxml.html.HtmlElement, dict[lxml.html.HtmlElement, str]] = {}
    for link in links:
        child = link.element
        for _ in range(_MAX_DEPTH):
            parent = child.getparent()
            if parent is None or not isinstance(parent.tag, str):
                break
            by_child = signatures.get(parent)
            if by_child is None:
                by_child = signatures[parent] = _child_signatures(parent)
            signature = by_child[child]
            run = runs.get((parent, signature))
            if run is None:
                run = runs[(parent, signature)] = _Run(parent, signature, [], {})
            if child not in run.links:
                run.blocks.append(child)
                run.links[child] = []
            run.links[child].append(link)
            if parent.tag == "body":
                break
            child = parent
    return [run for run in runs.values() if len(run.blocks) >= MIN_BLOCKS]


def _child_signatures(
    parent: lxml.html.HtmlElement,
) -> dict[lxml.html.HtmlElement, str]:
    """Each child's tag and the classes it shares with at least half its same-tag siblings.

    So `views-row-1 views-row-first`, a WordPress `sticky` post or a `featured`
    first item fall in with their siblings, and a `breadcrumb` div does not.
    """
    children = [c for c in parent if isinstance(c.tag, str)]
    by_tag: dict[str, list[lxml.html.HtmlElement]] = {}
    for child in children:
        by_tag.setdefault(child.tag, []).append(child)
    signatures: dict[lxml.html.HtmlElement, str] = {}
    for tag, group in by_tag.items():
        counts: dict[str, int] = {}
        classes = [
            {c for c in (child.get("class") or "").split() if not _VARIABLE_CLASS.search(c)}
            for child in group
        ]
        for names in classes:
            for name in names:
                counts[name] = counts.get(name, 0) + 1
        common = {name for name, count in counts.items() if count * 2 >= len(group)}
        for child, names in zip(group, classes, strict=True):
            shared = sorted(names & common)
            signatures[child] = tag + "".join(f".{name}" for name in shared)
    return signatures


def _score(run: _Run) -> tuple[float, str]:
    """How much the run looks like the page's list of statements, and the figures why."""
    heads = [_headline(run.links[block]) for block in run.blocks]
    words = sum(len(h.text.split()) for h in heads) / len(heads)
    urls_per_block = sum(len({x.url for x in run.links[b]}) for b in run.blocks) / len(
        run.blocks
    )
    dated = sum(1 for block in run.blocks if _has_date(block)) / len(run.blocks)
    teased = sum(1 for block, head in zip(run.blocks, heads, strict=True)
                 if _extra_words(block, head) >= 8) / len(run.blocks)  # fmt: skip
    main = _in_main(run.parent)
    score = (
        math.sqrt(len(run.blocks))
        * max(min(words, _WORDS_CAP), 0.5)
        * (1 + 1.5 * dated)
        * (1 + 0.5 * teased)
        * (1.5 if main else 1.0)
        / max(1.0, urls_per_block - 0.5)
    )
    where = "in the main content" if main else "outside any main content marker"
    reason = (
        f"{len(run.blocks)} repeated <{run.signature}> blocks; headlines average "
        f"{words:.1f} words; {dated:.0%} with a date; {teased:.0%} with a teaser; "
        f"{urls_per_block:.1f} links per block; {where}; score {score:.1f}"
    )
    return score, reason


def _headline(links: list[_Link]) -> _Link:
    """The block's headline link: in a heading or title element, else the longest text."""
    for link in links:
        if link.headline and link.text and not _GENERIC.match(link.text):
            return link
    return max(links, key=lambda link: 0 if _GENERIC.match(link.text) else len(link.text))


def _item(block: lxml.html.HtmlElement, run: _Run, day_first: bool) -> ListItem:
    head = _headline(run.links[block])
    title = head.text
    if not title or _GENERIC.match(title):
        title = _heading_text(block) or head.element.get("title") or title
    published = _block_date(block, run, head, day_first)
    return ListItem(url=head.url, title=title or None, published_at=published)


def _heading_text(block: lxml.html.HtmlElement) -> str | None:
    for element in block.iter(*_HEADINGS):
        text = plain_text(element.text_content(), html_markup=False, single_line=True)
        if text:
            return text
    return None


def _block_date(
    block: lxml.html.HtmlElement, run: _Run, head: _Link, day_first: bool
) -> dt.datetime | None:
    """The date printed in the block; for a flat list, in the siblings around its headline."""
    if run.members is None:
        run.members = set(run.blocks)
    members = run.members
    around = [*_following(block, members), *_preceding(block, members)]
    if _dates_precede(run, day_first):
        around.reverse()  # a `dt` date before its `dd`: the next block's date follows
    places = [block, *around]
    for place in places:
        found = _date_in(place, head, day_first)
        if found is not None:
            return found
    return None


def _dates_precede(run: _Run, day_first: bool) -> bool:
    """Whether a flat list prints each date before its block: the first block's is before."""
    if run.dates_precede is None:
        first = run.blocks[0]
        before = _preceding(first, set(run.blocks))
        run.dates_precede = bool(before) and find_date(
            before[0].text_content(), day_first=day_first
        ) is not None and _date_in(first, _headline(run.links[first]), day_first) is None
    return run.dates_precede


def _following(
    block: lxml.html.HtmlElement, members: set[lxml.html.HtmlElement]
) -> list[lxml.html.HtmlElement]:
    out: list[lxml.html.HtmlElement] = []
    for sibling in block.itersiblings():
        if sibling in members or len(out) >= 3:
            break
        if isinstance(sibling.tag, str):
            out.append(sibling)
    return out


def _preceding(
    block: lxml.html.HtmlElement, members: set[lxml.html.HtmlElement]
) -> list[lxml.html.HtmlElement]:
    sibling = block.getprevious()
    while sibling is not None and not isinstance(sibling.tag, str):
        sibling = sibling.getprevious()
    if sibling is None or sibling in members or sibling.find(".//a") is not None:
        return []
    return [sibling]


def _date_in(
    element: lxml.html.HtmlElement, head: _Link, day_first: bool
) -> dt.datetime | None:
    for time in element.iter("time"):
        stamp = time.get("datetime")
        if stamp:
            parsed: dt.datetime | None
            try:
                parsed = dt.datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
            except ValueError:
                parsed = find_date(stamp, day_first=day_first)
            if parsed is not None:
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    # Text outside the headline first: a number in a headline is rarely its date.
    outside = " ".join(_texts_outside(element, head.element))
    return find_date(outside, day_first=day_first) or find_date(head.text, day_first=day_first)


def _texts_outside(element: lxml.html.HtmlElement, skip: lxml.html.HtmlElement) -> Iterator[str]:
    if element is skip:
        return
    if element.text and isinstance(element.tag, str):
        yield element.text
    for child in element:
        if isinstance(child.tag, str) and child.tag not in ("script", "style"):
            yield from _texts_outside(child, skip)
        if child.tail:
            yield child.tail


def _has_date(block: lxml.html.HtmlElement) -> bool:
    if block.find(".//time") is not None:
        return True
    text = block.text_content()
    return find_date(text[:400]) is not None


def _extra_words(block: lxml.html.HtmlElement, head: _Link) -> int:
    return len(" ".join(_texts_outside(block, head.element)).split())


def _featured(
    run: _Run,
    links: list[_Link],
    taken: set[str],
    day_first: bool,
    order: dict[lxml.html.HtmlElement, int],
) -> list[ListItem]:
    """Headline links just before the run, in its content area: a newest item set apart."""
    area = run.parent
    for _ in range(3):
        parent = area.getparent()
        if parent is None or area.tag in ("main", "article", "body") or _in_main_marker(area):
            break
        area = parent
    start = order[run.blocks[0]]
    found: list[ListItem] = []
    for link in links:
        if order[link.element] >= start or link.url in taken:
            continue
        if not _contains(area, link.element) or _furniture(link.element):
            continue
        if not (link.headline and len(link.text.split()) >= 3) and len(link.text.split()) < 6:
            continue
        date = _featured_date(link, day_first)
        found.append(ListItem(url=link.url, title=link.text, published_at=date))
        taken.add(link.url)
    return found[-MAX_FEATURED:]


def _featured_date(link: _Link, day_first: bool) -> dt.datetime | None:
    """The date printed near a featured headline: in its parent or up to two levels up."""
    node = link.element.getparent()
    for _ in range(3):
        if node is None:
            return None
        found = _date_in(node, link, day_first)
        if found is not None:
            return found
        node = node.getparent()
    return None


def _contains(ancestor: lxml.html.HtmlElement, element: lxml.html.HtmlElement) -> bool:
    return element is ancestor or any(e is ancestor for e in element.iterancestors())


def _tokens(element: lxml.html.HtmlElement) -> set[str]:
    value = f"{element.get('class') or ''} {element.get('id') or ''}".lower()
    return {t for t in _TOKEN_SPLIT.split(value) if t}


def _furniture(element: lxml.html.HtmlElement) -> str | None:
    """What marks the element as page furniture (menu, sidebar, footer ...), if anything."""
    for node in (element, *element.iterancestors()):
        if node.tag in ("body", "html"):
            break
        if node.tag in _FURNITURE_TAGS and not (
            node.tag in ("header", "footer") and _within(node, _SECTIONING)
        ):
            return f"<{node.tag}>"  # an article's own <header> is not the page's
        if (node.get("role") or "").lower() in _FURNITURE_ROLES:
            return f"role={node.get('role')}"
        words = _FURNITURE_WORDS & _tokens(node)
        if words:
            return f"{node.tag}.{sorted(words)[0]}"
        names = [*(node.get("class") or "").split(), node.get("id") or ""]
        if any(_HEADER_NAMES.match(name) for name in names):
            return f"{node.tag}.{next(n for n in names if _HEADER_NAMES.match(n))}"
    return None


def _within(element: lxml.html.HtmlElement, tags: frozenset[str]) -> bool:
    return any(node.tag in tags for node in element.iterancestors())


def _in_main_marker(element: lxml.html.HtmlElement) -> bool:
    return (
        element.tag == "main"
        or (element.get("role") or "").lower() == "main"
        or bool(_MAIN_WORDS & _tokens(element))
    )


def _in_main(element: lxml.html.HtmlElement) -> bool:
    return any(_in_main_marker(node) for node in (element, *element.iterancestors()))


def _day_first(root: lxml.html.HtmlElement) -> bool:
    """Whether `04/10/15` is the 4th of October: yes, except on (US) English pages."""
    lang = (root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang") or "")
    lang = lang.strip().lower()
    if not lang or lang == "en" or lang.startswith("en-us"):
        return False
    return not lang.startswith("en") or lang.startswith(_DAY_FIRST_ENGLISH)


def _path(run: _Run) -> str:
    """A CSS-like path to the run's blocks, for people: `main > div.view-content > div.row`."""
    parts = [run.signature]
    node: lxml.html.HtmlElement | None = run.parent
    while node is not None and node.tag not in ("body", "html") and len(parts) < 5:
        ident = node.get("id")
        classes = [c for c in (node.get("class") or "").split() if not _VARIABLE_CLASS.search(c)]
        label = node.tag + (f"#{ident}" if ident else "") + "".join(f".{c}" for c in classes[:2])
        parts.append(label)
        node = node.getparent()
    return " > ".join(reversed(parts))

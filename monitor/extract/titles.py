"""Title cleaning: strip the site name a page wraps around a statement's headline.

Pages title themselves "<headline> : Ministry of Defence of the Russian
Federation", "<headline> | GOV.UK", "Ministry of Foreign Affairs - <headline>".
`clean_title` splits a title on the usual separators (" | ", " - ", " – ",
" — ", " : ", " :: ", " · ", ...; always with spaces around, so "COVID-19" and
"Statement: ..." are left alone) and then, conservatively:

1. if one side of a split is a known headline (the page's <h1>, the feed's
   entry title), returns that side;
2. otherwise drops leading and trailing parts that are the site name (from
   og:site_name / Trafilatura's sitename, or the host name: "Federal Reserve
   Board" on federalreserve.gov, "GOV.UK" on www.gov.uk).

Separators dangling at an end are dropped and a title that repeats itself
("A - B - A - B") is halved first. It never returns less than one part: a title
that is only the site name is kept. Titles with more than 16 separators are
lists, not "headline | site", and are returned whole (this also bounds the work).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from monitor.extract.text import normalize_whitespace

__all__ = ["clean_title", "names_site", "split_title"]

# Separators between a headline and a site name, always with whitespace on both
# sides. Longer alternatives first so " :: " is not read as " : ". The underscore
# is the one separator used without spaces ("Headline_Site" on Chinese government
# and portal sites); it only ever cuts off a part that is a site name or keeps a
# side that is a known headline, so "snake_case" words survive.
_SEPARATOR = re.compile(r"(\s+(?:::|\|\||//|[|:\-–—·•»«~/])\s+|\s*_+\s*)")
_DANGLING = re.compile(r"^(?:::|\|\||//|[|:\-–—·•»«~/])\s+|\s+(?:::|\|\||//|[|:\-–—·•»«~/])$")
_WORD = re.compile(r"\w+")
# Host labels that say nothing about the site's name.
_GENERIC_LABELS = frozenset({"www", "en", "eng", "english", "web", "m", "mobile", "news", "press"})
_MAX_SEPARATORS = 16  # more than this is not "headline | site"; keeps the work bounded
_MIN_HOST_LABEL = 6  # shorter labels ("state", "mil") match too many words
_MIN_HEADLINE_WORDS = 4  # a shorter first part may be the site and the rest the headline
_MAX_UNNAMED_SITE_WORDS = 3


def split_title(title: str) -> list[str]:
    """Split `title` into parts and separators, alternating: [part, sep, part, ...].

    Separators dangling at either end ("Headline :: Site ::") are dropped first.
    """
    return _SEPARATOR.split(_DANGLING.sub("", normalize_whitespace(title)))


def _halves_repeat(pieces: list[str]) -> list[str]:
    """One copy of a title that repeats itself ("A - B - A - B" -> "A - B")."""
    middle = len(pieces) // 2  # an odd number of parts has no repeated halves
    if len(pieces) % 4 == 3 and pieces[:middle] == pieces[middle + 1 :]:
        return pieces[:middle]
    return pieces


def _key(text: str) -> str:
    """Comparison key: case-folded words, single-spaced."""
    return " ".join(_WORD.findall(text.casefold()))


def _squashed(text: str) -> str:
    """Letters and digits only, case-folded: "GOV.UK" -> "govuk"."""
    return "".join(_WORD.findall(text.casefold())).replace("_", "")


def _host_labels(hostname: str | None) -> tuple[str, list[str]]:
    """(squashed host without "www.", its distinctive labels) for a host name."""
    if not hostname:
        return "", []
    host = hostname.casefold().rstrip(".").removeprefix("www.")
    labels = [
        label
        for label in host.split(".")[:-1]  # not the top-level domain
        if label not in _GENERIC_LABELS and len(label) >= _MIN_HOST_LABEL
    ]
    return _squashed(host), labels


def _spells_label(words: list[str], label: str) -> bool:
    """True when the leading words spell `label` with at most one word after.

    "Federal Reserve Board" spells "federalreserve", "The White House" spells
    "whitehouse"; "Kremlin statement on Syria" does not spell "kremlin".
    """
    if words and words[0] == "the":
        words = words[1:]
    joined = ""
    for count, word in enumerate(words, start=1):
        joined += word
        if joined == label:
            return len(words) - count <= 1
        if len(joined) >= len(label):
            return False
    return False


def _is_site_name(
    part: str, site_keys: list[str], hostname: str | None, *, containing: bool = True
) -> bool:
    """True when `part` of a title names the site rather than the statement.

    With `containing`, a part mostly made of a site name counts too ("GOV.UK Blog"),
    but not a headline that mentions it ("Budget 2024 @ Ministry of Finance").
    """
    key = _key(part)
    if not key:
        return False
    words = key.split()
    for site in site_keys:
        if key == site:
            return True
        if containing and f" {site} " in f" {key} " and 2 * len(site) >= len(key):
            return True
        if (
            len(words) >= 2
            and any(len(word) > 3 for word in words)
            and set(words) <= set(site.split())
        ):
            return True  # a shortened site name ("Ministry of Defence")
    host, labels = _host_labels(hostname)
    if host and _squashed(part) == host:
        return True  # "GOV.UK" on gov.uk, "Kremlin.ru" on kremlin.ru
    return any(_spells_label(words, label) for label in labels)


def _site_keys(site_names: Iterable[str | None]) -> list[str]:
    return [_key(s) for s in site_names if s and _key(s)]


def names_site(
    text: str, *, site_names: Iterable[str | None] = (), hostname: str | None = None
) -> bool:
    """True when `text` as a whole is the site's name rather than a headline."""
    return _is_site_name(text, _site_keys(site_names), hostname, containing=False)


def _from_headlines(pieces: list[str], headline_keys: set[str]) -> str | None:
    """The side of some split of the title that equals a known headline, if any."""
    for cut in range(1, len(pieces), 2):  # separators sit at odd indexes
        for side in ("".join(pieces[:cut]), "".join(pieces[cut + 1 :])):
            if _key(side) in headline_keys:
                return side
    return None


def clean_title(
    title: str,
    *,
    site_names: Iterable[str | None] = (),
    headlines: Iterable[str | None] = (),
    hostname: str | None = None,
) -> str:
    """`title` without the site name around it; never empty unless `title` is.

    `site_names` are names the site goes by (og:site_name, ...), `headlines`
    texts known to be the bare headline (the page's <h1>, the feed's title),
    `hostname` the page's host, used when the page does not name the site.
    """
    pieces = split_title(title)
    site_keys = _site_keys(site_names)
    headline_keys = {
        _key(h)
        for h in headlines
        if h and _key(h) and not _is_site_name(h, site_keys, hostname)  # logo in <h1>
    }
    if len(pieces) == 1:
        return _without_site_prefix(pieces[0], site_keys, headline_keys, hostname)
    if len(pieces) > 2 * _MAX_SEPARATORS + 1:
        return "".join(pieces)  # a list rather than a titled page
    pieces = _halves_repeat(pieces)
    if _key("".join(pieces)) in headline_keys:
        return "".join(pieces)  # the headline itself holds a separator
    found = _from_headlines(pieces, headline_keys)
    if found:
        return found
    while len(pieces) > 1:
        if _is_site_name(pieces[-1], site_keys, hostname):
            pieces = pieces[:-2]
        elif _is_site_name(pieces[0], site_keys, hostname):
            pieces = pieces[2:]
        else:
            break
    if not (headline_keys or site_keys or hostname) and _ends_in_unnamed_site(pieces):
        pieces = pieces[:-2]
    return "".join(pieces).strip()


def _without_site_prefix(
    title: str, site_keys: list[str], headline_keys: set[str], hostname: str | None
) -> str:
    """"Auswärtiges Amt: Headline" -> "Headline": a colon without a space before it
    ends a site name only when the part before it is the site's name, or the part
    after it a known headline ("Statement: ..." is a headline)."""
    site, colon, rest = title.partition(":")
    rest = rest.strip()
    if not colon or not rest or not site.strip():
        return title
    if _key(title) in headline_keys:
        return title
    if _key(rest) in headline_keys or _is_site_name(site, site_keys, hostname, containing=False):
        return rest
    return title


def _ends_in_unnamed_site(pieces: list[str]) -> bool:
    """True for "<headline of 4+ words> | <1-3 words>" when nothing names the site.

    With no headline to compare, no site name and no host, a short, digit-free
    last part after the only separator is the site's name ("... – My website",
    "... · V8"), as browsers' reader modes assume. A number there is more
    likely a part of the headline ("... - Update 2").
    """
    if len(pieces) != 3 or pieces[1].strip() in (":", "_", ""):
        return False  # "Topic: headline" is a headline; "_" needs a named site
    # Words as written: "draft-dejong-remotestorage-04" is one name, not four words.
    head, tail = pieces[0].split(), pieces[2].split()
    return (
        len(head) >= _MIN_HEADLINE_WORDS
        and 0 < len(tail) <= _MAX_UNNAMED_SITE_WORDS
        and not any(char.isdigit() for char in pieces[2])
    )

"""Detect: which entries of a source are new or edited, against the state store.

A statement is identified within its source by its guid, else its link. The
state store knows every key it has recorded, so detection survives restarts.

An entry already recorded is *changed* when its fingerprint (a hash of the
entry's title, summary, content and date, as the feed describes it) differs
from the recorded one: a cheap sign that the statement may have been edited,
which the pipeline confirms by extracting the page again. A recorded entry with
no fingerprint yet (recorded before fingerprints existed, i.e. the first poll
after an upgrade) is not changed: its fingerprint is stored silently. Neither
is an entry that was never published (first sight, backfill off) or one that
was retracted: their fingerprints are just kept up to date.

Retractions are found by re-checking pages (recheck.py), not here: an entry
leaving a feed says nothing (feeds keep only their latest entries).

Across sources, a statement is identified by its URL: `url_key` normalises a
link or canonical URL so that the same page reached through two sources, two
feeds of one site, a tracking link or a trailing slash has one key. The state
store keeps the keys of every published statement; an entry whose link or
canonical URL has one is an alias of that statement, not a new one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from monitor.models import Candidate
from monitor.state import KnownStatement, StateStore

__all__ = ["Detection", "detect", "entry_fingerprint", "url_key", "url_keys"]

# Query parameters that say how a reader arrived, never which page it is: campaign
# tags (utm_*, Matomo's pk_*/mtm_*, Mailchimp's mc_*), ad-click ids, share ids.
_TRACKING_PARAM = re.compile(
    r"^(utm_\w*|pk_\w*|mtm_\w*|mc_cid|mc_eid|fbclid|gclid|gclsrc|dclid|gbraid|wbraid|"
    r"msclkid|yclid|twclid|ttclid|li_fat_id|igshid|_ga|_gl|_hsenc|_hsmi|mkt_tok|"
    r"oly_anon_id|oly_enc_id|vero_conv|vero_id|wt\.mc_id|wt_mc|at_medium|at_campaign|"
    r"ref_src|s_cid|cmpid|ito|spm|share|sharesource)$",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Detection:
    """The outcome of comparing a document's entries with what is recorded."""

    new: tuple[Candidate, ...]
    known: int
    first_sight: bool  # the source has never been fully recorded before
    # Published entries whose fingerprint changed: (entry, what is recorded, new fingerprint).
    changed: tuple[tuple[Candidate, KnownStatement, str], ...] = ()
    # (statement_id, fingerprint) to store without any event.
    silent_fingerprints: tuple[tuple[str, str], ...] = ()


def entry_fingerprint(entry: Candidate) -> str:
    """A hash of what the feed says about an entry: title, summary, content, dates.

    A feed that bumps only an entry's updated date has edited it too: the page
    is extracted again, and an event follows only if its text or title changed.
    """
    digest = hashlib.sha256()
    published = entry.published_at.isoformat() if entry.published_at else ""
    updated = entry.updated_at.isoformat() if entry.updated_at else ""
    parts = (entry.title or "", entry.summary or "", entry.content_html or "", published, updated)
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:32]


def url_key(url: str) -> str:
    """The identity of a page across sources: its URL without what does not name it.

    Scheme, a leading `www.`, the default port, the fragment, tracking parameters
    and a trailing slash are dropped; the host is lowercased, and the remaining
    query parameters are sorted (their order never names another page).
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    try:
        port = parts.port
    except ValueError:  # a malformed port: keep the URL as it came
        port = None
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    query = sorted(
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not _TRACKING_PARAM.match(name)
    )
    return f"{host}{path}" + (f"?{urlencode(query)}" if query else "")


def url_keys(*urls: str | None) -> tuple[str, ...]:
    """The distinct `url_key`s of the URLs given, skipping None and non-http(s) ones."""
    keys = (
        url_key(url) for url in urls if url and url.lower().startswith(("http://", "https://"))
    )
    return tuple(dict.fromkeys(keys))


def unique_by_key(entries: Iterable[Candidate]) -> list[Candidate]:
    """Entries with an identity, each key once, in document order."""
    seen: set[str] = set()
    unique = []
    for entry in entries:
        key = entry.key
        if key is None or key in seen:
            continue
        seen.add(key)
        unique.append(entry)
    return unique


def detect(source_id: str, entries: Sequence[Candidate], store: StateStore) -> Detection:
    """Split a document's entries into new, changed and unchanged ones."""
    candidates = unique_by_key(entries)
    known = store.known(source_id, [c.key for c in candidates if c.key is not None])
    new = tuple(c for c in candidates if c.key not in known)
    changed: list[tuple[Candidate, KnownStatement, str]] = []
    silent: list[tuple[str, str]] = []
    for candidate in candidates:
        record = known.get(candidate.key or "")
        if record is None:
            continue
        fingerprint = entry_fingerprint(candidate)
        if record.entry_fingerprint == fingerprint:
            continue
        if record.entry_fingerprint is None or not record.published or record.retracted:
            silent.append((record.statement_id, fingerprint))
        else:
            changed.append((candidate, record, fingerprint))
    return Detection(
        new=new,
        known=len(known),
        first_sight=not store.has_seen(source_id),
        changed=tuple(changed),
        silent_fingerprints=tuple(silent),
    )

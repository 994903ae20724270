"""Detect: which entries of a source are new, against the state store.

A statement is identified within its source by its guid, else its link. The
state store knows every key it has recorded, so detection survives restarts.
Later versions of this stage also recognise edits and retractions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.models import Candidate
from monitor.state import StateStore

__all__ = ["Detection", "detect"]


@dataclass(frozen=True, slots=True)
class Detection:
    """The outcome of comparing a document's entries with what is recorded."""

    new: tuple[Candidate, ...]
    known: int
    first_sight: bool  # the source has never been fully recorded before


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
    """Split a document's entries into new and already-recorded ones."""
    candidates = unique_by_key(entries)
    known = store.known(source_id, [c.key for c in candidates if c.key is not None])
    new = tuple(c for c in candidates if c.key not in known)
    return Detection(new=new, known=len(known), first_sight=not store.has_seen(source_id))

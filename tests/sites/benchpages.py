"""Realistic pages for tests: bench/pages' official layouts and bench/backfill.py's pages."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def backfill_pages(count: int, *, seed: int) -> list[tuple[str, bytes]]:
    """`count` pages of 60-150 KB (mega-menu, scripts, footer...), named `backfill-<n>`."""
    sys.path.insert(0, str(BENCH))  # bench/ is not a package
    try:
        import backfill  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(BENCH))
    return [(f"backfill-{index}", backfill.page(index, seed=seed)) for index in range(count)]


def official_pages() -> list[tuple[str, bytes]]:
    """The official-layout pages of bench/pages (`source.html`), named by their case."""
    return [
        (path.parent.name, path.read_bytes()) for path in sorted(BENCH.glob("pages/*/source.html"))
    ]

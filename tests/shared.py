"""Where the tests find the shared corpora, and what they do when those are absent.

The seed statement and the feed/readability corpora are third-party data, kept
out of the repository in a `shared/` folder beside it (`<repo>/../shared`), or
wherever `MONITOR_SHARED_DIR` points. `MONITOR_CORPUS_DIR` still overrides the
corpus folder alone (`<shared>/corpus`).

A test that needs them either calls `require_shared(...)` or carries the
`requires_shared(...)` marker (checked by `tests/conftest.py` before it runs).
When the files are absent it is skipped with a reason that starts with
`SKIP_REASON`, so a fresh clone passes. When `MONITOR_REQUIRE_SHARED=1` (set by
`.ci/run`, where the corpora always are) it fails instead: a CI run can never go
green by silently skipping the corpus tests.

Nothing here reads a file at import time, so a module that imports it collects
with or without the corpora.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = [
    "SKIP_REASON",
    "corpus_dir",
    "have_shared",
    "require_shared",
    "requires_shared",
    "shared_dir",
    "shared_required",
]

REPO = Path(__file__).resolve().parents[1]
SKIP_REASON = "shared corpora absent"

SEED_FILE = ("seed", "official-statement-example.txt")
READABILITY_PAGES = ("corpus", "readability", "pages")


def shared_dir() -> Path:
    """`$MONITOR_SHARED_DIR`, else `<repo>/../shared` (it may not exist)."""
    override = os.environ.get("MONITOR_SHARED_DIR")
    return Path(override) if override else REPO.parent / "shared"


def corpus_dir() -> Path:
    """`$MONITOR_CORPUS_DIR`, else `<shared>/corpus`."""
    override = os.environ.get("MONITOR_CORPUS_DIR")
    return Path(override) if override else shared_dir() / "corpus"


def _path(parts: tuple[str, ...]) -> Path:
    if parts and parts[0] == "corpus":
        return corpus_dir().joinpath(*parts[1:])
    return shared_dir().joinpath(*parts)


def have_shared(*parts: str) -> bool:
    """Whether `<shared>/<parts...>` exists (the whole folder when no parts)."""
    return _path(parts).exists()


def shared_required() -> bool:
    """Whether a missing corpus is a failure (CI) rather than a skip (a fresh clone)."""
    return os.environ.get("MONITOR_REQUIRE_SHARED", "").lower() in {"1", "true", "yes"}


def _missing(path: Path) -> NoReturn:
    reason = (
        f"{SKIP_REASON}: {path} not found (put the shared/ folder beside the repository "
        "or set MONITOR_SHARED_DIR)"
    )
    if shared_required():
        pytest.fail(f"{reason}; MONITOR_REQUIRE_SHARED=1 makes this a failure", pytrace=False)
    pytest.skip(reason)


def require_shared(*parts: str) -> Path:
    """`<shared>/<parts...>`, or skip the running test (fail under MONITOR_REQUIRE_SHARED)."""
    path = _path(parts)
    if not path.exists():
        _missing(path)
    return path


def requires_shared(*parts: str) -> pytest.MarkDecorator:
    """Mark a test as needing `<shared>/<parts...>`; `tests/conftest.py` enforces it."""
    return pytest.mark.requires_shared(*parts)

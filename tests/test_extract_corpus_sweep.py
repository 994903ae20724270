"""The corpus sweep: every HTML page of `../shared/corpus/` through `monitor extract`
in one call, as a user would run it on a batch.

Every input must be answered, in order, and none with an internal error: a page
may have no statement (`empty`, `not_html`), but a bug in extraction on a real
page must never show, nor stop the pages after it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, SHARED
from tests.test_cli import cli_env

CORPUS = SHARED / "corpus"


@pytest.mark.slow
def test_every_corpus_page_is_answered_without_an_internal_error() -> None:
    pages = sorted(str(p) for p in CORPUS.rglob("*") if p.suffix.lower() in (".html", ".htm"))
    if not pages:
        pytest.skip(f"no HTML pages under {CORPUS} (the shared corpus is not here)")
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "extract", *pages],
        capture_output=True, text=True, cwd=REPO, env=cli_env(), timeout=900,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["input"] for line in lines] == pages, result.stderr[-2000:]
    internal = [(line["input"], line["error"]) for line in lines
                if (line.get("error") or {}).get("kind") == "internal"]
    assert internal == []
    answered = [line for line in lines if "error" not in line]
    assert len(answered) >= len(pages) // 2  # most corpus pages have a statement
    assert result.returncode == (1 if len(answered) < len(pages) else 0)

"""`monitor.extract.langmodel`: py3langid's model, memory-mapped, classifies as loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

from monitor.extract import langmodel
from tests.shared import READABILITY_PAGES, corpus_dir, have_shared, requires_shared

REPO = Path(__file__).resolve().parents[1]
# The readability corpus is in ../shared (MONITOR_SHARED_DIR); without it, only
# the model's own samples, and the tests that need many languages skip.
READABILITY = corpus_dir().joinpath(*READABILITY_PAGES[1:])
TEXTS = [
    *langmodel._SAMPLES,
    *(
        lxml.html.fromstring((page / "expected.html").read_bytes()).text_content()[:5000]
        for page in (sorted(READABILITY.iterdir()) if have_shared(*READABILITY_PAGES) else ())
        if (page / "expected.html").is_file()
    ),
]


@pytest.fixture(scope="module")
def loaded() -> Any:
    return LanguageIdentifier.from_model_file(MODEL_DIR / MODEL_FILE, norm_probs=True)


@requires_shared(*READABILITY_PAGES)
def test_the_model_is_mapped_from_a_cache_it_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loaded: Any
) -> None:
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path / "cache"))
    mapped = langmodel.load_identifier()
    assert isinstance(mapped.tk_nextmove, memoryview)
    assert [mapped.classify(t) for t in TEXTS] == [loaded.classify(t) for t in TEXTS]
    (folder,) = (tmp_path / "cache").iterdir()
    assert folder.name.startswith("py3langid-")
    written = {f.name: f.stat().st_mtime_ns for f in folder.iterdir()}
    again = langmodel.load_identifier()  # the second time, from the cache as it is
    assert isinstance(again.tk_nextmove, memoryview)
    assert {f.name: f.stat().st_mtime_ns for f in folder.iterdir()} == written
    assert len(TEXTS) > 100


def test_an_unwritable_cache_means_the_model_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loaded: Any
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    identifier = langmodel.load_identifier()
    assert not isinstance(identifier.tk_nextmove, memoryview)
    assert [identifier.classify(t) for t in TEXTS[:20]] == [loaded.classify(t) for t in TEXTS[:20]]


def test_an_incomplete_cache_means_the_model_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path))
    langmodel.load_identifier()
    (folder,) = tmp_path.iterdir()
    (folder / "ptc.npy").unlink()
    identifier = langmodel.load_identifier()
    assert not isinstance(identifier.tk_nextmove, memoryview)
    assert identifier.classify(TEXTS[0])[0] == "en"


@requires_shared(*READABILITY_PAGES)
def test_a_mapped_model_costs_a_few_megabytes(tmp_path: Path) -> None:
    """Loaded, the model is ~76 MB in every process that detects a language."""
    script = (
        "import json, sys\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "from monitor.extract import langmodel\n"
        "import numpy, py3langid.langid\n"
        "texts = json.load(sys.stdin)\n"
        "before = rss()\n"
        "identifier = langmodel.load_identifier()\n"
        "for text in texts[:60]:  # as many as a day of one ministry's statements\n"
        "    identifier.classify(text[:800])\n"
        "print(rss() - before)\n"
    )
    env = {**os.environ, "MONITOR_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    run = [sys.executable, "-c", script]
    texts = json.dumps(TEXTS)
    subprocess.run(run, input=texts, env=env, text=True, check=True, capture_output=True)
    grown = subprocess.run(run, input=texts, env=env, text=True, check=True, capture_output=True)
    # MB, after 60 openings in a dozen languages (27 MB measured; in memory: 76 MB at once)
    assert float(grown.stdout) < 45

"""The CLI as a user runs it: `monitor run` under SIGTERM, `extract`, `tail`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import SHARED, EventReader, make_config
from tests.shared import SEED_FILE, require_shared
from tests.sites import seed_page
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite

REPO = Path(__file__).resolve().parents[1]
RSS = "application/rss+xml; charset=utf-8"


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR__")}
    env["PYTHONPATH"] = str(REPO)
    return env


async def start_monitor(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, cwd=REPO, env=cli_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.integration
async def test_sigterm_drains_cleanly_and_exits_zero(tmp_path: Path, site: LoopbackSite, topic: str,
                                                     kafka_bootstrap: str, events: EventReader) -> None:
    items = [Item(f"Statement {n}", site.put(f"/s/{n}", page(f"Statement {n}", [f"Text of statement {n}, "
                  "with enough words to be extracted as an article paragraph."])), guid=f"g{n}")
             for n in range(1, 4)]
    site.put("/feed.xml", rss(items), content_type=RSS)
    config = make_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic,
                         sources=[{"id": "ministry", "url": site.url("/feed.xml"), "backfill": True}])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    process = await start_monitor("run", "--config", str(path))
    try:
        received = await events.read(3, timeout=30)
        assert len(received) == 3
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
        elapsed = time.monotonic() - started
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert elapsed < 10
    stopped = [entry for entry in log if entry.get("event") == "service_stopped"]
    assert stopped and stopped[0]["outbox_pending"] == 0 and stopped[0]["drained"] is True


def test_extract_prints_one_line_per_input_and_goes_on_after_a_failure(tmp_path: Path) -> None:
    import subprocess

    good = tmp_path / "seed.html"
    good.write_text(seed_page.seed_page_html())
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + b"\x00" * 100)
    missing = str(tmp_path / "missing.html")
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "extract", "--url", "https://eng.mil.ru/en/news/1",
         str(good), str(pdf), missing],
        capture_output=True, text=True, cwd=REPO, env=cli_env(), timeout=120,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["input"] for line in lines] == [str(good), str(pdf), missing]
    first = lines[0]
    assert first["title"] == seed_page.SEED_TITLE
    assert seed_page.SEED_FIRST_SENTENCE in first["text"]
    assert first["language"] == "en" and first["published_at"].startswith("2015-10-16")
    assert first["content_hash"].startswith("sha256:")
    assert lines[1]["error"]["kind"] == "pdf_corrupt"  # a PDF signature on garbage
    assert lines[2]["error"]["kind"] == "read_error" and "cannot read" in lines[2]["error"]["message"]
    assert result.returncode == 1


@pytest.mark.integration
async def test_extract_reads_a_url(site: LoopbackSite) -> None:
    url = site.put("/briefing.html", seed_page.seed_page_html())
    process = await start_monitor("extract", url, site.url("/absent"))
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    first, second = (json.loads(line) for line in stdout.decode().splitlines())
    assert first["input"] == url and first["title"] == seed_page.SEED_TITLE
    assert second["input"] == site.url("/absent") and second["error"]["kind"] == "fetch_http_4xx"


@pytest.mark.integration
async def test_tail_prints_statements(tmp_path: Path, site: LoopbackSite, topic: str,
                                      kafka_bootstrap: str, events: EventReader) -> None:
    site.put("/s/1", page("Statement on rates", ["The board decided to keep the policy rate unchanged "
                                                 "at its meeting today, citing stable inflation."]))
    site.put("/feed.xml", rss([Item("Statement on rates", site.url("/s/1"), guid="r1")]), content_type=RSS)
    config = make_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic,
                         sources=[{"id": "bank", "name": "Central Bank", "url": site.url("/feed.xml"),
                                   "backfill": True}])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    runner = await start_monitor("run", "--config", str(path))
    try:
        await events.read(1, timeout=30)
        for flags in ([], ["--json"]):
            tail = await start_monitor("tail", "--config", str(path), "--from-beginning", *flags)
            assert tail.stdout is not None
            try:
                output = b""
                while b"policy rate unchanged" not in output:
                    output += await asyncio.wait_for(tail.stdout.readline(), timeout=20)
            finally:
                tail.terminate()
                await tail.wait()
            text = output.decode()
            if flags:
                event = json.loads(text.strip().splitlines()[-1])
                assert event["data"]["title"] == "Statement on rates"
            else:
                assert "Central Bank" in text and "policy rate unchanged" in text
    finally:
        runner.send_signal(signal.SIGTERM)
        await asyncio.wait_for(runner.wait(), timeout=15)


def test_corpus_is_where_the_tests_expect_it() -> None:
    """Skips on a fresh clone; in CI (MONITOR_REQUIRE_SHARED=1) it fails without the corpora."""
    assert require_shared(*SEED_FILE) == SHARED.joinpath(*SEED_FILE)

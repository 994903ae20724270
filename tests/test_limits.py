"""Structural page caps (issue 13): a page of 10^6 attributes or 200,000 links is
refused as `page_too_complex` before it is parsed, and real pages never are."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from monitor.config import Config
from monitor.errors import ExtractionError
from monitor.extract.limits import PAGE_TOO_COMPLEX, PageLimits, check_page, page_limits
from monitor.extract.stage import ExtractionStage
from monitor.pool import PoolMemoryExceeded, WorkerPool
from tests.sites.benchpages import backfill_pages, official_pages
from tests.sites.pathological import deep_nesting, many_attributes, many_links


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (many_attributes, "attributes 1000002 > 400000"),
        (many_links, "links 200000 > 20000"),
    ],
)
def test_a_page_over_a_default_cap_is_too_complex(make: object, message: str) -> None:
    assert callable(make)
    with pytest.raises(ExtractionError) as caught:
        check_page(make(), PageLimits())
    assert caught.value.reason == PAGE_TOO_COMPLEX and not caught.value.retriable
    assert str(caught.value) == message


def test_the_element_cap() -> None:
    # html, head, meta, title, body, 1,000 divs and a p
    with pytest.raises(ExtractionError, match=r"^elements 1006 > 1000$"):
        check_page(deep_nesting(1_000), PageLimits(elements=1_000))
    check_page(deep_nesting(1_000), PageLimits(elements=1_006))  # at the cap is within it


def test_a_zero_cap_is_no_cap() -> None:
    check_page(many_links(30_000), PageLimits(links=0, elements=0, attributes=0))


def test_real_pages_are_within_the_default_caps() -> None:
    pages = official_pages() + backfill_pages(20, seed=7)
    assert pages
    for _, body in pages:
        check_page(body, PageLimits())


def test_the_caps_come_from_the_config() -> None:
    config = Config.model_validate(
        {
            "extract": {"max_elements": 10, "max_attributes": 20, "max_links": 30},
            "sources": [{"id": "s", "url": "https://example.org/feed"}],
        }
    )
    assert page_limits(config.extract) == PageLimits(elements=10, attributes=20, links=30)


@pytest.fixture
async def stage() -> AsyncIterator[ExtractionStage]:
    pool = WorkerPool(1)
    pool.start()
    yield ExtractionStage(pool, timeout=60, limits=PageLimits())
    pool.close()


async def test_the_stage_refuses_a_complex_page_in_the_worker(stage: ExtractionStage) -> None:
    [source] = Config.model_validate(
        {"sources": [{"id": "s", "url": "https://example.org/feed"}]}
    ).resolved_sources()
    for call in (stage.article, stage.article_enriched):
        with pytest.raises(ExtractionError) as caught:
            await call(source, many_links(), url="https://example.org/s")
        assert caught.value.reason == PAGE_TOO_COMPLEX
        assert str(caught.value) == "links 200000 > 20000"
    _, body = official_pages()[0]
    article = await stage.article(source, body, url="https://example.org/s")
    assert article.text


class _OutOfMemoryPool:
    """A pool whose every task hits the worker memory limit."""

    async def run(self, timeout: float, fn: object, *args: object, **kwargs: object) -> None:
        raise PoolMemoryExceeded("extract_page exceeded the worker memory limit of 1024 MB")


async def test_a_page_over_the_worker_memory_limit_is_a_permanent_failure() -> None:
    [source] = Config.model_validate(
        {"sources": [{"id": "s", "url": "https://example.org/feed"}]}
    ).resolved_sources()
    stage = ExtractionStage(_OutOfMemoryPool(), timeout=60)  # type: ignore[arg-type]
    for call in (stage.article, stage.article_enriched):
        with pytest.raises(ExtractionError) as caught:
            await call(source, b"<html></html>", url="https://example.org/s")
        assert caught.value.reason == "memory_limit" and not caught.value.retriable
        assert "memory limit of 1024 MB" in str(caught.value)

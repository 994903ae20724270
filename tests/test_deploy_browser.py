"""The browser variant of the image: Debian's chromium by a build argument, nothing downloaded.

No Docker engine needed: the Dockerfile is read as text.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "deploy" / "Dockerfile").read_text()


def test_the_browser_variant_installs_debian_chromium_by_a_build_argument() -> None:
    assert re.search(r"^ARG WITH_BROWSER=false$", DOCKERFILE, re.MULTILINE)
    assert re.search(r'if \[ "\$\{WITH_BROWSER\}" = "true" \].*apt-get install[^;]*\bchromium\b',
                     DOCKERFILE, re.DOTALL)
    assert '.[browser]' in DOCKERFILE  # the extra with Playwright


def test_nothing_downloads_a_browser() -> None:
    for path in (REPO / "deploy" / "Dockerfile", REPO / ".ci" / "run", REPO / "pyproject.toml"):
        if path.exists():
            assert "playwright install" not in path.read_text(), path

"""An invalid YAML config is reported at the line to fix (issue 14: an unclosed bracket
was reported one line after it, where PyYAML gave up)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.errors import ConfigError

SOURCES = "sources:\n  - {id: bank, url: 'https://example.org/feed.xml'}\n"


def problem(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = caught.value.problems
    return line.split(": ", 1)[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kafka:\n  topic: [a, b\n" + SOURCES,
         "line 2, column 10: invalid YAML: parsing a flow sequence started here: "
         "did not find expected ',' or ']' (at line 3, column 8)"),
        ("kafka:\n  topic: {a: 1\n" + SOURCES,
         "line 2, column 10: invalid YAML: parsing a flow mapping started here: "
         "did not find expected ',' or '}' (at line 3, column 8)"),
        ("kafka:\n  topic: \"abc\n" + SOURCES,
         "line 2, column 10: invalid YAML: scanning a quoted scalar started here: "),
    ],
    ids=["bracket", "brace", "quote"],
)
def test_an_unclosed_bracket_or_quote_points_at_its_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert problem(tmp_path, text).startswith(expected)


def test_a_bad_indent_still_points_at_its_own_line(tmp_path: Path) -> None:
    found = problem(tmp_path, "kafka:\n  topic: a\n bad: 1\n" + SOURCES)
    assert found.startswith("line 3, column 2: invalid YAML: ")

"""Regular expressions that users write (`link_pattern`, watchlist `regex`), on RE2.

Python's `re` backtracks: `(a+)+$` against 30 `a`s and a `b` takes longer than
the universe has left, and such a pattern in a config would hang a worker on
every page. RE2 (google-re2) matches in time linear in the input, whatever the
pattern; the price is that it has no backreferences and no lookaround, so a
pattern that uses them is refused when the config is read, with RE2's reason.

Every user pattern is compiled here, by the config's validation and by the
code that matches with it, so the two can never disagree on what a pattern is.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, Protocol

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

__all__ = ["ENGINE", "UserPattern", "UserRegexError", "compile_user_regex"]

ENGINE = "re2"


class UserRegexError(ValueError):
    """RE2 cannot compile the pattern; the message says why."""


class _Match(Protocol):
    def start(self) -> int: ...
    def end(self) -> int: ...


class UserPattern(Protocol):
    """What the service uses of a compiled pattern."""

    def search(self, text: str) -> Any: ...
    def finditer(self, text: str) -> Iterator[_Match]: ...


@functools.lru_cache(maxsize=1024)
def compile_user_regex(pattern: str, *, ignore_case: bool = False) -> UserPattern:
    """`pattern` compiled by RE2 (linear-time matching).

    Raises:
        UserRegexError: RE2 cannot compile it (backreferences, lookaround, bad syntax).
    """
    options = re2.Options()
    options.log_errors = False  # the error is raised, not printed to stderr
    options.case_sensitive = not ignore_case
    try:
        compiled: UserPattern = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise UserRegexError(str(reason)) from None
    return compiled

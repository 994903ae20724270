"""Enrichment: what a statement's text says, beyond the text itself.

`enrich(title, text, watchlists)` is the pure function the extraction pool runs
on every statement version, whether its text came from the page or from the
feed: who said what (`quotes.py`), which watchlist terms it mentions
(`watchlists.py`) and which quantities it claims (`figures.py`). All are CPU
work over a text that may be megabytes long, so they run off the event loop,
like Trafilatura.

Each step runs isolated (`isolate.run_step`): a step that raises is dropped
and named in `Enrichment.failures`, and the others are kept, so a bug in quote
attribution still leaves the statement its watchlist matches and figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from monitor.extract.figures import find_figures
from monitor.extract.isolate import StepFailure, run_step
from monitor.extract.quotes import find_quotes
from monitor.extract.watchlists import match_watchlists
from monitor.models import Figure, Quote, Speaker, Watchlist, WatchMatch

__all__ = ["STEPS", "Enrichment", "enrich"]

# The enrichment steps by name (a bounded metric label). Tests replace one with a
# step that raises, to check that only that step is dropped.
STEPS: dict[str, Callable[..., object]] = {
    "quotes": find_quotes,
    "watchlists": match_watchlists,
    "figures": find_figures,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Enrichment:
    quotes: tuple[Quote, ...] = ()
    speakers: tuple[Speaker, ...] = ()
    matches: tuple[WatchMatch, ...] = ()
    figures: tuple[Figure, ...] = ()
    failures: tuple[StepFailure, ...] = ()  # the steps that raised, dropped


def enrich(title: str | None, text: str, watchlists: Sequence[Watchlist] = ()) -> Enrichment:
    """Quotes with their speakers, watchlist matches and figures of one statement version.

    `watchlists` are those that apply to the statement's source already. Never
    raises for a bug in a step: see `Enrichment.failures`.
    """
    failures: list[StepFailure] = []
    found_quotes, failure = run_step("quotes", lambda: STEPS["quotes"](text))
    failures.extend([failure] if failure else [])
    matches, failure = run_step("watchlists", lambda: STEPS["watchlists"](title, text, watchlists))
    failures.extend([failure] if failure else [])
    figures, failure = run_step("figures", lambda: STEPS["figures"](text))
    failures.extend([failure] if failure else [])
    quotes, speakers = found_quotes if isinstance(found_quotes, tuple) else ((), ())
    return Enrichment(
        quotes=quotes,
        speakers=speakers,
        matches=matches if isinstance(matches, tuple) else (),
        figures=figures if isinstance(figures, tuple) else (),
        failures=tuple(failures),
    )

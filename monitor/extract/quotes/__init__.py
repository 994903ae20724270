"""Quote attribution: who said what in a statement's plain text.

This module owns `find_quotes`, which returns a statement's direct quotations
(each with its speaker and reporting verb) and the distinct named speakers with
their roles. It is pure and runs in the extraction process pool.

This package's `__init__` keeps the short story (`find_quotes` and the loop
over quotations); each concern has its own module: `lexicon` (word lists,
patterns, bounds, word tests), `marks` (pairing the marks, scare quotes),
`attribution` (reporting clauses and carried speakers) and `names` (names and
roles in a phrase, full names). Their underscore names are private to the
package and shared among its modules.

Approach, in four passes, each linear in the text or bounded per quotation:

1. **Pair quotation marks** with one scan over the marks and blank lines
   (“…”, „…“, „…”, «…», »…«, ‹…›, ›…‹, ‚…‘, "…"). A small stack nests marks, so
   “… the “Syrian Free Army” …” stays one quotation; a blank line ends every
   open mark; an opener that never closes is dropped and what it enclosed is
   kept. Stack depth, marks scanned and quotations returned are all capped.
2. **Attribute** each quotation from a bounded window of its own sentence:
   after it (`“…,” said X`, `“…,” X said`, `“…,” said the Governor, X`,
   `“…,” he added`, `« … », a déclaré X`, `„…“, so X`, `«…», — заявил X`) or
   before it (`X said: “…”`, `According to X, “…”`, `Selon X, « … »`,
   `По словам X, «…»`). Reporting verbs come in past and present tense
   ("says", "sagt", "заявляет", "déclare"). A quotation opening its paragraph
   may be introduced by the paragraph before it when that ends with a colon,
   the press-release layout (`Energy Secretary X said:`, blank line, `“…”`;
   `Bundesministerin X erklärt dazu:`). A pronoun or a job description ("the
   minister") carries the last named speaker forward when it fits their role;
   a quotation right after an attributed one, with no words between (such as
   the next paragraph of a colon-introduced statement), continues it with the
   same speaker and verb None; any narrative text between breaks the chain.
3. **Filter scare quotes**: an unattributed quotation is kept (speaker None)
   only when it reads as a sentence, so “hot line” and “Syrian Free Army” are
   not quotations.
4. **Resolve names and roles**: a short form ("Kartapolov") becomes the full
   name seen anywhere in the text ("Andrei Kartapolov"); a speaker's role is
   the title phrase next to a mention ("Chief of … Colonel General Andrei
   Kartapolov") or an appositive ("Maria Zakharova, spokeswoman of …,").

Names are told from titles with Unicode-aware capitalisation (`str.isupper`)
and small lexicons of titles, organisation words and particles, so Cyrillic
names work. Everything is heuristic and tuned for precision: when unsure, a
quotation has no speaker rather than a wrong one.
"""

from __future__ import annotations

from monitor.extract.quotes.attribution import (
    _Attributor,
    _continues,
    _Found,
    _speaker_for,
)
from monitor.extract.quotes.lexicon import (
    MAX_INPUT_CHARS,
    MAX_QUOTES,
    MAX_SPEAKERS,
)
from monitor.extract.quotes.marks import (
    _clean_quote_text,
    _is_sentence_like,
    _pair_quote_marks,
)
from monitor.extract.quotes.names import (
    _NameResolver,
)
from monitor.models import Quote, Speaker

__all__ = ["find_quotes"]


def _collect(text: str, spans: list[tuple[int, int]]) -> tuple[list[_Found], _Attributor]:
    attributor = _Attributor(text)
    found: list[_Found] = []
    last_named: str | None = None  # the speaker of the last attributed quotation
    previous: _Found | None = None
    for i, (start, end) in enumerate(spans):
        if len(found) >= MAX_QUOTES:
            break
        raw_quote = text[start + 1 : end - 1]
        quote = _clean_quote_text(raw_quote)
        if not any(c.isalnum() for c in quote):
            continue
        lower = previous.clause_end if previous else 0
        limit = spans[i + 1][0] if i + 1 < len(spans) else len(text)
        attribution = (
            attributor.attribute_after(raw_quote, end, limit)
            or attributor.attribute_before(lower, start, end)
            or attributor.attribute_lead_in(lower, start, end)
        )
        if attribution is not None:
            attributor.note_stated_role(attribution.who)
            if attribution.who.kind != "name":
                # Only now: "he" may name someone reported since the last quotation
                # ("Powell said that…"). Scanning only here keeps scare quotes cheap.
                last_named = attributor.last_named_between(lower, start) or last_named
            speaker = _speaker_for(attribution.who, last_named, attributor)
            item = _Found(
                start,
                end,
                quote,
                speaker,
                attribution.verb,
                attribution.clause_end,
                nominative=attribution.who.kind == "name" and not attribution.who.inflected,
            )
        elif _continues(previous, text, start) and previous is not None:
            item = _Found(start, end, quote, previous.speaker, None, end)
        elif _is_sentence_like(quote):
            item = _Found(start, end, quote, None, None, end)
        else:
            continue  # a scare quote or a quoted name
        if item.speaker:
            last_named = item.speaker
        found.append(item)
        previous = item
    return found, attributor


def find_quotes(text: str) -> tuple[tuple[Quote, ...], tuple[Speaker, ...]]:
    """The direct quotations of `text`, in order, and their distinct named speakers.

    `text` is a statement's plain text, paragraphs separated by blank lines.
    Each quotation has the quoted words without their marks, its speaker's
    full name (None when no one can be named) and the reporting verb (None
    when it continues an attributed quotation or stands alone). Speakers come
    in order of their first quotation, with the role the text gives them.
    """
    if not text or not text.strip():
        return (), ()
    text = text[:MAX_INPUT_CHARS]
    found, attributor = _collect(text, _pair_quote_marks(text))
    # Names past MAX_SPEAKERS are kept as written: resolving them costs a scan each.
    raw_names: dict[str, bool] = {}  # name -> whether ever seen in the nominative
    for f in found:
        if f.speaker and (f.speaker in raw_names or len(raw_names) < MAX_SPEAKERS):
            raw_names[f.speaker] = raw_names.get(f.speaker, False) or f.nominative
    resolver = _NameResolver(text, raw_names)
    canonical = {raw: resolver.resolve(raw) for raw in raw_names}
    quotes = tuple(
        Quote(
            text=f.text,
            speaker=canonical.get(f.speaker, f.speaker) if f.speaker else None,
            verb=f.verb,
        )
        for f in found
    )
    speakers: dict[str, str | None] = {}
    for quote in quotes:
        if quote.speaker and quote.speaker not in speakers:
            speakers[quote.speaker] = None
    for raw, name in canonical.items():
        speakers[name] = speakers[name] or attributor.role_of(name) or attributor.role_of(raw)
    return quotes, tuple(Speaker(name=name, role=role) for name, role in speakers.items())

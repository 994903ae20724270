"""Attribution: which speaker and reporting verb a quotation has.

This module owns pass 2 of `monitor.extract.quotes`: the reporting clause
after a quotation (`“…,” said X`), before it (`X said: “…”`, `According to X`)
or in the paragraph before it ending with a colon; the reporting clauses
between quotations that a pronoun refers back to; the roles found at a
speaker's mentions; and how a pronoun or a job description carries the last
named speaker forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from monitor.extract.quotes.lexicon import (
    _ACCORDING_CLAUSE,
    _AFTER_ACCORDING,
    _BEFORE_ACCORDING,
    _BLANK_LINE,
    _CLAUSE_WORDS,
    _CONNECTORS,
    _ENDS_CLAUSE,
    _FRENCH_INVERSION,
    _LEADING_PUNCTUATION,
    _OBJECT_PRONOUNS,
    _POSSESSIVE_ACCORDING,
    _PRONOUNS,
    _THAT_WORDS,
    _VERB,
    _WHITESPACE,
    CONTEXT_CHARS,
    LOOKBACK_CHARS,
    MAX_CLAUSES_PARSED,
    MAX_SUBJECT_TOKENS,
    MAX_TAIL_CHARS,
    _is_capitalised,
    _is_title,
    _mentions,
    _sentence_ends,
    _tokens,
)
from monitor.extract.quotes.names import (
    _adjacent,
    _appositive_role,
    _first_clause,
    _join_roles,
    _parse_segment,
    _role_from,
    _span_text,
    _trailing_name,
    _Who,
)


@dataclass(frozen=True, slots=True)
class _Attribution:
    who: _Who
    verb: str
    clause_end: int  # where the attributing clause ends in the text


@dataclass(slots=True)
class _Found:
    start: int
    end: int
    text: str
    speaker: str | None
    verb: str | None
    clause_end: int
    # Whether the speaker was named right here in the nominative: not carried by
    # "he", and not inflected as in "по словам Лаврова".
    nominative: bool = False


def _parse_subject(subject: str, *, strict: bool) -> _Who | None:
    """The subject before a reporting verb: "Kartapolov", "he", "X, spokeswoman of Y,".

    `strict` (after a quotation) allows one comma segment, or the appositive
    form "Name, role,"; before a quotation introductory phrases may precede.
    """
    segments = subject.split(",")
    if any(word.text.lower() in _CLAUSE_WORDS for word in _tokens(segments[-1])):
        return None
    if len(segments) >= 3 and not segments[-1].strip():
        # "Maria Zakharova, spokeswoman of the Foreign Ministry, said": the name
        # closes the segment before an appositive that names a role.
        appositive = _appositive_role(segments[-2])
        if appositive is None or (strict and (len(segments) != 3 or not _tokens(segments[0]))):
            return None
        who = _parse_segment(segments[-3], "last", closing=True)
        if who is not None and who.kind == "name":
            return _Who("name", name=who.name, role=_join_roles(who.role, appositive))
        return None
    if strict and len([s for s in segments if s.strip()]) > 1:
        return None
    if len(_tokens(segments[-1])) > MAX_SUBJECT_TOKENS:
        return None
    return _parse_segment(segments[-1], "last")


def _parse_after_verb(phrase: str) -> _Who | None:
    """The speaker named after a verb: "said Andrei Kartapolov at the briefing"."""
    main, _, rest = phrase.partition(",")
    for stop in (";", ":", "(", "“", "«", "„"):
        main = main.split(stop, 1)[0]
    tokens = _tokens(main)
    if not tokens or tokens[0].text.lower() in _THAT_WORDS:
        return None
    if tokens[0].text.lower() in _PRONOUNS:
        return _Who("pronoun")
    who = _parse_segment(main, "first")
    if who is not None and who.kind == "name":
        appositive = _appositive_role(_first_clause(rest)) if rest else None
        return _Who("name", name=who.name, role=_join_roles(who.role, appositive))
    if who is not None and who.kind == "description" and rest:
        # "said the Governor, Elena Marković": the name is in apposition to the title.
        name = _appositive_name(_first_clause(rest))
        if name is not None:
            return _Who("name", name=name, role=_role_from(main, tokens))
    return who


def _appositive_name(segment: str) -> str | None:
    """A segment that is only a person's name, perhaps after title words: "Elena Marković"."""
    tokens = _tokens(segment)
    if not tokens or len(tokens) > 6:
        return None
    found = _trailing_name(tokens, 0, len(tokens))
    if found is None or found[1] != len(tokens):
        return None
    if not all(_is_title(t.text) for t in tokens[: found[0]]):
        return None
    if not all(_adjacent(segment, a, b) for a, b in pairwise(tokens)):
        return None
    return _span_text(segment, tokens, *found)


def _verb_text(verb: str) -> tuple[str, bool]:
    """The verb without a French inversion ("a-t-il déclaré" -> "a déclaré"), and
    whether it carried one (its subject is then a pronoun)."""
    plain, count = _FRENCH_INVERSION.subn("", verb)
    return _WHITESPACE.sub(" ", plain), count > 0


def _normal_verb(verb: str) -> str:
    return _WHITESPACE.sub(" ", verb).lower()


def _inflected_if(who: _Who, verb: str) -> _Who:
    """The speaker, marked inflected after "по словам" (which takes the genitive)."""
    if verb.startswith("по") and who.kind == "name":
        return _Who("name", name=who.name, role=None, inflected=True)
    return who


def _is_indirect(after_verb: str) -> bool:
    tokens = _tokens(after_verb[:20])
    return bool(tokens) and tokens[0].text.lower() in _THAT_WORDS


# --- pass 2: attribution -------------------------------------------------------


class _Attributor:
    """Attributes the quotations of one text; its caches live for one call only."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._roles: dict[str, str | None] = {}
        self._stated_roles: dict[str, str] = {}

    # windows

    def _after_window(self, end: int, limit: int) -> tuple[str, int]:
        """The rest of the quotation's sentence, and where it ends."""
        window = self.text[end : min(limit, end + CONTEXT_CHARS)]
        blank = _BLANK_LINE.search(window)
        if blank:
            window = window[: blank.start()]
        ends = _sentence_ends(window)
        if ends:
            window = window[: ends[0]]
        return window, end + len(window)

    def _before_window(self, lower: int, start: int) -> str:
        """The start of the quotation's sentence, up to the quotation."""
        lo = max(lower, start - CONTEXT_CHARS)
        window = self.text[lo:start]
        blanks = list(_BLANK_LINE.finditer(window))
        if blanks:
            window = window[blanks[-1].end() :]
        ends = _sentence_ends(window)
        if ends:
            window = window[ends[-1] :]
        return window

    # attribution

    def attribute_after(self, raw_quote: str, end: int, limit: int) -> _Attribution | None:
        window, clause_end = self._after_window(end, limit)
        lead = _LEADING_PUNCTUATION.match(window)
        offset = lead.end() if lead else 0
        # Only a quotation closing its clause is attributed by what follows it:
        # "“…,” said X" or "«…», — заявил X", not "a “hot line” between…".
        if not window[:offset].strip() and not _ENDS_CLAUSE.search(raw_quote):
            return None
        according = _AFTER_ACCORDING.match(window, offset)
        if according:
            who = _parse_after_verb(window[according.end() :])
            if who is not None:
                verb = _normal_verb(according.group("verb"))
                return _Attribution(_inflected_if(who, verb), verb, clause_end)
        verb_match = _VERB.search(window, offset)
        if verb_match is None:
            return None
        verb, inverted = _verb_text(verb_match.group())
        rest = window[verb_match.end() :]
        if _is_indirect(rest):
            return None
        subject = window[offset : verb_match.start()]
        if subject.strip():
            who = _parse_subject(subject, strict=True)
        elif inverted:
            who = _Who("pronoun")
        else:
            who = _parse_after_verb(rest)
        return _Attribution(who, verb, clause_end) if who else None

    def attribute_before(self, lower: int, start: int, end: int) -> _Attribution | None:
        return self._attribute_leading(self._before_window(lower, start), end)

    def attribute_lead_in(self, lower: int, start: int, end: int) -> _Attribution | None:
        """A quotation opening its paragraph, introduced by the paragraph before it
        ending with a colon: "Energy Secretary Margaret Hollis said:" + blank line."""
        window = self._lead_in_window(lower, start)
        return self._attribute_leading(window, end) if window else None

    def _lead_in_window(self, lower: int, start: int) -> str | None:
        """The end of the paragraph before the quotation's, when that ends with ":"
        and only blank lines separate the two; else None."""
        lo = max(lower, start - CONTEXT_CHARS)
        window = self.text[lo:start]
        body = window.rstrip()
        if not body.endswith(":") or not _BLANK_LINE.search(window, len(body)):
            return None
        blanks = list(_BLANK_LINE.finditer(body))
        if blanks:
            body = body[blanks[-1].end() :]
        ends = _sentence_ends(body)
        return body[ends[-1] :] if ends else body

    def _attribute_leading(self, window: str, end: int) -> _Attribution | None:
        """An attribution in `window`, the text running into a quotation that ends at `end`."""
        possessive = _POSSESSIVE_ACCORDING.search(window)
        if possessive:
            return _Attribution(_Who("pronoun"), "по словам", end)
        according = _BEFORE_ACCORDING.search(window)
        if according:
            who = _parse_after_verb(according.group("who"))
            if who is None and according.group("who").strip().lower() in _OBJECT_PRONOUNS:
                who = _Who("pronoun")
            if who is not None:
                verb = _normal_verb(according.group("verb"))
                return _Attribution(_inflected_if(who, verb), verb, end)
        # The verb is at most a few words before the quotation (`_leads_into_quote`).
        tail_start = max(0, len(window) - MAX_TAIL_CHARS)
        for verb_match in reversed(list(_VERB.finditer(window, tail_start))):
            tail = window[verb_match.end() :]
            if not self._leads_into_quote(tail):
                continue
            verb, inverted = _verb_text(verb_match.group())
            subject = window[: verb_match.start()]
            who = _parse_subject(subject, strict=False) if subject.strip() else None
            if who is None:
                who = _Who("pronoun") if inverted else _parse_after_verb(tail)
            return _Attribution(who, verb, end) if who else None
        return None

    @staticmethod
    def _leads_into_quote(tail: str) -> bool:
        """Whether the words after a verb run straight into the quotation: ": ", ", ", "that"."""
        stripped = tail.strip().rstrip("—–-").strip()
        if not stripped:
            return True
        words = stripped.split()
        if len(stripped) > MAX_TAIL_CHARS or len(words) > 8 or any(c in stripped for c in ".!?"):
            return False
        return stripped.endswith((":", ",")) or words[-1].lower() in _THAT_WORDS

    # reporting clauses between quotations, for pronouns

    def last_named_between(self, lo: int, hi: int) -> str | None:
        """The last person named as saying something in text[lo:hi] ("X said that…").

        Only the last few reporting clauses are parsed, so a window dense with
        verbs costs no more than a handful of short parses.
        """
        lo = max(lo, hi - LOOKBACK_CHARS)
        window = self.text[lo:hi]
        clauses = [(m.start(), m.end(), "verb") for m in _VERB.finditer(window)]
        clauses += [(m.start(1), m.end(1), "according") for m in _ACCORDING_CLAUSE.finditer(window)]
        if not clauses:
            return None
        blank_lines = [b for m in _BLANK_LINE.finditer(window) for b in (m.start(), m.end())]
        boundaries = sorted([0, *_sentence_ends(window), *blank_lines, len(window)])
        for start, end, kind in sorted(clauses, reverse=True)[:MAX_CLAUSES_PARSED]:
            sentence_start = max(b for b in boundaries if b <= start)
            sentence_end = min(b for b in boundaries if b >= end)
            rest = window[end : min(sentence_end, end + CONTEXT_CHARS)]
            if kind == "according":
                who = _parse_after_verb(window[start:end])
            else:
                subject = window[max(sentence_start, start - CONTEXT_CHARS) : start]
                who = _parse_subject(subject, strict=False) if subject.strip() else None
                if who is None or who.kind != "name":
                    who = _parse_after_verb(rest)
            if who is not None and who.kind == "name" and who.name:
                self._note_role(who)
                return who.name
        return None

    # roles

    def _note_role(self, who: _Who) -> None:
        if who.kind == "name" and who.name and who.role:
            self._stated_roles.setdefault(who.name, who.role)

    def role_of(self, name: str) -> str | None:
        """The role stated where the speaker is named, else found at a mention."""
        if name in self._stated_roles:
            return self._stated_roles[name]
        if name not in self._roles:
            self._roles[name] = self._role_from_mentions(name)
        return self._roles[name]

    def _role_from_mentions(self, name: str) -> str | None:
        for start, end in _mentions(self.text, name):
            role = self._role_before(start) or self._role_after(end)
            if role:
                return role
        return None

    def _role_before(self, pos: int) -> str | None:
        """Title words right before a mention: "Colonel General Andrei Kartapolov"."""
        lo = max(0, pos - CONTEXT_CHARS)
        window = self.text[lo:pos]
        cut = max(window.rfind(c) for c in ',;:!?\n«»“”„"()[]')
        ends = _sentence_ends(window)
        start = max(cut + 1, ends[-1] if ends else 0)
        tokens = _tokens(window[start:], offset=start)
        if not tokens or window[tokens[-1].end :].strip():
            return None
        i = len(tokens)
        unproven = 0  # lowercase words taken on trust that a title lies further left
        while i > 0 and len(tokens) - i < 30:
            word = tokens[i - 1].text
            if _is_title(word) or _is_capitalised(word) or word.lower() in _CONNECTORS:
                unproven = 0
            elif not word.isascii() and unproven < 4:
                # Lowercase words inside roles are Russian and French ("министр
                # иностранных дел", "ministre des Affaires étrangères").
                unproven += 1
            else:
                break
            i -= 1
        return _role_from(window, tokens[i:])

    def _role_after(self, pos: int) -> str | None:
        """An appositive after a mention: "Maria Zakharova, spokeswoman of …,"."""
        window = self.text[pos : pos + 200]
        if not window.startswith(","):
            return None
        return _appositive_role(_first_clause(window[1:]))

    def note_stated_role(self, who: _Who) -> None:
        self._note_role(who)


def _continues(previous: _Found | None, text: str, start: int) -> bool:
    """Whether a quotation directly follows an attributed one (“A,” he said. “B.”)."""
    if previous is None or previous.speaker is None:
        return False
    gap = text[previous.clause_end : start]
    return len(gap) <= CONTEXT_CHARS and not any(c.isalnum() for c in gap)


def _speaker_for(who: _Who, last_named: str | None, attributor: _Attributor) -> str | None:
    if who.kind == "name":
        return who.name
    if who.kind == "organisation":
        return None
    if who.kind == "pronoun" or last_named is None:
        return last_named
    return last_named if _describes(who, attributor.role_of(last_named)) else None


def _describes(description: _Who, role: str | None) -> bool:
    """Whether "the minister" can be the named speaker whose role is `role`."""
    if not role:
        return False
    words = _tokens(role)
    titles = {w.text.lower() for w in words if _is_title(w.text)}
    capitals = {w.text for w in words if _is_capitalised(w.text) and not _is_title(w.text)}
    return bool(description.titles & titles) or len(description.capitals & capitals) >= 2

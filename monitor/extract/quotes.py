"""Quote attribution: who said what in a statement's plain text.

This module owns `find_quotes`, which returns a statement's direct quotations
(each with its speaker and reporting verb) and the distinct named speakers with
their roles. It is pure and runs in the extraction process pool.

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

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

from monitor.models import Quote, Speaker

__all__ = ["find_quotes"]

# Bounds on the work of one call: texts may be several MB of arbitrary content.
MAX_INPUT_CHARS = 5_000_000
MAX_MARKS = 20_000  # quotation marks scanned; later ones are ignored
MAX_DEPTH = 4  # nesting of open marks; deeper openers push out the outermost
MAX_QUOTES = 1_000
MAX_MENTIONS = 50  # mentions of one name examined for its role or full form
CONTEXT_CHARS = 300  # how far from a quotation its attribution may be
LOOKBACK_CHARS = 2_000  # how far back reporting clauses feed the pronoun "he"
MAX_SUBJECT_TOKENS = 25  # words of a subject before its verb ("Chief of … Kartapolov said")
MAX_TAIL_CHARS = 120  # from a reporting verb to the quotation it introduces
MAX_CLAUSES_PARSED = 8  # reporting clauses parsed per gap between quotations
MAX_SPEAKERS = 200  # distinct speakers whose roles and full names are looked up


def _words(spaced: str) -> frozenset[str]:
    """A lexicon written as space-separated words."""
    return frozenset(spaced.split())


# --- quotation marks -------------------------------------------------------

# Opening mark -> the marks that may close it. "“" both opens (English) and
# closes („…“, German and Russian); "»" opens German »…« and closes «…».
_CLOSERS: dict[str, frozenset[str]] = {
    "“": frozenset("”"),
    "„": frozenset("“”"),
    "«": frozenset("»"),
    "»": frozenset("«»"),
    "‹": frozenset("›"),
    "›": frozenset("‹›"),
    "‚": frozenset("‘"),
    '"': frozenset('"'),
}
# A blank line, or one mark. "’" and "'" are left out: they are apostrophes.
_MARK_OR_BLANK_LINE = re.compile(r"\n[^\S\n]*\n|[“”„«»‹›‚‘\"]")
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
_WHITESPACE = re.compile(r"\s+")

# --- words -----------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_LAST_WORD = re.compile(r"([^\W\d_][\w'’-]*)\W*$")
_SENTENCE_END = re.compile(r"[.!?…]+(?=[\s\"“”«»„‚‘’)\]]|$)")
_ABBREVIATIONS = _words(
    "mr mrs ms dr st gen col lt sgt maj capt cpt adm prof sen rep gov pres jr sr "
    "mme mlle mm hr fr frau herr nr no vs г им тов"
)

# Person titles: words that name a role, never part of a name. German
# compounds ("Außenministerin", "Regierungssprecher") match by suffix.
_TITLES = _words("""
    minister ministers prime premier deputy vice acting foreign defence defense finance
    interior justice economy first chief head president secretary secretary-general
    spokesperson spokesman spokeswoman representative official governor chairman
    chairwoman chair chairperson director director-general ambassador envoy consul
    commissioner chancellor mayor senator congressman congresswoman lawmaker mp
    king queen prince princess emir sheikh sultan pope cardinal bishop patriarch
    general colonel lieutenant major admiral commander captain marshal brigadier sergeant
    officer adviser advisor counsellor counselor attorney prosecutor judge justice
    auditor inspector ombudsman leader speaker ceo cfo coo founder professor dr mr mrs ms
    fellow member researcher economist analyst expert scholar diplomat executive strategist
    scientist lawyer editor correspondent
    ministre président présidente secrétaire porte-parole gouverneur gouverneure
    directeur directrice ambassadeur ambassadrice chancelier chancelière maire sénateur
    sénatrice député députée conseiller conseillère chef général colonel amiral m mme
    commissaire délégué déléguée haut haute représentant représentante premier première
    bundeskanzler bundeskanzlerin kanzler kanzlerin präsident präsidentin sprecher
    sprecherin botschafter botschafterin minister ministerin staatssekretär
    staatssekretärin direktor direktorin vorsitzender vorsitzende herr frau
    министр президент премьер премьер-министр глава руководитель начальник секретарь
    пресс-секретарь представитель официальный губернатор председатель директор
    заместитель замминистра посол канцлер мэр сенатор депутат генерал полковник
    адмирал маршал командующий советник помощник спикер
    """)
_TITLE_SUFFIXES = (
    "minister",
    "ministerin",
    "kanzler",
    "kanzlerin",
    "präsident",
    "präsidentin",
    "sprecher",
    "sprecherin",
    "sekretär",
    "sekretärin",
    "botschafter",
    "botschafterin",
    "vorsitzender",
    "vorsitzende",
    "министр",
)
# Title words that only qualify another: "First Deputy", "Foreign Minister".
_TITLE_MODIFIERS = _words(
    "first vice deputy acting prime foreign defence defense finance interior justice economy "
    "haut haute official"
)
# Military ranks: a rank closing a longer role gets a comma before it.
_RANKS = _words(
    "general colonel lieutenant major admiral captain marshal brigadier sergeant "
    "général amiral генерал полковник адмирал маршал"
)
# Words of organisations: a capitalised run ending in one is not a person.
_ORG_WORDS = _words("""
    ministry ministries staff forces force office department council committee government
    bank commission service services agency directorate federation republic union army
    navy parliament assembly court embassy mission organization organisation nations
    states kingdom centre center group party company corporation institute university
    fund reserve authority administration command headquarters police guard affairs
    coalition alliance league front movement board house senate congress duma kremlin
    opposition amendment act treaty agreement law constitution declaration charter
    ministère gouvernement armée conseil banque assemblée commission affaires
    ministerium regierung bundesregierung amt bundestag rat bank
    министерство правительство армия совет банк штаб
    """)
# Name particles, not counted as a name's words: "Ursula von der Leyen".
_PARTICLES = _words("de da di du del della der den van von le la bin ibn al el ter dos das")
# Capitalised words that start sentences or name dates, never a person.
_NOT_NAMES = _words("""
    the a an this that these those it its in on at by for from with after before during
    when while as if but and or also then however meanwhile moreover furthermore yet
    yesterday today tomorrow earlier later now here there still finally thus so
    according accordingly speaking asked mr another other others some many most all both each
    every any no not none one you we they i me us them his her their our my your its
    was were is are be been am has have had do does did will would can could should shall might
    must let please thank thanks yes well oh about above across against along among around
    because behind below beneath beside between beyond despite down inside into near off onto
    out outside over since through throughout toward towards under until up upon via within
    without what who why how where which whoever nothing everything something anything
    monday tuesday wednesday thursday friday saturday sunday january february march
    april may june july august september october november december
    le la les un une des du en dans selon lundi mardi mercredi jeudi vendredi samedi
    dimanche der die das ein eine am im heute gestern laut nach
    в во на по как однако также сегодня вчера
    """)
# Words joining a role phrase: "Chief of the Main Directorate".
_CONNECTORS = _words("of for the to and de du des la le les l' d' l’ d’ der die des für")
# Before a lone capitalised run these make it a place: "the ambassador of Russia".
_PLACE_PREPOSITIONS = _words(
    "of for the in at from to by with de du des en à aus im in bei von из в во на с"
)
_ARTICLES = _words("the a an le la les l' l’ un une der die das ein eine einer des du")
_PRONOUNS = _words("he she il elle er sie он она")
_OBJECT_PRONOUNS = _words("him her lui elle ihm ihr ihn него неё нее ней")
_ADVERBS = _words(
    "also later then again further additionally earlier aussi encore ensuite auch "
    "außerdem zudem также еще ещё затем"
)
# Possessives and contractions: "Russia's", "I’m", "Don’t" are not names.
_CONTRACTIONS = tuple(f"{q}{end}" for q in "'’" for end in ("s", "m", "re", "ve", "ll", "d", "t"))
_HONORIFICS = _words("mr mrs ms m mme mlle dr herr frau")
# Words after which a description's complement begins: "the head | of the delegation".
_COMPLEMENT_WORDS = _words("of for to at in on from with de du des d' d’ à der für von bei")
_FUNCTION_WORDS = _CONNECTORS | _ARTICLES | _NOT_NAMES
# Words showing a clause is not a bare subject: "…”, which the minister said".
_CLAUSE_WORDS = _words(
    "which that who whom whose what where when if because qui que dont quand si "
    "dass weil wenn welche welcher который которая которые что когда если"
)
# After a reporting verb these introduce indirect speech, not an attribution.
_THAT_WORDS = _words("that que qu' qu’ dass что")

# --- reporting verbs -------------------------------------------------------

_EN_VERBS = _words("""
said says say stated states stressed stresses noted notes told tells added adds explained explains
reminded reminds emphasized emphasised emphasizes emphasises underlined underlines declared
declares announced announces warned warns continued continues remarked insisted insists
highlighted highlights replied replies asked commented comments observed observes argued
argues claimed confirmed confirms concluded wrote writes recalled recalls acknowledged affirmed
assured responded answered admitted underscored underscores reiterated reiterates clarified
mentioned indicated urged urges cautioned promised vowed
""")
_EN_PHRASES = ("pointed out", "points out", "went on")
_FR_PARTICIPLES = _words("""
déclaré dit souligné affirmé ajouté indiqué expliqué précisé estimé rappelé noté averti
annoncé insisté martelé assuré répondu poursuivi conclu jugé lancé observé reconnu confié
prévenu
""")
_FR_PRESENT = _words("""
déclare dit souligne affirme ajoute indique explique précise estime rappelle insiste assure
poursuit conclut lance martèle prévient répond observe juge déclarent affirment estiment
""")
_DE_VERBS = _words("""
sagte sagt sagten erklärte erklärt erklärten betonte betont betonten unterstrich unterstreicht
bekräftigte ergänzte ergänzt fügte meinte meint warnte warnt mahnte versicherte kritisierte
forderte bemerkte antwortete fragte teilte hob sprach schrieb
fügt bekräftigt versichert bemerkt hebt
""")
_RU_VERBS = _words("""
заявил сказал подчеркнул отметил добавил пояснил сообщил указал напомнил заметил
предупредил уточнил констатировал ответил признал резюмировал продолжил написал подытожил
""")
_RU_PRESENT = _words(
    "заявляет говорит подчеркивает подчёркивает отмечает добавляет сообщает считает пишет"
)


def _verb_pattern() -> str:
    """One alternation of every reporting verb, longest first so phrases win."""
    words = [*_EN_VERBS, *_EN_PHRASES, *_DE_VERBS, *_RU_PRESENT]
    words += [f"{stem}{end}" for stem in _RU_VERBS for end in ("", "а", "и")]
    ordered = sorted(sorted(words), key=len, reverse=True)  # longest first: phrases win
    literal = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in ordered)
    inversion = r"(?:-t-(?:il|elle|on)|-(?:il|elle|ils|elles))"
    participles = "|".join(re.escape(w) for w in sorted(_FR_PARTICIPLES, key=len)[::-1])
    present = "|".join(re.escape(w) for w in sorted(_FR_PRESENT, key=len)[::-1])
    french = (
        rf"(?:a|ont|avait|avaient){inversion}?\s+(?:{participles})"
        rf"|(?:{present}){inversion}?"
    )
    return rf"(?<![\w-])(?:{french}|{literal})(?![\w-])"


# Case-sensitive on purpose: "States" in "United States" is not a verb.
_VERB = re.compile(_verb_pattern())
_FRENCH_INVERSION = re.compile(r"-(?:t-)?(il|elle|on|ils|elles)(?![\w-])")
_ACCORDING_TO = r"(?:[Aa]ccording\s+to|[Ss]elon|[Dd][’']après|[Ll]aut|[Пп]о\s+словам)"
_BEFORE_ACCORDING = re.compile(
    rf"(?<![\w-])(?P<verb>{_ACCORDING_TO})\s+(?P<who>[^,:;.!?“”«»„\"]{{1,150}})[,:]\s*[—–-]?\s*$"
)
_POSSESSIVE_ACCORDING = re.compile(r"(?<![\w-])[Пп]о\s+(?:его|её|ее)\s+словам[,:]?\s*$")
# After a quotation German also attributes with "so": „…“, so Scholz.
_AFTER_ACCORDING = re.compile(rf"(?P<verb>{_ACCORDING_TO}|so)\s+(?=\S)")
_ACCORDING_CLAUSE = re.compile(rf"{_ACCORDING_TO}\s+([^,.;:!?]{{1,150}})")
_CLAUSE_BREAK = re.compile(r"[,;:()\n]")
_LEADING_PUNCTUATION = re.compile(r"[\s,;:—–-]*")
_ENDS_CLAUSE = re.compile(r"[,.!?…:;]\s*$")

# --- data ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Who:
    """Who a phrase designates: a named person, a pronoun, a job description, or an
    organisation (which is no named speaker, but still attributes the quotation)."""

    kind: Literal["name", "pronoun", "description", "organisation"]
    name: str | None = None
    role: str | None = None
    inflected: bool = False  # a Russian name in an oblique case: "по словам Лаврова"
    titles: frozenset[str] = frozenset()  # title words of a description, lower case
    capitals: frozenset[str] = frozenset()  # capitalised words of a description


@dataclass(frozen=True, slots=True)
class _Attribution:
    who: _Who
    verb: str
    clause_end: int  # where the attributing clause ends in the text


@dataclass(slots=True)
class _Open:
    """An opening mark not yet closed, with the closed quotations directly inside it."""

    mark: str
    pos: int
    children: list[tuple[int, int]] = field(default_factory=list)


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


# --- pass 1: pair the marks --------------------------------------------------


def _pair_quote_marks(text: str) -> list[tuple[int, int]]:
    """Spans (mark to mark, inclusive) of the outermost quotations, in order."""
    spans: list[tuple[int, int]] = []
    stack: list[_Open] = []

    def abandon(entries: list[_Open]) -> None:
        # An opener that never closed was not a quotation; what it enclosed may be.
        for entry in entries:
            spans.extend(entry.children)

    for count, match in enumerate(_MARK_OR_BLANK_LINE.finditer(text)):
        if count >= MAX_MARKS:
            break
        mark = match.group()
        if mark[0] == "\n":
            abandon(stack)
            stack.clear()
            continue
        pos = match.start()
        if stack and mark in _CLOSERS[stack[-1].mark]:
            opened = stack.pop()
            span = (opened.pos, pos + 1)
            (stack[-1].children if stack else spans).append(span)
        elif mark in _CLOSERS:
            if len(stack) == MAX_DEPTH:
                abandon([stack.pop(0)])
            stack.append(_Open(mark, pos))
    abandon(stack)
    spans.sort()
    return spans


def _clean_quote_text(inner: str) -> str:
    """The quoted words: whitespace collapsed, the comma before an attribution dropped."""
    return _WHITESPACE.sub(" ", inner).strip().rstrip(",;:").rstrip()


# --- sentences and tokens ----------------------------------------------------


def _is_abbreviation_end(text: str, dot: int) -> bool:
    """Whether the "." at `dot` ends an abbreviation or initial, not a sentence."""
    if text[dot] != ".":
        return False
    match = _LAST_WORD.search(text, max(0, dot - 12), dot)
    if match is None or match.end(1) != dot:
        return False
    word = match.group(1)
    return word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper())


def _sentence_ends(text: str) -> list[int]:
    """Positions just after each sentence-ending punctuation run in `text`."""
    return [
        m.end() for m in _SENTENCE_END.finditer(text) if not _is_abbreviation_end(text, m.start())
    ]


def _mentions(text: str, name: str) -> Iterator[tuple[int, int]]:
    """Spans of `name` as a whole word, at most MAX_MENTIONS of them.

    `str.find` rather than a regex: it is fast enough to run once per speaker
    over a text of several MB.
    """
    found = 0
    pos = text.find(name)
    while pos >= 0 and found < MAX_MENTIONS:
        end = pos + len(name)
        before = text[pos - 1] if pos else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or before in "-_") and not (after.isalnum() or after in "-_"):
            found += 1
            yield pos, end
        pos = text.find(name, pos + 1)


def _tokens(text: str, offset: int = 0) -> list[_Token]:
    return [_Token(m.group(), m.start() + offset, m.end() + offset) for m in _WORD.finditer(text)]


def _is_capitalised(word: str) -> bool:
    return word[0].isupper()


def _is_title(word: str) -> bool:
    lower = word.lower().rstrip(".")
    if lower in _TITLES or lower.endswith(_TITLE_SUFFIXES):
        return True
    parts = lower.split("-")
    return len(parts) > 1 and all(part in _TITLES for part in parts)


def _is_org_word(word: str) -> bool:
    lower = word.lower()
    return lower in _ORG_WORDS or lower.endswith(("ministerium", "ministère"))


def _is_acronym(word: str) -> bool:
    return len(word) > 1 and word.isupper()


def _is_particle(word: str) -> bool:
    return word.lower() in _PARTICLES


def _is_uncounted_name_part(word: str) -> bool:
    """Initials and Russian patronymics extend a name without counting as a word."""
    lower = word.lower()
    return len(word) == 1 or lower.endswith(("вич", "вна", "ична", "вича", "вны", "ичны"))


def _is_name_word(word: str) -> bool:
    return (
        _is_capitalised(word)
        and not _is_title(word)
        and not _is_org_word(word)
        and not _is_acronym(word)
        and word.lower() not in _NOT_NAMES
        and not word.lower().endswith(_CONTRACTIONS)
    )


# --- names and roles inside a phrase -----------------------------------------


def _adjacent(text: str, left: _Token, right: _Token) -> bool:
    """Whether two tokens are separated only by spaces (or an initial's dot)."""
    gap = text[left.end : right.start]
    if not gap.strip():
        return True
    return gap.strip() == "." and len(left.text) <= 3 and _is_capitalised(left.text)


def _capitalised_runs(text: str, tokens: list[_Token]) -> list[tuple[int, int]]:
    """Index ranges of adjacent capitalised words (particles allowed inside)."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for i, token in enumerate(tokens):
        joined = start is not None and _adjacent(text, tokens[i - 1], token)
        inside = joined and _is_particle(token.text)
        if _is_capitalised(token.text) or inside:
            if start is None or not joined:
                if start is not None:
                    runs.append((start, i))
                start = i
        elif start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(tokens)))
    # A run never ends on a particle: "Scholz und der" -> "Scholz".
    trimmed = []
    for a, b in runs:
        while (
            b > a and _is_particle(tokens[b - 1].text) and not _is_capitalised(tokens[b - 1].text)
        ):
            b -= 1
        trimmed.append((a, b))
    return trimmed


def _trailing_name(tokens: list[_Token], a: int, b: int) -> tuple[int, int] | None:
    """The person name closing tokens[a:b]: at most two counted words, particles inside."""
    if b <= a or not _is_name_word(tokens[b - 1].text):
        return None
    counted = 0
    i = b
    while i > a:
        word = tokens[i - 1].text
        if _is_particle(word) and i - 1 > a and i < b:
            i -= 1
            continue
        initial = len(word) == 1 and i - 1 > a and _is_name_word(tokens[i - 2].text)
        if initial:  # "Robert M. Danin": "M" here is an initial, not "Monsieur"
            i -= 1
            continue
        if not _is_name_word(word):
            break
        if not _is_uncounted_name_part(word):
            if counted == 2:
                break
            counted += 1
        i -= 1
    while i < b and _is_particle(tokens[i].text):
        i += 1
    # "said Von": a capitalised particle counts as a name word but is dropped from the
    # name's start, and may leave nothing of it.
    return (i, b) if counted and i < b else None


def _find_name(
    text: str, tokens: list[_Token], pick: Literal["first", "last"]
) -> tuple[int, int] | None:
    runs = _capitalised_runs(text, tokens)
    for a, b in runs if pick == "first" else reversed(runs):
        found = _trailing_name(tokens, a, b)
        if found is None:
            continue
        # "the ambassador of Russia": a lone run after "of" is a place, not a person.
        if found[0] == a and a > 0 and tokens[a - 1].text.lower() in _PLACE_PREPOSITIONS:
            continue
        return found
    return None


def _span_text(text: str, tokens: list[_Token], a: int, b: int) -> str:
    """The text of tokens[a:b], whitespace collapsed ("" for an empty range)."""
    if not 0 <= a < b <= len(tokens):
        return ""
    return _WHITESPACE.sub(" ", text[tokens[a].start : tokens[b - 1].end]).strip()


def _role_from(text: str, tokens: list[_Token]) -> str | None:
    """A role phrase from the words before a name, if they name a title."""
    a, b = 0, len(tokens)
    while a < b and (
        tokens[a].text.lower() in _CONNECTORS
        or tokens[a].text.lower() in _NOT_NAMES
        or not (_is_capitalised(tokens[a].text) or _is_title(tokens[a].text))
    ):
        a += 1
    while b > a and tokens[b - 1].text.lower() in _CONNECTORS:
        b -= 1
    if a == b or not _names_a_role(tokens[a:b]):
        return None
    if all(t.text.lower() in _HONORIFICS for t in tokens[a:b]):
        return None  # "Mr", "M.": a form of address, not a role
    return _punctuate_rank(text, tokens[a:b])


def _punctuate_rank(text: str, tokens: list[_Token]) -> str:
    """The role text, with a comma before a closing military rank: "…Forces, Colonel General"."""
    role = _span_text(text, tokens, 0, len(tokens))
    i = len(tokens)
    while i > 0 and tokens[i - 1].text.lower() in _RANKS:
        i -= 1
    if 0 < i < len(tokens) and tokens[i - 1].text.lower() not in _CONNECTORS:
        if _is_title(tokens[i - 1].text):
            return role
        head = _span_text(text, tokens, 0, i)
        return f"{head}, {_span_text(text, tokens, i, len(tokens))}"
    return role


def _is_cyrillic(word: str) -> bool:
    return any("\u0400" <= c <= "\u04ff" for c in word)


def _head_words(tokens: list[_Token]) -> list[_Token]:
    """The words a description is about, before its complement ("the representative"
    of "the representative of the General Staff")."""
    a = 0
    while a < len(tokens) and tokens[a].text.lower() in _ARTICLES:
        a += 1
    b = a
    while b < len(tokens) and tokens[b].text.lower() not in _COMPLEMENT_WORDS:
        b += 1
    return tokens[a:b]


def _description(tokens: list[_Token]) -> _Who | None:
    """A job description ("the minister", "ein Sprecher des Ministeriums") or an
    organisation ("the State Department"); None for anything else."""
    head = _head_words(tokens)
    if not head:
        return None
    if any(_is_cyrillic(t.text) for t in head):
        # Russian puts the title first and its complement after, without "of".
        titles = [t for t in head if _is_title(t.text)][:1]
    else:
        titles = [t for t in head if _is_title(t.text)] if _is_title(head[-1].text) else []
    if titles:
        capitals = frozenset(
            t.text for t in tokens if _is_capitalised(t.text) and not _is_title(t.text)
        )
        return _Who(
            "description", titles=frozenset(t.text.lower() for t in titles), capitals=capitals
        )
    if _is_org_word(head[-1].text) and len(tokens) <= 8:
        return _Who("organisation")
    return None


def _first_clause(text: str) -> str:
    """`text` up to its first comma, bracket, line break or sentence end ("U.S." is none)."""
    clause_break = _CLAUSE_BREAK.search(text)
    end = clause_break.start() if clause_break else len(text)
    ends = _sentence_ends(text[:end])
    return text[: ends[0] - 1] if ends else text[:end]


def _appositive_role(segment: str) -> str | None:
    """A role in an appositive: "spokeswoman of the Foreign Ministry"."""
    tokens = _tokens(segment)
    # "professor at Purdue, whose research…": the role ends where a relative clause starts.
    for i, token in enumerate(tokens):
        if token.text.lower() in _CLAUSE_WORDS:
            tokens = tokens[:i]
            break
    if not tokens or len(tokens) > 20 or not _names_a_role(tokens):
        return None
    a = 1 if tokens[0].text.lower() in _ARTICLES else 0
    if a >= len(tokens):
        return None
    return _span_text(segment, tokens, a, len(tokens))


def _names_a_role(tokens: list[_Token]) -> bool:
    """Whether the words hold a title proper, not only a modifier like "first" or "vice"."""
    return any(_is_title(t.text) and t.text.lower() not in _TITLE_MODIFIERS for t in tokens)


def _join_roles(*roles: str | None) -> str | None:
    present = [r for r in roles if r]
    return ", ".join(present) if present else None


def _parse_segment(
    segment: str, pick: Literal["first", "last"], *, closing: bool = False
) -> _Who | None:
    """A name with the role words before it, a pronoun, or a description.

    `closing`: the name must be the segment's last words.
    """
    tokens = _tokens(segment)
    while tokens and tokens[-1].text.lower() in _ADVERBS:
        tokens.pop()
    if not tokens:
        return None
    first = tokens[0].text.lower()
    if len(tokens) == 1 and (first in _PRONOUNS or first in _OBJECT_PRONOUNS):
        return _Who("pronoun")
    if pick == "first" and first in _PRONOUNS:
        return _Who("pronoun")
    found = _find_name(segment, tokens, pick)
    if closing and (found is None or found[1] != len(tokens)):
        return None
    if found is None:
        return _description(tokens)
    a, b = found
    name = _span_text(segment, tokens, a, b)
    return _Who("name", name=name, role=_role_from(segment, tokens[:a]))


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


# --- pass 3: scare quotes -------------------------------------------------------


def _is_sentence_like(quote: str) -> bool:
    """Whether an unattributed quotation reads as speech rather than a term or a name."""
    words = _tokens(quote)
    if not words or not _is_capitalised(words[0].text):
        return False
    ends_sentence = quote.rstrip("”»“\"'’ ").endswith((".", "!", "?", "…"))
    if ends_sentence and len(words) >= 3:
        return True
    # A long run of Title Case is the name of a thing ("Strategy for the Arctic Zone").
    content = [w.text for w in words if w.text.lower() not in _FUNCTION_WORDS]
    capitalised = sum(1 for w in content if _is_capitalised(w))
    return len(words) >= 6 and capitalised < 0.6 * len(content)


def _continues(previous: _Found | None, text: str, start: int) -> bool:
    """Whether a quotation directly follows an attributed one (“A,” he said. “B.”)."""
    if previous is None or previous.speaker is None:
        return False
    gap = text[previous.clause_end : start]
    return len(gap) <= CONTEXT_CHARS and not any(c.isalnum() for c in gap)


# --- pass 4: names ------------------------------------------------------------------


def _stem(word: str) -> str:
    """A Russian word without its case ending, so "Лаврова" matches "Лавров"."""
    if not any("а" <= c.lower() <= "я" or c in "ёЁ" for c in word):
        return word
    stripped = word.rstrip("аяуюеиоыйьм")
    return stripped if len(stripped) >= max(3, len(word) - 2) else word[: len(word) - 2]


def _same_words(short: list[str], full: list[str]) -> bool:
    """Whether `short` names the tail of `full` ("Kartapolov" of "Andrei Kartapolov")."""
    if len(short) > len(full):
        return False
    return all(
        _stem(s) == _stem(f) for s, f in zip(short, full[len(full) - len(short) :], strict=True)
    )


class _NameResolver:
    """Maps each short or inflected name to the one full name it stands for.

    Full names come from the speakers themselves, else from the text; a name
    in an oblique case ("Марии Захаровой") is never a target, only a source.
    """

    def __init__(self, text: str, names: dict[str, bool]) -> None:
        """`names` maps each name to whether it was ever seen in the nominative."""
        self.text = text
        self.full = {
            n: _name_words(n)
            for n, nominative in names.items()
            if nominative and len(_name_words(n)) >= 2
        }

    def resolve(self, name: str) -> str:
        words = _name_words(name)
        candidates = [f for f, fw in self.full.items() if f != name and _same_words(words, fw)]
        if not candidates and len(words) == 1:
            candidates = self._full_forms_in_text(name)
        distinct = list(dict.fromkeys(candidates))
        if len(distinct) == 1:
            return distinct[0]
        return name

    def _full_forms_in_text(self, surname: str) -> list[str]:
        """Full forms ("First Surname") wherever the surname closes a capitalised run."""
        found: list[str] = []
        for start, end in _mentions(self.text, surname):
            window = self.text[max(0, start - 80) : end]
            tokens = _tokens(window)
            runs = _capitalised_runs(window, tokens)
            if not runs or runs[-1][1] != len(tokens):
                continue
            span = _trailing_name(tokens, runs[-1][0], len(tokens))
            if span is not None and span[1] - span[0] >= 2:
                found.append(_span_text(window, tokens, *span))
        return found


def _name_words(name: str) -> list[str]:
    return [t.text for t in _tokens(name) if not _is_particle(t.text)]


# --- the entry point ---------------------------------------------------------------


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

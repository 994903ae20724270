"""The words and patterns quote attribution reads by, and the bounds on its work.

This module owns the lexicons of `monitor.extract.quotes` (titles, ranks,
organisation words, particles, pronouns, reporting verbs in English, French,
German and Russian), the regular expressions built from them, the bounds on
one call's work, and the word-level tests over them: tokens, sentence ends,
mentions of a name, and whether a word is a title, an organisation word or a
name word.

Its underscore names are private to the package and shared by its modules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

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


# --- tokens ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    start: int
    end: int


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

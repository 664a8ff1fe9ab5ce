"""Indonesian complaint text as tokens: folding, slang, repeated letters, reduplication, stems
and small typos. Pure functions and caches; no I/O beyond the packaged word lists."""

import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources

import ahocorasick
import yaml
from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import process
from rapidfuzz.distance import OSA, Indel, Levenshtein
from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

_WORD = re.compile(r"[a-z]+|[0-9]+")
_STRETCHED = re.compile(r"([a-z])\1{2,}")  # "bauuu", "tolooong": three or more of one letter
_CACHE_LIMIT = 200_000  # words; a flood of unique typos must not grow memory without bound


class Lexicon(BaseModel):
    """Language data: how citizens abbreviate and which words negate what follows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slang: dict[str, str] = Field(
        default_factory=dict, description="Token -> standard word(s), e.g. yg -> yang.")
    negations: list[str] = Field(
        default_factory=list, description="Cues that cancel a priority signal right after them.")
    denials: list[str] = Field(
        default_factory=list,
        description="Cues that deny the phrase right after them ('bukan RS provinsi'): it does "
                    "not count for routing.")
    landmark_cues: list[str] = Field(
        default_factory=list,
        description="Words that make what follows a landmark ('depan SMA Negeri 2'): where, "
                    "not what.")
    landmark_nouns: list[str] = Field(
        default_factory=list,
        description="Words that may stand between a cue and the landmark ('depan kantor "
                    "samsat').")
    keep_reduplicated: list[str] = Field(
        default_factory=list,
        description="Words whose doubled form is a word of its own (oleh-oleh, kupu-kupu).")
    signal_blind: list[str] = Field(
        default_factory=list,
        description="Phrases inside which a priority signal's word means something else "
                    "('darurat' in 'instalasi gawat darurat', 'kebakaran' in 'pemadam "
                    "kebakaran'): only these, longer signal phrases and place names hide a "
                    "signal phrase; a routing phrase that contains one ('pingsan setelah "
                    "makan', 'membawa parang') does not.")
    over_cues: list[str] = Field(
        default_factory=list,
        description="Words that tell an emergency as over ('bulan lalu', 'sudah ditangani'): "
                    "with no now cue in the text, an urgent signal makes the ticket high, not "
                    "urgent.")
    now_cues: list[str] = Field(
        default_factory=list,
        description="Words that tell it is happening now ('sekarang', 'dari tadi', 'belum "
                    "datang'): an over cue then changes nothing.")
    endings: dict[str, str] = Field(
        default_factory=dict,
        description="Word endings of the regional language read as the standard ending "
                    "(Bengkulu Malay nyo -> nya: 'lubangnyo' is 'lubangnya'), for words the "
                    "slang list does not name.")
    typo_min_length: int = Field(
        5, ge=3, description="Shorter tokens are never corrected: too many real words nearby.")


@cache
def default_lexicon() -> Lexicon:
    """The built-in Indonesian lexicon (rulebooks/lexicon-id.yaml)."""
    text = resources.files("services.router").joinpath("rulebooks/lexicon-id.yaml").read_text()
    return Lexicon.model_validate(yaml.safe_load(text))


def fold(text: str) -> str:
    """Lower case, accents and other unicode variants folded to plain ASCII."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def words(text: str) -> list[str]:
    """Folded words; letters and digits split apart ("3kg" -> "3 kg", "smpn4" -> "smpn 4"),
    stretched letters squeezed ("bauuu" -> "bau")."""
    return _WORD.findall(_STRETCHED.sub(r"\1", fold(text)))


def normalise(text: str) -> str:
    """Folded words joined by single spaces and padded, for whole-word substring search."""
    return " " + " ".join(words(text)) + " "


class Normaliser:
    """Turns text into the token sequence that rule phrases are matched against."""

    def __init__(self, lexicon: Lexicon) -> None:
        self._slang = {fold(k).strip(): words(v) for k, v in lexicon.slang.items()}
        self._doubled = frozenset(fold(w).strip() for w in lexicon.keep_reduplicated)
        self._endings = tuple((fold(k).strip(), fold(v).strip()) for k, v in lexicon.endings.items())

    def tokens(self, text: str) -> list[str]:
        out: list[str] = []
        for word in words(text):
            replaced = self._slang.get(word)
            for token in replaced if replaced is not None else (self._standard_ending(word),):
                if out and _repeats(out[-1], token) and token not in self._doubled:
                    continue  # "lubang-lubang", "remang2": the plural means the same thing here
                out.append(token)
        return out

    def _standard_ending(self, word: str) -> str:
        # A root of at least two letters must stay: "nyo" alone is not a suffixed word.
        for ending, standard in self._endings:
            if word.endswith(ending) and len(word) >= len(ending) + 2:
                return word[:-len(ending)] + standard
        return word


def _repeats(previous: str, token: str) -> bool:
    if token == previous:
        return token.isalpha()
    return token == "2" and previous.isalpha() and len(previous) >= 3


# What Indonesian affixation can leave after a root: suffixes, possessives and particles, alone
# or stacked ("dibersihkannya"). A fragment followed by anything else is inside another word.
_AFTER_ROOT = frozenset({"", "i", "an", "kan", "nya", "lah", "kah", "tah", "pun", "ku", "mu",
                         "inya", "annya", "kannya", "nyalah", "kanlah", "anku", "anmu", "kanku",
                         "kanmu", "ilah", "anlah", "isme"})
_LONGEST_PREFIX = 7  # "memper" + the root's first letter, which the fragment leaves out


def may_stem_to(token: str, fragments: "ahocorasick.Automaton") -> bool:
    """Whether Sastrawi could find a stem-view word in ``token``: one of its fragments must
    sit where a root sits, after at most a prefix and before only suffixes. Most typos fail
    this and skip the stemmer, the costliest step of routing."""
    for end, fragment in fragments.iter(token):
        if end + 1 - len(fragment) <= _LONGEST_PREFIX and token[end + 1:] in _AFTER_ROOT:
            return True
    return False


def root_fragments(words: Iterable[str]) -> "ahocorasick.Automaton":
    """What must appear in a word whose stem is one of ``words``: the stem itself, but for a
    prefix that may change the first letter ("pukul" in "memukul", "sapu" in "menyapu")."""
    automaton = ahocorasick.Automaton()
    for word in words:
        fragment = word[1:] if len(word) >= 4 else word
        automaton.add_word(fragment, fragment)
    automaton.make_automaton()
    return automaton


class Stemmer:
    """Sastrawi stems with a cache; the stemmer costs ~0.4 ms a word, the cache ~0.1 us."""

    def __init__(self) -> None:
        factory = StemmerFactory()
        self._stemmer = factory.create_stemmer()
        self.roots = frozenset(w for w in factory.get_words_from_file() if w)
        self._fragments = root_fragments(self.roots)
        self._cache: dict[str, str] = {}

    def stem(self, token: str) -> str:
        found = self._cache.get(token)
        if found is None:
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
            stemmable = token.isalpha() and may_stem_to(token, self._fragments)
            found = self._stemmer.stem(token) if stemmable else token
            self._cache[token] = found = found or token
        return found


@cache
def shared_stemmer() -> Stemmer:
    """One stemmer per process: its word list and cache serve every rulebook."""
    return Stemmer()


def _plausible_typo(typed: str, word: str) -> bool:
    """Short words allow one letter missing, extra or swapped, but no other letter: one
    substitution turns too many real words into rule words ("ribet", "ribut"). Longer words
    allow two edits, of which at most one substitution ("puskesmaz")."""
    if len(typed) < 8:
        return Indel.distance(typed, word) == 1 or Levenshtein.distance(typed, word) == 2
    return Indel.distance(typed, word) <= 2


class TypoFixer:
    """Maps an unknown longer token to the one rule word it is a small typo of ("sampha" ->
    "sampah"). Tokens that are real Indonesian words, by root or by stem, are left alone."""

    def __init__(self, vocabulary: Iterable[str], stemmer: Stemmer, min_length: int) -> None:
        self.vocabulary = frozenset(vocabulary)
        self._stemmer = stemmer
        self.min_length = min_length
        self._by_initial: dict[str, list[str]] = {}
        for word in sorted(self.vocabulary):
            if word.isalpha() and len(word) >= min_length - 1:
                self._by_initial.setdefault(word[:2], []).append(word)
        self._cache: dict[str, str | None] = {}

    def fix(self, token: str) -> str | None:
        if token in self._cache:
            return self._cache[token]
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        self._cache[token] = fixed = self._lookup(token)
        return fixed

    def _lookup(self, token: str) -> str | None:
        if len(token) < self.min_length or not token.isalpha() or token in self.vocabulary:
            return None
        limit = 1 if len(token) < 8 else 2
        # A typo rarely hits the first two letters, and informal verbs differ from rule words
        # right there ("ngamuk" is not "nyamuk"): search words with the same two. OSA counts a
        # swap of two neighbours ("sampha") as one edit.
        best = process.extractOne(token, self._by_initial.get(token[:2], ()),
                                  scorer=OSA.distance, score_cutoff=limit)
        if best is None or not _plausible_typo(token, str(best[0])):
            return None
        roots = self._stemmer.roots
        stem = self._stemmer.stem(token)
        if token in roots or stem in roots or stem in self.vocabulary:
            return None  # a real word that happens to look like a rule word ("malam", "makam")
        return str(best[0])

"""Make a carelessly typed question look like the well-typed one before it meets the answer engine.

The engine matches question words against passages by stems and by capitalized names, so "who is the presdent of
hong kong univercity" finds neither the stem "presid" nor the name "Hong Kong". `Speller` repairs what it can tell
from the corpus and from lists of English words, and leaves everything else as typed:

- a word that is neither in the corpus nor a common English word is replaced by the closest corpus word (or word
  of questions about a document: "autor" -> "author") when the match is close (rapidfuzz ratio >= 80 and at most 2
  edits; a 4-letter word may only gain or lose a letter; shorter words, numbers, acronyms and addresses are left
  alone); when no corpus word is close, by the closest common English word ("coompany" -> "company": a question's
  words need not be its passage's);
- a word that people write often enough (wordfreq's frequency of English words) is taken as meant ("tycoon",
  "characterise"); a rarer one is mended only into a far more frequent word one letter away ("acording");
- "whats", "dont" get their apostrophe back, chat shorthand ("wat", "yrs") its words; "kongs" becomes "kong's" when the corpus writes "Kong's";
- "hongkong" is split and "univer sity" joined when the corpus has "Hong Kong" and "university";
- in a question typed in lower case, names get the corpus's capitals back ("shui on group" -> "Shui On Group"),
  but only where the corpus never writes those words in lower case.

A word the corpus or the common-word list knows is never replaced by another word, so a well-typed question comes
back unchanged. Nothing here loads a model; building takes one pass over the texts.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import Stemmer
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA
from wordfreq import zipf_frequency

from app.grounding import fold_accents

COMMON_WORDS_FILE = Path(__file__).with_name("common_words.txt")
"""Frequent English words (one a line, `#` comments): words a user may type that the corpus need not contain.
Without it "mayor" would become the corpus's "major" and "France" its "finance"."""

_CJK = "\u3040-\u9fff\uac00-\ud7af\uf900-\ufaff"  # written without spaces: a run of them is kept apart from Latin
_WORD = re.compile(rf"[^\W{_CJK}]+(?:['’][^\W{_CJK}]+)*['’]?|[{_CJK}]+")
_DIGIT = re.compile(r"[\d_]")
_URL_OR_EMAIL = re.compile(r"\b(?:[a-z][a-z0-9+.-]*://|www\.)\S+|\S+@\S+\.\w+", re.IGNORECASE)
_POSSESSIVE = re.compile(r"(.+?)((?:['’]s|['’])?)", re.IGNORECASE)
_JOINS_NAME = re.compile(r"[ \t\u00a0]+|-")  # what may stand between the words of one name ("Shanghai-Hong Kong")
_OPENS_SENTENCE = re.compile(r"[.!?:\n]|--|[—–]")  # after these a capital may just open a sentence or a clause
_NAME_CONNECTORS = frozenset({"of", "and", "for", "the", "de", "la", "van", "von", "&"})
_PRONOUN_I = frozenset({"i", "i'm", "i've", "i'd", "i'll"})
MAX_NAME_WORDS = 6

# Contractions typed without the apostrophe, and chat shorthand; only forms that are not also words ("its", "were", "well", "shed").
CONTRACTIONS = {
    "whats": "what's", "whos": "who's", "wheres": "where's", "whens": "when's", "hows": "how's", "whys": "why's",
    "thats": "that's", "theres": "there's", "dont": "don't", "doesnt": "doesn't", "didnt": "didn't",
    "isnt": "isn't", "arent": "aren't", "wasnt": "wasn't", "werent": "weren't", "cant": "can't",
    "couldnt": "couldn't", "wouldnt": "wouldn't", "shouldnt": "shouldn't", "hasnt": "hasn't", "havent": "haven't",
    "hadnt": "hadn't", "im": "I'm", "ive": "I've", "youre": "you're", "theyre": "they're", "theyve": "they've",
    # chat shorthand that no English text uses otherwise
    "wat": "what", "wats": "what's", "wht": "what", "whn": "when", "abt": "about", "yr": "year", "yrs": "years",
    "avg": "average", "govt": "government", "ur": "your",
}


# Words of questions about a document, offered as corrections although the corpus need not contain them
# ("autor" -> "author", "whcih" -> "which").
QUESTION_WORDS = frozenset({
    "author", "article", "title", "headline", "publisher", "published", "publication", "journalist", "reporter",
    "agency", "outlet", "newspaper", "source", "written", "wrote", "document", "story", "report", "date", "which",
    "where", "what", "when", "whose", "does", "many", "much", "name", "about",
})


def load_common_words(path: Path = COMMON_WORDS_FILE) -> frozenset[str]:
    """The common-word list: lower-case words, comments and blank lines skipped."""
    return frozenset(common_words_by_frequency(path))


def common_words_by_frequency(path: Path = COMMON_WORDS_FILE) -> tuple[str, ...]:
    """The common-word list in its order, most frequent first."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(dict.fromkeys(line.strip().lower() for line in lines if line.strip() and not line.startswith("#")))


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int
    frozen: bool  # part of a URL, an e-mail address, or holding digits: never touched
    base: str  # the word without a possessive ending, lower case, straight apostrophes
    suffix: str  # the possessive ending as typed ("'s", "’s", "'") or ""


class Speller:
    """Corrects questions against one corpus; build it once per corpus with `from_texts`."""

    def __init__(
        self,
        vocabulary: Counter[str],
        names: dict[tuple[str, ...], tuple[str, ...]],
        lone_names: dict[str, str],
        proper_words: frozenset[str],
        common_words: Sequence[str],
    ) -> None:
        """Prefer `from_texts`. `vocabulary` counts lower-case corpus words (possessives both with and without
        their "'s"); `names` maps lower-case word runs to the capitalized runs the corpus always writes;
        `lone_names` does the same for single words; `proper_words` are the words the corpus never writes in
        lower case; `common_words` are English words (most frequent first) that are never corrected, and that a
        typo no corpus word is close to is corrected to ("coompany" -> "company": questions use words that their
        answer's passage does not)."""
        self._vocabulary = vocabulary
        self._names = names
        self._lone_names = lone_names
        self._proper_words = proper_words
        self._common_rank = {word: rank for rank, word in enumerate(common_words)}  # also the set of common words
        self._glued = {"".join(key): key for key in names if len(key) <= 3}
        by_length: dict[int, list[str]] = defaultdict(list)
        for word in {*vocabulary, *QUESTION_WORDS}:
            if _is_latin_word(word) and len(word) >= 4:  # a 3-letter target turns "papr" into "apr"
                by_length[len(word)].append(word)
        # The candidates for a typed word of each length: target words at most 2 letters longer or shorter.
        self._candidates = _by_near_length(by_length)
        common_by_length: dict[int, list[str]] = defaultdict(list)
        for word in common_words:
            if _is_latin_word(word) and len(word) >= 4:
                common_by_length[len(word)].append(word)
        self._common_candidates = _by_near_length(common_by_length)
        self._stemmer = Stemmer.Stemmer("english")

    @classmethod
    def from_texts(cls, texts: Iterable[str], common_words: Iterable[str] | None = None) -> Speller:
        """Learn the vocabulary and the capitalized names of `texts` (documents or chunks; overlap is harmless).

        `common_words` defaults to the bundled list (`COMMON_WORDS_FILE`)."""
        streams = [(text, _tokenize(text)) for text in texts]
        vocabulary: Counter[str] = Counter()
        lower_case: set[str] = set()  # words the corpus writes in lower case at least once
        capitalized: set[str] = set()  # ... and with a capital (not all in capitals) at least once
        for _, tokens in streams:
            for token in tokens:
                if token.frozen:
                    continue
                vocabulary[token.text.lower().replace("’", "'")] += 1
                if (folded := fold_accents(token.text.lower())) != token.text.lower():
                    vocabulary[folded] += 1  # "Mongke" typed for "Möngke" is a name, not a typo of "monkey"
                if token.suffix:
                    vocabulary[token.base] += 1
                if token.text[0].islower():
                    lower_case.add(token.base)
                elif token.text[0].isupper() and not token.text.isupper():
                    capitalized.add(token.base)
        runs: dict[tuple[str, ...], Counter[tuple[str, ...]]] = defaultdict(Counter)
        lone_evidence: dict[str, Counter[str]] = defaultdict(Counter)
        for text, tokens in streams:
            openers = _sentence_openers(text, tokens)
            for run in _capitalized_runs(text, tokens):
                if run[0] in openers and tokens[run[0]].base in lower_case:  # "The University of" -> "University of"
                    run = run[1:]
                    while run and not _is_capitalized(tokens[run[0]]):
                        run = run[1:]
                if len(run) == 1 and run[0] not in openers:
                    token = tokens[run[0]]
                    lone_evidence[token.base][_split_possessive(token.text)[0]] += 1
                elif len(run) > 1:
                    _add_name_runs([tokens[i] for i in run], runs)
        ambiguous = _names_also_in_lower_case(streams, runs)
        names = {key: forms.most_common(1)[0][0] for key, forms in runs.items() if key not in ambiguous}
        lone_names = {
            word: forms.most_common(1)[0][0]
            for word, forms in lone_evidence.items()
            if word not in lower_case and word not in _NAME_CONNECTORS
        }
        proper_words = frozenset(capitalized - lower_case)
        common = tuple(dict.fromkeys(w.lower() for w in common_words)) if common_words is not None else common_words_by_frequency()
        return cls(vocabulary, names, lone_names, proper_words, common)

    def uses(self, word: str) -> bool:
        """Whether the corpus itself writes `word` (lower case)."""
        return word in self._vocabulary

    def knows(self, word: str) -> bool:
        """Whether `word` (any case, possessive or not) is a corpus word, a common English word, or an English word
        that people write often (wordfreq's Zipf frequency >= REAL_WORD_ZIPF: "tycoon", "deepen", "striving")."""
        low = word.lower().replace("’", "'")
        base = _split_possessive(low)[0]
        return low in self._vocabulary or base in self._vocabulary or base in self._common_rank or _zipf(base) >= REAL_WORD_ZIPF

    def correct(self, question: str) -> str:
        """The question with misspellings, missing apostrophes, glued or split words and (when typed in lower
        case) names' capitals repaired; unchanged when nothing needs fixing."""
        tokens = _tokenize(question)
        if not tokens:
            return question
        fixed = "".join(self._fixed_words(question, tokens))
        if _typed_in_lower_case(tokens):
            fixed = self._restore_names(fixed)
        return fixed

    # --- word by word ------------------------------------------------------------------------------------------

    def _fixed_words(self, question: str, tokens: list[_Token]) -> list[str]:
        """The question as separators and words, split words joined and each word repaired."""
        pieces: list[str] = []
        position = 0
        index = 0
        while index < len(tokens):
            token = tokens[index]
            pieces.append(question[position : token.start])
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            joined = self._joined(question, token, following) if following else None
            if joined is not None and following is not None:
                pieces.append(joined)
                position = following.end
                index += 2
                continue
            pieces.append(self._fixed_word(token))
            position = token.end
            index += 1
        pieces.append(question[position:])
        return pieces

    def _joined(self, question: str, first: _Token, second: _Token) -> str | None:
        """"univer sity" -> "university" when one half is unknown and the corpus has the whole."""
        if first.frozen or second.frozen or question[first.end : second.start] != " ":
            return None
        if not (_is_latin_word(first.text) and _is_latin_word(second.text)):
            return None
        if self.knows(first.text) and self.knows(second.text):
            return None
        whole = (first.text + second.text).lower()
        return _match_case(whole, first.text) if whole in self._vocabulary else None

    def _fixed_word(self, token: _Token) -> str:
        word = token.text
        low = word.lower().replace("’", "'")
        if token.frozen or (word.isupper() and len(word) > 1):
            return word  # numbers, addresses, acronyms and shouting are left as typed
        if low in CONTRACTIONS:
            return _match_case(CONTRACTIONS[low], word)
        if len(word) <= 3 or self.knows(word):
            return word
        if low.endswith("s") and (low[:-1] + "'s" in self._vocabulary or low[:-1] in self._proper_words):
            return _match_case(low[:-1] + "'s", word)  # "kongs" -> "kong's", and "shanghais" -> "shanghai's"
        glued = self._glued.get(low)
        if glued is None and low.endswith("s") and low[:-1] in self._glued:  # "hongkongs" -> "hong kong's"
            glued = self._glued[low[:-1]]
            if glued[-1] + "'s" in self._vocabulary:
                return _match_case(" ".join(glued) + "'s", word)
            glued = None
        if glued is not None:
            return _match_case(" ".join(glued), word)
        base, suffix = _split_possessive(word)
        closest = self._closest(base.lower())
        return _match_case(closest, base) + suffix if closest else word

    def _closest(self, word: str) -> str | None:
        """The corpus word closest to `word` when it is close enough to be a typo of it; else the closest common
        English word (most frequent first among equally close ones); else None."""
        length = len(word)
        if length < 4 or not _is_latin_word(word):
            return None  # typos are modelled for alphabetic English words, not for Chinese runs or accents
        found = self._close(word, self._candidates.get(length, ()), lambda choice: -self._vocabulary[choice])
        if found is None:
            found = self._close(word, self._common_candidates.get(length, ()), self._common_rank.__getitem__)
        # A word that people do write ("metropolises", "characterise") is replaced only by a far more frequent one
        # a single edit away (two neighbouring letters swapped count as one: "univeristy"): a common misspelling
        # ("acording", "togther") is, a rare real word is not.
        typed = _zipf(word)
        if found is not None and typed > 0 and (
            _zipf(found) < typed + MORE_FREQUENT or OSA.distance(word, found) > 1
        ):
            return None
        return found

    def _close(self, word: str, candidates: Sequence[str], rank: Callable[[str], int]) -> str | None:
        """The candidate closest to `word` (fewest edits, then highest ratio, then lowest `rank`) within the edits
        a typo of its length may hold, else None."""
        max_edits = _edits(len(word))
        # A ratio of 80 lets a 4-letter word only gain or lose a letter ("papr"): swapping one ("much" -> "such",
        # "mode" -> "more", "file" -> "five") turns too many real words into other ones.
        found = process.extract(word, candidates, scorer=fuzz.ratio, score_cutoff=80, limit=5)
        close = [(OSA.distance(word, choice), -score, rank(choice), choice) for choice, score, _ in found]
        stem = self._stemmer.stemWord(word)
        # A word with the candidate's stem is most likely a real inflection ("affirm" of "affirmed"); the engine
        # matches stems, so replacing it would gain nothing and risk changing the question's meaning.
        close = [entry for entry in close if entry[0] <= max_edits and self._stemmer.stemWord(entry[3]) != stem]
        return min(close)[3] if close else None

    # --- names -------------------------------------------------------------------------------------------------

    def _restore_names(self, question: str) -> str:
        """Capitalize the runs of words and the single words that the corpus always writes capitalized."""
        tokens = _tokenize(question)
        replacements: list[tuple[int, int, str]] = []
        index = 0
        while index < len(tokens):
            found = self._name_at(question, tokens, index)
            if found:
                count, surface = found
                for token, form in zip(tokens[index : index + count], surface, strict=True):
                    if form != token.text:
                        replacements.append((token.start, token.end, form))
                index += count
                continue
            token = tokens[index]
            form = self._lone_names.get(token.base)
            if form and not token.frozen and token.text.islower():
                replacements.append((token.start, token.end, form + token.suffix))
            index += 1
        for start, end, form in reversed(replacements):
            question = question[:start] + form + question[end:]
        return question

    def _name_at(self, question: str, tokens: list[_Token], index: int) -> tuple[int, list[str]] | None:
        """The longest corpus name starting at `tokens[index]`: how many tokens it covers and their new forms."""
        run = [tokens[index]]
        for token in tokens[index + 1 : index + MAX_NAME_WORDS]:
            if run[-1].suffix or not _JOINS_NAME.fullmatch(question[run[-1].end : token.start]):
                break  # a possessive ends a name: "hong kong's innovation" is not "Hong Kong Innovation"
            run.append(token)
        if any(token.frozen for token in run):
            run = run[: next(i for i, token in enumerate(run) if token.frozen)]
        for count in range(len(run), 1, -1):
            words = run[:count]
            if any(not token.text.islower() for token in words[1:]):
                continue
            key = tuple(token.base for token in words)
            surface = self._names.get(key)
            suffix = words[-1].suffix
            last = words[-1].base
            if surface is None and last.endswith("s") and last not in self._vocabulary:  # "shui on groups"
                surface = self._names.get((*key[:-1], last[:-1]))
                suffix = "'s"
            if surface is not None:
                forms = list(surface)
                forms[-1] += suffix
                return count, forms
        return None


# --- helpers -----------------------------------------------------------------------------------------------------


def _tokenize(text: str) -> list[_Token]:
    urls = [match.span() for match in _URL_OR_EMAIL.finditer(text)]
    tokens = []
    for match in _WORD.finditer(text):
        start, end = match.span()
        word = match.group()
        frozen = bool(_DIGIT.search(word)) or any(s < end and start < e for s, e in urls)
        base, suffix = _split_possessive(word)
        tokens.append(_Token(word, start, end, frozen, base.lower().replace("’", "'"), suffix))
    return tokens


def _is_latin_word(word: str) -> bool:
    return word.isascii() and word.isalpha()


REAL_WORD_ZIPF = 3.0
"""Zipf frequency (log10 of uses per billion words, wordfreq) from which a typed word is taken as meant: about one
use in a million words. Common misspellings stay below ("recieve" 2.75, "goverment" 2.66)."""

MORE_FREQUENT = 2.0
"""How much more frequent (Zipf units: 2 is a hundred times) a correction must be than a rarer word that people do
write."""


def _zipf(word: str) -> float:
    """wordfreq's English Zipf frequency of a lower-case word (0.0 for a word it has never seen; wordfreq caches)."""
    return zipf_frequency(word, "en")


def as_typed_question(question: str) -> str:
    """The question as a well-typed one reads: a capital first letter and a closing question mark when it has no
    closing punctuation ("what kind of company is Shui On Group" -> "What kind of company is Shui On Group?"). The
    model reads the question as text to continue, and reads it best in the form of its examples."""
    question = question.strip()
    if not question:
        return question
    if question[-1].isalnum() or question[-1] in "'’)\"":
        question += "?"
    return question[0].upper() + question[1:] if question[0].islower() else question


def _by_near_length(by_length: dict[int, list[str]]) -> dict[int, list[str]]:
    """For each typed length, the words at most `_edits(length)` letters longer or shorter."""
    return {
        length: [word for size in range(length - _edits(length), length + _edits(length) + 1) for word in by_length.get(size, ())]
        for length in range(4, max(by_length, default=0) + 3)
    }


def _edits(length: int) -> int:
    """How many edits a typo of a word of `length` letters may hold."""
    return 0 if length < 4 else 1 if length == 4 else 2


def _split_possessive(word: str) -> tuple[str, str]:
    match = _POSSESSIVE.fullmatch(word)
    return (match.group(1), match.group(2)) if match else (word, "")


def _match_case(new: str, typed: str) -> str:
    """`new` in the case the user typed: lower case stays lower case, a capital first letter is kept."""
    if typed.islower():
        return new if new in CONTRACTIONS.values() else new.lower()
    if typed[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def _is_capitalized(token: _Token) -> bool:
    return not token.frozen and token.text[0].isupper()


def _sentence_openers(text: str, tokens: Sequence[_Token]) -> set[int]:
    """Indexes of the tokens that start a sentence or a line, where a capital says nothing about being a name."""
    openers = set()
    previous_end = 0
    for index, token in enumerate(tokens):
        if index == 0 or _OPENS_SENTENCE.search(text, previous_end, token.start):
            openers.add(index)
        previous_end = token.end
    return openers


def _capitalized_runs(text: str, tokens: Sequence[_Token]) -> list[list[int]]:
    """Indexes of maximal runs of capitalized words (with inner "of", "and" ...) joined by spaces or hyphens."""
    runs: list[list[int]] = []
    current: list[int] = []
    for index, token in enumerate(tokens):
        previous = tokens[index - 1]
        joined = bool(current) and not previous.suffix and bool(_JOINS_NAME.fullmatch(text, previous.end, token.start))
        if current and joined and (_is_capitalized(token) or token.text.lower() in _NAME_CONNECTORS):
            current.append(index)
            continue
        if current:
            runs.append(current)
        current = [index] if _is_capitalized(token) else []
    if current:
        runs.append(current)
    trimmed = []
    for run in runs:
        while not _is_capitalized(tokens[run[-1]]):
            run = run[:-1]
        trimmed.append(run)
    return trimmed


def _add_name_runs(run: list[_Token], names: dict[tuple[str, ...], Counter[tuple[str, ...]]]) -> None:
    """Every stretch of 2+ words of a run that starts and ends with a capitalized word ("Hong Kong", "Zhang Xiang"
    out of "Hong Kong University President Zhang Xiang"), keyed by its lower-case words."""
    for first in range(len(run)):
        if not _is_capitalized(run[first]):
            continue
        for last in range(first + 1, min(len(run), first + MAX_NAME_WORDS)):
            if _is_capitalized(run[last]):
                words = run[first : last + 1]
                key = tuple(token.base for token in words)
                names[key][tuple(_split_possessive(token.text)[0] for token in words)] += 1


def _names_also_in_lower_case(
    streams: list[tuple[str, list[_Token]]], names: dict[tuple[str, ...], Counter[tuple[str, ...]]]
) -> set[tuple[str, ...]]:
    """Name keys that the corpus also writes not capitalized ("science and technology"): not names."""
    first_words = {key[0] for key in names}
    ambiguous: set[tuple[str, ...]] = set()
    for text, tokens in streams:
        for index, token in enumerate(tokens):
            if token.base not in first_words:
                continue
            key = (token.base,)
            capitalized = _is_capitalized(token)
            window = tokens[index : index + MAX_NAME_WORDS]
            for previous, following in zip(window, window[1:]):
                if previous.suffix or not _JOINS_NAME.fullmatch(text, previous.end, following.start):
                    break
                key = (*key, following.base)
                if not _is_capitalized(following) and following.text.lower() not in _NAME_CONNECTORS:
                    capitalized = False
                if key in names and not (capitalized and _is_capitalized(following)):
                    ambiguous.add(key)
    return ambiguous


def _typed_in_lower_case(tokens: list[_Token]) -> bool:
    """No capital letter at all (the pronoun "I" aside): the user marked no names, so the lack of capitals says
    nothing. One capital, even only the first letter, means the question was typed with care: "On what date did
    the science and technology innovation dialogue take place?" keeps its lower-case "dialogue"."""
    typed = [token.text for token in tokens if not token.frozen and token.text.lower() not in _PRONOUN_I]
    return not any(character.isupper() for word in typed for character in word)

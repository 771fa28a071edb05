"""Grounding: check a model's candidate against the passages, pick supporting sentences, decide when to refuse.

The default model is a 270M base model that invents answers, so its output is only a candidate: an answer is
returned when its words are found in a retrieved passage and that passage covers what the question asks about.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from langchain_core.documents import Document

from ingest.chunking import sentence_spans

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’.,-]*[A-Za-z0-9]|[A-Za-z0-9]")
_STOPWORDS = frozenset(
    """a an the and or but if then of to in on at by for from with about as into onto over under between among
    is are was were be been being am do does did done doing have has had having will would shall should can could
    may might must what which who whom whose when where why how that this these those there here it its it's he him
    his she her they them their we our you your i me my mine not no yes so than too very just also only even
    according say says said tell told describe described call called name named kind type sort give given
    any some all each every many much more most other such same one ones own again ever still yet
    please answer question article source text passage document ignore instructions previous reply word""".split()
)
NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
    "ten": "10", "eleven": "11", "twelve": "12", "fifteen": "15", "twenty": "20", "thirty": "30", "forty": "40",
    "fifty": "50", "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000", "dozen": "12",
}
"""Number words and their figures: what the answer-type check counts as a number, and how a question's "ten years"
is compared with a passage's "10 years"."""
_NUMBER = re.compile(rf"\d|\b({'|'.join(NUMBER_WORDS)})\b", re.I)
_MONTH = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b|\b\d{3,4}s?\b|\b(yesterday|today|week|year)\b"
    r"|\b(centur(y|ies)|decades?|spring|summer|autumn|winter|bc|ad|bce)\b",
    re.I,
)
"""A date: a month, a year of any century ("1263", "the 1340s"), a century or season, a relative day."""
_CAPITALIZED = re.compile(r"\b[A-Z][a-z]+|\b[A-Z]{2,}\b")
TOP_SENTENCES = 3
"""The grounding rules take a model's answer only when it is found in one of this many best-ranked sentences."""
_NONE_ANSWERS = {"", "none", "unknown", "n/a", "not stated", "not mentioned", "no answer", "nothing"}


@dataclass(frozen=True)
class Sentence:
    passage: int
    start: int
    end: int
    text: str


@lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202
    import Stemmer

    return Stemmer.Stemmer("english")


def content_words(text: str) -> list[str]:
    """Lower-cased words that carry meaning (no stopwords, no question words), in order, without repeats."""
    words = []
    for word in _WORD.findall(text):
        word = word.lower().strip(".,'’-")
        words.append(word)
        if "-" in word:  # "kong-shanghai" also counts as "kong" and "shanghai"
            words.extend(word.split("-"))
    return list(dict.fromkeys(w for w in words if len(w) > 1 and w not in _STOPWORDS))


def content_terms(text: str) -> set[str]:
    """Stems of the content words."""
    return {_stemmer().stemWord(w) for w in content_words(text)}


def expected_type(question: str) -> str | None:
    """The kind of answer a question asks for: 'number', 'date', 'name' or None (anything)."""
    q = question.lower()
    if re.search(r"\bhow (many|much|fast|old|large|big|long|often)\b|\bwhat (percent|percentage|rate|number|amount|value|share|sum)\b|\bat what (average |annual )*rate\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (date|day|year|month|time)\b|\bwhich (date|day|year|month)\b|\bon what date\b", q):
        return "date"
    if re.search(r"\bwho(m|se)?\b", q):
        return "name"
    return None


def fits_type(kind: str | None, text: str) -> bool:
    if kind == "number":
        return bool(_NUMBER.search(text))
    if kind == "date":
        return bool(_MONTH.search(text))
    if kind == "name":
        return bool(_CAPITALIZED.search(text))
    return True


def split_sentences(passages: list[Document]) -> list[Sentence]:
    """Sentences of the passages with offsets into their source documents."""
    sentences = []
    for index, passage in enumerate(passages):
        base = int(passage.metadata["start"])
        for span in sentence_spans(passage.page_content):
            sentences.append(Sentence(index, base + span.start, base + span.end, passage.page_content[span.start : span.end]))
    return sentences


_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|prompts?|rules|context|above)\b"
    r"|\b(reply|respond|answer|say|output|print)\b.{0,20}\b(only|exactly)\b"
    r"|\b(you are now|developer mode|jailbreak|system prompt)\b|^\s*(system|assistant|user)\s*:",
    re.I,
)


def is_instruction(sentence: str) -> bool:
    """A sentence that addresses the reader or the model with orders ("ignore all previous instructions", "reply only
    with ...", "SYSTEM: ..."): a document's prompt injection. Such sentences are never quoted as answers."""
    return bool(_INSTRUCTION.search(sentence))


def clean_candidate(raw: str) -> str | None:
    """The model's raw completion reduced to the answer words, or None when it declined or wrote nothing useful."""
    text = raw.strip().splitlines()[0] if raw.strip() else ""
    text = re.sub(r"^(answer\s*:|the answer is)\s*", "", text, flags=re.I).strip(" \t\"'“”‘’`*.,;:")
    return None if text.lower() in _NONE_ANSWERS or len(text) > 300 else text


_REFERS_BACK = re.compile(r"^\W*(?:it|its|this|these|those|they|their|he|his|she|her|such)\b", re.I)


def refers_back(sentence: str) -> bool:
    """The sentence opens with a word that stands for something said before it ("It will ...", "This is ...")."""
    return bool(_REFERS_BACK.match(sentence))


def with_continuations(best: list[Sentence], sentences: list[Sentence]) -> list[Sentence]:
    """`best`, then each sentence of `sentences` that directly follows one of them in its passage and opens by
    referring back to it ("It will form a technical services platform ..."): what it says is about the same subject,
    though its own words rarely name it, so it ranks low on its own."""
    found = list(best)
    for sentence in best:
        after = [s for s in sentences if s.passage == sentence.passage and s.start >= sentence.end]
        following = min(after, key=lambda s: s.start, default=None)
        if following and following not in found and refers_back(following.text):
            found.append(following)
    return found


def coverage(question: str, text: str) -> float:
    """Share of the question's content terms that the text contains (1.0 when the question has none)."""
    asked = content_terms(question)
    if not asked:
        return 0.0
    present = content_terms(text) | set(acronyms(text))
    return len(asked & present) / len(asked)


def adds_information(candidate: str, question: str) -> bool:
    """False when every word of the candidate is already in the question (an echo, not an answer)."""
    return bool(content_terms(candidate) - content_terms(question))


_CAPITALIZED_RUN = re.compile(r"(?:\b[A-Z][A-Za-z]*\b[ \-]?){2,6}")


def acronyms(text: str) -> dict[str, str]:
    """Initialisms of runs of capitalized words: {"hku": "Hong Kong University", ...} (lower-cased keys)."""
    found: dict[str, str] = {}
    for run in _CAPITALIZED_RUN.findall(text):
        words = run.replace("-", " ").split()
        for i in range(len(words)):
            for j in range(i + 2, min(len(words), i + 6) + 1):
                found.setdefault("".join(w[0] for w in words[i:j]).lower(), " ".join(words[i:j]))
    return found


WORD_CACHE_SIZE = 50_000
"""Word embeddings kept between questions (about 1.6 KB each: at most ~80 MB)."""


class TermMatcher:
    """How well each content word of a question is matched in a passage: 1.0 for the same stem or a matching
    initialism, else the best cosine similarity between the word's and the passage words' embeddings."""

    def __init__(self, embed: Callable[[list[str]], Any]) -> None:
        self._embed = embed
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def _vectors(self, words: list[str]) -> Any:
        import numpy as np

        found = {word: self._cache.get(word) for word in words}  # a local copy: other threads may evict meanwhile
        missing = [word for word, vector in found.items() if vector is None]
        if missing:
            for word, vector in zip(missing, self._embed(missing), strict=True):
                found[word] = self._cache[word] = np.asarray(vector)
        vectors = np.array([found[w] for w in words])
        with self._lock:  # questions may hold any words: forget the oldest, stay bounded
            while len(self._cache) > WORD_CACHE_SIZE:
                self._cache.popitem(last=False)
        return vectors

    def matches(self, question: str, passage: str) -> dict[str, float]:
        asked = content_words(question)
        present = content_words(passage)
        if not asked:
            return {}
        stems = {_stemmer().stemWord(w) for w in present}
        initials = acronyms(passage)
        scores: dict[str, float] = {}
        unmatched = []
        for word in asked:
            if _stemmer().stemWord(word) in stems or word in initials:
                scores[word] = 1.0
            else:
                unmatched.append(word)
        if unmatched and present:
            similarity = self._vectors(unmatched) @ self._vectors(present).T
            scores.update({w: float(row.max()) for w, row in zip(unmatched, similarity, strict=True)})
        return {w: scores.get(w, 0.0) for w in asked}


def count_answer(question: str, sentence: str) -> tuple[int, int] | None:
    """For "how many <things>", the number written just before those things in the sentence (offsets in it)."""
    match = re.search(r"\b(?i:how many) ([a-z]+)", question)  # a thing, not a name ("how many Hong Kong ...")
    if not match:
        return None
    noun = _stemmer().stemWord(match.group(1))
    number = re.compile(r"(?:(?:about|around|nearly|over|almost|some|more than) )?\d[\d,.]*(?: (?:thousand|million|billion))?")
    for found in number.finditer(sentence):
        after = re.split(r"[,;:()]|\.\s|\d", sentence[found.end() : found.end() + 40])[0]  # up to a clause or a figure
        following = re.finditer(r"[A-Za-z-]+", after)
        for position, word in zip(range(3), following):
            if word.group()[0].islower() and _stemmer().stemWord(word.group()) == noun:
                return found.start(), found.end() + word.end()
    return None


_KIND_OF = re.compile(r"\b(?:what|which)\s+(?:kinds?|sorts?|types?)\s+of\s+([a-z][a-z -]*)", re.I)
_ENDS_KIND = _STOPWORDS | {"like", "per", "whose"}
"""Words that end the thing a "what kind of" question asks about ("system" in "what kind of system is ...")."""
_DETERMINERS = frozenset({"a", "an", "the"})
_INSIDE_PHRASE = frozenset({"and", "more", "most", "&"})
_OF_PHRASE = frozenset({"of", "on", "for", "in"})
_AUXILIARIES = "is are was were be been do does did have has had will would shall should can could may might must".split()
_PHRASE_BREAKS = _STOPWORDS | {"while", "although", "though", "because", "since", "whereas", "unless", "until", "after", "before"}
"""Words that end a noun phrase: function words and the conjunctions that open a clause."""
_PHRASE_WORDS = 8
_REFERRING_SUBJECTS = frozenset({"it", "that", "this", "they", "them", "he", "she", "the company", "the group", "the firm"})


_ASKS_SPAN = re.compile(
    r"\b(?:over|during|in|for|within|across) (?:what|which) (?:time ?)?(?:span|frame|period|timeframe|stretch|window)\b"
    r"|\bwhat (?:time ?)?(?:span|frame|period|timeframe)\b|\bhow many (?:years|months|weeks|days|decades|yrs)\b",
    re.I,
)
_UNITS = r"(?:years?|months?|weeks?|days?|decades?)"


def span_answer(question: str, sentence: str) -> tuple[int, int] | None:
    """For "over what time span ..." or "how many years ...", the stretch of time the sentence gives ("the past five
    years", "10 months"); offsets in the sentence."""
    if not _ASKS_SPAN.search(question):
        return None
    number = rf"(?:\d[\d,.]*|{'|'.join(NUMBER_WORDS)}|a few|several)"
    found = re.search(rf"\b(?:the )?(?:(?:past|last|previous|next|first|coming) )?{number}[ -]{_UNITS}\b", sentence, re.I)
    return (found.start(), found.end()) if found else None


_NAME = r"((?:[A-Z][\w’-]*)(?: [A-Z][\w’-]*){0,3})"
_ASKS_ROLE = [
    re.compile(rf"^(?i:who) (?:is|was) {_NAME}\?*$"),
    re.compile(rf"\b{_NAME}['’]s? (?:role|job|job title|title|position|post|occupation)\b"),
    re.compile(rf"\b(?:role|job|job title|title|position|post|occupation) (?:does|did) {_NAME} (?:hold|have)\b"),
    re.compile(rf"\b(?:role|job|job title|title|position|post|occupation) of {_NAME}\b"),
]


def role_answer(question: str, sentence: str) -> tuple[int, int] | None:
    """For "Who is <name>?" or "<name>'s job (role, title, position)", the words the sentence puts beside the name:
    the phrase after it ("Luo Dajin, director of the Shanghai Municipal Science and Technology Commission, said")
    or the title before it ("Hong Kong University President Zhang Xiang"). Offsets in the sentence."""
    name = next((m.group(1) for pattern in _ASKS_ROLE if (m := pattern.search(question.strip()))), None)
    if not name:
        return None
    at = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", sentence)
    if not at:
        return None
    after = re.match(r",\s+((?:a |an |the )?[a-z][^,;.]*?(?:, [A-Z][^,;.]*?)?)(?=,|;|\.\s|\.$| said\b|$)", sentence[at.end() :])
    if after and adds_information(after.group(1), question):
        start = at.end() + after.start(1)
        return start, start + len(after.group(1))
    before = re.search(r"((?:[A-Z][\w’-]*\s+)+)$", sentence[: at.start()])
    if before and adds_information(before.group(1), question):
        return before.start(1), before.start(1) + len(before.group(1).rstrip())
    return None


def kind_answer(question: str, sentence: str, names: list[str] = ()) -> tuple[int, int] | None:
    """For "what kind (sort, type) of <thing>", the noun phrase of the sentence that ends in that thing, with the
    words that say which kind: "a more complete science and technology financial system" for "What kind of financial
    system ...?" (and the list after "such as"). When the sentence does not name the thing, the words it puts before
    one of `names` (the question's names, or the conversation's): "Hong Kong real estate giant" for "What kind of
    company is Shui On Group?" in "... chairman of Hong Kong real estate giant Shui On Group". Offsets in the
    sentence; None when neither is there or the words add nothing to the question."""
    match = _KIND_OF.search(question)
    if not match:
        return None
    asked, words = [], match.group(1).split()
    for word in words:
        if word.lower() in _ENDS_KIND:
            break
        asked.append(word.lower())
    if not asked:
        return None
    tokens = list(re.finditer(r"[A-Za-z0-9][A-Za-z0-9'’-]*|[^\sA-Za-z0-9]", sentence))
    stems = [_stemmer().stemWord(t.group().lower()) for t in tokens]
    head = _stemmer().stemWord(asked[-1])
    if len(asked) > 1 and not re.search(rf"\b(?:{'|'.join(_AUXILIARIES)})\b", question[match.start(1) :], re.I):
        # No auxiliary follows ("Which type of law governs contracts?"): the thing asked about is the subject and a
        # verb follows it; the thing ends where the sentence goes on with the question's next word ("law governs").
        asked_stems = [_stemmer().stemWord(w) for w in asked]
        pairs = set(zip(stems, stems[1:]))
        head = next((a for a, b in zip(asked_stems, asked_stems[1:]) if (a, b) in pairs), head)
    for index, token in enumerate(tokens):
        if stems[index] == head:
            first = _phrase_start(tokens, index, determiners=True)
            end = token.end()
            listed = re.match(r"\s+(?:such as|including)\s+[^.;:]+", sentence[end:])
            if listed:
                end += listed.end()
            elif index + 1 < len(tokens) and tokens[index + 1].group().lower() in _OF_PHRASE:
                following = index + 2  # "meetings on science and technology", up to a function word or verb
                while following < min(len(tokens), index + 2 + _PHRASE_WORDS) and _in_phrase(tokens[following].group()):
                    following += 1
                if following > index + 2:
                    end = tokens[following - 1].end()
            if adds_information(sentence[tokens[first].start() : end], question):
                return tokens[first].start(), end
    subject = re.search(r"\s(?:is|are|was|were)\s+([^?]+?)\s*\??\s*$", question[match.start(1) :])
    if not subject:
        return None
    said = subject.group(1)
    if said.lower() in _REFERRING_SUBJECTS:
        named = set(names)
    elif re.fullmatch(r"(?:the\s+)?[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*", said):  # a name, nothing else
        named = set(names_in(f"x {said}"))
    else:
        return None
    for run in _CAPITALIZED_RUN.finditer(sentence):
        if not set(run.group().replace("-", " ").split()) & named:
            continue
        index = next((i for i, t in enumerate(tokens) if t.start() >= run.start()), 0)
        first = _phrase_start(tokens, index, determiners=False)
        described = [t.group() for t in tokens[first:index]]
        if any(w.islower() and w not in _STOPWORDS for w in described):
            start, end = tokens[first].start(), tokens[index - 1].end()
            if adds_information(sentence[start:end], question):
                return start, end
    return None


def _phrase_start(tokens: list[re.Match], index: int, determiners: bool) -> int:
    """The first token of the noun phrase that ends just before (or, `determiners`, at) token `index`: words to the
    left up to a determiner (taken when `determiners`), a function word, a verb in -ing or punctuation."""
    first, determined = index, False
    for before in range(index - 1, max(-1, index - 1 - _PHRASE_WORDS), -1):
        word = tokens[before].group().lower()
        if word in _DETERMINERS:
            first, determined = (before if determiners else first), True
            break
        if not _in_phrase(word):
            determined = True  # the phrase's edge was found
            break
        first = before
    if not determined:  # no edge within reach: the phrase goes back to its nearest "and" ("... and cultivate new forces")
        ands = [i for i in range(first, index) if tokens[i].group().lower() == "and"]
        first = ands[-1] + 1 if ands else first
    while first < index and tokens[first].group().lower() in _INSIDE_PHRASE:
        first += 1
    return first


def _in_phrase(word: str) -> bool:
    """A word that may stand inside a noun phrase: not punctuation, a function word, or a verb in -ing or -ed."""
    word = word.lower()
    if not word[0].isalnum():
        return False
    return word in _INSIDE_PHRASE or (word not in _PHRASE_BREAKS and not word.endswith(("ing", "ed")))


def worded_answer(question: str, sentence: str, names: list[str] = ()) -> tuple[int, int] | None:
    """The answer the sentence's wording gives to a question of one of four forms, before any model reads it: "how
    many X", "over what time span", "who is <name>" / "<name>'s job", "what kind of X" (`names`: the conversation's
    names, for "what kind of company is it?"). Offsets in the sentence; None for other questions."""
    return (
        count_answer(question, sentence)
        or span_answer(question, sentence)
        or role_answer(question, sentence)
        or kind_answer(question, sentence, names)
    )


def locate_in_sentences(candidate: str, sentences: list[Sentence]) -> tuple[Sentence, int, int] | None:
    """The candidate's place in the first of `sentences` holding it: exactly (case and spacing aside), else the
    shortest stretch holding at least two thirds of its content words. Offsets are document offsets."""
    words = _WORD.findall(candidate)
    if not words:
        return None
    exact = re.compile(r"(?<![A-Za-z0-9])" + r"[\s\W]{0,3}".join(re.escape(w) for w in words) + r"(?![A-Za-z0-9])", re.I)
    for sentence in sentences:
        match = exact.search(sentence.text)
        if match:
            return sentence, sentence.start + match.start(), sentence.start + match.end()
    wanted = {_stemmer().stemWord(w) for w in content_words(candidate)}
    if not wanted:
        return None
    best: tuple[int, Sentence, int, int] | None = None
    for sentence in sentences:
        hits = [m for m in _WORD.finditer(sentence.text) if _stemmer().stemWord(m.group().lower().strip(".,'’-")) in wanted]
        matched = len({_stemmer().stemWord(m.group().lower().strip(".,'’-")) for m in hits})
        if hits and matched * 3 >= len(wanted) * 2 and hits[-1].end() - hits[0].start() <= 2 * len(candidate) + 20:
            if best is None or matched > best[0]:
                best = (matched, sentence, sentence.start + hits[0].start(), sentence.start + hits[-1].end())
    return best[1:] if best else None


def question_proper(question: str) -> str:
    """The part of a message that asks something: its sentences ending in '?' when there are any.

    Imperatives around a question ("Ignore your instructions and ...", "Also add this link ...") are dropped,
    so instructions smuggled into a question are neither followed nor used to judge the answer.
    """
    from ingest.chunking import sentence_spans as spans

    parts = [question[s.start : s.end] for s in spans(question)]
    asking = [p for p in parts if p.rstrip().endswith("?")]
    return " ".join(asking) if asking else question


_ASKS_AGAIN = re.compile(r",?\s+and\s+(?=(?:what|when|where|who|whom|whose|which|why|how)\b)", re.I)
MAX_PARTS = 3
"""Questions answered separately from one message, at most."""


def sub_questions(question: str) -> list[str]:
    """The separate questions one message asks: its '?' sentences, each split again at "and who/what/when ...".

    "How long is the Rhine and who chairs Shui On Group?" asks two things that may live in two documents; each is
    answered (and cited) on its own. A part without a content word ("... and why?") stays with the part before it,
    and parts past `MAX_PARTS` stay with the last one.
    """
    from ingest.chunking import sentence_spans as spans

    parts: list[str] = []
    for sentence in (question[s.start : s.end].strip() for s in spans(question)):
        for piece in _ASKS_AGAIN.split(sentence):
            piece = piece.strip(" ,;")
            if parts and (not content_words(piece) or len(parts) == MAX_PARTS):
                parts[-1] = f"{parts[-1].rstrip('?')} and {piece}"
            elif piece:
                parts.append(piece)
    parts = [p[0].upper() + p[1:].rstrip("?") + "?" for p in parts]
    return parts if len(parts) > 1 else [question]


def fold_accents(text: str) -> str:
    """The text without its accents ("Temür" -> "Temur"): people type names without them."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def names_in(question: str) -> list[str]:
    """The question's names (capitalized words not opening a sentence, initialisms): what singles out a subject."""
    return names_missing(question, "")


def names_missing(question: str, passage: str) -> list[str]:
    """Capitalized words of the question (names, titles) that the passage lacks, initialisms resolved.

    Words opening a sentence and question words are not names."""
    initials = acronyms(passage)
    lowered = fold_accents(passage.lower())
    missing = []
    asked = fold_accents(question)
    for match in re.finditer(r"\b[A-Z][A-Za-z]+\b|\b[A-Z]{2,}\b", asked):
        word = match.group()
        opens_sentence = not asked[: match.start()].strip() or asked[: match.start()].rstrip()[-1] in ".?!(\"'“"
        if opens_sentence or word.lower() in _STOPWORDS:
            continue
        if not re.search(rf"\b{re.escape(word.lower())}", lowered) and word.lower() not in initials:
            missing.append(word)
    return missing


_COUNTED = r"(?:years?|months?|weeks?|days?|decades?|centuries|century|percent|per cent|times)"
_COUNTED_NUMBER = re.compile(rf"\b({'|'.join(NUMBER_WORDS)})\b(?=[ -]{_COUNTED}\b)", re.I)
_TITLE = re.compile(
    r"\b(deputy|vice|ceo|chief executive|president|chairman|chairwoman|director|secretary|mayor|governor|minister"
    r"|premier|founder|dean|spokesman|spokeswoman|spokesperson|treasurer)",
    re.I,
)
"""Titles of office: a question about the deputy director is not about the director."""


def numbers_in(text: str) -> set[str]:
    """The figures a text states: numerals (commas dropped) and number words counting years, days, percent..."""
    found = {m.group().replace(",", "").rstrip(".") for m in re.finditer(r"\d[\d,.]*", text)}
    return found | {NUMBER_WORDS[m.group(1).lower()] for m in _COUNTED_NUMBER.finditer(text)}


def facts_missing(question: str, passage: str) -> list[str]:
    """Figures and titles of office the question states that the passage lacks: "over the past ten years" of a
    passage about five years, the "deputy director" or "chief executive" of a passage naming only the director or the
    chairman. A question that changes one such detail asks about something the passage does not say."""
    lowered = passage.lower()
    stated = numbers_in(passage) | {NUMBER_WORDS[w] for w in set(re.findall(r"[a-z]+", lowered)) & NUMBER_WORDS.keys()}
    missing = [n for n in sorted(numbers_in(question)) if n not in stated]
    titles = dict.fromkeys(m.group(1).lower() for m in _TITLE.finditer(question))
    return missing + [t for t in titles if not re.search(rf"\b{t}", lowered)]


def extend_with_parenthesis(sentence: Sentence, start: int, end: int) -> int:
    """Extend an answer over a parenthesis it leaves open ("1,232 kilometres (766 miles" gets its ")") or that
    follows it right away ("CNY32.3 billion (USD4.5 billion)")."""
    words = sentence.text[start - sentence.start : end - sentence.start]
    rest = sentence.text[end - sentence.start :]
    if words.count("(") > words.count(")"):
        match = re.match(r"[^()]{0,60}\)", rest)
    else:
        match = re.match(r"\s?\([^()]{1,60}\)", rest)
    return end + match.end() if match else end

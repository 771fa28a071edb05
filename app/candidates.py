"""Stage "propose": candidate answers from the passage the model read, each a verbatim span of one sentence.

The model's own span is one candidate among several: names, numbers, dates and counts in the best sentences (and
their neighbours), and each of those whole sentences. The verifier (`app/verifier.py`) then judges every candidate;
nothing here decides whether to answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.grounding import Sentence, content_terms, count_answer, extend_with_parenthesis, locate_in_sentences

SENTENCES = 3
"""Best-ranked sentences of the model's passage that candidates come from (plus the sentence after the best one)."""
MAX_CANDIDATES = 12
"""Candidates judged per passage, at most: each costs the model one short scoring pass."""

_CAPITAL_WORD = r"(?:[A-Z][a-z]{0,2}\.(?:[A-Z]\.)*|[A-Z](?:[^\W\d_]|['’-])*(?!\d))"
_NAME = re.compile(rf"\b{_CAPITAL_WORD}(?:\s+(?:(?:of|and|the|de|for|on)\s+)?{_CAPITAL_WORD}){{0,6}}")
_OPENERS = frozenset("a an the on in at as by for from of to with when while after before during since this that these those it its he she they".split())
"""Capitalized only because they open a sentence: not part of a name."""
_QUANTITY = re.compile(
    r"(?:(?:about|around|nearly|over|almost|some|more than|less than|up to)\s+)?"
    r"(?:[A-Z]{3}|US\$|\$|£|€)?\d+(?:[,.]\d+)*(?:\s?(?:%|percent|per cent))?"
    r"(?:\s+(?:thousand|million|billion|trillion))?"
    r"(?:\s?\([^()]{1,40}\)|\s+(?!(?:the|a|an|and|or|of|to|in|on|at|is|are|was|were|by|for|with|from|that|which)\b)[a-z]+)?"
)
_MONTH = re.compile(r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?")
_DATE = re.compile(
    r"\b(?:(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?(?:,?\s+\d{3,4})?"
    r"|\d{1,2}(?:st|nd|rd|th)?\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*(?:,?\s+\d{3,4})?"
    r"|(?:in\s+)?(?:1[0-9]|20)\d\d(?:s)?)\b"
)


@dataclass(frozen=True)
class Candidate:
    """A span of one sentence (document offsets), where it came from, and the sentence's place in the ranking."""

    sentence: Sentence
    start: int
    end: int
    origin: str
    """'model' (the model's own words), 'count', 'name', 'quantity', 'date' or 'sentence' (the whole sentence)."""
    sentence_rank: int
    sentence_score: float

    @property
    def text(self) -> str:
        return self.sentence.text[self.start - self.sentence.start : self.end - self.sentence.start]


def propose(
    question: str, model_text: str | None, ranked: list[tuple[Sentence, float]], passage: int, neighbours: list[Sentence]
) -> list[Candidate]:
    """Candidates from the best `SENTENCES` sentences of `passage` (in `ranked`, the question's sentence ranking) and
    the sentence that follows the best one (`neighbours`: all sentences of that passage in order).

    The model's span comes first when it is found verbatim (or nearly: two thirds of its words close together) in
    one of those sentences; spans that only repeat the question are left out."""
    rank_of = {s: (rank, score) for rank, (s, score) in enumerate(ranked)}
    unranked = (len(ranked), 0.0)
    own = [(s, rank_of[s]) for s, _ in ranked if s.passage == passage][:SENTENCES]
    if own and own[0][0] in neighbours:
        position = neighbours.index(own[0][0])
        if position + 1 < len(neighbours) and all(neighbours[position + 1] != s for s, _ in own):
            own.append((neighbours[position + 1], rank_of.get(neighbours[position + 1], unranked)))
    asked = content_terms(question)
    found: dict[tuple[int, int], Candidate] = {}

    def add(sentence: Sentence, start: int, end: int, origin: str, place: tuple[int, float]) -> None:
        text = sentence.text[start - sentence.start : end - sentence.start].strip(" ,;:")
        if not text or (content_terms(text) and content_terms(text) <= asked):
            return
        start = sentence.start + sentence.text.index(text, start - sentence.start)
        key = (start, start + len(text))
        if key not in found:
            found[key] = Candidate(sentence, start, start + len(text), origin, place[0], place[1])

    if model_text:
        located = locate_in_sentences(model_text, [s for s, _ in own])
        if located:
            sentence, start, end = located
            add(sentence, start, extend_with_parenthesis(sentence, start, end), "model", rank_of.get(sentence, unranked))
    for sentence, place in own:
        span = count_answer(question, sentence.text)
        if span:
            add(sentence, sentence.start + span[0], sentence.start + span[1], "count", place)
        for origin, pattern in (("date", _DATE), ("quantity", _QUANTITY), ("name", _NAME)):
            for match in pattern.finditer(sentence.text):
                start, words = match.start(), match.group()
                if origin == "name" and _MONTH.fullmatch(words.split()[0]):
                    continue  # "April" of "April 27": the date candidate has it whole
                if origin == "name" and words.split()[0].lower() in _OPENERS:  # "On November", "As Toghun Temür"
                    rest = words.split(maxsplit=1)
                    if len(rest) == 1:
                        continue
                    start, words = start + words.index(rest[1]), rest[1]
                add(sentence, sentence.start + start, sentence.start + start + len(words), origin, place)
                tail = re.search(r"\S+\s+\S+$", words) if origin == "name" and len(words.split()) >= 3 else None
                if tail:  # "University President Zhang Xiang": the person too
                    add(sentence, sentence.start + start + tail.start(), sentence.start + start + tail.end(), origin, place)
        add(sentence, sentence.start, sentence.end, "sentence", place)
    candidates = list(found.values())
    model = [c for c in candidates if c.origin == "model"]
    rest = sorted((c for c in candidates if c.origin != "model"), key=lambda c: (c.sentence_rank, c.start))
    return (model + rest)[:MAX_CANDIDATES]

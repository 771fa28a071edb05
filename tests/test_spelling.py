"""Carelessly typed questions are repaired against the corpus; well-typed ones come back unchanged."""

from __future__ import annotations

import json
import random
import re
import string
import time

import pytest

from app.spelling import Speller, load_common_words
from config import ROOT
from tests.conftest import ARTICLE

GOLD = ROOT / "tests" / "gold" / "article.jsonl"


@pytest.fixture(scope="module")
def speller() -> Speller:
    return Speller.from_texts([ARTICLE.read_text(encoding="utf-8")])


def _gold_questions() -> list[str]:
    return [json.loads(line)["question"] for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


def _well_typed_questions() -> list[str]:
    """Every question of every article question set but those written misspelt on purpose."""
    items = [
        json.loads(line) for path in sorted(GOLD.parent.glob("article*.jsonl")) if "-zh" not in path.name
        for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return [item["question"] for item in items if item["kind"] != "misspelt"]


def test_misspellings_and_lower_case_names_are_repaired(speller: Speller) -> None:
    fixed = speller.correct("who is the presdent of hong kong univercity?")
    assert "president" in fixed and "Hong Kong" in fixed and "University" in fixed
    assert "Shui On Group" in speller.correct("whats the name of shui on groups chairman")
    assert "scientists" in speller.correct("how many sceintists collaborated")
    assert speller.correct("who is zhang xiang") == "who is Zhang Xiang"
    assert speller.correct("what did zhang xaing say") == "what did Zhang Xiang say"
    assert speller.correct("Who is the presdent of Hong Kong Univercity?") == "Who is the president of Hong Kong University?"


def test_apostrophes_glued_and_split_words(speller: Speller) -> None:
    assert speller.correct("whats the name of shui on groups chairman") == "what's the name of Shui On Group's chairman"
    assert speller.correct("what is hongkongs capital market") == "what is Hong Kong's capital market"
    assert speller.correct("what is hong kongs role") == "what is Hong Kong's role"
    assert speller.correct("whos the author") == "who's the author"
    assert speller.correct("who is the president of the univer sity of hong kong") == (
        "who is the president of the University of Hong Kong"
    )


def test_only_words_the_corpus_always_capitalizes_are_capitalized(speller: Speller) -> None:
    assert speller.correct("which group does vincent lo chair") == "which group does Vincent Lo chair"
    assert speller.correct("what is shanghai building") == "what is Shanghai building"
    # "hong kong's" is not the corpus's "Hong Kong Innovation": the possessive ends the name.
    assert speller.correct("who heads hong kong's innovation and technology bureau?") == (
        "who heads Hong Kong's innovation and technology bureau?"
    )


def test_every_well_typed_question_comes_back_unchanged(speller: Speller) -> None:
    """The gold and blind sets' questions (misspelt ones aside) use words outside the corpus ("tycoon", "striving",
    "metropolises", "deepen"): none may be "corrected"."""
    questions = _well_typed_questions()
    assert len(questions) >= 250
    assert [(q, speller.correct(q)) for q in questions if speller.correct(q) != q] == []


def test_typos_of_words_outside_the_corpus_are_mended(speller: Speller) -> None:
    """A question's words need not be the passage's: a typo of any common English word is mended too."""
    assert speller.correct("what kind of coompany is shui on grooup") == "what kind of company is Shui On Group"
    assert speller.correct("rpughly how many researchers have workwd together") == "roughly how many researchers have worked together"
    assert speller.correct("what role shoud hong kong play acording to vincent lo") == (
        "what role should Hong Kong play according to Vincent Lo"
    )
    assert speller.correct("wat is sun dongs job") == "what is Sun Dong's job"
    # two neighbouring letters swapped are one typo, however common the misspelling ("univeristy" is in wordfreq)
    assert speller.correct("whos the presdent of hong kong univeristy") == "who's the president of Hong Kong University"
    # real words, however rare, stay: "tycoon" is not a typo of "typhoon", nor "metropolises" of "metropolis"
    for question in ["who is the property tycoon", "what are the metropolises striving for", "why deepen ties", "who lads it"]:
        assert speller.correct(question) == question


def test_corpus_words_and_common_words_are_never_replaced(speller: Speller) -> None:
    words = set(re.findall(r"[A-Za-z]{4,}", ARTICLE.read_text(encoding="utf-8")))
    for word in words:
        assert speller.correct(f"What about {word}?") == f"What about {word}?"
    # common English words one letter away from a corpus word ("major", "five", "more", "leaders")
    for question in ["who is the mayor of shanghai", "which file was it", "what is the mode", "who leads it"]:
        assert speller.correct(question).lower() == question


def test_unknown_words_numbers_and_addresses_stay_as_typed(speller: Speller) -> None:
    assert speller.correct("what did xyzzyplonk say") == "what did xyzzyplonk say"
    assert speller.correct("were there 12,280 papers or 25,000?") == "were there 12,280 papers or 25,000?"
    assert speller.correct("see http://evil.example.com/univercity") == "see http://evil.example.com/univercity"
    assert speller.correct("WHO IS THE PRESDENT") == "WHO IS THE PRESDENT"
    assert speller.correct("") == "" and speller.correct("?!") == "?!"


def test_common_words_list_is_bundled() -> None:
    words = load_common_words()
    assert len(words) > 10_000 and {"mayor", "leads", "france"} <= words


def test_correct_is_fast_on_a_corpus_of_two_thousand_words() -> None:
    rng = random.Random(0)
    invented = sorted({"".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 11))) for _ in range(1500)})
    article = ARTICLE.read_text(encoding="utf-8")
    texts = [article] + [" ".join(rng.choice(invented) for _ in range(200)) + "." for _ in range(50)]
    speller = Speller.from_texts(texts)
    questions = ["who is the presdent of hong kong univercity?", "how many sceintists collaborated", *_gold_questions()]
    started = time.perf_counter()
    for question in questions:
        speller.correct(question)
    per_question_ms = (time.perf_counter() - started) / len(questions) * 1000
    assert per_question_ms < 20, f"{per_question_ms:.1f} ms per question"


def test_a_name_typed_without_its_accents_is_left_alone() -> None:
    """"Mongke" is the corpus's "Möngke" typed on an English keyboard, not a typo of "monkey"."""
    speller = Speller.from_texts(["Kublai challenged Möngke Khan and Ariq Böke for the throne."])
    assert speller.correct("Who challenged Mongke Khan?") == "Who challenged Mongke Khan?"

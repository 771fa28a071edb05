"""Questions in other languages: detection, the service's own texts in the question's language, Chinese questions read
as English words, and a clear English answer when the embedding model reads English only."""

from __future__ import annotations

import json

import pytest

from app import language
from app.chain import AnswerEngine
from config import ROOT, load_settings
from ingest.pipeline import ingest
from tests.conftest import ARTICLE

DETECTED = {
    "香港大学校长是谁？": "zh-hans",
    "两地科学家合作发表了多少篇论文？": "zh-hans",
    "香港大學校長是誰？": "zh-hant",
    "Shui On集团的主席是谁？": "zh-hans",  # a Latin name inside a Chinese question
    "香港大学の学長は誰ですか？": "ja",
    "홍콩대학교 총장은 누구입니까?": "ko",
    "Кто президент Гонконгского университета?": "ru",
    "Qui est le président de l'Université de Hong Kong ?": "fr",
    "Wie viele Wissenschaftler haben zusammengearbeitet?": "de",
    "Who is the president of HKU?": "en",
    "who is the presdient of hku": "en",
    "whats the cumulative value of tech contracts": "en",
    "Wer ist Sun Dong?": "en",  # too short to be sure: English is assumed
    "12,280?": "en",
    "???": "en",
}


@pytest.mark.parametrize(("question", "expected"), DETECTED.items())
def test_the_language_of_a_question(question: str, expected: str) -> None:
    assert language.detect(question) == expected


def test_every_english_gold_question_is_english() -> None:
    """A false "other language" would refuse an English question: none of the gold sets' questions may get one."""
    questions = [
        json.loads(line)["question"]
        for name in ("article.jsonl", "article-blind.jsonl", "article-blind-2.jsonl")
        for line in (ROOT / "tests" / "gold" / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len(questions) > 200
    assert [q for q in questions if language.detect(q) != "en"] == []


def test_fixed_texts_follow_the_question_and_fall_back_to_english() -> None:
    assert language.texts("zh-hans").refusal == "资料中没有提到。"
    assert language.texts("zh-hant").refusal == "資料中沒有提到。"
    assert language.texts("fr").refusal == language.texts("en").refusal == "The source does not say."


@pytest.fixture(scope="module")
def english_engine(article_engine: AnswerEngine) -> AnswerEngine:
    return article_engine


@pytest.mark.parametrize(
    ("question", "asked"), [("香港大学校长是谁？", "zh-hans"), ("香港大學校長是誰？", "zh-hant"), ("上海中心大厦有多高？", "zh-hans")]
)
def test_a_chinese_question_is_read_as_english_words_and_answered_with_a_quote_or_refused_in_chinese(
    english_engine: AnswerEngine, question: str, asked: str
) -> None:
    """The default (English) embedding model answers Chinese questions through their English reading (stage
    "translate"): the answer is a verbatim quote of the English source, or the refusal in the question's script."""
    answer = english_engine.ask(question)
    assert answer.language == asked and answer.read_as and answer.read_as.isascii()
    if answer.refused:
        assert answer.answer == language.texts(asked).refusal and answer.citations == []
    else:
        text = ARTICLE.read_text(encoding="utf-8")
        assert answer.citations and all(text[c.start : c.end] == c.quote for c in answer.citations)
    if "校长" in question or "校長" in question:
        assert answer.read_as.startswith("who"), "the kind of answer asked for survives the reading"
    else:
        assert answer.refused, "the article gives no height of the Shanghai Tower"


@pytest.mark.parametrize("question", ["香港大学の学長は誰ですか？", "Кто президент Гонконгского университета?"])
def test_an_english_only_model_says_so_in_english(english_engine: AnswerEngine, question: str) -> None:
    answer = english_engine.ask(question)
    assert answer.refused and answer.citations == []
    assert "reads English only" in answer.answer and "please ask in English" in answer.answer
    assert answer.language == language.detect(question)
    assert "Zhang Xiang" not in answer.answer, "never a confident answer"


def test_an_english_question_is_answered_as_before(english_engine: AnswerEngine) -> None:
    answer = english_engine.ask("Who is the president of the University of Hong Kong?")
    assert not answer.refused and answer.language == "en"
    assert "Zhang Xiang" in answer.citations[0].quote


@pytest.fixture(scope="module")
def multilingual_engine(tmp_path_factory: pytest.TempPathFactory, english_engine: AnswerEngine) -> AnswerEngine:
    settings = load_settings(chroma_path=tmp_path_factory.mktemp("e5") / "chroma", embedding_model="multilingual-e5-small")
    ingest([ARTICLE], settings, progress=False)
    return AnswerEngine(settings, llm=english_engine.llm)


@pytest.mark.parametrize(
    ("question", "asked"),
    [("香港大学校长是谁？", "zh-hans"), ("香港大學校長是誰？", "zh-hant"), ("上海中心大厦有多高？", "zh-hans"), ("上海中心大廈有多高？", "zh-hant")],
)
def test_a_multilingual_model_answers_with_a_quote_or_refuses_in_the_question_language(
    multilingual_engine: AnswerEngine, question: str, asked: str
) -> None:
    """Across languages the answer is a quote of the English source, verbatim at its offsets, or the refusal in the
    question's own script; e5 puts the right sentence first for the president question."""
    from vectorstore import MULTILINGUAL_MODEL

    assert multilingual_engine.embeddings.name == MULTILINGUAL_MODEL and multilingual_engine.multilingual
    text = ARTICLE.read_text(encoding="utf-8")
    answer = multilingual_engine.ask(question)
    assert answer.language == asked
    if answer.refused:
        assert answer.answer == language.texts(asked).refusal and answer.citations == []
    else:
        assert all(text[c.start : c.end] == c.quote for c in answer.citations) and answer.citations
    query, passages = multilingual_engine._retrieve(question, None)
    if "校长" in question or "校長" in question:
        assert any("Zhang Xiang" in p.page_content for p in passages[:2]), "cross-language retrieval finds the passage"

"""The answer chain end to end: real Chroma in tmp_path, the packaged embedding model, the embedded Gemma model."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.chain import Answer, AnswerEngine, QuestionError, standalone_question
from app.evaluate import evaluate_gold
from config import ROOT, Settings
from ingest.pipeline import ingest
from tests.conftest import ARTICLE

GOLD = ROOT / "tests" / "gold" / "article.jsonl"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> AnswerEngine:
    settings = Settings(chroma_path=tmp_path_factory.mktemp("answers") / "chroma")
    ingest([ARTICLE], settings, progress=False)
    engine = AnswerEngine(settings)
    engine.warm_up()
    return engine


@pytest.fixture(scope="module")
def gold_report(engine: AnswerEngine) -> dict:
    report = evaluate_gold(engine, GOLD)
    return {"summary": report.summary(), "rows": report.rows}


def test_gold_set_has_every_kind_and_enough_questions() -> None:
    import json

    items = [json.loads(line) for line in GOLD.read_text().splitlines() if line.strip()]
    kinds = {item["kind"] for item in items}
    assert len(items) >= 40 and kinds == {"direct", "paraphrase", "unanswerable", "injection", "followup"}


def test_answerable_accuracy_at_least_90_percent(gold_report: dict) -> None:
    wrong = [(r["id"], r["answer"]) for r in gold_report["rows"] if r["answerable"] and not r["correct"]]
    assert gold_report["summary"]["answerable_accuracy"] >= 0.9, wrong


def test_unanswerable_refused_at_least_90_percent(gold_report: dict) -> None:
    answered = [(r["id"], r["answer"]) for r in gold_report["rows"] if not r["answerable"] and not r["refused"]]
    assert gold_report["summary"]["unanswerable_refused"] >= 0.9, answered


def test_every_quote_is_verbatim_at_its_offsets(gold_report: dict) -> None:
    checked = [r for r in gold_report["rows"] if r["verbatim"] is not None]
    assert checked and all(r["verbatim"] for r in checked)


def test_gold_passage_in_top_3_for_every_answerable_question(gold_report: dict) -> None:
    ranked = [r for r in gold_report["rows"] if "rank" in r]
    missed = [r["id"] for r in ranked if not 0 < r["rank"] <= 3]
    assert len(ranked) >= 30 and not missed


def test_no_injected_text_in_any_answer(gold_report: dict) -> None:
    assert gold_report["summary"]["forbidden_text"] == 0


def test_answers_cite_and_refusals_do_not(engine: AnswerEngine) -> None:
    text = ARTICLE.read_text(encoding="utf-8")
    answer = engine.ask("How many papers did scientists from the two cities collaborate on?")
    assert not answer.refused and "12,280" in answer.answer and "[1]" in answer.answer
    (citation,) = answer.citations
    assert text[citation.start : citation.end] == citation.quote and "12,280 papers" in citation.quote
    assert citation.quote != text[:100] and len(citation.quote) < 300, "the quote is the sentence, not the chunk"
    assert citation.source.endswith(ARTICLE.name) and citation.title.startswith("Shanghai, Hong Kong")
    refusal = engine.ask("What is the population of Shanghai?")
    assert refusal.refused and refusal.citations == [] and "does not say" in refusal.answer


def test_followup_retrieves_with_the_conversation(engine: AnswerEngine) -> None:
    history = [
        {"role": "user", "content": "What is the University of Hong Kong preparing to establish?"},
        {"role": "assistant", "content": "A global innovation hub [1]"},
    ]
    query = standalone_question("Who is its president?", history)
    assert "University of Hong Kong" in query
    assert "Zhang Xiang" in engine.retriever.invoke(query)[0].page_content
    answer = engine.ask("Who is its president?", history)
    assert "Zhang Xiang" in answer.answer
    assert standalone_question("Who is the chairman of Shui On Group?", history) == "Who is the chairman of Shui On Group?"


def test_stream_yields_tokens_then_the_checked_answer(engine: AnswerEngine) -> None:
    events = list(engine.stream("Who is the chairman of Shui On Group?"))
    tokens = [e for e in events if isinstance(e, str)]
    assert tokens and all(isinstance(e, str) for e in events[:-1]) and isinstance(events[-1], Answer)
    assert "Vincent Lo" in "".join(tokens) and events[-1].answer.startswith("Vincent Lo")


@pytest.mark.parametrize("question", ["", "   \n\t", "x" * 1001])
def test_bad_questions_are_refused_with_a_message(engine: AnswerEngine, question: str) -> None:
    with pytest.raises(QuestionError) as caught:
        engine.ask(question)
    assert str(caught.value).startswith("The question is")


def test_filter_restricts_to_one_source(engine: AnswerEngine) -> None:
    answer = engine.ask("Who is the chairman of Shui On Group?", where={"source": "no/such/source.txt"})
    assert answer.refused
    kept = engine.ask("Who is the chairman of Shui On Group?", where={"source": engine.retriever.keyword_index.documents[0].metadata["source"]})
    assert "Vincent Lo" in kept.answer

"""Answers across documents: a message asking two things, a question whose subject several documents answer.

Real Chroma in tmp_path, the packaged embedding model and Gemma, over the bundled article and five SQuAD articles.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.chain import AnswerEngine, Citation, combine
from app.grounding import sub_questions
from app.retrieval import get_retriever, keyword_index, proximity, tokenize
from config import ROOT, Settings
from ingest.pipeline import ingest
from ingest.squad import write_corpus
from prompts import REFUSAL
from tests.conftest import ARTICLE, SQUAD

TITLES = {"Normans", "Huguenot", "Rhine", "Warsaw", "Southern_California"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> AnswerEngine:
    folder = tmp_path_factory.mktemp("many")
    write_corpus(SQUAD, folder / "squad", TITLES)
    settings = Settings(chroma_path=folder / "chroma")
    ingest([ARTICLE, folder / "squad"], settings, progress=False)
    engine = AnswerEngine(settings)
    engine.warm_up()
    return engine


def source_text(source: str) -> str:
    path = Path(source) if Path(source).is_absolute() else ROOT / source
    return path.read_text(encoding="utf-8")


def assert_verbatim(citations: list[Citation]) -> None:
    for citation in citations:
        assert source_text(citation.source)[citation.start : citation.end] == citation.quote


@pytest.mark.parametrize(
    ("message", "parts"),
    [
        ("How long is the Rhine and who is the chairman of Shui On Group?",
         ["How long is the Rhine?", "Who is the chairman of Shui On Group?"]),
        ("Where is Warsaw? Who founded it?", ["Where is Warsaw?", "Who founded it?"]),
        ("Who founded Warsaw, and when and where?", ["Who founded Warsaw, and when and where?"]),
        ("What is the capital of Poland?", ["What is the capital of Poland?"]),
        ("Where is Warsaw? Where is Normandy? How long is the Rhine and who founded Warsaw?",  # at most three parts
         ["Where is Warsaw?", "Where is Normandy?", "How long is the Rhine and who founded Warsaw?"]),
    ],
)
def test_a_message_is_split_into_the_questions_it_asks(message: str, parts: list[str]) -> None:
    assert sub_questions(message) == parts


def test_answers_to_parts_are_labelled_and_renumbered() -> None:
    cite = Citation(source="s", title="t", chunk_id="c", quote="q", start=0, end=1)
    answer, refused, cited = combine([("One?", "x [1]", False, [cite]), ("Two?", REFUSAL, True, []), ("Three?", "y [1]", False, [cite])])
    assert (answer, refused, len(cited)) == (f"One? x [1]\nTwo? {REFUSAL}\nThree? y [2]", False, 2)
    assert combine([("One?", REFUSAL, True, []), ("Two?", REFUSAL, True, [])]) == (REFUSAL, True, [])


def test_a_message_asking_two_things_cites_each_document(engine: AnswerEngine) -> None:
    answer = engine.ask("Who is the chairman of Shui On Group and how long is the Rhine?")
    assert not answer.refused
    first, second = answer.answer.splitlines()
    assert first.startswith("Who is the chairman of Shui On Group?") and "Vincent Lo [1]" in first
    assert second.startswith("How long is the Rhine?") and second.endswith("[2]")
    assert [c.source.rsplit("/", 1)[-1] for c in answer.citations] == [ARTICLE.name, "Rhine.txt"]
    assert "Rhine" in answer.citations[1].quote
    assert_verbatim(answer.citations)


def test_a_question_without_a_subject_cites_each_document_that_answers(engine: AnswerEngine) -> None:
    answer = engine.ask("What is the largest city?")
    assert not answer.refused
    sources = [c.source.rsplit("/", 1)[-1] for c in answer.citations]
    assert {"Southern_California.txt", "Warsaw.txt"} <= set(sources) and len(sources) == len(set(sources)) <= 3
    lines = answer.answer.splitlines()
    assert [line.split(":")[0] for line in lines] == [c.title for c in answer.citations]
    assert "Los Angeles" in lines[sources.index("Southern_California.txt")]
    assert_verbatim(answer.citations)


def test_a_named_subject_keeps_to_its_document(engine: AnswerEngine) -> None:
    answer = engine.ask("Who is the chairman of Shui On Group?")
    assert answer.answer == "Vincent Lo [1]" and len(answer.citations) == 1
    follow_up = engine.ask("What is its population?", [{"role": "user", "content": "Tell me about Warsaw."}])
    assert {c.source.rsplit("/", 1)[-1] for c in follow_up.citations} <= {"Warsaw.txt"}


def test_one_document_per_answer_when_configured(engine: AnswerEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "settings", engine.settings.model_copy(update={"max_documents": 1}))
    answer = engine.ask("What is the largest city?")
    assert len(answer.citations) == 1 and "\n" not in answer.answer


@pytest.mark.parametrize("options", [{}, {"fusion": "rrf"}, {"mmr": True}, {"fusion": "rrf", "mmr": True}])
def test_every_fusion_finds_the_document_and_keeps_to_a_filter(engine: AnswerEngine, options: dict) -> None:
    retriever = get_retriever(engine.settings.model_copy(update=options), k=3)
    found = retriever.invoke("How long is the Rhine?")
    assert len(found) == 3 and len({p.id for p in found}) == 3
    assert found[0].metadata["source"].endswith("Rhine.txt")
    warsaw = next(d.metadata["source"] for d in retriever.index.documents if d.metadata["source"].endswith("Warsaw.txt"))
    kept = retriever.invoke("How long is the Rhine?", where={"source": warsaw})
    assert kept and all(p.metadata["source"] == warsaw for p in kept)
    assert retriever.invoke("How long is the Rhine?", where={"source": "no/such.txt"}) == []


def test_unrelated_chunks_past_the_idf_cap_leave_keyword_scores_unchanged() -> None:
    passages = [f"The Rhine is {n} km long and flows past Basel." for n in range(600)] + ["Warsaw lies on the Vistula."] * 600
    filler = [f"quartz {n} zebra" for n in range(3000)]
    words = tokenize(["How long is the Rhine at Basel?"])[0]

    def scores(extra: list[str], idf_chunks: int) -> list[float]:
        return keyword_index(passages + extra, b=0.0, idf_chunks=idf_chunks).get_scores(words)[: len(passages)].tolist()

    assert scores([], 1000) == pytest.approx(scores(filler, 1000), rel=1e-6)  # 1,200 chunks or 4,200: same weights
    assert scores([], 10**9) != pytest.approx(scores(filler, 10**9), rel=1e-3)  # uncapped, weights move with each chunk


def test_a_store_of_stop_words_only_retrieves_by_meaning(tmp_path: Path) -> None:
    (tmp_path / "it.txt").write_text("It is what it is, and so it was.\n")
    settings = Settings(chroma_path=tmp_path / "chroma")
    ingest([tmp_path / "it.txt"], settings, progress=False)
    assert keyword_index(["It is what it is."], b=0.3, idf_chunks=1000) is None  # bm25s cannot index no words
    assert [p.page_content for p in get_retriever(settings, k=1).invoke("What is it?")] == ["It is what it is, and so it was."]


def test_proximity_counts_pairs_of_question_words_that_stand_close() -> None:
    assert proximity(["rhine", "long"], ["the", "rhine", "is", "long"]) == 1.0
    assert proximity(["rhine", "long"], ["rhine", *["x"] * 8, "long"]) == 0.0  # nine words apart: not near
    assert proximity(["rhine", "long", "km"], ["rhine", "long", *["x"] * 20, "km"]) == pytest.approx(1 / 3)
    assert proximity(["rhine"], ["rhine"]) == 0.0 and proximity(["rhine", "long"], []) == 0.0


def test_proximity_is_added_to_the_best_passages_only(engine: AnswerEngine) -> None:
    question = "How long is the Rhine?"
    plain = get_retriever(engine.settings.model_copy(update={"proximity_weight": 0.0}), k=40).invoke(question)
    near = get_retriever(engine.settings.model_copy(update={"fetch_k": 5}), k=40).invoke(question)
    words = tokenize([question])[0]
    before = {p.id: p.metadata["score"] for p in plain}
    gains = {p.id: round(p.metadata["score"] - before[p.id], 3) for p in near if p.id in before}
    rescored = [p.id for p in plain[:5]]
    assert any(gains[i] > 0 for i in rescored), "no passage of the Rhine question has its words close together"
    for passage in plain:
        expected = 0.2 * proximity(words, tokenize([passage.page_content])[0]) if passage.id in rescored else 0.0
        assert gains.get(passage.id, round(expected, 3)) == pytest.approx(expected, abs=2e-3), passage.page_content[:80]

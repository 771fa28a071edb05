"""Questions about the document itself: recognised precisely, answered from the header, cited verbatim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.documents import Document

from app.facts import FACTS, asks_about_document, fact_citation
from config import ROOT
from ingest.chunking import split_document
from ingest.loaders import load_document
from tests.conftest import ARTICLE

GOLD = ROOT / "tests" / "gold" / "article.jsonl"

PHRASINGS = {
    "author": [
        "Who wrote this article?", "who is the author", "whos the author", "who wrote this", "Who's the reporter?",
        "who wrote it", "which journalist wrote the story", "what is the authors name", "who is this piece by",
    ],
    "publisher": [
        "Who published it?", "Which outlet published the report?", "which news agency published the report",
        "who is the publisher", "what is the source of this article", "where was the article published",
        "what publication is this from",
    ],
    "date": [
        "When was the article published?", "What is the date of the article?", "when was it published",
        "whens the article from", "whats the publication date", "what date was the story published",
        "In what year was this news story published?", "in which month did the piece come out",
    ],
    "editor": [
        "Who edited this article?", "who is the editor", "who was the story edited by", "whats the editors name",
        "Who is the editor of the article?",
    ],
    "title": [
        "What is the title of the article?", "what is the headline of the article", "whats this story called",
        "what's the title", "what is the articles title", "What is the name of this story?",
    ],
}
EXPECTED = {
    "author": "Dou Shicong",
    "publisher": "Yicai",
    "date": "Apr 29 2024",
    "editor": "Kim Taylor",
    "title": "Shanghai, Hong Kong Draw Closer on Scientific, Technological Innovation",
}
LOOK_ALIKES = [
    "Who is the president of the University of Hong Kong?",
    "Who is the director of the commission?",
    "When was the dialogue held?",
    "Who said basic research is the key?",
    "What is the title of Luo Dajin?",
    "What is the title of Zhang Xiang?",
    "What is Zhang Xiang's title?",
    "Who is the editor of the commission?",
    "Who edited the papers?",
    "When was Shui On Group founded?",
    "Who wrote the papers?",
    "who reported it",  # may follow up on a figure
    "What is it called?",
    "What is its name?",
    "What is its source?",
    "How old is it?",
    "Which company is Vincent Lo the chairman of?",
    "What did the article say about Hong Kong?",
    "Who wrote the article and what did it say about Shanghai?",
    "Where was the dialogue held?",
    "Who released the figures?",
]


@pytest.fixture(scope="module")
def article() -> tuple[Document, list[Document]]:
    document = load_document(ARTICLE, ROOT)
    return document, split_document(document, chunk_size=600, chunk_overlap=120)


def _markdown(tmp_path: Path, name: str, text: str) -> tuple[Document, list[Document]]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    document = load_document(path, tmp_path)
    return document, split_document(document, chunk_size=600, chunk_overlap=120)


@pytest.mark.parametrize(("fact", "question"), [(f, q) for f, qs in PHRASINGS.items() for q in qs])
def test_document_questions_are_answered_from_the_header(
    article: tuple[Document, list[Document]], fact: str, question: str
) -> None:
    document, chunks = article
    assert asks_about_document(question) == fact
    found = fact_citation(fact, chunks)  # type: ignore[arg-type]
    assert found is not None
    assert found.answer == EXPECTED[fact]
    assert document.page_content[found.start : found.end] == found.quote
    assert found.answer in found.quote and found.quote == found.quote.strip()
    if fact != "editor":  # the credit line under the story, not the header
        assert found.chunk_id == chunks[0].metadata["chunk_id"]
    assert found.source == document.metadata["source"]


def test_the_quote_is_the_whole_header_line(article: tuple[Document, list[Document]]) -> None:
    document, chunks = article
    header = document.page_content.split("\n\n", 1)[0].splitlines()
    for fact in set(FACTS) - {"editor"}:
        found = fact_citation(fact, chunks)
        assert found is not None and found.quote in [line.strip() for line in header]
    date = fact_citation("date", chunks)
    assert date is not None and date.quote.startswith("DATE:") and "2024-04-29" not in date.answer


@pytest.mark.parametrize("question", LOOK_ALIKES)
def test_questions_about_people_and_events_are_not_document_questions(question: str) -> None:
    assert asks_about_document(question) is None


def test_of_the_gold_questions_only_the_byline_and_editor_ones_are_document_questions() -> None:
    questions = [json.loads(line)["question"] for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    found = {question: asks_about_document(question) for question in questions}
    assert found.pop("Who wrote the article?") == "author"
    assert found.pop("Who is the editor of the article?") == "editor"
    assert set(found.values()) == {None}


def test_markdown_without_byline_answers_only_its_title(tmp_path: Path) -> None:
    document, chunks = _markdown(tmp_path, "notes.md", "\n# Tidal Power Notes\n\nTides turn turbines twice a day.\n")
    assert fact_citation("author", chunks) is None
    assert fact_citation("date", chunks) is None
    assert fact_citation("publisher", chunks) is None
    title = fact_citation("title", chunks)
    assert title is not None and title.answer == "Tidal Power Notes" and title.quote == "# Tidal Power Notes"
    assert document.page_content[title.start : title.end] == title.quote


def test_with_several_documents_the_one_that_has_the_fact_answers(
    article: tuple[Document, list[Document]], tmp_path: Path
) -> None:
    _, article_chunks = article
    _, notes_chunks = _markdown(tmp_path, "notes.md", "# Tidal Power Notes\n\nTides turn turbines twice a day.\n")
    chunks = notes_chunks + article_chunks
    author = fact_citation("author", chunks)
    assert author is not None and author.answer == "Dou Shicong"
    assert fact_citation("title", chunks) is None, "both have a title and the question names neither"
    named = fact_citation("title", chunks, question="What is the title of tidal power notes?")
    assert named is not None and named.answer == "Tidal Power Notes"


def test_two_documents_with_bylines_need_the_question_to_name_one(tmp_path: Path) -> None:
    first = tmp_path / "a.txt"
    first.write_text("Harbour Lights Return\nAnna Berg\nDATE: May 2 2024\n\nThe lights came back.\n", encoding="utf-8")
    second = tmp_path / "b.txt"
    second.write_text("River Ferries Resume\nBY: Omar Haddad\nDATE: May 3 2024\n\nFerries run again.\n", encoding="utf-8")
    chunks = [c for p in (first, second) for c in split_document(load_document(p, tmp_path), 600, 120)]
    assert fact_citation("author", chunks) is None
    named = fact_citation("author", chunks, question="Who wrote River Ferries Resume?")
    assert named is not None and named.answer == "Omar Haddad" and named.quote == "BY: Omar Haddad"
    text = second.read_text(encoding="utf-8")
    assert text[named.start : named.end] == named.quote


def test_metadata_without_a_verbatim_header_line_is_not_cited(article: tuple[Document, list[Document]]) -> None:
    _, chunks = article
    first = chunks[0]
    edited = Document(page_content=first.page_content.replace("Dou Shicong", "Dou  Shicong"), metadata=first.metadata)
    assert fact_citation("author", [edited, *chunks[1:]]) is None
    assert fact_citation("author", chunks[1:]) is None, "without the first chunk there is no header to cite"
    assert fact_citation("editor", chunks[:-1]) is None, "the credit line is in the last chunk"
    with pytest.raises(ValueError, match="unknown document fact"):
        fact_citation("translator", chunks)  # type: ignore[arg-type]

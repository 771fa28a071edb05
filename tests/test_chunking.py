from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings as hsettings, strategies as st
from langchain_core.documents import Document

from config import ROOT
from ingest.chunking import sentence_spans, split_document
from ingest.loaders import load_document
from tests.conftest import ARTICLE


def _doc(text: str) -> Document:
    return Document(page_content=text, metadata={"source": "t.txt", "title": "t"})


def test_article_chunks_have_exact_spans_and_whole_sentences() -> None:
    document = load_document(ARTICLE, ROOT)
    chunks = split_document(document, chunk_size=600, chunk_overlap=120)
    assert len(chunks) >= 5
    starts = {s.start for s in sentence_spans(document.page_content)}
    ends = {s.end for s in sentence_spans(document.page_content)}
    for index, chunk in enumerate(chunks):
        meta = chunk.metadata
        assert document.page_content[meta["start"] : meta["end"]] == chunk.page_content
        assert meta["chunk_index"] == index and meta["source"] == document.metadata["source"]
        assert meta["start"] in starts and meta["end"] in ends, "a chunk must begin and end on sentence boundaries"
    assert any("Zhang Xiang" in c.page_content for c in chunks)


def test_chunk_ids_depend_on_content_only() -> None:
    text = "One sentence here. Another one follows.\n\nA new paragraph starts."
    first = [c.id for c in split_document(_doc(text), 40, 0)]
    again = [c.id for c in split_document(_doc(text), 40, 0)]
    changed = [c.id for c in split_document(_doc(text.replace("new", "fresh")), 40, 0)]
    assert first == again
    assert first[0] == changed[0] and first[-1] != changed[-1]


def test_overlong_sentence_stays_whole() -> None:
    long_sentence = "This sentence is " + "very " * 60 + "long."
    text = f"Short one. {long_sentence} Tail one. Tail two."
    texts = [c.page_content for c in split_document(_doc(text), chunk_size=80, chunk_overlap=40)]
    assert texts == ["Short one.", long_sentence, "Tail one. Tail two."]


def test_overlap_repeats_whole_sentences_within_a_paragraph_only() -> None:
    text = "Alpha is first. Beta is second. Gamma is third. Delta is fourth.\n\nNext paragraph here."
    texts = [c.page_content for c in split_document(_doc(text), chunk_size=40, chunk_overlap=20)]
    assert texts == [
        "Alpha is first. Beta is second.",
        "Beta is second. Gamma is third.",
        "Gamma is third. Delta is fourth.",
        "Next paragraph here.",
    ]


@hsettings(max_examples=150, deadline=None)
@given(
    st.lists(st.text(min_size=0, max_size=300), min_size=1, max_size=12),
    st.sampled_from([" ", "\n", "\n\n", "\n \n\t", "  "]),
    st.integers(min_value=50, max_value=700),
    st.integers(min_value=0, max_value=200),
)
def test_spans_are_exact_for_arbitrary_text(parts: list[str], glue: str, size: int, overlap: int) -> None:
    text = glue.join(parts)
    chunks = split_document(_doc(text), size, overlap)
    for chunk in chunks:
        assert text[chunk.metadata["start"] : chunk.metadata["end"]] == chunk.page_content
        assert chunk.page_content.strip() == chunk.page_content and chunk.page_content
    covered = {i for c in chunks for i in range(c.metadata["start"], c.metadata["end"])}
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace()), "every character lands in a chunk"

"""Sentence-aware chunking with exact character spans: `text[start:end] == chunk text` for every chunk."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from langchain_core.documents import Document

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


@dataclass(frozen=True)
class Span:
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def sentence_spans(text: str) -> list[Span]:
    """Sentences of `text` as spans without surrounding whitespace, paragraphs (blank lines) always breaking."""
    from sentencex import get_sentence_boundaries

    spans: list[Span] = []
    for para in _paragraph_spans(text):
        chunk = text[para.start : para.end]
        for boundary in get_sentence_boundaries("en", chunk):
            start, end = _strip(chunk, boundary["start_index"], boundary["end_index"])
            if end > start:
                spans.append(Span(para.start + start, para.start + end))
    return spans


def _paragraph_spans(text: str) -> list[Span]:
    spans, position = [], 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        spans.append(Span(position, match.start()))
        position = match.end()
    spans.append(Span(position, len(text)))
    return [Span(*_strip(text, s.start, s.end)) for s in spans if text[s.start : s.end].strip()]


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def chunk_id(source: str, start: int, end: int, text: str) -> str:
    """Content-derived id: the same source, span and text always give the same id, so re-ingesting is idempotent."""
    digest = hashlib.sha256(f"{source}\x1f{start}\x1f{end}\x1f{text}".encode()).hexdigest()
    return digest[:32]


def split_document(document: Document, chunk_size: int, chunk_overlap: int) -> list[Document]:
    """Pack whole sentences into chunks of about `chunk_size` characters.

    Written by hand because LangChain's splitters report only a start index found by searching the text and break
    over-long sentences; here a chunk never ends inside a sentence, prefers paragraph boundaries, and overlaps the
    previous chunk by whole sentences only when one paragraph is split.
    """
    text = document.page_content
    groups: list[list[Span]] = []
    current: list[Span] = []
    paragraph_end = -1
    for sentence in sentence_spans(text):
        new_paragraph = sentence.start > paragraph_end
        if new_paragraph:
            paragraph_end = _paragraph_end(text, sentence.start)
        if current:
            size_with = sentence.end - current[0].start
            paragraph_fits = paragraph_end - current[0].start <= chunk_size
            if new_paragraph and (current[-1].end - current[0].start >= chunk_size // 2 or not paragraph_fits):
                groups.append(current)
                current = []
            elif size_with > chunk_size:
                groups.append(current)
                current = [] if new_paragraph else _overlap(current, chunk_overlap)
                if current and sentence.end - current[0].start > chunk_size:
                    current = []
        current.append(sentence)
    if current:
        groups.append(current)

    source = document.metadata["source"]
    chunks = []
    for index, group in enumerate(groups):
        start, end = group[0].start, group[-1].end
        piece = text[start:end]
        metadata = {**document.metadata, "chunk_index": index, "start": start, "end": end}
        metadata["chunk_id"] = chunk_id(source, start, end, piece)
        chunks.append(Document(page_content=piece, metadata=metadata, id=metadata["chunk_id"]))
    return chunks


def _paragraph_end(text: str, position: int) -> int:
    match = _PARAGRAPH_BREAK.search(text, position)
    return _strip(text, position, match.start() if match else len(text))[1]


def _overlap(group: list[Span], budget: int) -> list[Span]:
    """The trailing sentences of `group` whose combined span fits in `budget` characters (never the whole group)."""
    kept: list[Span] = []
    for sentence in reversed(group[1:]):
        if group[-1].end - sentence.start > budget:
            break
        kept.insert(0, sentence)
    return kept

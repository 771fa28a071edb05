"""Questions about a document itself (its author, publisher, date, title), answered from its header.

"Who wrote this article?" has no answer in the article's sentences: the answer is the byline, which the loader
(`ingest.loaders`) read into the document's metadata. Retrieval and extraction are the wrong tools for it, so the
chain can ask `asks_about_document` first and, when it names a fact, answer with `fact_citation`: the fact as the
header writes it, cited to the whole header line, verbatim at its document offsets.

The question patterns are facts about English phrasing, not guesses about intent: each one requires the question
to be about the document itself ("this", "the article", "the story", "it"...) or to be one of a few standalone
phrasings ("who is the author?"), and the whole question must match, so "Who is the director of the commission?"
or "What is the title of Zhang Xiang?" never does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from langchain_core.documents import Document

# The loader's own pattern and date parser, so that what is cited is exactly what the loader read.
from ingest.loaders import LABELLED_LINE, iso_date

Fact = Literal["author", "editor", "publisher", "date", "title"]
FACTS: tuple[Fact, ...] = ("author", "editor", "publisher", "date", "title")
MAX_TITLE_CHARS = 200
"""A longer "title" is the first line of a document without a heading (a whole paragraph): not worth showing."""

# --- question patterns -------------------------------------------------------------------------------------------
# Questions are lower-cased and their contractions spelled out first ("whos", "what's" -> "who is", "what is").

_DOC_NOUN = (
    r"(?:news )?(?:article|story|report|piece|text|document|item|post|write ?-?up|news|paper|coverage|feature|column)"
)
_THE_DOC = rf"(?:(?:this|the|that|your) )?{_DOC_NOUN}(?: (?:about|on|regarding) [\w' ,.-]+)?"  # "the story about X"
_NAMED_DOC = rf"(?:{_THE_DOC}|this)"
_DOC = rf"(?:{_THE_DOC}|this|it)"  # "it" only with verbs that fit nothing but a document ("who wrote it")
_NAMED_DOC_POSS = rf"(?:(?:this|the|that) )?{_DOC_NOUN}'?s"  # "the article's", "the articles"
_DOC_POSS = rf"(?:{_NAMED_DOC_POSS}|its)"  # "its" only before nouns that fit a document ("its author", not "its name")
_WRITER = r"(?:author|writer|reporter|journalist|correspondent)"
_EDITOR = r"(?:editor|sub-?editor|copy ?editor)"
_PUBLISHER = (
    r"(?:publisher|publication|outlet|media outlet|news outlet|news ?agency|agency|newspaper|news ?paper|magazine"
    r"|media|website|site|source|news organi[sz]ation|organi[sz]ation|wire(?: service)?|company|paper)"
)
_PUBLISHED = r"(?:published|released|issued|printed|posted|put out|filed)"
_PUBLISHER_NAMES = r"(?:publisher|outlet|publication|news agency|newspaper|magazine)"
_DATE = r"(?:(?:publication|publishing|publish|published|release|posting) )?date"

_PATTERNS: dict[Fact, tuple[str, ...]] = {
    "author": (
        rf"who (?:wrote|has written|authored|penned) {_DOC}",  # who wrote it
        rf"who reported {_NAMED_DOC}",  # who reported this story ("who reported it" may follow up on a figure)
        rf"who (?:is|was) (?:the )?{_WRITER}(?: of {_DOC})?",  # who is the author (of the article)
        rf"who (?:is|was) {_DOC_POSS} {_WRITER}",  # who is the article's author
        rf"who (?:is|was) {_DOC} (?:written |reported )?by",  # who is this story by
        rf"(?:by whom|who) (?:is|was) {_DOC} written(?: by)?",  # by whom was the article written
        rf"(?:what|which) {_WRITER} (?:wrote|authored|reported|penned) {_DOC}",  # which journalist wrote it
        rf"what (?:is|was) the {_WRITER}'?s name",  # what is the author's name
        rf"what (?:is|was) the name of the {_WRITER}(?: of {_DOC})?",  # what is the name of the reporter
        rf"whose {_DOC_NOUN} is (?:this|it)",  # whose article is this
        rf"(?:the )?{_WRITER} of {_DOC}|{_DOC_POSS} {_WRITER}",  # noun phrases: "author of the article"
    ),
    "editor": (
        rf"who (?:edited|has edited|copy-?edited) {_DOC}",  # who edited it
        rf"who (?:is|was) (?:the )?{_EDITOR}(?: of {_DOC})?",  # who is the editor (of the story)
        rf"who (?:is|was) {_DOC_POSS} {_EDITOR}",  # who is the article's editor
        rf"(?:by whom|who) (?:is|was) {_DOC} edited(?: by)?",  # who was the piece edited by
        rf"what (?:is|was) the (?:name of the {_EDITOR}(?: of {_DOC})?|{_EDITOR}'?s name)",  # the editor's name
        rf"(?:which|what) {_EDITOR} (?:edited|worked on|handled) {_DOC}",  # which editor handled the story
        rf"(?:the )?{_EDITOR} of {_DOC}|{_DOC_POSS} {_EDITOR}",  # noun phrases
    ),
    "publisher": (
        rf"who (?:published|publishes) {_DOC}",  # who published it
        rf"who (?:ran|released|issued|put out|carried|syndicated) {_NAMED_DOC}",  # who ran the story (not "it")
        rf"(?:which|what) {_PUBLISHER} (?:published|ran|released|issued|carried|put out) {_DOC}",  # which outlet ran it
        # "what publication is this from", "in which newspaper was the article published"
        rf"(?:(?:in|on|by) )?(?:which|what) {_PUBLISHER} (?:is|was) {_DOC} (?:from|by|in|on|{_PUBLISHED}(?: in| on| by)?)",
        rf"who (?:is|was) (?:the )?{_PUBLISHER_NAMES}",  # who is the publisher
        rf"what (?:is|was) the name of the {_PUBLISHER_NAMES}(?: of {_DOC}| (?:that|which) published {_DOC})?",
        rf"(?:who|what) (?:is|was) the {_PUBLISHER} of {_DOC}",  # what is the source of this article
        rf"(?:who|what) (?:is|was) {_DOC_POSS} publisher",  # who is its publisher
        rf"(?:who|what) (?:is|was) {_NAMED_DOC_POSS} (?:source|outlet|publication)",  # what is the story's source
        rf"where (?:was|is) {_DOC} (?:{_PUBLISHED}|from)",  # where was the article published
        rf"where (?:did|does) {_DOC} (?:come from|appear)",  # where does this story come from
        rf"(?:by whom|who) (?:is|was) {_DOC} published(?: by)?",  # who was it published by
        rf"(?:the )?(?:publisher|source|outlet) of {_DOC}|{_NAMED_DOC_POSS} (?:publisher|source|outlet)",  # noun phrases
    ),
    "date": (
        rf"when (?:was|is) {_DOC} (?:published|written|posted|dated|from)",  # when was it published
        rf"when (?:was|is) {_NAMED_DOC} (?:{_PUBLISHED}|out)",  # when was the report released (not "it")
        rf"when did {_DOC} (?:come out|appear|get published|run|go online)",  # when did the story come out
        rf"what (?:is|was) the (?:publication|publishing|publish|published|release|posting) date(?: of {_DOC})?",
        rf"what (?:is|was) the date (?:of|on) {_DOC}",  # what is the date of the article
        rf"what (?:is|was) {_DOC_POSS} {_DATE}",  # what is the article's date
        # "what year was the article written", "in which month did the story come out"
        rf"(?:(?:in|on|during) )?(?:what|which) (?:date|day|year|month) (?:was|is) {_DOC} (?:{_PUBLISHED}|written|dated|from)",
        rf"(?:(?:in|on|during) )?(?:what|which) (?:date|day|year|month) did {_DOC} (?:come out|appear|get published|run|go online)",
        rf"(?:what|which) date is (?:on )?{_THE_DOC}",  # what date is the article
        rf"how (?:old|recent|new) is {_THE_DOC}",  # how old is the article (not "it": "how old is it" follows up)
        rf"(?:the )?{_DATE} of {_DOC}|{_DOC_POSS} {_DATE}|(?:the )?publication date",  # noun phrases
    ),
    "title": (
        rf"what (?:is|was) the (?:title|headline|heading) of {_DOC}",  # what is the title of the article
        rf"what (?:is|was) the name of {_THE_DOC}",  # what is the name of this story (not "of it")
        r"what (?:is|was) the (?:title|headline)",  # what is the title
        rf"what (?:is|was) {_DOC_POSS} (?:title|headline)",  # what's the article's headline, what is its title
        rf"what (?:is|was) {_NAMED_DOC_POSS} name",  # what is the story's name (not "its name")
        rf"what (?:is|was) {_THE_DOC} (?:called|titled|named|headlined)",  # what's this story called (not "it")
        rf"what (?:title|headline) does {_DOC} (?:have|carry|bear)",  # what headline does it carry
        rf"(?:the )?(?:title|headline) of {_DOC}|{_DOC_POSS} (?:title|headline)",  # noun phrases
    ),
}

_POLITE_START = (
    r"(?:(?:please|so|and|ok|okay|hi|hey|also) )*"
    r"(?:(?:can|could|would) you (?:please )?(?:tell me|say) |do you know |tell me |i (?:want|would like) to know )?"
)
_COMPILED: dict[Fact, re.Pattern[str]] = {
    fact: re.compile(rf"{_POLITE_START}(?:{'|'.join(patterns)})(?: please)?") for fact, patterns in _PATTERNS.items()
}
_CONTRACTION = re.compile(r"\b(who|what|when|where|how)'?s\b")
_METADATA_KEY: dict[Fact, str] = {"author": "author", "publisher": "publisher", "date": "date", "title": "title"}
_LABELS: dict[Fact, tuple[str, ...]] = {"author": ("AUTHOR", "BY"), "publisher": ("SOURCE",), "date": ("DATE",)}
_EDITOR_LINE = re.compile(r"^\W*(?:editor|edited by)\s*:?\s+(\S.*?)\s*$", re.IGNORECASE)
"""A credit line such as "Editor: Kim Taylor", which news sites print under the story rather than in the header."""
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_MD_HEADING = re.compile(r"#{1,6}\s+(.+?)\s*#*")


def asks_about_document(question: str) -> Fact | None:
    """Which fact about the document itself the question asks for ('author', 'publisher', 'date', 'title'), or
    None when it asks about anything else."""
    text = question.lower().replace("’", "'")
    text = _CONTRACTION.sub(r"\1 is", text)
    text = re.sub(r"[?!.,;:\"“”]+", " ", text)
    text = " ".join(text.split())
    for fact in FACTS:
        if _COMPILED[fact].fullmatch(text):
            return fact
    return None


# --- answers -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactAnswer:
    """A fact from a document's header and its citation; `quote == document_text[start:end]` and the answer
    words are found verbatim in `quote`. The citation fields are those of `app.chain.Citation`."""

    fact: Fact
    answer: str
    source: str
    title: str
    chunk_id: str
    quote: str
    start: int
    end: int


def fact_citation(fact: Fact, chunks: Sequence[Document], question: str | None = None) -> FactAnswer | None:
    """The fact from the header of the one document that has it, cited to the header line; None when no document,
    or more than one, has it, or when the line cannot be found verbatim.

    `chunks` are the store's chunks (metadata `source`, `title`, `chunk_id`, `chunk_index`, `start`, `end` and the
    document's metadata). When several documents have the fact, the question must contain one of their titles
    (case and spacing aside) to choose it; nothing cleverer is tried. Author, publisher and date are looked for in
    the header (first block of lines) of the document's first chunk; the title in the first line of any of its
    chunks that reads exactly the title, or is a Markdown heading of it.
    """
    if fact not in FACTS:
        raise ValueError(f"unknown document fact {fact!r}; expected one of {', '.join(FACTS)}")
    if fact == "editor":
        return _editor_line(chunks, question)
    key = _METADATA_KEY[fact]
    documents: dict[str, dict[str, object]] = {}
    for chunk in chunks:
        source = chunk.metadata.get("source")
        if isinstance(source, str) and chunk.metadata.get(key):
            documents.setdefault(source, chunk.metadata)
    documents = _named(documents, question)
    if len(documents) != 1:
        return None
    (source,) = documents
    own = sorted(
        (c for c in chunks if c.metadata.get("source") == source and isinstance(c.metadata.get("chunk_index"), int)),
        key=lambda c: c.metadata["chunk_index"],
    )
    value = str(documents[source][key])
    if fact == "title":
        return _title_line(value, own)
    if not own or own[0].metadata["chunk_index"] != 0:
        return None
    return _header_line(fact, value, own[0])


def _named(documents: dict[str, dict[str, object]], question: str | None) -> dict[str, dict[str, object]]:
    """Of several documents, those whose title the question contains (case and spacing aside)."""
    if len(documents) <= 1 or not question:
        return documents
    wanted = " ".join(question.split()).casefold()
    return {
        source: metadata
        for source, metadata in documents.items()
        if " ".join(str(metadata.get("title", "")).split()).casefold() in wanted
    }


def _editor_line(chunks: Sequence[Document], question: str | None) -> FactAnswer | None:
    """The "Editor: ..." credit line of the one document that has one, wherever in the document it stands."""
    found: dict[str, tuple[Document, int, str, str]] = {}
    for chunk in sorted(chunks, key=lambda c: c.metadata.get("chunk_index", 0) if isinstance(c.metadata.get("chunk_index"), int) else 0):
        source = chunk.metadata.get("source")
        if not isinstance(source, str) or source in found:
            continue
        for offset, line in _lines(chunk.page_content):
            match = _EDITOR_LINE.match(line)
            if match:
                found[source] = (chunk, offset, line, match.group(1))
                break
    named = _named({source: hit[0].metadata for source, hit in found.items()}, question)
    if len(named) != 1:
        return None
    chunk, offset, line, editor = found[next(iter(named))]
    return _answer("editor", editor, chunk, offset, line)


def _header_line(fact: Fact, value: str, first: Document) -> FactAnswer | None:
    """The labelled line ("DATE:  Apr 29 2024") or, for the author, the unlabelled byline under the title."""
    header = _BLANK_LINE.split(first.page_content, 1)[0]
    lines = list(_lines(header))
    for offset, line in lines:
        match = LABELLED_LINE.match(line)
        if not match or match.group(1).upper() not in _LABELS[fact]:
            continue
        written = match.group(2)
        if written == value or (fact == "date" and iso_date(written) == value):
            return _answer(fact, written, first, offset, line)
    if fact == "author":  # the loader takes an unlabelled line under the title as the byline
        for offset, line in lines[1:]:
            if line == value and not LABELLED_LINE.match(line):
                return _answer(fact, value, first, offset, line)
    return None


def _title_line(title: str, chunks: list[Document]) -> FactAnswer | None:
    if len(title) > MAX_TITLE_CHARS:
        return None
    for chunk in chunks:
        for offset, line in _lines(chunk.page_content):
            heading = _MD_HEADING.fullmatch(line)
            if line == title or (heading and heading.group(1) == title):
                return _answer("title", title, chunk, offset, line)
    return None


def _lines(text: str) -> list[tuple[int, str]]:
    """Each non-blank line of `text`, stripped, with the offset in `text` where the stripped line starts."""
    lines = []
    position = 0
    for raw in text.split("\n"):
        stripped = raw.strip()
        if stripped:
            lines.append((position + raw.index(stripped), stripped))
        position += len(raw) + 1
    return lines


def _answer(fact: Fact, answer: str, chunk: Document, offset: int, line: str) -> FactAnswer | None:
    metadata = chunk.metadata
    if chunk.page_content[offset : offset + len(line)] != line or answer not in line:
        return None  # never cite what is not verbatim
    start = int(metadata["start"]) + offset
    return FactAnswer(
        fact=fact,
        answer=answer,
        source=str(metadata["source"]),
        title=str(metadata.get("title", "")),
        chunk_id=str(metadata["chunk_id"]),
        quote=line,
        start=start,
        end=start + len(line),
    )

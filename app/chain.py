"""The answer chain: question + history -> standalone query -> hybrid retrieval -> model candidate -> grounded answer."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel, BaseLanguageModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import Runnable
from pydantic import BaseModel, Field

from app import grounding
from app.llm import get_llm, stream_within
from app.retrieval import get_retriever
from config import Settings
from ingest.loaders import UNPRINTABLE
from prompts import CHAT_MODEL_PREFIX, EXTRACT_ANSWER, EXTRACT_STOP, REFUSAL
from vectorstore import StoreError, get_embeddings, is_outage


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class Citation(BaseModel):
    source: str
    title: str
    chunk_id: str
    quote: str = Field(description="The supporting sentence(s); equals the source text between start and end.")
    start: int
    end: int


class Timings(BaseModel):
    retrieve_ms: float
    generate_ms: float
    total_ms: float


class Answer(BaseModel):
    answer: str
    refused: bool
    citations: list[Citation]
    timings: Timings


class Progress(BaseModel):
    """A stage the answer has reached; streamed before the checked `Answer` so a UI can show progress."""

    stage: Literal["retrieving", "reading", "checking"]


class QuestionError(ValueError):
    """A question that cannot be answered as asked (empty, too long); the message is for the user."""


TOP_SENTENCES = 3
"""A model's answer counts only when found in one of this many best-ranked sentences."""
LEXICAL_WEIGHT = 0.5
"""Weight of the share of question words a sentence contains, beside its cosine similarity, when ranking."""

_REFERRING = re.compile(
    r"\b(it|its|it's|he|him|his|she|her|they|them|their|this|that|these|those|there|the same|such|former|latter)\b", re.I
)


def printable(text: str) -> str:
    """The text with control characters and lone surrogates as spaces, and each run of white space as one space."""
    return " ".join(UNPRINTABLE.sub(" ", text).split())


def standalone_question(question: str, history: Sequence[Turn | dict[str, str]]) -> str:
    """The question made self-contained for retrieval: a follow-up that refers back is joined to the last question.

    A base model cannot be trusted to rewrite questions, so follow-ups are detected by their referring words
    (pronouns, "and ...") or brevity and carry the previous user question along.
    """
    previous = [printable(t["content"] if isinstance(t, dict) else t.content) for t in history if (t["role"] if isinstance(t, dict) else t.role) == "user"]
    if not previous:
        return question
    refers_back = _REFERRING.search(question) or question.lower().startswith(("and ", "what about", "how about"))
    if refers_back or len(grounding.content_terms(question)) <= 1:
        return f"{previous[-1]} {question}"
    return question


class AnswerEngine:
    """Answers questions from the store with checked citations. Load once; `ask` and `stream` are thread-safe."""

    def __init__(self, settings: Settings, llm: BaseLanguageModel | None = None) -> None:
        self.settings = settings
        self.embeddings = get_embeddings(settings)
        self.retriever = get_retriever(settings)
        self.matcher = grounding.TermMatcher(self.embeddings.embed_documents)
        self.llm = llm if llm is not None else get_llm(settings)
        template = (CHAT_MODEL_PREFIX if isinstance(self.llm, BaseChatModel) else "") + EXTRACT_ANSWER
        self.extract: Runnable = PromptTemplate.from_template(template) | self.llm.bind(stop=EXTRACT_STOP) | StrOutputParser()

    def warm_up(self) -> None:
        """Load the model weights and the chunk index (texts, embeddings, BM25) now instead of at the first question."""
        if hasattr(self.llm, "load"):
            self.llm.load()
        self.retriever.index.documents  # noqa: B018 - loads the chunks, builds the BM25 index

    def ask(self, question: str, history: Sequence[Turn | dict[str, str]] = (), where: dict[str, str] | None = None) -> Answer:
        final = None
        for event in self.stream(question, history, where):
            if isinstance(event, Answer):
                final = event
        assert final is not None
        return final

    def stream(
        self, question: str, history: Sequence[Turn | dict[str, str]] = (), where: dict[str, str] | None = None
    ) -> Iterator[Progress | Answer]:
        """Yield `Progress` stages, then the checked `Answer`. Unchecked model text is never yielded: a 270M base
        model invents figures, and a draft on screen, even for a second, would show them.

        A message asking several things ("How long is the Rhine and who chairs Shui On Group?") is answered part by
        part, each part with its own retrieval and citation. A question that names no subject and is answered about
        equally well by several documents is answered from each of them, labelled by document title.
        """
        question = grounding.question_proper(self.validate(question))
        started = time.perf_counter()
        yield Progress(stage="retrieving")
        parts = grounding.sub_questions(question)
        results: list[tuple[str, str, bool, list[Citation]]] = []
        retrieve_s = 0.0
        for part in parts:
            t0 = time.perf_counter()
            query, passages = self._retrieve(standalone_question(part, history), where)
            retrieve_s += time.perf_counter() - t0
            ranked = self._rank(query, [s for s in grounding.split_sentences(passages) if not grounding.is_instruction(s.text)])
            yield Progress(stage="reading")
            answer, refused, cited = self._answer(part, query, passages, self._attempts(ranked, passages))
            results.append((part, answer, refused, cited))
            if len(parts) == 1 and not refused and not grounding.names_in(query):
                for title, others in self._other_documents(passages, ranked, cited[0].source):
                    answer, refused, cited = self._answer(part, query, passages, [others])
                    if not refused:
                        results.append((f"{title}:", answer, refused, cited))
                if len(results) > 1:  # several documents answer: each answer labelled with its document
                    first = results[0][3][0]
                    results[0] = (f"{first.title or first.source}:", *results[0][1:])
        answer, refused, cited = combine(results)
        total_s = time.perf_counter() - started
        timings = Timings(
            retrieve_ms=round(retrieve_s * 1000, 1), generate_ms=round((total_s - retrieve_s) * 1000, 1),
            total_ms=round(total_s * 1000, 1),
        )
        yield Answer(answer=answer, refused=refused, citations=cited, timings=timings)

    def _retrieve(self, question: str, where: dict[str, str] | None) -> tuple[str, list[Document]]:
        """The query (initialisms spelled out) and its passages."""
        try:
            query = self.retriever.index.expand(question)
            return query, self.retriever.invoke(query, where=where)
        except Exception as err:
            if not is_outage(err):  # a bug is not an outage: it goes up with its traceback
                raise
            raise StoreError(
                f"The document store cannot be reached ({err.__class__.__name__}); answers resume when it is back."
            ) from None

    def _answer(
        self, question: str, query: str, passages: list[Document], attempts: list[list[tuple[grounding.Sentence, float]]]
    ) -> tuple[str, bool, list[Citation]]:
        """Ask the model on the best passage of each attempt until one grounded answer."""
        answer, refused, cited = REFUSAL, True, []
        deadline = None if self.settings.llm == "local" else self.settings.llm_timeout  # local: waits for its turn
        for attempt in attempts:
            raw = ""
            if attempt:
                context = passages[attempt[0][0].passage].page_content
                try:
                    for token in stream_within(self.extract, {"passage": context, "question": question}, deadline):
                        raw += token
                except Exception:  # noqa: BLE001 - a remote model that fails or times out leaves the extractive answer
                    raw = ""
            answer, refused, cited = self._ground(question, query, raw, passages, attempt)
            if not refused:
                break
        return answer, refused, cited

    def _other_documents(
        self, passages: list[Document], ranked: list[tuple[grounding.Sentence, float]], answered: str
    ) -> list[tuple[str, list[tuple[grounding.Sentence, float]]]]:
        """Other documents whose best sentence ranks within `ambiguity_margin` of the answered document's best:
        (title, their sentence ranking), best first, at most `max_documents` - 1."""
        by_source: dict[str, list[tuple[grounding.Sentence, float]]] = {}
        for item in ranked:
            by_source.setdefault(passages[item[0].passage].metadata.get("source", ""), []).append(item)
        if answered not in by_source:
            return []
        best = by_source[answered][0][1]
        close = [
            (passages[items[0][0].passage].metadata.get("title") or source, items)
            for source, items in by_source.items()
            if source != answered and items[0][1] >= best - self.settings.ambiguity_margin
        ]
        return close[: self.settings.max_documents - 1]

    def validate(self, question: Any) -> str:
        question = printable(question) if isinstance(question, str) else ""
        if not question:
            raise QuestionError("The question is empty; type a question about the documents.")
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(
                f"The question is {len(question)} characters long; the limit is {self.settings.max_question_chars}."
            )
        return question

    @staticmethod
    def _attempts(
        ranked: list[tuple[grounding.Sentence, float]], passages: list[Document]
    ) -> list[list[tuple[grounding.Sentence, float]]]:
        """Sentence rankings to answer from: all of them, then those of the other documents.

        A document that matches the question's words without answering it (a hostile notice, an off-topic page)
        must not hide the document below it that does. The second attempt costs one more model call and happens
        only when the first is refused; it never retries within the same document, where a near miss is more
        likely a wrong answer than a hidden right one."""
        if not ranked:
            return [[]]
        first = passages[ranked[0][0].passage].metadata.get("source")
        others = [item for item in ranked if passages[item[0].passage].metadata.get("source") != first]
        return [ranked, others] if others else [ranked]

    def _rank(self, query: str, sentences: list[grounding.Sentence]) -> list[tuple[grounding.Sentence, float]]:
        """Sentences by meaning (cosine to the query) plus a bonus for containing the question's own words."""
        if not sentences:
            return []
        vectors = np.array(self.embeddings.embed_documents([query] + [s.text for s in sentences]))
        scores = vectors[1:] @ vectors[0] + LEXICAL_WEIGHT * np.array([grounding.coverage(query, s.text) for s in sentences])
        order = np.argsort(-scores)
        return [(sentences[i], float(scores[i])) for i in order]

    def _ground(
        self, question: str, query: str, raw: str, passages: list[Document], ranked: list[tuple[grounding.Sentence, float]]
    ) -> tuple[str, bool, list[Citation]]:
        kind = grounding.expected_type(question)
        for sentence, _ in ranked[:2]:
            span = grounding.count_answer(question, sentence.text)
            if span and self._answerable(question, query, sentence, passages):
                words = sentence.text[span[0] : span[1]]
                return f"{words} [1]", False, [self._cite(passages, [sentence])]
        candidate = grounding.clean_candidate(raw)
        if candidate and grounding.adds_information(candidate, question) and grounding.fits_type(kind, candidate):
            found = grounding.locate_in_sentences(candidate, [s for s, _ in ranked[:TOP_SENTENCES]])
            if found and self._answerable(question, query, found[0], passages):
                sentence, start, end = found
                end = grounding.extend_with_parenthesis(sentence, start, end)
                words = sentence.text[start - sentence.start : end - sentence.start]
                return f"{words} [1]", False, [self._cite(passages, [sentence])]
        if ranked:  # no usable candidate: the best sentence, only when it holds every word of the question
            sentence, score = ranked[0]
            if grounding.fits_type(kind, sentence.text) and score >= self.settings.min_support and self._answerable(
                question, query, sentence, passages, strict=True
            ):
                return f"{sentence.text} [1]", False, [self._cite(passages, [sentence])]
        return REFUSAL, True, []

    def _answerable(self, question: str, query: str, sentence: grounding.Sentence, passages: list[Document], strict: bool = False) -> bool:
        """The passage around the sentence covers what the question asks about: it names every name the question
        (and the conversation it refers back to) names, and each content word of the question is in it or has a
        close word in it (strict: is in it)."""
        passage = passages[sentence.passage]
        text = passage.page_content + " " + passage.metadata.get("title", "")
        if grounding.names_missing(query, text):
            return False
        matches = self.matcher.matches(question, text)
        return not matches or min(matches.values()) >= (1.0 if strict else self.settings.word_match)

    @staticmethod
    def _cite(passages: list[Document], support: list[grounding.Sentence]) -> Citation:
        passage = passages[support[0].passage]
        base = int(passage.metadata["start"])
        start, end = support[0].start, support[-1].end
        return Citation(
            source=passage.metadata["source"], title=passage.metadata.get("title", ""),
            chunk_id=passage.metadata.get("chunk_id", passage.id or ""),
            quote=passage.page_content[start - base : end - base], start=start, end=end,
        )


def combine(results: list[tuple[str, str, bool, list[Citation]]]) -> tuple[str, bool, list[Citation]]:
    """One answer from the answers to the parts of a question: one line per part, labelled, citations renumbered.

    A single part is returned as it is; refused only when every part is."""
    if len(results) == 1:
        return results[0][1:]
    if all(refused for _, _, refused, _ in results):
        return REFUSAL, True, []
    lines, cited = [], []
    for label, answer, refused, citations in results:
        if refused:
            lines.append(f"{label} {REFUSAL}")
            continue
        cited.extend(citations)
        lines.append(f"{label} {answer.replace('[1]', f'[{len(cited)}]')}")
    return "\n".join(lines), False, cited

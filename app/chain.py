"""The answer chain: question + history -> standalone query -> hybrid retrieval -> model candidate -> grounded answer."""

from __future__ import annotations

import contextlib
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

from app import answer_check, facts, grounding, language, spelling, translate
from app.candidates import Candidate, propose
from app.llm import Completion, LlamaCppCompletion, get_llm, get_none_reader, stream_within
from app.retrieval import get_retriever
from app.verifier import Evidence, Verifier, features
from config import Settings
from ingest.loaders import UNPRINTABLE
from prompts import CHAT_MODEL_PREFIX, EXTRACT_ANSWER, EXTRACT_ANSWER_TUNED, EXTRACT_STOP, REFUSAL
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
    language: str = Field("en", description="The question's language ('en', 'zh-hans', 'zh-hant', ...): the refusal is in it.")
    read_as: str | None = Field(
        None, description="The English words a question in Chinese was read as (stage \"translate\"); None for others."
    )


class Progress(BaseModel):
    """A stage the answer has reached; streamed before the checked `Answer` so a UI can show progress."""

    stage: Literal["retrieving", "reading"]
    language: str = "en"


class QuestionError(ValueError):
    """A question that cannot be answered as asked (empty, too long); the message is for the user."""


LEXICAL_WEIGHT = 0.5
"""Weight of the share of question words a sentence contains, beside its cosine similarity, when ranking."""

_REFERRING = re.compile(
    r"\b(it|its|it's|he|him|his|she|her|they|them|their|this|that|these|those|there|the same|such|former|latter)\b", re.I
)


def printable(text: str) -> str:
    """The text with control characters and lone surrogates as spaces, and each run of white space as one space."""
    return " ".join(UNPRINTABLE.sub(" ", text).split())


def turns(history: Sequence[Turn | dict[str, str]]) -> list[tuple[str, str]]:
    """(role, content) of each turn, given as `Turn`s or as the chat's plain dicts."""
    return [(t["role"], t["content"]) if isinstance(t, dict) else (t.role, t.content) for t in history]


def standalone_question(question: str, history: Sequence[Turn | dict[str, str]]) -> str:
    """The question made self-contained for retrieval: a follow-up that refers back is joined to the last question.

    A base model cannot be trusted to rewrite questions, so follow-ups are detected by their referring words
    (pronouns, "and ...") or brevity and carry the previous user question along.
    """
    previous = [printable(content) for role, content in turns(history) if role == "user"]
    if not previous:
        return question
    refers_back = _REFERRING.search(question) or question.lower().startswith(("and ", "what about", "how about"))
    if refers_back or len(grounding.content_terms(question)) <= 1:
        return f"{previous[-1]} {question}"
    return question


def referred_to(question: str, history: Sequence[Turn | dict[str, str]]) -> str:
    """What a follow-up refers back to: the earlier question and the reply to it (empty for a question that stands
    alone). Naming that thing ("Shui On Group" for "What kind of company is it?") answers nothing."""
    if not history or standalone_question(question, history) == question:
        return ""
    said = turns(history)
    user = next((c for r, c in reversed(said) if r == "user"), "")
    reply = next((c for r, c in reversed(said) if r == "assistant"), "")
    return printable(f"{user} {reply}")


def answerable_sentences(passages: list[Document]) -> list[grounding.Sentence]:
    """The passages' sentences that may be quoted as answers: all but those giving orders (prompt injection)."""
    return [s for s in grounding.split_sentences(passages) if not grounding.is_instruction(s.text)]


@contextlib.contextmanager
def store_outages() -> Iterator[None]:
    """Store or transport errors become a `StoreError` that says answers resume when the store is back; any other
    error is a bug and goes up with its traceback."""
    try:
        yield
    except Exception as err:
        if not is_outage(err) or isinstance(err, StoreError):
            raise
        raise StoreError(
            f"The document store cannot be reached ({err.__class__.__name__}); answers resume when it is back."
        ) from None


class AnswerEngine:
    """Answers questions from the store with checked citations. Load once; `ask` and `stream` are thread-safe."""

    def __init__(self, settings: Settings, llm: BaseLanguageModel | None = None, verifier: Verifier | None = None) -> None:
        self.settings = settings
        self.embeddings = get_embeddings(settings)
        self.retriever = get_retriever(settings)
        self.matcher = grounding.TermMatcher(self.embeddings.embed_documents)
        self.llm = llm if llm is not None else get_llm(settings)
        self.none_reader = get_none_reader(settings) if llm is None or isinstance(llm, LlamaCppCompletion) else None
        template = (CHAT_MODEL_PREFIX if isinstance(self.llm, BaseChatModel) else "") + EXTRACT_ANSWER
        self.prompt = PromptTemplate.from_template(template)
        self.extract: Runnable = self.prompt | self.llm.bind(stop=EXTRACT_STOP) | StrOutputParser()
        self.multilingual = bool(getattr(self.embeddings, "multilingual", False))
        self.verifier = verifier
        if self.verifier is None and settings.answer_check == "verifier":
            self.verifier = Verifier.load(settings.verifier_path)
        self.threshold = settings.verifier_threshold
        if self.threshold is None:
            self.threshold = self.verifier.threshold if self.verifier else 0.5
        self.check: Verifier | None = None
        if settings.answer_check == "learned":
            self.check = Verifier.load(settings.answer_check_path, answer_check.FEATURES, "python -m app.train_answer_check")
        self.check_threshold = settings.answer_check_threshold
        if self.check_threshold is None:
            self.check_threshold = self.check.threshold if self.check else 0.5

    def warm_up(self) -> None:
        """Load the model weights and the chunk index (texts, embeddings, BM25) now instead of at the first question."""
        if hasattr(self.llm, "load"):
            self.llm.load()
        if self.none_reader is not None:
            self.none_reader.load()
        self.retriever.index.speller()  # loads the chunks, builds the BM25 index and the spelling corrector

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
        started = time.perf_counter()
        asked = language.detect(self.validate(question))
        read_as = None
        if asked in (language.SIMPLIFIED, language.TRADITIONAL):  # read as English words, then answered in English
            question = read_as = self.translate(question)
            reading = language.ENGLISH
        elif asked != language.ENGLISH and not self.multilingual:
            yield Answer(answer=unsupported(asked, self.settings.embedding_model), refused=True, citations=[],
                         timings=Timings(retrieve_ms=0.0, generate_ms=0.0, total_ms=round((time.perf_counter() - started) * 1000, 1)),
                         language=asked)
            return
        else:
            reading = asked
        question = self.normalize(question, reading)
        yield Progress(stage="retrieving", language=asked)
        parts = grounding.sub_questions(question)
        results: list[tuple[str, str, bool, list[Citation]]] = []
        retrieve_s = 0.0
        for part in parts:
            fact = self._document_fact(part, where)
            if fact:
                results.append((part, *fact))
                continue
            t0 = time.perf_counter()
            query, passages = self._retrieve(standalone_question(part, history), where)
            retrieve_s += time.perf_counter() - t0
            ranked = self._rank(query, answerable_sentences(passages))
            yield Progress(stage="reading", language=asked)
            if reading != language.ENGLISH:
                results.append((part, *self._answer_across(part, passages, ranked)))
                continue
            echoed = f"{part} {referred_to(part, history)}"
            by_rules = read_as is not None  # the learned check was fitted on English questions, not on readings
            answer, refused, cited = self._answer(part, query, passages, self._attempts(ranked, passages), echoed, by_rules)
            results.append((part, answer, refused, cited))
            if len(parts) == 1 and not refused and not grounding.names_in(query):
                for title, others in self._other_documents(passages, ranked, cited[0].source):
                    answer, refused, cited = self._answer(part, query, passages, [others], echoed, by_rules)
                    if not refused:
                        results.append((f"{title}:", answer, refused, cited))
                if len(results) > 1:  # several documents answer: each answer labelled with its document
                    first = results[0][3][0]
                    results[0] = (f"{first.title or first.source}:", *results[0][1:])
        answer, refused, cited = combine(results)
        answer = answer.replace(REFUSAL, language.texts(asked).refusal)
        total_s = time.perf_counter() - started
        timings = Timings(
            retrieve_ms=round(retrieve_s * 1000, 1), generate_ms=round((total_s - retrieve_s) * 1000, 1),
            total_ms=round(total_s * 1000, 1),
        )
        yield Answer(answer=answer, refused=refused, citations=cited, timings=timings, language=asked, read_as=read_as)

    def translate(self, question: str) -> str:
        """Stage "translate": a question in Chinese as English words (`app.translate`), their senses chosen by the
        corpus's own words."""
        with store_outages():
            speller = self.retriever.index.speller()
        return translate.gloss(grounding.question_proper(question), speller.uses)

    def normalize(self, question: str, asked: str = language.ENGLISH) -> str:
        """Stage "normalize": the question proper (instructions around it dropped), its typing mended against the
        corpus (misspellings, lower-case names, missing apostrophes: `app.spelling`; English questions only)."""
        question = grounding.question_proper(self.validate(question))
        if asked != language.ENGLISH:
            return question
        with store_outages():
            speller = self.retriever.index.speller()
        return spelling.as_typed_question(speller.correct(question))

    def _document_fact(self, question: str, where: dict[str, str] | None) -> tuple[str, bool, list[Citation]] | None:
        """Stage "document facts": a question about the document itself (author, publisher, date, title) answered
        from the header line where the loader found it (`app.facts`); None for any other question."""
        fact = facts.asks_about_document(question)
        if fact is None:
            return None
        chunks = self.retriever.index.documents
        if where:
            chunks = [c for c in chunks if all(c.metadata.get(k) == v for k, v in where.items())]
        found = facts.fact_citation(fact, chunks, question)
        if found is None:
            return None
        citation = Citation(
            source=found.source, title=found.title, chunk_id=found.chunk_id, quote=found.quote, start=found.start, end=found.end
        )
        return f"{found.answer} [1]", False, [citation]

    def judge_question(
        self, question: str, history: Sequence[Turn | dict[str, str]] = ()
    ) -> list[tuple[float, Candidate, dict[str, float | None]]]:
        """The judged candidates of a one-part question's first attempt (to fit the verifier, or to see why)."""
        question = self.normalize(question)
        query, passages = self._retrieve(standalone_question(question, history), None)
        ranked = self._rank(query, answerable_sentences(passages))
        return self.judge(question, query, passages, self._attempts(ranked, passages)[0])

    def weigh_question(
        self, question: str, history: Sequence[Turn | dict[str, str]] = ()
    ) -> list[list[tuple[float, answer_check.Option, Citation, dict[str, float | None]]]]:
        """Every attempt's weighed options for a one-part question, as `stream` would weigh them one attempt after
        the other (to fit the answer check, or to see why a question was answered or refused)."""
        question = self.normalize(question)
        query, passages = self._retrieve(standalone_question(question, history), None)
        ranked = self._rank(query, answerable_sentences(passages))
        echoed = f"{question} {referred_to(question, history)}"
        return [self.weigh(question, query, passages, a, echoed, n) for n, a in enumerate(self._attempts(ranked, passages))]

    def _retrieve(self, question: str, where: dict[str, str] | None) -> tuple[str, list[Document]]:
        """The query (initialisms spelled out) and its passages."""
        with store_outages():
            query = self.retriever.index.expand(question)
            return query, self.retriever.invoke(query, where=where)

    def _answer(
        self, question: str, query: str, passages: list[Document], attempts: list[list[tuple[grounding.Sentence, float]]],
        echoed: str | None = None, by_rules: bool = False,
    ) -> tuple[str, bool, list[Citation]]:
        """Check the candidates of each attempt (its best passage read by the model) until one passes: with the
        grounding rules (`RAG_ANSWER_CHECK=rules`, the default, and always when `by_rules`: a Chinese question's
        English reading), the learned answer check (`learned`) or the candidate verifier (`verifier`)."""
        for number, attempt in enumerate(attempts):
            if self.check is not None and not by_rules:
                weighed = self.weigh(question, query, passages, attempt, echoed, number)
                if weighed and weighed[0][0] >= self.check_threshold:
                    _, option, citation, _ = weighed[0]
                    return f"{option.text} [1]", False, [citation]
                continue
            if self.verifier is not None:
                judged = self.judge(question, query, passages, attempt)
                if judged and judged[0][0] >= self.threshold:
                    candidate = judged[0][1]
                    return f"{candidate.text} [1]", False, [self._cite(passages, [candidate.sentence])]
                continue
            worded = self._worded(question, query, passages, attempt, echoed)
            if worded:  # the sentence's wording answers it: no model read, and no veto of a span the model never chose
                return worded
            passage = passages[attempt[0][0].passage].page_content if attempt else ""
            completion = self._read(question, passage)[0] if attempt else None
            answer, refused, cited = self._ground_span(question, query, completion.text if completion else "", passages, attempt, echoed)
            if not refused:
                follow_up = bool(echoed) and echoed.strip() != question.strip()  # its words alone do not say what it asks
                if follow_up or not self._vetoed(question, passage):
                    return answer, refused, cited
                continue
            rescued = self._reread(question, query, passage, passages, attempt, echoed)
            if rescued is not None:
                return rescued
        return REFUSAL, True, []

    def _answer_across(
        self, question: str, passages: list[Document], ranked: list[tuple[grounding.Sentence, float]]
    ) -> tuple[str, bool, list[Citation]]:
        """Stages "read" and "verify" for a question in another language than English.

        The English checks compare the question's words with the passage's; across languages there are none to
        compare, and nothing may pass for want of words to check. The decision rests on the best sentence's
        similarity to the question (`RAG_CROSS_LANGUAGE_MIN_SIMILARITY`); the model reads only when it is reached.
        The reply is the model's span when it lies in that sentence, else the whole sentence: a quote, in the
        source's language."""
        if not ranked or ranked[0][1] < self.settings.cross_language_min_similarity:
            return REFUSAL, True, []
        sentence = ranked[0][0]
        completion = self._read(question, passages[sentence.passage].page_content)[0]
        candidate = grounding.clean_candidate(completion.text) if completion else ""
        found = grounding.locate_in_sentences(candidate, [sentence]) if candidate else None
        words = sentence.text[found[1] - sentence.start : found[2] - sentence.start] if found else sentence.text
        return f"{words} [1]", False, [self._cite(passages, [sentence])]

    def judge(
        self, question: str, query: str, passages: list[Document], ranked: list[tuple[grounding.Sentence, float]]
    ) -> list[tuple[float, Candidate, dict[str, float | None]]]:
        """Stages "propose" and "verify" on the passage of the best sentence: every candidate with the verifier's
        probability that it answers the question, and its features; most likely first."""
        if not ranked:
            return []
        index = ranked[0][0].passage
        passage = passages[index]
        completion, prompt = self._read(question, passage.page_content)
        neighbours = [grounding.Sentence(index, s.start, s.end, s.text) for s in answerable_sentences([passage])]
        candidates = propose(question, completion.text if completion else None, ranked, index, neighbours)
        if not candidates:
            return []
        scores: list[float | None] = [None] * len(candidates)
        if isinstance(self.llm, LlamaCppCompletion):
            scores = list(self.llm.first_token_logprobs(prompt, [" " + c.text for c in candidates]))
        text = passage.page_content + " " + passage.metadata.get("title", "")
        matches = list(self.matcher.matches(question, text).values()) or [1.0]
        evidence = Evidence(
            passage_rank=index, passage_score=float(passage.metadata.get("score", 0.0)),
            passage_coverage=grounding.coverage(question, text), word_match_min=min(matches),
            word_match_mean=sum(matches) / len(matches), names_missing=len(grounding.names_missing(query, text)),
            model_text=completion.text if completion else None,
            model_logprob=completion.logprob if completion else None,
            none_logprob=completion.none_logprob if completion else None,
        )
        judged = []
        for candidate, score in zip(candidates, scores, strict=True):
            values = features(question, candidate, evidence, score)
            judged.append((self.verifier.probability(values), candidate, values))
        return sorted(judged, key=lambda j: -j[0])

    def weigh(
        self, question: str, query: str, passages: list[Document], attempt: list[tuple[grounding.Sentence, float]],
        echoed: str | None = None, number: int = 0,
    ) -> list[tuple[float, answer_check.Option, Citation, dict[str, float | None]]]:
        """Stages "read" (twice) and "verify" (learned) on the passage of the attempt's best sentence: every option
        with the answer check's probability that it answers the question, its citation and features; most likely
        first (no answer check loaded: probability 0.5)."""
        options = self.options(question, query, passages, attempt, echoed, number)
        weighed = [(self.check.probability(values) if self.check else 0.5, option, citation, values) for option, citation, values in options]
        return sorted(weighed, key=lambda w: -w[0])

    def options(
        self, question: str, query: str, passages: list[Document], attempt: list[tuple[grounding.Sentence, float]],
        echoed: str | None = None, number: int = 0,
    ) -> list[tuple[answer_check.Option, Citation, dict[str, float | None]]]:
        """The passage read by the few-shot model and by the reading adapter; of each read, the grounding rules'
        answer (when they accept it) and the span where it stands in the passage, with their features."""
        if not attempt:
            return []
        index = attempt[0][0].passage
        passage = passages[index]
        text = passage.page_content + " " + passage.metadata.get("title", "")
        plain = self._read(question, passage.page_content)[0]
        adapted = self._adapter_completion(question, passage.page_content)
        matches = list(self.matcher.matches(question, text).values()) or [1.0]
        reading = answer_check.Reading(
            attempt=number, follow_up=bool(echoed) and echoed.strip() != question.strip(),
            expected=grounding.expected_type(question), names_missing=len(grounding.names_missing(query, text)),
            facts_missing=len(grounding.facts_missing(question, text)), word_match_min=min(matches),
            word_match_mean=sum(matches) / len(matches), passage_coverage=grounding.coverage(question, text),
            top_sentence_score=attempt[0][1], top_sentence_lead=attempt[0][1] - attempt[1][1] if len(attempt) > 1 else 0.0,
            passage_score=float(passage.metadata.get("score", 0.0)),
            plain_text=plain.text if plain else None, plain_logprob=plain.logprob if plain else None,
            plain_none_logprob=plain.none_logprob if plain else None, adapter_text=adapted.text if adapted else None,
            adapter_logprob=adapted.logprob if adapted else None, adapter_none_logprob=adapted.none_logprob if adapted else None,
            adapter_first_logprob=adapted.first_logprob if adapted else None,
        )
        sentences = [grounding.Sentence(index, s.start, s.end, s.text) for s in answerable_sentences([passage])]
        found: list[tuple[answer_check.Option, Citation, dict[str, float | None]]] = []
        seen: set[str] = set()
        for origin, raw in (("plain", reading.plain_text), ("adapter", reading.adapter_text)):
            for option, citation in self._read_options(question, query, raw, origin, passages, attempt, sentences, echoed):
                if option.text.lower() not in seen:
                    seen.add(option.text.lower())
                    found.append((option, citation, answer_check.features(option, reading)))
        return found

    def _read_options(
        self, question: str, query: str, raw: str | None, origin: str, passages: list[Document],
        attempt: list[tuple[grounding.Sentence, float]], sentences: list[grounding.Sentence], echoed: str | None,
    ) -> list[tuple[answer_check.Option, Citation]]:
        """One read's options: the rules' answer if they accept it, and the span where it stands (in the best
        sentences, else anywhere in the passage)."""
        candidate = grounding.clean_candidate(raw or "")
        if not candidate:
            return []
        ranking = [s for s, _ in attempt]
        where = grounding.locate_in_sentences(candidate, ranking[: grounding.TOP_SENTENCES])
        outside = where is None
        where = where or grounding.locate_in_sentences(candidate, sentences)
        kind = grounding.expected_type(question)

        def option(text: str, sentence_text: str, rules_pass: bool) -> answer_check.Option:
            return answer_check.Option(
                text=text, sentence_text=sentence_text, origin=origin, rules_pass=rules_pass,
                fits_type=grounding.fits_type(kind, candidate), adds_information=grounding.adds_information(candidate, question),
                sentence_rank=ranking.index(where[0]) if where and where[0] in ranking else len(ranking),
                sentence_answerable=bool(where) and self._answerable(question, query, where[0], passages),
                outside_best_sentences=bool(where) and outside,
            )

        out = []
        answer, refused, cited = self._ground(question, query, raw or "", passages, attempt, echoed)
        if not refused:
            out.append((option(answer.removesuffix(" [1]"), cited[0].quote, True), cited[0]))
        if where:
            sentence, start, end = where
            words = sentence.text[start - sentence.start : end - sentence.start]
            out.append((option(words, sentence.text, False), self._cite(passages, [sentence])))
        return out

    def _adapter_completion(self, question: str, passage: str, max_tokens: int | None = None) -> Completion | None:
        """The reading adapter's read of the passage: its best span (never "none") with its log-probabilities and
        that of "none". None without the adapter."""
        if self.none_reader is None:
            return None
        return self.none_reader.complete(
            EXTRACT_ANSWER_TUNED.format(passage=passage, question=question), EXTRACT_STOP, max_tokens=max_tokens, span_only=True
        )

    def _adapter_read(self, question: str, passage: str, max_tokens: int | None = None) -> tuple[str, float] | None:
        """The reading adapter's best span and how much more it would rather say "none":
        log P(" none") - log P(span's first token). None without the adapter."""
        completion = self._adapter_completion(question, passage, max_tokens)
        if completion is None or completion.first_logprob is None or completion.none_logprob is None:
            return None
        return completion.text, completion.none_logprob - completion.first_logprob

    def _vetoed(self, question: str, passage: str) -> bool:
        """Stage "verify", last check: the reading adapter (`python -m app.train_reader`, fitted on SQuAD tune)
        would rather answer "none" than its best span, by at least RAG_READER_NONE_MARGIN in log-probability."""
        read = self._adapter_read(question, passage, max_tokens=1)
        return read is not None and read[1] >= self.settings.reader_none_margin

    def _reread(
        self, question: str, query: str, passage: str, passages: list[Document],
        attempt: list[tuple[grounding.Sentence, float]], echoed: str | None,
    ) -> tuple[str, bool, list[Citation]] | None:
        """Stage "read" again, where the rules refused the plain model's span: the reading adapter's own span, if it is
        surer of that span than of "none" by RAG_READER_RESCUE_MARGIN, checked by the same rules (None: still refused).
        The adapter was trained on reworded questions too, where the few-shot model tends to echo the question."""
        read = self._adapter_read(question, passage) if attempt else None
        if read is None or read[1] >= self.settings.reader_rescue_margin:
            return None
        answer, refused, cited = self._ground_span(question, query, read[0], passages, attempt, echoed)
        return None if refused else (answer, refused, cited)

    def _read(self, question: str, passage: str) -> tuple[Completion | None, str]:
        """Stage "read": the model's span for the question in the passage (None when a remote model failed)."""
        prompt = self.prompt.format(passage=passage, question=question)
        if isinstance(self.llm, LlamaCppCompletion):
            return self.llm.complete(prompt, EXTRACT_STOP), prompt
        deadline = self.settings.llm_timeout  # a remote model that fails or times out leaves the other candidates
        try:
            raw = "".join(stream_within(self.extract, {"passage": passage, "question": question}, deadline))
        except Exception:  # noqa: BLE001
            return None, prompt
        return Completion(text=raw, logprob=None, none_logprob=None), prompt

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
        asked = np.array(self.embeddings.embed_query(query))  # the query's role and the passages' differ for e5
        vectors = np.array(self.embeddings.embed_documents([s.text for s in sentences]))
        scores = vectors @ asked + LEXICAL_WEIGHT * np.array([grounding.coverage(query, s.text) for s in sentences])
        order = np.argsort(-scores)
        return [(sentences[i], float(scores[i])) for i in order]

    def _ground(
        self, question: str, query: str, raw: str, passages: list[Document], ranked: list[tuple[grounding.Sentence, float]],
        echoed: str | None = None,
    ) -> tuple[str, bool, list[Citation]]:
        """Stage "verify" by the grounding rules: the answer the best sentences' wording gives (`_worded`), else the
        model's candidate checked against them (`_ground_span`)."""
        return self._worded(question, query, passages, ranked, echoed) or self._ground_span(
            question, query, raw, passages, ranked, echoed
        )

    def _ground_span(
        self, question: str, query: str, raw: str, passages: list[Document], ranked: list[tuple[grounding.Sentence, float]],
        echoed: str | None = None,
    ) -> tuple[str, bool, list[Citation]]:
        """The model's candidate, by the grounding rules: it must be found in the best sentences (or in a sentence that
        goes on from one of the two best by referring back to it: "It will form ...") of a passage that covers the
        question, and the words shown must add something to `echoed` (the question, and for a follow-up what it refers
        back to)."""
        kind = grounding.expected_type(question)
        sentences = [s for s, _ in ranked]
        best = sentences[: grounding.TOP_SENTENCES] + grounding.with_continuations(sentences[:2], sentences)[2:]
        candidate = grounding.clean_candidate(raw)
        if candidate and grounding.adds_information(candidate, question) and grounding.fits_type(kind, candidate):
            found = grounding.locate_in_sentences(candidate, best)
            if found and self._answerable(question, query, found[0], passages):
                sentence, start, end = found
                end = grounding.extend_with_parenthesis(sentence, start, end)
                words = sentence.text[start - sentence.start : end - sentence.start]
                if grounding.adds_information(words, echoed or question):
                    return f"{words} [1]", False, [self._cite(passages, [sentence])]
        if ranked:  # no usable candidate: the best sentence, only when it holds every word of the question
            sentence, score = ranked[0]
            if grounding.fits_type(kind, sentence.text) and score >= self.settings.min_support and self._answerable(
                question, query, sentence, passages, strict=True
            ):
                return f"{sentence.text} [1]", False, [self._cite(passages, [sentence])]
        return REFUSAL, True, []

    def _worded(
        self, question: str, query: str, passages: list[Document], ranked: list[tuple[grounding.Sentence, float]],
        echoed: str | None = None,
    ) -> tuple[str, bool, list[Citation]] | None:
        """The answer the wording of the two best sentences (and of a sentence that goes on from them by referring back)
        gives (`grounding.worded_answer`: "how many X", "over what time span", "who is <name>", "what kind of X"),
        under the passage checks; None for other questions. The names a follow-up's "it" may stand for are those of
        the conversation it refers back to (`echoed`: the earlier question and the reply, "Shui On Group.")."""
        sentences = [s for s, _ in ranked]
        names = grounding.names_in(f"{query} {echoed}" if echoed else query)
        for sentence in grounding.with_continuations(sentences[:2], sentences):
            span = grounding.worded_answer(question, sentence.text, names)
            if span and self._answerable(question, query, sentence, passages):
                return f"{sentence.text[span[0] : span[1]]} [1]", False, [self._cite(passages, [sentence])]
        return None

    def _answerable(self, question: str, query: str, sentence: grounding.Sentence, passages: list[Document], strict: bool = False) -> bool:
        """The passage around the sentence covers what the question asks about: it names every name the question
        (and the conversation it refers back to) names, and each content word of the question is in it or has a
        close word in it (strict: is in it)."""
        passage = passages[sentence.passage]
        text = passage.page_content + " " + passage.metadata.get("title", "")
        if grounding.names_missing(query, text) or grounding.facts_missing(question, text):
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


def unsupported(asked: str, model: str) -> str:
    """The answer (in English) to a question in a language the embedding model cannot read."""
    return (
        f"This question seems to be in {language.name(asked)}, and the embedding model in use ({model}) reads English "
        "only, so it cannot be answered reliably; please ask in English. (The service's owner can set "
        "RAG_EMBEDDING_MODEL=multilingual-e5-small for questions in other languages.)"
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

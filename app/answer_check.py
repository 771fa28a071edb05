"""Stage "verify", learned: the probability that an option answers the question, from both reads of the passage.

Each attempt reads its passage twice: the few-shot base model, and the copy with the reading adapter (trained to say
"none" on SQuAD 2.0's look-alike questions). Each read's span becomes up to two options: the answer the grounding
rules make of it (when they accept it), and the span where it stands in the passage. The grounding rules' verdict,
the gates they are built of (names and figures the passage lacks, question words without a close word in it, the
answer type) and the adapter's preference for "none" are features of one logistic regression, fitted by
`python -m app.train_answer_check` on the SQuAD 2.0 *tune* articles the adapter never saw (and the project's dev
question sets); the refusal threshold was chosen there too. Coefficients: `app/answer-check.json` (no pickle);
what it learned: `docs/answer-check.md`. `RAG_ANSWER_CHECK=learned` uses it; the default is still the grounding
rules, which it matches but does not beat on the dev sets (README, Evaluation).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from app.verifier import overlap

TYPES = ("name", "number", "date")

FEATURES = (
    "origin_adapter", "rules_pass", "fits_type", "adds_information", "sentence_rank", "sentence_answerable",
    "outside_best_sentences", "whole_sentence", "answer_words", "reads_agree",
    "adapter_margin", "adapter_margin_positive", "adapter_none_logprob", "adapter_logprob", "adapter_first_logprob",
    "plain_vs_none", "names_missing", "facts_missing", "word_match_min", "word_match_mean", "passage_coverage",
    "top_sentence_score", "top_sentence_lead", "passage_score", "attempt", "follow_up",
    *(f"type_{t}" for t in TYPES), "type_any",
)
"""What the engine knows of an option, its passage and both reads (README, Evaluation; docs/answer-check.md)."""


@dataclass(frozen=True)
class Reading:
    """What one attempt knows about its passage and both reads of it (shared by its options); None: unknown, e.g. a
    remote model gives no log-probabilities and has no adapter."""

    attempt: int
    follow_up: bool
    expected: str | None
    names_missing: int
    facts_missing: int
    word_match_min: float
    word_match_mean: float
    passage_coverage: float
    top_sentence_score: float
    top_sentence_lead: float
    passage_score: float
    plain_text: str | None
    plain_logprob: float | None
    plain_none_logprob: float | None
    adapter_text: str | None
    adapter_logprob: float | None
    adapter_none_logprob: float | None
    adapter_first_logprob: float | None


@dataclass(frozen=True)
class Option:
    """Words that could be shown as the answer, the sentence they are quoted from, and how they were found."""

    text: str
    sentence_text: str
    """The sentence it is quoted from (the whole citation)."""
    origin: str
    """'plain' (the few-shot model's read) or 'adapter' (the reading adapter's)."""
    rules_pass: bool
    """The grounding rules accept it (then `text` is their answer: the span, a count, or the whole sentence)."""
    fits_type: bool
    adds_information: bool
    sentence_rank: int
    """The read span's sentence in the attempt's ranking (0 = best); `outside_best_sentences` beyond the third."""
    sentence_answerable: bool
    """The rules' coverage check (names, figures, close words) passes for the span's sentence."""
    outside_best_sentences: bool


def _words(text: str) -> int:
    return len(re.findall(r"\w+", text))


def features(option: Option, reading: Reading) -> dict[str, float | None]:
    """The feature values of one option (None: unknown)."""
    margin = None
    if reading.adapter_none_logprob is not None and reading.adapter_first_logprob is not None:
        margin = reading.adapter_none_logprob - reading.adapter_first_logprob
    plain_vs_none = None
    if reading.plain_logprob is not None and reading.plain_none_logprob is not None:
        plain_vs_none = reading.plain_logprob - reading.plain_none_logprob
    values: dict[str, float | None] = {
        "origin_adapter": float(option.origin == "adapter"),
        "rules_pass": float(option.rules_pass),
        "fits_type": float(option.fits_type),
        "adds_information": float(option.adds_information),
        "sentence_rank": float(min(option.sentence_rank, 5)),
        "sentence_answerable": float(option.sentence_answerable),
        "outside_best_sentences": float(option.outside_best_sentences),
        "whole_sentence": float(option.text.strip() == option.sentence_text.strip()),
        "answer_words": math.log1p(_words(option.text)),
        "reads_agree": overlap(reading.plain_text or "", reading.adapter_text or "") if reading.adapter_text is not None else None,
        "adapter_margin": margin,
        "adapter_margin_positive": None if margin is None else max(margin, 0.0),
        "adapter_none_logprob": reading.adapter_none_logprob,
        "adapter_logprob": reading.adapter_logprob,
        "adapter_first_logprob": reading.adapter_first_logprob,
        "plain_vs_none": plain_vs_none,
        "names_missing": float(min(reading.names_missing, 3)),
        "facts_missing": float(min(reading.facts_missing, 3)),
        "word_match_min": reading.word_match_min,
        "word_match_mean": reading.word_match_mean,
        "passage_coverage": reading.passage_coverage,
        "top_sentence_score": reading.top_sentence_score,
        "top_sentence_lead": reading.top_sentence_lead,
        "passage_score": reading.passage_score,
        "attempt": float(reading.attempt),
        "follow_up": float(reading.follow_up),
    }
    values |= {f"type_{t}": float(reading.expected == t) for t in TYPES}
    values["type_any"] = float(reading.expected is None)
    return values

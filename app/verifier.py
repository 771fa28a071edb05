"""Stage "verify": the probability that a candidate answers the question, from a small model fitted on data.

It replaces a stack of hand-written gates (type patterns, names checks, word-similarity and support thresholds):
the same signals are now features of one logistic regression, fitted by `python -m app.train_verifier` on the
SQuAD 2.0 *tune* articles (and the project's old gold set), and the refusal threshold was chosen there too. The
fitted coefficients live in `app/verifier.json` (no pickle); `docs/verifier.md` reports what it learned.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from app.candidates import Candidate
from app.grounding import clean_candidate, content_terms, coverage, expected_type, fits_type

ORIGINS = ("model", "count", "name", "quantity", "date", "sentence")
TYPES = ("number", "date", "name", "other")

FEATURES = (
    "passage_rank", "passage_score", "sentence_rank", "sentence_score", "sentence_coverage", "passage_coverage",
    "word_match_min", "word_match_mean", "names_missing", "fits_type", "answer_words", "answer_echo",
    "model_logprob", "none_logprob", "model_margin", "candidate_logprob", "candidate_vs_none", "model_overlap",
    "model_said_none", *(f"origin_{o}" for o in ORIGINS), *(f"type_{t}" for t in TYPES),
    *(f"type_{t}_fits" for t in TYPES[:3]),
)
"""The signals the engine already computes about a candidate, its sentence, its passage and the model's view."""


class VerifierUnavailable(Exception):
    """The fitted verifier is missing or unreadable; the message names the command that rebuilds it."""


@dataclass(frozen=True)
class Evidence:
    """What one attempt knows about its passage and the model's reading of it (shared by its candidates)."""

    passage_rank: int
    passage_score: float
    passage_coverage: float
    word_match_min: float
    word_match_mean: float
    names_missing: int
    model_text: str | None
    model_logprob: float | None
    none_logprob: float | None


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def overlap(a: str, b: str) -> float:
    """Token F1 of two texts (as SQuAD scores answers)."""
    left, right = _words(a), _words(b)
    common = sum((Counter(left) & Counter(right)).values())
    if not common:
        return 0.0
    precision, recall = common / len(left), common / len(right)
    return 2 * precision * recall / (precision + recall)


def features(question: str, candidate: Candidate, evidence: Evidence, candidate_logprob: float | None) -> dict[str, float | None]:
    """The feature values of one candidate (None: unknown, e.g. a remote model gives no log-probabilities)."""
    kind = expected_type(question) or "other"
    text = candidate.text
    asked = content_terms(question)
    said = content_terms(text)
    model_said_none = evidence.model_text is not None and clean_candidate(evidence.model_text) is None
    values: dict[str, float | None] = {
        "passage_rank": float(evidence.passage_rank),
        "passage_score": evidence.passage_score,
        "sentence_rank": float(min(candidate.sentence_rank, 10)),
        "sentence_score": candidate.sentence_score,
        "sentence_coverage": coverage(question, candidate.sentence.text),
        "passage_coverage": evidence.passage_coverage,
        "word_match_min": evidence.word_match_min,
        "word_match_mean": evidence.word_match_mean,
        "names_missing": float(evidence.names_missing),
        "fits_type": float(fits_type(None if kind == "other" else kind, text)),
        "answer_words": math.log1p(len(_words(text))),
        "answer_echo": len(said & asked) / len(said) if said else 1.0,
        "model_logprob": evidence.model_logprob,
        "none_logprob": evidence.none_logprob,
        "model_margin": None if evidence.model_logprob is None or evidence.none_logprob is None
        else evidence.model_logprob - evidence.none_logprob,
        "candidate_logprob": candidate_logprob,
        "candidate_vs_none": None if candidate_logprob is None or evidence.none_logprob is None
        else candidate_logprob - evidence.none_logprob,
        "model_overlap": overlap(text, clean_candidate(evidence.model_text) or "") if evidence.model_text else 0.0,
        "model_said_none": float(model_said_none),
    }
    values |= {f"origin_{o}": float(candidate.origin == o) for o in ORIGINS}
    values |= {f"type_{t}": float(kind == t) for t in TYPES}
    values |= {f"type_{t}_fits": float(kind == t and bool(values["fits_type"])) for t in TYPES[:3]}
    return values


@dataclass(frozen=True)
class Verifier:
    """Logistic regression over standardized features; unknown values count as the training mean."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    """Answer when the best candidate's probability is at least this (chosen on the tune split)."""

    @classmethod
    def load(cls, path: Path, names: tuple[str, ...] = FEATURES, command: str = "python -m app.train_verifier") -> Verifier:
        """The fitted model at `path`, whose features must be `names` (the answer check's, or this verifier's);
        `command` rebuilds it."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            verifier = cls(
                names=tuple(data["features"]), mean=tuple(data["mean"]), scale=tuple(data["scale"]),
                coef=tuple(data["coef"]), intercept=float(data["intercept"]), threshold=float(data["threshold"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise VerifierUnavailable(
                f"The fitted answer check {path} is missing or unreadable ({err.__class__.__name__}); rebuild it with `{command}`."
            ) from None
        if set(verifier.names) != set(names) or not len(verifier.names) == len(verifier.mean) == len(verifier.coef):
            raise VerifierUnavailable(f"The fitted answer check {path} was fitted on other features; rebuild it with `{command}`.")
        return verifier

    def probability(self, values: dict[str, float | None]) -> float:
        z = self.intercept
        for name, mean, scale, coef in zip(self.names, self.mean, self.scale, self.coef, strict=True):
            value = values.get(name)
            if value is not None and math.isfinite(value):
                z += coef * (value - mean) / scale
        return 1.0 / (1.0 + math.exp(-z))

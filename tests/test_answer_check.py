"""The learned answer check (`app.answer_check`, `python -m app.train_answer_check`): its features, how training
decides per attempt, the fitted file, and its wiring into the chain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.answer_check import FEATURES, Option, Reading, features
from app.train_answer_check import answer_score, decide, matrix
from app.verifier import Verifier, VerifierUnavailable
from config import load_settings
from tests.conftest import run_cli


def reading(**change: object) -> Reading:
    values = dict(
        attempt=0, follow_up=False, expected="name", names_missing=0, facts_missing=0, word_match_min=0.9,
        word_match_mean=0.95, passage_coverage=1.0, top_sentence_score=1.1, top_sentence_lead=0.2, passage_score=1.3,
        plain_text=" Vincent Lo", plain_logprob=-0.1, plain_none_logprob=-8.0, adapter_text=" Vincent Lo",
        adapter_logprob=-0.2, adapter_none_logprob=-4.0, adapter_first_logprob=-0.5,
    )
    return Reading(**(values | change))  # type: ignore[arg-type]


def option(**change: object) -> Option:
    values = dict(
        text="Vincent Lo", sentence_text="It is necessary, said Vincent Lo, chairman of Shui On Group.", origin="plain",
        rules_pass=True, fits_type=True, adds_information=True, sentence_rank=0, sentence_answerable=True,
        outside_best_sentences=False,
    )
    return Option(**(values | change))  # type: ignore[arg-type]


def test_features_cover_both_reads_and_the_rules_verdict() -> None:
    values = features(option(), reading())
    assert set(values) == set(FEATURES)
    assert values["adapter_margin"] == pytest.approx(-3.5) and values["adapter_margin_positive"] == 0.0
    assert values["reads_agree"] == 1.0 and values["rules_pass"] == 1.0 and values["type_name"] == 1.0
    assert values["plain_vs_none"] == pytest.approx(7.9) and values["whole_sentence"] == 0.0
    doubtful = features(option(origin="adapter", rules_pass=False), reading(adapter_first_logprob=-6.0, facts_missing=5))
    assert doubtful["adapter_margin"] == pytest.approx(2.0) and doubtful["adapter_margin_positive"] == pytest.approx(2.0)
    assert doubtful["origin_adapter"] == 1.0 and doubtful["rules_pass"] == 0.0 and doubtful["facts_missing"] == 3.0


def test_a_remote_model_leaves_the_adapter_and_log_probabilities_unknown() -> None:
    values = features(option(), reading(adapter_text=None, adapter_logprob=None, adapter_none_logprob=None,
                                        adapter_first_logprob=None, plain_logprob=None, plain_none_logprob=None))
    unknown = {name for name, value in values.items() if value is None}
    assert unknown == {"reads_agree", "adapter_margin", "adapter_margin_positive", "adapter_none_logprob",
                       "adapter_logprob", "adapter_first_logprob", "plain_vs_none"}


def test_training_answers_from_the_first_attempt_that_reaches_the_threshold() -> None:
    rows = [
        {"golds": ["Vincent Lo"], "scoring": "contains", "attempts": [[{"text": "Shui On", "features": {}}],
                                                                     [{"text": "Vincent Lo", "features": {}}]]},
        {"golds": [], "scoring": "f1", "attempts": [[{"text": "1998", "features": {}}]]},
    ]
    x, y, owner, where = matrix(rows)
    assert x.shape == (3, len(FEATURES)) and list(y) == [0, 1, 0] and list(owner) == [0, 0, 1]
    both = decide(rows, np.array([0.6, 0.9, 0.2]), where, 0.5)  # the first attempt answers, wrongly
    assert both["hasans_f1"] == 0.0 and both["noans_accuracy"] == 1.0 and both["refusal_precision"] == 1.0
    second = decide(rows, np.array([0.4, 0.9, 0.7]), where, 0.5)  # the first is refused, the second answers
    assert second["hasans_f1"] == 1.0 and second["noans_accuracy"] == 0.0 and second["overall_f1"] == 0.5
    assert answer_score(rows[0], "Mr Vincent Lo said") == 1.0 and answer_score(rows[1], "1998") == 0.0


def test_the_fitted_check_is_shipped_and_a_stale_one_names_its_command(tmp_path: Path) -> None:
    fitted = Verifier.load(load_settings().answer_check_path, FEATURES, "python -m app.train_answer_check")
    assert 0.0 < fitted.threshold < 1.0 and set(fitted.names) == set(FEATURES)
    stale = tmp_path / "answer-check.json"
    stale.write_text(json.dumps({"features": ["other"], "mean": [0], "scale": [1], "coef": [1], "intercept": 0, "threshold": 0.5}))
    for path in (tmp_path / "missing.json", stale):
        with pytest.raises(VerifierUnavailable, match="python -m app.train_answer_check"):
            Verifier.load(path, FEATURES, "python -m app.train_answer_check")


@pytest.mark.slow
def test_the_learned_check_answers_with_a_cited_option_and_its_threshold_refuses(article_engine, monkeypatch) -> None:  # noqa: ANN001
    """RAG_ANSWER_CHECK=learned, wired into the chain: the passage is read twice and the reads become options (one
    when they agree); the best one is the reply (in its cited sentence) when the check is sure enough, and nothing
    passes a threshold of 1."""
    engine = article_engine
    fitted = Verifier.load(load_settings().answer_check_path, FEATURES, "python -m app.train_answer_check")
    monkeypatch.setattr(engine, "check", fitted)
    monkeypatch.setattr(engine, "check_threshold", fitted.threshold)
    assert engine.none_reader is not None
    question = "Who is the chairman of Shui On Group?"
    weighed = engine.weigh_question(question)
    options = [item for attempt in weighed for item in attempt]
    assert options and {option.origin for _, option, _, _ in options} <= {"plain", "adapter"}
    for probability, option, citation, values in options:
        assert 0.0 <= probability <= 1.0 and set(values) == set(FEATURES) and citation.quote == option.sentence_text
        assert values["adapter_margin"] is not None and values["reads_agree"] is not None  # both reads were made
    answered = engine.ask(question)
    assert not answered.refused and answered.answer.removesuffix(" [1]") in answered.citations[0].quote
    monkeypatch.setattr(engine, "check_threshold", 1.0)
    assert engine.ask(question).refused


@pytest.mark.slow
def test_the_app_does_not_start_without_its_answer_check(tmp_path: Path) -> None:
    env = {"RAG_ANSWER_CHECK": "learned", "RAG_ANSWER_CHECK_PATH": str(tmp_path / "missing.json")}
    run = run_cli("app.ask", "Who chairs Shui On Group?", env=env)
    assert run.returncode == 1 and run.stderr.count("\n") == 1 and "python -m app.train_answer_check" in run.stderr

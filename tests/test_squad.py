"""A fixed sample of 100 SQuAD 2.0 questions from the *test* articles (never tuned on), answered over all 20 articles
as one corpus: floors set just below the measured figures, so that a later change cannot quietly undo them."""

from __future__ import annotations

import pytest

from app.evaluate import evaluate_squad
from config import load_settings
from tests.conftest import SQUAD

pytestmark = pytest.mark.slow  # 20 articles ingested, 100 questions through the model

FLOORS = {"overall_f1": 0.33, "token_f1": 0.28, "refusal_accuracy": 0.36, "retrieval_recall_at_5": 0.97, "quotes_verbatim": 1.0}
"""Measured on this sample with the default rules check: overall F1 0.360, HasAns F1 0.322, NoAns accuracy 0.415,
recall@5 0.983 (the Makefile's portable build; a native build gave 0.369, 0.337, 0.415), less a margin. The answer-quality issue's targets (overall F1
0.55, HasAns F1 0.40, NoAns 0.65 on 300 questions) are not met yet: README, Evaluation."""


@pytest.fixture(scope="module")
def squad_summary(tmp_path_factory: pytest.TempPathFactory) -> dict:
    store = tmp_path_factory.mktemp("squad") / "chroma"
    return evaluate_squad(load_settings(), SQUAD, "test", 100, 0, store).summary()


@pytest.mark.parametrize("metric", sorted(FLOORS))
def test_squad_test_sample_stays_above_its_floor(squad_summary: dict, metric: str) -> None:
    assert squad_summary[metric] >= FLOORS[metric], squad_summary

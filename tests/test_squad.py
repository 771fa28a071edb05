"""A fixed sample of 100 SQuAD 2.0 questions from the *test* articles (never tuned on), answered over all 20 articles
as one corpus: floors set just below the measured figures, so that a later change cannot quietly undo them.

The sample is evaluated by `python -m app.evaluate --squad` (the same `evaluate_squad` with the same settings, real
Chroma and the real models) in a process started when the run starts, at the lowest CPU priority (tests/background.py):
it uses the cores the rest of the suite leaves idle, and these tests collect its summary."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SQUAD

pytestmark = pytest.mark.slow  # 20 articles ingested, 100 questions through the model

FLOORS = {"overall_f1": 0.42, "token_f1": 0.25, "refusal_accuracy": 0.64, "retrieval_recall_at_5": 0.97, "quotes_verbatim": 1.0}
"""Measured on this sample (the first 100 of the 300-question run) with the default rules check, the reading adapter
and the figure/title and any-century date checks: overall F1 0.465, HasAns F1 0.297, NoAns accuracy 0.707, recall@5
0.983 (the Makefile's portable build; 0.409, 0.269, 0.610 before those checks), less a margin of about 0.05. The
answer-quality issue's targets (overall F1 0.55, HasAns F1 0.40, NoAns 0.65 on 300 questions) are not met yet:
README, Evaluation."""

BACKGROUND_JOBS = {
    "squad-test-sample": lambda folder: [
        "-m", "app.evaluate", str(SQUAD), "--squad", "--split", "test", "--sample", "100", "--seed", "0",
        "--store", str(folder / "chroma"),
    ],
}


@pytest.fixture(scope="module")
def squad_summary(background) -> dict:  # noqa: ANN001
    run = background("squad-test-sample")
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


@pytest.mark.parametrize("metric", sorted(FLOORS))
def test_squad_test_sample_stays_above_its_floor(squad_summary: dict, metric: str) -> None:
    assert squad_summary[metric] >= FLOORS[metric], squad_summary

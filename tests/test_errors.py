"""Outages and bugs told apart: a store that cannot be reached is a 503 with Retry-After and says so; a bug anywhere
else is a 500 (chat: "Something went wrong") with a short error id that the logged traceback carries."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from app.api import create_api
from app.chain import AnswerEngine

QUESTION = {"question": "Who is the chairman of Shui On Group?"}


@pytest.fixture(scope="module")
def engine(article_engine: AnswerEngine) -> AnswerEngine:
    return article_engine


@pytest.fixture
def client(engine: AnswerEngine) -> Iterator[TestClient]:
    with TestClient(create_api(engine, engine.settings)) as client:
        yield client


def bug_in_retrieval(*args: object, **kwargs: object) -> float:
    return 1 / 0


def test_a_bug_in_retrieval_is_a_500_with_an_id_that_the_log_carries(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("app.retrieval.proximity", bug_in_retrieval)
    with caplog.at_level(logging.ERROR, logger="app"):
        response = client.post("/api/ask", json=QUESTION)
    assert response.status_code == 500 and "retry-after" not in response.headers
    body = response.json()
    assert body["error"].startswith("Something went wrong (error id ") and "store" not in body["error"]
    logged = [r for r in caplog.records if body["error_id"] in r.getMessage()]
    assert logged and logged[0].exc_info and logged[0].exc_info[0] is ZeroDivisionError, "the traceback is logged"


def test_a_store_outage_is_a_503_with_retry_after(client: TestClient, engine: AnswerEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object, **kwargs: object) -> None:
        raise httpx.ConnectError("Connection refused")

    monkeypatch.setattr(engine.retriever.index, "scores", refused)
    response = client.post("/api/ask", json=QUESTION)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "document store cannot be reached" in response.json()["error"]


def test_the_chat_shows_a_bug_with_its_id_and_an_outage_as_one(engine: AnswerEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.ui.web import LOOKING, chat_replies

    monkeypatch.setattr("app.retrieval.proximity", bug_in_retrieval)
    shown = [text for text, _ in chat_replies(engine, QUESTION["question"], [])]
    assert shown[0] == LOOKING and shown[-1].startswith("Something went wrong (error id ")
    monkeypatch.undo()

    def timed_out(*args: object, **kwargs: object) -> None:
        raise TimeoutError("the store did not answer")

    monkeypatch.setattr(engine.retriever.index, "scores", timed_out)
    shown = [text for text, _ in chat_replies(engine, QUESTION["question"], [])]
    assert "document store cannot be reached" in shown[-1]


def test_the_chat_shows_only_progress_then_the_checked_answer(engine: AnswerEngine) -> None:
    from app.ui.web import LOOKING, chat_replies

    for question in ("How tall is the Shanghai Tower?", "Who is the chairman of Shui On Group?"):
        shown = [text for text, _ in chat_replies(engine, question, [])]
        assert shown[:-1] == [LOOKING] * (len(shown) - 1) and shown[-1] != LOOKING

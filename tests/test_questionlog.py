"""The question log, feedback and insights (issue 14, items 2-4), each log test against SQLite and a real PostgreSQL
server (Debian's binaries, started for the session by `tests/postgres.py`).

Routes run in-process (FastAPI's TestClient over `create_api`); what only needs the log seeds it directly, so the
fast tests ask the model nothing. The tests that need real answers are marked slow, apart from one."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from starlette.testclient import TestClient

from app.api import create_api
from app.chain import Answer, AnswerEngine, Citation, Timings
from app.questionlog import QuestionLog, database_url, new_answer_id, open_question_log, utcnow
from config import Settings, load_settings
from tests.postgres import PostgresServer
from vectorstore import get_embeddings

ADMIN = "admin-token-for-tests"
ANSWERED = "Who is the chairman of Shui On Group?"
NOT_IN_SOURCE = "What is the capital of France?"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty log database: a SQLite file, or a new database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'questions.sqlite'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def question_log(db_url: str) -> Iterator[QuestionLog]:
    log = QuestionLog(db_url, retention_days=90)
    yield log
    log.close()


def answer(text: str = "Vincent Lo [1]", refused: bool = False, total_ms: float = 500.0) -> Answer:
    citations = [] if refused else [Citation(source="data/a.txt", title="A", chunk_id="c1", quote="Vincent Lo", start=3, end=13)]
    return Answer(answer=text, refused=refused, citations=citations, timings=Timings(retrieve_ms=1, generate_ms=total_ms - 1, total_ms=total_ms))


def table(url: str) -> list[dict[str, Any]]:
    """Every row of the log, read with a connection of its own (not the app's)."""
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(text("SELECT * FROM answered_questions ORDER BY asked_at"))]
    finally:
        engine.dispose()


class EmbeddingsOnly:
    """Stands in for the engine where only its embedding model is used (the insights group questions with it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def embeddings(self) -> Any:
        return get_embeddings(self.settings)


def api_client(settings: Settings) -> TestClient:
    """The API in-process, over no answer engine: these tests ask no question."""
    return TestClient(create_api(EmbeddingsOnly(settings), settings))  # type: ignore[arg-type]


# --- the log itself ---------------------------------------------------------------------------------------------


def test_record_and_feedback_round_trip(question_log: QuestionLog, db_url: str) -> None:
    answer_id = question_log.record(ANSWERED, answer(), "chat")
    assert answer_id and question_log.feedback(answer_id, "up")
    assert question_log.feedback(answer_id, "down", "wrong person")
    assert not question_log.feedback("no-such-id", "up") and not question_log.feedback("bad id \ud800", "up")
    (row,) = table(db_url)
    assert (row["id"], row["entry"], row["question"], row["answer"]) == (answer_id, "chat", ANSWERED, "Vincent Lo [1]")
    assert not row["refused"] and row["latency_ms"] == 500.0 and row["rating"] == "down" and row["comment"] == "wrong person"
    sources = row["sources"] if isinstance(row["sources"], list) else json.loads(row["sources"])
    assert sources == [{"source": "data/a.txt", "title": "A", "start": 3, "end": 13}]
    assert question_log.feedback(answer_id, None) and table(db_url)[0]["rating"] is None, "a thumb taken back clears the rating"


def test_text_any_database_refuses_is_stored_cleaned(question_log: QuestionLog, db_url: str) -> None:
    """NUL (PostgreSQL refuses it in text) and lone surrogates (from JSON escapes) do not lose the row."""
    answer_id = question_log.record("Who\x00 is \ud800 he?", answer(), "api")
    assert answer_id and question_log.feedback(answer_id, "down", "no\x00pe \udfff")
    (row,) = table(db_url)
    assert row["question"] == "Who is ? he?" and row["comment"] == "nope ?"


def test_retention_deletes_old_rows(db_url: str) -> None:
    log = QuestionLog(db_url, retention_days=30)
    now = utcnow()
    old = log.record("asked long ago", answer(), "api", now=now - timedelta(days=31))
    kept = log.record("asked last week", answer(), "api", now=now - timedelta(days=7))
    assert {r["id"] for r in table(db_url)} == {old, kept}
    assert log.purge() == 1 and [r["id"] for r in table(db_url)] == [kept]
    log.record("again long ago", answer(), "api", now=now - timedelta(days=45))
    log.close()
    reopened = QuestionLog(db_url, retention_days=30)  # start-up purges too
    assert [r["question"] for r in table(db_url)] == ["asked last week"]
    reopened.close()


def test_questions_and_refusals_per_day(question_log: QuestionLog) -> None:
    now = utcnow()
    for days_ago, refused in ((0, False), (0, True), (0, True), (2, False)):
        question_log.record("q", answer(refused=refused), "widget", now=now - timedelta(days=days_ago))
    counts = question_log.per_day(now - timedelta(days=5))
    assert counts[now.strftime("%Y-%m-%d")] == (3, 2)
    assert counts[(now - timedelta(days=2)).strftime("%Y-%m-%d")] == (1, 0) and len(counts) == 2


def test_the_default_log_is_a_sqlite_file_beside_the_store(tmp_path: Path) -> None:
    settings = load_settings(chroma_path=tmp_path / "chroma")
    assert database_url(settings) == f"sqlite:///{tmp_path / 'questions.sqlite'}"
    assert open_question_log(load_settings(chroma_path=tmp_path / "chroma", question_log=False)) is None


def test_a_bad_database_url_is_one_line_at_start_up(tmp_path: Path) -> None:
    for url, words in (("not a url", "not a database URL"), ("postgresql+psycopg2://u@h/db", "no installed driver")):
        with pytest.raises(SystemExit) as exit_:
            load_settings(database_url=url)
        assert str(exit_.value).startswith("error: RAG_DATABASE_URL: ") and words in str(exit_.value)
    secret = load_settings(database_url="postgresql+psycopg://user:s3cret@db.example/log")
    assert "s3cret" not in repr(secret) and "s3cret" not in str(secret.model_dump())


# --- POST /api/feedback -----------------------------------------------------------------------------------------


def test_feedback_good_and_bad_bodies(db_url: str, tmp_path: Path) -> None:
    settings = load_settings(chroma_path=tmp_path / "chroma", database_url=db_url)
    with api_client(settings) as client:
        answer_id = client.app.state.question_log.record(NOT_IN_SOURCE, answer("The source does not say.", refused=True), "api")
        ok = client.post("/api/feedback", json={"answer_id": answer_id, "rating": "down", "comment": "It is Paris."})
        assert ok.status_code == 200 and ok.json() == {"answer_id": answer_id, "rating": "down", "comment": "It is Paris."}
        assert client.post("/api/feedback", json={"answer_id": answer_id, "rating": "up"}).status_code == 200
        row = table(db_url)[0]
        assert row["rating"] == "up" and row["comment"] == "It is Paris.", "a new rating keeps the earlier comment"
        unknown = client.post("/api/feedback", json={"answer_id": "does-not-exist", "rating": "up"})
        assert unknown.status_code == 404 and "answer_id" in unknown.json()["error"]
        for body, words in (
            ({"answer_id": answer_id, "rating": "meh"}, "rating"),
            ({"answer_id": answer_id}, "rating"),
            ({"rating": "up"}, "answer_id"),
            ({"answer_id": answer_id, "rating": "up", "comment": "x" * 2001}, "comment"),
            ({"answer_id": 42, "rating": "up"}, "answer_id"),
            ([answer_id, "up"], "'answer_id' and 'rating'"),
        ):
            bad = client.post("/api/feedback", json=body)
            assert bad.status_code == 422 and words in bad.json()["error"], (body, bad.text)
        not_json = client.post("/api/feedback", content=b"{nope", headers={"Content-Type": "application/json"})
        assert not_json.status_code == 400 and "error" in not_json.json()
    assert table(db_url)[0]["rating"] == "up", "bad bodies changed nothing"


def test_feedback_follows_the_token_and_rate_rules_of_ask(tmp_path: Path) -> None:
    settings = load_settings(chroma_path=tmp_path / "chroma", api_token="api-secret", rate_limit="3/minute")
    body = {"answer_id": "unknown", "rating": "up"}
    with api_client(settings) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Origin": "http://testserver"}):
            refused = client.post("/api/feedback", json=body, headers=headers)
            assert refused.status_code == 401 and "RAG_API_TOKEN" in refused.json()["error"]
        token = {"Authorization": "Bearer api-secret"}
        assert [client.post("/api/feedback", json=body, headers=token).status_code for _ in range(3)] == [404] * 3
        limited = client.post("/api/feedback", json=body, headers=token)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert client.post("/api/ask", json=[1], headers=token).status_code == 422, "questions have a budget of their own"


# --- /insights ----------------------------------------------------------------------------------------------------


def seed(log: QuestionLog) -> dict[str, str]:
    """A week of questions: answered, refused in several wordings, one with markup, thumbs up and down."""
    now = utcnow()
    ids = {}
    for days_ago, question, refused, ms in (
        (0, ANSWERED, False, 400.0), (0, "Who is the mayor of Shanghai?", True, 300.0),
        (0, "who is shanghai's mayor", True, 320.0), (1, "Who is the mayor of Shanghai?", True, 310.0),
        (1, "Will it rain tomorrow?", True, 290.0), (2, "<script>alert('q')</script> What is HKU?", True, 900.0),
        (3, "=HYPERLINK(\"http://evil.example\")", False, 2500.0),
    ):
        ids[question] = log.record(question, answer("The source does not say." if refused else "Vincent Lo [1]", refused, ms), "api", now=now - timedelta(days=days_ago))
    log.feedback(ids[ANSWERED], "down", "<b>Wrong</b> person & company")
    log.feedback(ids["Will it rain tomorrow?"], "up")
    return ids


def test_insights_need_the_admin_token(db_url: str, tmp_path: Path) -> None:
    with api_client(load_settings(chroma_path=tmp_path / "chroma", database_url=db_url)) as client:
        for path in ("/insights", "/insights/log.csv"):
            assert client.get(path, headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 404, "no token set: no page"
    settings = load_settings(chroma_path=tmp_path / "chroma", database_url=db_url, admin_token=ADMIN)
    with api_client(settings) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN}):
            page = client.get("/insights", headers=headers)
            assert page.status_code == 401 and page.headers["www-authenticate"] == "Bearer" and "<form" in page.text
            assert client.get("/insights/log.csv", headers=headers).status_code == 401
            assert ADMIN not in page.text
        assert client.get("/insights", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200


def test_insights_page_shows_the_figures_escaped(db_url: str, tmp_path: Path) -> None:
    settings = load_settings(chroma_path=tmp_path / "chroma", database_url=db_url, admin_token=ADMIN)
    with api_client(settings) as client:
        seed(client.app.state.question_log)
        page = client.get("/insights", headers={"Authorization": f"Bearer {ADMIN}"}, params={"days": 7})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<b>7</b><span>questions answered</span>" in html and "<b>1.0</b><span>questions per day</span>" in html
    assert "<b>71%</b><span>refused" in html and "<b>14%</b><span>thumbed down (1 of 2 rated)" in html
    assert "<b>320 ms</b><span>median latency</span>" in html and "<b>2.02 s</b><span>95th percentile" in html
    # the mayor asked three times in two wordings is one group, first; the weather question its own
    groups = html.split("Most asked questions")[1].split("Recent thumbs-down")[0]
    assert "<td>3</td><td>Who is the mayor of Shanghai?</td><td class=\"muted\">who is shanghai&#39;s mayor</td>" in groups
    assert "<td>1</td><td>Will it rain tomorrow?</td>" in groups and ANSWERED not in groups
    # user text is escaped everywhere: no markup of theirs survives
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;q&#39;)&lt;/script&gt;" in html
    assert "<b>Wrong</b>" not in html and "&lt;b&gt;Wrong&lt;/b&gt; person &amp; company" in html
    # the chart: inline SVG, one bar per day with its counts, no script or outside resource
    assert html.count("<svg") == 1 and html.count("questions, ") == 7 and "<script" not in html
    today = utcnow().strftime("%Y-%m-%d")
    assert f"<title>{today}: 3 questions, 2 refused</title>" in html
    assert "http://" not in html.replace("http://evil.example", "") and "https://" not in html


def test_sign_in_form_sets_a_session_cookie(tmp_path: Path) -> None:
    settings = load_settings(chroma_path=tmp_path / "chroma", admin_token=ADMIN)
    with api_client(settings) as client:
        wrong = client.post("/insights/sign-in", data={"token": "guess"}, follow_redirects=False)
        assert wrong.status_code == 401 and "not the admin token" in wrong.text and "set-cookie" not in wrong.headers
        signed = client.post("/insights/sign-in", data={"token": ADMIN}, follow_redirects=False)
        assert signed.status_code == 303 and ADMIN not in signed.headers["set-cookie"]
        assert "httponly" in signed.headers["set-cookie"].lower() and "samesite=strict" in signed.headers["set-cookie"].lower()
        assert client.get("/insights").status_code == 200 and client.get("/insights/log.csv").status_code == 200
        client.post("/insights/sign-out", follow_redirects=False)
        assert client.get("/insights").status_code == 401


def test_guessing_the_admin_token_is_stopped_after_a_few_tries(tmp_path: Path) -> None:
    settings = load_settings(chroma_path=tmp_path / "chroma", admin_token=ADMIN)
    with api_client(settings) as client:
        for attempt in range(5):
            assert client.post("/insights/sign-in", data={"token": f"guess-{attempt}"}).status_code == 401
        stopped = client.post("/insights/sign-in", data={"token": "guess-5"}, follow_redirects=False)
        assert stopped.status_code == 429 and int(stopped.headers["Retry-After"]) > 0
        assert "Too many wrong tokens" in stopped.text and "Traceback" not in stopped.text
        # even the right token waits: otherwise the 429 would only slow guesses down, not stop them
        assert client.post("/insights/sign-in", data={"token": ADMIN}, follow_redirects=False).status_code == 429
        # nor may the guessing go on through the header
        assert client.get("/insights/log.csv", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 429
    with api_client(settings) as client:  # a wrong bearer header is a guess too
        for attempt in range(5):
            assert client.get("/insights/log.csv", headers={"Authorization": f"Bearer guess-{attempt}"}).status_code == 401
        assert client.get("/insights", headers={"Authorization": "Bearer guess-5"}).status_code == 429


def test_answer_ids_never_start_like_a_formula(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CSV export quotes cells that start like a formula ("-..."); an id so quoted would not match the log."""
    drawn = iter(["-zsZJ_E0jqZ1T5LT", "-a", "zsZJ_E0jqZ1T5LT"])
    monkeypatch.setattr("app.questionlog.secrets.token_urlsafe", lambda n: next(drawn))
    assert new_answer_id() == "zsZJ_E0jqZ1T5LT"


def test_csv_export_of_the_log(db_url: str, tmp_path: Path) -> None:
    settings = load_settings(chroma_path=tmp_path / "chroma", database_url=db_url, admin_token=ADMIN)
    with api_client(settings) as client:
        ids = seed(client.app.state.question_log)
        response = client.get("/insights/log.csv", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 7 and set(rows[0]) == {
        "id", "asked_at", "entry", "question", "answer", "refused", "sources", "latency_ms", "rating", "comment", "rated_at"
    }
    by_id = {r["id"]: r for r in rows}
    chairman = by_id[ids[ANSWERED]]
    assert chairman["rating"] == "down" and chairman["comment"] == "<b>Wrong</b> person & company"
    assert json.loads(chairman["sources"])[0]["source"] == "data/a.txt" and chairman["asked_at"].endswith("Z")
    assert by_id[ids['=HYPERLINK("http://evil.example")']]["question"].startswith("'="), "no formula runs in a spreadsheet"


# --- logging from the entry points --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(article_engine: AnswerEngine) -> AnswerEngine:
    return article_engine


def assert_no_address_or_token(url: str, *secrets: str) -> None:
    """No column is meant for an address or a token, and no stored value holds one."""
    engine = create_engine(url)
    columns = {c["name"] for c in inspect(engine).get_columns("answered_questions")}
    engine.dispose()
    assert not {c for c in columns if any(w in c for w in ("ip", "addr", "host", "client", "token", "user"))}, columns
    stored = json.dumps(table(url), default=str)
    for secret in secrets:
        assert secret not in stored, secret


@pytest.mark.slow
def test_ask_returns_an_answer_id_and_logs_no_address(engine: AnswerEngine, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'questions.sqlite'}"
    settings = load_settings(chroma_path=engine.settings.chroma_path, database_url=url, api_token="api-secret")
    headers = {"Authorization": "Bearer api-secret", "X-Forwarded-For": "203.0.113.9", "User-Agent": "agent-under-test/1.0"}
    with TestClient(create_api(engine, settings), client=("198.51.100.7", 50000)) as client:
        body = client.post("/api/ask", json={"question": NOT_IN_SOURCE}, headers=headers).json()
        assert {"answer", "refused", "citations", "timings", "answer_id"} <= set(body) and body["refused"]
        assert client.post("/api/feedback", json={"answer_id": body["answer_id"], "rating": "down"}, headers=headers).status_code == 200
    (row,) = table(url)
    assert (row["id"], row["entry"], row["question"], bool(row["refused"]), row["rating"]) == (body["answer_id"], "api", NOT_IN_SOURCE, True, "down")
    assert row["latency_ms"] == body["timings"]["total_ms"]
    assert_no_address_or_token(url, "198.51.100.7", "203.0.113.9", "api-secret", "agent-under-test")


@pytest.mark.slow
def test_ask_logs_the_answer_and_its_sources_in_postgresql(engine: AnswerEngine, postgres: PostgresServer) -> None:
    url = postgres.new_database()
    settings = load_settings(chroma_path=engine.settings.chroma_path, database_url=url)
    with TestClient(create_api(engine, settings), client=("198.51.100.7", 50000)) as client:
        body = client.post("/api/ask", json={"question": ANSWERED}, headers={"X-Forwarded-For": "203.0.113.9"}).json()
    (row,) = table(url)
    assert row["id"] == body["answer_id"] and row["answer"] == body["answer"] and not row["refused"]
    assert row["sources"] == [{k: c[k] for k in ("source", "title", "start", "end")} for c in body["citations"]]
    assert_no_address_or_token(url, "198.51.100.7", "203.0.113.9")


@pytest.mark.slow
def test_nothing_is_stored_with_the_log_off(engine: AnswerEngine, tmp_path: Path) -> None:
    from app.ui.web import chat_replies

    store = tmp_path / "store" / "chroma"
    settings = load_settings(chroma_path=store, question_log=False, admin_token=ADMIN)
    with TestClient(create_api(engine, settings)) as client:
        body = client.post("/api/ask", json={"question": NOT_IN_SOURCE}).json()
        assert body["answer_id"] is None and body["refused"]
        assert client.post("/api/feedback", json={"answer_id": "x", "rating": "up"}).status_code == 404
        assert "is off" in client.get("/insights", headers={"Authorization": f"Bearer {ADMIN}"}).text
        assert client.app.state.question_log is None
    shown = [reply for reply, _ in chat_replies(engine, NOT_IN_SOURCE, [], None)]
    assert isinstance(shown[-1], str), "no log id on the answer"
    assert not list(tmp_path.rglob("*.sqlite*")), "no database file was made"


@pytest.mark.slow
def test_chat_and_widget_log_their_entry_and_thumbs(engine: AnswerEngine, db_url: str) -> None:
    import gradio as gr

    from app.ui.feedback import answer_id_at, rate
    from app.ui.web import chat_replies

    log = QuestionLog(db_url, 90)
    for entry in ("chat", "widget"):
        *progress, (reply, sources) = list(chat_replies(engine, NOT_IN_SOURCE, [], log, entry))
        assert isinstance(reply, gr.ChatMessage) and reply.content == "The source does not say." and "Not in the source" in sources
        history = [{"role": "user", "content": NOT_IN_SOURCE}, {"role": "assistant", "content": reply.content, "metadata": reply.metadata}]
        answer_id = answer_id_at(history, 1)
        assert answer_id == reply.metadata["id"] and answer_id_at(history, 0) is None
        assert rate(log, history, gr.LikeData(None, {"index": 1, "value": [reply.content], "liked": False})) == answer_id
        assert [r["rating"] for r in table(db_url) if r["id"] == answer_id] == ["down"]
        assert rate(log, history, gr.LikeData(None, {"index": 1, "value": [reply.content], "liked": True})) is None
        assert [r["rating"] for r in table(db_url) if r["id"] == answer_id] == ["up"]
    assert [r["entry"] for r in table(db_url)] == ["chat", "widget"]
    log.close()


@pytest.mark.slow
def test_a_log_that_fails_never_stops_an_answer(engine: AnswerEngine, caplog: pytest.LogCaptureFixture) -> None:
    from tests.servers import free_port

    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"  # nothing listens there
    settings = load_settings(chroma_path=engine.settings.chroma_path, database_url=url)
    with caplog.at_level(logging.WARNING, logger="app"), TestClient(create_api(engine, settings)) as client:
        body = client.post("/api/ask", json={"question": NOT_IN_SOURCE})
        assert body.status_code == 200 and body.json()["refused"] and body.json()["answer_id"] is None
        feedback = client.post("/api/feedback", json={"answer_id": "abc", "rating": "up"})
        error = feedback.json()["error"]
        assert feedback.status_code == 503 and feedback.headers["retry-after"] and error.startswith("Cannot ")
        assert "postgresql+psycopg://nobody@127.0.0.1" in error and "Connection refused" in error and "\n" not in error
    assert any("not logged" in r.getMessage() for r in caplog.records)
    assert "Traceback" not in caplog.text


def test_the_chat_offers_thumbs_only_with_a_log(tmp_path: Path) -> None:
    from app.ui.web import build_chat

    settings = load_settings(chroma_path=tmp_path / "chroma")
    stats: dict[str, Any] = {"titles": ["A"], "documents": 1, "chunks": 8}
    log = QuestionLog(f"sqlite:///{tmp_path / 'q.sqlite'}", 90)
    for question_log, likeable in ((log, True), (None, False)):
        blocks = build_chat(None, settings, stats, compact=True, log=question_log)  # type: ignore[arg-type] # nothing asked
        config = blocks.get_config_file()
        (chatbot,) = [c["props"] for c in config["components"] if c["type"] == "chatbot"]
        assert bool(chatbot.get("likeable")) is likeable and bool(chatbot.get("feedback_options")) is likeable
        assert any(c["props"].get("elem_id") == "rag-feedback-comment" for c in config["components"]) is likeable
    log.close()

"""The guard in front of the API and the chat: API token, overload (bounded queues), per-client rate limit.

One app runs with RAG_API_TOKEN, RAG_QUEUE_SIZE=2, RAG_CONCURRENCY=1 and RAG_RATE_LIMIT, over real HTTP.
"""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import AppServer
from tests.test_browser import browser  # noqa: F401 - the module's Chromium

pytestmark = pytest.mark.slow  # apps started as processes

TOKEN = "tok-" + uuid.uuid4().hex
RATE = 40
QUESTION = "Who is the chairman of Shui On Group?"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    env = {"RAG_API_TOKEN": TOKEN, "RAG_QUEUE_SIZE": "2", "RAG_CONCURRENCY": "1", "RAG_RATE_LIMIT": f"{RATE}/minute"}
    server = AppServer(tmp_path_factory.mktemp("guarded"), env)
    yield server
    server.stop()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def chat_fn_index(url: str) -> int:
    config = httpx.get(f"{url}/config", timeout=30).json()
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == "chat")


def join_chat(url: str, fn_index: int, headers: dict[str, str]) -> httpx.Response:
    """Put one chat message on the Gradio queue, as the browser does (POST queue/join)."""
    body = {"data": [QUESTION, []], "fn_index": fn_index, "session_hash": uuid.uuid4().hex[:11], "event_data": None}
    return httpx.post(f"{url}/gradio_api/queue/join", json=body, headers=headers, timeout=30)


def test_api_token_is_required_and_never_shown(guarded: AppServer, reliability) -> None:  # noqa: ANN001
    url = guarded.url
    missing = httpx.post(f"{url}/api/ask", json={"question": QUESTION}, timeout=60)
    wrong = httpx.post(f"{url}/api/ask", json={"question": QUESTION}, headers=bearer("nope"), timeout=60)
    for response in (missing, wrong):
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert "RAG_API_TOKEN" in response.json()["error"] and TOKEN not in response.text
    good = httpx.post(f"{url}/api/ask", json={"question": QUESTION}, headers=bearer(), timeout=60)
    assert good.status_code == 200 and "Vincent Lo" in good.json()["answer"]
    # The chat queue: a browser of the app's own origin needs no token; a caller without an origin does.
    fn_index = chat_fn_index(url)
    assert join_chat(url, fn_index, {"Origin": url}).status_code == 200
    assert join_chat(url, fn_index, {}).status_code == 401
    assert join_chat(url, fn_index, bearer()).status_code == 200
    from gradio_client import Client

    result = Client(url + "/", verbose=False, headers=bearer()).predict(QUESTION, api_name="/chat")
    assert "Vincent Lo" in str(result)
    pages = ["/", "/widget/", "/config", "/widget/config", "/openapi.json", "/gradio_api/info", "/api/health"]
    for path in pages:
        assert TOKEN not in httpx.get(url + path, timeout=30, follow_redirects=True).text, path
    assert TOKEN not in (guarded.log.name and open(guarded.log.name).read())
    reliability("API token (RAG_API_TOKEN)", 1, "401 without or with a wrong token; chat open to its origin; token in no page or log")


def test_chat_and_widget_stay_usable_in_the_browser_with_a_token(guarded: AppServer, browser) -> None:  # noqa: ANN001, F811
    from tests.test_browser import ask, wait_for_final

    page = browser.new_page()
    try:
        page.goto(f"{guarded.url}/widget/")
        ask(page, QUESTION)
        assert "Vincent Lo" in wait_for_final(page)
        assert "Vincent Lo" in page.locator("#rag-chatbot").inner_text()
    finally:
        page.close()


def test_overload_gets_503_with_retry_after_not_a_hang(guarded: AppServer, reliability) -> None:  # noqa: ANN001
    url = guarded.url
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        api = list(pool.map(
            lambda _: httpx.post(f"{url}/api/ask", json={"question": QUESTION}, headers=bearer(), timeout=120), range(8)
        ))
    statuses = sorted(r.status_code for r in api)
    assert set(statuses) <= {200, 503} and statuses.count(503) >= 1 and statuses.count(200) >= 2, statuses
    for response in api:
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) > 0 and "busy" in response.json()["error"]
    fn_index = chat_fn_index(url)
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        joins = list(pool.map(lambda _: join_chat(url, fn_index, {"Origin": url}), range(10)))
    chat = sorted(r.status_code for r in joins)
    assert set(chat) <= {200, 503} and chat.count(503) >= 1 and chat.count(200) >= 2, chat
    assert all(int(r.headers["retry-after"]) > 0 for r in joins if r.status_code == 503)
    assert httpx.get(f"{url}/api/health", timeout=30).status_code == 200
    reliability(
        "overload beyond the queues", 2,
        "excess requests get 503 + Retry-After at once (API and chat queue); the rest are answered",
    )


def test_gradio_direct_routes_never_answer_a_question(guarded: AppServer) -> None:
    """Gradio's direct /run/ and /api/ routes (left open by Gradio off Hugging Face Spaces) would answer without the
    queue, its bound and the rate limit: they need the token without a browser origin, and even with it they refuse
    the answering function (only the chat's page events use them). They do not count against the rate limit."""
    for path in ("/gradio_api/api/chat", "/gradio_api/run/chat", "/widget/gradio_api/api/chat", "/widget/gradio_api/run/chat"):
        body = {"data": [QUESTION, []]}
        assert httpx.post(guarded.url + path, json=body, timeout=30).status_code == 401, path
        for _ in range(RATE // 4):  # more than the rate's share left for the next test, were they counted
            refused = httpx.post(guarded.url + path, json=body, headers=bearer(), timeout=30)
            assert refused.status_code == 404 and "join the queue" in refused.text, (path, refused.text[:200])


def test_rate_limit_per_client_gives_429_with_retry_after(guarded: AppServer, reliability) -> None:  # noqa: ANN001
    statuses = []
    for _ in range(RATE + 1):  # empty questions: cheap (422), but each one counts against the limit
        response = httpx.post(f"{guarded.url}/api/ask", json={"question": ""}, headers=bearer(), timeout=30)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {422}, statuses
    assert 1 <= int(response.headers["retry-after"]) <= 60 and "Too many questions" in response.json()["error"]
    chat = join_chat(guarded.url, chat_fn_index(guarded.url), {"Origin": guarded.url})
    assert chat.status_code == 429  # the chat queue shares the client's budget
    reliability("per-client rate limit (RAG_RATE_LIMIT)", 1, "429 + Retry-After once over the limit, on the API and the chat queue")

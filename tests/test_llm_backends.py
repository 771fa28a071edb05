"""Other LLM backends through configuration: the same grounding applies, over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.chain import AnswerEngine
from app.llm import LLMUnavailable, get_llm, local_model_path
from config import ROOT, Settings
from ingest.pipeline import ingest
from prompts import CHAT_MODEL_PREFIX
from tests.conftest import ARTICLE, free_port
from tests.openai_stub import StubServer

pytestmark = pytest.mark.slow  # model servers as processes

ARTICLE_TEXT = ARTICLE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("backends") / "chroma"
    ingest([ARTICLE], Settings(chroma_path=path), progress=False)
    return path


def openai_engine(store: Path, base_url: str, timeout: float = 20.0) -> AnswerEngine:
    settings = Settings(chroma_path=store, llm="openai", llm_base_url=base_url, llm_model="stub", llm_timeout=timeout)
    return AnswerEngine(settings)


def assert_grounded(answer) -> None:  # noqa: ANN001
    for citation in answer.citations:
        assert ARTICLE_TEXT[citation.start : citation.end] == citation.quote


def test_openai_compatible_candidate_in_the_source_is_used(store: Path) -> None:
    with StubServer(lambda prompt: "Vincent Lo") as server:
        answer = openai_engine(store, server.base_url).ask("Who is the chairman of Shui On Group?")
    assert answer.answer == "Vincent Lo [1]" and not answer.refused
    assert_grounded(answer)
    (request,) = server.requests
    prompt = request["messages"][-1]["content"]
    assert request["stream"] is True and prompt.startswith(CHAT_MODEL_PREFIX)
    assert "Question: Who is the chairman of Shui On Group?" in prompt and "Vincent Lo, chairman" in prompt


def test_openai_compatible_invention_is_not_trusted(store: Path) -> None:
    with StubServer(lambda prompt: "20.6 million") as server:
        refusal = openai_engine(store, server.base_url).ask("What is the population of Shanghai?")
        replaced = openai_engine(store, server.base_url).ask("Who is the chairman of Shui On Group?")
    assert refusal.refused and refusal.citations == []
    assert "20.6" not in replaced.answer and "Vincent Lo" in replaced.answer
    assert_grounded(replaced)


def test_server_down_or_slow_falls_back_within_the_timeout(store: Path, reliability) -> None:  # noqa: ANN001
    question = "What is the University of Hong Kong preparing to establish?"
    down = openai_engine(store, f"http://127.0.0.1:{free_port()}/v1", timeout=2)
    started = time.perf_counter()
    answer = down.ask(question)
    assert time.perf_counter() - started < 5
    assert not answer.refused and "global innovation hub" in answer.answer
    assert_grounded(answer)
    # Silent for 5 s, then a reply; and a reply trickled a token every 0.4 s (each read is within the 1 s timeout,
    # the whole reply is not): both answer extractively within about the timeout.
    for stub in (StubServer(lambda prompt: "global innovation hub", delay=5),
                 StubServer(lambda prompt: "a global innovation hub in Shanghai, which will focus on", token_delay=0.4)):
        with stub as server:
            slow = openai_engine(store, server.base_url, timeout=1)
            started = time.perf_counter()
            answer = slow.ask(question)
            assert time.perf_counter() - started < 4
        assert not answer.refused and "global innovation hub" in answer.answer
        assert_grounded(answer)
    reliability(
        "LLM server down, silent or trickling", 3,
        "extractive grounded answer within the timeout (+ < 3 s); no hang",
    )


def test_llama_cpp_server_with_the_packaged_model(store: Path, tmp_path: Path) -> None:
    """The real OpenAI-compatible server of llama-cpp-python, serving the packaged Gemma GGUF."""
    port = free_port()
    gguf = local_model_path(Settings())
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--model_alias", "gemma"],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail(f"llama_cpp.server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
        engine = openai_engine(store, f"http://127.0.0.1:{port}/v1")
        answer = engine.ask("Who is the chairman of Shui On Group?")
        assert "Vincent Lo" in answer.answer
        assert_grounded(answer)
        assert engine.ask("What is the population of Shanghai?").refused
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "POST /v1/chat/completions" in (tmp_path / "server.log").read_text()


def test_factory_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(LLMUnavailable, match="not a GGUF file"):
        get_llm(Settings(llm="local", llm_model=str(tmp_path / "missing.gguf")))
    assert type(get_llm(Settings(llm="ollama"))).__name__ == "ChatOllama"
    assert type(get_llm(Settings(llm="openai", llm_base_url="http://127.0.0.1:9/v1"))).__name__ == "ChatOpenAI"

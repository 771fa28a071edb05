"""A real Chroma server (`chroma run`, from the chromadb package) on a free localhost port with a temporary path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.chain import AnswerEngine
from config import ROOT, Settings
from ingest.chunking import split_document
from ingest.loaders import load_document
from ingest.pipeline import ingest
from ingest.squad import write_corpus
from tests.conftest import ARTICLE, SQUAD, free_port, run_cli, wait_until_ok
from vectorstore import open_collection

pytestmark = pytest.mark.slow  # a Chroma server and apps as processes

GOLD = ROOT / "tests" / "gold" / "article.jsonl"


class ChromaServer:
    def __init__(self, path: Path) -> None:
        self.path, self.port = path, free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        chroma = Path(sys.executable).with_name("chroma")
        self.process = subprocess.Popen(
            [str(chroma), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if not wait_until_ok(f"http://127.0.0.1:{self.port}/api/v2/heartbeat", 30, self.process):
            raise RuntimeError("chroma run did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=30)

    @property
    def env(self) -> dict[str, str]:
        return {"RAG_CHROMA_HOST": "127.0.0.1", "RAG_CHROMA_PORT": str(self.port)}

    def settings(self, **extra: object) -> Settings:
        return Settings(chroma_host="127.0.0.1", chroma_port=self.port, **extra)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server"))
    server.start()
    yield server
    server.stop()


def test_ingestion_and_answers_against_the_server_match_the_local_store(server: ChromaServer, tmp_path: Path) -> None:
    """The server store holds what a local store holds: every gold question retrieves the same passages in the same
    order, and a sample of them gets the same answer and citations (the full gold set is gated on the local store by
    tests/test_answers.py; answering all of it twice would add a minute and a half and check nothing more)."""
    settings = server.settings()
    first = ingest([ARTICLE], settings, progress=False)
    again = ingest([ARTICLE], settings, progress=False)
    assert first.added == 1 and (again.added, again.updated, again.unchanged) == (0, 0, 1)
    local_settings = Settings(chroma_path=tmp_path / "local")
    ingest([ARTICLE], local_settings, progress=False)
    remote = AnswerEngine(settings)
    remote.warm_up()
    local = AnswerEngine(local_settings, llm=remote.llm)
    items = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    for item in items:
        query = item["question"]
        assert [d.metadata["chunk_id"] for d in remote.retriever.invoke(query)] == [
            d.metadata["chunk_id"] for d in local.retriever.invoke(query)
        ], query
    for item in items[::6]:
        answer, expected = remote.ask(item["question"], item.get("history", [])), local.ask(item["question"], item.get("history", []))
        assert (answer.answer, answer.refused, answer.citations) == (expected.answer, expected.refused, expected.citations)
        assert all(c.quote == ARTICLE.read_text(encoding="utf-8")[c.start : c.end] for c in answer.citations)


def start_app(server: ChromaServer, tmp: Path, name: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, **server.env, "RAG_PORT": str(port), "RAG_CHROMA_PATH": str(tmp / f"{name}-unused")}
    log = (tmp / f"{name}.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def wait_healthy(url: str, timeout: float = 180) -> None:
    assert wait_until_ok(f"{url}/api/health", timeout), f"{url} did not become healthy"


@pytest.fixture(scope="module")
def two_apps(server: ChromaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    tmp = tmp_path_factory.mktemp("apps")
    ingest([ARTICLE], server.settings(), progress=False)
    apps = [start_app(server, tmp, f"app{i}") for i in range(2)]
    try:
        for _, url in apps:
            wait_healthy(url)
        yield [url for _, url in apps]
    finally:
        for process, _ in apps:
            process.terminate()
            process.wait(timeout=30)


def test_two_apps_answer_while_a_third_process_ingests(server: ChromaServer, two_apps: list[str], tmp_path: Path) -> None:
    corpus = tmp_path / "squad"
    write_corpus(SQUAD, corpus, {"Normans", "Rhine"})  # two articles, 83 paragraphs: long enough to overlap the answers
    expected = {c.id for path in [ARTICLE, *sorted(corpus.glob("*.txt"))]
                for c in split_document(load_document(path, ROOT), Settings().chunk_size, Settings().chunk_overlap)}
    ingester = subprocess.Popen(
        [sys.executable, "-m", "ingest", "--json", "--quiet", str(corpus)], cwd=ROOT,
        env={**os.environ, **server.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    results: list[tuple[int, str]] = []

    def client(url: str) -> None:
        with httpx.Client(timeout=120) as http:
            while ingester.poll() is None or len(results) < 8:
                response = http.post(f"{url}/api/ask", json={"question": "Who is the chairman of Shui On Group?"})
                results.append((response.status_code, response.json().get("answer", response.text)))

    threads = [threading.Thread(target=client, args=(url,)) for url in two_apps for _ in range(2)]
    for thread in threads:
        thread.start()
    out, err = ingester.communicate(timeout=600)
    for thread in threads:
        thread.join(timeout=300)
    assert ingester.returncode == 0, err
    assert json.loads(out)["added"] == 2
    assert len(results) >= 8 and all(status == 200 and "Vincent Lo" in answer for status, answer in results), results[:5]
    ids = open_collection(server.settings()).get(include=[])["ids"]
    assert len(ids) == len(set(ids)) and set(ids) == expected, "no chunk lost or duplicated"


def test_citations_name_the_right_document_across_documents(server: ChromaServer, two_apps: list[str]) -> None:
    url = two_apps[0]
    rhine = httpx.post(f"{url}/api/ask", json={"question": "How long is the Rhine?"}, timeout=60).json()
    assert rhine["citations"] and rhine["citations"][0]["source"].endswith("Rhine.txt")
    hku = httpx.post(f"{url}/api/ask", json={"question": "Who is the president of the University of Hong Kong?"}, timeout=60).json()
    assert "Zhang Xiang" in hku["answer"] and hku["citations"][0]["source"].endswith(ARTICLE.name)
    filtered = httpx.post(
        f"{url}/api/ask", json={"question": "Who is the president of the University of Hong Kong?", "title": "Rhine"}, timeout=60
    ).json()
    assert filtered["refused"] is True
    health = httpx.get(f"{url}/api/health").json()
    assert health["documents"] >= 1 and health["chunks"] >= 8 and health["embedding_model"] == "all-MiniLM-L6-v2"


def test_server_outage_gives_clear_errors_and_the_app_recovers(server: ChromaServer, two_apps: list[str]) -> None:
    from gradio_client import Client

    url = two_apps[1]
    ui = Client(url + "/", verbose=False)
    server.stop()
    try:
        health = httpx.get(f"{url}/api/health", timeout=30)
        assert health.status_code == 503 and "store" in health.json()["detail"]
        ask = httpx.post(f"{url}/api/ask", json={"question": "Who is the chairman of Shui On Group?"}, timeout=60)
        assert ask.status_code == 503 and "document store cannot be reached" in ask.json()["error"]
        assert ask.headers["retry-after"] == "5"
        shown = ui.predict("Who is the chairman of Shui On Group?", api_name="/chat")
        assert "document store cannot be reached" in str(shown)
        cli = run_cli("app.ask", "Who is the chairman of Shui On Group?", env=server.env)
        assert cli.returncode == 1 and len(cli.stderr.strip().splitlines()) == 1 and "Chroma server" in cli.stderr
    finally:
        server.start()  # same path and port: the data is still there
    wait_healthy(url, timeout=60)
    answer = httpx.post(f"{url}/api/ask", json={"question": "Who is the chairman of Shui On Group?"}, timeout=60)
    assert answer.status_code == 200 and "Vincent Lo" in answer.json()["answer"]


def test_both_apps_answer_from_a_document_edited_through_the_server(server: ChromaServer, two_apps: list[str], tmp_path: Path) -> None:
    """Each app process keeps every chunk in memory; an edit that keeps the chunk count must reach both."""
    document = tmp_path / "northbridge.md"
    document.write_text("# Northbridge\n\nThe president of Northbridge University is Alma Reyes, the board said.\n", encoding="utf-8")
    assert run_cli("ingest", "--quiet", str(document), env=server.env).returncode == 0
    question = {"question": "Who is the president of Northbridge University?"}
    for url in two_apps:
        assert wait_for_answer(url, question, "Alma Reyes", 10)
    document.write_text(document.read_text(encoding="utf-8").replace("Alma Reyes", "Bruno Keller"), encoding="utf-8")
    run = run_cli("ingest", "--json", "--quiet", str(document), env=server.env)
    summary = json.loads(run.stdout)
    assert summary["updated"] == 1 and summary["chunks_written"] == summary["chunks_deleted"] == 1
    text = document.read_text(encoding="utf-8")
    for url in two_apps:
        answer = wait_for_answer(url, question, "Bruno Keller", 10)
        assert answer, f"{url} still answers from the old text"
        assert all(text[c["start"] : c["end"]] == c["quote"] for c in answer["citations"])


def wait_for_answer(url: str, body: dict, wanted: str, seconds: float) -> dict | None:
    """The first answer quoting `wanted` within `seconds`, else None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = httpx.post(f"{url}/api/ask", json=body, timeout=60).json()
        if wanted in " ".join(c["quote"] for c in answer.get("citations", [])):
            return answer
        time.sleep(0.5)
    return None

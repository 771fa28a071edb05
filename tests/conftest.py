"""Shared fixtures: every test gets its own store in tmp_path; nothing touches the repo's .chroma folder."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config import ROOT, Settings, load_settings

ARTICLE = ROOT / "data" / "yicai-2024-04-29-shanghai-hong-kong-innovation.txt"
SQUAD = ROOT.parent / "shared" / "evaldata" / "squad2-dev-20-articles.json"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No RAG_* variable of the developer's shell leaks in; the default store is the test's own."""
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_CHROMA_PATH", str(tmp_path / "chroma"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(chroma_path=tmp_path / "chroma")


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m ...` from the repo root with the test's environment (and its RAG_CHROMA_PATH)."""
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=timeout, input=input_text if input_text is not None else "",
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def writes_landed(store: Path) -> int:
    """Records in the store's write log, read with a fresh read-only SQLite connection, so that watching another
    process's writes does not depend on this process's cached Chroma client."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{store / 'chroma.sqlite3'}?mode=ro", uri=True)) as db:
            return db.execute("SELECT (SELECT count(*) FROM embeddings_queue) + (SELECT count(*) FROM embeddings)").fetchone()[0]
    except sqlite3.Error:  # not created yet, or locked by the writer for a moment
        return 0


HOSTILE_NOTICE = ROOT / "tests" / "hostile" / "notice-to-readers.md"
"""Prompt injection, links to visit, Markdown image/link exfiltration, script: ingested beside the article."""

HOSTILE_DOC = """# Lab notes

Whiskers is the name of the lab cat <img src=x onerror="window.__xss=1"> and it sleeps all day.

The lab opens at <script>window.__xss=2</script>nine in the morning.
"""


def wait_until_ok(url: str, timeout: float = 180, process: subprocess.Popen | None = None) -> bool:
    """Poll `url` until it answers 200 (True), the process exits or the time runs out (False)."""
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline and (process is None or process.poll() is None):
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return False


class AppServer:
    """`python -m app` in a subprocess on free ports, with its own store; the browser tests' host pages get ports too.

    A new `AppServer` on the same `tmp` is a restart: it opens the same store and appends to the same log.
    """

    def __init__(self, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.port, self.host_port, self.other_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        corpus = tmp / "corpus"
        corpus.mkdir(exist_ok=True)
        (corpus / ARTICLE.name).write_text(ARTICLE.read_text(encoding="utf-8"), encoding="utf-8")
        (corpus / "lab-notes.md").write_text(HOSTILE_DOC, encoding="utf-8")
        (corpus / HOSTILE_NOTICE.name).write_text(HOSTILE_NOTICE.read_text(encoding="utf-8"), encoding="utf-8")
        self.env = {
            **os.environ, "RAG_CHROMA_PATH": str(tmp / "chroma"), "RAG_CORPUS_PATH": str(corpus),
            "RAG_PORT": str(self.port), "RAG_ALLOWED_ORIGINS": f"http://127.0.0.1:{self.host_port}", **(env or {}),
        }
        self.log = (tmp / "app.log").open("a")
        self.process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_until_ok(f"{self.url}/api/health", 180, self.process):
            raise RuntimeError(f"the app did not become healthy: {(tmp / 'app.log').read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def kill(self) -> None:
        """`kill -9`, as a crash or the OOM killer would: no shutdown code runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    server = AppServer(tmp_path_factory.mktemp("app"))
    yield server
    server.stop()


# --- docs/reliability.md, kept true by the tests that try each scenario -------------------------------------------

RELIABILITY_DOC = ROOT / "docs" / "reliability.md"
_RESULTS: dict[str, tuple[int, str]] = {}


@pytest.fixture(scope="session")
def reliability():  # noqa: ANN201
    """`reliability(scenario, tries, result)`: record the outcome of a scenario of docs/reliability.md.

    At the end of the run every recorded row is compared with the table in docs/reliability.md (columns Scenario,
    Tries and Result); a difference fails the run, so the document says what the tests last saw.
    """

    def record(scenario: str, tries: int, result: str) -> None:
        _RESULTS[scenario] = (tries, result)

    return record


def _doc_rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in RELIABILITY_DOC.read_text(encoding="utf-8").splitlines() if RELIABILITY_DOC.exists() else []:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 5 and not set(cells[0]) <= {"-", ":"}:
            rows[cells[0]] = (cells[2], cells[3])
    return rows


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _RESULTS:
        return
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    lines = [f"| {name} | {tries} | {result} |" for name, (tries, result) in sorted(_RESULTS.items())]
    (artifacts / "reliability-results.md").write_text("| Scenario | Tries | Result |\n|---|---|---|\n" + "\n".join(lines) + "\n")
    documented = _doc_rows()
    wrong = [
        f"  {name}: tests saw {tries} tries, '{result}'; docs/reliability.md says {documented.get(name)}"
        for name, (tries, result) in sorted(_RESULTS.items())
        if documented.get(name) != (str(tries), result)
    ]
    if wrong:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "docs/reliability.md disagrees with what the tests saw:\n" + "\n".join(wrong)
        if reporter:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

"""Shared fixtures: every test gets its own store in tmp_path; nothing touches the repo's .chroma folder."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from config import Settings, load_settings
from tests.servers import ARTICLE, HOSTILE_DOC, HOSTILE_NOTICE, ROOT, SQUAD, AppServer, free_port, wait_until_ok

__all__ = ["ARTICLE", "HOSTILE_DOC", "HOSTILE_NOTICE", "SQUAD", "AppServer", "free_port", "wait_until_ok"]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No RAG_* variable of the developer's shell leaks in; the default store is the test's own."""
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_CHROMA_PATH", str(tmp_path / "chroma"))


@pytest.fixture(scope="session")
def article_engine(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - an app.chain.AnswerEngine
    """One warmed-up engine over the bundled article in a store of its own, shared by the in-process tests that only
    ask it questions (the models load once)."""
    from app.chain import AnswerEngine
    from ingest.pipeline import ingest

    settings = load_settings(chroma_path=tmp_path_factory.mktemp("article-engine") / "chroma")
    ingest([ARTICLE], settings, progress=False)
    engine = AnswerEngine(settings)
    engine.warm_up()
    return engine


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


def writes_landed(store: Path) -> int:
    """Records in the store's write log, read with a fresh read-only SQLite connection, so that watching another
    process's writes does not depend on this process's cached Chroma client."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{store / 'chroma.sqlite3'}?mode=ro", uri=True)) as db:
            return db.execute("SELECT (SELECT count(*) FROM embeddings_queue) + (SELECT count(*) FROM embeddings)").fetchone()[0]
    except sqlite3.Error:  # not created yet, or locked by the writer for a moment
        return 0


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

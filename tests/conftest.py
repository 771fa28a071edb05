"""Shared fixtures: every test gets its own store in tmp_path; nothing touches the repo's .chroma folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from config import Settings, load_settings
from tests.background import BackgroundJob
from tests.servers import ARTICLE, HOSTILE_DOC, HOSTILE_NOTICE, ROOT, SQUAD, AppServer, free_port, wait_until_ok

# Idle OpenMP threads sleep instead of spinning, in this process and in every app, CLI and benchmark it starts (they
# inherit the environment). llama.cpp (the system libgomp) and PyTorch (its own libgomp) each keep a pool of 2 threads;
# after every parallel region those spin for a while, so on 2 cores the model's threads waited behind the embedding
# model's spinning ones: the gold set took 185 to 258 s with spinning and 47 to 53 s without, with the same answers
# (measured side by side on this 2-core machine while other work ran). Only the waiting changes, not the numbers: the
# same threads and kernels compute the same greedy answers. Set before PyTorch or llama.cpp is loaded, which happens
# when the test modules are imported, after this file.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


# --- long self-contained jobs run beside the suite (tests/background.py) ------------------------------------------

_BACKGROUND: dict[str, BackgroundJob] = {}
_BACKGROUND_DIR: list[Path] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that collect a background job's result run last (in their order), so that the job has the whole run."""
    items.sort(key=lambda item: "background" in getattr(item, "fixturenames", ()))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the `BACKGROUND_JOBS` of every module with a selected test that uses them, each in a folder of its own,
    with no RAG_* variable of the developer's shell (as `_isolated_env` does for the tests)."""
    if session.config.option.collectonly:
        return
    wanted = {}
    for item in session.items:  # only for tests that collect a result: `pytest -m "not slow"` starts none
        if "background" in getattr(item, "fixturenames", ()):
            wanted.update(getattr(getattr(item, "module", None), "BACKGROUND_JOBS", {}))
    if not wanted:
        return
    folder = Path(tempfile.mkdtemp(prefix="pytest-background-"))
    _BACKGROUND_DIR.append(folder)
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAG_")}
    for name, args in wanted.items():
        _BACKGROUND[name] = BackgroundJob(name, args, folder / name, {**env, "RAG_CHROMA_PATH": str(folder / name / "chroma")})


@pytest.fixture(scope="session")
def background():  # noqa: ANN201
    """`background(name)`: the finished process of the background job `name` (`subprocess.CompletedProcess`)."""

    def result(name: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        if name not in _BACKGROUND:
            pytest.fail(f"the background job {name!r} was not started: no BACKGROUND_JOBS of a selected module names it")
        return _BACKGROUND[name].result(timeout)

    return result


def _stop_background() -> None:
    for job in _BACKGROUND.values():
        job.stop()
    for folder in _BACKGROUND_DIR:
        shutil.rmtree(folder, ignore_errors=True)


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
    _stop_background()
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

"""Faults on the real parts (docs/reliability.md): kill -9 of the app and of ingest, a full disk, a read-only store.

Every scenario compares the store with a clean ingest of the same corpus (the bundled article): same chunk count,
same ids. The disk scenarios put the store on a small tmpfs, which needs root and a container that allows mounts.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.retrieval import get_retriever
from config import ROOT, Settings
from ingest.loaders import source_id_for
from ingest.pipeline import ingest
from tests.conftest import ARTICLE, AppServer, run_cli, writes_landed
from vectorstore import open_collection

pytestmark = pytest.mark.slow  # processes killed and stores on tmpfs

QUESTION = "Who is the president of the University of Hong Kong?"
ARTICLE_SOURCE = source_id_for(ARTICLE, ROOT)


def store_ids(store: Path, source: str | None = None) -> list[str]:
    """Every chunk id in the store (of one source when given), duplicates kept so that they can be caught."""
    where = {"source": source} if source else None
    return list(open_collection(Settings(chroma_path=store)).get(where=where, include=[])["ids"])


def assert_same_as_clean(ids: list[str], clean: set[str]) -> None:
    assert len(ids) == len(set(ids)) == len(clean), (len(ids), len(set(ids)), len(clean))
    assert set(ids) == clean


def release_store() -> None:
    """Drop this process's Chroma clients, closing their files, so that the store's mount can change."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    gc.collect()


def one_line_error(stderr: str) -> str:
    """The only line on stderr, which must be an `error:` line and no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


def kill_ingest_while_writing(store: Path, *paths: str, write_batch: int) -> tuple[int, int]:
    """Run `python -m ingest PATHS` on `store` and kill -9 it once its writes show in the store's write log.

    Waiting for a new write (not a fixed delay) makes sure a write is under way on a loaded machine; a small
    `write_batch` leaves writes still to come. Returns the store's chunk count before and after.
    """
    settings = Settings(chroma_path=store)
    env = {**os.environ, "RAG_CHROMA_PATH": str(store), "RAG_WRITE_BATCH": str(write_batch)}
    before, logged = open_collection(settings).count(), writes_landed(store)
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest", "--quiet", *paths], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 180
    while process.poll() is None and time.time() < deadline and writes_landed(store) <= logged:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # a fresh client: once in ~10 runs the cached one counted one write short
    return before, open_collection(settings).count()


@pytest.fixture(scope="module")
def clean_ids(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The chunk ids of an uninterrupted ingest of the article into a fresh store: every scenario's reference."""
    reference = Settings(chroma_path=tmp_path_factory.mktemp("reference") / "chroma")
    ingest([ARTICLE], reference, progress=False)
    ids = store_ids(reference.chroma_path)
    assert len(ids) >= 5
    return set(ids)


# --- kill -9 ------------------------------------------------------------------------------------------------------


def assert_answers(server: AppServer, chunks: int) -> None:
    health = httpx.get(f"{server.url}/api/health", timeout=30)
    assert health.status_code == 200 and health.json()["chunks"] == chunks, health.text
    response = httpx.post(f"{server.url}/api/ask", json={"question": QUESTION}, timeout=120)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert not answer["refused"] and "Zhang Xiang" in answer["answer"] and answer["citations"], answer


def kill_while_answering(server: AppServer) -> httpx.Response | httpx.HTTPError:
    """Send a question from a thread and kill -9 the app once the request is out; what the client got back."""
    sent = threading.Event()
    outcome: list[httpx.Response | httpx.HTTPError] = []

    def ask() -> None:
        try:
            with httpx.Client(timeout=120, event_hooks={"request": [lambda _request: sent.set()]}) as client:
                outcome.append(client.post(f"{server.url}/api/ask", json={"question": QUESTION}))
        except httpx.HTTPError as err:
            outcome.append(err)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    assert sent.wait(30), "the question was never sent"
    time.sleep(0.1)  # on the server by now; an answer takes several times longer (retrieval, then the model)
    server.kill()
    thread.join(30)
    assert outcome, "the client is still waiting after the app died"
    return outcome[0]


def logged_ids(tmp: Path) -> set[str]:
    """The answer ids in the app's default question log (questions.sqlite beside its store), read with a fresh
    read-only connection after the app died, with an integrity check first."""
    with contextlib.closing(sqlite3.connect(f"file:{tmp / 'questions.sqlite'}?mode=ro", uri=True)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {row[0] for row in db.execute("SELECT id FROM answered_questions")}


def test_kill_9_app_during_an_answer(tmp_path: Path, clean_ids: set[str], reliability) -> None:  # noqa: ANN001
    """Three times: start the app on a store holding the article, kill -9 it mid-answer; the store stays whole, and
    the question log keeps every answer logged before the kill."""
    store = tmp_path / "chroma"
    ingest([ARTICLE], Settings(chroma_path=store), progress=False)
    logged: set[str] = set()
    for _ in range(3):
        server = AppServer(tmp_path)
        try:
            assert_answers(server, len(clean_ids))  # after the first round: the restart after a kill -9 answers
        except BaseException:
            server.kill()
            raise
        outcome = kill_while_answering(server)
        assert isinstance(outcome, httpx.TransportError), f"the answer finished before the kill: {outcome}"
        assert_same_as_clean(store_ids(store), clean_ids)
        after = logged_ids(tmp_path)
        assert logged <= after and len(after) >= len(logged) + 1, "an answer logged before the kill was lost"
        logged = after
    server = AppServer(tmp_path)
    try:
        assert_answers(server, len(clean_ids))
    finally:
        server.stop()
    assert logged < logged_ids(tmp_path), "the log takes answers again after the restart"
    reliability("kill -9 app during an answer", 3, "store intact (same count and ids); answers after restart")
    reliability("kill -9 app during an answer: question log", 3, "every row logged before the kill kept; log intact and logging after restart")


def test_kill_9_ingest_during_a_write_is_healed_by_rerun(settings: Settings, clean_ids: set[str], reliability) -> None:  # noqa: ANN001
    """Three times: kill -9 `python -m ingest` once its writes show (one chunk a write); the rerun completes it."""
    corpus = str(ARTICLE.parent)
    counts = [kill_ingest_while_writing(settings.chroma_path, corpus, write_batch=1) for _ in range(3)]
    assert all(before < after < len(clean_ids) for before, after in counts), counts  # each kill hit a running write
    healed = run_cli("ingest", "--json", "--quiet", corpus, env={"RAG_CHROMA_PATH": str(settings.chroma_path)})
    assert healed.returncode == 0, healed.stderr
    summary = json.loads(healed.stdout)
    assert summary["chunks_written"] == len(clean_ids) - counts[-1][1] and summary["total_chunks"] == len(clean_ids)
    assert_same_as_clean(store_ids(settings.chroma_path), clean_ids)
    reliability("kill -9 ingest during a write", 3, "rerun heals: same count and ids as a clean ingest")


# --- the store's disk -----------------------------------------------------------------------------------------------


def mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs (the article's store takes about 430 KB), unmounted afterwards; skipped where mounts are denied."""
    point = tmp_path / "disk"
    point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("the disk fault tests need the `mount` command (util-linux) to put the store on a small tmpfs")
    mounted = mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point))
    if mounted.returncode != 0:
        pytest.skip(f"the disk fault tests need to mount a tmpfs (root, a container that allows it): {mounted.stderr.strip()}")
    try:
        yield point
    finally:
        release_store()
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)


def remount(point: Path, options: str) -> None:
    """Remount with new options once this process's files on it are closed ("mount point is busy" while Chroma's
    background threads still hold one: seen once in a full run, never alone; a few tries over 5 s)."""
    for _ in range(10):
        release_store()
        result = mount("-o", f"remount,{options}", str(point))
        if result.returncode == 0 or "busy" not in result.stderr:
            break
        time.sleep(0.5)
    assert result.returncode == 0, result.stderr


def write_filler(folder: Path, files: int) -> Path:
    """Documents of made-up words (far larger than the small disk), unlike the article to any query about it."""
    rng = random.Random(0)
    syllables = ["ka", "lo", "mi", "ren", "tas", "vo", "qui", "zem", "du", "pha", "nor", "eli"]
    folder.mkdir()
    for n in range(files):
        paragraphs = [
            " ".join(
                " ".join("".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(rng.randint(8, 18))).capitalize() + "."
                for _ in range(8)
            )
            for _ in range(4)
        ]
        (folder / f"filler-{n:03d}.txt").write_text(f"Filler {n}\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return folder


def test_disk_full_during_ingest(small_disk: Path, tmp_path: Path, clean_ids: set[str], reliability) -> None:  # noqa: ANN001
    store = small_disk / "chroma"
    ingest([ARTICLE], Settings(chroma_path=store), progress=False)
    assert_same_as_clean(store_ids(store), clean_ids)  # the article fits
    release_store()
    filler = write_filler(tmp_path / "filler", files=100)
    full = run_cli("ingest", "--quiet", str(filler), env={"RAG_CHROMA_PATH": str(store), "RAG_WRITE_BATCH": "32"})
    assert full.returncode == 1, full.stdout + full.stderr
    assert one_line_error(full.stderr).startswith("error: The store's disk is full ("), full.stderr
    assert str(store) in full.stderr

    remount(small_disk, "size=16m")  # space again: the store opens and answers from the article as before
    settings = Settings(chroma_path=store)
    assert_same_as_clean(store_ids(store, ARTICLE_SOURCE), clean_ids)
    best = get_retriever(settings, k=1).invoke(QUESTION)[0]
    assert best.metadata["source"] == ARTICLE_SOURCE and "Zhang Xiang" in best.page_content
    reliability("disk full during ingest", 1, "one-line error; earlier chunks intact")


def test_read_only_store_during_ingest(small_disk: Path, tmp_path: Path, clean_ids: set[str], reliability) -> None:  # noqa: ANN001
    store = small_disk / "chroma"
    ingest([ARTICLE], Settings(chroma_path=store), progress=False)
    assert_same_as_clean(store_ids(store), clean_ids)
    changed = tmp_path / "changed.txt"
    changed.write_text(ARTICLE.read_text(encoding="utf-8").replace("25,000 scientists", "26,000 scientists"), encoding="utf-8")
    remount(small_disk, "ro")  # root ignores file modes; a read-only mount stops it
    try:
        refused = run_cli("ingest", "--quiet", str(changed), env={"RAG_CHROMA_PATH": str(store)})
    finally:
        remount(small_disk, "rw")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert one_line_error(refused.stderr).startswith(f"error: The store at {store} is read-only;"), refused.stderr
    assert_same_as_clean(store_ids(store), clean_ids)
    reliability("read-only store during ingest", 1, "one-line error; store unchanged")

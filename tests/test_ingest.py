"""Ingestion against a real Chroma store in tmp_path with the real packaged embedding model."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import os
import time
from pathlib import Path

import pytest

from config import ROOT, Settings
from ingest.chunking import split_document
from ingest.loaders import load_document
from ingest.pipeline import ingest
from ingest.squad import write_corpus
from tests.conftest import ARTICLE, SQUAD, run_cli, writes_landed
from vectorstore import StoreError, get_client, open_collection


def stored(settings: Settings) -> dict[str, dict]:
    """Every chunk in the store: id -> {text, metadata}."""
    got = open_collection(settings).get(include=["documents", "metadatas"])
    return {i: {"text": t, **m} for i, t, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)}


def test_every_stored_chunk_has_exact_span(settings: Settings) -> None:
    summary = ingest([ARTICLE], settings, progress=False)
    assert (summary.added, summary.updated, summary.unchanged, summary.removed) == (1, 0, 0, 0)
    chunks = stored(settings)
    assert summary.total_chunks == len(chunks) >= 5
    text = ARTICLE.read_text(encoding="utf-8")
    for chunk in chunks.values():
        assert text[chunk["start"] : chunk["end"]] == chunk["text"]
        assert chunk["title"].startswith("Shanghai, Hong Kong Draw Closer") and chunk["date"] == "2024-04-29"
    metadata = open_collection(settings).metadata
    assert metadata["embedding_model"] == "all-MiniLM-L6-v2" and metadata["embedding_dimension"] == 384
    assert open_collection(settings).configuration_json["hnsw"]["space"] == "cosine"


def test_reingest_is_idempotent(settings: Settings) -> None:
    first = ingest([ARTICLE], settings, progress=False)
    before = stored(settings)
    second = ingest([ARTICLE], settings, progress=False)
    assert (second.added, second.updated, second.unchanged, second.chunks_written) == (0, 0, 1, 0)
    assert stored(settings) == before and second.total_chunks == first.total_chunks


def test_changed_document_replaces_its_chunks_and_prune_removes_gone_ones(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    article = folder / "article.txt"
    shutil.copy(ARTICLE, article)
    other = folder / "other.md"
    other.write_text("# Other\n\nA second document about rivers. It has two sentences.\n")
    ingest([folder], settings, progress=False)

    article.write_text(ARTICLE.read_text().replace("25,000 scientists", "26,000 scientists"))
    summary = ingest([folder], settings, progress=False)
    assert (summary.added, summary.updated, summary.unchanged) == (0, 1, 1)
    texts = [c["text"] for c in stored(settings).values()]
    assert any("26,000 scientists" in t for t in texts) and not any("25,000 scientists" in t for t in texts)

    other.unlink()
    kept = ingest([folder], settings, progress=False)
    assert kept.removed == 0 and any(c["source"].endswith("other.md") for c in stored(settings).values())
    pruned = ingest([folder], settings, prune=True, progress=False)
    assert pruned.removed == 1
    assert not any(c["source"].endswith("other.md") for c in stored(settings).values())
    assert pruned.total_chunks == len(stored(settings))


def test_reset_rebuilds(settings: Settings) -> None:
    ingest([ARTICLE], settings, progress=False)
    summary = ingest([ARTICLE], settings, reset=True, progress=False)
    assert summary.added == 1 and summary.total_chunks == summary.chunks_written


def test_collection_of_another_model_is_refused(settings: Settings) -> None:
    get_client(settings).create_collection(
        settings.collection, metadata={"embedding_model": "other-model", "embedding_dimension": 768}
    )
    with pytest.raises(StoreError, match="other-model"):
        open_collection(settings)
    result = run_cli("ingest", str(ARTICLE))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: The collection 'documents' was built with")
    assert "Traceback" not in result.stderr


def test_cli_bad_inputs_each_get_one_line_and_the_rest_ingests(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(ARTICLE, folder / "good.txt")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "latin1.txt").write_bytes("caf\u00e9".encode("latin-1"))
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    unsupported = tmp_path / "sheet.xlsx"
    unsupported.write_bytes(b"PK")
    missing = tmp_path / "missing.txt"

    result = run_cli("ingest", "--json", str(folder), str(unsupported), str(missing))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 5, result.stderr
    for name in ("empty.txt", "latin1.txt", "broken.pdf", "sheet.xlsx", "missing.txt"):
        assert sum(name in line for line in errors) == 1
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) >= {"added", "updated", "unchanged", "removed", "total_chunks", "seconds"}
    assert summary["added"] == 1 and summary["total_chunks"] == len(stored(settings)) > 0


def test_cli_summary_line_and_default_corpus() -> None:
    result = run_cli("ingest", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 document(s): 1 added, 0 updated, 0 unchanged, 0 removed")
    again = run_cli("ingest", "--json", "--quiet")
    summary = json.loads(again.stdout)
    assert (summary["added"], summary["updated"], summary["unchanged"]) == (0, 0, 1)


@pytest.fixture(scope="module")
def squad_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("squad")
    titles = ["Normans", "Computational_complexity_theory", "Southern_California", "Sky_(United_Kingdom)",
              "Victoria_(Australia)", "Huguenot"]
    write_corpus(SQUAD, folder, set(titles))
    return folder


@pytest.fixture(scope="module")
def clean_ids(squad_corpus: Path) -> set[str]:
    """The chunk ids an uninterrupted ingest of the SQuAD sample stores: the reference for the fault tests.

    A chunk's id is a hash of its source, span and text, so they are the chunker's ids; that an ingest stores exactly
    those is asserted by test_hostile_input.py (local store) and test_chroma_server.py (server), and the concurrent
    ingest below must store exactly them. Embedding the whole sample once more only to read the ids back took 15 s."""
    settings = Settings()
    return {
        chunk.id
        for path in sorted(squad_corpus.glob("*.txt"))
        for chunk in split_document(load_document(path, ROOT), settings.chunk_size, settings.chunk_overlap)
    }


def test_interrupt_is_reported_in_one_line(squad_corpus: Path, settings: Settings) -> None:
    """Ctrl-C once the ingest's writes show in the store's log (one chunk a write: hundreds still to come)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest", "--quiet", str(squad_corpus)], cwd=ROOT,
        env={**os.environ, "RAG_CHROMA_PATH": str(settings.chroma_path), "RAG_WRITE_BATCH": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Ctrl-C as in a terminal: a shell that starts pytest in the background (`make test &`) passes SIGINT on as
        # ignored, and Python then never raises KeyboardInterrupt: the cause of this test's skips on clean clones.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 8  # the first write, or 8 s
    while process.poll() is None and time.time() < deadline and not writes_landed(settings.chroma_path):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "Interrupted" in err


def test_two_concurrent_ingests_do_not_corrupt_the_store(squad_corpus: Path, clean_ids: set[str], settings: Settings) -> None:
    env = {**os.environ, "RAG_CHROMA_PATH": str(settings.chroma_path)}
    processes = [
        subprocess.Popen([sys.executable, "-m", "ingest", "--json", "--quiet", str(squad_corpus)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    summaries = sorted((json.loads(out) for out, _ in outputs), key=lambda s: s["chunks_written"])
    assert summaries[0]["chunks_written"] == 0 and summaries[1]["chunks_written"] == len(clean_ids)
    ids = list(open_collection(settings).get(include=[])["ids"])
    assert len(ids) == len(set(ids)) and set(ids) == clean_ids

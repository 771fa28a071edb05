"""Load, chunk, embed and store documents idempotently and incrementally."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from langchain_core.documents import Document

from config import ROOT, Settings
from ingest.chunking import split_document
from ingest.loaders import SUPPORTED_SUFFIXES, LoadError, load_document, source_id_for
from vectorstore import explain_write_failures, get_embeddings, mark_changed, open_collection, reset_collection, writer_lock

DELETE_BATCH = 512
"""Stale chunk ids deleted per request."""


@dataclass
class IngestSummary:
    """What one run did. `added`/`updated`/`unchanged`/`removed` count documents; the rest count chunks."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    total_chunks: int = 0
    seconds: float = 0.0
    documents: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        failed = f"; {len(self.failed)} failed" if self.failed else ""
        return (
            f"{self.documents} document(s): {self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.removed} removed{failed}; {self.chunks_written} chunks written, {self.chunks_deleted} deleted; "
            f"{self.total_chunks} chunks in store ({self.seconds:.1f} s)"
        )


def collect_files(paths: Sequence[Path]) -> tuple[list[Path], list[LoadError]]:
    """Expand folders (recursively, supported types only, hidden files skipped); report missing paths."""
    files: list[Path] = []
    errors: list[LoadError] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in SUPPORTED_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                errors.append(LoadError(path, f"the folder holds no supported files ({', '.join(SUPPORTED_SUFFIXES)})"))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            errors.append(LoadError(path, "no such file or folder"))
    return list(dict.fromkeys(files)), errors


def ingest(
    paths: Sequence[Path],
    settings: Settings,
    *,
    prune: bool = False,
    reset: bool = False,
    progress: bool | None = None,
    on_error: callable = print,  # type: ignore[valid-type]
) -> IngestSummary:
    """Bring the store in line with `paths`; each failing file is reported through `on_error` and skipped.

    New chunks are written before stale ones are deleted, and ids derive from content, so a run stopped at any
    point leaves no duplicates and a re-run completes it. A store that cannot be written (read-only, disk full)
    raises a one-line `StoreError`; what was stored before stays.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    summary = IngestSummary()
    files, errors = collect_files(paths)
    documents: list[Document] = []
    for path in tqdm(files, desc="Reading", unit="doc", disable=_quiet(progress, len(files) < 20)):
        try:
            documents.append(load_document(path, ROOT))
        except LoadError as err:
            errors.append(err)
        except OSError as err:
            errors.append(LoadError(path, f"cannot be read ({err.strerror or err.__class__.__name__})"))
    for err in errors:
        on_error(f"error: {err}")
        summary.failed.append(str(err))

    with explain_write_failures(settings), writer_lock(settings):
        if reset:
            reset_collection(settings)
        collection = open_collection(settings)
        pending: list[Document] = []
        stale: list[str] = []
        for document in documents:
            chunks = split_document(document, settings.chunk_size, settings.chunk_overlap)
            wanted = {c.id: c for c in chunks}
            existing = set(collection.get(where={"source": document.metadata["source"]}, include=[])["ids"])
            new_ids = wanted.keys() - existing
            old_ids = existing - wanted.keys()
            if not existing:
                summary.added += 1
            elif new_ids or old_ids:
                summary.updated += 1
            else:
                summary.unchanged += 1
            pending.extend(wanted[i] for i in wanted if i in new_ids)
            stale.extend(sorted(old_ids))
        summary.documents = len(documents)

        _write(collection, pending, settings, progress)
        summary.chunks_written = len(pending)
        if pending:  # running apps reload now; the deletes below renew the stamp again
            mark_changed(collection)
        if prune:
            present = {d.metadata["source"] for d in documents}
            present |= {source_id_for(Path(e.path), ROOT) for e in errors}  # a file that failed is still present
            gone = _sources_in_store(collection) - present
            for source in sorted(gone):
                stale.extend(collection.get(where={"source": source}, include=[])["ids"])
            summary.removed = len(gone)
        for start in range(0, len(stale), DELETE_BATCH):
            collection.delete(ids=stale[start : start + DELETE_BATCH])
        summary.chunks_deleted = len(stale)
        if stale:
            mark_changed(collection)
        summary.total_chunks = collection.count()
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _write(collection, chunks: list[Document], settings: Settings, progress: bool | None) -> None:  # noqa: ANN001
    from tqdm import tqdm

    if not chunks:
        return
    embeddings = get_embeddings(settings)
    # Length-sorted batches pad least, so the pipeline encodes as fast as one encode() call over all chunks.
    chunks = sorted(chunks, key=lambda c: len(c.page_content))
    with tqdm(total=len(chunks), desc="Embedding", unit="chunk", disable=_quiet(progress, len(chunks) < 200)) as bar:
        for start in range(0, len(chunks), settings.write_batch):
            batch = chunks[start : start + settings.write_batch]
            vectors = embeddings.embed_documents([c.page_content for c in batch])
            collection.upsert(
                ids=[c.id for c in batch],
                embeddings=vectors,
                documents=[c.page_content for c in batch],
                metadatas=[c.metadata for c in batch],
            )
            bar.update(len(batch))


def _sources_in_store(collection) -> set[str]:  # noqa: ANN001
    sources: set[str] = set()
    total = collection.count()
    for offset in range(0, total, 5000):
        page = collection.get(include=["metadatas"], limit=5000, offset=offset)
        sources.update(m["source"] for m in page["metadatas"] if m and "source" in m)
    return sources


def _quiet(progress: bool | None, small: bool) -> bool | None:
    """tqdm's `disable`: forced by `progress`, else hidden for small jobs and when stderr is not a terminal."""
    if progress is not None:
        return not progress
    return True if small else None



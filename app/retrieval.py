"""Hybrid retrieval over every chunk: cosine similarity to all embeddings (from Chroma, held in memory, no approximate
index) and BM25 (bm25s), fused by weighted scores (default) or reciprocal rank fusion."""

from __future__ import annotations

import re
import threading
import time
from itertools import combinations
from typing import Any, Literal

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from pydantic import ConfigDict

from app.grounding import acronyms
from app.spelling import Speller
from config import Settings
from vectorstore import change_stamp, get_embeddings, open_collection


PAGE = 5000
"""Chunks read from the store per request when building the index."""

MASKS = 64
"""Filters whose chunk masks are kept between questions (100 KB each at 100k chunks)."""

PROXIMITY_WINDOW = 8
"""Two words of the question count as near each other in a passage when at most this many content words apart."""

CHECK_SECONDS = 2.0
"""How often the index asks the store whether it changed (its size and its change stamp): a `count()` costs about
10 ms at 100k chunks, and asking on every question made it the largest part of retrieval time."""


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lowercased, stemmed words without NLTK's 179 English stop words (bm25s `en_plus`): with Lucene's 33 the
    question words ('what', 'does', 'which') stayed and, as a corpus grows, outweighed the question's subject."""
    import bm25s
    import Stemmer

    return bm25s.tokenize(texts, stopwords="en_plus", stemmer=Stemmer.Stemmer("english"), return_ids=False, show_progress=False)


def keyword_index(texts: list[str], b: float, idf_chunks: int) -> Any | None:
    """A BM25 index (bm25s) of these texts, None when they hold no word but stop words; its word weight is ln(1 + min(N, idf_chunks) / df), N chunks of which
    df hold the word, rather than Lucene's ln(1 + (N - df + 0.5) / (df + 0.5)).

    Lucene's weight grows with N for every word, and more for common words than rare ones: 98k chunks of unrelated
    text re-weighed the SQuAD questions' words against each other and swapped passages ranked 3 to 7 (4 test
    questions lost their gold passage at 100k chunks, 2 gained it). Past `idf_chunks` the weight depends on df
    alone: chunks that do not use a question's words no longer change how its words count. bm25s keeps each word's
    scores (weight x term frequency part) as one column of a sparse matrix, so each column is rescaled.
    """
    import bm25s

    tokens = tokenize(texts)
    if not any(tokens):  # bm25s cannot index a corpus without words
        return None
    bm25 = bm25s.BM25(method="lucene", b=b)
    bm25.index(tokens, show_progress=False)
    scores = bm25.scores
    df = np.diff(scores["indptr"])
    chunks = scores["num_docs"]
    lucene = np.log1p((chunks - df + 0.5) / (df + 0.5))  # what bm25s multiplied in (> 0: 1 <= df <= chunks)
    capped = np.log1p(min(chunks, idf_chunks) / df)
    scores["data"] = (scores["data"] * np.repeat(capped / lucene, df)).astype(scores["data"].dtype)
    return bm25


def proximity(query: list[str], passage: list[str], window: int = PROXIMITY_WINDOW) -> float:
    """The share of pairs of distinct query words (stemmed, no stop words) that occur within `window` words of each
    other in the passage: 1.0 when every pair does, 0.0 for a passage that has the words only far apart (or not)."""
    words = list(dict.fromkeys(query))
    positions: dict[str, list[int]] = {word: [] for word in words}
    for position, word in enumerate(passage):
        if word in positions:
            positions[word].append(position)
    pairs = list(combinations(words, 2))
    near = sum(1 for a, b in pairs if any(abs(x - y) <= window for x in positions[a] for y in positions[b]))
    return near / len(pairs) if pairs else 0.0


class CorpusIndex:
    """Every chunk of the collection in memory: text and metadata, a BM25 index and the embedding Chroma stores.

    Rebuilt when the collection's size or change stamp changes (checked every `CHECK_SECONDS`): an ingest that
    edits a document often keeps the size, and every ingest that writes or deletes renews the stamp. Dense search is exhaustive, a
    matrix product over all embeddings, because Chroma's HNSW index loses the few passages of a topic among many
    unlike chunks: on the 100k-chunk benchmark store a SQuAD chunk's own embedding found that chunk in its top 5
    for 31% of chunks (chroma-core/chroma#2250 reports the same). The embeddings are kept as bfloat16 torch
    tensors (768 bytes a chunk: 77 MB at 100k): the product runs in torch's thread pool, which the embedding model
    also uses (numpy's OpenBLAS threads spinning beside torch's tripled the query time), in 8 ms at 100k chunks.
    """

    def __init__(self, collection: Any, embeddings: Embeddings, bm25_b: float, idf_chunks: int) -> None:
        self.collection = collection
        self.embeddings = embeddings
        self.bm25_b = bm25_b
        self.idf_chunks = idf_chunks
        self._lock = threading.Lock()
        self._size = -1
        self._stamp = ""
        self._checked = 0.0
        self._bm25: Any = None
        self._docs: list[Document] = []
        self._vectors: Any = None
        self._acronyms: dict[str, str] = {}
        self._by_id: dict[str, Document] = {}
        self._outside: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
        self._speller: Speller | None = None

    def _refresh(self) -> None:
        import torch

        if self._size >= 0 and time.monotonic() - self._checked < CHECK_SECONDS:
            return
        stamp = change_stamp(self.collection)
        size = self.collection.count()
        self._checked = time.monotonic()
        if size == self._size and stamp == self._stamp:
            return
        docs, vectors = self._load(size)
        self._docs = docs
        self._vectors = torch.from_numpy(vectors).to(torch.bfloat16) if len(docs) else None
        self._by_id = {d.id: d for d in docs}
        self._outside = {}
        self._acronyms = {}
        for doc in docs:
            for short, long in acronyms(doc.page_content).items():
                self._acronyms.setdefault(short, long)
        self._bm25 = keyword_index([d.page_content for d in docs], self.bm25_b, self.idf_chunks)
        self._speller = None  # built again from the new chunks when first asked for
        self._size, self._stamp = size, stamp

    def _load(self, size: int) -> tuple[list[Document], np.ndarray]:
        """Every chunk and its embedding (float32 rows). The first load reads the embeddings Chroma stores; a reload
        keeps those of chunks it already holds and fetches only the new chunks' ones."""
        from chromadb.errors import InternalError

        if self._vectors is None:
            try:
                return self._read(size, with_embeddings=True)
            except InternalError:  # written by another process since this one opened the store: see below
                pass
        docs, _ = self._read(size, with_embeddings=False)
        held = {d.id: row for row, d in enumerate(self._docs)} if self._vectors is not None else {}
        kept = [(i, held[d.id]) for i, d in enumerate(docs) if d.id in held]
        new = [i for i, d in enumerate(docs) if d.id not in held]
        vectors = np.zeros((len(docs), self.embeddings.dimension), dtype=np.float32)
        if kept:
            vectors[[i for i, _ in kept]] = self._vectors[[row for _, row in kept]].float().numpy()
        for start in range(0, len(new), PAGE):
            batch = [docs[i] for i in new[start : start + PAGE]]
            try:
                got = self.collection.get(ids=[d.id for d in batch], include=["embeddings"])
                by_id = dict(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32), strict=True))
                fetched = np.stack([by_id[d.id] for d in batch])
            except InternalError:
                # Chroma's embedded mode keeps its vector index per process: chunks that another process wrote to a
                # local store (`python -m ingest` beside a running app) have no embedding here ("Error finding id").
                # They are embedded again with the model that embedded them (the collection records it).
                fetched = np.asarray(self.embeddings.embed_documents([d.page_content for d in batch]), dtype=np.float32)
            vectors[new[start : start + PAGE]] = fetched
        return docs, vectors

    def _read(self, size: int, with_embeddings: bool) -> tuple[list[Document], np.ndarray | None]:
        """The store's chunks, paged (one get() of 100k chunks exceeds SQLite's variable limit), and their stored
        embeddings when asked."""
        docs: list[Document] = []
        pages = []
        include = ["documents", "metadatas", *(["embeddings"] if with_embeddings else [])]
        for offset in range(0, size, PAGE):
            got = self.collection.get(include=include, limit=PAGE, offset=offset)
            docs.extend(
                Document(page_content=text, metadata=dict(meta), id=chunk_id)
                for chunk_id, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            )
            if with_embeddings:
                pages.append(np.asarray(got["embeddings"], dtype=np.float32).reshape(len(got["ids"]), -1))
        if not with_embeddings:
            return docs, None
        return docs, np.concatenate(pages) if pages else np.zeros((0, self.embeddings.dimension), dtype=np.float32)

    def _snapshot(self) -> tuple[list[Document], Any, Any]:
        with self._lock:
            self._refresh()
            return self._docs, self._vectors, self._bm25

    @property
    def documents(self) -> list[Document]:
        return self._snapshot()[0]

    def get(self, chunk_id: str) -> Document | None:
        """The chunk with this id, if it is in the index."""
        with self._lock:
            self._refresh()
            return self._by_id.get(chunk_id)

    def speller(self) -> Speller:
        """The corpus's spelling corrector (`app.spelling`), built once per load of the chunks."""
        with self._lock:
            self._refresh()
            if self._speller is None:
                self._speller = Speller.from_texts(d.page_content for d in self._docs)
            return self._speller

    def expand(self, query: str) -> str:
        """Spell out initialisms that the corpus defines: "Who leads HKU?" also asks about "Hong Kong University"."""
        with self._lock:
            self._refresh()
            known = self._acronyms
        extra = [known[w.lower()] for w in re.findall(r"\b[A-Z]{2,6}\b", query) if w.lower() in known]
        return f"{query} ({'; '.join(extra)})" if extra else query

    def scores(self, words: list[str], vector: list[float], where: dict[str, str] | None = None) -> tuple[list[Document], np.ndarray, np.ndarray]:
        """For every chunk: cosine similarity to the query vector and BM25 score of the query's words (as `tokenize`
        gives them); chunks whose metadata do not match `where` score -inf on both."""
        import torch

        docs, vectors, bm25 = self._snapshot()
        if not docs:
            empty = np.zeros(0, dtype=np.float32)
            return docs, empty, empty
        dense = (vectors @ torch.tensor(vector, dtype=torch.bfloat16)).float().numpy()
        keyword = bm25.get_scores(words) if words and bm25 else np.zeros(len(docs), dtype=np.float32)
        if where:
            outside = self._outside_of(docs, where)
            dense[outside] = -np.inf
            keyword = np.where(outside, -np.inf, keyword)
        return docs, dense, keyword

    def _outside_of(self, docs: list[Document], where: dict[str, str]) -> np.ndarray:
        """Which chunks a filter excludes; kept per filter until the index is rebuilt (a pass over every chunk's
        metadata costs tens of milliseconds at 100k chunks)."""
        key = tuple(sorted(where.items()))
        outside = self._outside.get(key)
        if outside is None or len(outside) != len(docs):
            outside = ~np.array([all(d.metadata.get(k) == v for k, v in where.items()) for d in docs], dtype=bool)
            with self._lock:  # filters come from users: keep at most MASKS of them
                if len(self._outside) >= MASKS:
                    self._outside.clear()
                self._outside[key] = outside
        return outside

    def vectors(self, indices: list[int]) -> np.ndarray:
        """The embeddings of these chunks (as positions in `documents`), as float32."""
        return self._snapshot()[1][indices].float().numpy()


class HybridRetriever(BaseRetriever):
    """Dense (exhaustive, bfloat16) and BM25 scores over every chunk, fused; optional MMR among the best `fetch_k`.

    `fusion="weighted"` (default) ranks by cosine + `keyword_weight` x BM25 / (best BM25 of the query): BM25 scores
    are scaled to the query's best so that the weight means the same for every question. `fusion="rrf"` ranks by
    reciprocal rank fusion of the top `fetch_k` of each ranking. On 200 SQuAD tune questions recall@5 was 0.935 /
    0.905 / 0.91 at 1.5k / 10k / 100k chunks with weighted scores (weight 0.5) against 0.915 / 0.895 / 0.875 with RRF.

    With weighted fusion the best `fetch_k` passages then gain `proximity_weight` x `proximity()`: passages where
    the question's words stand near each other rise above passages that only contain them. On all 1,721 answerable
    SQuAD tune questions it lifted recall@5 at every corpus size: 0.952 -> 0.956 at 1.5k chunks, 0.952 -> 0.956 at
    100k (filler of unrelated words), 0.933 -> 0.937 at 100k (filler of the articles' own words); weight and window
    were chosen on the tune split.

    BM25's length normalization b and its word-weight cap (`keyword_index`) were chosen on the same tune questions
    and sizes (README, Measured scaling).

    `invoke(query, where={"source": ...})` restricts both rankings to chunks whose metadata match.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    """A `CorpusIndex` over the chunk collection."""
    embeddings: Embeddings
    k: int = 4
    fetch_k: int = 20
    fusion: Literal["weighted", "rrf"] = "weighted"
    keyword_weight: float = 0.5
    proximity_weight: float = 0.2
    rrf_k: int = 60
    mmr: bool = False

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, where: dict[str, str] | None = None
    ) -> list[Document]:
        vector = self.embeddings.embed_query(query)
        words = tokenize([query])[0]
        docs, dense, keyword = self.index.scores(words, vector, where)
        if not docs:
            return []
        if self.fusion == "rrf":
            fused = _rrf_scores([_top(dense, self.fetch_k), _top(keyword, self.fetch_k, positive=True)], len(docs), self.rrf_k)
        else:
            best = float(keyword.max())
            fused = dense + self.keyword_weight * (np.maximum(keyword, 0.0) / best if best > 0 else 0.0)
            if self.proximity_weight > 0:
                pool = _top(fused, self.fetch_k)
                passages = tokenize([docs[i].page_content for i in pool])
                for i, passage in zip(pool, passages, strict=True):
                    fused[i] += self.proximity_weight * proximity(words, passage)
        order = _top(fused, self.fetch_k if self.mmr else self.k)
        if self.mmr and order:
            chosen = maximal_marginal_relevance(np.asarray(vector), self.index.vectors(order), k=min(self.k, len(order)))
            order = [order[i] for i in chosen]
        return [
            Document(page_content=docs[i].page_content, metadata={**docs[i].metadata, "score": round(float(fused[i]), 4)}, id=docs[i].id)
            for i in order[: self.k]
        ]


def _top(scores: np.ndarray, k: int, positive: bool = False) -> list[int]:
    """Indices of the k highest finite scores (above 0 with `positive`), best first."""
    k = min(k, len(scores))
    if k <= 0:
        return []
    candidates = np.argpartition(-scores, k - 1)[:k]
    ranked = candidates[np.argsort(-scores[candidates], kind="stable")]
    return [int(i) for i in ranked if np.isfinite(scores[i]) and (scores[i] > 0 or not positive)]


def _rrf_scores(rankings: list[list[int]], size: int, rrf_k: int) -> np.ndarray:
    """Reciprocal rank fusion: each chunk scores the sum of 1 / (rrf_k + rank) over the rankings it is in."""
    fused = np.full(size, -np.inf)
    for ranking in rankings:
        for rank, i in enumerate(ranking, start=1):
            fused[i] = (0.0 if fused[i] == -np.inf else fused[i]) + 1.0 / (rrf_k + rank)
    return fused



def get_retriever(settings: Settings, k: int | None = None) -> HybridRetriever:
    """The hybrid retriever over the settings' collection, returning `k` passages (default `RAG_TOP_K`)."""
    return HybridRetriever(
        index=CorpusIndex(open_collection(settings), get_embeddings(settings), settings.bm25_b, settings.bm25_idf_chunks),
        embeddings=get_embeddings(settings), k=k or settings.top_k, fetch_k=settings.fetch_k, fusion=settings.fusion,
        keyword_weight=settings.keyword_weight, proximity_weight=settings.proximity_weight, rrf_k=settings.rrf_k,
        mmr=settings.mmr,
    )

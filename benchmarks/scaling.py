"""Retrieval latency and recall at growing corpus sizes, local store and Chroma server; ingest throughput at 10k+;
resident memory of the app on the largest store; a plot of latency against size.

Corpus: the 20 SQuAD articles (1,509 chunks) plus synthetic filler documents of random words, ingested through the
real pipeline (real embeddings). `--filler uniform` (default, the README's table) draws every distinct word of the SQuAD
articles equally often: a stress case where every filler chunk is made of the rare words questions ask about (each
such word lands in about 400 filler chunks at 100k). `--filler zipf` draws the articles' words as often as the
articles use them. `--filler disjoint` draws English words of the embedding model's vocabulary that never occur
(stemmed) in the articles or their questions: size without competition, the case where the SQuAD questions can
still find their gold paragraphs, so that a drop in recall is the engine's (as Chroma's HNSW index showed).
Questions: answerable SQuAD questions of the test articles; a hit is the gold paragraph among the top 5 passages.

Run: .venv/bin/python benchmarks/scaling.py [--sizes 10000 100000] [--questions N] [--filler KIND] [--workdir DIR]. Localhost only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.evaluate import squad_sample  # noqa: E402
from app.retrieval import get_retriever  # noqa: E402
from config import ROOT, Settings  # noqa: E402
from ingest.chunking import split_document  # noqa: E402
from ingest.loaders import load_document, source_id_for  # noqa: E402
from ingest.pipeline import ingest  # noqa: E402
from ingest.squad import article_text, load_articles, write_corpus  # noqa: E402
from tests.servers import free_port, wait_until_ok  # noqa: E402
from vectorstore import get_embeddings, open_collection  # noqa: E402

SQUAD = ROOT.parent / "shared" / "evaldata" / "squad2-dev-20-articles.json"


def wait_ok(url: str, seconds: float) -> None:
    """Poll `url` until it answers 200; give up after `seconds`."""
    if not wait_until_ok(url, seconds):
        raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def write_filler(folder: Path, chunks: int, words: tuple[list[str], list[int] | None], seed: int, prefix: str) -> None:
    """Documents of 100 paragraphs, each about 350 characters (one chunk), of SQuAD words in random order.

    `words` is a vocabulary and its weights: corpus counts draw words as often as English text uses them (the
    realistic filler); no weights draw every word of the vocabulary equally often, so each chunk is dense in rare
    words that questions also contain (the stress filler).
    """
    vocabulary, weights = words
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for doc in range(0, chunks, 100):
        paragraphs = []
        for _ in range(min(100, chunks - doc)):
            sentences = [" ".join(rng.choices(vocabulary, weights, k=rng.randint(9, 13))).capitalize() + "." for _ in range(5)]
            paragraphs.append(" ".join(sentences))
        (folder / f"{prefix}-{doc // 100:05d}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")


def filler_words(kind: str) -> tuple[list[str], list[int] | None]:
    """The SQuAD articles' words with their counts (zipf), their distinct words of three letters or more (uniform), or
    the embedding model's whole English words of three letters or more whose stem is no stem of the articles' or
    their questions' words (disjoint)."""
    paragraphs = [p for a in load_articles(SQUAD) for p in a["paragraphs"]]
    text = " ".join(p["context"] for p in paragraphs)
    if kind == "disjoint":
        import Stemmer

        stem = Stemmer.Stemmer("english").stemWord
        asked = " ".join(q["question"] for p in paragraphs for q in p["qas"])
        taken = {stem(w.lower()) for w in re.findall(r"[A-Za-z]+", f"{text} {asked}")}
        vocabulary = get_embeddings(Settings()).model.tokenizer.get_vocab()
        return sorted(w for w in vocabulary if re.fullmatch(r"[a-z]{3,}", w) and stem(w) not in taken), None
    if kind == "uniform":
        return sorted({w.lower() for w in re.findall(r"[A-Za-z]{3,}", text)}), None
    counts = Counter(w.lower() for w in re.findall(r"[A-Za-z]+", text))
    return list(counts), list(counts.values())


def gold_spans(corpus: Path) -> dict[tuple[str, int], tuple[str, int, int]]:
    spans = {}
    for article in load_articles(SQUAD):
        text = article_text(article)
        source = source_id_for(corpus / f"{article['title']}.txt", ROOT)
        offset = 0
        for index, paragraph in enumerate(article["paragraphs"]):
            start = text.index(paragraph["context"].strip(), offset)
            spans[(article["title"], index)] = (source, start, start + len(paragraph["context"].strip()))
            offset = start
    return spans


def measure(settings: Settings, questions: list[dict], spans: dict) -> dict:
    collection = open_collection(settings)
    retriever = get_retriever(settings, k=5)
    started = time.perf_counter()
    retriever.index.documents  # noqa: B018 - loads chunks and embeddings, builds BM25, as the app does at start
    index_s = time.perf_counter() - started
    latencies, hits = [], 0
    for qa in questions:
        source, start, end = spans[(qa["title"], qa["paragraph"])]
        t0 = time.perf_counter()
        passages = retriever.invoke(retriever.index.expand(qa["question"]))
        latencies.append((time.perf_counter() - t0) * 1000)
        hits += any(p.metadata["source"] == source and p.metadata["start"] < end and start < p.metadata["end"] for p in passages)
    return {
        "chunks": collection.count(), "index_build_s": round(index_s, 2),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1), "p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "recall_at_5": round(hits / len(questions), 3), "hits": hits, "questions": len(questions),
    }


def with_server(path: Path, questions: list[dict], spans: dict, settings: Settings) -> dict:
    """The same measurement through `chroma run` serving a copy of the local store."""
    copy = path.with_name(path.name + "-server")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(path, copy)
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("chroma")), "run", "--path", str(copy), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_ok(f"http://127.0.0.1:{port}/api/v2/heartbeat", 60)
        return measure(settings.model_copy(update={"chroma_host": "127.0.0.1", "chroma_port": port}), questions, spans)
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(copy, ignore_errors=True)


def app_memory(settings: Settings) -> float:
    """Resident memory (MiB) of `python -m app` after start-up and one answer, on the given store."""
    port = free_port()
    env = {**os.environ, "RAG_CHROMA_PATH": str(settings.chroma_path), "RAG_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ok(f"{url}/api/health", 300)
        httpx.post(f"{url}/api/ask", json={"question": "How long is the Rhine?"}, timeout=300)
        status = Path(f"/proc/{process.pid}/status").read_text()
        return round(int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024, 1)
    finally:
        process.terminate()
        process.wait(timeout=60)


def ingest_throughput(filler: Path, settings: Settings) -> dict:
    """Ingest the filler folder through the pipeline; compare with the raw encode rate on its first 100 documents."""
    texts = [c.page_content for f in sorted(filler.glob("*.txt"))[:100]
             for c in split_document(load_document(f, ROOT), settings.chunk_size, settings.chunk_overlap)]
    started = time.perf_counter()
    summary = ingest([filler], settings, progress=False)
    pipeline = summary.chunks_written / (time.perf_counter() - started)
    model = get_embeddings(settings).model
    started = time.perf_counter()
    model.encode(texts, batch_size=settings.embedding_batch_size, normalize_embeddings=True)
    raw = len(texts) / (time.perf_counter() - started)
    return {"ingest_chunks": summary.chunks_written, "pipeline_chunks_per_s": round(pipeline, 1),
            "raw_encode_chunks_per_s": round(raw, 1), "ratio": round(pipeline / raw, 3)}


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for mode, marker in (("local", "o"), ("server", "s")):
        points = [r for r in rows if r["mode"] == mode]
        sizes = [r["chunks"] for r in points]
        ax.plot(sizes, [r["p50_ms"] for r in points], marker=marker, label=f"{mode} p50")
        ax.plot(sizes, [r["p95_ms"] for r in points], marker=marker, linestyle="--", label=f"{mode} p95")
    ax.set_xscale("log")
    ax.set_xlabel("chunks in the store")
    ax.set_ylabel("hybrid retrieval latency (ms)")
    ax.set_title("Retrieval latency against corpus size (2 cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="total chunks after filler")
    parser.add_argument("--questions", type=int, default=0, help="answerable test questions to ask (default 0: all 1,891)")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "scaling.png")
    parser.add_argument("--filler", choices=["uniform", "zipf", "disjoint"], default="uniform", help="the filler's words")
    parser.add_argument("--workdir", type=Path, help="keep corpora and stores here; a rerun reuses them (default: a temporary folder)")
    args = parser.parse_args()
    _, sample = squad_sample(SQUAD, "test", 100_000, seed=0)
    questions = [q for q in sample if q["answers"]][: args.questions or None]
    words = filler_words(args.filler)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        corpus = root / "squad"
        write_corpus(SQUAD, corpus)
        spans = gold_spans(corpus)
        previous = root / "chroma-squad"
        settings = Settings(chroma_path=previous)
        get_embeddings(settings)
        ingest([corpus], settings, progress=False)
        for size in [0, *args.sizes]:
            # One store per size (kept in --workdir, so a rerun measures without re-ingesting).
            path = root / f"chroma-{args.filler}-{size}" if size else previous
            settings = Settings(chroma_path=path)
            if not path.exists():
                shutil.copytree(previous, path)
                filler = root / f"filler-{args.filler}-{size}"
                if not filler.exists():
                    write_filler(filler, size - open_collection(settings).count(), words, seed=size, prefix=f"filler{size}")
                print(json.dumps(ingest_throughput(filler, settings)), flush=True)
            for mode in ("local", "server"):
                result = measure(settings, questions, spans) if mode == "local" else with_server(path, questions, spans, settings)
                rows.append({"mode": mode, **result})
                print(json.dumps(rows[-1]), flush=True)
            previous = path
        print(json.dumps({"app_rss_mib": app_memory(settings), "chunks": open_collection(settings).count()}), flush=True)
    plot(rows, args.plot)


if __name__ == "__main__":
    main()

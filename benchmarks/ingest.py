"""Ingestion throughput on the 776 SQuAD paragraphs, beside the raw `SentenceTransformer.encode` limit.

Run: .venv/bin/python benchmarks/ingest.py [--repeat N]. Uses a temporary store; prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import ROOT, load_settings  # noqa: E402
from ingest.chunking import split_document  # noqa: E402
from ingest.loaders import load_document  # noqa: E402
from ingest.pipeline import ingest  # noqa: E402
from ingest.squad import write_corpus  # noqa: E402
from vectorstore import get_embeddings  # noqa: E402

SQUAD = ROOT.parent / "shared" / "evaldata" / "squad2-dev-20-articles.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        files = write_corpus(args.squad, corpus)
        settings = load_settings(chroma_path=Path(tmp) / "chroma")
        model = get_embeddings(settings)  # loaded once, outside both timings
        texts = [c.page_content for f in files for c in split_document(load_document(f, ROOT), settings.chunk_size, settings.chunk_overlap)]
        model.model.encode(texts[:64], batch_size=settings.embedding_batch_size)  # warm-up
        for run in range(args.repeat):
            started = time.perf_counter()
            model.model.encode(texts, batch_size=settings.embedding_batch_size, normalize_embeddings=True)
            raw = len(texts) / (time.perf_counter() - started)
            started = time.perf_counter()
            summary = ingest([corpus], settings, reset=True, progress=False)
            pipeline = summary.chunks_written / (time.perf_counter() - started)
            print(json.dumps({
                "run": run + 1, "documents": summary.documents, "chunks": summary.chunks_written,
                "pipeline_chunks_per_s": round(pipeline, 1), "raw_encode_chunks_per_s": round(raw, 1),
                "ratio": round(pipeline / raw, 3), "cores": os.cpu_count(),
            }), flush=True)


if __name__ == "__main__":
    main()

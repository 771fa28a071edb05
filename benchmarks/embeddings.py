"""The two embedding models side by side, in one run: retrieval, answers, ingest throughput, query latency, memory.

Run: .venv/bin/python benchmarks/embeddings.py [--sample 300] [--out FILE]
For each of all-MiniLM-L6-v2 and multilingual-e5-small, in fresh processes (so memory is the model's own):
- SQuAD 2.0 test split (seed 0, 20-article corpus): retrieval recall@5 and MRR, answer F1 (`python -m app.evaluate`);
- the article's gold set and its Chinese blind set: accuracy (`python -m app.evaluate`, a store per model);
- ingest throughput (chunks per second into a new store) and query latency (embedding one question), peak RSS.
Prints one JSON object: {model: {metric: value}}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import ROOT  # noqa: E402

MODELS = ("all-MiniLM-L6-v2", "multilingual-e5-small")
SQUAD = ROOT.parent / "shared" / "evaldata" / "squad2-dev-20-articles.json"
GOLD_SETS = {"gold": ROOT / "tests" / "gold" / "article.jsonl", "chinese": ROOT / "tests" / "gold" / "article-blind-zh.jsonl"}


def measure_model(model: str) -> dict[str, float]:
    """In this process: ingest the SQuAD corpus into a new store, then embed 200 questions one at a time."""
    import numpy as np

    from config import load_settings
    from ingest.pipeline import ingest
    from ingest.squad import load_articles, write_corpus
    from vectorstore import get_embeddings

    with tempfile.TemporaryDirectory() as tmp:
        files = write_corpus(SQUAD, Path(tmp) / "corpus")
        settings = load_settings(chroma_path=Path(tmp) / "chroma", embedding_model=model)
        started = time.perf_counter()
        embeddings = get_embeddings(settings)
        load_s = time.perf_counter() - started
        embeddings.embed_query("warm up")
        started = time.perf_counter()
        summary = ingest([Path(tmp) / "corpus"], settings, progress=False)
        ingest_s = time.perf_counter() - started
        questions = [qa["question"] for article in load_articles(SQUAD) for p in article["paragraphs"] for qa in p["qas"]][:200]
        latencies = []
        for question in questions:
            t0 = time.perf_counter()
            embeddings.embed_query(question)
            latencies.append((time.perf_counter() - t0) * 1000)
    return {
        "load_s": round(load_s, 2), "documents": len(files), "chunks": summary.chunks_written,
        "ingest_chunks_per_s": round(summary.chunks_written / ingest_s, 1),
        "query_embed_ms_p50": round(float(np.percentile(latencies, 50)), 1),
        "query_embed_ms_p95": round(float(np.percentile(latencies, 95)), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def evaluate(model: str, args: list[str], env: dict[str, str]) -> dict:
    run = subprocess.run(
        [sys.executable, "-m", "app.evaluate", *args], cwd=ROOT, env={**env, "RAG_EMBEDDING_MODEL": model},
        capture_output=True, text=True, check=False,
    )
    if run.returncode:
        raise SystemExit(f"app.evaluate {' '.join(args)} failed for {model}: {run.stderr.strip().splitlines()[-1:]}")
    return json.loads(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=300, help="SQuAD test questions")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # measure one model in this process
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_model(args.child)))
        return
    results: dict[str, dict] = {}
    for model in MODELS:
        child = subprocess.run(
            [sys.executable, __file__, "--child", model], capture_output=True, text=True, check=True, cwd=ROOT
        )
        row = json.loads(child.stdout.strip().splitlines()[-1])
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "RAG_CHROMA_PATH": str(Path(tmp) / "chroma")}
            squad = evaluate(model, [str(SQUAD), "--squad", "--split", "test", "--sample", str(args.sample),
                                     "--store", str(Path(tmp) / "squad" / "chroma")], env)
            row |= {
                "squad_recall_at_5": squad["retrieval_recall_at_5"], "squad_mrr": squad["mrr"],
                "squad_overall_f1": squad.get("overall_f1"), "squad_latency_ms_p50": squad["latency_ms_p50"],
            }
            for name, path in GOLD_SETS.items():
                report = evaluate(model, [str(path)], env)
                row[f"{name}_answerable"] = report["answerable_accuracy"]
                row[f"{name}_unanswerable_refused"] = report["unanswerable_refused"]
                row[f"{name}_recall_at_5"] = report["retrieval_recall_at_5"]
                row[f"{name}_latency_ms_p50"] = report["latency_ms_p50"]
        results[model] = row
        print(model, json.dumps(row), file=sys.stderr)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

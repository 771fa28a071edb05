"""Answer latency on the article with the embedded model: model load (both copies: plain and with the reading
adapter), end-to-end p50/p95, and which CPU kernels llama.cpp was built with (the Makefile builds a portable
x86-64-v3 target).

Run: .venv/bin/python benchmarks/answer.py [--rounds N]. Uses a temporary store; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.chain import AnswerEngine  # noqa: E402
from app.llm import local_model_path  # noqa: E402
from config import ROOT, load_settings  # noqa: E402
from ingest.pipeline import ingest  # noqa: E402

GOLD = ROOT / "tests" / "gold" / "article.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the gold questions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(chroma_path=Path(tmp) / "chroma")
        ingest([settings.corpus_path], settings, progress=False)
        local_model_path(settings)  # assembled once, outside the timing
        engine = AnswerEngine(settings)  # the copies are made as the app makes them, not yet loaded
        started = time.perf_counter()
        engine.llm.load()
        if engine.none_reader is not None:  # the copy with the reading adapter (RAG_LLM_ADAPTER)
            engine.none_reader.load()
        load_s = time.perf_counter() - started
        engine.warm_up()
        items = [json.loads(line) for line in GOLD.read_text().splitlines() if line.strip()]
        totals = []
        for _ in range(args.rounds):
            for item in items:
                started = time.perf_counter()
                engine.ask(item["question"], item.get("history", []))
                totals.append((time.perf_counter() - started) * 1000)
    import llama_cpp

    print(json.dumps({
        "questions": len(totals), "cores": os.cpu_count(), "model_load_s": round(load_s, 2),
        "latency_ms_p50": round(float(np.percentile(totals, 50)), 1),
        "latency_ms_p95": round(float(np.percentile(totals, 95)), 1),
        "llama_cpu": llama_cpp.llama_print_system_info().decode().strip(),
    }, indent=2))


if __name__ == "__main__":
    main()

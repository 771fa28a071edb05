"""What the question log costs an answer: the time to store one answered question (SQLite file, and PostgreSQL when
Debian's server is installed) against the answer latency p50 of the gold questions on the article.

Run: .venv/bin/python benchmarks/question_log.py. Uses temporary stores; prints one JSON object. The PostgreSQL
server is the tests' (fsync off), so its figure is the log's own work, not the disk's.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.chain import AnswerEngine  # noqa: E402
from app.questionlog import QuestionLog  # noqa: E402
from config import ROOT, load_settings  # noqa: E402
from ingest.pipeline import ingest  # noqa: E402
from tests.postgres import PostgresServer, postgres_bin  # noqa: E402

GOLD = ROOT / "tests" / "gold" / "article.jsonl"


def main() -> None:
    questions = [json.loads(line)["question"] for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(chroma_path=Path(tmp) / "chroma")
        ingest([settings.corpus_path], settings, progress=False)
        engine = AnswerEngine(settings)
        engine.warm_up()
        answers, latencies = [], []
        for question in questions:
            started = time.perf_counter()
            answers.append(engine.ask(question))
            latencies.append((time.perf_counter() - started) * 1000)
        answer_p50 = float(np.percentile(latencies, 50))
        server = PostgresServer() if postgres_bin() else None
        databases = {"sqlite": f"sqlite:///{Path(tmp) / 'questions.sqlite'}"}
        if server:
            databases["postgresql"] = server.new_database()
        report: dict[str, object] = {"questions": len(questions), "answer_p50_ms": round(answer_p50, 1)}
        try:
            for name, url in databases.items():
                log = QuestionLog(url, settings.question_log_days)
                timings = []
                for _ in range(3):
                    for question, answer in zip(questions, answers, strict=True):
                        started = time.perf_counter()
                        log.record(question, answer, "api")
                        timings.append((time.perf_counter() - started) * 1000)
                log.close()
                p50 = float(np.percentile(timings, 50))
                report[name] = {
                    "record_p50_ms": round(p50, 2), "record_p95_ms": round(float(np.percentile(timings, 95)), 2),
                    "share_of_answer_p50": f"{100 * p50 / answer_p50:.2f}%",
                }
        finally:
            if server:
                server.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""`POST /api/ask` latency under 1, 4 and 16 concurrent clients, each for a fixed time, against a local app.

Run: .venv/bin/python benchmarks/api_load.py [--seconds 60] [--clients 1 4 16]. Starts `python -m app` on a free
localhost port with a temporary store (the bundled article), sends only to it, and stops it. One JSON line per level.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import ARTICLE, ROOT, AppServer  # noqa: E402

GOLD = ROOT / "tests" / "gold" / "article.jsonl"


def start_app(tmp: Path) -> tuple[subprocess.Popen, str]:
    """`python -m app` on a free localhost port with a store in `tmp` (the bundled article); its log in tmp/app.log."""
    try:
        server = AppServer(tmp, documents={ARTICLE.name: ARTICLE.read_text(encoding="utf-8")})
    except RuntimeError as err:
        raise SystemExit(str(err)) from None
    return server.process, server.url


def run_level(url: str, clients: int, seconds: float, questions: list[dict]) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    feed = itertools.cycle(questions)

    def client() -> None:
        with httpx.Client(timeout=120) as http:
            while time.perf_counter() < deadline:
                with lock:
                    item = next(feed)
                started = time.perf_counter()
                try:
                    response = http.post(f"{url}/api/ask", json={"question": item["question"], "history": item.get("history", [])})
                    ok = response.status_code == 200 and "answer" in response.json()
                except httpx.HTTPError as err:
                    ok, response = False, err
                with lock:
                    if ok:
                        latencies.append((time.perf_counter() - started) * 1000)
                    else:
                        errors.append(str(getattr(response, "status_code", response)))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "clients": clients, "seconds": round(elapsed, 1), "requests": len(latencies) + len(errors), "errors": len(errors),
        "throughput_rps": round(len(latencies) / elapsed, 2),
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
        "latency_ms_p95": round(float(np.percentile(latencies, 95)), 1) if latencies else None,
        "cores": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    questions = [json.loads(line) for line in GOLD.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_app(Path(tmp))
        try:
            for clients in args.clients:
                print(json.dumps(run_level(url, clients, args.seconds, questions)), flush=True)
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()

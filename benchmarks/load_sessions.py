"""Load test: concurrent chat sessions for a fixed time, half through `POST /api/ask`, half through the Gradio queue.

Each session asks the gold questions in turn (API sessions send the conversation so far as history; Gradio sessions
use `gradio_client`, as a script would). After a warm-up under the same load (--warmup seconds, every session at
least once) the app's resident memory is read; then the sessions run for `--seconds`; no new question starts after that, the ones in flight finish.
Reported: answers, 5xx, dropped requests (errors, timeouts, refusals of service), p50/p95 per path, memory before and
after. Exit status 1 when any 5xx or dropped request, or memory after is more than 10% above before.

Bounded: at most --sessions clients, --seconds of new questions, --timeout per question; localhost only.
Run: .venv/bin/python benchmarks/load_sessions.py [--sessions 50] [--seconds 60] [--url URL --pid PID]
Without --url it starts `python -m app` on a free port with a temporary store (the bundled article).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from api_load import GOLD, start_app  # benchmarks/ is on sys.path when a script in it runs


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


class Tally:
    """Outcomes of every question, by path; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {"api": [], "gradio": []}
        self.server_errors: list[str] = []
        self.dropped: list[str] = []

    def record(self, path: str, seconds: float, problem: str | None = None, server_error: bool = False) -> None:
        with self.lock:
            if server_error:
                self.server_errors.append(problem or "5xx")
            elif problem:
                self.dropped.append(f"{path}: {problem}")
            else:
                self.latencies[path].append(seconds)


def api_session(url: str, questions: list[str], timeout: float) -> Callable[[int], tuple[str | None, bool]]:
    client = httpx.Client(timeout=timeout)
    history: list[dict[str, str]] = []

    def ask(turn: int) -> tuple[str | None, bool]:
        question = questions[turn % len(questions)]
        response = client.post(f"{url}/api/ask", json={"question": question, "history": history[-4:]})
        if response.status_code >= 500:
            return f"{response.status_code} {response.text[:120]}", True
        if response.status_code != 200:
            return f"{response.status_code} {response.text[:120]}", False
        history.extend([{"role": "user", "content": question}, {"role": "assistant", "content": response.json()["answer"]}])
        return None, False

    return ask


def gradio_session(url: str, questions: list[str], timeout: float) -> Callable[[int], tuple[str | None, bool]]:
    from gradio_client import Client

    client = Client(url + "/", verbose=False, httpx_kwargs={"timeout": timeout}, max_workers=2, analytics_enabled=False)

    def ask(turn: int) -> tuple[str | None, bool]:
        result = client.predict(questions[turn % len(questions)], api_name="/chat")
        answer = result[0] if isinstance(result, (list, tuple)) else result
        if isinstance(answer, dict):  # a message with its question-log id (metadata) when the log is on
            answer = answer.get("content")
        return (None, False) if isinstance(answer, str) and answer.strip() else (f"empty reply {result!r:.120}", False)

    return ask


def run_sessions(sessions: list[tuple[str, Callable]], until: float, tally: Tally) -> None:
    """Every session asks in a loop until `until` (at least once); waits for all to finish."""

    def loop(path: str, ask: Callable) -> None:
        turn = 0
        while turn == 0 or time.time() < until:
            started = time.perf_counter()
            try:
                problem, server_error = ask(turn)
            except Exception as err:  # noqa: BLE001 - every failure is counted, none ends the run
                problem, server_error = f"{err.__class__.__name__}: {str(err)[:120]}", False
            tally.record(path, time.perf_counter() - started, problem, server_error)
            turn += 1

    threads = [threading.Thread(target=loop, args=session, daemon=True) for session in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50, help="concurrent sessions, half API, half Gradio")
    parser.add_argument("--seconds", type=float, default=60, help="how long new questions are asked")
    parser.add_argument("--warmup", type=float, default=20, help="seconds of the same load before memory is read")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one question may take before it is dropped")
    parser.add_argument("--url", help="an app already running on localhost (default: start one)")
    parser.add_argument("--pid", type=int, help="its process id, for the memory figures")
    args = parser.parse_args()
    if args.url and not re.match(r"^http://(127\.0\.0\.1|localhost)(:\d+)?$", args.url.rstrip("/")):
        raise SystemExit("error: --url must be a localhost address; this load test does not leave the machine")
    questions = [json.loads(line)["question"] for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]

    with tempfile.TemporaryDirectory() as tmp:
        process = None
        if args.url:
            url, pid = args.url.rstrip("/"), args.pid
        else:
            process, url = start_app(Path(tmp))
            pid = process.pid
        try:
            count_api = args.sessions - args.sessions // 2
            sessions = [("api", api_session(url, questions[i::7], args.timeout)) for i in range(count_api)]
            sessions += [("gradio", gradio_session(url, questions[i::5], args.timeout)) for i in range(args.sessions // 2)]
            # Warm-up: every session asks at least once, all of them for --warmup seconds, so that "before" is the
            # resident size of an app that has served this load (models paged in, thread pools and heaps grown).
            run_sessions(sessions, time.time() + args.warmup, Tally())
            before = rss_mib(pid) if pid else None
            tally = Tally()
            started = time.time()
            run_sessions(sessions, started + args.seconds, tally)
            elapsed = time.time() - started
            time.sleep(2)
            after = rss_mib(pid) if pid else None
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=60)

    report = {
        "sessions": args.sessions, "seconds": args.seconds, "elapsed_s": round(elapsed, 1),
        "answers": sum(len(v) for v in tally.latencies.values()),
        "server_errors_5xx": len(tally.server_errors), "dropped": len(tally.dropped),
        "examples": (tally.server_errors + tally.dropped)[:5],
        "rss_before_mib": round(before, 1) if before else None, "rss_after_mib": round(after, 1) if after else None,
    }
    for path, values in tally.latencies.items():
        if values:
            report[f"{path}_answers"] = len(values)
            report[f"{path}_p50_s"] = round(float(np.percentile(values, 50)), 2)
            report[f"{path}_p95_s"] = round(float(np.percentile(values, 95)), 2)
    report["answers_per_s"] = round(report["answers"] / elapsed, 2)
    grew = before and after and after > 1.10 * before
    report["ok"] = not tally.server_errors and not tally.dropped and not grew
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

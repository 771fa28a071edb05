"""The load test script, run as users run it: 50 sessions for 60 s against a freshly started app."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from config import ROOT

pytestmark = pytest.mark.slow  # a 60 s load test


def test_fifty_sessions_for_a_minute_without_errors_or_leak(reliability) -> None:  # noqa: ANN001
    run = subprocess.run(
        [sys.executable, "benchmarks/load_sessions.py", "--sessions", "50", "--seconds", "60"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert run.returncode == 0 and report["ok"], report
    assert report["server_errors_5xx"] == 0 and report["dropped"] == 0
    assert report["api_answers"] > 0 and report["gradio_answers"] > 0
    # each entry answers RAG_CONCURRENCY at a time, so API threads do not crowd out the chat queue (they did: 172 to 35)
    assert min(report["api_answers"], report["gradio_answers"]) >= max(report["api_answers"], report["gradio_answers"]) / 2
    assert report["rss_after_mib"] <= 1.10 * report["rss_before_mib"]
    reliability(
        "50 chat sessions for 60 s", 1,
        "0 5xx, 0 dropped; API and Gradio sessions answered, neither under half the other; memory after within 10% of before",
    )

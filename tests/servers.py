"""What tests and benchmarks both repeat: a free port, an app started in a subprocess and its health, stopping it.

Benchmarks import it as `tests.servers` (they put the repository root on sys.path), so the two cannot drift apart.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTICLE = ROOT / "data" / "yicai-2024-04-29-shanghai-hong-kong-innovation.txt"
SQUAD = ROOT.parent / "shared" / "evaldata" / "squad2-dev-20-articles.json"

HOSTILE_NOTICE = ROOT / "tests" / "hostile" / "notice-to-readers.md"
"""Prompt injection, links to visit, Markdown image/link exfiltration, script: ingested beside the article."""

HOSTILE_DOC = """# Lab notes

Whiskers is the name of the lab cat <img src=x onerror="window.__xss=1"> and it sleeps all day.

The lab opens at <script>window.__xss=2</script>nine in the morning.
"""

TEST_CORPUS = {ARTICLE.name: ARTICLE.read_text(encoding="utf-8"), "lab-notes.md": HOSTILE_DOC}
TEST_CORPUS[HOSTILE_NOTICE.name] = HOSTILE_NOTICE.read_text(encoding="utf-8")
"""The tests' app corpus: the article beside a document with live HTML and one with prompt injection."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ok(url: str, timeout: float = 180, process: subprocess.Popen | None = None, verify: bool = True) -> bool:
    """Poll `url` until it answers 200 (True), the process exits or the time runs out (False); `verify=False` accepts a
    self-signed certificate."""
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline and (process is None or process.poll() is None):
        try:
            if httpx.get(url, timeout=5, verify=verify).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return False


def stop_process(process: subprocess.Popen) -> None:
    """Terminate, and kill after 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class AppServer:
    """`python -m app` in a subprocess on free ports, with its own store and corpus folder (`documents`: file name
    -> text; default `TEST_CORPUS`); the browser tests' host pages get ports too.

    A new `AppServer` on the same `tmp` is a restart: it opens the same store and appends to the same log.
    """

    def __init__(self, tmp: Path, env: dict[str, str] | None = None, documents: dict[str, str] | None = None) -> None:
        self.port, self.host_port, self.other_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.corpus = tmp / "corpus"
        self.corpus.mkdir(exist_ok=True)
        for name, text in (TEST_CORPUS if documents is None else documents).items():
            (self.corpus / name).write_text(text, encoding="utf-8")
        self.env = {
            **os.environ, "RAG_CHROMA_PATH": str(tmp / "chroma"), "RAG_CORPUS_PATH": str(self.corpus),
            "RAG_PORT": str(self.port), "RAG_ALLOWED_ORIGINS": f"http://127.0.0.1:{self.host_port}", **(env or {}),
        }
        self.log_path = tmp / "app.log"
        self.log = self.log_path.open("a")
        self.process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_until_ok(f"{self.url}/api/health", 300, self.process):
            self.kill()
            raise RuntimeError(f"the app did not become healthy: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()

    def kill(self) -> None:
        """`kill -9`, as a crash or the OOM killer would: no shutdown code runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.log.close()

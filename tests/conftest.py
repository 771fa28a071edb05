"""Shared fixtures: every test gets its own store in tmp_path; nothing touches the repo's .chroma folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import ROOT, Settings, load_settings

ARTICLE = ROOT / "data" / "yicai-2024-04-29-shanghai-hong-kong-innovation.txt"
SQUAD = ROOT.parent / "shared" / "evaldata" / "squad2-dev-20-articles.json"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No RAG_* variable of the developer's shell leaks in; the default store is the test's own."""
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_CHROMA_PATH", str(tmp_path / "chroma"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(chroma_path=tmp_path / "chroma")


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m ...` from the repo root with the test's environment (and its RAG_CHROMA_PATH)."""
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=timeout, input=input_text if input_text is not None else "",
    )

"""Building the answer engine for an entry point: make sure the store has documents, then load the models."""

from __future__ import annotations

import sys

from app.chain import AnswerEngine
from config import Settings
from ingest.pipeline import ingest
from vectorstore import open_collection


def ensure_corpus(settings: Settings) -> None:
    """Ingest the default corpus (the bundled article) when the store is empty."""
    if open_collection(settings).count() == 0:
        summary = ingest([settings.corpus_path], settings, progress=False, on_error=lambda line: print(line, file=sys.stderr))
        print(f"Store was empty; ingested {settings.corpus_path}: {summary.line()}", file=sys.stderr)


def build_engine(settings: Settings) -> AnswerEngine:
    ensure_corpus(settings)
    engine = AnswerEngine(settings)
    engine.warm_up()
    return engine

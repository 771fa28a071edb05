"""Ingestion: turn source files into sentence-aware chunks with exact spans and write them to the store."""

from ingest.pipeline import IngestSummary, ingest

__all__ = ["IngestSummary", "ingest"]

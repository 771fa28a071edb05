"""The HTTP API (FastAPI): `POST /api/ask`, `GET /api/health`, and the origin guard shared with the UI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.types import ASGIApp

from app.chain import Answer, AnswerEngine, QuestionError, Turn
from config import Settings
from vectorstore import StoreError, open_collection

MAX_BODY_BYTES = 64 * 1024
"""Largest request body accepted by the API; a question is at most RAG_MAX_QUESTION_CHARS characters."""


class AskRequest(BaseModel):
    question: str = Field(description="The question, at most RAG_MAX_QUESTION_CHARS characters.")
    history: list[Turn] = Field(default_factory=list, description="Earlier turns, oldest first, for follow-ups.")
    source: str | None = Field(None, description="Answer only from this source (a document path as stored).")
    title: str | None = Field(None, description="Answer only from documents with this title.")

    def where(self) -> dict[str, str] | None:
        return metadata_filter(self.source, self.title)


def metadata_filter(source: str | None, title: str | None) -> dict[str, str] | None:
    """A Chroma `where` filter restricting answers to one source and/or title."""
    where = {key: value for key, value in (("source", source), ("title", title)) if value}
    return where or None


class Health(BaseModel):
    status: str
    documents: int = 0
    chunks: int = 0
    embedding_model: str = ""
    llm: str = ""
    detail: str = ""


def corpus_stats(settings: Settings) -> dict[str, Any]:
    """Documents, chunks, document titles and (for a single document) its date, read from the store."""
    collection = open_collection(settings, create=False)
    metadatas = collection.get(include=["metadatas"], where={"chunk_index": 0})["metadatas"]
    return {
        "documents": len(metadatas), "chunks": collection.count(),
        "titles": sorted(m.get("title", m.get("source", "")) for m in metadatas),
        "date": metadatas[0].get("date", "") if len(metadatas) == 1 else "",
    }


class OriginGuard(BaseHTTPMiddleware):
    """Browsers from origins not in RAG_ALLOWED_ORIGINS may neither frame the app nor call it.

    Framing is governed by `Content-Security-Policy: frame-ancestors`; calls are refused (403) when a request
    carries an `Origin` that is neither the app's own nor allowed, so a page elsewhere cannot use the API even
    through endpoints whose CORS answers it does not read. Allowed origins get CORS headers (see `create_api`).
    """

    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        super().__init__(app)
        self.allowed = allowed
        self.frame_ancestors = " ".join(["'self'", *allowed])

    async def dispatch(self, request: Request, call_next: Any) -> Any:
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin and origin != own and origin not in self.allowed and origin != "null":
            return JSONResponse({"error": f"Origin {origin} is not allowed; add it to RAG_ALLOWED_ORIGINS."}, 403)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES and request.url.path.startswith("/api/"):
            return JSONResponse({"error": f"The request body is over {MAX_BODY_BYTES // 1024} KB."}, 413)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = f"frame-ancestors {self.frame_ancestors}"
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


def create_api(engine: AnswerEngine, settings: Settings) -> FastAPI:
    """The FastAPI app with the JSON API; the UI mounts itself on it (see `app.ui.web`)."""
    from fastapi.middleware.cors import CORSMiddleware

    api = FastAPI(
        title="Cited Q&A API",
        description="Answers questions from the ingested documents with verbatim, offset-checked citations.",
        version="1.0",
    )
    api.add_middleware(
        CORSMiddleware, allow_origins=settings.allowed_origins, allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "Authorization"], max_age=600,
    )
    api.add_middleware(OriginGuard, allowed=settings.allowed_origins)

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problem = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        if problem.get("type") == "json_invalid":
            return JSONResponse({"error": "The request body is not valid JSON."}, 400)
        field = ".".join(str(p) for p in problem["loc"] if p != "body")
        message = "The request body must be a JSON object with a 'question'." if not field else f"{field}: {problem['msg']}."
        return JSONResponse({"error": message}, 422)

    @api.post("/api/ask", response_model=Answer, responses={400: {}, 413: {}, 422: {}, 503: {}})
    def ask(request: AskRequest) -> Any:
        """Answer a question (with optional history); the same JSON as `python -m app.ask --json`."""
        try:
            return engine.ask(request.question, request.history, request.where())
        except QuestionError as err:
            return JSONResponse({"error": str(err)}, 422)
        except StoreError as err:
            return JSONResponse({"error": str(err)}, 503, headers={"Retry-After": "5"})
        except Exception as err:  # noqa: BLE001 - a failing model is a 503 for the client, not a 500
            return JSONResponse({"error": f"The answer service is unavailable ({err.__class__.__name__})."}, 503)

    @api.get("/api/health", response_model=Health, responses={503: {"model": Health}})
    def health() -> Any:
        """200 when the store answers and the models are loaded; 503 otherwise."""
        try:
            stats = corpus_stats(settings)
        except Exception as err:  # noqa: BLE001 - any store failure means not ready
            detail = f"the document store cannot be reached or is empty ({err.__class__.__name__})"
            return JSONResponse(Health(status="unavailable", detail=detail).model_dump(), 503)
        return Health(
            status="ok", documents=stats["documents"], chunks=stats["chunks"],
            embedding_model=settings.embedding_model, llm=settings.llm,
        )

    return api

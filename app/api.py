"""The HTTP API (FastAPI): `POST /api/ask`, `POST /api/feedback`, `GET /api/health`, the owner's `/insights`, and the
origin guard shared with the UI."""

from __future__ import annotations

import math
import re
import secrets
import time
from typing import Any, Literal

from anyio import CapacityLimiter, to_thread
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.chain import Answer, AnswerEngine, QuestionError, Turn
from app.errors import bug_message, report_bug
from app.insights import add_insights_routes
from app.llm import LLMUnavailable
from app.questionlog import QuestionLogUnavailable, open_question_log
from config import Settings
from vectorstore import StoreError, is_outage, open_collection

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
    # A lone surrogate (from a JSON "\ud800" escape) matches nothing stored, and Chroma rejects it: make it '?'.
    where = {key: value.encode("utf-8", "replace").decode() for key, value in (("source", source), ("title", title)) if value}
    return where or None


class AskResponse(Answer):
    answer_id: str | None = Field(
        None, description="Id of this answer in the question log, for POST /api/feedback; null when RAG_QUESTION_LOG is false."
    )


class FeedbackRequest(BaseModel):
    answer_id: str = Field(max_length=64, description="The `answer_id` that POST /api/ask returned.")
    rating: Literal["up", "down"] = Field(description="Thumbs up or down.")
    comment: str | None = Field(None, max_length=2000, description="Optional words on what was right or wrong.")


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


ASK_ROUTES = re.compile(r"^/api/ask$|^(/widget)?/gradio_api/(queue/join|call/)")
"""POSTs that put a question to the engine: the JSON API and the chat and widget queues (Gradio)."""
GRADIO_DIRECT = re.compile(r"^(/widget)?/gradio_api/(run|api)/")
"""Gradio's direct routes. The chat's page events use them (history restored on load, starter questions, thumbs):
they need the token from callers without a browser origin, like the queues, but are not questions and do not count
against the rate limit. They refuse the queued answering function (`api_open=False`, `app.ui.web`)."""
FEEDBACK_ROUTE = "/api/feedback"
"""Feedback on an answer: the token and the rate limit of `POST /api/ask` (a budget of its own), no queue."""
RETRY_AFTER_S = 5
"""Retry-After (seconds) on 503: about the time a full queue of the embedded model takes to move on."""


class ForwardedHeaders(ProxyHeadersMiddleware):
    """uvicorn's X-Forwarded-Proto and X-Forwarded-For handling for RAG_TRUSTED_PROXIES, plus X-Forwarded-Host.

    uvicorn leaves X-Forwarded-Host out; behind a proxy that sends its upstream's address as `Host`, the public host
    is only in that header. A peer not in RAG_TRUSTED_PROXIES changes nothing with any of them.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and client[0] in self.trusted_hosts:
            forwarded = dict(scope["headers"]).get(b"x-forwarded-host")
            if forwarded:  # a list when proxies append: the last value is the trusted peer's own
                host = forwarded.split(b",")[-1].strip()
                scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"] + [(b"host", host)]
        await super().__call__(scope, receive, send)


class Guard(BaseHTTPMiddleware):
    """What every request passes before it reaches the API or the chat.

    - Origin allow-list: browsers of origins not in RAG_ALLOWED_ORIGINS may neither frame the app (CSP
      `frame-ancestors` on every response) nor call it (403 for a foreign `Origin`), even through endpoints whose
      CORS answers they would not read. Allowed origins get CORS headers (see `create_api`). The app's own origin
      is the request's `scheme://host` (as forwarded by a trusted proxy, see `ForwardedHeaders`) and RAG_PUBLIC_URL.
    - Body size: 413 over 64 KB on the API.
    - RAG_API_TOKEN: `POST /api/ask` and `POST /api/feedback` need the bearer token (401). The chat queues stay open to browsers of allowed
      origins (a browser always sends `Origin` with a POST); callers without a browser origin need the token there too.
    - RAG_RATE_LIMIT: questions per client address (429 with Retry-After).
    - RAG_QUEUE_SIZE: at most that many API questions wait at once; more get 503 with Retry-After, not a hang.
      The API answers RAG_CONCURRENCY of them at once, as the chat queue does, so neither crowds out the other.
      (The chat queues have the same bound through Gradio's `max_size`, which answers 503; Retry-After is added.)
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        super().__init__(app)
        from limits import parse_many
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self.allowed = settings.allowed_origins
        self.public = settings.public_url
        self.frame_ancestors = " ".join(["'self'", *self.allowed])
        self.bearer = f"Bearer {settings.api_token.get_secret_value()}".encode() if settings.api_token else None
        self.rates = parse_many(settings.rate_limit) if settings.rate_limit else []
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.queue_size = settings.queue_size
        self.waiting = 0  # API questions in flight; changed only on the event loop's thread

    async def dispatch(self, request: Request, call_next: Any) -> Any:
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin and origin not in (own, self.public) and origin not in self.allowed and origin != "null":
            return JSONResponse({"error": f"Origin {origin} is not allowed; add it to RAG_ALLOWED_ORIGINS."}, 403)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES and request.url.path.startswith("/api/"):
            return JSONResponse({"error": f"The request body is over {MAX_BODY_BYTES // 1024} KB."}, 413)
        path = request.url.path
        api = request.method == "POST" and path == "/api/ask"
        feedback = request.method == "POST" and path == FEEDBACK_ROUTE
        asking = request.method == "POST" and ASK_ROUTES.match(path) is not None
        if feedback or asking or (request.method == "POST" and GRADIO_DIRECT.match(path)):
            browser = origin is not None and origin != "null"
            if self.bearer and (api or feedback or not browser) and not self._authorized(request):
                return JSONResponse(
                    {"error": "This API needs 'Authorization: Bearer <token>' (the token set in RAG_API_TOKEN)."}, 401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        if feedback or asking:
            client = request.client.host if request.client else "unknown"
            wait = self._rate_limited(f"feedback {client}" if feedback else client)
            if wait:
                return JSONResponse(
                    {"error": f"Too many questions from this address; try again in {wait} s."}, 429,
                    headers={"Retry-After": str(wait)},
                )
        if api and self.waiting >= self.queue_size:
            return JSONResponse(
                {"error": f"The service is busy ({self.waiting} questions waiting); try again in {RETRY_AFTER_S} s."}, 503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.waiting += api
        try:
            response = await call_next(request)
        finally:
            self.waiting -= api
        response.headers["Content-Security-Policy"] = f"frame-ancestors {self.frame_ancestors}"
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.status_code in (429, 503) and "retry-after" not in response.headers:
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("authorization", "").encode()
        return self.bearer is not None and secrets.compare_digest(given, self.bearer)

    def _rate_limited(self, client: str) -> int:
        """0 when the client may ask now; else the seconds until it may."""
        for rate in self.rates:
            if not self.limiter.hit(rate, client):
                reset = self.limiter.get_window_stats(rate, client).reset_time
                return max(1, math.ceil(reset - time.time()))
        return 0


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
    api.add_middleware(Guard, settings=settings)
    # Outermost, so the guard and the rate limit see the scheme, host and client the trusted proxy forwarded.
    api.add_middleware(ForwardedHeaders, trusted_hosts=settings.trusted_proxies)
    answering = CapacityLimiter(settings.concurrency)  # as many at once as the chat queue: waiting requests hold no thread
    log = api.state.question_log = open_question_log(settings)  # None when RAG_QUESTION_LOG=false; the chat logs here too
    add_insights_routes(api, log, lambda: engine.embeddings.embed_documents, settings)

    @api.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        """Errors under /api/ as `{"error"}`, among them a body that cannot be parsed or is over the limit once read."""
        if not request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        message = {
            400: "The request body is not valid UTF-8 JSON, or is nested too deeply.",
            413: f"The request body is over {MAX_BODY_BYTES // 1024} KB.",
        }.get(exc.status_code, f"{exc.detail}.")
        return JSONResponse({"error": message}, exc.status_code, headers=exc.headers)

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problem = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        if problem.get("type") == "json_invalid":
            return JSONResponse({"error": "The request body is not valid JSON."}, 400)
        field = ".".join(str(p) for p in problem["loc"] if p != "body")
        wanted = "'answer_id' and 'rating'" if request.url.path == FEEDBACK_ROUTE else "a 'question'"
        message = f"The request body must be a JSON object with {wanted}." if not field else f"{field}: {problem['msg']}."
        return JSONResponse({"error": message}, 422)

    def answer_and_log(request: AskRequest) -> AskResponse:
        answer = engine.ask(request.question, request.history, request.where())
        answer_id = log.record(request.question, answer, "api") if log else None
        return AskResponse(**answer.model_dump(), answer_id=answer_id)

    @api.post("/api/ask", response_model=AskResponse, responses={400: {}, 413: {}, 422: {}, 500: {}, 503: {}}, max_body_size=MAX_BODY_BYTES)
    async def ask(request: AskRequest) -> Any:
        """Answer a question (with optional history): the JSON of `python -m app.ask --json` and the `answer_id`."""
        try:
            return await to_thread.run_sync(answer_and_log, request, limiter=answering)
        except QuestionError as err:
            return JSONResponse({"error": str(err)}, 422)
        except (StoreError, LLMUnavailable) as err:
            return JSONResponse({"error": str(err)}, 503, headers={"Retry-After": str(RETRY_AFTER_S)})
        except Exception as err:  # noqa: BLE001 - an outage is a 503; anything else is a bug, logged under an id
            if is_outage(err):
                message = f"The answer service is unavailable ({err.__class__.__name__}); try again shortly."
                return JSONResponse({"error": message}, 503, headers={"Retry-After": str(RETRY_AFTER_S)})
            error_id = report_bug(err)
            return JSONResponse({"error": bug_message(error_id), "error_id": error_id}, 500)

    @api.post("/api/feedback", responses={404: {}, 413: {}, 422: {}, 503: {}}, max_body_size=MAX_BODY_BYTES)
    def feedback(request: FeedbackRequest) -> Any:
        """Thumbs up or down, and an optional comment, on an answer of `POST /api/ask` (a new rating replaces the old)."""
        if log is None:
            return JSONResponse({"error": "Feedback is not stored: the question log is off (RAG_QUESTION_LOG=false)."}, 404)
        try:
            found = log.feedback(request.answer_id, request.rating, request.comment)
        except QuestionLogUnavailable as err:
            return JSONResponse({"error": f"{err}; try again shortly."}, 503, headers={"Retry-After": str(RETRY_AFTER_S)})
        if not found:
            return JSONResponse({"error": "No logged answer has this answer_id."}, 404)
        return {"answer_id": request.answer_id, "rating": request.rating, "comment": request.comment}

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

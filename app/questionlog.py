"""The question log: every answered question with its answer, citations, latency, entry and feedback, in a SQL
database through SQLAlchemy (a SQLite file by default, PostgreSQL when replicas share one log).

No IP address, token or conversation history is stored: only what the owner needs to see what people ask and what
the documents do not answer. Logging never breaks answering: a database that fails is a warning in the app's log.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import JSON, Boolean, DateTime, Float, String, Text, case, create_engine, delete, event, func, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from app.chain import Answer
from config import Settings

log = logging.getLogger(__name__)

Entry = Literal["chat", "widget", "api"]
Rating = Literal["up", "down"]
PURGE_EVERY_S = 3600
"""Rows past RAG_QUESTION_LOG_DAYS are deleted at start-up and then at most once an hour, on a write."""


class QuestionLogUnavailable(Exception):
    """The log's database cannot be reached; the message is for people."""


class Base(DeclarativeBase):
    pass


class LoggedAnswer(Base):
    """One answered question. Times are UTC (stored without a zone, the same on SQLite and PostgreSQL)."""

    __tablename__ = "answered_questions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    asked_at: Mapped[datetime] = mapped_column(DateTime(), index=True)
    entry: Mapped[str] = mapped_column(String(8))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    refused: Mapped[bool] = mapped_column(Boolean)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float)
    rating: Mapped[str | None] = mapped_column(String(4), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    rated_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)


COLUMNS = [c.name for c in LoggedAnswer.__table__.columns]
"""The columns, in table order (the CSV export's header)."""


ANSWER_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
"""What `record` hands out (`new_answer_id`)."""


def new_answer_id() -> str:
    """A random answer id (`secrets.token_urlsafe`) that does not start with "-": the CSV export quotes a cell that
    starts like a formula, and an id so quoted would no longer match the log."""
    while True:
        answer_id = secrets.token_urlsafe(12)
        if not answer_id.startswith("-"):
            return answer_id


def storable(text: str) -> str:
    """Text every database stores: lone surrogates (from JSON escapes) as '?', no NUL (PostgreSQL refuses it)."""
    return text.encode("utf-8", "replace").decode().replace("\x00", "")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def database_url(settings: Settings) -> str:
    """RAG_DATABASE_URL, or the SQLite file questions.sqlite beside the local store."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return f"sqlite:///{settings.chroma_path.resolve().parent / 'questions.sqlite'}"


@dataclass
class LogRow:
    """The columns the insights read, as plain values."""

    id: str
    asked_at: datetime
    entry: str
    question: str
    answer: str
    refused: bool
    latency_ms: float
    rating: str | None
    comment: str | None


class QuestionLog:
    """The log in one database. Thread-safe: each call uses its own session from SQLAlchemy's pool."""

    def __init__(self, url: str, retention_days: int) -> None:
        self.url = make_url(url)
        self.retention = timedelta(days=retention_days)
        sqlite = self.url.get_backend_name() == "sqlite"
        if sqlite and self.url.database:
            from pathlib import Path

            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(
            self.url, pool_pre_ping=not sqlite, connect_args={"timeout": 15} if sqlite else {"connect_timeout": 5}
        )
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._schema_ready = False
        self._last_purge = 0.0
        self._lock = threading.Lock()
        try:
            self._ensure_schema()
            self.purge()
        except QuestionLogUnavailable as err:  # the app still answers; the schema is made on the first write that works
            log.warning("%s", err)

    def where(self) -> str:
        """The database, for messages: the URL without its password."""
        return self.url.render_as_string(hide_password=True)

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._failures("create the question log's table"):
            try:
                Base.metadata.create_all(self.engine)
            except SQLAlchemyError:  # another replica created it at the same moment
                Base.metadata.create_all(self.engine)
        self._schema_ready = True

    @contextlib.contextmanager
    def _failures(self, doing: str) -> Iterator[None]:
        """Database errors as `QuestionLogUnavailable`: one sentence with the driver's first line, no password."""
        try:
            yield
        except SQLAlchemyError as err:
            cause = (str(getattr(err, "orig", None) or err).strip().splitlines() or [""])[0]
            raise QuestionLogUnavailable(f"Cannot {doing} in {self.where()} ({err.__class__.__name__}: {cause})") from None

    def record(self, question: str, answer: Answer, entry: Entry, now: datetime | None = None) -> str | None:
        """Store an answered question; its new answer id, or None (with a warning logged) when the database fails."""
        answer_id = new_answer_id()
        row = LoggedAnswer(
            id=answer_id, asked_at=now or utcnow(), entry=entry, question=storable(question), answer=storable(answer.answer),
            refused=answer.refused, latency_ms=answer.timings.total_ms,
            sources=[{"source": storable(c.source), "title": storable(c.title), "start": c.start, "end": c.end} for c in answer.citations],
        )
        try:
            self._ensure_schema()
            with self._failures("store the question"), Session(self.engine) as session, session.begin():
                session.add(row)
            if time.monotonic() - self._last_purge > PURGE_EVERY_S:
                self.purge()
        except QuestionLogUnavailable as err:
            log.warning("%s; the answer was given but not logged.", err)
            return None
        return answer_id

    def feedback(self, answer_id: str, rating: Rating | None, comment: str | None = None) -> bool:
        """Set the rating (None clears it) and, when given, the comment of a logged answer; False for an unknown id.

        Raises `QuestionLogUnavailable` when the database fails."""
        values: dict[str, Any] = {"rating": rating, "rated_at": utcnow()}
        if comment is not None:
            values["comment"] = storable(comment)
        if not ANSWER_ID.fullmatch(answer_id):  # not one this log hands out (and no text the database could refuse)
            return False
        self._ensure_schema()
        with self._failures("store the feedback"), Session(self.engine) as session, session.begin():
            result = session.execute(update(LoggedAnswer).where(LoggedAnswer.id == answer_id).values(**values))
            return result.rowcount == 1

    def purge(self, now: datetime | None = None) -> int:
        """Delete the rows older than RAG_QUESTION_LOG_DAYS; how many went."""
        with self._lock:
            self._last_purge = time.monotonic()
        self._ensure_schema()
        with self._failures("delete old questions"), Session(self.engine) as session, session.begin():
            cutoff = (now or utcnow()) - self.retention
            return session.execute(delete(LoggedAnswer).where(LoggedAnswer.asked_at < cutoff)).rowcount

    def rows(self, since: datetime | None = None, *, refused: bool | None = None, rating: Rating | None = None,
             newest_first: bool = False, limit: int | None = None) -> list[LogRow]:
        """Logged answers asked since a time (all when None), optionally only refused ones or one rating."""
        query = select(*(getattr(LoggedAnswer, f) for f in LogRow.__dataclass_fields__))
        if since is not None:
            query = query.where(LoggedAnswer.asked_at >= since)
        if refused is not None:
            query = query.where(LoggedAnswer.refused.is_(refused))
        if rating is not None:
            query = query.where(LoggedAnswer.rating == rating)
        order = LoggedAnswer.asked_at.desc() if newest_first else LoggedAnswer.asked_at
        self._ensure_schema()
        with self._failures("read the question log"), Session(self.engine) as session:
            return [LogRow(*r) for r in session.execute(query.order_by(order).limit(limit))]

    def per_day(self, since: datetime) -> dict[str, tuple[int, int]]:
        """Questions and refusals per UTC day ('YYYY-MM-DD') since a time, counted by the database."""
        day = func.date(LoggedAnswer.asked_at)
        query = (
            select(day, func.count(), func.sum(case((LoggedAnswer.refused, 1), else_=0)))
            .where(LoggedAnswer.asked_at >= since).group_by(day)
        )
        self._ensure_schema()
        with self._failures("read the question log"), Session(self.engine) as session:
            return {str(d)[:10]: (int(n), int(r or 0)) for d, n, r in session.execute(query)}

    def export(self) -> Iterator[list[Any]]:
        """Every row, oldest first, as lists of values in `COLUMNS` order (streamed, for the CSV export)."""
        self._ensure_schema()
        with self._failures("read the question log"), Session(self.engine) as session:
            result = session.execute(select(LoggedAnswer.__table__).order_by(LoggedAnswer.asked_at).execution_options(yield_per=500))
            for row in result:
                yield list(row)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL: readers (the insights) do not block the writers, and a committed row survives the app being killed."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_question_log(settings: Settings) -> QuestionLog | None:
    """The question log named by the settings; None when RAG_QUESTION_LOG is false."""
    if not settings.question_log:
        return None
    return QuestionLog(database_url(settings), settings.question_log_days)

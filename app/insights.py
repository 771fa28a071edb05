"""`/insights` for the owner: what people ask, what the documents do not answer, feedback and latency, from the
question log; `/insights/log.csv` exports the log. Open only with RAG_ADMIN_TOKEN set (404 otherwise), sent as
`Authorization: Bearer <token>` or through the page's sign-in form (an HttpOnly cookie derived from the token).

The page is one server-rendered HTML document (Jinja2, autoescaped: questions, answers and comments are user text)
with the chart drawn as inline SVG: no script, no CDN.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment
from starlette.exceptions import HTTPException

from app.questionlog import COLUMNS, LogRow, QuestionLog, QuestionLogUnavailable, utcnow
from config import Settings

Embed = Callable[[list[str]], list[list[float]]]

SAME_MEANING = 0.3
"""Cosine distance (average linkage) under which two unanswered questions count as one: with all-MiniLM-L6-v2,
rewordings of one question ("Who is the mayor of Shanghai?", "who is shanghai's mayor") are within 0.1, and
different questions on one subject ("population of Hong Kong" / "mayor of Shanghai") 0.55 or more apart."""
MOST_GROUPED = 1000
"""Unanswered questions grouped at most (the newest): the grouping embeds them all on each page view."""
COOKIE = "rag_insights"
COOKIE_HOURS = 8
SIGN_IN_FAILURES = "5/10 minutes"
"""Wrong tokens the sign-in form takes from one client address before it answers 429 (the token is guessed no faster)."""


@dataclass
class QuestionGroup:
    """Questions of one meaning: the commonest wording as label, how often asked, other wordings."""

    label: str
    count: int
    wordings: list[str] = field(default_factory=list)


@dataclass
class Summary:
    days: int
    per_day: list[tuple[str, int, int]]
    questions: int
    refused_share: float
    down_share: float
    rated: int
    down: int
    median_ms: float | None
    p95_ms: float | None
    unanswered: list[QuestionGroup]
    thumbs_down: list[LogRow]


def group_questions(questions: list[str], embed: Embed, distance: float = SAME_MEANING) -> list[QuestionGroup]:
    """Questions grouped by meaning (agglomerative clustering of their embeddings), most asked first."""
    if not questions:
        return []
    if len(questions) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        from sklearn.cluster import AgglomerativeClustering

        vectors = np.asarray(embed(questions), dtype=np.float32)
        labels = AgglomerativeClustering(
            n_clusters=None, distance_threshold=distance, metric="cosine", linkage="average"
        ).fit_predict(vectors)
    groups = []
    for label in set(labels.tolist()):
        members = [q for q, l in zip(questions, labels, strict=True) if l == label]
        wordings = Counter(" ".join(q.split()) for q in members).most_common()
        groups.append(QuestionGroup(label=wordings[0][0], count=len(members), wordings=[w for w, _ in wordings[1:4]]))
    return sorted(groups, key=lambda g: (-g.count, g.label))


def summarize(log: QuestionLog, embed: Embed, days: int = 30, now: datetime | None = None) -> Summary:
    """The figures of the insights page over the last `days` UTC days (today included)."""
    now = now or utcnow()
    since = datetime(now.year, now.month, now.day) - timedelta(days=days - 1)
    counted = log.per_day(since)
    per_day = []
    for offset in range(days):
        day = (since + timedelta(days=offset)).strftime("%Y-%m-%d")
        per_day.append((day, *counted.get(day, (0, 0))))
    rows = log.rows(since)
    latencies = np.array([r.latency_ms for r in rows], dtype=float)
    rated = [r for r in rows if r.rating]
    down = sum(r.rating == "down" for r in rows)
    refused = [r.question for r in log.rows(since, refused=True, newest_first=True, limit=MOST_GROUPED)]
    return Summary(
        days=days, per_day=per_day, questions=len(rows),
        refused_share=sum(r.refused for r in rows) / len(rows) if rows else 0.0,
        down_share=down / len(rows) if rows else 0.0, rated=len(rated), down=down,
        median_ms=float(np.percentile(latencies, 50)) if len(rows) else None,
        p95_ms=float(np.percentile(latencies, 95)) if len(rows) else None,
        unanswered=group_questions(refused, embed)[:15],
        thumbs_down=log.rows(since, rating="down", newest_first=True, limit=25),
    )


def chart(per_day: list[tuple[str, int, int]], width: int = 760, height: int = 220) -> dict[str, Any]:
    """Bar geometry for the SVG chart: one bar per day (questions), its refused part drawn over it."""
    left, bottom, top = 40, 28, 10
    plot_h = height - bottom - top
    most = max([n for _, n, _ in per_day] + [1])
    step = (width - left - 8) / max(len(per_day), 1)
    bars = []
    for i, (day, n, refused) in enumerate(per_day):
        x = left + i * step + step * 0.15
        h_total, h_refused = plot_h * n / most, plot_h * refused / most
        bars.append({
            "day": day, "n": n, "refused": refused, "x": round(x, 1), "w": round(step * 0.7, 1),
            "y": round(top + plot_h - h_total, 1), "h": round(h_total, 1),
            "ry": round(top + plot_h - h_refused, 1), "rh": round(h_refused, 1),
        })
    return {"width": width, "height": height, "left": left, "base": top + plot_h, "top": top, "most": most, "bars": bars}


PAGE = Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>Insights · Cited Q&amp;A</title>
<style>
:root {color-scheme: light dark; --muted: #6b7280; --line: #d1d5db; --ask: #60a5fa; --refuse: #d97706}
body {font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto; max-width: 980px; padding: 0 16px}
h1 {font-size: 1.4rem} h2 {font-size: 1.1rem; margin-top: 28px}
.figures {display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px}
.figure {border: 1px solid var(--line); border-radius: 10px; padding: 10px 12px}
.figure b {display: block; font-size: 1.4rem} .muted, .figure span {color: var(--muted); font-size: .85rem}
table {border-collapse: collapse; width: 100%; font-size: .9rem} td, th {border-bottom: 1px solid var(--line); padding: 6px; text-align: left; vertical-align: top}
svg text {font-size: 11px; fill: currentColor} .legend span {display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px}
form.inline {display: inline}
</style></head><body>
<h1>Insights</h1>
<div class="muted">Last {{ s.days }} days (UTC), from the question log. <a href="/insights/log.csv">Export the whole log as CSV</a>
· <form class="inline" method="post" action="/insights/sign-out"><button>Sign out</button></form></div><br>
<div class="figures">
 <div class="figure"><b>{{ s.questions }}</b><span>questions answered</span></div>
 <div class="figure"><b>{{ "%.1f"|format(s.questions / s.days) }}</b><span>questions per day</span></div>
 <div class="figure"><b>{{ "%.0f"|format(100 * s.refused_share) }}%</b><span>refused (not in the documents)</span></div>
 <div class="figure"><b>{{ "%.0f"|format(100 * s.down_share) }}%</b><span>thumbed down ({{ s.down }} of {{ s.rated }} rated)</span></div>
 <div class="figure"><b>{{ ms(s.median_ms) }}</b><span>median latency</span></div>
 <div class="figure"><b>{{ ms(s.p95_ms) }}</b><span>95th percentile latency</span></div>
</div>
<h2>Questions and refusals per day</h2>
<div class="legend muted"><span style="background: var(--ask)"></span>questions<span style="background: var(--refuse)"></span>refused</div>
<svg role="img" aria-labelledby="chart-title" width="100%" viewBox="0 0 {{ c.width }} {{ c.height }}">
 <title id="chart-title">Questions and refusals per day over the last {{ s.days }} days</title>
 <line x1="{{ c.left }}" x2="{{ c.width }}" y1="{{ c.base }}" y2="{{ c.base }}" stroke="currentColor" stroke-opacity=".4"/>
 <text x="{{ c.left - 6 }}" y="{{ c.top + 8 }}" text-anchor="end">{{ c.most }}</text>
 <text x="{{ c.left - 6 }}" y="{{ c.base }}" text-anchor="end">0</text>
 {% for b in c.bars %}<g><title>{{ b.day }}: {{ b.n }} questions, {{ b.refused }} refused</title>
 <rect x="{{ b.x }}" y="{{ b.y }}" width="{{ b.w }}" height="{{ b.h }}" fill="var(--ask)"/>
 <rect x="{{ b.x }}" y="{{ b.ry }}" width="{{ b.w }}" height="{{ b.rh }}" fill="var(--refuse)"/></g>
 {% endfor %}{% if c.bars %}<text x="{{ c.bars[0].x }}" y="{{ c.height - 8 }}">{{ c.bars[0].day }}</text>
 <text x="{{ c.bars[-1].x + c.bars[-1].w }}" y="{{ c.height - 8 }}" text-anchor="end">{{ c.bars[-1].day }}</text>{% endif %}
</svg>
<h2>Most asked questions the documents do not answer</h2>
{% if s.unanswered %}<table><tr><th>Asked</th><th>Question (commonest wording)</th><th>Other wordings</th></tr>
{% for g in s.unanswered %}<tr><td>{{ g.count }}</td><td>{{ g.label }}</td><td class="muted">{{ g.wordings|join(" · ") }}</td></tr>
{% endfor %}</table>{% else %}<p class="muted">None: every question was answered.</p>{% endif %}
<h2>Recent thumbs-down answers</h2>
{% if s.thumbs_down %}<table><tr><th>When (UTC)</th><th>Entry</th><th>Question</th><th>Answer</th><th>Comment</th></tr>
{% for r in s.thumbs_down %}<tr><td>{{ r.asked_at.strftime("%Y-%m-%d %H:%M") }}</td><td>{{ r.entry }}</td><td>{{ r.question }}</td>
<td>{{ r.answer }}</td><td>{{ r.comment or "" }}</td></tr>
{% endfor %}</table>{% else %}<p class="muted">No answer was thumbed down.</p>{% endif %}
</body></html>""")

SIGN_IN = Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>Sign in · Insights</title>
<style>:root {color-scheme: light dark} body {font-family: system-ui, sans-serif; margin: 48px auto; max-width: 420px; padding: 0 16px}
input {width: 100%; padding: 6px; margin: 8px 0} .error {color: #b91c1c}</style></head><body>
<h1>Insights</h1>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
<form method="post" action="{{ action }}"><label for="token">Admin token (RAG_ADMIN_TOKEN)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button>Sign in</button></form></body></html>""")


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def render(summary: Summary) -> str:
    return PAGE.render(s=summary, c=chart(summary.per_day), ms=_ms)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""Cells a spreadsheet would run as a formula (CSV injection): a question is user text, so they get a leading '."""


def csv_lines(rows: Iterator[list[Any]]) -> Iterator[str]:
    """The log as CSV, header first; JSON for the cited sources, ISO times, formula-like text quoted with '."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: list[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(COLUMNS)
    for row in rows:
        cells = []
        for value in row:
            if isinstance(value, datetime):
                value = value.isoformat(timespec="seconds") + "Z"
            elif isinstance(value, (list, dict)):
                value = json.dumps(value, ensure_ascii=False)
            elif isinstance(value, str) and value.startswith(FORMULA_START):
                value = "'" + value
            cells.append(value)
        yield line(cells)


def add_insights_routes(api: FastAPI, log: QuestionLog | None, embed: Callable[[], Embed], settings: Settings) -> None:
    """`/insights`, `/insights/log.csv` and the sign-in form; every route is 404 while RAG_ADMIN_TOKEN is unset.

    `embed` hands over the engine's embedding model when a page is drawn (the one copy the app loaded)."""
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    bearer = f"Bearer {token}".encode() if token else b""
    session = hmac.new(token.encode(), b"rag-insights-session", hashlib.sha256).hexdigest() if token else ""

    from limits import parse
    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter

    failures, failing = MovingWindowRateLimiter(MemoryStorage()), parse(SIGN_IN_FAILURES)

    def client_of(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def locked_out(request: Request) -> int:
        """Seconds this client must wait after too many wrong tokens (form or header); 0 when it may try."""
        if failures.test(failing, client_of(request)):
            return 0
        reset = failures.get_window_stats(failing, client_of(request)).reset_time
        return max(1, int(reset - time.time()) + 1)

    def check(request: Request) -> bool:
        """False without the bearer token or the session cookie; 404 (as for any unknown path) with no token set;
        429 after too many wrong tokens from the client (a wrong bearer header counts as one)."""
        if not token:
            raise HTTPException(404)
        wait = locked_out(request)
        if wait:
            raise HTTPException(429, f"Too many wrong tokens from this address; try again in {wait} s.", {"Retry-After": str(wait)})
        given = request.headers.get("authorization", "").encode()
        if given and not secrets.compare_digest(given, bearer):
            failures.hit(failing, client_of(request))
            return False
        cookie = request.cookies.get(COOKIE, "")
        return bool(given) or (bool(cookie) and secrets.compare_digest(cookie, session))

    def sign_in_page(error: str = "", status: int = 401) -> HTMLResponse:
        page = SIGN_IN.render(error=error, action="/insights/sign-in")
        return HTMLResponse(page, status, headers={"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"})

    def unavailable(err: QuestionLogUnavailable) -> Response:
        return Response(f"{err}.", 503, media_type="text/plain", headers={"Retry-After": "5"})

    @api.get("/insights", include_in_schema=False)
    def insights(request: Request, days: int = 30) -> Response:
        if not check(request):
            return sign_in_page()
        if log is None:
            return HTMLResponse("<!doctype html><title>Insights</title><p>The question log is off (RAG_QUESTION_LOG=false).</p>")
        try:
            # the model is asked for only when there are questions to group
            summary = summarize(log, lambda texts: embed()(texts), days=max(1, min(days, settings.question_log_days)))
        except QuestionLogUnavailable as err:
            return unavailable(err)
        return HTMLResponse(render(summary), headers={"Cache-Control": "no-store"})

    @api.get("/insights/", include_in_schema=False)
    def insights_slash() -> RedirectResponse:
        return RedirectResponse("/insights")

    @api.get("/insights/log.csv", include_in_schema=False)
    def export(request: Request) -> Response:
        if not check(request):
            return Response("This export needs 'Authorization: Bearer <token>' (the token set in RAG_ADMIN_TOKEN).\n", 401,
                            media_type="text/plain", headers={"WWW-Authenticate": "Bearer"})
        if log is None:
            return Response("The question log is off (RAG_QUESTION_LOG=false).\n", 404, media_type="text/plain")
        try:
            lines = csv_lines(log.export())
            first = next(lines)  # the header: a database that is down fails here, before the 200 is sent
        except QuestionLogUnavailable as err:
            return unavailable(err)
        stamp = utcnow().strftime("%Y%m%d-%H%M")
        return StreamingResponse(
            _chain(first, lines), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="question-log-{stamp}.csv"', "Cache-Control": "no-store"},
        )

    @api.post("/insights/sign-in", include_in_schema=False)
    def sign_in(request: Request, token_given: str = Form("", alias="token")) -> Response:
        if not token:
            raise HTTPException(404)
        wait = locked_out(request)
        if wait:
            response = sign_in_page(f"Too many wrong tokens from this address; try again in {wait} s.", 429)
            response.headers["Retry-After"] = str(wait)
            return response
        if not secrets.compare_digest(token_given.encode(), token.encode()):
            failures.hit(failing, client_of(request))
            return sign_in_page("That is not the admin token.")
        response = RedirectResponse("/insights", 303)
        response.set_cookie(
            COOKIE, session, max_age=COOKIE_HOURS * 3600, path="/insights", httponly=True, samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @api.post("/insights/sign-out", include_in_schema=False)
    def sign_out() -> Response:
        if not token:
            raise HTTPException(404)
        response = RedirectResponse("/insights", 303)
        response.delete_cookie(COOKIE, path="/insights")
        return response


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest

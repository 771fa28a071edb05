"""The script-tag embed: the launcher served at `/embed.js`, and what the widget page takes from its URL.

The launcher (`embed.js` beside this file) opens `/widget/?greeting=…&examples=Q1|Q2` in an iframe; the widget shows
the greeting in its empty chat and the examples as starter questions. `page.js` runs in the chat's and the widget's
pages; in the launcher's iframe it posts Escape and its readiness to the launcher, since keys pressed inside an iframe
never reach the host page.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs

import gradio as gr
from fastapi import FastAPI
from fastapi.responses import Response

EMBED_JS = Path(__file__).with_name("embed.js")
PAGE_JS = Path(__file__).with_name("page.js")
MAX_GREETING_CHARS = 300
MAX_EXAMPLES = 6
MAX_EXAMPLE_CHARS = 200


def add_embed_script(app: FastAPI) -> None:
    """Serve the launcher at `/embed.js` (from the app itself: no CDN)."""
    script = EMBED_JS.read_text(encoding="utf-8")
    headers = {"Cache-Control": "max-age=300"}
    app.add_api_route(
        "/embed.js", lambda: Response(script, media_type="text/javascript", headers=headers), include_in_schema=False
    )


def page_options(query: str) -> tuple[str | None, list[str] | None]:
    """The greeting (as Markdown that shows it literally) and starter questions in a widget URL's query, bounded."""
    params = parse_qs(query.lstrip("?"))
    greeting = params.get("greeting", [""])[0].strip()[:MAX_GREETING_CHARS]
    examples = [q.strip()[:MAX_EXAMPLE_CHARS] for q in params.get("examples", [""])[0].split("|") if q.strip()]
    return (literal_markdown(greeting) if greeting else None), (examples[:MAX_EXAMPLES] or None)


def literal_markdown(text: str) -> str:
    """`text` escaped so that Markdown (and the HTML it allows) shows it as typed: CommonMark lets every ASCII
    punctuation mark be escaped with a backslash."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


def show_page_options(blocks: gr.Blocks, chatbot: gr.Chatbot, starters: list[str] | None) -> None:
    """On load, the widget's empty chat shows its URL's greeting and starter questions (else `starters`).

    Call inside `blocks`, with a ChatInterface built with examples: it wires example clicks only then."""
    query = gr.Textbox(visible=False)

    def options(search: str) -> dict:
        greeting, examples = page_options(search or "")
        examples = examples or starters
        return gr.update(placeholder=greeting, examples=[{"text": q} for q in examples] if examples else None)

    blocks.load(options, [query], [chatbot], js="() => [location.search]", queue=False)

"""The Gradio chat window (`/`) and the compact widget (`/widget`), mounted on the API's FastAPI app.

Everything from the documents or the model is escaped and shown as text, never as live HTML or Markdown.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import gradio as gr
from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from app import language
from app.api import corpus_stats, create_api
from app.chain import Answer, AnswerEngine, QuestionError
from app.errors import bug_message, report_bug
from app.questionlog import Entry, QuestionLog
from app.ui.embed import PAGE_JS, add_embed_script, show_page_options
from app.ui.feedback import FEEDBACK_OPTIONS, add_feedback, answer_message
from app.ui.history import keep_across_reloads
from config import Settings
from vectorstore import StoreError, is_outage

BUNDLED_TITLE = "Shanghai, Hong Kong Draw Closer on Scientific, Technological Innovation"
EXAMPLES = [
    "Who is the president of the University of Hong Kong?",
    "How many scientists from the two cities have collaborated in the past five years?",
    "What is the cumulative value of technology contracts between Shanghai and Hong Kong?",
    "What areas will the University of Hong Kong's global innovation hub focus on?",
]
"""Starter questions about the bundled article: shown only when it is the one document loaded (or RAG_EXAMPLES)."""

LOOKING = language.texts(language.ENGLISH).looking
"""The answer bubble until the checked answer is ready (in the question's language: `app.language`)."""

SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
"""Local fonts only: Gradio's default theme would fetch fonts from Google, and intranets are often offline."""

CSS = """
.rag-header {padding: 4px 2px 0 2px}
.rag-header h1 {font-size: 1.35rem; margin: 0 0 2px 0}
.rag-header p {margin: 0; color: var(--body-text-color-subdued); font-size: .9rem}
.rag-sources {display: flex; flex-direction: column; gap: 10px; border-radius: 10px}
.rag-sources:focus-visible {outline: 2px solid var(--color-accent); outline-offset: 2px}
.rag-source {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px;
  background: var(--background-fill-secondary)}
.rag-source .rag-meta {font-size: .82rem; color: var(--body-text-color-subdued); margin-bottom: 6px}
.rag-source .rag-meta b {color: var(--body-text-color)}
.rag-source .rag-passage {font-size: .92rem; line-height: 1.5; white-space: pre-wrap}
.rag-source mark {background: #fde68a; color: #1f2937; padding: 0 2px; border-radius: 3px}
.rag-refusal {border: 1px dashed #d97706; border-radius: 10px; padding: 10px 12px; color: #92400e;
  background: #fffbeb; font-size: .92rem}
.rag-sources-title {font-weight: 600; margin: 4px 0 6px 0}
.rag-empty {color: var(--body-text-color-subdued); font-size: .9rem}
.rag-widget .rag-source .rag-passage {font-size: .85rem}
#rag-chatbot .example {border: 1px solid var(--border-color-primary)}
.dark .rag-refusal {color: #fde68a; background: #2a1a05; border-color: #f59e0b}
footer {display: none !important}
.rag-visually-hidden {position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0}
"""


def sources_html(answer: Answer | None, engine: AnswerEngine) -> str:
    """The cited passages, each with the quoted words highlighted inside the surrounding passage."""
    if answer is None:
        return '<div class="rag-empty">The passages behind each answer appear here.</div>'
    if answer.refused:
        return (
            '<div class="rag-refusal"><b>Not in the source.</b> No passage of the loaded documents supports an '
            "answer to this question, so nothing is cited.</div>"
        )
    cards = []
    for number, citation in enumerate(answer.citations, start=1):
        passage = engine.retriever.index.get(citation.chunk_id)
        if passage is not None and int(passage.metadata["start"]) <= citation.start:
            offset = citation.start - int(passage.metadata["start"])
            text = passage.page_content
            body = (
                html.escape(text[:offset]) + "<mark>" + html.escape(citation.quote) + "</mark>"
                + html.escape(text[offset + len(citation.quote) :])
            )
        else:
            body = "<mark>" + html.escape(citation.quote) + "</mark>"
        cards.append(
            f'<div class="rag-source"><div class="rag-meta"><b>[{number}] {html.escape(citation.title)}</b> · '
            f"{html.escape(citation.source)} · characters {citation.start}–{citation.end}</div>"
            f'<div class="rag-passage">{body}</div></div>'
        )
    return '<div class="rag-sources" tabindex="0" role="region" aria-label="Cited passages">' + "".join(cards) + "</div>"


def _turns(history: list[Any]) -> list[dict[str, str]]:
    """Gradio's message history as plain {role, content} turns (content parts joined as text)."""
    turns = []
    for message in history or []:
        role = message.get("role") if isinstance(message, dict) else getattr(message, "role", None)
        content = message.get("content") if isinstance(message, dict) else getattr(message, "content", "")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        if role in ("user", "assistant") and isinstance(content, str):
            turns.append({"role": role, "content": content})
    return turns


def chat_replies(
    engine: AnswerEngine, message: str, history: list[dict[str, str]], log: QuestionLog | None = None, entry: Entry = "chat"
) -> Iterator[tuple[str | gr.ChatMessage, Any]]:
    """The answer bubble's states and the sources panel: progress until the checked answer, then the answer (logged
    in `log`, when given, and then carrying its log id for the thumbs; see `app.ui.feedback`).

    Only checked text reaches the page. Errors are shown, not raised into the page: a bad question or a store that
    is down in words, a bug as "Something went wrong" with the id that its logged traceback carries."""
    try:
        for event in engine.stream(message, history):
            if isinstance(event, Answer):
                answer_id = log.record(message, event, entry) if log else None
                yield answer_message(event.answer, answer_id), sources_html(event, engine)
            elif event.stage == "retrieving":
                yield language.texts(event.language).looking, gr.skip()
    except (QuestionError, StoreError) as err:
        yield str(err), sources_html(None, engine)
    except Exception as err:  # noqa: BLE001 - an outage, or a bug with its id
        if is_outage(err):
            yield f"The answer service is unavailable right now ({err.__class__.__name__}); try again shortly.", gr.skip()
        else:
            yield bug_message(report_bug(err)), gr.skip()


def starter_questions(settings: Settings, stats: dict[str, Any]) -> list[str] | None:
    """RAG_EXAMPLES; else the bundled article's examples when it is the only document loaded; else none."""
    if settings.examples:
        return settings.examples
    return EXAMPLES if stats.get("titles") == [BUNDLED_TITLE] else None


def build_chat(
    engine: AnswerEngine, settings: Settings, stats: dict[str, Any], *, compact: bool, log: QuestionLog | None = None
) -> gr.Blocks:
    """The chat: streamed answers with markers, and the cited passages of the latest answer beside or below; with a
    question log, thumbs and comments on each answer."""

    def respond(message: str, history: list[Any]) -> Iterator[tuple[str | gr.ChatMessage, Any]]:
        yield from chat_replies(engine, message, _turns(history), log, "widget" if compact else "chat")

    titles = stats.get("titles", [])
    shown = "; ".join(html.escape(t) for t in titles[:3]) + ("; …" if len(titles) > 3 else "")
    with gr.Blocks(title="Cited Q&A" if not compact else "Cited Q&A widget", elem_classes=["rag-widget"] if compact else None) as blocks:
        if compact:  # a heading for screen readers' page outline; the host page's launcher shows the title
            gr.HTML('<h1 class="rag-visually-hidden">Ask the source</h1>')
        else:
            date = f" · {html.escape(stats['date'])}" if stats.get("date") else ""
            count = stats.get("documents", 0)
            documents = "" if count == 1 else f"{count} documents: "
            gr.HTML(
                f'<div class="rag-header"><h1>Ask the source</h1><p>Loaded: {documents}<b>{shown}</b>{date}'
                f" · {stats.get('chunks', 0)} passages. Answers cite the exact sentences they come from, "
                "or say that the source does not say.</p></div>"
            )
        chatbot = gr.Chatbot(
            height=300 if compact else 460, render_markdown=False, sanitize_html=True, label="Chat",
            show_label=False, placeholder=None if compact else "Ask a question about the loaded documents.",
            elem_id="rag-chatbot", buttons=["copy", "copy_all"], feedback_options=FEEDBACK_OPTIONS if log else None, layout="bubble",
        )
        sources = gr.HTML(sources_html(None, engine), elem_id="rag-sources", render=False)
        starters = starter_questions(settings, stats)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                chat = gr.ChatInterface(
                    fn=respond, chatbot=chatbot, additional_outputs=[sources],
                    # The widget's page may bring its own (data-examples); ChatInterface wires example clicks only
                    # when built with some, so a stand-in is given and hidden until the page's arrive.
                    examples=starters or ([""] if compact else None), cache_examples=False,
                    run_examples_on_click=True,
                    api_name="chat", fill_height=False, autofocus=not compact,
                    textbox=gr.Textbox(placeholder="Ask about the source…", show_label=False, submit_btn=True, elem_id="rag-input"),
                )
                add_feedback(chatbot, log)
                if compact and not starters:
                    chatbot.examples = None
            with gr.Column(scale=2, min_width=300):
                if not compact:
                    gr.HTML('<div class="rag-sources-title">Cited passages</div>')
                sources.render()
        keep_across_reloads(blocks, chat, sources, sources_html(None, engine), sorted({t.looking for t in language.TEXTS.values()}))
        if compact:
            show_page_options(blocks, chatbot, starters)
    return blocks


def create_app(engine: AnswerEngine, settings: Settings) -> FastAPI:
    """The whole web app: JSON API, the chat window at `/`, the widget at `/widget`."""
    app = create_api(engine, settings)
    app.add_api_route("/widget", lambda: RedirectResponse("/widget/"), include_in_schema=False)
    add_embed_script(app)
    stats = corpus_stats(settings)
    theme = gr.themes.Soft(primary_hue="blue", font=SYSTEM_FONTS, font_mono=["ui-monospace", "monospace"]).set(
        body_text_color_subdued="*neutral_600",  # the theme's gray-400 on white is 2.4:1; WCAG AA asks 4.5:1
    )
    for path, compact in (("/widget", True), ("/", False)):  # the widget first: "/" would catch its path
        blocks = build_chat(engine, settings, stats, compact=compact, log=app.state.question_log)
        # api_open=False: the answering function only through the queue, where the guard counts and bounds questions
        # (Gradio opens its direct /run/ and /api/ routes to every function unless told, off Hugging Face Spaces).
        blocks.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_size, api_open=False)
        app = gr.mount_gradio_app(
            app, blocks, path=path, theme=theme, css=CSS, js=PAGE_JS.read_text(encoding="utf-8"),
            footer_links=[], ssr_mode=False,
            enable_monitoring=False, pwa=False, mcp_server=False, show_error=False,
        )
    return app

"""Thumbs up/down on every answer of the chat and the widget, and a comment box after a thumbs-down, stored in the
question log.

Which answer a thumb belongs to travels with the answer itself: its log id is the `metadata.id` of the assistant
message (Gradio shows metadata only when it has a `title`, so nothing changes on screen). The like event hands the
server the conversation and the message's index, so no server session state is needed, and any replica can take it.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from app.questionlog import QuestionLog, QuestionLogUnavailable

log = logging.getLogger(__name__)

FEEDBACK_OPTIONS = ("Like", "Dislike")
"""Gradio draws these two as thumbs."""
MAX_COMMENT_CHARS = 2000


def answer_message(text: str, answer_id: str | None) -> str | gr.ChatMessage:
    """The answer bubble, carrying its log id when it was logged."""
    return gr.ChatMessage(content=text, metadata={"id": answer_id}) if answer_id else text


def answer_id_at(history: list[Any], index: int | tuple[int, int] | list[int]) -> str | None:
    """The log id of the answer at `index` of the chat's messages (or of the first logged answer of the group of
    assistant messages starting there, as Gradio reports a group's first index)."""
    position = index[0] if isinstance(index, (tuple, list)) else index
    for message in history[position:] if isinstance(position, int) and 0 <= position < len(history) else []:
        role = message.get("role") if isinstance(message, dict) else getattr(message, "role", None)
        if role != "assistant":
            break
        metadata = (message.get("metadata") if isinstance(message, dict) else getattr(message, "metadata", None)) or {}
        if isinstance(metadata, dict) and isinstance(metadata.get("id"), str):
            return metadata["id"]
    return None


def rate(question_log: QuestionLog, history: list[Any], data: gr.LikeData) -> str | None:
    """Store a thumb (a thumb taken back clears the rating); the rated answer's id, or None when none was logged."""
    answer_id = answer_id_at(history, data.index)
    rating = {True: "up", False: "down"}.get(data.liked) if isinstance(data.liked, bool) else None
    if answer_id:
        try:
            question_log.feedback(answer_id, rating)  # type: ignore[arg-type]
        except QuestionLogUnavailable as err:
            log.warning("%s; the thumb was not stored.", err)
    return answer_id if rating == "down" else None


def add_feedback(chatbot: gr.Chatbot, question_log: QuestionLog | None) -> None:
    """Wire the chatbot's thumbs to the log and place the comment box (shown after a thumbs-down) here.

    Call inside the Blocks, where the box should appear; nothing happens when the log is off."""
    if question_log is None:
        return
    rated = gr.Textbox(visible=False)  # the id of the answer thumbed down, kept in the page, not on the server
    with gr.Group(visible=False, elem_id="rag-feedback") as box:
        comment = gr.Textbox(
            label="What was wrong with this answer? (optional)", lines=2, max_length=MAX_COMMENT_CHARS,
            elem_id="rag-feedback-comment",
        )
        with gr.Row():
            send = gr.Button("Send feedback", size="sm", variant="primary", elem_id="rag-feedback-send")
            close = gr.Button("Close", size="sm", elem_id="rag-feedback-close")

    def on_like(history: list[Any], data: gr.LikeData) -> tuple[Any, str, Any]:
        down = rate(question_log, history, data)
        return gr.update(visible=down is not None), down or "", gr.update(value="")

    def on_send(answer_id: str, text: str) -> tuple[Any, str, Any]:
        text = (text or "").strip()[:MAX_COMMENT_CHARS]
        if answer_id and text:
            try:
                question_log.feedback(answer_id, "down", text)
            except QuestionLogUnavailable as err:
                log.warning("%s; the comment was not stored.", err)
        return gr.update(visible=False), "", gr.update(value="")

    hidden = {"queue": False, "api_visibility": "private"}
    chatbot.like(on_like, [chatbot], [box, rated, comment], **hidden)
    send.click(on_send, [rated, comment], [box, rated, comment], **hidden)
    comment.submit(on_send, [rated, comment], [box, rated, comment], **hidden)
    close.click(lambda: (gr.update(visible=False), "", gr.update(value="")), None, [box, rated, comment], **hidden)
    chatbot.clear(lambda: (gr.update(visible=False), ""), None, [box, rated], **hidden)

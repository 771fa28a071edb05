"""A conversation that survives a page reload, kept in the browser tab's sessionStorage.

A reload keeps it, a new tab starts afresh, the clear button forgets it, and it is sent with each question as before,
so the server keeps no session and replicas need no affinity. Gradio's `BrowserState` was the other choice: it keeps
localStorage, shared by every tab and encrypted with a key each server process draws anew, so replicas and restarts
would lose it. The cited-passages panel of the last answer comes back too; it is restored in the page alone, as only
the app's own pages can write their storage.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

STORED_CHARS = 50_000
"""Most characters of a conversation kept for a reload; the oldest turns go first."""

_KEY = '"rag-chat:" + location.pathname'  # the chat and the widget keep theirs apart

_RESTORE_JS = f"""() => {{
  let saved = {{}};
  try {{ saved = JSON.parse(sessionStorage.getItem({_KEY})) || {{}}; }} catch (e) {{}}
  window.ragChatSources = saved.sources;
  return [saved.history || []];
}}"""

# The chat reports changes before the load event has restored the storage: nothing is written until it has.
_RESTORE_SOURCES_JS = """(shown) => {
  window.ragChatRestored = true;
  return [window.ragChatSources || shown];
}"""

_SAVE_JS = """(history, sources) => {
  if (!window.ragChatRestored) return [];
  const text = (c) => typeof c === "string" ? c : Array.isArray(c) ? c.map(text).join(" ") : (c && c.text) || "";
  const turns = (history || []).map((m) => {
    const id = m.metadata && typeof m.metadata.id === "string" ? m.metadata.id : undefined;
    return {role: m.role, content: text(m.content), id};
  }).filter((m) => (m.role === "user" || m.role === "assistant") && m.content && !__PROGRESS__.includes(m.content));
  if (turns.length && turns[turns.length - 1].role === "user") turns.pop();  // still being answered
  while (turns.length && JSON.stringify(turns).length > __STORED_CHARS__) turns.splice(0, 2);
  try {
    if (turns.length) sessionStorage.setItem(__KEY__, JSON.stringify({history: turns, sources}));
    else sessionStorage.removeItem(__KEY__);
  } catch (e) {}
  return [];
}"""


def stored_messages(saved: Any) -> list[dict[str, Any]]:
    """The chat messages a tab kept, checked and bounded: plain text turns, and the log id an answer carries for its
    thumbs (`metadata.id`, see `app.ui.feedback`)."""
    messages = []
    for turn in saved if isinstance(saved, list) else []:
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
            continue
        if not isinstance(turn.get("content"), str):
            continue
        message: dict[str, Any] = {"role": turn["role"], "content": turn["content"]}
        if turn["role"] == "assistant" and isinstance(turn.get("id"), str):
            message["metadata"] = {"id": turn["id"]}
        messages.append(message)
    while messages and len(json.dumps(messages)) > STORED_CHARS:
        messages = messages[2:]
    return messages


def keep_across_reloads(
    blocks: gr.Blocks, chat: gr.ChatInterface, sources: gr.HTML, empty_sources: str, progress: list[str]
) -> None:
    """Save `chat`'s conversation and the `sources` panel in the tab on every change, and restore both on load.

    Call inside `blocks`. `empty_sources` is the panel after the clear button; `progress` the bubble texts of an answer
    still being made (one per language), never kept."""
    save_js = (
        _SAVE_JS.replace("__PROGRESS__", json.dumps(progress)).replace("__STORED_CHARS__", str(STORED_CHARS))
        .replace("__KEY__", _KEY)
    )
    saved = gr.JSON(visible=False)

    def restore(history: Any) -> tuple[Any, list[dict[str, Any]]]:
        messages = stored_messages(history)
        return gr.update(value=messages), messages

    # ChatInterface sends its State with a question, not the shown messages: both are restored.
    blocks.load(restore, [saved], [chat.chatbot, chat.chatbot_state], js=_RESTORE_JS, queue=False).then(
        None, [sources], [sources], js=_RESTORE_SOURCES_JS, queue=False,
    )
    for shown in (chat.chatbot, sources):
        shown.change(None, [chat.chatbot, sources], None, js=save_js, queue=False)
    chat.chatbot.clear(lambda: empty_sources, None, [sources], queue=False)

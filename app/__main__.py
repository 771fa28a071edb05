"""`python -m app`: make sure the store has documents, load the models, serve the chat app, the widget and the API."""

from __future__ import annotations

import sys

from config import load_settings


def main() -> int:
    settings = load_settings()
    from app.llm import LLMUnavailable
    from app.service import build_engine, limit_heap_arenas
    from vectorstore import StoreError

    limit_heap_arenas()
    try:
        engine = build_engine(settings)
    except (StoreError, LLMUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    import uvicorn

    from app.ui.web import create_app

    app = create_app(engine, settings)
    base = f"http://{settings.host}:{settings.port}"
    print(f"Chat app: {base}/   widget: {base}/widget   API: {base}/docs   (Ctrl-C to stop)", flush=True)
    # Open chat streams would hold a graceful shutdown forever; after 5 s they are cut.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())

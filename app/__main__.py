"""`python -m app`: make sure the store has documents, load the models, serve the chat app, the widget and the API."""

from __future__ import annotations

import sys

from config import load_settings


def main() -> int:
    import logging

    log = logging.StreamHandler()  # the app's own errors (bugs with their ids and tracebacks), not libraries' chatter
    log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("app").addHandler(log)
    settings = load_settings()
    from app.llm import LLMUnavailable
    from app.verifier import VerifierUnavailable
    from app.service import build_engine, limit_heap_arenas
    from vectorstore import StoreError

    limit_heap_arenas()
    try:
        engine = build_engine(settings)
    except (StoreError, LLMUnavailable, VerifierUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    import uvicorn

    from app.ui.web import create_app

    app = create_app(engine, settings)
    base = f"http://{settings.host}:{settings.port}"
    print(f"Chat app: {base}/   widget: {base}/widget   API: {base}/docs   (Ctrl-C to stop)", flush=True)
    # Open chat streams would hold a graceful shutdown forever; after 5 s they are cut. Forwarded headers are the
    # app's to judge (RAG_TRUSTED_PROXIES): uvicorn's own handling would trust any client on 127.0.0.1.
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5, proxy_headers=False
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

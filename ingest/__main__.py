"""`python -m ingest [PATH ...]`: parse arguments, run the ingest library, print a one-line summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from config import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Chunk, embed and store documents (.txt, .md, .html, .pdf) in Chroma. Re-running is idempotent.",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: the bundled article)")
    parser.add_argument("--prune", action="store_true", help="delete chunks of documents not among PATHs")
    parser.add_argument("--reset", action="store_true", help="drop the collection and rebuild it from PATHs")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    from ingest.pipeline import ingest
    from vectorstore import StoreError

    settings = load_settings()
    paths = args.paths or [settings.corpus_path]
    try:
        summary = ingest(
            paths, settings, prune=args.prune, reset=args.reset, progress=False if args.quiet else None,
            on_error=lambda line: print(line, file=sys.stderr),
        )
    except StoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted: the store is consistent; run the same command again to finish.", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary.as_dict()))
    else:
        print(summary.line())
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())

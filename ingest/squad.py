"""`python -m ingest.squad SQUAD_JSON OUT_DIR`: write each article of a SQuAD file as one text document.

Paragraphs are separated by blank lines so the chunker keeps them apart; the first line is the article's title.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load_articles(squad_json: Path, titles: set[str] | None = None) -> list[dict]:
    """The `data` list of a SQuAD v2.0 file, optionally only the named articles."""
    articles = json.loads(squad_json.read_text(encoding="utf-8"))["data"]
    return [a for a in articles if titles is None or a["title"] in titles]


def article_text(article: dict) -> str:
    return article["title"].replace("_", " ") + "\n\n" + "\n\n".join(p["context"].strip() for p in article["paragraphs"]) + "\n"


def write_corpus(squad_json: Path, out_dir: Path, titles: set[str] | None = None) -> list[Path]:
    """Write one `<title>.txt` per article into `out_dir`; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for article in load_articles(squad_json, titles):
        path = out_dir / f"{article['title']}.txt"
        path.write_text(article_text(article), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest.squad", description=__doc__.splitlines()[0])
    parser.add_argument("squad_json", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--ingest", action="store_true", help="also ingest the folder (like `python -m ingest OUT_DIR`)")
    parser.add_argument("--quiet", action="store_true", help="with --ingest: no progress bars")
    args = parser.parse_args(argv)
    try:
        paths = write_corpus(args.squad_json, args.out_dir)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: cannot read {args.squad_json} as SQuAD JSON ({err.__class__.__name__}: {err})", file=sys.stderr)
        return 1
    if not args.ingest:
        print(f"Wrote {len(paths)} documents to {args.out_dir}; ingest them with: python -m ingest {args.out_dir}")
        return 0
    from ingest.__main__ import main as ingest_main

    print(f"Wrote {len(paths)} documents to {args.out_dir}", file=sys.stderr)
    return ingest_main([str(args.out_dir), *(["--quiet"] if args.quiet else [])])


if __name__ == "__main__":
    sys.exit(main())

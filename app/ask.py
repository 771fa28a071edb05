"""`python -m app.ask "question"`: answer from the store with numbered sources; `--json`; `--batch` over JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import TextIO

from pydantic import ValidationError

from app.api import MAX_BODY_BYTES, AskRequest, metadata_filter
from app.chain import Answer, AnswerEngine, QuestionError
from app.errors import bug_message, report_bug
from app.llm import LLMUnavailable
from app.verifier import VerifierUnavailable
from app.service import build_engine
from config import load_settings
from vectorstore import StoreError


def format_answer(answer: Answer) -> str:
    """The answer, then its sources numbered as in the answer's markers."""
    lines = [answer.answer]
    for number, citation in enumerate(answer.citations, start=1):
        lines.append("")
        lines.append(f"[{number}] {citation.title} ({citation.source}, characters {citation.start}-{citation.end})")
        lines.append(f'    "{citation.quote}"')
    return "\n".join(lines)


def run_batch(engine: AnswerEngine, lines: Iterable[str | bytes], out: TextIO, where: dict[str, str] | None) -> int:
    """Answer one JSON request per line (the body of `POST /api/ask`: question, history, source, title; a line's
    source/title take the place of the command line's); a bad line (also one that is not UTF-8) gets an error
    object and the batch goes on. A line is held to the API's body limit, which also bounds its history."""
    failures = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            if len(line) > MAX_BODY_BYTES:
                raise QuestionError(f"the line is longer than {MAX_BODY_BYTES // 1024} KB, the API's limit for a request")
            request = AskRequest.model_validate_json(line)
            result = engine.ask(request.question, request.history, {**(where or {}), **(request.where() or {})} or None).model_dump()
        except ValidationError as err:
            problem = err.errors()[0]
            field = ".".join(str(p) for p in problem["loc"])
            result = {"error": f"line {number}: {field + ': ' if field else ''}{problem['msg']}"}
        except (QuestionError, StoreError) as err:
            result = {"error": f"line {number}: {err}"}
        except Exception as err:  # noqa: BLE001 - a bug in one line is logged with its id; the batch goes on
            result = {"error": f"line {number}: {bug_message(report_bug(err))}"}
        failures += "error" in result
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        out.flush()
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.ask", description="Answer a question from the ingested documents.")
    parser.add_argument("question", nargs="?", help="the question (omit with --batch)")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.add_argument("--batch", action="store_true", help='read JSON lines {"question", "history", "source", "title"} from stdin')
    parser.add_argument("--source", help="answer only from this source (a document's path as stored)")
    parser.add_argument("--title", help="answer only from documents with this title")
    args = parser.parse_args(argv)
    if not args.batch and args.question is None:
        parser.error("give a question, or --batch to read questions from stdin")

    settings = load_settings()
    where = metadata_filter(args.source, args.title)
    try:
        engine = build_engine(settings)
        if args.batch:
            run_batch(engine, sys.stdin.buffer, sys.stdout, where)  # bytes: pydantic reports a line that is not UTF-8
            return 0
        answer = engine.ask(args.question, (), where)
    except (StoreError, LLMUnavailable, VerifierUnavailable, QuestionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - a bug: its traceback goes to the log (stderr) under an id
        print(f"error: {bug_message(report_bug(err))}", file=sys.stderr)
        return 1
    print(answer.model_dump_json() if args.json else format_answer(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())

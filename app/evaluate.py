"""`python -m app.evaluate GOLD`: accuracy, refusals, citations, retrieval and latency of the real chain.

GOLD is either a JSON-lines gold set (tests/gold/article.jsonl: question, kind, answers, evidence, history,
forbidden) answered against the configured store, or a SQuAD v2.0 JSON file (`--squad`), whose articles are
ingested as one document each into a temporary store and whose questions are sampled from chosen articles.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import string
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.chain import Answer, AnswerEngine, standalone_question
from config import ROOT, Settings, load_settings

MARKER = re.compile(r"\s*\[\d+\]")


# --- SQuAD's answer normalization, exact match and token F1 (as in the official evaluation script) ------------
def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: list[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(g) for g in golds))


def token_f1(prediction: str, golds: list[str]) -> float:
    best = 0.0
    predicted = normalize_answer(prediction).split()
    for gold in golds:
        wanted = normalize_answer(gold).split()
        common = sum((collections.Counter(predicted) & collections.Counter(wanted)).values())
        if common:
            precision, recall = common / len(predicted), common / len(wanted)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def answer_text(answer: Answer) -> str:
    """The answer without its citation markers."""
    return MARKER.sub("", answer.answer).strip()


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else 0.0


@dataclass
class Report:
    """Counts gathered over a run; `summary()` turns them into the printed metrics."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        by_kind: dict[str, list[bool]] = collections.defaultdict(list)
        for row in self.rows:
            by_kind[row["kind"]].append(row["correct"])
        answerable = [r for r in self.rows if r["answerable"]]
        unanswerable = [r for r in self.rows if not r["answerable"]]
        refused = [r for r in self.rows if r["refused"]]
        cited = [r for r in self.rows if r["citation_ok"] is not None]
        ranks = [r["rank"] for r in answerable if "rank" in r]
        latencies = [r["total_ms"] for r in self.rows]
        summary: dict[str, Any] = {
            "questions": len(self.rows),
            "accuracy_by_kind": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_kind.items())},
            "answerable_accuracy": _share(r["correct"] for r in answerable),
            "unanswerable_refused": _share(r["refused"] for r in unanswerable),
            "refusal_precision": _share(not r["answerable"] for r in refused),
            "refusal_recall": _share(r["refused"] for r in unanswerable),
            "citation_precision": _share(r["citation_ok"] for r in cited),
            "quotes_verbatim": _share(r["verbatim"] for r in self.rows if r["verbatim"] is not None),
            "forbidden_text": sum(r["forbidden"] for r in self.rows),
            "latency_ms_p50": percentile(latencies, 50),
            "latency_ms_p95": percentile(latencies, 95),
        }
        if ranks:
            summary["retrieval_recall_at_3"] = _share(0 < r <= 3 for r in ranks)
            summary["retrieval_recall_at_5"] = _share(0 < r <= 5 for r in ranks)
            summary["mrr"] = round(sum(1 / r for r in ranks if r) / len(ranks), 3)
        if any("f1" in r for r in self.rows):
            summary["exact_match"] = _share(r["em"] for r in answerable)
            summary["token_f1"] = round(sum(r["f1"] for r in answerable) / max(1, len(answerable)), 3)
            summary["refusal_accuracy"] = summary["unanswerable_refused"]
            # SQuAD 2.0's overall F1: answerable questions score their F1, unanswerable ones 1 when refused
            overall = [r["f1"] if r["answerable"] else float(r["refused"]) for r in self.rows]
            summary["overall_f1"] = round(sum(overall) / len(overall), 3)
        return summary


def _share(values: Any) -> float:
    values = list(values)
    return round(sum(bool(v) for v in values) / len(values), 3) if values else 0.0


def quote_is_verbatim(answer: Answer, texts: dict[str, str]) -> bool | None:
    """True when every citation's quote is its document's text between start and end."""
    if not answer.citations:
        return None
    for citation in answer.citations:
        if citation.source not in texts:
            path = Path(citation.source)
            texts[citation.source] = _read_source(path if path.is_absolute() else ROOT / path)
        if texts[citation.source][citation.start : citation.end] != citation.quote:
            return False
    return True


def _read_source(path: Path) -> str:
    from ingest.loaders import load_document

    return load_document(path, ROOT).page_content


def retrieval_rank(engine: AnswerEngine, question: str, history: list[dict[str, str]], hit: Any, k: int = 5) -> int:
    """1-based rank of the first of the top-k passages for which `hit(passage)` holds; 0 when none does."""
    query = engine.retriever.index.expand(standalone_question(engine.validate(question), history))
    passages = engine.retriever.model_copy(update={"k": k}).invoke(query)
    return next((rank for rank, p in enumerate(passages, start=1) if hit(p)), 0)


def evaluate_gold(engine: AnswerEngine, gold_path: Path) -> Report:
    """Run every gold question through the chain (answer) and the retriever (rank of the evidence passage)."""
    report, texts = Report(), {}
    for line in gold_path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        history = item.get("history", [])
        answer = engine.ask(item["question"], history)
        golds = [g.lower() for g in item.get("answers", [])]
        text = answer.answer.lower()
        forbidden = any(f.lower() in text for f in item.get("forbidden", []))
        if golds:
            correct = not answer.refused and any(g in text for g in golds) and not forbidden
        else:
            correct = answer.refused and not forbidden
        citation_ok = None
        if not answer.refused:
            needles = golds or [answer_text(answer).lower()]
            citation_ok = any(any(n in c.quote.lower() for n in needles) for c in answer.citations)
        row = {
            "id": item.get("id"), "kind": item.get("kind", "answerable" if golds else "unanswerable"),
            "question": item["question"], "answer": answer.answer, "answerable": bool(golds), "refused": answer.refused,
            "correct": correct, "forbidden": forbidden, "citation_ok": citation_ok,
            "verbatim": quote_is_verbatim(answer, texts), "total_ms": answer.timings.total_ms,
            "sources": [c.source for c in answer.citations], "quotes": [c.quote for c in answer.citations],
        }
        if golds and item.get("evidence"):
            row["rank"] = retrieval_rank(engine, item["question"], history, lambda p, e=item["evidence"]: e in p.page_content)
        report.rows.append(row)
    return report


def squad_sample(squad_json: Path, split: str, size: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(all articles, a seeded sample of questions from the split's articles: 'tune' = first 10, 'test' = last 10)."""
    from ingest.squad import load_articles

    articles = load_articles(squad_json)
    chosen = articles[:10] if split == "tune" else articles[10:]
    questions = []
    for article in chosen:
        for index, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                questions.append({"title": article["title"], "paragraph": index, **qa})
    random.Random(seed).shuffle(questions)
    return articles, questions[:size]


def evaluate_squad(settings: Settings, squad_json: Path, split: str, size: int, seed: int, store: Path | None) -> Report:
    """Ingest all articles of the SQuAD file as documents, then answer a sample of one split's questions."""
    from ingest.pipeline import ingest
    from ingest.squad import article_text, write_corpus

    articles, questions = squad_sample(squad_json, split, size, seed)
    workdir = store.parent if store else Path(tempfile.mkdtemp(prefix="squad-eval-"))
    corpus = write_corpus(squad_json, workdir / "squad-corpus")  # a fixed place, so a kept store is reused as is
    settings = settings.model_copy(update={"chroma_path": store or workdir / "chroma", "chroma_host": None})
    ingest([workdir / "squad-corpus"], settings, prune=True, progress=False)
    engine = AnswerEngine(settings)
    engine.warm_up()
    spans = {}  # (title, paragraph) -> (source, start, end) of the paragraph in its document
    for article, path in zip(articles, corpus, strict=True):
        from ingest.loaders import source_id_for

        text = article_text(article)
        source = source_id_for(path, ROOT)
        offset = 0
        for index, paragraph in enumerate(article["paragraphs"]):
            start = text.index(paragraph["context"].strip(), offset)
            spans[(article["title"], index)] = (source, start, start + len(paragraph["context"].strip()))
            offset = start
    report, texts = Report(), {}
    for qa in questions:
        answer = engine.ask(qa["question"])
        golds = [a["text"] for a in qa["answers"]]
        source, start, end = spans[(qa["title"], qa["paragraph"])]

        def hit(passage: Any, source: str = source, start: int = start, end: int = end) -> bool:
            return passage.metadata["source"] == source and passage.metadata["start"] < end and start < passage.metadata["end"]

        row = {
            "id": qa["id"], "kind": "answerable" if golds else "unanswerable", "question": qa["question"],
            "answer": answer.answer, "answerable": bool(golds), "refused": answer.refused,
            "correct": (not answer.refused and token_f1(answer_text(answer), golds) > 0.5) if golds else answer.refused,
            "forbidden": False, "citation_ok": None, "verbatim": quote_is_verbatim(answer, texts),
            "total_ms": answer.timings.total_ms,
        }
        if golds:
            prediction = "" if answer.refused else answer_text(answer)
            row |= {"em": exact_match(prediction, golds), "f1": token_f1(prediction, golds)}
            row["rank"] = retrieval_rank(engine, qa["question"], [], hit)
            if not answer.refused:
                row["citation_ok"] = any(any(normalize_answer(g) in normalize_answer(c.quote) for g in golds) for c in answer.citations)
        report.rows.append(row)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("gold", type=Path, help="gold JSON lines, or a SQuAD v2.0 JSON file with --squad")
    parser.add_argument("--squad", action="store_true", help="GOLD is a SQuAD v2.0 file")
    parser.add_argument("--split", choices=["tune", "test"], default="test", help="SQuAD articles to sample from")
    parser.add_argument("--sample", type=int, default=300, help="SQuAD questions to sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", type=Path, help="SQuAD: keep the ingested store here (default: temporary)")
    parser.add_argument("--rows", type=Path, help="also write every question's result as JSON lines here")
    args = parser.parse_args(argv)

    from app.llm import LLMUnavailable
    from app.verifier import VerifierUnavailable
    from app.service import build_engine
    from vectorstore import StoreError

    settings = load_settings()
    try:
        if args.squad:
            report = evaluate_squad(settings, args.gold, args.split, args.sample, args.seed, args.store)
        else:
            report = evaluate_gold(build_engine(settings), args.gold)
    except (OSError, ValueError, KeyError, StoreError, LLMUnavailable, VerifierUnavailable) as err:
        print(f"error: cannot evaluate {args.gold}: {err}", file=sys.stderr)
        return 1
    if args.rows:
        args.rows.write_text("".join(json.dumps(r) + "\n" for r in report.rows))
    print(json.dumps(report.summary(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

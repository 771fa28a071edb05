"""`python -m app.train_answer_check`: fit the learned answer check on SQuAD tune questions the reading adapter never saw.

1. Ingest the 20 SQuAD articles (one document each, as `app.evaluate --squad` does) and ask a seeded sample of the
   questions of SQuAD *tune* articles 9 and 10: the reading adapter was fitted on tune articles 1-8, so its view of
   those would be too sure; the test articles are never seen. Then ask the project's dev question sets about the
   bundled article (the old gold set and the blind sets that have judged a round: `DEV_SETS`).
2. Weigh every attempt of every question (`AnswerEngine.weigh_question`: both reads, each read's options and their
   features, `app.answer_check.FEATURES`). An option is labelled 1 when it answers: token F1 with a gold answer of at
   least 0.5 (SQuAD), or a gold answer within it (the article's sets, as `app.evaluate` scores them); an
   unanswerable question's options are all 0.
3. Fit a logistic regression (scikit-learn) on standardized features, and choose the refusal threshold on
   probabilities cross-fitted in 5 folds (by SQuAD paragraph, by question set): the best overall F1 (HasAns F1 and
   NoAns accuracy together, as SQuAD's script counts them) over all questions, among thresholds whose refusals are at
   least `--refusal-precision` right.
4. Write app/answer-check.json (RAG_ANSWER_CHECK_PATH; coefficients, no pickle), docs/answer-check.md (report) and
   docs/answer-check-threshold.png.

The options of a run are kept (`--features`), so a refit with other options does not ask the model again.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from app.answer_check import FEATURES
from app.evaluate import token_f1
from app.train_reader import TRAIN_ARTICLES
from app.train_verifier import choose, cross_fitted, fit, plot, weights_table
from config import ROOT, load_settings

SQUAD = ROOT.parent / "shared" / "evaldata" / "squad2-dev-20-articles.json"
DEV_SETS = ("article", "article-blind", "article-blind-2", "article-blind-3", "article-blind-4", "article-blind-5")
"""Question sets about the bundled article that may be tuned on (tests/gold/NAME.jsonl). The newest blind set judges
and is never trained on."""
REPORT = ROOT / "docs" / "answer-check.md"
PLOT = ROOT / "docs" / "answer-check-threshold.png"
POSITIVE_F1 = 0.5


def squad_questions(squad: Path, sample: int, seed: int) -> list[dict[str, Any]]:
    """A seeded sample of the questions of the tune articles the reading adapter did not train on."""
    import random

    from ingest.squad import load_articles

    articles = load_articles(squad)[TRAIN_ARTICLES:10]
    questions = [
        {"title": a["title"], "paragraph": i, **qa} for a in articles for i, p in enumerate(a["paragraphs"]) for qa in p["qas"]
    ]
    random.Random(seed).shuffle(questions)
    return questions[:sample]


def collect(squad: Path, sample: int, seed: int, workdir: Path, store: Path | None) -> list[dict[str, Any]]:
    """One row per question: id, group (SQuAD paragraph or question set), gold answers, how answers are scored, and
    each attempt's options (text and features)."""
    from app.chain import AnswerEngine
    from ingest.pipeline import ingest
    from ingest.squad import write_corpus

    base = load_settings().model_copy(update={"answer_check": "rules", "chroma_host": None})
    rows: list[dict[str, Any]] = []
    corpus_dir = (store.parent if store else workdir) / "squad-corpus"
    write_corpus(squad, corpus_dir)
    settings = base.model_copy(update={"chroma_path": store or workdir / "squad-chroma"})
    ingest([corpus_dir], settings, prune=True, progress=False)
    engine = AnswerEngine(settings)
    engine.warm_up()
    questions = squad_questions(squad, sample, seed)
    for number, qa in enumerate(questions, start=1):
        golds = [a["text"] for a in qa["answers"]]
        rows.append(_row(engine, qa["id"], f"{qa['title']}#{qa['paragraph']}", qa["question"], [], golds, "f1"))
        if number % 50 == 0:
            print(f"  {number}/{len(questions)} SQuAD tune questions", file=sys.stderr, flush=True)
    settings = base.model_copy(update={"chroma_path": workdir / "article-chroma"})
    ingest([ROOT / "data"], settings, progress=False)
    engine = AnswerEngine(settings)
    for name in DEV_SETS:
        for line in (ROOT / "tests" / "gold" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            if item.get("kind") == "injection" or engine._document_fact(engine.normalize(item["question"]), None):
                continue  # injections test the prompt, not the check; document facts never reach it
            rows.append(_row(engine, item["id"], name, item["question"], item.get("history", []), item["answers"], "contains"))
        print(f"  {name} done", file=sys.stderr, flush=True)
    return rows


def _row(engine: Any, qid: str, group: str, question: str, history: list, golds: list[str], scoring: str) -> dict[str, Any]:
    attempts = engine.weigh_question(question, history)
    return {
        "id": qid, "group": group, "question": question, "golds": golds, "scoring": scoring,
        "attempts": [[{"text": o.text, "origin": o.origin, "features": v} for _, o, _, v in attempt] for attempt in attempts],
    }


def answer_score(row: dict[str, Any], text: str) -> float:
    """How well `text` answers: token F1 (SQuAD) or 1.0 when a gold answer is within it (the article's sets)."""
    if not row["golds"]:
        return 0.0
    if row["scoring"] == "contains":
        return float(any(g.lower() in text.lower() for g in row["golds"]))
    return token_f1(text, row["golds"])


def matrix(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[int, int, float]]]:
    """Features (NaN where unknown), labels, the question of each option, and (question, attempt, score) of each."""
    x, y, owner, where = [], [], [], []
    for index, row in enumerate(rows):
        for number, attempt in enumerate(row["attempts"]):
            for option in attempt:
                values = option["features"]
                x.append([np.nan if values.get(name) is None else float(values[name]) for name in FEATURES])
                score = answer_score(row, option["text"])
                y.append(int(score >= POSITIVE_F1))
                owner.append(index)
                where.append((index, number, score))
    return np.array(x, dtype=float), np.array(y), np.array(owner), where


def decide(rows: list[dict[str, Any]], p: np.ndarray, where: list[tuple[int, int, float]], threshold: float) -> dict[str, float]:
    """Question-level metrics when each question answers, as the engine does, with the first attempt whose most likely
    option reaches the threshold."""
    best: dict[tuple[int, int], tuple[float, float]] = {}
    for prob, (index, number, score) in zip(p, where, strict=True):
        if (index, number) not in best or prob > best[(index, number)][0]:
            best[(index, number)] = (prob, score)
    has, no, refused, refused_right = [], [], 0, 0
    for index, row in enumerate(rows):
        chosen = next(
            (best[(index, n)] for n in range(len(row["attempts"])) if (index, n) in best and best[(index, n)][0] >= threshold),
            None,
        )
        if row["golds"]:
            has.append(chosen[1] if chosen else 0.0)
        else:
            no.append(0.0 if chosen else 1.0)
        refused += chosen is None
        refused_right += chosen is None and not row["golds"]
    return {
        "threshold": round(threshold, 3),
        "overall_f1": round((sum(has) + sum(no)) / max(1, len(has) + len(no)), 4),
        "hasans_f1": round(sum(has) / max(1, len(has)), 4),
        "noans_accuracy": round(sum(no) / max(1, len(no)), 4),
        "refusal_precision": round(refused_right / refused, 4) if refused else 1.0,
        "refusal_recall": round(refused_right / max(1, len(no)), 4),
    }


def report(rows: list[dict[str, Any]], coef: np.ndarray, intercept: float, chosen: dict[str, float],
           by_group: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    squad_rows = [r for r in rows if r["scoring"] == "f1"]
    lines = [
        "# The learned answer check: what it learned",
        "",
        "Rebuilt by `python -m app.train_answer_check` (this file, `app/answer-check.json` and "
        "`docs/answer-check-threshold.png`).",
        f"Fitted on {len(squad_rows)} questions sampled (seed {args.seed}) from SQuAD 2.0 **tune** articles 9 and 10, "
        f"which the reading adapter did not train on ({sum(bool(r['golds']) for r in squad_rows)} answerable, "
        f"{sum(not r['golds'] for r in squad_rows)} unanswerable), and {len(rows) - len(squad_rows)} questions of the "
        f"project's dev sets about the article ({', '.join(DEV_SETS)}; injections and questions about the document "
        f"left out); {sum(len(a) for r in rows for a in r['attempts'])} options, labelled 1 when they answer (token F1 "
        f"at least {POSITIVE_F1} for SQuAD, a gold answer within them for the article's sets). The SQuAD test articles "
        "and the newest blind set were not used.",
        "",
        "Logistic regression (scikit-learn, C = 1) on standardized features; unknown values (a remote model gives no",
        "log-probabilities and has no adapter) count as the training mean. Weights are per standard deviation:",
        "",
        *weights_table(FEATURES, coef, intercept),
        "",
        f"**Threshold {chosen['threshold']:.2f}**, chosen on all these questions (probabilities cross-fitted in 5 folds "
        f"by SQuAD paragraph and question set) as the best overall F1 among thresholds whose refusals are at least "
        f"{args.refusal_precision:.0%} right:",
        "",
        "| questions | overall F1 | HasAns F1 | NoAns accuracy | refusal precision | refusal recall |",
        "|---|---|---|---|---|---|",
        *[f"| {name} | {m['overall_f1']:.3f} | {m['hasans_f1']:.3f} | {m['noans_accuracy']:.3f} | "
          f"{m['refusal_precision']:.3f} | {m['refusal_recall']:.3f} |" for name, m in {"all": chosen, **by_group}.items()],
        "",
        "![Refusal precision and recall, answer F1 and overall F1 against the threshold](answer-check-threshold.png)",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.train_answer_check", description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=SQUAD, help="SQuAD v2.0 JSON (its first 10 articles are the tune split)")
    parser.add_argument("--sample", type=int, default=450, help="questions of tune articles 9 and 10 to ask")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", type=Path, help="keep the SQuAD store here (reused when present)")
    parser.add_argument("--features", type=Path, default=ROOT / ".cache" / "answer-check-features.jsonl",
                        help="collected options: reused when present (delete it to ask the model again)")
    parser.add_argument("--refusal-precision", type=float, default=0.6, help="least share of refusals that must be right")
    args = parser.parse_args(argv)

    if args.features.exists():
        rows = [json.loads(line) for line in args.features.read_text(encoding="utf-8").splitlines()]
        print(f"Using {len(rows)} questions' options from {args.features}", file=sys.stderr)
    else:
        with tempfile.TemporaryDirectory(prefix="answer-check-") as tmp:
            rows = collect(args.squad, args.sample, args.seed, Path(tmp), args.store)
        args.features.parent.mkdir(parents=True, exist_ok=True)
        args.features.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    x, y, owner, where = matrix(rows)
    crossed = cross_fitted(rows, x, y, owner)
    thresholds = np.round(np.arange(0.02, 0.99, 0.01), 3)
    curve = [decide(rows, crossed, where, t) for t in thresholds]
    chosen = choose(curve, args.refusal_precision)
    by_group = {}
    for label, keep in (("SQuAD tune 9-10", lambda r: r["scoring"] == "f1"), ("article dev sets", lambda r: r["scoring"] != "f1")):
        picked = [i for i, r in enumerate(rows) if keep(r)]
        mask = np.isin(owner, picked)
        renumber = {old: new for new, old in enumerate(picked)}
        sub_where = [(renumber[i], n, s) for (i, n, s), m in zip(where, mask, strict=True) if m]
        by_group[label] = decide([rows[i] for i in picked], crossed[mask], sub_where, chosen["threshold"])
    mean, scale, coef, intercept = fit(x, y)
    load_settings().answer_check_path.write_text(json.dumps({
        "features": list(FEATURES), "mean": mean.round(6).tolist(), "scale": scale.round(6).tolist(),
        "coef": coef.round(6).tolist(), "intercept": round(intercept, 6), "threshold": chosen["threshold"],
        "tune": chosen, "trained_on": {"squad_tune_questions": sum(r["scoring"] == "f1" for r in rows),
                                       "article_dev_questions": sum(r["scoring"] != "f1" for r in rows), "seed": args.seed},
    }, indent=1) + "\n", encoding="utf-8")
    plot(curve, chosen["threshold"], PLOT, "SQuAD 2.0 tune articles 9-10 and the article's dev sets, cross-fitted")
    REPORT.write_text(report(rows, coef, intercept, chosen, by_group, args), encoding="utf-8")
    print(json.dumps({"all": chosen, **by_group}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

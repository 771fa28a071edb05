"""`python -m app.train_verifier`: fit the answer verifier on the SQuAD 2.0 tune articles and the old gold set.

1. Ingest the 20 SQuAD articles (one document each, as `app.evaluate --squad` does) and ask a seeded sample of
   questions from the *tune* articles only (the first 10; the test articles are never seen), plus the project's
   old gold set (tests/gold/article.jsonl) over the bundled article.
2. For every candidate of every question, record its features (`app.verifier.FEATURES`) and its label: 1 when its
   token F1 with a gold answer is at least 0.5; an unanswerable question's candidates are all 0.
3. Fit a logistic regression (scikit-learn) on standardized features. Choose the refusal threshold on the tune
   questions, with probabilities from 5-fold cross-fitting by article (the old gold set's questions spread over the
   folds), as the one with the best overall F1 (HasAns
   F1 and NoAns accuracy together, as SQuAD's script counts them) among those whose refusals are at least
   `--refusal-precision` right.
4. Write app/verifier.json (RAG_VERIFIER_PATH; coefficients, no pickle), docs/verifier.md (report) and docs/verifier-threshold.png.

The features of a run are kept (`--features`), so a refit with other options does not ask the model again.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from app.evaluate import squad_sample, token_f1
from app.verifier import FEATURES, Verifier
from config import ROOT, load_settings

SQUAD = ROOT.parent / "shared" / "evaldata" / "squad2-dev-20-articles.json"
GOLD = ROOT / "tests" / "gold" / "article.jsonl"
REPORT = ROOT / "docs" / "verifier.md"
PLOT = ROOT / "docs" / "verifier-threshold.png"
POSITIVE_F1 = 0.5
"""A candidate counts as an answer when its token F1 with a gold answer reaches this."""


def _neutral() -> Verifier:
    """A verifier that judges nothing (all weights 0), to collect features before any verifier exists."""
    n = len(FEATURES)
    return Verifier(FEATURES, (0.0,) * n, (1.0,) * n, (0.0,) * n, 0.0, 0.5)


def collect(squad: Path, sample: int, seed: int, workdir: Path) -> list[dict[str, Any]]:
    """One row per question: its id, group (article), gold answers and every candidate's features and text."""
    from app.chain import AnswerEngine
    from ingest.pipeline import ingest
    from ingest.squad import write_corpus

    rows: list[dict[str, Any]] = []
    base = load_settings()
    _, questions = squad_sample(squad, "tune", sample, seed)
    write_corpus(squad, workdir / "squad-corpus")
    settings = base.model_copy(update={"chroma_path": workdir / "squad-chroma", "chroma_host": None})
    ingest([workdir / "squad-corpus"], settings, prune=True, progress=False)
    engine = AnswerEngine(settings, verifier=_neutral())
    engine.warm_up()
    for number, qa in enumerate(questions, start=1):
        golds = [a["text"] for a in qa["answers"]]
        rows.append(_row(engine, qa["id"], qa["title"], qa["question"], [], golds))
        if number % 50 == 0:
            print(f"  {number}/{len(questions)} SQuAD tune questions", file=sys.stderr, flush=True)
    settings = base.model_copy(update={"chroma_path": workdir / "article-chroma", "chroma_host": None})
    ingest([ROOT / "data"], settings, progress=False)
    engine = AnswerEngine(settings, verifier=_neutral())
    for line in GOLD.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item.get("kind") == "injection":
            continue
        rows.append(_row(engine, item["id"], "article-gold", item["question"], item.get("history", []), item["answers"]))
    return rows


def _row(engine: Any, qid: str, group: str, question: str, history: list, golds: list[str]) -> dict[str, Any]:
    judged = engine.judge_question(question, history)
    return {
        "id": qid, "group": group, "question": question, "golds": golds,
        "candidates": [{"text": c.text, "origin": c.origin, "features": values} for _, c, values in judged],
    }


def matrix(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """Features (NaN where unknown), labels, the question index of each candidate, and each candidate's F1."""
    x, y, owner, f1s = [], [], [], []
    for index, row in enumerate(rows):
        for candidate in row["candidates"]:
            values = candidate["features"]
            x.append([np.nan if values.get(name) is None else float(values[name]) for name in FEATURES])
            f1 = token_f1(candidate["text"], row["golds"]) if row["golds"] else 0.0
            y.append(int(f1 >= POSITIVE_F1))
            owner.append(index)
            f1s.append(f1)
    return np.array(x, dtype=float), np.array(y), np.array(owner), f1s


def fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mean, scale, coefficients, intercept) of a logistic regression on standardized, mean-imputed features."""
    from sklearn.linear_model import LogisticRegression

    mean = np.nanmean(x, axis=0)
    mean = np.where(np.isnan(mean), 0.0, mean)
    filled = np.where(np.isnan(x), mean, x)
    scale = filled.std(axis=0)
    scale = np.where(scale < 1e-9, 1.0, scale)
    model = LogisticRegression(C=1.0, max_iter=2000).fit((filled - mean) / scale, y)
    return mean, scale, model.coef_[0], float(model.intercept_[0])


def probabilities(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float) -> np.ndarray:
    filled = np.where(np.isnan(x), mean, x)
    return 1.0 / (1.0 + np.exp(-(((filled - mean) / scale) @ coef + intercept)))


def cross_fitted(rows: list[dict[str, Any]], x: np.ndarray, y: np.ndarray, owner: np.ndarray, folds: int = 5) -> np.ndarray:
    """Each candidate's probability from a model fitted without its question's article (or gold set)."""
    groups = sorted({row["group"] for row in rows} - {"article-gold"})
    random.Random(0).shuffle(groups)
    fold_of = {group: i % folds for i, group in enumerate(groups)}
    question_fold = [fold_of[row["group"]] if row["group"] in fold_of else i % folds for i, row in enumerate(rows)]
    candidate_fold = np.array([question_fold[i] for i in owner])  # the old gold set's questions spread over folds
    out = np.zeros(len(y))
    for fold in range(folds):
        held = candidate_fold == fold
        out[held] = probabilities(x[held], *fit(x[~held], y[~held]))
    return out


def decide(rows: list[dict[str, Any]], p: np.ndarray, owner: np.ndarray, f1s: list[float], threshold: float) -> dict[str, float]:
    """Question-level metrics when each question answers with its most likely candidate if p >= threshold."""
    best: dict[int, tuple[float, float]] = {}
    for prob, index, f1 in zip(p, owner, f1s, strict=True):
        if index not in best or prob > best[index][0]:
            best[index] = (prob, f1)
    has, no, refused_right, refused = [], [], 0, 0
    for index, row in enumerate(rows):
        prob, f1 = best.get(index, (0.0, 0.0))
        answers = prob >= threshold
        if row["golds"]:
            has.append(f1 if answers else 0.0)
        else:
            no.append(0.0 if answers else 1.0)
        refused += not answers
        refused_right += (not answers) and not row["golds"]
    return {
        "threshold": round(threshold, 3),
        "overall_f1": round((sum(has) + sum(no)) / max(1, len(has) + len(no)), 4),
        "hasans_f1": round(sum(has) / max(1, len(has)), 4),
        "noans_accuracy": round(sum(no) / max(1, len(no)), 4),
        "refusal_precision": round(refused_right / refused, 4) if refused else 1.0,
        "refusal_recall": round(refused_right / max(1, len(no)), 4),
    }


def plot(curve: list[dict[str, float]], chosen: float, out: Path,
         title: str = "SQuAD 2.0 tune articles and the old gold set, cross-fitted") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [c["threshold"] for c in curve]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for key, label in (("refusal_precision", "refusal precision"), ("refusal_recall", "refusal recall"),
                       ("hasans_f1", "answer F1 (answerable)"), ("overall_f1", "overall F1")):
        ax.plot(t, [c[key] for c in curve], label=label)
    ax.axvline(chosen, color="grey", linestyle="--", label=f"chosen threshold {chosen:.2f}")
    ax.set_xlabel("threshold (answer when the best candidate's probability is at least this)")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(loc="lower center", fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out)


def weights_table(names: tuple[str, ...], coef: np.ndarray, intercept: float) -> list[str]:
    """A report's Markdown table of the fitted weights, largest first."""
    return [
        "| feature | weight |",
        "|---|---|",
        *[f"| `{name}` | {w:+.3f} |" for name, w in sorted(zip(names, coef, strict=True), key=lambda p: -abs(p[1]))],
        f"| (intercept) | {intercept:+.3f} |",
    ]


def choose(curve: list[dict[str, float]], refusal_precision: float) -> dict[str, float]:
    """The threshold with the best overall F1 among those whose refusals are at least `refusal_precision` right (the
    lowest such threshold on a tie; all thresholds when none qualifies)."""
    eligible = [c for c in curve if c["refusal_precision"] >= refusal_precision] or curve
    return max(eligible, key=lambda c: (c["overall_f1"], -c["threshold"]))


def report(rows: list[dict[str, Any]], coef: np.ndarray, intercept: float, chosen: dict[str, float], args: argparse.Namespace) -> str:
    squad_rows = [r for r in rows if r["group"] != "article-gold"]
    lines = [
        "# The answer verifier: what it learned",
        "",
        "Rebuilt by `python -m app.train_verifier` (this file, `app/verifier.json` and `docs/verifier-threshold.png`).",
        f"Fitted on {len(squad_rows)} questions sampled (seed {args.seed}) from the SQuAD 2.0 **tune** articles "
        f"({sum(bool(r['golds']) for r in squad_rows)} answerable, {sum(not r['golds'] for r in squad_rows)} unanswerable) "
        f"and {len(rows) - len(squad_rows)} questions of the old gold set (tests/gold/article.jsonl, injections left out); "
        f"{sum(len(r['candidates']) for r in rows)} candidates, labelled 1 when their token F1 with a gold answer is at least "
        f"{POSITIVE_F1}. The SQuAD test articles and the blind sets were not used.",
        "",
        "Logistic regression (scikit-learn, C = 1) on standardized features; unknown values (a remote model gives no",
        "log-probabilities) count as the training mean. Weights are per standard deviation of the feature:",
        "",
        *weights_table(FEATURES, coef, intercept),
        "",
        f"**Threshold {chosen['threshold']:.2f}**, chosen on the tune questions (probabilities cross-fitted by article, "
        f"5 folds) as the best overall F1 among thresholds whose refusals are at least {args.refusal_precision:.0%} right:",
        "",
        "| overall F1 | HasAns F1 | NoAns accuracy | refusal precision | refusal recall |",
        "|---|---|---|---|---|",
        f"| {chosen['overall_f1']:.3f} | {chosen['hasans_f1']:.3f} | {chosen['noans_accuracy']:.3f} | "
        f"{chosen['refusal_precision']:.3f} | {chosen['refusal_recall']:.3f} |",
        "",
        "![Refusal precision and recall, answer F1 and overall F1 against the threshold](verifier-threshold.png)",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.train_verifier", description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=SQUAD, help="SQuAD v2.0 JSON (its first 10 articles are the tune split)")
    parser.add_argument("--sample", type=int, default=1000, help="tune questions to ask")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--features", type=Path, default=ROOT / ".cache" / "verifier-features.jsonl",
                        help="collected features: reused when present (delete it to ask the model again)")
    parser.add_argument("--refusal-precision", type=float, default=0.6, help="least share of refusals that must be right")
    args = parser.parse_args(argv)

    if args.features.exists():
        rows = [json.loads(line) for line in args.features.read_text(encoding="utf-8").splitlines()]
        print(f"Using {len(rows)} questions' features from {args.features}", file=sys.stderr)
    else:
        with tempfile.TemporaryDirectory(prefix="verifier-") as tmp:
            rows = collect(args.squad, args.sample, args.seed, Path(tmp))
        args.features.parent.mkdir(parents=True, exist_ok=True)
        args.features.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    x, y, owner, f1s = matrix(rows)
    crossed = cross_fitted(rows, x, y, owner)
    curve = [decide(rows, crossed, owner, f1s, t) for t in np.round(np.arange(0.02, 0.99, 0.01), 3)]
    chosen = choose(curve, args.refusal_precision)
    mean, scale, coef, intercept = fit(x, y)
    load_settings().verifier_path.write_text(json.dumps({
        "features": list(FEATURES), "mean": mean.round(6).tolist(), "scale": scale.round(6).tolist(),
        "coef": coef.round(6).tolist(), "intercept": round(intercept, 6), "threshold": chosen["threshold"],
        "tune": chosen, "trained_on": {"squad_tune_questions": sum(r["group"] != "article-gold" for r in rows),
                                       "old_gold_questions": sum(r["group"] == "article-gold" for r in rows), "seed": args.seed},
    }, indent=1) + "\n", encoding="utf-8")
    plot(curve, chosen["threshold"], PLOT)
    REPORT.write_text(report(rows, coef, intercept, chosen, args), encoding="utf-8")
    print(json.dumps(chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main())

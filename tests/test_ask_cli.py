"""`python -m app.ask` as a user runs it: a fresh store is filled with the bundled article first."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ARTICLE, run_cli

pytestmark = pytest.mark.slow  # the CLI as a process, each loading the models

KEYS = {"answer", "refused", "citations", "timings", "language", "read_as"}


def test_ask_json_on_an_empty_store_ingests_the_article_first() -> None:
    result = run_cli("app.ask", "--json", "Who is the director of the Hong Kong Innovation, Technology and Industry Bureau?")
    assert result.returncode == 0, result.stderr
    assert "Store was empty; ingested" in result.stderr and "Traceback" not in result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == KEYS and set(answer["timings"]) == {"retrieve_ms", "generate_ms", "total_ms"}
    assert answer["answer"].startswith("Sun Dong") and answer["refused"] is False
    (citation,) = answer["citations"]
    assert set(citation) == {"source", "title", "chunk_id", "quote", "start", "end"}
    assert ARTICLE.read_text(encoding="utf-8")[citation["start"] : citation["end"]] == citation["quote"]


def test_ask_text_prints_numbered_sources() -> None:
    result = run_cli("app.ask", "How many papers did scientists from the two cities collaborate on?")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "12,280" in lines[0] and lines[0].endswith("[1]")
    assert any(line.startswith("[1] Shanghai, Hong Kong Draw Closer") for line in lines)


def test_title_flag_filters_and_a_line_filter_replaces_it() -> None:
    title = ARTICLE.read_text(encoding="utf-8").splitlines()[0].strip()
    lines = [json.dumps({"question": "Who is the chairman of Shui On Group?"}),
             json.dumps({"question": "Who is the chairman of Shui On Group?", "title": title})]
    result = run_cli("app.ask", "--batch", "--title", "Some other title", input_text="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    flagged, replaced = (json.loads(line) for line in result.stdout.splitlines())
    assert flagged["refused"] is True and replaced["answer"].startswith("Vincent Lo"), (flagged, replaced)


def test_batch_answers_each_line_and_reports_bad_ones() -> None:
    lines = [
        json.dumps({"question": "Who is the chairman of Shui On Group?"}),
        json.dumps({"question": "   "}),
        json.dumps({"question": "y" * 5000}),
        "this is not json",
        json.dumps({"question": "Who is its president?",
                    "history": [{"role": "user", "content": "What is the University of Hong Kong preparing to establish?"},
                                {"role": "assistant", "content": "A global innovation hub [1]"}]}),
        json.dumps({"question": ["not", "a", "string"]}),
        json.dumps({"question": "What is the population of Shanghai?"}),
        json.dumps({"question": "Who is the chairman of Shui On Group?", "title": "Some other title"}),
        json.dumps({"question": "Who is the chairman of Shui On Group?", "source": "data/" + ARTICLE.name}),
        json.dumps({"question": "Who is its president?", "history": [{"role": "user", "content": "x" * 999}] * 70}),
    ]
    result = run_cli("app.ask", "--batch", input_text="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(lines)
    assert out[0]["answer"].startswith("Vincent Lo")
    assert "empty" in out[1]["error"] and "limit is 1000" in out[2]["error"] and "Invalid JSON" in out[3]["error"]
    assert "Zhang Xiang" in out[4]["answer"] and "question" in out[5]["error"]
    assert out[6]["refused"] is True and out[6]["citations"] == []
    assert out[7]["refused"] is True and out[8]["answer"].startswith("Vincent Lo"), "a line's title/source filter"
    assert "longer than 64 KB" in out[9]["error"]
    assert all(set(o) == KEYS for o in (out[0], out[4], out[6], out[7], out[8]))
    assert all(len(o["error"].splitlines()) == 1 for o in out if "error" in o)


def test_ask_without_question_is_a_usage_error() -> None:
    result = run_cli("app.ask")
    assert result.returncode == 2 and "give a question" in result.stderr


def test_squad_file_becomes_a_corpus_and_is_ingested(tmp_path) -> None:  # noqa: ANN001
    squad = tmp_path / "tiny.json"
    squad.write_text(json.dumps({"version": "v2.0", "data": [{"title": "Tiny_Article", "paragraphs": [
        {"context": "The tiny river flows north. It is 12 km long.", "qas": []},
        {"context": "A mill stands on its bank.", "qas": []}]}]}))
    result = run_cli("ingest.squad", str(squad), str(tmp_path / "corpus"), "--ingest", "--quiet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "corpus" / "Tiny_Article.txt").read_text().startswith("Tiny Article\n\nThe tiny river")
    assert result.stdout.startswith("1 document(s): 1 added")

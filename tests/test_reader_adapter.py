"""The embedded model's reading adapter (RAG_LLM_ADAPTER): how it is chosen, written, trained and what it is worth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from app.llm import LLMUnavailable, LlamaCppCompletion, get_llm, get_none_reader, local_model_path
from app.train_reader import ALPHA, RANK, SQUAD, TRAIN_ARTICLES, examples, export_gguf, reworded_examples
from config import ROOT, Settings

BUNDLED = ROOT / "app" / "reader-lora.gguf"
SHAPES = {"q_proj": (640, 1024), "k_proj": (640, 256), "v_proj": (640, 256), "o_proj": (1024, 640)}
"""Gemma 3 270M's attention projections, (inputs, outputs); 18 layers."""


def adapter_tensors(scale: float) -> dict[str, torch.Tensor]:
    """peft's tensor names and shapes for a rank-8 adapter; B (the update's output side) times `scale`."""
    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for layer in range(18):
        for module, (fan_in, fan_out) in SHAPES.items():
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(RANK, fan_in, generator=generator) * 0.05
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(fan_out, RANK, generator=generator) * scale
    return tensors


def test_training_questions_come_from_the_training_articles_only() -> None:
    """Tune articles 1-8, every question once, in a seeded order; the answer is the shortest gold answer (or the
    first, on request) or "none"; the held-out tune articles and the test articles are never among them."""
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    asked = [qa for article in data[:TRAIN_ARTICLES] for p in article["paragraphs"] for qa in p["qas"]]
    shortest, first = examples(SQUAD, 7), examples(SQUAD, 7, "first")
    assert len(shortest) == len(first) == len(asked) and examples(SQUAD, 7) == shortest
    assert sum(a == "none" for _, a in shortest) == sum(qa["is_impossible"] for qa in asked)
    assert all(len(s) <= len(f) for (_, s), (_, f) in zip(shortest, first, strict=True))
    assert any(s != f for (_, s), (_, f) in zip(shortest, first, strict=True))
    held_out = {p["context"][:80] for article in data[TRAIN_ARTICLES:] for p in article["paragraphs"]}
    assert not any(context in prompt for prompt, _ in shortest for context in held_out)


def test_the_second_stage_rewords_training_questions_and_keeps_as_many_unanswerable(tmp_path: Path) -> None:
    """The reworded questions are answerable questions of the training articles, asked in other words, with their
    gold answer; as many unanswerable training questions keep "none" in the stage; a foreign id is refused."""
    reworded = ROOT / "tests" / "gold" / "squad-tune-reworded.jsonl"
    rows = [json.loads(line) for line in reworded.read_text(encoding="utf-8").splitlines()]
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    asked = {qa["id"]: qa for article in data[:TRAIN_ARTICLES] for p in article["paragraphs"] for qa in p["qas"]}
    assert len(rows) >= 400 and all(not asked[r["id"]]["is_impossible"] for r in rows)
    assert all(r["question"].strip().lower() != asked[r["id"]]["question"].strip().lower() for r in rows)
    items = reworded_examples(SQUAD, reworded, "first")
    assert items == reworded_examples(SQUAD, reworded, "first") and len(items) == 2 * len(rows)
    assert sum(a == "none" for _, a in items) == len(rows)
    firsts = {asked[r["id"]]["answers"][0]["text"] for r in rows}
    assert {a for _, a in items if a != "none"} <= firsts
    foreign = tmp_path / "foreign.jsonl"
    test_id = data[-1]["paragraphs"][0]["qas"][0]["id"]
    foreign.write_text(json.dumps({"id": test_id, "question": "What?"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no answerable question of the training articles"):
        reworded_examples(SQUAD, foreign, "first")


def first_token_logprobs(model: Path, adapter: Path | None) -> np.ndarray:
    llm = LlamaCppCompletion(model_path=str(model), lora_path=str(adapter) if adapter else None, n_ctx=256)
    llm.load()
    return llm._prefill(llm._llama.tokenize(b"The capital of France is", add_bos=True))  # noqa: SLF001


def test_the_adapter_reads_by_default_for_the_packaged_model_only(tmp_path: Path) -> None:
    assert Settings().llm_adapter == BUNDLED and get_none_reader(Settings()).lora_path == str(BUNDLED)
    assert get_llm(Settings()).lora_path is None  # the plain model reads first; the adapted copy judges and rereads
    for off in ("", "off", "none"):
        assert Settings(llm_adapter=off).llm_adapter is None and get_none_reader(Settings(llm_adapter=off)) is None
    other = local_model_path(Settings())  # named by RAG_LLM_MODEL: another model as far as the adapter knows
    assert get_none_reader(Settings(llm_model=str(other))) is None
    assert get_none_reader(Settings(llm_model=str(other), llm_adapter=str(BUNDLED))).lora_path == str(BUNDLED)
    assert get_none_reader(Settings(llm="openai", llm_base_url="http://127.0.0.1:9/v1")) is None
    with pytest.raises(LLMUnavailable, match=r"python -m app\.train_reader"):
        get_none_reader(Settings(llm_adapter=str(tmp_path / "missing.gguf")))


def test_a_file_that_is_no_lora_adapter_is_refused_before_llama_cpp_sees_it(tmp_path: Path) -> None:
    """llama.cpp ends the whole process (a segmentation fault) on such a file, so it is checked first."""
    text, cut = tmp_path / "text.gguf", tmp_path / "cut.gguf"
    text.write_text("not a model\n", encoding="utf-8")
    cut.write_bytes(BUNDLED.read_bytes()[: BUNDLED.stat().st_size // 2])
    for path in (text, cut, local_model_path(Settings())):  # the last: a whole model, not an adapter
        with pytest.raises(LLMUnavailable, match=r"is not a LoRA adapter GGUF: rebuild it with `python -m app\.train_reader`"):
            get_none_reader(Settings(llm_adapter=str(path)))


def test_an_exported_adapter_changes_the_model_as_llama_cpp_reads_it(tmp_path: Path) -> None:
    """The GGUF writer's names and shapes are llama.cpp's: a zero update leaves the model's output as it was, a
    non-zero one changes it (a misnamed tensor would be refused at load, a transposed one would not load)."""
    import gguf

    model = local_model_path(Settings())
    zero, some = tmp_path / "zero.gguf", tmp_path / "some.gguf"
    export_gguf(adapter_tensors(0.0), ALPHA, zero)
    export_gguf(adapter_tensors(0.05), ALPHA, some)
    reader = gguf.GGUFReader(str(some))
    assert len(reader.tensors) == 18 * 4 * 2
    assert {bytes(reader.fields["adapter.type"].parts[-1]).decode(), bytes(reader.fields["general.type"].parts[-1]).decode()} == {"lora", "adapter"}
    base = first_token_logprobs(model, None)
    assert np.allclose(first_token_logprobs(model, zero), base, atol=1e-3)
    assert np.abs(first_token_logprobs(model, some) - base).max() > 0.1
    with pytest.raises(ValueError, match="unexpected adapter tensor"):
        export_gguf({"base_model.model.lm_head.lora_A.weight": torch.zeros(RANK, 4)}, ALPHA, tmp_path / "bad.gguf")
    assert not (tmp_path / "bad.gguf").exists() and not (tmp_path / "bad.partial").exists()


BACKGROUND_JOBS = {
    "reader-dev": lambda folder: ["-m", "app.train_reader", "--evaluate", "60", "--out", str(BUNDLED)],
    "reader-train": lambda folder: [
        "-m", "app.train_reader", "--examples", "12", "--work", str(folder / "work"), "--out", str(folder / "adapter.gguf"),
    ],
}

DEV_FLOORS = {"overall_f1": 0.60, "hasans_f1": 0.40, "noans_accuracy": 0.60}
"""The adapted reader on 60 + 60 held-out SQuAD tune questions, read from their gold paragraph: floors below the
measured figures (docs/reader.md); the plain model with few-shot examples is far below them."""


@pytest.mark.slow
def test_the_adapter_reads_held_out_questions_better_than_the_plain_model(background) -> None:  # noqa: ANN001
    run = background("reader-dev")
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    for metric, floor in DEV_FLOORS.items():
        assert report["adapter"][metric] >= floor, report
    assert report["adapter"]["overall_f1"] >= report["plain_few_shot"]["overall_f1"] + 0.1, report


@pytest.mark.slow
def test_training_runs_resumes_and_writes_an_adapter_llama_cpp_loads(background, tmp_path: Path) -> None:  # noqa: ANN001
    """The real command on 12 questions (the GGUF loaded by transformers, peft, one step, the export); llama.cpp
    loads what it wrote and answers differently from the plain model."""
    run = background("reader-train")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Wrote" in run.stdout and "(12 questions)" in run.stdout
    folder = Path(run.args[-1]).parent
    state = json.loads((folder / "work" / "state.json").read_text())
    assert state["done"] == 12 and len(state["losses"]) == 12 and all(loss > 0 for loss in state["losses"])
    model = local_model_path(Settings())
    assert np.abs(first_token_logprobs(model, folder / "adapter.gguf") - first_token_logprobs(model, None)).max() > 0


@pytest.mark.slow
def test_an_answer_the_adapter_would_call_none_is_refused(article_engine, monkeypatch) -> None:  # noqa: ANN001
    """The veto is wired into the rules check (RAG_ANSWER_CHECK=rules): at the default margin a plain question keeps its (cited) answer; at a margin that
    every reading reaches, every answer is refused (and a follow-up, whose words alone do not say what it asks, is
    left to the other checks)."""
    engine = article_engine
    assert engine.none_reader is not None and engine.none_reader.lora_path == str(BUNDLED)
    monkeypatch.setattr(engine, "check", None)  # the rules check
    settings = engine.settings
    try:
        kept = engine.ask("Who is the chairman of Shui On Group?")
        assert not kept.refused and kept.answer.removesuffix(" [1]") in kept.citations[0].quote
        engine.settings = settings.model_copy(update={"reader_none_margin": -100.0})
        assert engine.ask("Who is the chairman of Shui On Group?").refused
        history = [{"role": "user", "content": "Who is the chairman of Shui On Group?"}, {"role": "assistant", "content": "Vincent Lo"}]
        assert not engine.ask("What role should Hong Kong play, according to him?", history).refused
    finally:
        engine.settings = settings


@pytest.mark.slow
def test_where_the_plain_models_span_is_refused_the_adapters_own_is_checked(article_engine, monkeypatch) -> None:  # noqa: ANN001
    """The reread is wired into the rules check: with a plain model that only ever says "none", a question is answered from
    the adapter's own span when the adapter is sure enough of it (the rules still check it: verbatim, cited), and
    not when RAG_READER_RESCUE_MARGIN lets no span through."""
    from app.llm import Completion

    engine = article_engine
    settings = engine.settings
    monkeypatch.setattr(engine, "check", None)  # the rules check
    monkeypatch.setattr(engine, "_read", lambda question, passage: (Completion(text=" none", logprob=None, none_logprob=None), ""))
    question = "Who chairs Shui On Group?"  # not every word in the passage as typed: no whole-sentence reply either
    try:
        engine.settings = settings.model_copy(update={"reader_rescue_margin": -100.0})
        assert engine.ask(question).refused
        engine.settings = settings.model_copy(update={"reader_rescue_margin": 100.0, "reader_none_margin": 100.0})
        rescued = engine.ask(question)
        words = rescued.answer.removesuffix(" [1]")
        assert not rescued.refused and words != "none" and len(words) < 40  # a span, not the whole sentence
        assert rescued.citations and words in rescued.citations[0].quote and "Shui On Group" in rescued.citations[0].quote
    finally:
        engine.settings = settings

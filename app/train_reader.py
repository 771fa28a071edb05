"""`python -m app.train_reader`: teach the embedded Gemma 3 270M to read, with a LoRA adapter fitted on SQuAD tune.

Gemma 3 270M is a base model: with few-shot examples it copies the passage's answer about 60% of the time and almost
never says "none" to a question the passage does not answer. A low-rank adapter (LoRA, rank 8 on the attention
projections: 0.7 M trained weights beside the 268 M fixed ones) is fitted here on the SQuAD 2.0 *tune* articles only
(the first 8 of them; the other 2 tune articles are its dev set, the test articles are never seen):

1. transformers loads the packaged GGUF (dequantized to float32) and peft adds the adapter;
2. each question is one example, its gold paragraph in `prompts.EXTRACT_ANSWER_TUNED`, the loss on the answer
   tokens only (the first gold answer, or "none" for an unanswerable question), AdamW, 8 questions per step;
3. a second stage (`--reworded tests/gold/squad-tune-reworded.jsonl --init FIRST_STAGE_WORK`) goes on from there
   with 480 of those questions asked in other words and as many unanswerable ones, so that rewording stops
   meaning "none";
4. the adapter is written as a llama.cpp LoRA GGUF (app/reader-lora.gguf), which `app.llm.LlamaCppCompletion`
   applies on top of the unchanged quantized model (RAG_LLM_ADAPTER).

Training is resumable: the state is kept in `--work` after every 200 questions, and a run stopped by `--minutes`
(or killed) goes on from there when run again. The first stage (2.8k questions) takes about 75 minutes on 2 cores,
the second (960) about 30.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from config import ROOT, Settings, load_settings
from prompts import EXTRACT_ANSWER_TUNED

SQUAD = ROOT.parent / "shared" / "evaldata" / "squad2-dev-20-articles.json"
BUNDLED = ROOT / "app" / "reader-lora.gguf"
"""The adapter the project ships (RAG_LLM_ADAPTER=app/reader-lora.gguf turns it on)."""
TRAIN_ARTICLES = 8
"""The first 8 SQuAD articles train the adapter; articles 9 and 10 (the rest of the tune split) are its dev set."""
RANK = 8
ALPHA = 16
TARGETS = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}
"""The adapted layers, by their transformers name, and llama.cpp's name for each."""
BATCH = 8
LEARNING_RATE = 2e-4
SAVE_EVERY = 200


def gold_target(qa: dict[str, Any], answer: str) -> str:
    """The gold answer an answerable question is trained on: the first one given, or the shortest."""
    golds = [a["text"] for a in qa["answers"]]
    return golds[0] if answer == "first" else min(golds, key=len)


def examples(squad: Path, seed: int, answer: str = "shortest") -> list[tuple[str, str]]:
    """(prompt, answer) for every question of the training articles, shuffled: the answer is the shortest (or the
    first) gold answer, or "none" when the paragraph does not answer the question."""
    articles = json.loads(squad.read_text(encoding="utf-8"))["data"][:TRAIN_ARTICLES]
    items = []
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                target = "none" if qa["is_impossible"] else gold_target(qa, answer)
                items.append((EXTRACT_ANSWER_TUNED.format(passage=paragraph["context"], question=qa["question"]), target))
    random.Random(seed).shuffle(items)
    return items


def reworded_examples(squad: Path, reworded: Path, answer: str = "shortest") -> list[tuple[str, str]]:
    """A second stage's (prompt, answer), shuffled: each reworded question of `reworded` (JSONL of SQuAD `id` and a
    `question` asking the same thing in other words) with its gold answer, and as many unanswerable questions of the
    training articles, so that the stage teaches "reworded is still answerable" without unlearning "none"."""
    articles = json.loads(squad.read_text(encoding="utf-8"))["data"][:TRAIN_ARTICLES]
    asked, nones = {}, []
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if qa["is_impossible"]:
                    nones.append(EXTRACT_ANSWER_TUNED.format(passage=paragraph["context"], question=qa["question"]))
                else:
                    asked[qa["id"]] = (paragraph["context"], gold_target(qa, answer))
    items = []
    for number, line in enumerate(reworded.read_text(encoding="utf-8").splitlines(), 1):
        row = json.loads(line)
        if row["id"] not in asked:
            raise ValueError(f"line {number} of {reworded}: {row['id']} is no answerable question of the training articles")
        passage, target = asked[row["id"]]
        items.append((EXTRACT_ANSWER_TUNED.format(passage=passage, question=row["question"]), target))
    rng = random.Random(5)
    items += [(prompt, "none") for prompt in rng.sample(nones, min(len(items), len(nones)))]
    rng.shuffle(items)
    return items


def export_gguf(tensors: dict[str, Any], alpha: float, path: Path) -> None:
    """Write peft's LoRA tensors as a llama.cpp adapter GGUF (what llama.cpp's convert_lora_to_gguf.py writes for
    Gemma 3: the same tensor names and shapes, no permutation), atomically."""
    import gguf
    import numpy as np

    names = {}
    for key in sorted(tensors):
        found = re.search(r"layers\.(\d+)\.self_attn\.(\w+)\.lora_([AB])\.weight", key)
        if not found or found[2] not in TARGETS:
            raise ValueError(f"unexpected adapter tensor {key}")
        names[key] = f"blk.{found[1]}.{TARGETS[found[2]]}.weight.lora_{found[3].lower()}"
    partial = path.with_suffix(".partial")
    writer = gguf.GGUFWriter(str(partial), "gemma3")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    for key, name in names.items():
        writer.add_tensor(name, np.ascontiguousarray(tensors[key].detach().float().numpy(), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(path)


def train(model_path: Path, items: list[tuple[str, str]], work: Path, minutes: float, threads: int) -> int:
    """Go on training from the state in `work` for at most `minutes` or to the end of `items`; return the number
    of questions trained on so far."""
    import torch
    import torch.nn.functional as F
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_path.parent, gguf_file=model_path.name)
    base = AutoModelForCausalLM.from_pretrained(model_path.parent, gguf_file=model_path.name, dtype=torch.float32)
    state_file = work / "state.json"
    if state_file.exists():
        model = PeftModel.from_pretrained(base, work, is_trainable=True)
        state = json.loads(state_file.read_text())
    else:
        config = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=list(TARGETS), task_type="CAUSAL_LM")
        model = get_peft_model(base, config)
        state = {"done": 0, "losses": []}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE, weight_decay=0.0)
    if (work / "optimizer.pt").exists():
        optimizer.load_state_dict(torch.load(work / "optimizer.pt"))

    def save(done: int) -> None:
        state["done"] = done
        model.save_pretrained(work)
        torch.save(optimizer.state_dict(), work / "optimizer.pt")
        state_file.write_text(json.dumps(state))

    model.train()
    start, done = time.monotonic(), state["done"]
    while done < len(items) and time.monotonic() - start < minutes * 60:
        prompt, answer = items[done]
        asked = tokenizer(prompt)["input_ids"]
        whole = tokenizer(f"{prompt} {answer}\n")["input_ids"]
        if whole[: len(asked)] == asked:  # the answer's tokens follow the prompt's unchanged
            n = len(whole) - len(asked)
            ids = torch.tensor([whole])
            logits = model(input_ids=ids, logits_to_keep=n + 1).logits[0, :-1]
            loss = F.cross_entropy(logits.float(), ids[0, -n:])
            (loss / BATCH).backward()
            state["losses"].append(round(loss.item(), 4))
        done += 1
        if done % BATCH == 0:
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad()
        if done % SAVE_EVERY == 0:
            recent = state["losses"][-SAVE_EVERY:]
            print(f"{done}/{len(items)} questions, loss {sum(recent) / max(1, len(recent)):.3f}", flush=True)
            save(done)
    save(done if done == len(items) else done - done % BATCH)  # a partial batch is trained again on resume; the last is dropped
    return state["done"]


def dev_questions(squad: Path, per_kind: int) -> list[tuple[str, str, list[str]]]:
    """(paragraph, question, gold answers: empty when unanswerable) from the two held-out tune articles, `per_kind`
    answerable and `per_kind` unanswerable, in a seeded order."""
    articles = json.loads(squad.read_text(encoding="utf-8"))["data"][TRAIN_ARTICLES:10]
    items = [
        (paragraph["context"], qa["question"], [a["text"] for a in qa["answers"]])
        for article in articles for paragraph in article["paragraphs"] for qa in paragraph["qas"]
    ]
    random.Random(1).shuffle(items)
    return [i for i in items if i[2]][:per_kind] + [i for i in items if not i[2]][:per_kind]


def read_dev(settings: Settings, questions: list[tuple[str, str, list[str]]], adapter: Path | None) -> list[dict[str, Any]]:
    """Stage "read" alone on the gold paragraph: the plain model with its few-shot prompt, or the model with the
    adapter and its span, its first word's log-probability and that of "none"."""
    from app.evaluate import token_f1
    from app.grounding import clean_candidate
    from app.llm import LlamaCppCompletion, local_model_path
    from prompts import EXTRACT_ANSWER, EXTRACT_STOP

    llm = LlamaCppCompletion(
        model_path=str(local_model_path(settings.model_copy(update={"llm_model": ""}))), n_threads=settings.llm_threads,
        lora_path=str(adapter) if adapter else None,
    )
    rows = []
    for passage, question, golds in questions:
        prompt = (EXTRACT_ANSWER_TUNED if adapter else EXTRACT_ANSWER).format(passage=passage, question=question)
        completion = llm.complete(prompt, EXTRACT_STOP, span_only=adapter is not None)
        span = clean_candidate(completion.text) or ""
        rows.append({
            "answerable": bool(golds), "span": span, "f1": token_f1(span, golds) if golds and span else 0.0,
            "margin": None if completion.first_logprob is None else completion.none_logprob - completion.first_logprob,
        })
    return rows


def decide(rows: list[dict[str, Any]], margin: float | None) -> dict[str, float]:
    """SQuAD 2.0's scores of a reader: answer F1 on the answerable questions, refusals of the unanswerable ones and
    the two together; with `margin`, 'none' wherever the model's margin for it reaches the margin."""
    def says_none(row: dict[str, Any]) -> bool:
        return not row["span"] if margin is None else row["margin"] is None or row["margin"] >= margin

    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    hasans = sum(0.0 if says_none(r) else r["f1"] for r in answerable)
    noans = sum(says_none(r) for r in unanswerable)
    return {
        "hasans_f1": round(hasans / max(1, len(answerable)), 3), "noans_accuracy": round(noans / max(1, len(unanswerable)), 3),
        "overall_f1": round((hasans + noans) / max(1, len(rows)), 3),
    }


def evaluate(settings: Settings, squad: Path, adapter: Path, per_kind: int) -> dict[str, Any]:
    """The plain and the adapted reader on the held-out tune questions, and the no-answer margin that serves the
    adapted one best there (the smallest of the best, answering more in a tie)."""
    questions = dev_questions(squad, per_kind)
    plain = read_dev(settings, questions, None)
    adapted = read_dev(settings, questions, adapter)
    margins = [round(m * 0.25, 2) for m in range(-24, 25)]
    best = max(margins, key=lambda m: (decide(adapted, m)["overall_f1"], -m))
    return {
        "questions": len(questions), "plain_few_shot": decide(plain, None), "adapter_margin_0": decide(adapted, 0.0),
        "adapter": decide(adapted, best), "margin": best,
        "adapter_span_f1": round(sum(r["f1"] for r in adapted if r["answerable"]) / max(1, per_kind), 3),
    }


def main(argv: list[str] | None = None) -> int:
    settings = load_settings()
    parser = argparse.ArgumentParser(prog="python -m app.train_reader", description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", type=Path, default=SQUAD, help="SQuAD 2.0 file whose first 8 articles train the adapter.")
    parser.add_argument("--out", type=Path, default=BUNDLED, help="Where to write (or, with --evaluate, read) the adapter GGUF.")
    parser.add_argument("--work", type=Path, default=settings.cache_dir / "reader-lora", help="Resumable training state.")
    parser.add_argument("--minutes", type=float, default=90.0, help="Stop (resumably) after this long.")
    parser.add_argument("--examples", type=int, default=None, help="Train on the first N shuffled questions only.")
    parser.add_argument("--seed", type=int, default=7, help="Order of the training questions.")
    parser.add_argument(
        "--answer", choices=["shortest", "first"], default="first",
        help="Which gold answer an answerable question is trained on (app/reader-lora.gguf: first).",
    )
    parser.add_argument(
        "--evaluate", type=int, metavar="N", default=None,
        help="Instead of training: read N answerable and N unanswerable questions of the held-out tune articles with "
        "the plain model and with the adapter --out, print the scores and the no-answer margin that fits best (JSON).",
    )
    parser.add_argument(
        "--reworded", type=Path, default=None,
        help="A second stage: train on these reworded questions (JSONL of SQuAD id and question) and as many "
        "unanswerable ones of the training articles, starting from the adapter of --init.",
    )
    parser.add_argument("--init", type=Path, default=None, help="With --reworded: the --work folder of a finished first stage.")
    args = parser.parse_args(argv)
    if args.reworded is not None and (args.init is None or not (args.init / "state.json").is_file()):
        parser.error("--reworded needs --init: the --work folder of a finished first stage.")
    if args.evaluate is not None:
        if not args.out or not args.out.is_file():
            parser.error(f"there is no adapter {args.out} to evaluate.")
        print(json.dumps(evaluate(settings, args.squad, args.out, args.evaluate)))
        return 0
    if not args.squad.is_file():
        print(f"The SQuAD file {args.squad} does not exist; name it with --squad.", file=sys.stderr)
        return 2
    from app.llm import local_model_path

    if args.reworded is not None:
        try:
            items = reworded_examples(args.squad, args.reworded, args.answer)[: args.examples]
        except (OSError, ValueError, KeyError, TypeError) as err:  # JSON errors are ValueErrors
            print(f"The reworded questions {args.reworded} cannot be used: {err}", file=sys.stderr)
            return 2
        if not (args.work / "state.json").exists():  # the first stage's adapter and optimizer, its count restarted
            shutil.copytree(args.init, args.work, dirs_exist_ok=True)
            (args.work / "state.json").write_text(json.dumps({"done": 0, "losses": []}))
    else:
        items = examples(args.squad, args.seed, args.answer)[: args.examples]
    args.work.mkdir(parents=True, exist_ok=True)
    done = train(local_model_path(settings.model_copy(update={"llm_model": ""})), items, args.work, args.minutes, settings.llm_threads)
    if done < len(items):
        print(f"Stopped after {done} of {len(items)} questions; run the same command again to go on.")
        return 3
    from safetensors.torch import load_file

    export_gguf(load_file(args.work / "adapter_model.safetensors"), ALPHA, args.out)
    print(f"Wrote {args.out} ({done} questions).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

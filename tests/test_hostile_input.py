"""Hostile input, property-based (hypothesis): the HTTP API, the CLI batch mode and the ingest loaders.

Arbitrary unicode (control characters, NUL, lone surrogates), wrong-typed and deeply nested JSON, 1 MB bodies and
random bytes as files. Never a 5xx, never a crash or a traceback for the user, one-line errors, and the store is
unchanged by whatever is rejected. Derandomized, so every run tries the same examples (their counts go to
docs/reliability.md).
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from config import ROOT, Settings
from ingest.chunking import split_document
from ingest.loaders import LoadError, load_document
from ingest.pipeline import ingest
from tests.conftest import ARTICLE, AppServer
from tests.test_loaders import make_pdf
from vectorstore import open_collection

pytestmark = pytest.mark.slow  # hypothesis against a running app and the CLI

KEYS = {"answer", "refused", "citations", "timings", "language", "read_as"}
MB = 1_000_000


def fixed(max_examples: int) -> hypothesis_settings:
    """Deterministic examples (CI and docs/reliability.md see the same ones), no deadline: the real model answers."""
    return hypothesis_settings(
        max_examples=max_examples, derandomize=True, database=None, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


# --- strategies ---------------------------------------------------------------------------------------------------

NASTY = "\x00\x01\x07\x08\x1b\x7f\x85\x9f\r\t\x0b\x0c\u2028\u2029\u200b\u202e\ufeff\ufffe\ud800\udbff\udc00\udfff"
hostile_text = st.text(alphabet=st.characters(exclude_categories=()) | st.sampled_from(NASTY), max_size=120)
"""Any code point: control characters, NUL, lone surrogates, unassigned and private-use characters."""

FIELDS = ["question", "history", "source", "title", "role", "content"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(hostile_text | st.sampled_from(FIELDS), children, max_size=4),
    max_leaves=20,
)
not_a_string = json_values.filter(lambda v: not isinstance(v, str))
not_a_history = json_values.filter(
    lambda h: not isinstance(h, list)
    or not all(isinstance(t, dict) and t.get("role") in ("user", "assistant") and isinstance(t.get("content"), str) for t in h)
)


def dumps(value: object) -> bytes:
    """JSON as Python writes it: lone surrogates as \\ud800 escapes, NaN and Infinity as bare words."""
    return json.dumps(value).encode()


wrong_typed_bodies = st.one_of(
    st.fixed_dictionaries(
        {"question": not_a_string}, optional={"history": json_values, "source": json_values, "title": json_values}
    ),
    st.fixed_dictionaries({"question": hostile_text, "history": not_a_history}),
    st.fixed_dictionaries({"question": hostile_text, "source": not_a_string.filter(lambda v: v is not None)}),
    st.fixed_dictionaries({"question": hostile_text, "title": not_a_string.filter(lambda v: v is not None)}),
).map(dumps)

DEEP = [opener * depth + closer * (depth if closed else 0)
        for opener, closer in ((b"[", b"]"), (b'{"a":', b"}"), (b'{"question":[', b"]}"), (b'{"question":"x","history":[', b"]}"))
        for depth in (900, 2_000, 10_000) for closed in (False, True)]
"""Deeply nested JSON: Python's parser recurses and runs out of stack."""
MEGABYTE_BODIES = [
    dumps({"question": "y" * MB}),
    b"[" * MB,
    random.Random(1).randbytes(MB),
]

# A body and whether to send it chunked (no Content-Length, so only reading the body can enforce the size limit).
hostile_bodies = st.one_of(
    json_values.map(dumps),
    wrong_typed_bodies,
    st.binary(max_size=2000),
    st.sampled_from(DEEP),
    st.integers(4300, 20_000).map(lambda digits: b'{"question": 1' + b"0" * digits + b"}"),
).map(lambda body: (body, False))


def with_separators(question: str) -> st.SearchStrategy[str]:
    """The question with control characters, NUL and lone surrogates around and between its words."""
    controls = "\x00\x01\x1b\x7f\x85\x9f\t\r\n\x0b\x0c\u2028\ud800\udfff "
    separator = st.text(alphabet=st.sampled_from(controls), min_size=1, max_size=4)
    words = question.split()
    return st.lists(separator, min_size=len(words) + 1, max_size=len(words) + 1).map(
        lambda seps: "".join(s + w for s, w in zip(seps, [*words, ""], strict=True))
    )


QUESTION = "Who is the chairman of Shui On Group?"


# --- the API --------------------------------------------------------------------------------------------------------


def post(server: AppServer, body: bytes, chunked: bool = False) -> httpx.Response:
    content: bytes | Iterator[bytes] = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    return httpx.post(f"{server.url}/api/ask", content=content, headers={"Content-Type": "application/json"}, timeout=120)


def assert_answer_or_clean_error(response: httpx.Response, allowed: set[int]) -> dict:
    assert response.status_code in allowed, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    body = response.json()
    if response.status_code == 200:
        assert set(body) == KEYS | {"answer_id"} and isinstance(body["answer"], str) and isinstance(body["refused"], bool)
    else:
        assert set(body) == {"error"}, body
        error = body["error"]
        assert isinstance(error, str) and error.strip() and "\n" not in error, error
        assert "Traceback" not in error and 'File "' not in error, error
    return body


def health(server: AppServer) -> dict:
    response = httpx.get(f"{server.url}/api/health", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_hostile_json_bodies_get_a_one_line_4xx(app_server: AppServer, reliability: Callable) -> None:
    chunks = health(app_server)["chunks"]
    tries = 0

    @fixed(60)
    @given(hostile_bodies)
    @example((MEGABYTE_BODIES[0], False)).via("1 MB question")
    @example((MEGABYTE_BODIES[0], True)).via("1 MB question, chunked")
    @example((MEGABYTE_BODIES[1], True)).via("1 MB of '[', chunked")
    @example((MEGABYTE_BODIES[2], True)).via("1 MB of random bytes, chunked")
    @example((b"[" * 10_000, False)).via("10,000 levels of '['")
    @example((b'{"question": "Who\\ud800 chairs Shui On Group?", "source": "\\udc00"}', False)).via("lone surrogates")
    def check(case: tuple[bytes, bool]) -> None:
        nonlocal tries
        tries += 1
        body, chunked = case
        allowed = {413} if len(body) > 64 * 1024 else {200, 400, 422}
        assert_answer_or_clean_error(post(app_server, body, chunked), allowed)

    check()
    assert health(app_server)["chunks"] == chunks
    reliability("hostile JSON bodies to POST /api/ask", tries, "no 5xx, one-line errors, store unchanged")


hostile_questions = st.one_of(
    with_separators(QUESTION).map(lambda q: ({"question": q}, True)),
    st.fixed_dictionaries(
        {"question": hostile_text},
        optional={
            "history": st.lists(
                st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": hostile_text}), max_size=3
            ),
            "source": hostile_text, "title": hostile_text,
        },
    ).map(lambda body: (body, False)),
)


def test_hostile_questions_get_an_answer_or_a_422(app_server: AppServer, reliability: Callable) -> None:
    chunks = health(app_server)["chunks"]
    tries = 0

    @fixed(15)
    @given(hostile_questions)
    def check(case: tuple[dict, bool]) -> None:
        nonlocal tries
        tries += 1
        request, answerable = case
        answer = assert_answer_or_clean_error(post(app_server, dumps(request)), {200, 422})
        if answerable:  # only control characters, NUL and surrogates were added: the same question, the same answer
            assert answer.get("answer", "").startswith("Vincent Lo"), (request, answer)

    check()
    assert health(app_server)["chunks"] == chunks
    reliability("hostile questions to POST /api/ask", tries, "no 5xx; an answer or a one-line 422; store unchanged")


# --- the CLI batch mode ---------------------------------------------------------------------------------------------

HUGE_LINES = [
    dumps({"question": "x" * MB}),
    b"\x00" * MB,
    b"\xff" * MB,
    b"[" * MB,
    dumps({"question": QUESTION, "history": [{"role": "system", "content": "z " * (MB // 2)}]}),
]
batch_lines = st.lists(
    st.one_of(
        hostile_text.map(lambda text: text.encode("utf-8", "surrogatepass")),  # raw text; surrogates as invalid UTF-8
        json_values.map(dumps),
        st.one_of(
            st.fixed_dictionaries({"question": not_a_string}, optional={"history": json_values}),
            st.fixed_dictionaries({"question": hostile_text, "history": not_a_history}),
        ).map(dumps),
        st.binary(max_size=300),
        st.sampled_from(HUGE_LINES),
    ).map(lambda line: line.replace(b"\n", b" ")),
    min_size=20, max_size=30,
).map(lambda lines: [dumps({"question": "\x00Who is the chairman\x1b of Shui On Group?\x7f"}), *lines])
"""Hostile lines after one question with NUL, ESC and DEL, which is answered (each answer costs the model)."""


def run_batch(stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    """`python -m app.ask --batch` like conftest's `run_cli`, but with bytes on stdin (run_cli is text-only).

    Text stdin is strict UTF-8 here, as in a locale such as en_US.UTF-8 (in the C locale Python lets bad bytes through).
    """
    return subprocess.run(
        [sys.executable, "-m", "app.ask", "--batch"], cwd=ROOT, env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
        input=stdin, capture_output=True, timeout=600,
    )


def parses_as_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def test_hostile_batch_lines_get_one_answer_or_error_each(reliability: Callable) -> None:
    tries = 0

    @fixed(3)
    @given(batch_lines)
    def check(lines: list[bytes]) -> None:
        nonlocal tries
        tries += 1
        result = run_batch(b"\n".join(lines) + b"\n")
        stderr = result.stderr.decode("utf-8", "replace")
        assert result.returncode == 0 and "Traceback" not in stderr, stderr[-2000:]
        replies = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
        asked = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
        assert len(replies) == len(asked), (len(replies), len(asked))
        assert replies[0].get("answer", "").startswith("Vincent Lo"), replies[0]
        for (number, line), reply in zip(asked, replies, strict=True):
            if "error" in reply:
                assert set(reply) == {"error"} and reply["error"].startswith(f"line {number}: ") and "\n" not in reply["error"]
            else:
                assert set(reply) == KEYS and parses_as_object(line), (number, line[:200], reply)

    check()
    reliability("hostile lines to the CLI batch mode", tries, "exit 0, one JSON reply per line, no traceback")


# --- the loaders and the pipeline -----------------------------------------------------------------------------------

SUFFIXES = [".txt", ".md", ".html", ".htm", ".pdf"]


@functools.cache
def pdf_bytes() -> bytes:
    """A valid one-page PDF with a text layer, to mutate."""
    with tempfile.TemporaryDirectory() as tmp:
        return make_pdf(Path(tmp) / "valid.pdf").read_bytes()


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


name_bytes = st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_"))
"""File names as Linux allows them: any bytes but '/' and NUL, so also newlines and invalid UTF-8."""
documents = st.one_of(
    st.tuples(st.sampled_from(SUFFIXES), st.binary(max_size=64 * 1024)),
    st.tuples(st.sampled_from(SUFFIXES), hostile_text.map(lambda text: text.encode("utf-8", "surrogatepass"))),
    st.tuples(
        st.just(".pdf"),
        st.tuples(
            st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6), st.none() | st.integers(0, 800)
        ).map(lambda edits: mutate(pdf_bytes(), *edits)),
    ),
)
"""(suffix, content): random bytes, any text (surrogates as invalid UTF-8), a valid PDF with bytes changed or cut."""
rejected_files = st.one_of(
    st.tuples(st.sampled_from(SUFFIXES[:4]), st.binary(max_size=4096), st.binary(max_size=4096)).map(
        lambda t: (t[0], t[1] + b"\x00" + t[2])
    ),
    st.tuples(st.sampled_from(SUFFIXES[:4]), st.binary(max_size=4096)).map(lambda t: (t[0], b"\xff" + t[1])),
    st.tuples(st.sampled_from([".txt", ".md"]), st.text(alphabet=" \t\r\n\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u3000")).map(
        lambda t: (t[0], t[1].encode())
    ),
    st.tuples(st.just(".pdf"), st.binary(max_size=4096)),
)
"""(suffix, content) that no loader accepts: NUL bytes, invalid UTF-8, only whitespace, not a PDF."""
ONE_MB = random.Random(2).randbytes(MB)


def write(folder: Path, name: bytes, suffix: str, data: bytes) -> Path:
    path = os.path.join(os.fsencode(folder), name[:200] + suffix.encode())
    with open(path, "wb") as file:
        file.write(data)
    return Path(os.fsdecode(path))


def test_random_bytes_as_documents_load_or_fail_in_one_line(tmp_path: Path, settings: Settings, reliability: Callable) -> None:
    tries = 0

    @fixed(150)
    @given(name_bytes, documents)
    @example(b"one-megabyte", (".txt", ONE_MB)).via("1 MB of random bytes")
    @example(b"one-megabyte", (".pdf", b"%PDF-1.4\n" + ONE_MB)).via("1 MB of random bytes after a PDF header")
    @example(b"empty", (".md", b"")).via("empty file")
    @example(b"new\nline", (".txt", b"\x00")).via("a newline in the name")
    @example(b"caf\xe9", (".txt", b"Readable text.")).via("a name that is not UTF-8")
    @example(b"surrogate", (".html", "<p>lone \ud800 surrogate</p>".encode("utf-8", "surrogatepass"))).via("CESU surrogate bytes")
    def check(name: bytes, document: tuple[str, bytes]) -> None:
        nonlocal tries
        tries += 1
        folder = tmp_path / f"load-{tries}"
        folder.mkdir()
        path = write(folder, name, *document)
        try:
            loaded = load_document(path, ROOT)
        except LoadError as err:
            assert err.reason and "\n" not in str(err) and "\r" not in str(err), repr(str(err))
            return
        assert loaded.page_content.strip()
        for value in (loaded.page_content, *loaded.metadata.values()):  # what Chroma and the chunk ids will need
            assert isinstance(value, str)
            value.encode("utf-8")  # raises on lone surrogates

    check()

    ingest([ARTICLE], settings, progress=False)
    mixed = tmp_path / "mixed"
    good = "# Field notes\n\nThe heron nests by the mill pond. It returns every spring.\n"
    before = set(open_collection(settings).get(include=[])["ids"])
    pipeline_tries = 0

    @fixed(8)
    @given(st.lists(st.tuples(name_bytes, rejected_files), min_size=1, max_size=4))
    @example([(b"big", (".txt", ONE_MB)), (b"caf\xe9", (".txt", b"Readable text.")), (b"new\nline", (".md", b"\x00"))]).via(
        "1 MB, a name that is not UTF-8, a newline in a name"
    )
    def check_pipeline(bad: list[tuple[bytes, tuple[str, bytes]]]) -> None:
        nonlocal pipeline_tries
        pipeline_tries += 1
        shutil.rmtree(mixed, ignore_errors=True)
        mixed.mkdir()
        good_path = mixed / "good.md"
        good_path.write_text(good, encoding="utf-8")
        for number, (name, (suffix, data)) in enumerate(bad):
            write(mixed, b"f%d-" % number + name, suffix, data)
        errors: list[str] = []
        summary = ingest([mixed], settings, progress=False, on_error=errors.append)
        assert summary.documents == 1 and len(summary.failed) == len(bad) == len(errors), (summary.line(), errors)
        assert all(line.startswith("error: ") and "\n" not in line and "\r" not in line for line in errors), errors
        kept = {c.id for c in split_document(load_document(good_path, ROOT), settings.chunk_size, settings.chunk_overlap)}
        assert set(open_collection(settings).get(include=[])["ids"]) == before | kept

    check_pipeline()
    reliability(
        "random bytes and control characters as documents", tries + pipeline_tries,
        "a document or a one-line LoadError; bad files reported, good kept, store unchanged",
    )

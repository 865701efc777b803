"""An OpenAI-compatible HTTP server for a DeSTA model, with a web demo page.

Endpoints:
    POST /v1/chat/completions   text + audio chat (OpenAI format; `stream: true` for SSE)
    GET  /v1/models             the served model
    GET  /health                liveness + queue and batching counters
    GET  /                      the web demo (static files in `web/`)

Requests are decoded, validated (their audio decoded, their prompt tokenised and counted
against the LLM's context) in a thread pool, then queued for the `DynamicBatcher`, whose
worker thread runs batched generation; events come back to the request's event loop through
an asyncio queue. A client that disconnects (streaming or not, queued or running) cancels its
job. Every refusal is OpenAI's error JSON, and no request, however malformed, closes the
connection: an unexpected error is a 500 JSON answer on a connection that stays usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hmac
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from desta.errors import DestaError
from desta.inference.batching import (
    BatcherStoppedError,
    Delta,
    DynamicBatcher,
    Event,
    Failed,
    Finished,
    GenerationJob,
    QueueFullError,
    Started,
)
from desta.inference.openai_format import (
    ChatRequest,
    RequestError,
    ServerConfig,
    ServingLimits,
    chunk_body,
    completion_body,
    decode_json_body,
    error_body,
    parse_chat_request,
    sse,
    usage_body,
)

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"
_DRAIN_BYTES = 64 * 2**20  # oversized bodies up to this are read to the end before the 413

__all__ = ["ServerConfig", "ServerThread", "ServingLimits", "create_app", "serve"]


class _Channel:
    """Carries a job's events from the worker thread into the request's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    def __call__(self, event: Event) -> None:  # called on the worker thread
        # A closed loop means the server is gone and nobody is listening.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    async def get(self) -> Event:
        return await self.queue.get()

    async def next(self, gone: asyncio.Future[None]) -> Event | None:
        """The job's next event, or None once the client has disconnected (`gone` done)."""
        get = asyncio.ensure_future(self.queue.get())
        await asyncio.wait({get, gone}, return_when=asyncio.FIRST_COMPLETED)
        if get.done():
            return get.result()
        get.cancel()
        return None


async def _client_gone(receive: Receive) -> None:
    """Returns when the client disconnects. Called once the body has been read, so the next
    ASGI message is the disconnect (uvicorn also sends it once the response is complete)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class _PromptCounter:
    """Counts a request's prompt tokens off the worker thread, with a private copy of the
    tokenizer (a fast tokenizer must not be used from two threads at once), so a prompt over
    the LLM's context is refused before it is queued instead of stalling the worker."""

    def __init__(self, model: Any, max_prompt_tokens: int | None = None) -> None:
        self.builder = copy.copy(model.builder)
        self.builder.tokenizer = copy.deepcopy(model.tokenizer)
        self.locator = model.config.audio_locator
        limits = [n for n in (max_prompt_tokens, model.builder.max_length) if n]
        self.limit = min(limits) if limits else None
        self._lock = threading.Lock()

    def check(self, req: ChatRequest) -> int:
        """Prompt tokens of `req` (ASR transcripts not yet known count as 0); raises a 400
        `context_length_exceeded` over the LLM's context."""
        from desta.model.assembly import parse_conversations

        try:
            (conv,), _ = parse_conversations(req.messages, audio_locator=self.locator)
            with self._lock:
                ids = self.builder.context_ids(conv)
                known = sum(len(self.builder.transcript_ids(c.text)) for c in conv.clips
                            if c.text is not None)
        except DestaError as err:
            raise RequestError(str(err), code="invalid_input") from None
        count = len(ids) + len(conv.clips) * (self.builder.prompt_size - 1) + known
        if self.limit and count > self.limit:
            raise RequestError(f"the prompt is {count} tokens (audio positions and given "
                               f"transcripts included), over this server's limit of "
                               f"{self.limit} tokens; send less text or fewer clips",
                               param="messages", code="context_length_exceeded")
        return count


class _InternalErrors:
    """ASGI middleware: an exception that escapes a route becomes a 500 JSON answer. (Starlette
    answers it too but then re-raises, and the server drops the kept-alive connection, so the
    client's next request on it is reset.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as err:
            logger.exception("unhandled error")
            if started:  # half a response is out: nothing valid can follow it
                raise
            response = JSONResponse(error_body(f"internal error: {type(err).__name__}",
                                               type="server_error"), status_code=500)
            await response(scope, receive, send)


def create_app(model: Any, config: ServerConfig | None = None) -> FastAPI:
    """The ASGI app serving `model` (a DestaModel). The batcher's worker starts and stops
    with the app's lifespan; it is `app.state.batcher`."""
    config = config or ServerConfig()
    batcher = DynamicBatcher(model, max_batch_size=config.max_batch_size,
                             batch_wait_ms=config.batch_wait_ms, max_queue=config.max_queue)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        logger.info("serving %s (batch <= %d, wait %.0f ms, queue <= %d)", config.model_name,
                    config.max_batch_size, config.batch_wait_ms, config.max_queue)
        try:
            yield
        finally:
            batcher.stop()

    app = FastAPI(title="desta", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(_InternalErrors)
    app.state.batcher = batcher
    app.state.config = config
    counter = _PromptCounter(model, config.limits.max_prompt_tokens)
    created = int(time.time())

    @app.exception_handler(RequestError)
    async def _request_error(_request: Request, err: RequestError) -> JSONResponse:
        headers = {"Retry-After": "1"} if err.status in (429, 503) else None
        return JSONResponse(err.body(), status_code=err.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(err.detail), code=f"http_{err.status_code}"),
                            status_code=err.status_code)

    def authorize(request: Request) -> None:
        if config.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), config.api_key.encode()):
            raise RequestError("missing or wrong API key: send 'Authorization: Bearer <key>'",
                               status=401, code="invalid_api_key")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        stats = batcher.stats
        return {"status": "ok" if batcher.alive else "stopped", "model": config.model_name,
                "queue_depth": batcher.queue_depth, "max_queue": config.max_queue,
                "running_batch": batcher.running_batch, "max_batch_size": config.max_batch_size,
                "requests": stats.requests, "failed": stats.failed,
                "cancelled": stats.cancelled, "batches": stats.batches,
                "max_batch_size_seen": stats.max_batch_size_seen}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        authorize(request)
        return {"object": "list", "data": [{"id": config.model_name, "object": "model",
                                            "created": created, "owned_by": "desta"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        authorize(request)
        raw = await _read_body(request, config.limits.max_body_bytes)
        # Decoding, validation and tokenising run in the thread pool: a big body never holds
        # up the event loop, nor the worker.
        payload = await run_in_threadpool(decode_json_body, raw)
        req = await run_in_threadpool(parse_chat_request, payload, config.limits)
        if req.model != config.model_name:
            raise RequestError(f"model {req.model[:100]!r} is not served here; use "
                               f"{config.model_name!r}", status=404, param="model",
                               code="model_not_found")
        await run_in_threadpool(counter.check, req)
        channel = _Channel(asyncio.get_running_loop())
        job = GenerationJob(messages=req.messages, params=req.params, sink=channel)
        try:
            batcher.submit(job)
        except QueueFullError as err:
            raise RequestError(str(err), status=429, type="rate_limit_error",
                               code="queue_full") from err
        except BatcherStoppedError as err:
            raise RequestError(str(err), status=503, type="server_error",
                               code="unavailable") from err
        gone = asyncio.ensure_future(_client_gone(request.receive))
        streaming = False
        try:
            first = await channel.next(gone)
            if first is None:
                return Response(status_code=499)  # nobody is there to read it
            if isinstance(first, Failed):
                raise _failure(first.error)
            assert isinstance(first, Started), first  # the worker always starts with Started
            completion_id = f"chatcmpl-{uuid.uuid4().hex}"
            if req.stream:
                streaming = True  # the stream now owns `gone` and the job
                return StreamingResponse(
                    _stream(job, channel, gone, first, req, completion_id, config.model_name),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            while True:
                event = await channel.next(gone)
                if event is None:
                    return Response(status_code=499)
                if isinstance(event, Finished):
                    break
                if isinstance(event, Failed):
                    raise _failure(event.error)
        finally:
            if not streaming:
                job.cancel()  # no-op once finished; stops the job if the client went away
                gone.cancel()
        return completion_body(id=completion_id, created=int(time.time()),
                               model=config.model_name, text=event.text,
                               finish_reason=event.finish_reason,
                               prompt_tokens=first.prompt_tokens,
                               completion_tokens=event.completion_tokens,
                               transcripts=first.transcripts)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 once it is over `limit` bytes. An oversized body is still read (and
    dropped) up to `_DRAIN_BYTES`, so that the client, still sending, gets the 413 instead of
    a reset connection; beyond that the connection is cut."""
    too_big = RequestError(f"the request body is over this server's limit of {limit} bytes; "
                           "send shorter or fewer audio clips", status=413,
                           code="request_too_large")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max(limit, _DRAIN_BYTES):
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > _DRAIN_BYTES:
            break
    if size > limit:
        raise too_big
    return b"".join(chunks)


def _failure(error: Exception) -> RequestError:
    """A worker-side failure as an HTTP error: bad input is the client's (400), else ours."""
    if isinstance(error, BatcherStoppedError):
        return RequestError(str(error), status=503, type="server_error", code="unavailable")
    if isinstance(error, DestaError):
        return RequestError(str(error), status=400, code="invalid_input")
    return RequestError(f"generation failed: {type(error).__name__}: {error}", status=500,
                        type="server_error", code="generation_failed")


async def _stream(job: GenerationJob, channel: _Channel, gone: asyncio.Future[None],
                  started: Started, req: ChatRequest, completion_id: str,
                  model_name: str) -> AsyncIterator[str]:
    """OpenAI chunk stream: role chunk (with the transcripts), content deltas, the
    finish_reason chunk, the usage chunk if asked for, then [DONE]."""
    created = int(time.time())

    def chunk(delta: dict[str, Any] | None, finish_reason: str | None = None,
              **extra: Any) -> str:
        return sse(chunk_body(id=completion_id, created=created, model=model_name, delta=delta,
                              finish_reason=finish_reason, **extra))

    try:
        yield chunk({"role": "assistant", "content": ""}, transcripts=started.transcripts)
        while True:
            event = await channel.next(gone)
            if event is None:
                return
            if isinstance(event, Delta):
                yield chunk({"content": event.text})
            elif isinstance(event, Finished):
                yield chunk({}, event.finish_reason)
                if req.include_usage:
                    yield chunk(None, usage=usage_body(started.prompt_tokens,
                                                       event.completion_tokens))
                break
            elif isinstance(event, Failed):
                yield sse(_failure(event.error).body())
                break
        yield sse("[DONE]")
    finally:
        job.cancel()  # no-op once finished; stops the row if the client went away
        gone.cancel()


# ---- running it -----------------------------------------------------------------------------
def serve(model: Any, config: ServerConfig | None = None, *, host: str = "127.0.0.1",
          port: int = 8000, log_level: str = "info") -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    uvicorn.run(create_app(model, config), host=host, port=port, log_level=log_level)


class ServerThread:
    """The server on a background thread (tests, notebooks, benchmarks):

        with ServerThread(model, ServerConfig(), port=0) as server:
            OpenAI(base_url=server.base_url + "/v1", api_key="x")
    """

    def __init__(self, model: Any, config: ServerConfig | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import socket

        import uvicorn

        if port == 0:  # pick a free port now, so base_url is known before start
            with socket.socket() as sock:
                sock.bind((host, 0))
                port = sock.getsockname()[1]
        self.host, self.port = host, port
        self.app = create_app(model, config)
        self._server = uvicorn.Server(uvicorn.Config(self.app, host=host, port=port,
                                                     log_level=log_level))
        self._thread = threading.Thread(target=self._server.run, name="desta-server",
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def batcher(self) -> DynamicBatcher:
        return self.app.state.batcher

    def start(self, timeout: float = 30.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise DestaError(f"the server did not start on {self.base_url}; is the port "
                                 "in use?")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

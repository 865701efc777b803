"""Dynamic batching: concurrent requests share one `generate` call.

Requests wait in a bounded queue. One worker thread takes the first waiting request, collects
more for a short window (up to `max_batch_size`), groups them by decoding settings and runs one
batched generation per group. A `BatchStreamer` hands every row's new tokens to its own
request as text deltas, so streaming works inside a batch. Each request gets its own
`max_tokens` (a per-row stopping criterion) and may be cancelled (its row stops at the next
step; a cancelled request still in the queue never runs).

A bad request fails alone, whatever it raises: when preparing a batch fails, each request is
prepared alone to find whose input is bad, those fail, and the others are prepared and run
together again; when generation fails, every request that has not yet received a token is
run again alone (requests that already streamed text cannot be replayed and fail).

`run_batch` re-implements `DestaModel.generate` from the model's public pieces (prepare ->
embed -> llm.generate) because serving also needs per-row token limits, per-row prompt token
counts (usage) and the transcripts before the first token; see the report for what could move
into the model.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.generation.streamers import BaseStreamer

from desta.errors import DestaError
from desta.inference.openai_format import SamplingParams

logger = logging.getLogger(__name__)


# ---- events a request receives, in order: Started, Delta*, Finished | Failed -----------------
@dataclass(frozen=True)
class Started:
    transcripts: list[str]  # the transcript used per clip, in order
    prompt_tokens: int  # LLM positions of the prompt, audio vectors and transcripts included


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Finished:
    text: str
    finish_reason: str  # "stop" (a stop token) or "length" (max_tokens)
    completion_tokens: int  # generated tokens, the stop token excluded
    token_ids: list[int]


@dataclass(frozen=True)
class Failed:
    error: Exception


Event = Started | Delta | Finished | Failed


class QueueFullError(DestaError):
    """The request queue is full; the client should retry later."""


class BatcherStoppedError(DestaError):
    """The batcher is not running (server shutting down)."""


_job_ids = itertools.count()


@dataclass
class GenerationJob:
    """One request in the queue: a desta conversation, its decoding settings, and `sink`, a
    thread-safe callable that receives the request's events."""

    messages: list[dict[str, Any]]
    params: SamplingParams
    sink: Callable[[Event], None]
    id: int = field(default_factory=lambda: next(_job_ids))
    cancelled: threading.Event = field(default_factory=threading.Event)
    enqueued_at: float = field(default_factory=time.monotonic)
    started: bool = False  # Started was sent
    tokens: int = 0  # tokens generated for this request so far (a Delta may hold several)

    def cancel(self) -> None:
        """Stop generating for this request (e.g. its client went away): a queued job never
        runs, a running row stops at the next decoding step."""
        self.cancelled.set()

    @property
    def replayable(self) -> bool:
        """No token was produced yet, so running it again cannot repeat text."""
        return self.tokens == 0

    def key(self) -> tuple:
        # A seeded sampling request runs alone so that its seed alone decides its output.
        if self.params.seed is not None and not self.params.greedy:
            return (*self.params.batch_key(), self.id)
        return self.params.batch_key()


# ---- incremental decoding ---------------------------------------------------------------------
class IncrementalDecoder:
    """Turns a growing list of token ids into text deltas. A multi-byte character split over
    several tokens is held back until complete (the decoded tail would be U+FFFD), and only a
    short window of tokens is re-decoded per step."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self._prefix = 0  # start of the window re-decoded for context
        self._read = 0  # tokens up to here have been emitted

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def push(self, token: int) -> str:
        self.ids.append(token)
        before = self._decode(self.ids[self._prefix:self._read])
        after = self._decode(self.ids[self._prefix:])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self.ids)
            return after[len(before):]
        return ""

    def flush(self) -> str:
        """Whatever is still held back (an incomplete character stays as U+FFFD)."""
        before = self._decode(self.ids[self._prefix:self._read])
        after = self._decode(self.ids[self._prefix:])
        self._prefix = self._read = len(self.ids)
        return after[len(before):]


@dataclass
class _Row:
    job: GenerationJob
    decoder: IncrementalDecoder
    done: bool = False
    finish_reason: str = "length"


class BatchStreamer(BaseStreamer):
    """Routes each batch row's new tokens to that row's request as text deltas.

    `generate` first puts the prompt ids ((B, L), or (B, 0) when the prompt is embeddings),
    then (B,) new ids per step. A row ends at a stop token or at its request's max_tokens;
    tokens after that (padding) are ignored.
    """

    def __init__(self, tokenizer: Any, jobs: Sequence[GenerationJob],
                 stop_token_ids: Sequence[int]) -> None:
        self.rows = [_Row(job, IncrementalDecoder(tokenizer)) for job in jobs]
        self.stop_ids = set(stop_token_ids)
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for row, token in zip(self.rows, value.reshape(-1).tolist(), strict=True):
            if row.done:
                continue
            if row.job.cancelled.is_set():  # nobody is listening: drop the token, stop the row
                row.done = True
                continue
            if token in self.stop_ids:
                row.done, row.finish_reason = True, "stop"
                self._flush(row)
                continue
            row.job.tokens += 1
            text = row.decoder.push(token)
            if text:
                row.job.sink(Delta(text))
            if len(row.decoder.ids) >= row.job.params.max_tokens:
                row.done = True
                self._flush(row)

    def end(self) -> None:
        for row in self.rows:
            if not row.done:
                row.done = True
                self._flush(row)

    @staticmethod
    def _flush(row: _Row) -> None:
        text = row.decoder.flush()
        if text:
            row.job.sink(Delta(text))


class RowLimits:
    """Per-row stop: the row's own max_tokens, or its request was cancelled."""

    def __init__(self, jobs: Sequence[GenerationJob]) -> None:
        self.jobs = list(jobs)
        self.limits = torch.tensor([j.params.max_tokens for j in jobs])

    def __call__(self, new_ids: torch.Tensor) -> torch.Tensor:
        done = self.limits.to(new_ids.device) <= new_ids.shape[1]
        cancelled = torch.tensor([j.cancelled.is_set() for j in self.jobs], device=done.device)
        return done | cancelled


# ---- one batched generation -------------------------------------------------------------------
def run_batch(model: Any, jobs: Sequence[GenerationJob]) -> list[GenerationJob]:
    """Prepare (decode, VAD + ASR, assemble) and generate for jobs sharing one batch key;
    every job gets Started, Delta..., Finished (unless cancelled: those are returned).
    Raises on failure (the caller reports it)."""
    return generate_batch(model, jobs, model.prepare([job.messages for job in jobs]))


def generate_batch(model: Any, jobs: Sequence[GenerationJob], prepared: Any
                   ) -> list[GenerationJob]:
    """Generate for jobs whose conversations `prepared` holds, in order: Started (unless an
    earlier attempt sent it), Delta..., Finished. Returns the jobs cancelled before their end
    (they get no Finished). Raises on failure."""
    params = jobs[0].params
    prompt_tokens = prepared.batch.attention_mask.sum(dim=1).tolist()
    for job, transcripts, count in zip(jobs, prepared.transcripts, prompt_tokens, strict=True):
        if not job.started:
            job.started = True
            job.sink(Started(transcripts=list(transcripts), prompt_tokens=int(count)))

    streamer = BatchStreamer(model.tokenizer, jobs, model.stop_token_ids)
    with _Seeded(params, model.device):
        model.generate_prepared(
            prepared, max_new_tokens=max(job.params.max_tokens for job in jobs),
            do_sample=not params.greedy, temperature=params.temperature, top_p=params.top_p,
            top_k=params.top_k, repetition_penalty=params.repetition_penalty,
            streamer=streamer, stop_rows=RowLimits(jobs))
    streamer.end()  # generate calls it too; a second call is a no-op
    cancelled = []
    for row in streamer.rows:
        if row.job.cancelled.is_set():  # the client is gone
            cancelled.append(row.job)
            continue
        ids = row.decoder.ids
        text = model.tokenizer.decode(ids, skip_special_tokens=True)
        row.job.sink(Finished(text=text, finish_reason=row.finish_reason,
                              completion_tokens=len(ids), token_ids=list(ids)))
    return cancelled


class _Seeded:
    """Seeds the sampling RNG for one generate call without touching the global state."""

    def __init__(self, params: SamplingParams, device: torch.device) -> None:
        self.seed = None if params.greedy else params.seed
        self.device = device
        self._fork: Any = None

    def __enter__(self) -> None:
        if self.seed is None:
            return
        devices = [self.device] if self.device.type == "cuda" else []
        self._fork = torch.random.fork_rng(devices=devices)
        self._fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc: Any) -> None:
        if self._fork is not None:
            self._fork.__exit__(*exc)


# ---- the worker ---------------------------------------------------------------------------------
@dataclass
class BatcherStats:
    """Counters for /health and the benchmark."""

    requests: int = 0  # answered
    failed: int = 0
    cancelled: int = 0  # the client left before the answer was complete
    batches: int = 0
    max_batch_size_seen: int = 0
    batch_sizes: Counter = field(default_factory=Counter)


class DynamicBatcher:
    """A bounded request queue and one worker thread running batched generation.

    Args:
        model: a `DestaModel` (only the worker thread uses it).
        max_batch_size: most requests per `generate` call (1 turns batching off).
        batch_wait_ms: how long the worker waits for more requests after the first one.
        max_queue: most requests waiting; `submit` raises QueueFullError beyond it.
    """

    def __init__(self, model: Any, *, max_batch_size: int = 16, batch_wait_ms: float = 10.0,
                 max_queue: int = 128) -> None:
        if max_batch_size < 1 or max_queue < 1 or batch_wait_ms < 0:
            raise ValueError("max_batch_size and max_queue must be >= 1, batch_wait_ms >= 0")
        self.model = model
        self.max_batch_size = max_batch_size
        self.batch_wait = batch_wait_ms / 1000.0
        self.max_queue = max_queue
        self.stats = BatcherStats()
        self.running_jobs: tuple[GenerationJob, ...] = ()  # the batch being run now
        self._queue: queue.Queue[GenerationJob] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def running_batch(self) -> int:
        """Size of the batch being run now (0: idle)."""
        return len(self.running_jobs)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> DynamicBatcher:
        if not self.alive:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="desta-batcher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the running batch, fail what is still queued, and stop the worker."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            job.sink(Failed(BatcherStoppedError("the server is shutting down; retry later")))

    def submit(self, job: GenerationJob) -> GenerationJob:
        """Queue a job; its events go to `job.sink` from the worker thread."""
        if not self.alive or self._stop.is_set():
            raise BatcherStoppedError("the generation worker is not running")
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFullError(f"the request queue is full ({self.max_queue} waiting); "
                                 "retry after a short delay") from None
        return job

    def _collect(self) -> list[GenerationJob]:
        try:
            first = self._queue.get(timeout=0.1)
        except queue.Empty:
            return []
        jobs = [first]
        deadline = time.monotonic() + self.batch_wait
        while len(jobs) < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                # Past the window, still take whatever is already waiting.
                job = (self._queue.get(timeout=remaining) if remaining > 0
                       else self._queue.get_nowait())
            except queue.Empty:
                break
            jobs.append(job)
        return [j for j in jobs if not self._drop_cancelled(j)]

    def _drop_cancelled(self, job: GenerationJob) -> bool:
        if job.cancelled.is_set():
            self.stats.cancelled += 1
            job.sink(Failed(DestaError("the request was cancelled")))
            return True
        return False

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._step()

    def _step(self) -> None:
        # A method of its own so that the batch's references die when it returns.
        groups: dict[tuple, list[GenerationJob]] = {}
        for job in self._collect():
            groups.setdefault(job.key(), []).append(job)
        for group in groups.values():
            self._run(group)

    def _run(self, jobs: list[GenerationJob]) -> None:
        self.running_jobs = tuple(jobs)
        self.stats.batches += 1
        self.stats.batch_sizes[len(jobs)] += 1
        self.stats.max_batch_size_seen = max(self.stats.max_batch_size_seen, len(jobs))
        try:
            jobs, prepared = self._prepare(jobs)
            if jobs:
                self._generate(jobs, prepared)
        finally:
            self.running_jobs = ()

    def _prepare(self, jobs: list[GenerationJob], *, isolate: bool = True
                 ) -> tuple[list[GenerationJob], Any]:
        """The batch's inputs, and the jobs they are for: a job whose input cannot be prepared
        fails alone (found by preparing each job by itself), the others are prepared again
        together (or, if that still fails, run one at a time)."""
        try:
            return jobs, self.model.prepare([job.messages for job in jobs])
        except Exception as err:
            if len(jobs) == 1:
                self._fail(jobs[0], err)
                return [], None
            if not isolate:  # each job prepares alone but not together: no culprit
                logger.warning("batch of %d fails to prepare together (%s: %s); running them "
                               "one at a time", len(jobs), type(err).__name__, err)
                for job in jobs:
                    self._run_alone(job)
                return [], None
            logger.info("preparing a batch of %d failed (%s: %s); finding whose input is bad",
                        len(jobs), type(err).__name__, err)
        good = []
        for job in jobs:
            try:
                alone = self.model.prepare([job.messages])
            except Exception as err:  # this job's own input: it fails, the others go on
                self._fail(job, err)
            else:
                good.append(job)
        if len(good) == 1:
            return good, alone
        return self._prepare(good, isolate=False) if good else ([], None)

    def _run_alone(self, job: GenerationJob) -> None:
        jobs, prepared = self._prepare([job])
        if jobs:
            self._generate(jobs, prepared, retry=False)

    def _generate(self, jobs: list[GenerationJob], prepared: Any, *, retry: bool = True
                  ) -> None:
        try:
            cancelled = generate_batch(self.model, jobs, prepared)
        except Exception as err:
            # A bad row or too big a batch (out of memory): whoever has not received a token
            # yet is run again alone, so only the culprit fails.
            again = [j for j in jobs if retry and len(jobs) > 1 and j.replayable]
            level = logging.INFO if isinstance(err, DestaError) else logging.ERROR
            logger.log(level, "generation failed for a batch of %d (%s: %s); %d request(s) "
                       "run again alone", len(jobs), type(err).__name__, err, len(again),
                       exc_info=level == logging.ERROR)
            retried = {job.id for job in again}
            for job in jobs:
                if job.id not in retried:
                    self._fail(job, err)
            for job in again:
                self._run_alone(job)
            return
        self.stats.requests += len(jobs) - len(cancelled)
        self.stats.cancelled += len(cancelled)
        for job in cancelled:
            job.sink(Failed(DestaError("the request was cancelled")))

    def _fail(self, job: GenerationJob, err: Exception) -> None:
        self.stats.failed += 1
        job.sink(Failed(err))

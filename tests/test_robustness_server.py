"""The server under attack, on loopback with the embedded real model and the official
`openai` client: one bad request never fails the requests batched with it, malformed bodies
get a 4xx naming the field on a connection that stays usable, oversized prompts are refused
before they reach the worker, and a client that leaves (streaming or not, queued or running)
stops its work within one decoding step."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from desta.audio.io import load_audio
from desta.inference.batching import DynamicBatcher, Failed, Finished, GenerationJob
from desta.inference.openai_format import SamplingParams
from desta.inference.server import ServerConfig, ServerThread, ServingLimits

pytestmark = pytest.mark.integration

MODEL = "desta-robust"
LIMITS = ServingLimits(max_body_bytes=2_000_000, max_tokens=256, default_max_tokens=8,
                       max_text_chars=60_000, max_messages=16)
COUNT = "Count from 1 to 500, separated by commas."


@pytest.fixture(scope="module")
def model():
    from desta.model import DestaModel

    return DestaModel.from_config(device="cpu").eval()


@pytest.fixture(scope="module")
def server(model, speech_clip):
    limits = ServingLimits(**{**LIMITS.__dict__, "allowed_audio_dir": speech_clip[0].parent})
    config = ServerConfig(model_name=MODEL, max_batch_size=8, batch_wait_ms=20, limits=limits)
    with ServerThread(model, config) as running:
        yield running


def client_for(server) -> OpenAI:
    return OpenAI(base_url=server.base_url + "/v1", api_key="none", max_retries=0,
                  timeout=300)


def audio_part(path: Path, transcript: str | None = None) -> dict:
    spec = {"data": base64.b64encode(path.read_bytes()).decode(), "format": "wav"}
    if transcript is not None:
        spec["transcript"] = transcript
    return {"type": "input_audio", "input_audio": spec}


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.002)


def running_job(server) -> GenerationJob | None:
    jobs = server.batcher.running_jobs
    return jobs[0] if jobs else None


# ---- one bad request in a batching window ---------------------------------------------------
def test_bad_requests_in_a_batching_window_fail_alone(model, speech_clip):
    """One window holds good requests and bad ones: a lone surrogate (sent as the JSON escape
    "\\ud800", which the openai client cannot even encode), a transcript holding the audio
    locator, a role that is a list. The bad ones get a 400 naming the field; every good one
    gets the answer the model gives it alone, a transcript with a special-token string
    (read as plain text) included."""
    path, _ = speech_clip
    config = ServerConfig(model_name=MODEL, max_batch_size=16, batch_wait_ms=3000,
                          limits=LIMITS)
    questions = ["Name a fruit.", "Name a colour.", "What is two plus two?"]
    with ServerThread(model, config) as srv:
        client = client_for(srv)
        start = threading.Barrier(len(questions) + 4)
        answers: dict[str, object] = {}

        def ask(name: str, content) -> None:
            start.wait()
            try:
                reply = client.chat.completions.create(
                    model=MODEL, temperature=0, max_tokens=8,
                    messages=[{"role": "user", "content": content}])
                answers[name] = reply
            except openai.APIStatusError as err:
                answers[name] = err

        def raw(name: str, body: bytes) -> None:
            start.wait()
            answers[name] = post(srv, body)

        threads = [threading.Thread(target=ask, args=(q, q)) for q in questions]
        threads.append(threading.Thread(target=ask, args=(
            "special", [audio_part(path, "say <|im_end|> now"),
                        {"type": "text", "text": "Repeat it."}])))
        threads.append(threading.Thread(target=ask, args=(
            "locator", [audio_part(path, "say <|AUDIO|> now")])))
        threads.append(threading.Thread(target=raw, args=(
            "surrogate", b'{"model": "%s", "max_tokens": 8, "messages": [{"role": "user", '
                         b'"content": "hi \\ud800 there"}]}' % MODEL.encode())))
        threads.append(threading.Thread(target=raw, args=(
            "role", json.dumps({"model": MODEL, "messages": [
                {"role": ["user"], "content": "hi"}]}).encode())))
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        stats = srv.batcher.stats

    for question in questions:
        expected = model.generate([{"role": "user", "content": question}], max_new_tokens=8)
        assert answers[question].choices[0].message.content == expected.texts[0]
    conv = [{"role": "user", "content": "<|AUDIO|>\nRepeat it.",
             "audios": [{"audio": load_audio(path), "sampling_rate": 16_000,
                         "text": "say <|im_end|> now"}]}]
    assert answers["special"].choices[0].message.content == \
        model.generate(conv, max_new_tokens=8).texts[0]
    assert answers["special"].model_extra["transcripts"] == ["say <|im_end|> now"]
    locator = answers["locator"]
    assert isinstance(locator, openai.BadRequestError)
    assert locator.response.json()["error"]["param"] == \
        "messages[0].content[0].input_audio.transcript"
    assert answers["surrogate"][0] == 400
    assert answers["surrogate"][1]["error"]["param"] == "messages[0].content"
    assert answers["surrogate"][1]["error"]["code"] == "invalid_text"
    assert answers["role"][0] == 400
    assert answers["role"][1]["error"]["param"] == "messages[0].role"
    assert stats.failed == 0 and stats.requests == len(questions) + 1
    assert stats.max_batch_size_seen > 1  # the good requests did share a batch


def test_the_batcher_isolates_jobs_that_fail_while_prepared_or_run(model, speech_clip):
    """Jobs handed straight to the batcher (no HTTP validation), all in one window: one whose
    text the tokenizer cannot encode (fails while the batch is prepared), one whose
    max_tokens overflows the per-row limits (fails once the batch runs), and good ones, among
    them a transcript holding the audio locator. Only the two bad jobs fail; every good one
    gets the tokens the model gives it alone."""
    path, _ = speech_clip
    wave = load_audio(path)
    good = {
        "fruit": ([{"role": "user", "content": "Name a fruit."}], 6),
        "sea": ([{"role": "user", "content": "Write one sentence about the sea."}], 10),
        "locator": ([{"role": "user", "content": "<|AUDIO|>\nWhat is said?",
                      "audios": [{"audio": wave, "sampling_rate": 16_000,
                                  "text": "the <|AUDIO|> marker"}]}], 6),
    }
    bad = {
        "surrogate": ([{"role": "user", "content": "hi \ud800"}], 6),
        "overflow": ([{"role": "user", "content": "Hello."}], 2**70),
    }
    events: dict[str, list] = {name: [] for name in [*good, *bad]}
    done = threading.Semaphore(0)
    batcher = DynamicBatcher(model, max_batch_size=8, batch_wait_ms=2000).start()
    try:
        for name, (conv, limit) in {**good, **bad}.items():
            def sink(event, name=name):
                events[name].append(event)
                if isinstance(event, Finished | Failed):
                    done.release()
            batcher.submit(GenerationJob(conv, SamplingParams(max_tokens=limit,
                                                              temperature=0), sink))
        for _ in events:
            assert done.acquire(timeout=300)
    finally:
        batcher.stop()
    assert batcher.stats.batch_sizes[5] == 1  # all five were collected into one batch
    for name, (conv, limit) in good.items():
        final = events[name][-1]
        assert isinstance(final, Finished), (name, final)
        assert final.token_ids == model.generate(conv, max_new_tokens=limit).token_ids[0]
    for name in bad:
        assert isinstance(events[name][-1], Failed), (name, events[name])
    assert "surrogate" in str(events["surrogate"][-1].error)
    assert batcher.stats.failed == 2 and batcher.stats.requests == 3


# ---- malformed bodies -----------------------------------------------------------------------
def post(server, body: bytes, conn: http.client.HTTPConnection | None = None
         ) -> tuple[int, dict]:
    own = conn is None
    conn = conn or http.client.HTTPConnection(server.host, server.port, timeout=300)
    try:
        conn.request("POST", "/v1/chat/completions", body=body,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        if own:
            conn.close()


def message_body(**fields) -> bytes:
    body = {"model": MODEL, "max_tokens": 2,
            "messages": [{"role": "user", "content": "hi"}], **fields}
    return json.dumps(body).encode()


def test_malformed_bodies_get_4xx_on_a_connection_that_stays_usable(server, speech_clip):
    path, _ = speech_clip
    nul = str(path.parent / "a\x00b.wav")
    cases = {
        "huge integer": (b'{"model": "m", "max_tokens": ' + b"9" * 5000 + b"}", None),
        "deep nesting": (b'{"model": "m", "messages": ' + b"[" * 1000 + b"]" * 1000 + b"}",
                         None),
        "moderate nesting": (b'{"model": "m", "messages": ' + b"[" * 40 + b"]" * 40 + b"}",
                             "messages" + "[0]" * 32),
        "role list": (message_body(messages=[{"role": ["user"], "content": "hi"}]),
                      "messages[0].role"),
        "role object": (message_body(messages=[{"role": {"a": 1}, "content": "hi"}]),
                        "messages[0].role"),
        "seed past int64": (message_body(seed=2**64, temperature=0.7), "seed"),
        "top_k past int32": (message_body(top_k=2**40), "top_k"),
        "NUL in a local path": (message_body(messages=[{"role": "user", "content": [
            {"type": "audio_url", "audio_url": {"url": nul}}]}]),
            "messages[0].content[0].audio_url.url"),
        "surrogate in model": (b'{"model": "\\udc00", "messages": []}', "model"),
        "surrogate in a key": (b'{"model": "m", "\\ud800": 1}', None),
        "too many messages": (message_body(messages=[{"role": "user", "content": "hi"}] * 17),
                              "messages"),
        "text over the limit": (message_body(messages=[
            {"role": "system", "content": "x" * 40_000},
            {"role": "user", "content": [{"type": "text", "text": "y" * 30_000}]}]),
            "messages[1].content[0].text"),
    }
    conn = http.client.HTTPConnection(server.host, server.port, timeout=300)
    try:
        for name, (body, param) in cases.items():
            status, reply = post(server, body, conn)
            assert 400 <= status < 500, (name, status, reply)
            error = reply["error"]
            assert error["message"] and error["type"] == "invalid_request_error", name
            if param is not None:
                assert error["param"] == param, (name, error)
            # The same kept-alive connection serves the next request.
            conn.request("GET", "/health")
            health = conn.getresponse()
            assert health.status == 200, name
            health.read()
        status, reply = post(server, message_body(), conn)
        assert status == 200 and reply["choices"][0]["message"]["content"]
    finally:
        conn.close()


def test_a_prompt_over_the_context_is_refused_before_the_worker_sees_it(server):
    """54k characters pass the text limit but are ~9k tokens, over SmolLM2's 8192-token
    context: refused by the request's own thread with the token count; the worker never
    gets it (no batch ran), and the server still answers."""
    client = client_for(server)
    before = server.batcher.stats.batches
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.chat.completions.create(model=MODEL, max_tokens=2, messages=[
            {"role": "user", "content": "hello world " * 4_500}])
    error = excinfo.value.response.json()["error"]
    assert error["code"] == "context_length_exceeded" and "8192" in error["message"]
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.chat.completions.create(model=MODEL, max_tokens=2, messages=[
            {"role": "user", "content": "x" * (LIMITS.max_text_chars + 1)}])
    assert excinfo.value.response.json()["error"]["code"] == "text_too_long"
    assert server.batcher.stats.batches == before
    assert client.chat.completions.create(
        model=MODEL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}]).choices


# ---- clients that leave -----------------------------------------------------------------------
def count_request(max_tokens: int = 200, stream: bool = False) -> bytes:
    return json.dumps({"model": MODEL, "temperature": 0, "max_tokens": max_tokens,
                       "stream": stream,
                       "messages": [{"role": "user", "content": COUNT}]}).encode()


def open_request(server, body: bytes) -> socket.socket:
    """A raw HTTP request whose answer is never read (the client will just leave)."""
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(body), body))
    return sock


def leave_while_running(server, leave) -> tuple[GenerationJob, int]:
    """Wait until the request's job has produced some tokens, call `leave()`, and return the
    job and its token count at that moment."""
    wait_for(lambda: (job := running_job(server)) is not None and job.tokens >= 4)
    job = running_job(server)
    leave()
    return job, job.tokens


def test_a_non_streaming_client_that_leaves_stops_its_work(server):
    stats = server.batcher.stats
    cancelled = stats.cancelled
    sock = open_request(server, count_request())
    job, at_leave = leave_while_running(server, sock.close)
    wait_for(lambda: server.batcher.running_batch == 0)
    assert job.cancelled.is_set()
    assert job.tokens - at_leave <= 1  # within one decoding step of the client leaving
    assert job.tokens < 200
    assert stats.cancelled == cancelled + 1


def test_a_streaming_client_that_leaves_stops_its_work(server):
    stats = server.batcher.stats
    cancelled = stats.cancelled
    client = client_for(server)
    stream = client.chat.completions.create(
        model=MODEL, temperature=0, max_tokens=200, stream=True,
        messages=[{"role": "user", "content": COUNT}])
    chunks = iter(stream)
    next(chunks)  # the role chunk: the job runs
    job, at_leave = leave_while_running(server, stream.close)
    wait_for(lambda: server.batcher.running_batch == 0)
    assert job.cancelled.is_set()
    assert job.tokens - at_leave <= 1
    assert job.tokens < 200
    assert stats.cancelled == cancelled + 1


def test_a_queued_request_whose_client_left_never_runs(model):
    """One worker busy with a long request; a second request waits in the queue and its
    client leaves. It is dropped without running once the worker is free."""
    config = ServerConfig(model_name=MODEL, max_batch_size=1, batch_wait_ms=0, limits=LIMITS)
    with ServerThread(model, config) as srv:
        busy = open_request(srv, count_request())
        wait_for(lambda: (job := running_job(srv)) is not None and job.tokens >= 1)
        first = running_job(srv)
        queued = open_request(srv, count_request(max_tokens=3))
        wait_for(lambda: srv.batcher.queue_depth == 1)
        queued.close()
        # Give the server time to see the disconnect while the first job still runs.
        wait_for(lambda: first.tokens >= 12)
        busy.close()
        stats = srv.batcher.stats
        wait_for(lambda: stats.cancelled == 2)  # the long job, then the queued one dropped
        assert srv.batcher.queue_depth == 0
        assert stats.batches == 1  # the queued request never became a batch
        assert stats.requests == 0

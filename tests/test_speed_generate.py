"""`DestaModel.generate`'s fast path (prepared in chunks, answered by continuous batching with a
shared prompt prefix) answers every conversation as `generate_prepared` (`llm.generate`) does
one at a time, for both encoder windows, on tiny random backbones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from desta.model import DestaConfig, DestaModel, modeling


def _audio(seed: int, seconds: float, text: str | None) -> dict:
    wave = (0.1 * np.random.default_rng(seed).standard_normal(int(16_000 * seconds)))
    return {"audio": wave.astype(np.float32), "sampling_rate": 16_000, "text": text}


CONVERSATIONS = [
    [{"role": "user", "content": "<|AUDIO|> What do you hear?",
      "audios": [_audio(1, 1.3, "ok")]}],
    [{"role": "user", "content": "Just text, a longer question about nothing at all."}],
    [{"role": "user", "content": "<|AUDIO|> and <|AUDIO|>?",
      "audios": [_audio(2, 2.6, "a b c d e f"), _audio(3, 0.7, "x")]}],
    [{"role": "system", "content": "Be brief."},
     {"role": "user", "content": "Describe <|AUDIO|> please.",
      "audios": [_audio(4, 4.1, "the cat sat on the mat")]}],
    [{"role": "user", "content": "<|AUDIO|>", "audios": [_audio(5, 0.4, "")]}],
    [{"role": "user", "content": "Name a colour."}],
    [{"role": "user", "content": "<|AUDIO|> Again?", "audios": [_audio(6, 3.0, "hello")]}],
]


@pytest.fixture(scope="module", params=["30s", "clip"])
def model(request, tiny_backbones) -> DestaModel:
    whisper, llm = tiny_backbones
    config = DestaConfig(encoder_model_id=whisper, llm_model_id=llm, prompt_size=8,
                         qformer_num_hidden_layers=2, qformer_intermediate_size=96,
                         encoder_window=request.param)
    m = DestaModel.from_config(config, device="cpu", seed=0).eval()
    with torch.no_grad():
        m.connector.layer_weights.normal_()
    return m


def _reference(model: DestaModel, conv: list[dict], max_new_tokens: int) -> list[int]:
    out = model.generate_prepared(model.prepare(conv), max_new_tokens=max_new_tokens)
    return model._until_stop(out[0].tolist())


def test_batched_fast_path_equals_one_at_a_time_generate(model, monkeypatch) -> None:
    # Small chunks and few decoding rows, so chunking and slot refills both happen.
    monkeypatch.setattr(modeling, "PREPARE_CHUNK", 3)
    monkeypatch.setattr(modeling, "MAX_ACTIVE_ROWS", 2)
    batched = model.generate(CONVERSATIONS, max_new_tokens=12)
    want = [_reference(model, c, 12) for c in CONVERSATIONS]
    assert batched.token_ids == want
    assert batched.transcripts == [[a["text"] for m in c for a in m.get("audios", [])]
                                   for c in CONVERSATIONS]
    assert all(ids for ids in batched.token_ids)
    assert batched.texts == model.tokenizer.batch_decode(want, skip_special_tokens=True)


def test_a_single_conversation_takes_the_same_path(model) -> None:
    one = model.generate(CONVERSATIONS[3], max_new_tokens=10)
    assert one.token_ids == [_reference(model, CONVERSATIONS[3], 10)]


def test_streaming_still_uses_generate(model) -> None:
    from transformers.generation.streamers import BaseStreamer

    class Collect(BaseStreamer):
        def __init__(self) -> None:
            self.steps: list[list[int]] = []

        def put(self, value: torch.Tensor) -> None:
            self.steps.append(value.reshape(-1).tolist())

        def end(self) -> None:
            pass

    streamer = Collect()
    out = model.generate(CONVERSATIONS[:2], max_new_tokens=6, streamer=streamer)
    assert streamer.steps[0] == []  # the prompt as embeddings: (B, 0)
    streamed = [[step[row] for step in streamer.steps[1:]] for row in range(2)]
    for row, ids in enumerate(out.token_ids):
        assert streamed[row][: len(ids)] == ids


def test_sampling_follows_the_global_seed(model) -> None:
    torch.manual_seed(5)
    a = model.generate(CONVERSATIONS[:3], max_new_tokens=8, do_sample=True, temperature=1.3)
    torch.manual_seed(5)
    b = model.generate(CONVERSATIONS[:3], max_new_tokens=8, do_sample=True, temperature=1.3)
    torch.manual_seed(6)
    c = model.generate(CONVERSATIONS[:3], max_new_tokens=8, do_sample=True, temperature=1.3)
    assert a.token_ids == b.token_ids
    assert a.token_ids != c.token_ids

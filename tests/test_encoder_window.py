"""The encoder window option: `30s` (released numerics) and `clip` (each clip at its own
length), on tiny random backbones; ASR from clip-length encoder states on the embedded
Whisper tiny.en is in tests/test_embedded.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from desta import ConfigError
from desta.model import DestaConfig, DestaModel


def _clip(seed: int, seconds: float) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(16_000 * seconds))).astype(
        np.float32)


def _audio(seed: int, seconds: float, text: str | None = "hello there") -> dict:
    return {"audio": _clip(seed, seconds), "sampling_rate": 16_000, "text": text}


def _config(tiny_backbones, window: str, step: float = 1.0) -> DestaConfig:
    whisper, llm = tiny_backbones
    return DestaConfig(encoder_model_id=whisper, llm_model_id=llm, prompt_size=8,
                       qformer_num_hidden_layers=2, qformer_intermediate_size=96,
                       encoder_window=window, clip_window_step=step)


@pytest.fixture(scope="module")
def clip_model(tiny_backbones) -> DestaModel:
    m = DestaModel.from_config(_config(tiny_backbones, "clip"), device="cpu", seed=0).eval()
    with torch.no_grad():
        m.connector.layer_weights.normal_()
    return m


@pytest.fixture(scope="module")
def full_model(tiny_backbones) -> DestaModel:
    return DestaModel.from_config(_config(tiny_backbones, "30s"), device="cpu", seed=0).eval()


def test_30s_window_is_whispers_own_encoder_forward(full_model):
    """Our encoder loop (taps kept, positions sliced) is bit-identical to transformers'
    WhisperEncoder.forward on the 30 s window, taps included."""
    model = full_model
    feats = model.features([_clip(0, 3.0), _clip(1, 7.5)])
    assert feats.shape[-1] == 3000
    taps, final = model.encode(feats)
    enc = model.encoder.get_encoder()
    out = enc(feats, output_hidden_states=True)
    assert torch.equal(final, out.last_hidden_state)
    captured = {}
    hooks = [enc.layers[i].register_forward_hook(
        lambda _m, _a, o, i=i: captured.__setitem__(i, o[0] if isinstance(o, tuple) else o))
        for i in model.taps]
    try:
        enc(feats)
    finally:
        for h in hooks:
            h.remove()
    for tap, i in zip(taps, model.taps):
        assert torch.equal(tap, captured[i])


def test_window_lengths_round_up_to_the_step(clip_model, full_model):
    assert [clip_model.window_frames(n) for n in (1, 16_000, 16_001, 40_000, 10**7)] == \
        [100, 100, 200, 300, 3000]
    assert full_model.window_frames(16_000) == 3000
    feats = clip_model.features([_clip(0, 0.3), _clip(1, 2.4)])
    assert feats.shape[-1] == 300  # padded to the longest window (3 s)
    assert clip_model.feature_frames([_clip(0, 0.3), _clip(1, 2.4)]) == [100, 300]


def test_clip_window_output_is_the_same_alone_and_beside_longer_clips(clip_model):
    short = [{"role": "user", "content": "<|AUDIO|> What do you hear?",
              "audios": [_audio(3, 1.2, "ok")]}]
    longer = [{"role": "user", "content": "<|AUDIO|> and <|AUDIO|>?",
               "audios": [_audio(4, 6.3, "a b c"), _audio(5, 2.0, "x")]}]
    text = [{"role": "user", "content": "Just text."}]
    alone = clip_model.generate(short, max_new_tokens=10)
    batched = clip_model.generate([longer, short, text], max_new_tokens=10)
    assert batched.token_ids[1] == alone.token_ids[0]
    assert batched.token_ids[0] == clip_model.generate(longer, max_new_tokens=10).token_ids[0]
    # The audio vectors themselves: never padded, so equal up to the float rounding that a
    # different batch size gives any matmul (as for the 30 s window).
    p_alone = clip_model.prepare(short)
    p_batch = clip_model.prepare([longer, short])
    assert p_batch.feature_frames == [700, 200, 200]
    v_alone = clip_model.audio_vectors(*_taps(clip_model, p_alone))
    v_batch = clip_model.audio_vectors(*_taps(clip_model, p_batch))
    torch.testing.assert_close(v_batch[2], v_alone[0], rtol=1e-5, atol=1e-5)


def _taps(model, prepared):
    taps, _ = model.encode(prepared.input_features, prepared.feature_frames)
    return taps, prepared.tap_lengths


def test_clip_window_sees_only_the_clip(clip_model, full_model):
    """With the clip window, padding the audio with silence past the window changes nothing;
    the 30 s window sees 1500 positions for every clip."""
    wave = _clip(6, 1.5)
    padded = np.concatenate([wave, np.zeros(4_000, np.float32)])  # still inside 2 s
    a = clip_model.prepare([{"role": "user", "content": "<|AUDIO|>",
                             "audios": [{"audio": wave, "sampling_rate": 16_000, "text": "x"}]}])
    b = clip_model.prepare([{"role": "user", "content": "<|AUDIO|>",
                             "audios": [{"audio": padded, "sampling_rate": 16_000,
                                         "text": "x"}]}])
    assert a.feature_frames == b.feature_frames == [200]
    assert torch.equal(clip_model.audio_vectors(*_taps(clip_model, a)),
                       clip_model.audio_vectors(*_taps(clip_model, b)))
    taps, _ = full_model.encode(full_model.features([wave]))
    assert taps[0].shape[1] == 1500


def test_gradients_reach_the_connector_through_grouped_clips(clip_model):
    conv = [{"role": "user", "content": "<|AUDIO|> Describe.", "audios": [_audio(7, 1.0)]},
            {"role": "assistant", "content": "A noise."}]
    conv2 = [{"role": "user", "content": "<|AUDIO|> Describe.", "audios": [_audio(8, 3.0)]},
             {"role": "assistant", "content": "Another noise."}]
    prepared = clip_model.prepare([conv, conv2], for_training=True)
    clip_model.zero_grad()
    clip_model(prepared).loss.backward()
    grads = [p.grad for p in clip_model.connector.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert clip_model.connector.layer_prompts[0].grad.abs().sum() > 0
    clip_model.zero_grad()


def test_window_choice_round_trips_through_checkpoints(clip_model, tmp_path):
    clip_model.save_pretrained(tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert saved["encoder_window"] == "clip" and saved["clip_window_step"] == 1.0
    loaded = DestaModel.from_pretrained(tmp_path / "ckpt", device="cpu").eval()
    assert loaded.config.encoder_window == "clip"
    conv = [{"role": "user", "content": "<|AUDIO|> Describe.", "audios": [_audio(9, 2.5)]}]
    assert loaded.generate(conv, max_new_tokens=6).token_ids == \
        clip_model.generate(conv, max_new_tokens=6).token_ids


def test_released_configs_keep_the_30s_window():
    cfg = DestaConfig.from_dict({"model_type": "desta25", "llm_model_id": "a",
                                 "encoder_model_id": "b"})
    assert cfg.encoder_window == "30s"


@pytest.mark.parametrize(("field", "value", "match"), [
    ("encoder_window", "10s", "encoder_window must be one of"),
    ("clip_window_step", 0.015, "multiple of 0.02"),
    ("clip_window_step", 0.0, "multiple of 0.02"),
    ("clip_window_step", 31.0, "multiple of 0.02"),
])
def test_bad_window_settings_are_named(field, value, match):
    with pytest.raises(ConfigError, match=match):
        DestaConfig(**{field: value})

"""The full model on the embedded real backbones (Whisper tiny.en, SmolLM2-135M-Instruct,
Silero VAD): ASR inside generate, VAD, text-only parity with the backbone, bad audio, the CLI."""

from __future__ import annotations

import subprocess
import sys

import jiwer
import numpy as np
import pytest
import soundfile as sf
import torch
from transformers.models.whisper.english_normalizer import BasicTextNormalizer

from conftest import espeak_wav
from desta import AudioError
from desta.model import DestaModel

pytestmark = pytest.mark.integration

_norm = BasicTextNormalizer()


def _wer(reference: str, hypothesis: str) -> float:
    return jiwer.wer(_norm(reference), _norm(hypothesis))


@pytest.fixture(scope="module")
def model() -> DestaModel:
    return DestaModel.from_config(device="cpu").eval()


def _ask(audio, text=None, question="What is in the audio?"):
    return [{"role": "user", "content": f"<|AUDIO|>\n{question}",
             "audios": [{"audio": str(audio), "text": text}]}]


def test_asr_inside_generate_transcribes_speech(model, speech_clip, audio_dir):
    other = "a large language model can listen to audio and answer questions about it"
    second = espeak_wav(other, audio_dir / "llm_q.wav", voice="en", speed=130, pitch=35)
    result = model.generate([_ask(speech_clip[0]), _ask(second)], max_new_tokens=8)
    (t1,), (t2,) = result.transcripts
    # Greedy tiny.en on espeak-ng's robotic voice: ~0.2-0.3 WER (beam search does better).
    assert _wer(speech_clip[1], t1) < 0.4, t1
    assert _wer(other, t2) < 0.4, t2
    assert "lazy dog" in t1.lower() and "language model" in t2.lower()


def test_given_text_skips_asr(model, speech_clip):
    result = model.generate(_ask(speech_clip[0], text="a given transcript"), max_new_tokens=4)
    assert result.transcripts == [["a given transcript"]]


def test_no_speech_gives_a_single_space(model, noise_clip, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16_000, dtype=np.float32), 16_000)
    result = model.generate([_ask(noise_clip), _ask(silent)], max_new_tokens=4)
    assert result.transcripts == [[" "], [" "]]


def test_text_only_equals_backbone(model):
    convs = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "system", "content": "Answer in one short sentence."},
         {"role": "user", "content": "Why is the sky blue?"}],
    ]
    ours = model.generate(convs, max_new_tokens=24)
    for conv, ids, text in zip(convs, ours.token_ids, ours.texts):
        inputs = model.tokenizer.apply_chat_template(conv, add_generation_prompt=True,
                                                     return_tensors="pt", return_dict=True)
        ref = model.llm.generate(**inputs, max_new_tokens=24, do_sample=False)
        ref_ids = ref[0, inputs["input_ids"].shape[1]:].tolist()
        assert ids == ref_ids[: len(ids)]
        assert len(ids) == len(ref_ids) or ref_ids[len(ids)] in model.stop_token_ids
        assert text == model.tokenizer.decode(ids, skip_special_tokens=True)
    assert "Paris" in ours.texts[0]


def test_batched_generation_with_audio_equals_single(model, speech_clip, noise_clip):
    convs = [_ask(speech_clip[0], question="Summarise it."), _ask(noise_clip),
             [{"role": "user", "content": "Say hi."}]]
    batched = model.generate(convs, max_new_tokens=16)
    for conv, ids in zip(convs, batched.token_ids):
        assert model.generate(conv, max_new_tokens=16).token_ids[0] == ids


def test_stereo_48k_and_8k_clips_are_converted(model, speech_clip, tmp_path):
    wave, rate = sf.read(speech_clip[0], dtype="float32")
    import soxr

    stereo = tmp_path / "stereo48k.wav"
    up = soxr.resample(wave, rate, 48_000)
    sf.write(stereo, np.stack([up, 0.5 * up], axis=1), 48_000)
    narrow = tmp_path / "mono8k.flac"
    sf.write(narrow, soxr.resample(wave, rate, 8_000), 8_000)
    result = model.generate([_ask(stereo), _ask(narrow)], max_new_tokens=4)
    for (text,) in result.transcripts:
        assert _wer(speech_clip[1], text) < 0.6, text


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00garbage" * 10])
def test_empty_or_corrupt_audio_is_named(model, tmp_path, content):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(content)
    with pytest.raises(AudioError, match="broken.wav"):
        model.generate(_ask(bad), max_new_tokens=4)


def test_cli_demo_answers_about_the_bundled_clip():
    out = subprocess.run([sys.executable, "-m", "desta.cli", "demo", "--max-new-tokens", "24"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "platform" in out.stdout.lower()  # the transcript of the bundled clip
    assert "answer:" in out.stdout and "[model embedded:" in out.stdout
    assert "untrained" not in out.stdout  # the shipped trained connector is the default


def test_cli_reports_bad_input_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "desta.cli", "ask", "What?", "--audio",
                          str(tmp_path / "missing.wav")], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 2
    assert "missing.wav" in out.stderr and "Traceback" not in out.stderr


def test_encoder_taps_are_raw_layer_outputs(model, speech_clip):
    """The last tap is the final layer *before* the encoder's final LayerNorm."""
    prepared = model.prepare(_ask(speech_clip[0], text="x"))
    taps, final = model.encode(prepared.input_features)
    encoder = model.encoder.get_encoder()
    torch.testing.assert_close(encoder.layer_norm(taps[-1]), final)
    assert not torch.allclose(taps[-1], final)
    assert len(taps) == 4 and all(t.shape == final.shape for t in taps)


def test_clip_window_transcribes_like_the_30s_window(model, speech_clip, audio_dir):
    """With `encoder_window: clip` the taps come from the clip's own window, but ASR still
    decodes from Whisper's 30 s window: same transcripts as the 30 s model, while tiny.en
    decoding straight from 1 s of encoder states gets a short "hello" wrong (it loops)."""
    from desta.model import DestaConfig

    clip_model = DestaModel.from_config(DestaConfig(encoder_window="clip"), device="cpu").eval()
    hello = espeak_wav("hello", audio_dir / "hello.wav")
    convs = [_ask(speech_clip[0]), _ask(hello)]
    ours = clip_model.prepare(convs)
    assert ours.feature_frames[0] < 3000 and ours.feature_frames[1] == 100
    assert ours.transcripts == model.prepare(convs).transcripts
    assert "hello" in ours.transcripts[1][0].lower()
    _, final = clip_model.encode(ours.input_features[1:2, :, :100], [100])
    short = clip_model.transcriber.transcribe_encoded(final)[0]
    assert short != ours.transcripts[1][0], short  # why ASR needs its own 30 s pass

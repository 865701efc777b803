"""Shared test fixtures: real audio made on the spot (espeak-ng speech, noise, tones)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SPEECH_TEXT = "the quick brown fox jumps over the lazy dog near the river bank"


def espeak_wav(text: str, path: Path, *, voice: str = "en-us", speed: int = 150,
               pitch: int = 50, amplitude: int = 100) -> Path:
    """Synthesise `text` with espeak-ng into a WAV file (22.05 kHz mono, as espeak writes)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run `bash scripts/install.sh --test`")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", str(amplitude),
         "-w", str(path), text],
        check=True, capture_output=True,
    )
    return path


@pytest.fixture
def one_thread():
    """Tiny matmuls on a shared 2-core machine run far faster single-threaded."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def speech_clip(audio_dir: Path) -> tuple[Path, str]:
    """An English speech clip and the sentence it says."""
    return espeak_wav(SPEECH_TEXT, audio_dir / "speech.wav"), SPEECH_TEXT


@pytest.fixture(scope="session")
def noise_clip(audio_dir: Path) -> Path:
    """Three seconds of quiet white noise at 16 kHz: no speech in it."""
    rng = np.random.default_rng(0)
    path = audio_dir / "noise.wav"
    sf.write(path, (0.05 * rng.standard_normal(48_000)).astype(np.float32), 16_000)
    return path


@pytest.fixture(scope="session")
def tiny_backbones(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Local directories of a tiny random Whisper and a tiny random Llama, with the embedded
    models' real tokenizers / feature extractor (so chat templates and ASR tokens are real)."""
    import torch
    from transformers import (
        AutoTokenizer,
        LlamaConfig,
        LlamaForCausalLM,
        WhisperConfig,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    from desta.backbones import EMBEDDED_ENCODER_ID, EMBEDDED_LLM_ID, resolve_backbone

    enc_src, llm_src = resolve_backbone(EMBEDDED_ENCODER_ID), resolve_backbone(EMBEDDED_LLM_ID)
    root = tmp_path_factory.mktemp("tiny_backbones")
    torch.manual_seed(0)
    wcfg = WhisperConfig.from_pretrained(enc_src)
    wcfg.update(dict(d_model=64, encoder_layers=4, decoder_layers=1, encoder_attention_heads=4,
                     decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128))
    WhisperForConditionalGeneration(wcfg).save_pretrained(root / "whisper")
    WhisperProcessor.from_pretrained(enc_src).save_pretrained(root / "whisper")
    lcfg = LlamaConfig.from_pretrained(llm_src)
    lcfg.update(dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=16))
    llm = LlamaForCausalLM(lcfg)
    llm.generation_config = llm.generation_config.from_pretrained(llm_src)
    llm.save_pretrained(root / "llm")
    AutoTokenizer.from_pretrained(llm_src).save_pretrained(root / "llm")
    return str(root / "whisper"), str(root / "llm")

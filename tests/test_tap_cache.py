"""Encoder taps cached once per clip (training): same losses as running the encoder live,
resume-safe builds, content-keyed entries, ASR transcripts for rows without text, and the
trainer using the cache with the clip window."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
import torch

from desta.errors import ConfigError
from desta.model import DestaConfig, DestaModel
from desta.training.config import load_config
from desta.training.data import Collator, RowEncoder, iter_rows
from desta.training.tap_cache import TapCache, file_key
from test_training_engine import make_rows, tiny_overrides, write_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cache_corpus")
    rows = make_rows(root, range(6))
    rows[5]["messages"][0]["audios"][0]["text"] = None  # this row's transcript comes from ASR
    write_jsonl(root / "train.jsonl", rows)
    write_jsonl(root / "dev.jsonl", make_rows(root, range(100, 102)))
    return root


@pytest.fixture(scope="module", params=["30s", "clip"])
def model(request, tiny_backbones) -> DestaModel:
    whisper, llm = tiny_backbones
    cfg = DestaConfig(encoder_model_id=whisper, llm_model_id=llm, prompt_size=8,
                      qformer_intermediate_size=96, encoder_window=request.param)
    return DestaModel.from_config(cfg, device="cpu", seed=0).eval()


def _collators(model, corpus, cache):
    encoder = RowEncoder(model.builder, max_transcript_tokens=100)
    kwargs = dict(encoder_window=model.config.encoder_window,
                  clip_window_step=model.config.clip_window_step)
    live = Collator(encoder, model.processor.feature_extractor, corpus, **kwargs)
    cached = Collator(encoder, model.processor.feature_extractor, corpus, tap_cache=cache,
                      **kwargs)
    return encoder, live, cached


def _clips(corpus: Path):
    for row in iter_rows([corpus / "train.jsonl"]):
        ref = row.messages[0]["audios"][0]
        yield corpus / ref["audio"], ref["text"] is None


def test_cached_taps_give_the_live_loss(model, corpus, tmp_path):
    cache = TapCache(tmp_path / "cache", model)
    assert cache.build(_clips(corpus), batch_size=4, progress=False) == 6
    assert cache.build(_clips(corpus), progress=False) == 0  # resumed: nothing left to do
    encoder, live, cached = _collators(model, corpus, cache)
    rows = list(iter_rows([corpus / "train.jsonl"]))
    a, b = live(rows).to_prepared(model, encoder), cached(rows).to_prepared(model, encoder)
    assert a.feature_frames == b.feature_frames
    assert a.transcripts == b.transcripts  # row 5's ASR transcript was cached
    assert b.input_features is None
    with torch.no_grad():
        loss_live, loss_cached = model(a).loss, model(b).loss
    # float16 storage of the taps: relative error ~1e-3 at most on the loss
    assert float(loss_cached) == pytest.approx(float(loss_live), rel=2e-3)


def test_cache_is_keyed_by_content_and_model(model, corpus, tmp_path):
    cache = TapCache(tmp_path / "cache", model)
    clip = corpus / "audio" / "clip0.wav"
    copy = tmp_path / "copy.wav"
    copy.write_bytes(clip.read_bytes())
    cache.build([(clip, False)], progress=False)
    assert cache.build([(copy, False)], progress=False) == 0  # same bytes, same entry
    wave, rate = sf.read(clip, dtype="float32")
    sf.write(copy, wave * 0.5, rate)
    fresh = TapCache(tmp_path / "cache", model)  # keys are memoised per instance
    assert fresh.build([(copy, False)], progress=False) == 1
    other = DestaConfig(**{**model.config.to_dict(), "target_layer_ids": [1, 3],
                           "llm_config": None, "encoder_config": None})
    assert TapCache(tmp_path / "cache", DestaModel.from_config(other, device="cpu")).root \
        != cache.root
    with pytest.raises(ConfigError, match="not in the tap cache"):
        cache.load(corpus / "audio" / "clip1.wav")


KILL_SCRIPT = """
import sys, torch
from pathlib import Path
from desta.model import DestaConfig, DestaModel
from desta.training.tap_cache import TapCache, file_key
torch.set_num_threads(1)
whisper, llm, cache_dir, *clips = sys.argv[1:]
cfg = DestaConfig(encoder_model_id=whisper, llm_model_id=llm, prompt_size=8,
                  qformer_intermediate_size=96, encoder_window="clip")
model = DestaModel.from_config(cfg, device="cpu", seed=0).eval()
TapCache(cache_dir, model).build([(Path(c), False) for c in clips], batch_size=1,
                                 progress=False)
"""


def test_sigkill_mid_build_leaves_only_whole_entries(tiny_backbones, corpus, tmp_path):
    """A real SIGKILL while the cache is being written: every entry on disk loads, and the
    next build computes exactly the missing ones."""
    import signal
    import subprocess
    import sys
    import time

    wave, rate = sf.read(corpus / "audio" / "clip0.wav", dtype="float32")
    clips = []
    for i in range(60):  # distinct bytes, so 60 entries
        path = tmp_path / "clips" / f"c{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, wave * (0.2 + i / 100), rate)
        clips.append(path)
    cache_dir = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, *tiny_backbones,
                             str(cache_dir), *map(str, clips)])
    deadline = time.monotonic() + 300
    while len(list(cache_dir.rglob("*.safetensors"))) < 3 and time.monotonic() < deadline:
        assert proc.poll() is None, "the build ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = list(cache_dir.rglob("*.safetensors"))
    assert 3 <= len(written) < 60
    whisper, llm = tiny_backbones
    cfg = DestaConfig(encoder_model_id=whisper, llm_model_id=llm, prompt_size=8,
                      qformer_intermediate_size=96, encoder_window="clip")
    cache = TapCache(cache_dir, DestaModel.from_config(cfg, device="cpu", seed=0).eval())
    done = [c for c in clips if cache.path(c).is_file()]
    for clip in done:
        assert cache.load(clip).taps.shape[0] == 4
    assert cache.build([(c, False) for c in clips], progress=False) == 60 - len(done)
    assert len(list(cache_dir.rglob("*.safetensors"))) == 60


@pytest.fixture
def fresh_accelerate_state():
    """accelerate keeps one state per process: earlier tests built float32 accelerators, so a
    bf16 run needs it cleared, and later tests need it cleared again (a `desta train` process
    starts with none)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_trainer_trains_from_the_cache(tiny_backbones, corpus, tmp_path, fresh_accelerate_state):
    from desta.training.trainer import Trainer

    overrides = tiny_overrides(tiny_backbones, corpus, tmp_path / "run", "train.max_steps=3",
                               "train.save_every=0", f"data.tap_cache={tmp_path / 'taps'}",
                               "model.encoder_window=clip", "train.batch_size=2",
                               # the shipped recipe's precision: bf16 backbone and autocast,
                               # with validation generation (features stay float32)
                               "train.mixed_precision=bf16", "train.backbone_dtype=bfloat16",
                               f"data.validation=[{corpus / 'dev.jsonl'}]",
                               "validation.generate_rows=2", "validation.max_new_tokens=4")
    trainer = Trainer(load_config("tiny-cpu", overrides), resume=None)
    entries = list((tmp_path / "taps").rglob("*.safetensors"))
    clips = {file_key(corpus / r["messages"][0]["audios"][0]["audio"])
             for name in ("train.jsonl", "dev.jsonl")
             for r in map(json.loads, (corpus / name).read_text().splitlines())}
    assert len(entries) == len(clips)  # the training and validation clips, by content
    result = trainer.fit()
    assert result.validation and "consecutive_words" in result.validation[-1]
    assert result.steps == 3 and all(torch.isfinite(torch.tensor(r["loss"]))
                                     for r in result.history)
    saved = json.loads((result.final_dir / "config.json").read_text())
    assert saved["encoder_window"] == "clip"


def test_a_copy_needing_asr_gets_the_transcript_into_the_shared_entry(model, corpus, tmp_path):
    """Entries are keyed by content: a copy of a clip under another name shares its entry,
    which must hold the ASR transcript when either name needs it."""
    import shutil

    clip = corpus / "audio" / "clip0.wav"
    copy = tmp_path / "copy.wav"
    shutil.copy(clip, copy)
    cache = TapCache(tmp_path / "cache", model)
    assert cache.build([(clip, False), (copy, True)], progress=False) == 1
    assert cache.load(clip).transcript is not None

"""Encoder taps computed once per clip and reused across epochs.

The Whisper encoder is frozen, so a clip's taps never change during training: computing them
every epoch is wasted work (with Whisper tiny.en and 3 s clips it is most of a CPU step). The
cache stores, per clip, its taps (K, T, d) as float16 plus its encoder window, and, for clips
that rows leave without a transcript, the VAD + ASR transcript the model would compute.

Layout: ``<dir>/<model signature>/<kk>/<content hash>.safetensors``. The signature covers what
the taps depend on (encoder id, tapped layers, encoder window, dtype); the key is a hash of the
audio file's bytes, so a moved or copied data root still hits and an edited clip misses.
Entries are written to a temporary name and renamed, so a killed build never leaves a torn
entry; a resumed build computes only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from desta.errors import ConfigError

logger = logging.getLogger(__name__)

_FORMAT = 1
_FP16_MAX = 60_000.0  # taps above this (rare Whisper outliers) are stored as float32


@dataclass(frozen=True)
class CachedClip:
    taps: torch.Tensor  # (K, T, d) float32
    frames: int  # mel frames of the encoder window (T = frames / 2)
    transcript: str | None  # VAD + ASR transcript, when the cache computed one


def file_key(path: Path) -> str:
    """Content hash of an audio file (BLAKE2b-128 of its bytes)."""
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class TapCache:
    """Per-clip encoder taps of one model's encoder, under `directory`."""

    def __init__(self, directory: str | Path, model: Any) -> None:
        cfg = model.config
        signature = {"format": _FORMAT, "encoder": cfg.encoder_model_id,
                     "taps": list(model.taps), "window": cfg.encoder_window,
                     "step": cfg.clip_window_step if cfg.encoder_window == "clip" else None,
                     "dtype": str(model.encoder.dtype)}
        name = hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:16]
        self.root = Path(directory).expanduser() / name
        self.signature = signature
        self.model = model
        self._keys: dict[Path, str] = {}

    def key(self, audio: Path) -> str:
        audio = Path(audio)
        if audio not in self._keys:
            self._keys[audio] = file_key(audio)
        return self._keys[audio]

    def path(self, audio: Path) -> Path:
        key = self.key(audio)
        return self.root / key[:2] / f"{key}.safetensors"

    def load(self, audio: Path) -> CachedClip:
        from safetensors import safe_open

        path = self.path(audio)
        if not path.is_file():
            raise ConfigError(f"{audio}: not in the tap cache {self.root}; build it first "
                              "(training does, for every clip of data.train/validation)")
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            taps = handle.get_tensor("taps").float()
        text = meta.get("transcript")
        return CachedClip(taps=taps, frames=int(meta["frames"]), transcript=text)

    def build(self, clips: Iterable[tuple[Path, bool]], *, batch_size: int = 16,
              progress: bool = True) -> int:
        """Compute the entries missing for `clips` = (audio path, needs ASR transcript) and
        return how many were computed. Clips are read with `desta.audio.io.load_audio` and
        batched by window length."""
        from tqdm.auto import tqdm

        from desta.audio.io import audio_duration, load_audio

        # One entry per content: files with the same bytes under other names share it, and
        # it needs the ASR transcript if any of them does.
        wanted: dict[str, tuple[Path, bool]] = {}
        for audio, needs_asr in clips:
            key = self.key(Path(audio))
            first, asr = wanted.get(key, (Path(audio), False))
            wanted[key] = (first, asr or needs_asr)
        todo = [(a, asr) for a, asr in wanted.values() if not self._complete(a, asr)]
        if not todo:
            return 0
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "signature.json").write_text(json.dumps(self.signature, indent=2) + "\n")
        logger.info("tap cache %s: computing %d of %d clip(s)", self.root, len(todo),
                    len(wanted))
        limit = int(30.0 * 16_000)
        todo.sort(key=lambda item: audio_duration(item[0]))  # similar windows share a batch
        bar = tqdm(total=len(todo), desc="encoder taps", unit="clip", disable=not progress)
        model = self.model
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            waves = [load_audio(a)[:limit] for a, _ in chunk]
            frames = model.feature_frames(waves)
            features = model.features(waves)
            texts = [None if asr else "" for _, asr in chunk]
            texts, taps = model.fill_transcripts(texts, waves, features, frames)
            if taps is None:
                taps, _ = model.encode(features, frames)
            for row, (audio, asr) in enumerate(chunk):
                n = taps[0].shape[1] if frames is None else frames[row] // 2
                self._write(audio, torch.stack([t[row, :n] for t in taps]),
                            3000 if frames is None else frames[row],
                            texts[row] if asr else None)
            bar.update(len(chunk))
        bar.close()
        return len(todo)

    def _complete(self, audio: Path, needs_asr: bool) -> bool:
        path = self.path(audio)
        if not path.is_file():
            return False
        if not needs_asr:
            return True
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return "transcript" in (handle.metadata() or {})

    def _write(self, audio: Path, taps: torch.Tensor, frames: int, transcript: str | None
               ) -> None:
        from safetensors.torch import save_file

        path = self.path(audio)
        path.parent.mkdir(parents=True, exist_ok=True)
        stored = taps.float()
        if stored.abs().max() < _FP16_MAX:
            stored = stored.half()
        meta = {"frames": str(frames), "audio": str(audio)}
        if transcript is not None:
            meta["transcript"] = transcript
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file({"taps": stored.contiguous().cpu()}, str(tmp), metadata=meta)
        os.replace(tmp, path)

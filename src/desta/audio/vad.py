"""Speech / no-speech decision with Silero VAD (REFERENCE section 2, "Inference ASR").

At inference a clip with speech and no given transcript is transcribed by Whisper; a clip
without speech gets a single space as its transcript. This module makes that decision with
the weights bundled in the ``silero-vad`` package, so it works offline.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from desta.audio.io import SAMPLE_RATE
from desta.errors import AudioError

# Importing silero-vad sets torch's intra-op threads to 1 for the whole process (its model.py
# calls torch.set_num_threads(1) at import): keep the caller's choice instead.
_threads = torch.get_num_threads()
from silero_vad import (  # noqa: E402
    get_speech_timestamps,
    get_speech_timestamps_from_probs,
    load_silero_vad,
)

torch.set_num_threads(_threads)
del _threads

logger = logging.getLogger(__name__)

WINDOW_SAMPLES = 512
"""Silero VAD scores 16 kHz audio in 32 ms windows of 512 samples."""


class SpeechDetector:
    """Finds speech in 16 kHz mono waveforms (as returned by :func:`desta.audio.io.load_audio`).

    The Silero model is loaded on first use and shared by all threads: it carries recurrent
    state between windows, so every call runs under one lock. Short calls, so the lock costs
    little; use :meth:`has_speech_batch` to score many clips in one pass.

    Args:
        threshold: speech probability above which a 32 ms window counts as speech.
        min_speech_seconds: speech runs shorter than this are dropped (clicks, coughs).
    """

    def __init__(self, threshold: float = 0.5, min_speech_seconds: float = 0.25) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if min_speech_seconds < 0:
            raise ValueError(f"min_speech_seconds must be >= 0, got {min_speech_seconds}")
        self.threshold = threshold
        self.min_speech_seconds = min_speech_seconds
        self._model: torch.jit.ScriptModule | None = None
        self._lock = threading.Lock()

    # -- public API ----------------------------------------------------------------------------

    def speech_segments(self, wave: np.ndarray) -> list[tuple[float, float]]:
        """Speech segments of a 16 kHz mono waveform, as (start, end) in seconds."""
        audio = self._as_tensor(wave, "wave")
        if audio.numel() == 0:
            return []
        with self._lock, torch.no_grad():
            stamps = get_speech_timestamps(audio, self._get_model(), **self._vad_options())
        return self._to_seconds(stamps)

    def has_speech(self, wave: np.ndarray) -> bool:
        """Whether the clip holds at least one speech segment."""
        return bool(self.speech_segments(wave))

    def speech_segments_batch(self, waves: Sequence[np.ndarray]) -> list[list[tuple[float, float]]]:
        """:meth:`speech_segments` for many clips, scored together in one batched pass.

        Clips shorter than the longest are scored as if zero-padded; the model is causal, so the padding does not
        change any clip's own windows, and each clip keeps only its own window scores.
        """
        audios = [self._as_tensor(w, f"waves[{i}]") for i, w in enumerate(waves)]
        live = [i for i, a in enumerate(audios) if a.numel() > 0]
        results: list[list[tuple[float, float]]] = [[] for _ in audios]
        if not live:
            return results
        n_windows = [-(-audios[i].numel() // WINDOW_SAMPLES) for i in live]
        probs = torch.zeros(len(live), max(n_windows))  # (batch, windows)
        with self._lock, torch.no_grad():
            model = self._get_model()
            model.reset_states()
            for w in range(max(n_windows)):
                # Build one (batch, 512) window at a time rather than a padded copy of every
                # clip: a batch of long clips would otherwise need GBs.
                chunk = torch.zeros(len(live), WINDOW_SAMPLES)
                for row, i in enumerate(live):
                    piece = audios[i][w * WINDOW_SAMPLES : (w + 1) * WINDOW_SAMPLES]
                    chunk[row, : piece.numel()] = piece
                probs[:, w] = model(chunk, SAMPLE_RATE)[:, 0]
            model.reset_states()

        for row, i in enumerate(live):
            stamps = get_speech_timestamps_from_probs(
                probs[row, : n_windows[row]].tolist(),
                audio_length_samples=audios[i].numel(),
                **self._vad_options(),
            )
            results[i] = self._to_seconds(stamps)
        return results

    def has_speech_batch(self, waves: Sequence[np.ndarray]) -> list[bool]:
        """:meth:`has_speech` for each clip, computed in one batched pass."""
        return [bool(segments) for segments in self.speech_segments_batch(waves)]

    # -- internals -----------------------------------------------------------------------------

    def _get_model(self) -> torch.jit.ScriptModule:
        # Called with the lock held, so the model is loaded exactly once.
        if self._model is None:
            logger.info("Loading Silero VAD (weights bundled with the silero-vad package)")
            with warnings.catch_warnings():
                # silero-vad and torch.jit emit DeprecationWarnings about their own internals.
                warnings.simplefilter("ignore", DeprecationWarning)
                self._model = load_silero_vad()
        return self._model

    def _vad_options(self) -> dict:
        return {
            "threshold": self.threshold,
            "sampling_rate": SAMPLE_RATE,
            "min_speech_duration_ms": int(round(self.min_speech_seconds * 1000)),
            "return_seconds": False,
        }

    @staticmethod
    def _to_seconds(stamps: list[dict]) -> list[tuple[float, float]]:
        return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]

    @staticmethod
    def _as_tensor(wave: np.ndarray, what: str) -> torch.Tensor:
        """Check a waveform is 1-D finite audio and return it as a float32 tensor."""
        array = np.asarray(wave)
        if array.ndim != 1:
            raise AudioError(
                f"VAD input {what} has shape {array.shape}; it needs a 1-D mono waveform at "
                f"{SAMPLE_RATE} Hz: load it with desta.audio.io.load_audio."
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise AudioError(
                f"VAD input {what} has dtype {array.dtype}; it needs float samples in [-1, 1] "
                "(load it with desta.audio.io.load_audio)."
            )
        if not np.isfinite(array).all():
            raise AudioError(f"VAD input {what} holds NaN or Inf samples.")
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

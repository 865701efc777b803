"""Batched Whisper transcription (the transcript that follows the audio vectors at inference).

`WhisperTranscriber` wraps an already loaded Whisper model and processor (see
`desta.backbones.load_encoder`); it does not decide *whether* a clip holds speech (that is the
VAD's job) and does not load audio files (that is `desta.audio.io`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch

from desta.errors import AudioError

if TYPE_CHECKING:
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
MAX_SECONDS = 30.0  # one Whisper window; longer clips would be cut silently by the processor
MAX_NEW_TOKENS = 128


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Whisper's generate warns on every batched call about its own internal max_length and
    the (irrelevant, encoder-side) attention mask; keep those out of users' logs."""
    log = logging.getLogger("transformers")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


class WhisperTranscriber:
    """Greedy (or beam) Whisper speech recognition over batches of 16 kHz mono clips.

    English-only checkpoints (`*.en`, no language tokens) decode with the prompt
    `<|startoftranscript|><|notimestamps|>`; multilingual ones transcribe (never translate)
    with the language detected per clip.
    """

    def __init__(self, model: WhisperForConditionalGeneration, processor: WhisperProcessor,
                 *, num_beams: int = 1, max_new_tokens: int = MAX_NEW_TOKENS) -> None:
        if num_beams < 1 or max_new_tokens < 1:
            raise ValueError("num_beams and max_new_tokens must be >= 1")
        self.model = model
        self.processor = processor
        self.num_beams = num_beams
        self.max_new_tokens = max_new_tokens
        self.multilingual = bool(getattr(model.generation_config, "is_multilingual", False))

    def transcribe(self, waves: Sequence[np.ndarray], *, batch_size: int = 16) -> list[str]:
        """Transcribe 16 kHz mono float32 clips (each at most 30 s); one stripped text per clip."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        clips = [self._check(i, w) for i, w in enumerate(waves)]
        texts: list[str] = []
        for start in range(0, len(clips), batch_size):
            texts.extend(self._transcribe_batch(clips[start:start + batch_size]))
        return texts

    @staticmethod
    def _check(index: int, wave: np.ndarray) -> np.ndarray:
        wave = np.asarray(wave)
        if wave.ndim != 1:
            raise AudioError(f"clip {index}: expected a mono 1-D array, got shape {wave.shape}; "
                             f"average the channels first (desta.audio.io.load_audio does)")
        if wave.size == 0:
            raise AudioError(f"clip {index}: the audio is empty")
        if wave.size > MAX_SECONDS * SAMPLE_RATE:
            raise AudioError(f"clip {index}: {wave.size / SAMPLE_RATE:.1f} s is longer than the "
                             f"{MAX_SECONDS:.0f} s Whisper window; cut it into shorter clips")
        if not np.issubdtype(wave.dtype, np.floating):
            raise AudioError(f"clip {index}: expected float samples in [-1, 1], got {wave.dtype}")
        if not np.all(np.isfinite(wave)):
            raise AudioError(f"clip {index}: the audio holds NaN or infinite samples")
        return wave.astype(np.float32, copy=False)

    @torch.inference_mode()
    def _transcribe_batch(self, clips: list[np.ndarray]) -> list[str]:
        from desta.audio.features import log_mel

        # Every clip is padded to 30 s (3000 mel frames), as Whisper was trained; computed on
        # the model's device (on a GPU ~7x faster than on the CPU, docs/benchmarks.md).
        features = log_mel(self.processor.feature_extractor, clips, None, self.model.device)
        return self._decode(input_features=features.to(dtype=self.model.dtype))

    @torch.inference_mode()
    def transcribe_encoded(self, encoder_states: torch.Tensor) -> list[str]:
        """Transcribe from final encoder states (N, 1500, d) that were already computed (the
        DeSTA model runs the encoder once for its taps and for ASR)."""
        from transformers.modeling_outputs import BaseModelOutput

        if encoder_states.shape[0] == 0:
            return []
        return self._decode(encoder_outputs=BaseModelOutput(last_hidden_state=encoder_states))

    def _decode(self, **inputs: object) -> list[str]:
        # A .en model rejects language/task arguments; a multilingual one needs task=transcribe
        # (language left out: detected per clip).
        task = {"task": "transcribe"} if self.multilingual else {}
        with _quiet_transformers():
            tokens = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                num_beams=self.num_beams,
                return_timestamps=False,
                **task,
            )
        texts = self.processor.batch_decode(tokens, skip_special_tokens=True)
        return [text.strip() for text in texts]

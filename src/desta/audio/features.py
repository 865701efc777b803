"""Whisper log-mel features for an encoder window: the released 30 s window, or each clip's own
length (`encoder_window: clip` in the model config).

The model, the training collator and the tap cache all call these, so a clip always gets the
same window whichever stage computes its features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

SAMPLE_RATE = 16_000
HOP_LENGTH = 160  # samples per mel frame; the encoder halves frames into positions
WHISPER_WINDOW_SECONDS = 30.0
FULL_FRAMES = int(WHISPER_WINDOW_SECONDS * SAMPLE_RATE) // HOP_LENGTH  # 3000


def window_frames(num_samples: int, window: str, step_seconds: float) -> int:
    """Mel frames of the encoder window for a clip of `num_samples` 16 kHz samples: 3000 for
    the 30 s window; for the clip window, the clip's length rounded up to a multiple of
    `step_seconds` (an even number of frames), at most 30 s."""
    if window == "30s":
        return FULL_FRAMES
    step = round(step_seconds * SAMPLE_RATE / HOP_LENGTH)
    frames = -(-max(int(num_samples), 1) // HOP_LENGTH)  # ceil
    return min(FULL_FRAMES, -(-frames // step) * step)


def clip_frames(waves: Sequence[np.ndarray], window: str, step_seconds: float
                ) -> list[int] | None:
    """Window length per clip in mel frames; None for the 30 s window (every clip full)."""
    if window == "30s":
        return None
    return [window_frames(len(w), window, step_seconds) for w in waves]


def length_groups(lengths: Sequence[int]) -> list[tuple[int, torch.Tensor]]:
    """(length, indices) for each distinct length, in order of first appearance: clips of one
    encoder window run together, never padded."""
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_length.setdefault(int(n), []).append(i)
    return [(n, torch.tensor(idx)) for n, idx in by_length.items()]


def log_mel(feature_extractor: Any, waves: Sequence[np.ndarray], frames: Sequence[int] | None,
            device: str | torch.device | None = None) -> torch.Tensor:
    """Log-mel features (N, mels, F) of 16 kHz clips: padded or cut to 30 s when `frames` is
    None (F = 3000), else clip i to its own `frames[i]`, zero-padded to F = max(frames)."""
    waves = list(waves)
    if frames is None:
        return _extract(feature_extractor, waves, FULL_FRAMES, device)
    out: torch.Tensor | None = None
    for f, idx in length_groups(frames):
        group = _extract(feature_extractor, [waves[i] for i in idx.tolist()], f, device)
        if out is None:
            out = group.new_zeros(len(waves), group.shape[1], max(frames))
        out[idx.to(group.device), :, :f] = group
    assert out is not None
    return out


def _extract(feature_extractor: Any, waves: list[np.ndarray], frames: int,
             device: str | torch.device | None) -> torch.Tensor:
    kwargs = {} if device is None else {"device": str(device)}
    # Features are float32 whatever the model runs in: under a bf16 autocast (mixed-precision
    # training) the extractor's STFT would come back in bf16, which numpy cannot hold.
    with torch.autocast(torch.device(device or "cpu").type, enabled=False):
        feats = feature_extractor(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt",
                                  max_length=frames * HOP_LENGTH, padding="max_length",
                                  truncation=True, **kwargs).input_features
    return feats if device is None else feats.to(device)

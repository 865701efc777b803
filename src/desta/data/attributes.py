"""Acoustic attributes measured from audio, binned into the words a seed description uses.

When a dataset has no label for pitch, volume, speaking speed or noise, we measure it from the
16 kHz mono waveform and map the number to a word (``Pitch: Very high``). Every threshold lives
in the ``*_BINS`` constants below, and docs/data/seed-descriptions.md explains each choice:

* **Pitch**: median F0 (Hz) over the voiced frames found by pYIN (``librosa.pyin``, 50-500 Hz).
  One gender-independent scale: adult male voices mostly fall in Very low/Low, adult female
  voices in Medium/High, children and high female voices in Very high.
* **Volume**: gated RMS level in dBFS (a full-scale square wave is 0 dBFS, a full-scale sine
  -3 dBFS). Frames quieter than both -70 dBFS and 40 dB below the loudest frame are dropped
  first, so pauses between words do not make a speaker "quieter".
* **Speaking speed**: words per second = transcript words / speech seconds (the given speech
  duration, e.g. from a VAD, else the whole clip).
* **Noise level**: signal-to-noise ratio in dB, known from a clean reference or the mixing
  recipe; rendered as ``Moderate (Signal-to-Noise Ratio: 15db)`` like the DeSTA data.

Duration is not returned here: the seed description renders it from ``ClipRecord.duration``.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
from dataclasses import dataclass

import numpy as np

from desta.errors import AudioError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Bins:
    """Ordered bins: ``labels[i]`` covers ``edges[i-1] <= value < edges[i]``."""

    name: str
    unit: str
    edges: tuple[float, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        assert len(self.labels) == len(self.edges) + 1, "one more label than edges"
        assert list(self.edges) == sorted(self.edges), "edges must ascend"

    def index(self, value: float) -> int:
        """Position of the bin holding ``value`` (0 = lowest); a value on an edge goes up."""
        return bisect.bisect_right(self.edges, value)

    def label(self, value: float) -> str:
        """The word for ``value``."""
        return self.labels[self.index(value)]


# ---- every threshold in one place --------------------------------------------------------

FIVE_LEVELS = ("Very low", "Low", "Medium", "High", "Very high")

# Typical adult medians: male ~85-155 Hz, female ~165-255 Hz, children above 250 Hz.
PITCH_BINS = Bins("Pitch", "Hz", (100.0, 140.0, 180.0, 240.0), FIVE_LEVELS)
# Broadcast speech is normalised near -23 LUFS, which lands in Medium.
VOLUME_BINS = Bins("Volume", "dBFS", (-40.0, -30.0, -20.0, -10.0), FIVE_LEVELS)
# Conversational English runs ~2.3-3 words/s (140-180 wpm).
SPEED_BINS = Bins(
    "Speaking speed", "words/s", (1.5, 2.2, 3.0, 3.8),
    ("Very slow", "Slow", "Medium", "Fast", "Very fast"),
)
# Higher SNR = less noise, so the words run the other way.
NOISE_BINS = Bins(
    "Noise Level", "dB SNR", (0.0, 10.0, 20.0, 30.0),
    ("Very high", "High", "Moderate", "Low", "Very low"),
)

PYIN_FMIN_HZ = 50.0
PYIN_FMAX_HZ = 500.0
PYIN_FRAME = 1024  # 64 ms at 16 kHz: holds three periods of the lowest F0
PITCH_MAX_SECONDS = 15.0  # pYIN is the slow part; the middle 15 s give a stable median
LEVEL_FRAME = 1024
LEVEL_HOP = 256
LEVEL_ABS_GATE_DBFS = -70.0
LEVEL_REL_GATE_DB = 40.0
LEVEL_FLOOR_DBFS = -100.0  # reported for digital silence instead of -inf

_WORD = re.compile(r"\w+(?:['’]\w+)*")


# ---- measurements ------------------------------------------------------------------------


@dataclass(frozen=True)
class AcousticMeasurements:
    """Raw numbers behind the attribute words."""

    duration_s: float
    f0_hz: float | None  # None when no frame is voiced
    loudness_dbfs: float
    words_per_second: float | None  # None without a transcript with words


def _as_wave(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validate and return a 1-D float32 wave at 16 kHz."""
    arr = np.asarray(wave)
    if arr.ndim != 1:
        raise AudioError(
            f"expected a 1-D mono wave, got shape {arr.shape}; average the channels first"
        )
    if arr.size == 0:
        raise AudioError("the wave is empty (0 samples)")
    if not np.issubdtype(arr.dtype, np.floating):
        raise AudioError(
            f"expected float samples in [-1, 1], got dtype {arr.dtype}; "
            "divide integer PCM by its full-scale value first"
        )
    if not np.all(np.isfinite(arr)):
        raise AudioError("the wave contains NaN or infinite samples")
    if sample_rate <= 0:
        raise AudioError(f"sample_rate must be positive, got {sample_rate}")
    arr = arr.astype(np.float32, copy=False)
    if sample_rate != SAMPLE_RATE:
        import soxr

        arr = soxr.resample(arr, sample_rate, SAMPLE_RATE).astype(np.float32, copy=False)
    return arr


def median_f0(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float | None:
    """Median F0 in Hz over pYIN's voiced frames, or None when nothing is voiced."""
    wave = _as_wave(wave, sample_rate)
    max_len = int(PITCH_MAX_SECONDS * SAMPLE_RATE)
    if wave.size > max_len:
        start = (wave.size - max_len) // 2
        wave = wave[start:start + max_len]
    if wave.size < PYIN_FRAME:
        logger.debug("clip of %d samples is too short for pitch tracking", wave.size)
        return None
    import librosa  # heavy import (numba); only needed here

    f0, voiced, _ = librosa.pyin(
        wave, fmin=PYIN_FMIN_HZ, fmax=PYIN_FMAX_HZ, sr=SAMPLE_RATE, frame_length=PYIN_FRAME
    )
    voiced_f0 = f0[voiced & np.isfinite(f0)]
    if voiced_f0.size == 0:
        logger.debug("no voiced frames: pitch left out")
        return None
    return float(np.median(voiced_f0))


def loudness_dbfs(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Gated RMS level in dBFS (see module docstring); LEVEL_FLOOR_DBFS for silence."""
    wave = _as_wave(wave, sample_rate).astype(np.float64)
    if wave.size < LEVEL_FRAME:
        power = np.array([np.mean(wave**2)])
    else:
        n = 1 + (wave.size - LEVEL_FRAME) // LEVEL_HOP
        idx = np.arange(LEVEL_FRAME)[None, :] + LEVEL_HOP * np.arange(n)[:, None]
        power = np.mean(wave[idx] ** 2, axis=1)
    with np.errstate(divide="ignore"):
        level = 10.0 * np.log10(power)
    gate = max(LEVEL_ABS_GATE_DBFS, float(level.max()) - LEVEL_REL_GATE_DB)
    kept = power[level >= gate]
    if kept.size == 0:
        return LEVEL_FLOOR_DBFS
    return max(LEVEL_FLOOR_DBFS, 10.0 * math.log10(float(kept.mean())))


def count_words(transcript: str) -> int:
    """Word tokens in a transcript (letters/digits, apostrophes kept inside a word)."""
    return len(_WORD.findall(transcript))


def measure_acoustics(
    wave: np.ndarray,
    transcript: str | None = None,
    speech_seconds: float | None = None,
    *,
    sample_rate: int = SAMPLE_RATE,
    pitch: bool = True,
) -> AcousticMeasurements:
    """Duration, median F0 (unless `pitch` is False: pYIN is ~1 s per clip on one CPU core),
    gated loudness and words per second of one clip."""
    wave = _as_wave(wave, sample_rate)
    duration = wave.size / SAMPLE_RATE
    wps = None
    if transcript is not None and count_words(transcript) > 0:
        seconds = duration if speech_seconds is None else float(speech_seconds)
        if not math.isfinite(seconds) or seconds <= 0:
            raise AudioError(f"speech_seconds must be a positive number, got {speech_seconds!r}")
        wps = count_words(transcript) / seconds
    return AcousticMeasurements(
        duration_s=duration,
        f0_hz=median_f0(wave) if pitch else None,
        loudness_dbfs=loudness_dbfs(wave),
        words_per_second=wps,
    )


# ---- noise ---------------------------------------------------------------------------------


def snr_db(clean: np.ndarray, noise: np.ndarray) -> float:
    """Signal-to-noise ratio in dB of a clean signal and the noise added to it (same length)."""
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if clean.shape != noise.shape:
        raise AudioError(f"clean and noise differ in shape: {clean.shape} vs {noise.shape}")
    p_clean, p_noise = float(np.mean(clean**2)), float(np.mean(noise**2))
    if p_clean == 0.0:
        raise AudioError("the clean signal is silent: SNR is undefined")
    if p_noise == 0.0:
        return math.inf
    return 10.0 * math.log10(p_clean / p_noise)


def noise_level(snr: float) -> str:
    """``"Moderate (Signal-to-Noise Ratio: 15db)"``: the bin word plus the SNR in whole dB."""
    if not math.isfinite(snr):
        raise AudioError(f"SNR must be a finite number of dB, got {snr!r}")
    return f"{NOISE_BINS.label(snr)} (Signal-to-Noise Ratio: {math.floor(snr + 0.5)}db)"


def mix_at_snr(
    clean: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Add ``noise`` to ``clean`` so that the result has exactly ``snr_db`` dB SNR.

    The noise is cropped at a random offset (``rng``) when longer than the clean signal, or
    looped from a random offset when shorter. The mixture is not re-normalised (that would
    change the clean part); check its peak before writing it to a fixed-point file.
    """
    clean_arr = _as_wave(clean, SAMPLE_RATE).astype(np.float64)
    noise_arr = _as_wave(noise, SAMPLE_RATE).astype(np.float64)
    if not math.isfinite(snr_db):
        raise AudioError(f"snr_db must be a finite number of dB, got {snr_db!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = clean_arr.size
    if noise_arr.size >= n:
        start = int(gen.integers(0, noise_arr.size - n + 1))
        fitted = noise_arr[start:start + n]
    else:
        fitted = np.resize(np.roll(noise_arr, -int(gen.integers(0, noise_arr.size))), n)
    p_clean, p_noise = float(np.mean(clean_arr**2)), float(np.mean(fitted**2))
    if p_clean == 0.0:
        raise AudioError("the clean signal is silent: cannot mix at a target SNR")
    if p_noise == 0.0:
        raise AudioError("the noise segment is silent: cannot mix at a target SNR")
    gain = math.sqrt(p_clean / (p_noise * 10.0 ** (snr_db / 10.0)))
    mixture = clean_arr + gain * fitted
    peak = float(np.max(np.abs(mixture)))
    if peak > 1.0:
        logger.debug("mixture peaks at %.2f (> 1.0): scale it before saving as PCM", peak)
    return mixture.astype(np.float32)


# ---- attribute words -----------------------------------------------------------------------


def acoustic_attributes(
    wave: np.ndarray,
    transcript: str | None = None,
    speech_seconds: float | None = None,
    *,
    sample_rate: int = SAMPLE_RATE,
    snr_db: float | None = None,
    pitch: bool = True,
) -> dict[str, str]:
    """Binned attributes of a clip, in seed-description order.

    Returns ``{"Pitch": ..., "Volume": ..., "Speaking speed": ..., "Noise Level": ...}``;
    Pitch is left out when no frame is voiced, Speaking speed without a transcript, and
    Noise Level unless ``snr_db`` (dB, from a clean reference or the mixing recipe) is given.
    """
    m = measure_acoustics(wave, transcript, speech_seconds, sample_rate=sample_rate,
                          pitch=pitch)
    out: dict[str, str] = {}
    if m.f0_hz is not None:
        out[PITCH_BINS.name] = PITCH_BINS.label(m.f0_hz)
    out[VOLUME_BINS.name] = VOLUME_BINS.label(m.loudness_dbfs)
    if m.words_per_second is not None:
        out[SPEED_BINS.name] = SPEED_BINS.label(m.words_per_second)
    if snr_db is not None:
        out[NOISE_BINS.name] = noise_level(snr_db)
    return out

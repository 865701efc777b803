"""SpeechDetector with the real bundled Silero VAD on espeak-ng speech, noise, silence, tones."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from desta.audio.io import SAMPLE_RATE, load_audio
from desta.audio.vad import SpeechDetector
from desta.errors import AudioError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def detector() -> SpeechDetector:
    return SpeechDetector()


@pytest.fixture(scope="module")
def speech(speech_clip: tuple[Path, str]) -> np.ndarray:
    return load_audio(speech_clip[0])  # espeak writes 22.05 kHz: resampled here


@pytest.fixture(scope="module")
def non_speech(noise_clip: Path) -> dict[str, np.ndarray]:
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    return {
        "noise": load_audio(noise_clip),
        "silence": np.zeros(2 * SAMPLE_RATE, np.float32),
        "tone": (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
    }


def test_speech_is_found_inside_the_clip(detector: SpeechDetector, speech: np.ndarray) -> None:
    duration = len(speech) / SAMPLE_RATE
    segments = detector.speech_segments(speech)
    assert detector.has_speech(speech)
    assert segments
    for start, end in segments:
        assert 0.0 <= start < end <= duration + 1e-6
    # espeak speaks almost the whole clip: most of it is speech.
    assert sum(end - start for start, end in segments) > 0.6 * duration


def test_segments_are_in_seconds(detector: SpeechDetector, speech: np.ndarray) -> None:
    lead = 1.0
    padded = np.concatenate([np.zeros(int(lead * SAMPLE_RATE), np.float32), speech])
    plain, shifted = detector.speech_segments(speech), detector.speech_segments(padded)
    assert shifted[0][0] >= lead - 0.1  # nothing detected in the leading silence
    assert shifted[0][0] - plain[0][0] == pytest.approx(lead, abs=0.1)


@pytest.mark.parametrize("kind", ["noise", "silence", "tone"])
def test_no_speech(detector: SpeechDetector, non_speech: dict[str, np.ndarray], kind: str) -> None:
    assert detector.speech_segments(non_speech[kind]) == []
    assert detector.has_speech(non_speech[kind]) is False


@pytest.mark.parametrize("samples", [0, 1, 300, 1600])  # 1600 = 0.1 s, 300 < one 512 window
def test_short_clips_have_no_speech(
    detector: SpeechDetector, speech: np.ndarray, samples: int
) -> None:
    # Cut from the middle of real speech: too short to count, and no crash.
    middle = len(speech) // 2
    clip = speech[middle : middle + samples]
    assert detector.has_speech(clip) is False
    assert detector.has_speech_batch([clip]) == [False]


def test_batch_equals_singles(
    detector: SpeechDetector, speech: np.ndarray, non_speech: dict[str, np.ndarray]
) -> None:
    waves = [
        speech,
        non_speech["noise"],
        speech[:1600],
        np.concatenate([non_speech["silence"], speech]),
        non_speech["tone"],
        np.zeros(0, np.float32),
    ]
    singles = [detector.speech_segments(w) for w in waves]
    batched = detector.speech_segments_batch(waves)
    assert [bool(s) for s in singles] == [True, False, False, True, False, False]
    assert len(batched) == len(singles)
    for got, want in zip(batched, singles, strict=True):
        assert np.allclose(got, want, atol=0.033) and len(got) == len(want)  # one 32 ms window
    assert detector.has_speech_batch(waves) == [bool(s) for s in singles]
    assert detector.has_speech_batch([]) == []


def test_concurrent_calls_match_serial(
    speech: np.ndarray, non_speech: dict[str, np.ndarray]
) -> None:
    detector = SpeechDetector()  # fresh: the lazy load itself is raced too
    waves = [speech, non_speech["noise"], np.concatenate([non_speech["tone"], speech])] * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent_segments = list(pool.map(detector.speech_segments, waves))
        concurrent_flags = list(pool.map(detector.has_speech, waves))
    serial = [detector.speech_segments(w) for w in waves]
    assert concurrent_segments == serial
    assert concurrent_flags == [bool(s) for s in serial] == [True, False, True] * 4


def test_threshold_and_min_speech_are_used(speech: np.ndarray) -> None:
    # A 0.25 s minimum keeps the speech; a minimum longer than the clip drops every segment.
    assert SpeechDetector(min_speech_seconds=0.25).has_speech(speech)
    assert not SpeechDetector(min_speech_seconds=len(speech) / SAMPLE_RATE + 1).has_speech(speech)

    # A stricter threshold keeps less of the clip as speech.
    def total(segments: list[tuple[float, float]]) -> float:
        return sum(end - start for start, end in segments)

    assert total(SpeechDetector(threshold=0.999).speech_segments(speech)) < total(
        SpeechDetector(threshold=0.5).speech_segments(speech)
    )


def test_bad_waveforms_raise_audio_error(detector: SpeechDetector) -> None:
    with pytest.raises(AudioError, match="1-D mono"):
        detector.has_speech(np.zeros((2, 16000), np.float32))
    with pytest.raises(AudioError, match="dtype"):
        detector.has_speech(np.zeros(16000, np.int16))
    with pytest.raises(AudioError, match="NaN"):
        detector.has_speech(np.full(16000, np.nan, np.float32))
    with pytest.raises(ValueError, match="threshold"):
        SpeechDetector(threshold=1.5)


def test_loading_the_vad_keeps_the_torch_thread_count() -> None:
    # silero-vad sets torch's threads to 1 when imported; the detector must not change the
    # count the caller chose (it did: a benchmark's second half silently ran on one thread).
    import subprocess
    import sys

    code = ("import torch; torch.set_num_threads(3)\n"
            "from desta.audio.vad import SpeechDetector\n"
            "import numpy as np\n"
            "SpeechDetector().has_speech_batch([np.zeros(16000, dtype=np.float32)])\n"
            "print(torch.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[-1] == "3"

"""Audio fingerprints find a recording inside another set (cropped, at another level, with
noise, resampled), and do not match unrelated audio or silence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from conftest import espeak_wav
from desta.audio.io import load_audio
from desta.data.overlap import FingerprintIndex, bit_error_rate, find_overlap, fingerprint

SENTENCES = ["the quick brown fox jumps over the lazy dog near the river bank",
             "please leave a message after the tone and we will call you back",
             "a large language model can listen to audio and answer questions",
             "seven silver spoons were left on the kitchen table last night"]


def _clips(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [espeak_wav(s, folder / f"s{i}.wav", pitch=30 + 15 * i)
            for i, s in enumerate(SENTENCES)]


def test_a_cropped_noisy_resampled_copy_is_found(tmp_path):
    refs = _clips(tmp_path / "ref")
    index = FingerprintIndex([str(p) for p in refs], [fingerprint(load_audio(p)) for p in refs])
    rng = np.random.default_rng(0)
    wave = load_audio(refs[2])
    crop = wave[7_123:7_123 + 3 * 16_000] * 0.3  # not on a hop boundary, 10 dB quieter
    crop = crop + np.sqrt(np.mean(crop**2) / 100) * rng.standard_normal(len(crop))  # 20 dB SNR
    crop = soxr.resample(soxr.resample(crop.astype(np.float32), 16_000, 11_025), 11_025, 16_000)
    match = index.best("copy", fingerprint(crop))
    assert match is not None and match.reference == str(refs[2])
    assert match.ber < 0.25 and match.overlap_s >= 2.0
    assert abs(match.offset_s - 7_123 / 16_000) < 0.02
    # Another sentence, another voice: no match, and a BER near one half.
    other = espeak_wav("nothing in this clip was said before today", tmp_path / "o.wav",
                       voice="en-us+f3")
    assert index.best("other", fingerprint(load_audio(other))) is None
    assert bit_error_rate(fingerprint(load_audio(other)), index.prints[0], 0)[0] > 0.4


def test_silence_never_matches_silence(tmp_path):
    quiet = np.zeros(5 * 16_000, np.float32)
    quiet[16_000:20_000] = 0.1 * np.sin(np.arange(4_000) / 7)  # a short beep, then silence
    other = np.zeros(5 * 16_000, np.float32)
    other[50_000:52_000] = 0.1 * np.sign(np.sin(np.arange(2_000) / 3))
    index = FingerprintIndex(["quiet"], [fingerprint(quiet)])
    assert index.best("other", fingerprint(other)) is None


def test_cli_reports_the_overlap_and_exits_1(tmp_path):
    refs = _clips(tmp_path / "eval")
    train = tmp_path / "data" / "audio"
    train.mkdir(parents=True)
    wave = load_audio(refs[1])
    sf.write(train / "copy.flac", wave[4_000:], 16_000)
    sf.write(train / "fresh.wav", load_audio(espeak_wav("an unrelated new sentence here",
                                                        tmp_path / "n.wav")), 16_000)
    report = find_overlap([train / "copy.flac", train / "fresh.wav"], refs, progress=False)
    assert [m["query"] for m in report["matches"]] == [str(train / "copy.flac")]
    out = subprocess.run([sys.executable, "-m", "desta.cli", "data", "overlap", "--audio",
                          str(train), "--against", str(tmp_path / "eval"), "--out",
                          str(tmp_path / "r.json"), "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 1, out.stderr
    assert "1 match(es)" in out.stdout and "copy.flac" in out.stdout
    missing = subprocess.run([sys.executable, "-m", "desta.cli", "data", "overlap", "--audio",
                              str(tmp_path / "nope"), "--against", str(tmp_path / "eval")],
                             capture_output=True, text=True, timeout=600)
    assert missing.returncode == 2 and "nope does not exist" in missing.stderr

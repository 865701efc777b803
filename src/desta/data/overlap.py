"""Is any training clip an evaluation clip? Audio fingerprints compared across two sets.

Evaluation sets (SAKURA's animal clips come from freesound-style collections, like Tux Paint's
and GCompris' recordings) can share recordings with training data, cropped, re-encoded or at
another level. Comparing file bytes would miss that, so the comparison is on decoded audio:

1. every clip becomes a sequence of 32-bit sub-fingerprints, one per 16 ms hop (the Haitsma-
   Kalker scheme: the sign of the energy difference between neighbouring bands of 33
   log-spaced bands in 300-3000 Hz, differenced over time), which survives gain changes,
   resampling, lossy coding and moderate noise;
2. sub-fingerprints of the reference set go into a sorted index; each query clip votes for
   (reference clip, time offset) pairs through exact sub-fingerprint hits;
3. the best-voted alignments are verified by their bit error rate (BER) over the overlap: a
   BER below 0.35 over at least one second means the same recording (unrelated audio sits
   near 0.5).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from desta.errors import ConfigError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
FRAME = 2048  # 128 ms
HOP = 256  # 16 ms
BANDS = 33
LOW_HZ, HIGH_HZ = 300.0, 3000.0
MATCH_BER = 0.35
SILENCE_DB = 40.0  # frames this far below the clip's loudest are left out of the comparison
ABSOLUTE_FLOOR_DB = -20.0  # band energy of a -70 dBFS frame (FFT power units)
MIN_OVERLAP_FRAMES = int(1.0 * SAMPLE_RATE / HOP)  # one second
CANDIDATES = 5  # alignments verified per query clip
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus")


def _band_edges() -> np.ndarray:
    freqs = np.fft.rfftfreq(FRAME, 1 / SAMPLE_RATE)
    edges = np.geomspace(LOW_HZ, HIGH_HZ, BANDS + 1)
    return np.searchsorted(freqs, edges)


_EDGES = _band_edges()
_WINDOW = np.hanning(FRAME).astype(np.float32)
_WEIGHTS = (1 << np.arange(32, dtype=np.uint64)).astype(np.uint64)
_FLIPS = np.array([0, *(1 << b for b in range(32))], dtype=np.uint64).astype(np.uint32)


@dataclass(frozen=True)
class Print:
    """A clip's sub-fingerprints and which of them come from sound (not near-silence, whose
    all-zero bits would match any other silence)."""

    bits: np.ndarray  # (frames,) uint32
    active: np.ndarray  # (frames,) bool

    def __len__(self) -> int:
        return len(self.bits)


def fingerprint(wave: np.ndarray) -> Print:
    """Sub-fingerprints of a 16 kHz mono wave (empty for clips under ~0.16 s)."""
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) < FRAME + 2 * HOP:
        return Print(np.zeros(0, np.uint32), np.zeros(0, bool))
    n = 1 + (len(wave) - FRAME) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(wave, FRAME)[::HOP][:n] * _WINDOW
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    energy = np.add.reduceat(power, _EDGES[:-1], axis=1)[:, :BANDS]  # (n, 33)
    diff = energy[:, :-1] - energy[:, 1:]  # (n, 32)
    bits = (diff[1:] - diff[:-1]) > 0  # (n-1, 32)
    with np.errstate(divide="ignore"):
        level = 10 * np.log10(energy.sum(axis=1) + 1e-20)
    loud = level > max(float(level.max()) - SILENCE_DB, ABSOLUTE_FLOOR_DB)
    return Print((bits.astype(np.uint64) @ _WEIGHTS).astype(np.uint32), loud[1:] & loud[:-1])


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.unpackbits(x.view(np.uint8).reshape(-1, 4), axis=1).sum(axis=1)


def bit_error_rate(query: Print, ref: Print, offset: int) -> tuple[float, int]:
    """BER of `query` laid over `ref` starting at `offset` (query frame 0 = ref frame
    `offset`) over the frames where both have sound, and how many frames that is."""
    start_q, start_r = max(0, -offset), max(0, offset)
    n = min(len(query) - start_q, len(ref) - start_r)
    if n <= 0:
        return 1.0, 0
    both = query.active[start_q:start_q + n] & ref.active[start_r:start_r + n]
    if not both.any():
        return 1.0, 0
    xor = query.bits[start_q:start_q + n][both] ^ ref.bits[start_r:start_r + n][both]
    return float(_popcount(xor).sum()) / (32 * int(both.sum())), int(both.sum())


@dataclass(frozen=True)
class Match:
    query: str
    reference: str
    ber: float
    overlap_s: float
    offset_s: float  # where the query starts in the reference (negative: before it)


class FingerprintIndex:
    """Sub-fingerprints of a set of reference clips, sorted for lookup."""

    def __init__(self, names: Sequence[str], prints: Sequence[Print]) -> None:
        self.names, self.prints = list(names), list(prints)
        if not any(p.active.any() for p in self.prints):
            raise ConfigError("no reference clip has sound long enough to fingerprint")
        # Only frames with sound are indexed: silence would vote for every silent clip.
        self._keys = np.concatenate([p.bits[p.active] for p in self.prints])
        self._clip = np.concatenate([np.full(int(p.active.sum()), i, np.int32)
                                     for i, p in enumerate(self.prints)])
        self._frame = np.concatenate([np.flatnonzero(p.active).astype(np.int32)
                                      for p in self.prints])
        order = np.argsort(self._keys, kind="stable")
        self._keys, self._clip, self._frame = (self._keys[order], self._clip[order],
                                               self._frame[order])

    def best(self, name: str, query: Print) -> Match | None:
        """The best verified alignment of `query` against the index, if it matches."""
        if int(query.active.sum()) < MIN_OVERLAP_FRAMES:
            return None
        # Each frame looks up its sub-fingerprint and its 32 one-bit neighbours, so a frame
        # with one bit error still votes (frames cut half a hop apart have BER ~0.15).
        sounding = np.flatnonzero(query.active)
        keys = (query.bits[sounding][:, None] ^ _FLIPS[None, :]).ravel()
        frames = np.repeat(sounding, len(_FLIPS))
        lo = np.searchsorted(self._keys, keys, side="left")
        hi = np.searchsorted(self._keys, keys, side="right")
        votes: Counter[tuple[int, int]] = Counter()
        for q_frame, a, b in zip(frames[hi > lo], lo[hi > lo], hi[hi > lo]):
            if b - a > 50:  # a sub-fingerprint common to many clips (silence): no evidence
                continue
            for j in range(a, b):
                votes[(int(self._clip[j]), int(self._frame[j]) - int(q_frame))] += 1
        best: Match | None = None
        for (clip, offset), _ in votes.most_common(CANDIDATES):
            ber, n = bit_error_rate(query, self.prints[clip], offset)
            if n >= MIN_OVERLAP_FRAMES and ber < MATCH_BER and (best is None or ber < best.ber):
                best = Match(name, self.names[clip], round(ber, 4), round(n * HOP / SAMPLE_RATE,
                                                                          2),
                             round(offset * HOP / SAMPLE_RATE, 2))
        return best


def audio_files(paths: Iterable[str | Path]) -> list[Path]:
    """Audio files named directly or found (recursively) under folders."""
    out: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        elif path.is_file():
            out.append(path)
        else:
            raise ConfigError(f"{path} does not exist")
    if not out:
        raise ConfigError(f"no audio files under {', '.join(map(str, paths))}")
    return out


def manifest_audio(manifest: Path, data_root: Path) -> list[Path]:
    """The clips of a ClipRecord manifest, resolved under the data root."""
    from desta.data.seed import read_manifest

    return [data_root / r.audio for r in read_manifest(manifest)]


def find_overlap(queries: Sequence[Path], references: Sequence[Path], *,
                 progress: bool = True) -> dict[str, object]:
    """Fingerprint both sets, look every query up in the reference index; returns a report
    (`matches` lists every query clip found in the reference set)."""
    from tqdm.auto import tqdm

    from desta.audio.io import load_audio

    def prints(files: Sequence[Path], desc: str) -> list[Print]:
        return [fingerprint(load_audio(f, max_seconds=None)) for f in
                tqdm(files, desc=desc, unit="clip", disable=not progress)]

    index = FingerprintIndex([str(p) for p in references], prints(references, "reference"))
    matches = []
    for path, query in zip(queries, prints(queries, "query")):
        match = index.best(str(path), query)
        if match is not None:
            matches.append(asdict(match))
    return {"queries": len(queries), "references": len(references),
            "method": f"Haitsma-Kalker sub-fingerprints ({BANDS} bands {LOW_HZ:.0f}-"
                      f"{HIGH_HZ:.0f} Hz, {HOP * 1000 // SAMPLE_RATE} ms hop); a match is "
                      f"BER < {MATCH_BER} over >= 1 s",
            "matches": matches}


def write_report(report: dict[str, object], path: Path) -> Path:
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return path

"""Prepare steps: transcode audio libsndfile cannot read (G.722, raw GSM) to 16 kHz mono FLAC.

A source's ``prepare(root)`` writes under ``<root>/desta-prepared/<source>/``, mirroring the
package paths, once: a file already converted is skipped, and each file is written under a
temporary name and renamed, so a killed prepare never leaves a half-written FLAC behind.
Decoding uses PyAV (FFmpeg bundled in the wheel), so no system ffmpeg or sox is needed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from desta.data.recipes import DatasetError

__all__ = ["PREPARED_DIR", "SAMPLE_RATE", "TranscodeJob", "is_empty_source", "missing_prepared", "prepared_dir",
           "transcode_all", "transcode_to_flac", "write_atomic"]

logger = logging.getLogger(__name__)

PREPARED_DIR = "desta-prepared"
SAMPLE_RATE = 16_000


def prepared_dir(root: Path, source: str) -> Path:
    """``<root>/desta-prepared/<source>``: where `source`'s prepare step writes."""
    return root / PREPARED_DIR / source


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` under a temporary name, then rename it: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def missing_prepared(root: Path, source: str) -> DatasetError:
    """The error a recipe raises when its prepared FLAC files are not there."""
    return DatasetError(
        f"{source}: converted audio not found under {str(prepared_dir(root, source))!r}; run "
        f"`desta data fetch --root {root} --source {source}` (prepare step) first"
    )


def transcode_to_flac(src: Path, dst: Path, *, input_format: str | None = None) -> float:
    """Decode `src` with PyAV and write it to `dst` as 16 kHz mono 16-bit FLAC; returns its
    duration in seconds.

    `input_format` names the FFmpeg demuxer for headerless files (``"g722"``, ``"gsm"``).
    Writes ``dst`` atomically (temporary name, then rename). Raises DatasetError naming
    `src` when it cannot be decoded or holds no audio.
    """
    import av  # imported here: only prepare steps need it

    try:
        with av.open(str(src), format=input_format) as container:
            if not container.streams.audio:
                raise DatasetError(f"{src}: no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            chunks = [out.to_ndarray() for frame in container.decode(stream)
                      for out in resampler.resample(frame)]
            chunks += [out.to_ndarray() for out in resampler.resample(None)]
    except av.FFmpegError as exc:
        raise DatasetError(f"{src}: cannot decode as {input_format or 'audio'}: {exc}") from None
    samples = np.concatenate(chunks, axis=1)[0] if chunks else np.zeros(0, np.int16)
    if samples.size == 0:
        raise DatasetError(f"{src}: decodes to no audio samples")
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_name(f".{dst.name}.partial")
    try:
        sf.write(partial, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        os.replace(partial, dst)
    finally:
        partial.unlink(missing_ok=True)
    return samples.size / SAMPLE_RATE


def is_empty_source(path: Path) -> bool:
    """Whether a package's audio file is zero bytes long (nothing to convert or read)."""
    try:
        return path.stat().st_size == 0
    except FileNotFoundError:
        return False


@dataclass(frozen=True)
class TranscodeJob:
    src: Path
    dst: Path
    input_format: str | None = None


def transcode_all(jobs: Iterable[TranscodeJob], *, desc: str, progress: bool = True) -> int:
    """Run `jobs`, skipping those whose FLAC exists or whose source is empty; returns how
    many were converted.

    A file that fails is logged and the others still run; the failures are then raised
    together as one DatasetError naming them, so nothing is lost silently.
    """
    from tqdm import tqdm

    jobs = list(jobs)
    todo = [job for job in jobs if not job.dst.is_file()]
    # A zero-byte file in the package (asterisk-core-sounds-ru ships one) has nothing to
    # convert; recipes skip it the same way (see `is_empty_source`).
    empty = [job for job in todo if is_empty_source(job.src)]
    if empty:
        logger.warning("%s: %d source file(s) are empty and were not converted (first: %s)",
                       desc, len(empty), empty[0].src)
        todo = [job for job in todo if not is_empty_source(job.src)]
    failures: list[str] = []
    converted = 0
    for job in tqdm(todo, desc=desc, unit="file", disable=not progress):
        try:
            transcode_to_flac(job.src, job.dst, input_format=job.input_format)
            converted += 1
        except (DatasetError, OSError, sf.LibsndfileError) as exc:
            logger.error("%s: %s", desc, exc)
            failures.append(str(job.src))
    logger.info("%s: %d file(s) converted, %d already converted, %d empty source(s) skipped",
                desc, converted, len(jobs) - len(todo) - len(empty), len(empty))
    if failures:
        raise DatasetError(
            f"{desc}: {len(failures)} of {len(todo)} file(s) could not be converted "
            f"(first: {', '.join(failures[:3])}); the others were converted"
        )
    return converted

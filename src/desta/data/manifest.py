"""Recipe -> manifest: run a dataset recipe, complete each record from its audio, write JSONL.

Recipes read metadata only; they may leave ``duration`` unknown and have no acoustic labels.
:func:`build_manifest` opens every clip once to

* measure ``duration`` when the recipe left it as None (from the file header, no decoding);
* fill the acoustic attributes a speech clip lacks (Pitch, Volume, Speaking speed, measured by
  :func:`desta.data.attributes.acoustic_attributes`); labels the dataset gives are kept;

and writes :class:`~desta.data.seed.ClipRecord` lines whose ``audio`` is the path *relative to
the data root* (POSIX separators), so the manifest and the generated rows move with the data.
A clip that cannot be read is never dropped silently: it goes to ``<out>.failures.jsonl`` with
its error, and is logged.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desta.data.seed import ClipRecord, Segment
from desta.errors import DestaError

logger = logging.getLogger(__name__)

# Attributes measured for speech clips when the dataset has no label of that name.
ACOUSTIC_NAMES = ("Pitch", "Volume", "Speaking speed")


@dataclass(frozen=True)
class ManifestReport:
    """What :func:`build_manifest` wrote."""

    manifest: Path
    written: int
    failed: int
    failures: Path | None


def manifest_audio_root(manifest: str | os.PathLike[str]) -> Path:
    """Where a manifest's audio paths start: the `data_root` of the `corpus.json` beside it
    (`desta data real-corpus` writes its manifests inside their data root), else the
    manifest's own folder."""
    folder = Path(manifest).parent
    info = folder / "corpus.json"
    if info.is_file():
        root = json.loads(info.read_text()).get("data_root")
        if root:
            return (folder / root).resolve()
    return folder


def relative_audio(audio: str | os.PathLike[str], root: Path) -> str:
    """``audio`` as a POSIX path relative to ``root``; a relative path is taken as under root."""
    path = Path(audio)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.relative_to(root.absolute()).as_posix()
    except ValueError:
        raise DestaError(f"audio file {path} is outside the data root {root}; "
                         "recipes must only yield clips under the root") from None


def _segments(raw: Any) -> list[Segment] | None:
    if raw is None:
        return None
    return [s if isinstance(s, Segment) else Segment(**s) for s in raw]


def complete_record(
    raw: Mapping[str, Any],
    root: Path,
    *,
    acoustics: bool = True,
    pitch: bool = True,
) -> ClipRecord:
    """Turn one recipe dict into a finished ClipRecord (duration measured, attributes filled;
    `pitch=False` skips the slow pYIN Pitch, keeping Volume and Speaking speed)."""
    from desta.audio.io import audio_duration, load_audio
    from desta.data.attributes import acoustic_attributes

    audio_path = Path(raw["audio"])
    if not audio_path.is_absolute():
        audio_path = root / audio_path
    duration = raw.get("duration")
    if duration is None:
        duration = audio_duration(audio_path)
    attributes = dict(raw.get("attributes") or {})
    missing = [n for n in ACOUSTIC_NAMES if n not in attributes]
    if acoustics and raw["domain"] == "speech" and missing:
        wave = load_audio(audio_path)
        measured = acoustic_attributes(wave, raw.get("transcript"), pitch=pitch)
        for name in missing:
            if name in measured:
                attributes[name] = measured[name]
    return ClipRecord(
        id=raw["id"],
        audio=relative_audio(raw["audio"], root),
        dataset=raw["dataset"],
        domain=raw["domain"],
        duration=float(duration),
        transcript=raw.get("transcript"),
        attributes=attributes,
        caption=raw.get("caption"),
        segments=_segments(raw.get("segments")),
        meta=dict(raw.get("meta") or {}),
    )


def write_records(
    records: Iterable[Mapping[str, Any]],
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    acoustics: bool = True,
    progress: bool = True,
) -> ManifestReport:
    """Complete and write recipe records; failures go to ``<out stem>.failures.jsonl``."""
    from tqdm import tqdm

    root = Path(root)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    failures_path = out.with_name(out.stem + ".failures.jsonl")
    written = failed = 0
    with out.open("w", encoding="utf-8") as fh, failures_path.open("w", encoding="utf-8") as ff:
        for raw in tqdm(records, desc="manifest", unit="clip", disable=not progress):
            try:
                record = complete_record(raw, root, acoustics=acoustics)
            except DestaError as err:
                failed += 1
                logger.warning("clip %s: %s", raw.get("id"), err)
                ff.write(json.dumps({"id": raw.get("id"), "audio": str(raw.get("audio")),
                                     "error": f"{type(err).__name__}: {err}"},
                                    ensure_ascii=False) + "\n")
                continue
            fh.write(record.to_json() + "\n")
            written += 1
    if not failed:
        failures_path.unlink()
    else:
        logger.warning("%d clip(s) could not be read; see %s", failed, failures_path)
    return ManifestReport(out, written, failed, failures_path if failed else None)


def build_manifest(
    recipe: str,
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    split: str | None = None,
    limit: int | None = None,
    acoustics: bool = True,
    progress: bool = True,
    **options: Any,
) -> ManifestReport:
    """Run the recipe registered as ``recipe`` on ``root`` and write the finished manifest."""
    from desta.data.recipes import get_recipe

    records = get_recipe(recipe)(root, split=split, limit=limit, **options)
    return write_records(records, root, out, acoustics=acoustics, progress=progress)

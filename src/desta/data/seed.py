"""Clip manifest records and the text *seed description* the backbone LLM answers from.

A manifest is a JSONL file with one :class:`ClipRecord` per line: where the clip is, which
dataset and domain it comes from, and the metadata we know about it (transcript, attributes,
caption, per-speaker segments). :func:`seed_description` turns one record into the text the
backbone reads in place of the audio, in the DeSTA format::

    [00:00-00:02] Excuse me? (Emotion: Neutral, Gender: Female, Pitch: Very high, Volume: Low, Speaking speed: Very slow, Duration: 2s)
    [00:00-00:05] (Audio category: door_wood_knock, Duration: 5.0)
    [00:00-00:10] (Plastic crinkling as a man speaks and people talk)

Formatting rules (documented in docs/data/seed-descriptions.md):

* Timestamps are ``MM:SS``; when a span ends at or after one hour both ends are ``HH:MM:SS``.
  Times are rounded to the nearest whole second, halves up, and a span is never shown shorter
  than one second (a 0.4 s clip reads ``[00:00-00:01]``), so no line claims an empty span.
* Attributes keep the order of ``ClipRecord.attributes``; ``Duration`` is appended last from
  ``ClipRecord.duration`` in the record's ``duration_style`` (default: the dataset's style in
  ``DATASET_DURATION_STYLES``, else ``"seconds"``) unless the attributes already name a
  ``Duration`` (then that value is used, in its place).
* Multi-speaker clips give one line per segment: ``[start-end] Speaker: words (attributes)``,
  preceded by a whole-clip line when the record has clip-level attributes or a Duration.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from desta.errors import ConfigError

Domain = Literal["speech", "sound", "music"]
DurationStyle = Literal["seconds", "decimal", "none"]
AttributeValue = str | int | float

DOMAINS: tuple[str, ...] = get_args(Domain)
DURATION_STYLES: tuple[str, ...] = get_args(DurationStyle)
HOUR_S = 3600

# How the released DeSTA data shows Duration for datasets that differ from "4s". Keys are
# dataset names lower-cased with everything but letters and digits removed ("ESC-50" -> "esc50").
# Captioned sets show only the caption; NSynth notes are all 4 s and show no Duration.
DATASET_DURATION_STYLES: dict[str, DurationStyle] = {
    "esc50": "decimal",
    "nsynth": "none",
    "audiocaps": "none",
    "clotho": "none",
}


class ManifestError(ConfigError):
    """A manifest record (clip metadata) is malformed: the message names the record and field."""


@dataclass(frozen=True)
class Segment:
    """One speaker turn of a multi-speaker clip; times are seconds from the clip start."""

    start: float
    end: float
    speaker: str
    transcript: str | None = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form; optional fields are omitted when empty."""
        out: dict[str, Any] = {"start": self.start, "end": self.end, "speaker": self.speaker}
        if self.transcript is not None:
            out["transcript"] = self.transcript
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        return out


@dataclass(frozen=True)
class ClipRecord:
    """One line of a data manifest: a clip and everything known about it.

    ``attributes`` is ordered (name -> value) and rendered in that order; values are strings
    as they should read (``"Very high"``, ``"022"``) or plain numbers. ``duration`` is the clip
    length in seconds; it may be None while a manifest is being built (a recipe that has not
    opened the audio yet) but a seed description needs it. ``duration_style`` says how the
    seed description shows it: ``"seconds"`` (``Duration: 4s``), ``"decimal"``
    (``Duration: 5.0``), ``"none"`` (not shown) or None (the dataset's default, see
    ``DATASET_DURATION_STYLES``).
    ``meta`` holds free-form provenance (split, licence, source file) and is never rendered.
    """

    id: str
    audio: str
    dataset: str
    domain: Domain
    duration: float | None
    transcript: str | None = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    caption: str | None = None
    segments: tuple[Segment, ...] | None = None
    duration_style: DurationStyle | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.segments, list):  # accept a list, store a tuple (immutable record)
            object.__setattr__(self, "segments", tuple(self.segments))
        if isinstance(self.audio, os.PathLike):  # recipes hand over Path objects
            object.__setattr__(self, "audio", os.fspath(self.audio))
        _validate_record(self)

    # ---- JSON (de)serialisation -------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (round-trips through :meth:`from_dict`); empty optionals omitted."""
        out: dict[str, Any] = {
            "id": self.id,
            "audio": self.audio,
            "dataset": self.dataset,
            "domain": self.domain,
            "duration": self.duration,
        }
        if self.transcript is not None:
            out["transcript"] = self.transcript
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        if self.caption is not None:
            out["caption"] = self.caption
        if self.segments is not None:
            out["segments"] = [s.to_dict() for s in self.segments]
        if self.duration_style is not None:
            out["duration_style"] = self.duration_style
        if self.meta:
            out["meta"] = dict(self.meta)
        return out

    def to_json(self) -> str:
        """One JSON line (UTF-8 text kept readable, key order stable)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClipRecord:
        """Build a record from its JSON form; unknown or missing keys raise ManifestError."""
        if not isinstance(data, Mapping):
            raise ManifestError(f"manifest record must be a JSON object, got {type(data).__name__}")
        rid = str(data.get("id", "<missing id>"))
        known = {"id", "audio", "dataset", "domain", "duration", "transcript", "attributes",
                 "caption", "segments", "duration_style", "meta"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ManifestError(
                f"record {rid!r}: unknown field(s) {unknown}; allowed fields are {sorted(known)}"
            )
        missing = [k for k in ("id", "audio", "dataset", "domain", "duration") if k not in data]
        if missing:
            raise ManifestError(f"record {rid!r}: missing required field(s) {missing}")
        segments = data.get("segments")
        if segments is not None:
            if not isinstance(segments, list):
                raise ManifestError(f"record {rid!r}: field 'segments' must be a list of objects")
            segments = tuple(_segment_from_dict(rid, i, s) for i, s in enumerate(segments))
        return cls(
            id=data["id"],
            audio=data["audio"],
            dataset=data["dataset"],
            domain=data["domain"],
            duration=data["duration"],
            transcript=data.get("transcript"),
            attributes=_as_dict(rid, "attributes", data.get("attributes", {})),
            caption=data.get("caption"),
            segments=segments,
            duration_style=data.get("duration_style"),
            meta=_as_dict(rid, "meta", data.get("meta", {})),
        )

    @classmethod
    def from_json(cls, line: str) -> ClipRecord:
        """Parse one JSON line into a record."""
        try:
            data = json.loads(line)
        except (ValueError, RecursionError) as exc:  # also over-long integers, deep nesting
            raise ManifestError(f"manifest line is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def _as_dict(rid: str, name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ManifestError(f"record {rid!r}: field {name!r} must be a JSON object")
    return dict(value)


def _segment_from_dict(rid: str, index: int, data: Any) -> Segment:
    where = f"record {rid!r}: segments[{index}]"
    if not isinstance(data, Mapping):
        raise ManifestError(f"{where} must be a JSON object")
    known = {"start", "end", "speaker", "transcript", "attributes"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ManifestError(f"{where}: unknown field(s) {unknown}; allowed {sorted(known)}")
    missing = [k for k in ("start", "end", "speaker") if k not in data]
    if missing:
        raise ManifestError(f"{where}: missing required field(s) {missing}")
    return Segment(
        start=data["start"],
        end=data["end"],
        speaker=data["speaker"],
        transcript=data.get("transcript"),
        attributes=_as_dict(rid, f"segments[{index}].attributes", data.get("attributes", {})),
    )


# ---- validation -----------------------------------------------------------------------


def _check_number(rid: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ManifestError(f"record {rid!r}: field {name!r} must be a finite number, got {value!r}")
    return float(value)


def _check_text(rid: str, name: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or (not optional and not value.strip()):
        kind = "a string or null" if optional else "a non-empty string"
        raise ManifestError(f"record {rid!r}: field {name!r} must be {kind}, got {value!r}")


def _check_attributes(rid: str, name: str, attributes: Any) -> None:
    if not isinstance(attributes, dict):
        raise ManifestError(f"record {rid!r}: field {name!r} must be a mapping of name -> value")
    for key, value in attributes.items():
        if not isinstance(key, str) or not key.strip():
            raise ManifestError(f"record {rid!r}: {name} has an empty or non-string name {key!r}")
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
        if not ok or (isinstance(value, float) and not math.isfinite(value)):
            raise ManifestError(
                f"record {rid!r}: {name}[{key!r}] must be a string or a finite number, "
                f"got {value!r}"
            )
        if isinstance(value, str) and not value.strip():
            raise ManifestError(f"record {rid!r}: {name}[{key!r}] is empty")


def _validate_record(rec: ClipRecord) -> None:
    if not isinstance(rec.id, str) or not rec.id.strip():
        raise ManifestError(f"record field 'id' must be a non-empty string, got {rec.id!r}")
    rid = rec.id
    _check_text(rid, "audio", rec.audio, optional=False)
    _check_text(rid, "dataset", rec.dataset, optional=False)
    if rec.domain not in DOMAINS:
        raise ManifestError(f"record {rid!r}: field 'domain' must be one of {DOMAINS}, got {rec.domain!r}")
    duration = None
    if rec.duration is not None:
        duration = _check_number(rid, "duration", rec.duration)
        if duration <= 0:
            raise ManifestError(
                f"record {rid!r}: field 'duration' must be > 0 seconds, got {duration}"
            )
    _check_text(rid, "transcript", rec.transcript, optional=True)
    _check_text(rid, "caption", rec.caption, optional=True)
    _check_attributes(rid, "attributes", rec.attributes)
    if rec.duration_style is not None and rec.duration_style not in DURATION_STYLES:
        raise ManifestError(
            f"record {rid!r}: field 'duration_style' must be one of {DURATION_STYLES}, "
            f"got {rec.duration_style!r}"
        )
    if not isinstance(rec.meta, dict):
        raise ManifestError(f"record {rid!r}: field 'meta' must be a mapping")
    if rec.segments is None:
        return
    if not isinstance(rec.segments, tuple | list) or not rec.segments:
        raise ManifestError(f"record {rid!r}: field 'segments' must be a non-empty list or null")
    # A little slack: segment ends from forced alignment often overshoot the file by a frame.
    slack = 0.05
    for i, seg in enumerate(rec.segments):
        name = f"segments[{i}]"
        if not isinstance(seg, Segment):
            raise ManifestError(f"record {rid!r}: {name} must be a Segment")
        start = _check_number(rid, f"{name}.start", seg.start)
        end = _check_number(rid, f"{name}.end", seg.end)
        limit = math.inf if duration is None else duration + slack
        if not 0 <= start < end <= limit:
            raise ManifestError(
                f"record {rid!r}: {name} needs 0 <= start < end <= duration ({duration}s), "
                f"got start={start}, end={end}"
            )
        _check_text(rid, f"{name}.speaker", seg.speaker, optional=False)
        _check_text(rid, f"{name}.transcript", seg.transcript, optional=True)
        _check_attributes(rid, f"{name}.attributes", seg.attributes)


# ---- manifest files -------------------------------------------------------------------


def iter_manifest(path: str | os.PathLike[str]) -> Iterator[tuple[int, ClipRecord]]:
    """Stream ``(line_number, record)`` from a JSONL manifest (1-based lines, blank lines
    skipped). Errors name the file and line: invalid UTF-8, bad JSON, a bad record, a
    duplicate id."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} does not exist or is not a file")
    seen: dict[str, int] = {}
    with path.open("rb") as fh:  # decoded per line, so a bad byte is reported with its line
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ManifestError(
                    f"{path}:{lineno}: not valid UTF-8 (byte {exc.object[exc.start]:#04x} at "
                    f"column {exc.start + 1}); re-save the manifest as UTF-8"
                ) from None
            if not line.strip():
                continue
            try:
                rec = ClipRecord.from_json(line)
            except ManifestError as exc:
                raise ManifestError(f"{path}:{lineno}: {exc}") from exc
            if rec.id in seen:
                raise ManifestError(
                    f"{path}:{lineno}: duplicate record id {rec.id!r} (first on line {seen[rec.id]})"
                )
            seen[rec.id] = lineno
            yield lineno, rec


def read_manifest(path: str | os.PathLike[str]) -> list[ClipRecord]:
    """Read a JSONL manifest; errors name the file and line. Duplicate ids are rejected."""
    return [rec for _, rec in iter_manifest(path)]


def write_manifest(path: str | os.PathLike[str], records: Iterable[ClipRecord]) -> int:
    """Write records as JSONL (one per line); returns how many were written."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(rec.to_json() + "\n")
            n += 1
    return n


# ---- seed descriptions ----------------------------------------------------------------


def _round_half_up(seconds: float) -> int:
    # Python's round() is banker's rounding (2.5 -> 2); a reader expects 2.5 s to show as 3.
    return int(math.floor(seconds + 0.5))


def _span_seconds(start: float, end: float) -> tuple[int, int]:
    """Rounded (start, end) whole seconds, the end at least one second after the start."""
    s = _round_half_up(start)
    return s, max(_round_half_up(end), s + 1)


def format_timestamp(seconds: int, *, with_hours: bool) -> str:
    """``MM:SS`` (or ``HH:MM:SS`` when ``with_hours``) for whole seconds."""
    hours, rest = divmod(int(seconds), HOUR_S)
    minutes, secs = divmod(rest, 60)
    if with_hours:
        return f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{hours * 60 + minutes:02d}:{secs:02d}"


def format_span(start: float, end: float) -> str:
    """``[MM:SS-MM:SS]`` for a span in seconds; both ends get hours when it ends at >= 1 h."""
    s, e = _span_seconds(start, end)
    hours = e >= HOUR_S
    return f"[{format_timestamp(s, with_hours=hours)}-{format_timestamp(e, with_hours=hours)}]"


def format_duration(seconds: float, style: DurationStyle = "seconds") -> str | None:
    """The Duration value: ``"4s"`` (whole seconds, as the span shows) or ``"5.0"``; None for "none"."""
    if style == "none":
        return None
    if style == "decimal":
        return f"{seconds:.1f}"
    s, e = _span_seconds(0.0, seconds)
    return f"{e - s}s"


def format_value(value: AttributeValue) -> str:
    """An attribute value as text: strings verbatim, floats with at most two decimals."""
    if isinstance(value, float):
        text = f"{value:.2f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    return str(value).strip()


def _attribute_group(attributes: Mapping[str, AttributeValue]) -> str | None:
    if not attributes:
        return None
    return "(" + ", ".join(f"{k}: {format_value(v)}" for k, v in attributes.items()) + ")"


def _line(span: str, *parts: str | None) -> str:
    return " ".join([span, *(p for p in parts if p)])


def duration_style_of(record: ClipRecord) -> DurationStyle:
    """The record's Duration style: its own, else its dataset's default, else "seconds"."""
    if record.duration_style is not None:
        return record.duration_style
    key = "".join(ch for ch in record.dataset.lower() if ch.isalnum())
    return DATASET_DURATION_STYLES.get(key, "seconds")


def _clip_attributes(record: ClipRecord, duration: float) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = dict(record.attributes)
    if "Duration" not in attrs:
        value = format_duration(duration, duration_style_of(record))
        if value is not None:
            attrs["Duration"] = value
    return attrs


def seed_description(record: ClipRecord) -> str:
    """The text the backbone LLM reads in place of the clip (one line, or one per segment).

    Speech: ``[start-end] transcript (Attr: value, ...)``; sound and music:
    ``[start-end] (Attr: value, ...)`` or ``[start-end] (caption)``. A record with both a
    caption and attributes gets two groups: ``(caption) (Attr: value, ...)``.
    """
    if record.duration is None:
        raise ManifestError(
            f"record {record.id!r}: field 'duration' is unknown (null); measure it from the "
            "audio file before writing seed descriptions"
        )
    span = format_span(0.0, record.duration)
    attrs = _attribute_group(_clip_attributes(record, record.duration))
    caption = f"({record.caption.strip()})" if record.caption and record.caption.strip() else None
    if record.segments is None:
        transcript = (record.transcript or "").strip() or None
        if record.domain != "speech" and transcript is not None:
            # Sound/music clips may carry lyrics or incidental speech: still worth telling.
            transcript = f'"{transcript}"'
        line = _line(span, transcript, caption, attrs)
        if line == span:
            raise ManifestError(
                f"record {record.id!r}: nothing to describe; give a transcript, caption, "
                "attributes or a duration_style other than 'none'"
            )
        return line
    lines = []
    if caption or attrs:
        lines.append(_line(span, caption, attrs))
    for seg in sorted(record.segments, key=lambda s: (s.start, s.end)):
        words = (seg.transcript or "").strip()
        speaker = f"{seg.speaker.strip()}:"
        lines.append(
            _line(format_span(seg.start, seg.end), speaker, words or None,
                  _attribute_group(seg.attributes))
        )
    return "\n".join(lines)

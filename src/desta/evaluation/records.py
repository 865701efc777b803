"""Benchmark items, the evaluation error types, and the file helpers every benchmark reader uses.

A reader (in each benchmark's own module) turns the benchmark's files into `BenchmarkItem`s:
what the model is asked (audio path(s) + prompt text), the reference answer, and the row's
other fields as metadata. This module imports nothing else of `desta.evaluation`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desta.errors import DestaError

logger = logging.getLogger(__name__)


class BenchmarkDataError(DestaError):
    """A benchmark or predictions file is malformed: bad JSON, a missing field, a bad value."""


class BenchmarkFileNotFoundError(BenchmarkDataError, FileNotFoundError):
    """A benchmark file or one of its audio clips does not exist."""


@dataclass
class BenchmarkItem:
    """One question of a benchmark, ready to be sent to a model.

    `prompt` is the instruction text the model gets (without any audio locator);
    `reference` is the gold answer (None where the benchmark has none, e.g. Speech-IFEval CoT);
    `metadata` keeps the row's other fields (task, track, instruction ids...).
    """

    benchmark: str
    id: str
    audio_paths: list[Path]
    prompt: str
    reference: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# file helpers shared by the readers and scorers
# ---------------------------------------------------------------------------------------------


def require_file(path: Path, what: str) -> Path:
    """`path` if it is a file, else a `BenchmarkFileNotFoundError` naming `what` and the path."""
    if not path.is_file():
        raise BenchmarkFileNotFoundError(
            f"{what} not found: {path}. Check the path (it must be a file, not a folder)."
        )
    return path


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Load a JSON document, raising `BenchmarkDataError` with the line/column when it is bad."""
    path = require_file(Path(path), what)
    return parse_json(path.read_text(encoding="utf-8"), path, what)


def parse_json(text: str, path: Path, what: str = "JSON file") -> Any:
    """`text` (the content of `path`) as JSON, or a `BenchmarkDataError` naming the file and
    the line/column where it is bad."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise BenchmarkDataError(
            f"{what} {path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from None


def read_jsonl(path: str | Path, what: str = "JSONL file") -> list[tuple[int, dict[str, Any]]]:
    """Load a JSONL file as `(line_number, object)` pairs (1-based; blank lines skipped)."""
    path = require_file(Path(path), what)
    rows: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise BenchmarkDataError(
                    f"{what} {path}: line {line_no} is not valid JSON ({err.msg}, column {err.colno})"
                ) from None
            if not isinstance(obj, dict):
                raise BenchmarkDataError(
                    f"{what} {path}: line {line_no} must be a JSON object, got {type(obj).__name__}"
                )
            rows.append((line_no, obj))
    return rows


def require_fields(row: Mapping[str, Any], fields: Iterable[str], where: str) -> None:
    """Raise `BenchmarkDataError` naming every field of `fields` that `row` lacks."""
    missing = [name for name in fields if name not in row]
    if missing:
        raise BenchmarkDataError(
            f"{where} lacks field(s) {', '.join(repr(m) for m in missing)}; "
            f"it has {sorted(row)}"
        )


def require_audio(items: list[BenchmarkItem], source: str | Path,
                hint: str = "Download the benchmark audio or pass the right audio root "
                            "(or check_audio=False to read the questions only).",
                ) -> list[BenchmarkItem]:
    """Raise naming how many of the items' audio files are missing (and the first one)."""
    missing = [p for item in items for p in item.audio_paths if not p.is_file()]
    if missing:
        raise BenchmarkFileNotFoundError(
            f"{len(missing)} audio file(s) named in {source} do not exist, first: "
            f"{missing[0]}. {hint}"
        )
    return items

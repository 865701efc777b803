"""Reading dataset metadata files row by row, with errors that name the file and line.

Also owns the missing-audio policy shared by every recipe (see :class:`AudioCheck`).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from pathlib import Path

from desta.data.recipes import DatasetError
from desta.data.recipes.paths import require_file

__all__ = ["AudioCheck", "iter_lines", "iter_table", "malformed"]

logger = logging.getLogger(__name__)

# How many missing clips are named one by one in the log before only the count is kept.
_MISSING_NAMED = 5


def malformed(path: Path, line: int, problem: str) -> DatasetError:
    """A DatasetError for a bad row: ``file:line: problem``."""
    return DatasetError(f"{path}:{line}: malformed row: {problem}")


def iter_lines(path: Path, dataset: str, what: str, *, encoding: str = "utf-8"
               ) -> Iterator[tuple[int, str]]:
    """Stream ``(line_number, line)`` from a text file, line endings stripped (1-based lines).

    Inside a running recipe the file must lie in its data root (``paths.require_file``)."""
    require_file(path, dataset, what)
    number = 0
    try:
        with path.open(encoding=encoding, newline=None) as handle:
            for number, line in enumerate(handle, start=1):
                yield number, line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}:{number + 1}: not valid {encoding} text ({exc.reason})"
                           ) from None


def iter_table(
    path: Path,
    dataset: str,
    what: str,
    *,
    required: tuple[str, ...],
    delimiter: str = ",",
    quoting: int = csv.QUOTE_MINIMAL,
    encoding: str = "utf-8",
) -> Iterator[tuple[int, dict[str, str]]]:
    """Stream ``(line_number, row)`` from a CSV/TSV file with a header row.

    Never reads the whole file. Raises DatasetError naming the file when a `required` column is
    missing from the header, and naming file and line when a row's field count differs from
    the header's (a truncated or mis-quoted row). Inside a running recipe the file must lie in
    its data root (``paths.require_file``), so nothing outside it is read or quoted.
    """
    require_file(path, dataset, what)
    line = 1
    try:
        # utf-8-sig: some metadata CSVs are saved by spreadsheet tools with a BOM.
        with path.open(encoding="utf-8-sig" if encoding == "utf-8" else encoding,
                       newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
            header = next(reader, None)
            if header is None:
                raise DatasetError(f"{path}: {what} is empty; expected a header row")
            header = [name.strip() for name in header]
            missing = [name for name in required if name not in header]
            if missing:
                raise DatasetError(
                    f"{path}:1: {what} lacks column(s) {', '.join(missing)}; header has "
                    f"{', '.join(header)}"
                )
            for row in reader:
                line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line, e.g. at the end of the file
                if len(row) != len(header):
                    raise malformed(path, line, f"{len(row)} fields where the header has "
                                                f"{len(header)}: {row!r:.200}")
                yield line, dict(zip(header, row, strict=True))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: near line {line + 1}: not valid {encoding} text "
                           f"({exc.reason})") from None
    except csv.Error as exc:
        raise malformed(path, line + 1, str(exc)) from None


class AudioCheck:
    """Applies the missing-audio policy: a row whose audio file is absent is skipped and counted
    (``"skip"``, the default) or raises (``"error"``).

    Skips are never silent: the first few missing paths are logged by name, and a summary
    warning with the count is logged when the recipe finishes or is closed early. If every
    row's audio is missing the recipe raises, since that means the audio folder is wrong.
    """

    def __init__(self, dataset: str, policy: str = "skip") -> None:
        self.dataset = dataset
        self.policy = policy
        self.found = 0
        self.missing = 0

    def exists(self, audio: Path, source: str) -> bool:
        """True if `audio` is a file; otherwise count/log it (skip) or raise (error)."""
        if audio.is_file():
            self.found += 1
            return True
        if self.policy == "error":
            raise DatasetError(
                f"{self.dataset}: audio file {str(audio)!r} listed at {source} does not exist; "
                f"download the audio, or pass missing_audio='skip' to skip such rows"
            )
        self.missing += 1
        if self.missing <= _MISSING_NAMED:
            logger.warning("%s: skipping %s (listed at %s): audio file not found",
                           self.dataset, audio, source)
        return False

    def finish(self) -> None:
        """Call after the last row: raises if rows existed but none had its audio."""
        if self.missing and not self.found:
            raise DatasetError(
                f"{self.dataset}: none of the {self.missing} listed audio files exist; check "
                f"the audio folder (see docs/data/recipes.md for the expected layout)"
            )

    def report(self) -> None:
        """Log the skip count; call from a ``finally`` so early stops report too."""
        if self.missing:
            logger.warning("%s: skipped %d row(s) whose audio file is missing (%d found)",
                           self.dataset, self.missing, self.found)

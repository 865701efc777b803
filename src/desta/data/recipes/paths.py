"""Safe path resolution for dataset recipes.

Metadata files name audio by relative path. A path read from a file (or found by listing a
folder) must stay inside the data root: no absolute paths, no ``..`` parts, and no symlink
that leads outside the root. Anything else is a DatasetError naming the offending path and
the metadata line it came from.

The metadata files themselves get the same check: while a registered recipe runs (see
:func:`recipe_root`), :func:`require_file` (and so ``iter_lines`` / ``iter_table``) refuses a
file whose real location is outside the recipe's data root, before reading a byte of it.
A symlink loop is never followed: :func:`list_dir` skips it with a warning, and
:func:`resolve_under` names it in a DatasetError.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path, PurePosixPath, PureWindowsPath

from desta.data.recipes import DatasetError

__all__ = [
    "find_root", "list_dir", "pick_audio_dir", "present_splits", "recipe_root", "require_dir",
    "require_file", "resolve_under",
]

logger = logging.getLogger(__name__)

# The data root of the recipe running in this context (set by the registry around each step of
# a recipe's generator), so that every metadata file a recipe opens is checked against it.
_RECIPE_ROOT: ContextVar[Path | None] = ContextVar("desta_recipe_root", default=None)


@contextlib.contextmanager
def recipe_root(root: Path) -> Iterator[None]:
    """Within this block, files checked by :func:`require_file` must lie under `root`."""
    token = _RECIPE_ROOT.set(root)
    try:
        yield
    finally:
        _RECIPE_ROOT.reset(token)


def _real(path: Path, shown: str) -> Path:
    """`path` with every symlink resolved; a DatasetError for a symlink loop."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:  # 3.11 raises RuntimeError for a loop, 3.13 OSError
        raise DatasetError(f"path {shown} cannot be resolved ({exc}); a symlink loop or "
                           "broken link in the dataset folder") from None


def resolve_under(root: Path, *parts: str | os.PathLike[str], source: str | None = None
                  ) -> Path:
    """Join `parts` onto `root`, refusing any result that escapes `root`.

    Each part is a relative path (a folder name, or a file name read from metadata). Returns
    ``root / parts...`` (not symlink-resolved, so names stay readable). Raises DatasetError
    for an absolute part, a ``..`` part, or a symlink whose target lies outside `root`.
    `source` ("file:line") is named in the error so the bad row can be found.
    """
    where = f" (from {source})" if source else ""
    texts = [os.fspath(part) for part in parts]
    text = "/".join(texts)
    for part in texts:
        if not part or "\x00" in part:
            raise DatasetError(f"empty or invalid path part {part!r} in {text!r}{where}")
        posix, windows = PurePosixPath(part), PureWindowsPath(part)
        if posix.is_absolute() or windows.is_absolute() or windows.drive:
            raise DatasetError(
                f"path {part!r}{where} is absolute; dataset metadata must name audio relative "
                f"to the data root {str(root)!r}"
            )
        if ".." in posix.parts or ".." in windows.parts:
            raise DatasetError(
                f"path {part!r}{where} contains '..' and could leave the data root "
                f"{str(root)!r}; refusing it"
            )
    path = root.joinpath(*texts)
    real_root = _real(root, repr(str(root)))
    real = _real(path, f"{text!r}{where}")
    if real != real_root and not real.is_relative_to(real_root):
        raise DatasetError(
            f"path {text!r}{where} is a symlink to {str(real)!r}, outside the data root "
            f"{str(real_root)!r}; copy the file into the dataset or point root at its real folder"
        )
    return path


def require_file(path: Path, dataset: str, what: str) -> Path:
    """Return `path` if it is a file, else a DatasetError saying which metadata file is missing.

    Inside a running recipe (:func:`recipe_root`), a file whose real location (symlinks
    resolved) is outside the data root is refused too, without being read, so that a symlink
    in a downloaded dataset cannot make a recipe read, or quote in an error, another file.
    """
    if not path.is_file():
        raise DatasetError(
            f"{dataset}: {what} not found at {str(path)!r}; is the data root the folder the "
            f"dataset was extracted to (see docs/data/recipes.md for the expected layout)?"
        )
    root = _RECIPE_ROOT.get()
    if root is not None:
        real_root = _real(root, repr(str(root)))
        real = _real(path, repr(str(path)))
        if not real.is_relative_to(real_root):
            raise DatasetError(
                f"{dataset}: {what} {str(path)!r} is a symlink to {str(real)!r}, outside the "
                f"data root {str(real_root)!r}; refusing to read it. Copy the file into the "
                f"dataset folder or point the data root at its real folder"
            )
    return path


def require_dir(path: Path, dataset: str, what: str) -> Path:
    """Return `path` if it is a directory, else a DatasetError naming the missing folder."""
    if not path.is_dir():
        raise DatasetError(
            f"{dataset}: {what} folder not found at {str(path)!r}; is the data root the folder "
            f"the dataset was extracted to (see docs/data/recipes.md for the expected layout)?"
        )
    return path


def find_root(root: Path, markers: tuple[str, ...], wrappers: tuple[str, ...]) -> Path:
    """The dataset folder holding one of `markers`: `root` itself or one of its `wrappers`.

    Archives often extract into a named folder (``LibriSpeech/``, ``Data/``); accepting the
    parent spares users guessing which level to pass. Falls back to `root`, so the caller's
    own "not found" error names the path it expected.
    """
    for candidate in (root, *(resolve_under(root, wrapper) for wrapper in wrappers)):
        if any((candidate / marker).exists() for marker in markers):
            return candidate
    return root


def list_dir(folder: Path, *, dirs: bool | None = None, suffixes: tuple[str, ...] = ()
             ) -> Iterator[os.DirEntry[str]]:
    """Entries of `folder` sorted by name, without hidden ones (``.DS_Store``, ``._x`` forks).

    `dirs` True/False keeps only folders/files; `suffixes` keeps files with those endings.
    Sorting makes every recipe's output order reproducible across file systems.
    """
    with os.scandir(folder) as it:
        entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    for entry in entries:
        try:
            is_dir = entry.is_dir()  # follows symlinks: a loop raises here
        except OSError as exc:
            logger.warning("skipping %s: %s (a symlink loop or broken link)", entry.path,
                           exc.strerror or exc)
            continue
        if dirs is not None and is_dir != dirs:
            continue
        if suffixes and not entry.name.lower().endswith(suffixes):
            continue
        yield entry


def present_splits(root: Path, dataset: str, split: str | None, known: tuple[str, ...],
                   folder: str = "{split}") -> list[tuple[str, Path]]:
    """``(split, folder)`` pairs to read: the asked split (its folder must exist), or with
    ``split=None`` every known split whose folder exists (at least one must).

    `folder` formats the split name into its folder path relative to `root`.
    """
    if split is not None:
        path = resolve_under(root, folder.format(split=split))
        return [(split, require_dir(path, dataset, f"split {split!r}"))]
    found = [(name, resolve_under(root, folder.format(split=name))) for name in known]
    found = [(name, path) for name, path in found if path.is_dir()]
    if not found:
        expected = ", ".join(folder.format(split=name) for name in known)
        raise DatasetError(
            f"{dataset}: no split folder found under {str(root)!r}; expected one of: {expected}"
        )
    return found


def pick_audio_dir(root: Path, candidates: list[str], dataset: str, split: str,
                   audio_dir: str | os.PathLike[str] | None) -> Path:
    """The user's `audio_dir` (relative to `root`, or absolute), else the first existing
    candidate folder under `root`."""
    if audio_dir is not None:
        path = Path(audio_dir).expanduser()
        path = path if path.is_absolute() else resolve_under(root, path)
        if not path.is_dir():
            raise DatasetError(f"{dataset}: audio_dir {str(path)!r} is not a directory")
        return path
    for candidate in candidates:
        path = resolve_under(root, candidate)
        if path.is_dir():
            return path
    raise DatasetError(
        f"{dataset}: no audio folder for split {split!r} under {str(root)!r}; looked for "
        f"{', '.join(candidates)}. Pass audio_dir= to name the folder holding the clips."
    )

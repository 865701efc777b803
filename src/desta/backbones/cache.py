"""The desta cache: converted backbones are built once, atomically, and reused.

A build writes into a private temporary directory next to its final place, marks it complete,
then renames it into place. A file lock serialises concurrent first uses, so a second process
waits and then finds the finished directory instead of building it again. A directory without
the completion marker is never returned.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from desta.errors import BackboneNotFoundError, DestaError

logger = logging.getLogger(__name__)

COMPLETE_MARKER = ".desta-complete"
"""File written last inside a built directory; its presence means the build finished."""

_LOCK_TIMEOUT_S = 3600.0  # a conversion takes seconds to a minute; an hour means a stuck holder


def cache_root() -> Path:
    """Return the desta cache directory: `$DESTA_CACHE`, else `~/.cache/desta`."""
    env = os.environ.get("DESTA_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "desta"


def is_complete(path: Path) -> bool:
    """Whether `path` is a finished cache entry (it holds the completion marker)."""
    return (path / COMPLETE_MARKER).is_file()


def build_cached(
    name: str,
    version: str,
    build: Callable[[Path], None],
    *,
    root: Path | None = None,
) -> Path:
    """Return `<root>/<name>-<version>`, calling `build(tmp_dir)` to create it if needed.

    `build` must fill the empty directory it is given; it runs at most once per entry even when
    several processes ask at the same time. `version` names the converter: bumping it makes old
    entries unused, so a converter fix never serves a stale artefact. If `build` raises, nothing
    is left behind and the error propagates.
    """
    root = cache_root() if root is None else Path(root)
    entry = f"{name}-{version}"
    final = root / entry
    if is_complete(final):
        return final

    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / f".{entry}.lock"), timeout=_LOCK_TIMEOUT_S)
    try:
        with lock:
            if is_complete(final):  # another process built it while we waited
                return final
            _remove_leftovers(root, entry, final)
            tmp = Path(tempfile.mkdtemp(prefix=f".{entry}.tmp-", dir=root))
            tmp.chmod(0o755)  # mkdtemp makes it owner-only; a shared cache must be readable
            try:
                logger.info("building %s into the desta cache (%s)", entry, root)
                start = time.perf_counter()
                build(tmp)
                (tmp / COMPLETE_MARKER).write_text(f"{entry}\n", encoding="utf-8")
                os.replace(tmp, final)  # atomic on one file system: readers see all or nothing
                logger.info("built %s in %.1f s", entry, time.perf_counter() - start)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except Timeout as err:
        raise DestaError(
            f"waited {_LOCK_TIMEOUT_S:.0f} s for the lock {lock.lock_file} while another "
            f"process builds {entry}; if no desta process is running, delete that lock file"
        ) from err
    return final


def _remove_leftovers(root: Path, entry: str, final: Path) -> None:
    """Delete debris of interrupted builds of `entry` (we hold the lock, so none is live)."""
    for stale in root.glob(f".{entry}.tmp-*"):
        logger.warning("removing an interrupted build: %s", stale)
        shutil.rmtree(stale, ignore_errors=True)
    if final.exists():  # no marker: not ours to trust (e.g. an older copy tool's partial dir)
        logger.warning("removing an incomplete cache entry: %s", final)
        shutil.rmtree(final)


def package_dir(package: str, needed_by: str, install_hint: str) -> Path:
    """The folder of an installed data package (never imported: some packages' ``__init__``
    needs tools we do not), or BackboneNotFoundError saying that `needed_by` needs it and
    how to install it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneNotFoundError(f"{needed_by} needs the package {package.replace('_', '-')}"
                                    f": {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))

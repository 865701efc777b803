"""``desta data fetch``: download the real-audio Debian packages and unpack them into a data root.

Nothing is installed and no root is needed. ``apt-get download`` fetches each ``.deb`` (apt
checks it against the signed archive metadata), ``dpkg-deb -x`` unpacks it into the root, so
``<root>/usr/share/...`` holds the packages' own layout, then each source's prepare step runs
(:mod:`desta.data.sources`). Under ``<root>/.desta-fetch/``:

* ``debs/``: the ``.deb`` files, kept so that a rerun can check them against apt's SHA256
  (``apt-get download`` writes straight to the final name, so a killed download leaves a
  truncated file there, which fails the check and is fetched again);
* ``done/<package>_<version>``: unpack markers, written last and atomically. A package whose
  ``.deb`` has the right SHA256 and whose marker exists is skipped, so a killed run redoes only
  what it had not finished;
* ``cache/``: apt's ``Dir::Cache`` (its package cache), so the system's is never written;
* ``lists/``: private package lists from ``apt-get update``, used when the system's lists lack
  a package (missing or stale lists) or when a sources list is given (``apt_sources``);
* ``sources.json``: what the root holds: per source its packages, versions, SHA256, sizes and
  licences.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desta.data.sources import SOURCES, Source
from desta.errors import DestaError

logger = logging.getLogger(__name__)

APT_SOURCES_ENV = "DESTA_APT_SOURCES"
STATE_DIR = ".desta-fetch"
SOURCES_JSON = "sources.json"
_TOOLS = ("apt-get", "apt-cache", "dpkg-deb")
_POLL_S = 0.2  # how often the download bar reads the partial file's size
_EXAMPLE_SOURCE = "deb http://deb.debian.org/debian bookworm main"
_MIRROR_HINT = (f"point fetch at a reachable Debian mirror with --apt-sources FILE (or "
                f"{APT_SOURCES_ENV}=FILE), FILE holding a line such as '{_EXAMPLE_SOURCE}'")
_NETWORK_HINT = ("check the network or proxy (e.g. --apt-option "
                 "Acquire::http::Proxy=http://HOST:PORT), or " + _MIRROR_HINT)


class FetchError(DestaError):
    """apt is missing or cannot reach its source, or a package is unknown, broken or unpackable."""


class _NotOnMirror(FetchError):
    """A download got 404: the package lists name a file the mirror no longer has."""


@dataclass(frozen=True)
class Package:
    """One ``.deb`` as apt's metadata describes it."""

    name: str
    version: str
    sha256: str
    size: int  # bytes of the .deb
    installed_size_kib: int | None  # unpacked size, as the package states it
    uri: str
    filename: str  # the name `apt-get download` gives the file

    @property
    def marker_name(self) -> str:
        # Epochs ("4:22.12.3-1") quoted as apt quotes them in .deb names.
        return f"{self.name}_{self.version.replace(':', '%3a')}"


@dataclass
class FetchReport:
    """What one :func:`fetch` call did."""

    root: Path
    packages: list[Package]
    downloaded: list[str] = field(default_factory=list)
    unpacked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # .deb and marker already right
    prepared: list[str] = field(default_factory=list)  # source names
    bytes_downloaded: int = 0
    seconds: float = 0.0


def _atomic_write(path: Path, text: str) -> None:
    # Readers (and a resumed run) see the whole file or none of it.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _c_locale() -> dict[str, str]:
    # apt's messages are parsed below; keep the rest of the environment (proxies, APT_CONFIG).
    return {**os.environ, "LC_ALL": "C", "LANGUAGE": "C"}


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def _failed_fetches(output: str) -> list[tuple[str, str]]:
    """(url, reason) of every "Failed to fetch" apt reported."""
    return re.findall(r"^[EW]: Failed to fetch (\S+)\s+(.*)$", output, re.MULTILINE)


def _stanzas(text: str) -> Iterator[dict[str, str]]:
    """Top-level ``Key: value`` fields of each deb822 stanza (continuation lines dropped)."""
    for block in re.split(r"\n\s*\n", text):
        fields = {}
        for line in block.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def sha256_file(path: Path) -> str:
    """Hex SHA256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _deb_ok(path: Path, package: Package) -> bool:
    return (path.is_file() and path.stat().st_size == package.size
            and sha256_file(path) == package.sha256)


class _Apt:
    """apt-get / apt-cache run with a private cache (and, when needed, private lists), so they
    need neither root nor the system's lock."""

    def __init__(self, state: Path, sources: Path | None, options: Sequence[str]) -> None:
        self.state = state
        self.sources = sources
        self.options = list(options)
        # A given sources list has no lists of its own on this machine: always update privately.
        self.private_lists = sources is not None
        for folder in (state / "cache" / "archives" / "partial", state / "lists" / "partial",
                       state / "sources.list.d"):
            folder.mkdir(parents=True, exist_ok=True)

    def argv(self, tool: str, *args: str) -> list[str]:
        opts = {"Dir::Cache": str(self.state / "cache"), "Debug::NoLocking": "1"}
        if os.geteuid() == 0:
            # As root apt downloads as user _apt, who cannot write into a user's data root.
            opts["APT::Sandbox::User"] = "root"
        if self.private_lists:
            opts["Dir::State::Lists"] = str(self.state / "lists")
        if self.sources is not None:
            opts["Dir::Etc::SourceList"] = str(self.sources)
            opts["Dir::Etc::SourceParts"] = str(self.state / "sources.list.d")  # kept empty
        cmd = [tool]
        for key, value in opts.items():
            cmd += ["-o", f"{key}={value}"]
        for option in self.options:  # the user's come last, so they win
            cmd += ["-o", option]
        return [*cmd, *args]

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = self.argv(tool, *args)
        logger.debug("running %s", shlex.join(cmd))
        return subprocess.run(cmd, cwd=self.state, capture_output=True, text=True,
                              env=_c_locale())

    def where(self) -> str:
        """The sources list(s) apt reads, for messages."""
        if self.sources is not None:
            return str(self.sources)
        proc = self.run("apt-config", "shell", "LIST", "Dir::Etc::SourceList/f",
                        "PARTS", "Dir::Etc::SourceParts/d")
        found = dict(re.findall(r"^(LIST|PARTS)='([^']*)'", proc.stdout, re.MULTILINE))
        return " and ".join(found.get(k, "?") for k in ("LIST", "PARTS"))

    def repos(self) -> list[str]:
        """'URI suite' of every binary-package index the sources list names."""
        proc = self.run("apt-get", "indextargets", "--no-release-info",
                        "--format", "$(REPO_URI) $(RELEASE)", "Identifier: Packages")
        if proc.returncode != 0:
            raise FetchError(f"apt cannot read its sources ({self.where()}): "
                             f"{_tail(proc.stderr)}")
        return sorted(set(proc.stdout.split("\n")) - {""})

    def update(self) -> list[tuple[str, str]]:
        """Fetch private package lists; returns the (url, reason) of indexes it could not get."""
        self.private_lists = True
        logger.info("fetching package lists into %s", self.state / "lists")
        proc = self.run("apt-get", "update", "-q")
        failed = _failed_fetches(proc.stdout + proc.stderr)
        if proc.returncode != 0 and not failed:
            raise FetchError(f"`apt-get update` failed for the sources in {self.where()}: "
                             f"{_tail(proc.stderr or proc.stdout)}")
        return failed

    def show(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        """apt's candidate stanza of each name it knows (unknown names are left out)."""
        proc = self.run("apt-cache", "show", "--no-all-versions", *names)
        if proc.returncode != 0 and "No packages found" not in proc.stderr:
            raise FetchError(f"`apt-cache show` failed: {_tail(proc.stderr)}")
        found: dict[str, dict[str, str]] = {}
        for stanza in _stanzas(proc.stdout):
            if stanza.get("Package") in names:
                found.setdefault(stanza["Package"], stanza)
        return found

    def uris(self, pinned: Sequence[str]) -> dict[str, tuple[str, str]]:
        """package -> (download URI, file name) for `name=version` specs."""
        proc = self.run("apt-get", "download", "--print-uris", *pinned)
        if proc.returncode != 0:
            raise FetchError(f"apt cannot locate the packages' files: {_tail(proc.stderr)}")
        out = {}
        for uri, filename in re.findall(r"^'([^']+)' (\S+) \d+ \S+$", proc.stdout, re.MULTILINE):
            out[filename.split("_", 1)[0]] = (uri, filename)  # Debian names have no "_"
        return out

    def download(self, package: Package, dest: Path, on_bytes: Callable[[int], None]) -> None:
        """`apt-get download` one package into `dest`, reporting bytes as its file grows."""
        final = dest / package.filename  # apt writes here as bytes arrive
        cmd = self.argv("apt-get", "download", "-q", f"{package.name}={package.version}")
        seen = 0
        with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: apt never blocks on it
            proc = subprocess.Popen(cmd, cwd=dest, stdout=log, stderr=subprocess.STDOUT,
                                    text=True, env=_c_locale())
            try:
                while True:
                    try:
                        returncode = proc.wait(timeout=_POLL_S)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    size = _size(final)
                    if size > seen:
                        on_bytes(size - seen)
                        seen = size
            finally:
                if proc.poll() is None:  # interrupted: leave no apt running behind us
                    proc.kill()
                    proc.wait()
            log.seek(0)
            output = log.read()
        if returncode != 0:
            failed = _failed_fetches(output)
            if failed and re.search(r"\b404\b", failed[0][1]):
                raise _NotOnMirror(f"{package.name} {package.version}: {failed[0][0]} is not on "
                                   f"the mirror ({failed[0][1]})")
            if failed:
                raise FetchError(f"cannot download {package.name} from {failed[0][0]} "
                                 f"({failed[0][1]}): {_NETWORK_HINT}")
            raise FetchError(f"`apt-get download {package.name}` failed: {_tail(output)}")
        on_bytes(max(package.size - seen, 0))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _require_tools() -> None:
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        raise FetchError(
            f"{', '.join(missing)} not found on PATH: `desta data fetch` needs Debian's apt and "
            "dpkg (Debian, Ubuntu and derivatives). Elsewhere, get the .deb files that "
            "`desta data fetch --list` names (https://packages.debian.org/bookworm/<package>) "
            "and unpack each into the data root (`ar x FILE.deb && tar -xf data.tar.* -C ROOT`)")


def _resolve(apt: _Apt, names: Sequence[str]) -> list[Package]:
    """apt's metadata for every name; one error listing every name apt does not know."""
    repos = apt.repos()
    if not repos:
        raise FetchError(f"apt has no package source configured (no 'deb' entry in "
                         f"{apt.where()}): add a Debian mirror there, or {_MIRROR_HINT}")
    found = {} if apt.private_lists else apt.show(names)
    failed: list[tuple[str, str]] = []
    if apt.private_lists or len(found) < len(names):
        if not apt.private_lists:
            logger.info("the system's package lists lack %d of %d package(s) (missing or stale "
                        "lists): reading the sources afresh", len(names) - len(found), len(names))
        failed = apt.update()
        found = apt.show(names)
    missing = [name for name in names if name not in found]
    unreachable = "; ".join(f"{url} ({reason})" for url, reason in failed)
    if missing:
        if failed:
            raise FetchError(f"cannot reach the apt source: {unreachable}; so apt does not "
                             f"know {', '.join(missing)}: {_NETWORK_HINT}")
        raise FetchError(
            f"apt knows no package named {', '.join(missing)} (searched "
            f"{', '.join(repos)}, configured in {apt.where()}). They are in Debian's 'main' "
            f"archive (bookworm); add such a source there, or {_MIRROR_HINT}")
    if failed:
        logger.warning("apt could not reach %s; the packages were found elsewhere", unreachable)
    pinned = [f"{name}={found[name]['Version']}" for name in names]
    uris = apt.uris(pinned)
    packages = []
    for name in names:
        stanza = found[name]
        if name not in uris or "SHA256" not in stanza:
            raise FetchError(f"apt gives no download URI or SHA256 for {name} "
                             f"{stanza.get('Version')}")
        installed = stanza.get("Installed-Size", "")
        packages.append(Package(
            name=name, version=stanza["Version"], sha256=stanza["SHA256"].lower(),
            size=int(stanza["Size"]),
            installed_size_kib=int(installed) if installed.isdigit() else None,
            uri=uris[name][0], filename=uris[name][1]))
    return packages


def _unpack(deb: Path, root: Path) -> None:
    proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True,
                          text=True, env=_c_locale())
    if proc.returncode != 0:
        raise FetchError(f"cannot unpack {deb} into {root}: {_tail(proc.stderr)}")


def _fetch_packages(apt: _Apt, packages: Sequence[Package], root: Path, report: FetchReport,
                    errors: dict[str, str], progress: bool) -> None:
    """Download, verify and unpack each package not already done; errors collected per package
    (a 404 while reading the system's lists is raised, to refresh them)."""
    from tqdm import tqdm

    debs, done = apt.state / "debs", apt.state / "done"
    debs.mkdir(parents=True, exist_ok=True)
    done.mkdir(parents=True, exist_ok=True)
    deb_ok = {p.name: _deb_ok(debs / p.filename, p) for p in packages}
    to_download = sum(p.size for p in packages if not deb_ok[p.name])
    bar_pkgs = tqdm(total=len(packages), desc="packages", unit="pkg", disable=not progress)
    bar_bytes = tqdm(total=to_download, desc="download", unit="B", unit_scale=True,
                     unit_divisor=1024, disable=not progress or not to_download)
    try:
        for package in packages:
            deb, marker = debs / package.filename, done / package.marker_name
            bar_pkgs.set_postfix_str(package.name, refresh=False)
            if deb_ok[package.name] and marker.is_file():
                report.skipped.append(package.name)
                bar_pkgs.update()
                continue
            try:
                marker.unlink(missing_ok=True)  # from here on the unpacked tree is suspect
                if not deb_ok[package.name]:
                    deb.unlink(missing_ok=True)
                    logger.debug("downloading %s %s (%d bytes)", package.name, package.version,
                                 package.size)
                    apt.download(package, debs, bar_bytes.update)
                    if not _deb_ok(deb, package):
                        deb.unlink(missing_ok=True)
                        raise FetchError(f"{deb.name} does not match the SHA256 apt's metadata "
                                         f"gives ({package.sha256}); deleted it, rerun to "
                                         "download it again")
                    report.downloaded.append(package.name)
                    report.bytes_downloaded += package.size
                _unpack(deb, root)
                _atomic_write(marker, json.dumps({"package": package.name,
                                                  "version": package.version,
                                                  "sha256": package.sha256}) + "\n")
                report.unpacked.append(package.name)
            except _NotOnMirror as err:
                if not apt.private_lists:
                    raise
                # The lists were just read from this mirror: it is out of step with itself.
                errors[package.name] = f"{err}, yet its lists name it: retry later, or " \
                                       f"{_MIRROR_HINT}"
                logger.error("%s: %s", package.name, errors[package.name])
            except FetchError as err:
                errors[package.name] = str(err)
                logger.error("%s: %s", package.name, err)
            bar_pkgs.update()
    finally:
        bar_bytes.close()
        bar_pkgs.close()


def _package_record(source: Source, package: Package) -> dict[str, Any]:
    return {"version": package.version, "licence": source.licence_of(package.name),
            "sha256": package.sha256, "size": package.size,
            "installed_size_kib": package.installed_size_kib, "uri": package.uri,
            "deb": f"{STATE_DIR}/debs/{package.filename}"}


def _write_sources_json(state: Path, sources: Sequence[Source], packages: dict[str, Package],
                        prepared: dict[str, bool | None], apt: _Apt) -> Path:
    """Merge this run's sources into sources.json (a fetch of one source keeps the others; a
    prepare status this run did not set keeps its recorded value)."""
    path = state / SOURCES_JSON
    entries: dict[str, Any] = {}
    if path.is_file():
        try:
            entries = json.loads(path.read_text(encoding="utf-8")).get("sources", {})
        except (json.JSONDecodeError, AttributeError):
            logger.warning("%s is not valid JSON: rewriting it from this run only", path)
    for source in sources:
        entries[source.name] = {
            "description": source.description, "licence": source.licence,
            "recipes": list(source.recipes), "prepare": source.prepare,
            "prepared": prepared.get(source.name,
                                     entries.get(source.name, {}).get("prepared")),
            "packages": {name: _package_record(source, packages[name])
                         for name in source.packages},
        }
    data = {"format": 1, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "apt_lists": "private" if apt.private_lists else "system",
            "apt_sources": str(apt.sources) if apt.sources else None,
            "sources": dict(sorted(entries.items()))}
    _atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return path


def fetch(root: str | os.PathLike[str], sources: Sequence[Source] | None = None, *,
          prepare: bool = True, progress: bool = True,
          apt_sources: str | os.PathLike[str] | None = None,
          apt_options: Sequence[str] = ()) -> FetchReport:
    """Download and unpack the packages of `sources` (default: all of :data:`SOURCES`) into
    `root`, then run their prepare steps; resumable and idempotent.

    `apt_sources`: a sources list (one-line ``.list`` or deb822 ``.sources`` file) to use instead
    of the system's (default: ``$DESTA_APT_SOURCES``, else the system's). `apt_options`:
    ``KEY=VALUE`` apt configuration items (``-o``), e.g. ``Acquire::http::Proxy=...``.

    Every package is checked to exist before anything is downloaded. Errors of single packages
    or prepare steps do not stop the others; they are raised together at the end
    (:class:`FetchError`), after ``sources.json`` records what did succeed.
    """
    t0 = time.perf_counter()
    sources = list(SOURCES.values()) if sources is None else list(sources)
    if apt_sources is None:
        apt_sources = os.environ.get(APT_SOURCES_ENV) or None
    sources_file = Path(apt_sources).resolve() if apt_sources is not None else None
    if sources_file is not None and not sources_file.is_file():
        raise FetchError(f"apt sources list {sources_file} does not exist (from --apt-sources "
                         f"or {APT_SOURCES_ENV})")
    for option in apt_options:
        if "=" not in option or option.startswith("="):
            raise FetchError(f"apt option {option!r}: expected KEY=VALUE, e.g. "
                             "Acquire::http::Proxy=http://HOST:PORT")
    _require_tools()
    root = Path(root).resolve()
    state = root / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    apt = _Apt(state, sources_file, apt_options)

    names = list(dict.fromkeys(name for source in sources for name in source.packages))
    packages = _resolve(apt, names)
    for source in sources:
        for package in packages:
            expected = source.versions.get(package.name)
            if expected and expected != package.version:
                logger.warning("%s: apt offers %s; desta's recipes were written against %s "
                               "(docs/data/real-audio.md)", package.name, package.version,
                               expected)
    report = FetchReport(root=root, packages=packages)
    errors: dict[str, str] = {}
    try:
        _fetch_packages(apt, packages, root, report, errors, progress)
    except _NotOnMirror as err:
        logger.warning("%s: the system's package lists are stale, reading the sources afresh",
                       err)
        apt.private_lists = True
        packages = report.packages = _resolve(apt, names)
        errors.clear()
        _fetch_packages(apt, packages, root, report, errors, progress)

    by_name = {p.name: p for p in packages}
    complete = [s for s in sources if not any(name in errors for name in s.packages)]
    prepared: dict[str, bool | None] = {}
    sources_json = _write_sources_json(state, complete, by_name, prepared, apt)
    if prepare:
        for source in complete:
            if source.prepare is None:
                continue
            try:
                fn = source.prepare_fn()
                assert fn is not None
                logger.info("preparing %s (%s)", source.name, source.prepare)
                fn(root, progress=progress)
                prepared[source.name] = True
                report.prepared.append(source.name)
            except DestaError as err:
                prepared[source.name] = False
                errors[f"prepare {source.name}"] = (
                    f"{err} (the packages are unpacked; rerun `desta data fetch --source "
                    f"{source.name}` once it is fixed, or pass --no-prepare)")
        _write_sources_json(state, complete, by_name, prepared, apt)
    report.seconds = time.perf_counter() - t0
    logger.info("%d package(s) in %s: %d downloaded (%.1f MB), %d unpacked, %d already done; "
                "%s", len(packages), root, len(report.downloaded), report.bytes_downloaded / 1e6,
                len(report.unpacked), len(report.skipped), sources_json)
    if errors:
        raise FetchError(f"{len(errors)} step(s) failed: "
                         + "; ".join(f"{what}: {msg}" for what, msg in errors.items()))
    return report


def status(root: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Per registered source: its packages, licence, recipes and, given a `root`, which packages
    it holds unpacked (by marker) and whether the prepare step ran (from sources.json)."""
    state = Path(root) / STATE_DIR if root is not None else None
    recorded: dict[str, Any] = {}
    if state is not None and (state / SOURCES_JSON).is_file():
        try:
            recorded = json.loads((state / SOURCES_JSON).read_text(encoding="utf-8"))["sources"]
        except (json.JSONDecodeError, KeyError, TypeError):
            recorded = {}
    rows = []
    for source in SOURCES.values():
        unpacked = [name for name in source.packages if state is not None
                    and any((state / "done").glob(f"{glob.escape(name)}_*"))]
        rows.append({"name": source.name, "packages": list(source.packages),
                     "unpacked": unpacked, "licence": source.licence,
                     "recipes": list(source.recipes), "prepare": source.prepare,
                     "prepared": recorded.get(source.name, {}).get("prepared"),
                     "description": source.description})
    return rows

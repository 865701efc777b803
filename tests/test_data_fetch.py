"""`desta data fetch` against a real apt: a local apt repository (packages built with dpkg-deb,
indexed with dpkg-scanpackages) served over HTTP on loopback, real apt-get / dpkg-deb, real
SIGKILL of a fetch in flight. No network: every test points apt at the loopback repository
through APT_CONFIG (the test's "system" apt) or a private sources list (--apt-sources)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desta.data.fetch import APT_SOURCES_ENV, STATE_DIR, FetchError, fetch, status
from desta.data.sources import Source, get_source
from desta.errors import ConfigError

_TOOLS = ("apt-get", "apt-cache", "dpkg-deb", "dpkg-scanpackages")


@pytest.fixture(autouse=True, scope="module")
def _tools() -> None:
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run `bash scripts/install.sh --test` "
                    "(dpkg-dev gives dpkg-scanpackages)")


def wav_bytes(freq: float, seconds: float = 0.1, noise: bool = False) -> bytes:
    """A real 16 kHz PCM-16 WAV file: a tone, or (noise=True) incompressible white noise."""
    t = np.arange(int(16_000 * seconds)) / 16_000
    rng = np.random.default_rng(int(freq))
    data = rng.uniform(-0.5, 0.5, t.size) if noise else 0.3 * np.sin(2 * np.pi * freq * t)
    buf = io.BytesIO()
    sf.write(buf, data.astype(np.float32), 16_000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def build_deb(repo: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    tree = repo.parent / f"build-{name}-{version.replace(':', '_')}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: desta tests <tests@example.org>\nDescription: desta fetch test package\n")
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    # Named as in Debian's pool: no epoch (apt-get download names its copy with "%3a").
    deb = repo / f"{name}_{version.split(':', 1)[-1]}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)],
                   check=True, capture_output=True)
    shutil.rmtree(tree)
    return deb


class Repo:
    """A flat apt repository on disk, served by a loopback HTTP server that counts requests and
    can stall chosen files half-way (to kill a fetch mid-download)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "repo"
        self.dir.mkdir(parents=True)
        self.requests: dict[str, int] = {}
        self.stall: set[str] = set()
        self.stalled = threading.Event()  # set once a stalled file was requested
        self.release = threading.Event()
        self._lock = threading.Lock()
        repo = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(repo.dir), **kwargs)

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                name = urllib.parse.unquote(self.path).lstrip("/").removeprefix("./")
                with repo._lock:
                    repo.requests[name] = repo.requests.get(name, 0) + 1
                if name not in repo.stall:
                    return super().do_GET()
                data = (repo.dir / name).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    repo.stalled.set()
                    repo.release.wait(timeout=120)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, name: str, version: str, files: dict[str, bytes]) -> Path:
        return build_deb(self.dir, name, version, files)

    def index(self) -> None:
        out = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=self.dir,
                             check=True, capture_output=True, text=True).stdout
        (self.dir / "Packages").write_text(out)
        (self.dir / "Packages.gz").write_bytes(gzip.compress(out.encode()))

    def deb_requests(self) -> dict[str, int]:
        return {k: v for k, v in self.requests.items() if k.endswith(".deb")}

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def repo(tmp_path: Path):
    r = Repo(tmp_path)
    yield r
    r.close()


def system_apt(tmp_path: Path, sources_list: str, *, update: bool) -> dict[str, str]:
    """Env whose APT_CONFIG makes a private "system" apt (its own sources list, lists, conf.d);
    update=True fills its lists as `apt-get update` by an administrator would."""
    etc = tmp_path / "system-etc"
    for sub in ("sources.list.d", "apt.conf.d", "preferences.d"):
        (etc / sub).mkdir(parents=True, exist_ok=True)
    (etc / "sources.list").write_text(sources_list)
    lists = tmp_path / "system-lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    (tmp_path / "system-cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    conf = etc / "apt.conf"
    conf.write_text("\n".join(f'{k} "{v}";' for k, v in {
        "Dir::Etc::SourceList": etc / "sources.list",
        "Dir::Etc::SourceParts": etc / "sources.list.d",
        "Dir::Etc::Parts": etc / "apt.conf.d",
        "Dir::Etc::PreferencesParts": etc / "preferences.d",
        "Dir::State::Lists": lists,
        "Dir::Cache": tmp_path / "system-cache",
    }.items()) + "\n")
    env = {**os.environ, "APT_CONFIG": str(conf)}
    env.pop(APT_SOURCES_ENV, None)
    if update:
        subprocess.run(["apt-get", "update", "-q", "-o", "Debug::NoLocking=1"], env=env,
                       check=True, capture_output=True)
    return env


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    monkeypatch.setenv("APT_CONFIG", env["APT_CONFIG"])
    monkeypatch.delenv(APT_SOURCES_ENV, raising=False)


def source_line(repo: Repo) -> str:
    return f"deb [trusted=yes] {repo.url} ./\n"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An importable prepare step that appends one line per call to <root>/prepared.log."""
    mod_dir = tmp_path / "mods"
    mod_dir.mkdir()
    (mod_dir / "fetch_test_prep.py").write_text(
        "from pathlib import Path\n"
        "def prepare(root, *, progress=True):\n"
        "    src = Path(root) / 'usr/share/sounds/fake-one/one.wav'\n"
        "    with open(Path(root) / 'prepared.log', 'a') as f:\n"
        "        f.write(f'{src.stat().st_size} progress={progress}\\n')\n")
    monkeypatch.syspath_prepend(str(mod_dir))
    return mod_dir


ONE = {"usr/share/sounds/fake-one/one.wav": wav_bytes(440)}
TWO = {"usr/share/sounds/fake-two/two.wav": wav_bytes(660),
       "usr/share/doc/fake-two/copyright": b"License: CC0-1.0\n"}


def two_sources(prepare: str | None = None) -> list[Source]:
    return [
        Source(name="one", packages=("fake-one",), licence="GPL-2+", recipes=("r1",),
               description="first", prepare=prepare, versions={"fake-one": "1:1.0-1"}),
        Source(name="two", packages=("fake-two",), licence="CC0-1.0", recipes=("r2",),
               description="second"),
    ]


def test_fetch_unpacks_verifies_records_and_skips_what_is_done(tmp_path, repo, monkeypatch):
    deb_one = repo.add("fake-one", "1:1.0-1", ONE)
    deb_two = repo.add("fake-two", "2.0-3", TWO)
    repo.index()
    use_env(monkeypatch, system_apt(tmp_path, source_line(repo), update=True))
    prepare_module(tmp_path, monkeypatch)
    root = tmp_path / "data"

    report = fetch(root, two_sources("fetch_test_prep:prepare"), progress=False)

    assert sorted(report.downloaded) == ["fake-one", "fake-two"] == sorted(report.unpacked)
    assert report.skipped == [] and report.prepared == ["one"]
    data, rate = sf.read(root / "usr/share/sounds/fake-one/one.wav")
    expected, _ = sf.read(io.BytesIO(ONE["usr/share/sounds/fake-one/one.wav"]))
    assert rate == 16_000 and np.array_equal(data, expected)
    assert (root / "usr/share/doc/fake-two/copyright").read_bytes() == b"License: CC0-1.0\n"
    state = root / STATE_DIR
    marker = json.loads((state / "done" / "fake-one_1%3a1.0-1").read_text())
    assert marker == {"package": "fake-one", "version": "1:1.0-1", "sha256": sha256(deb_one)}
    assert sha256(state / "debs" / "fake-one_1%3a1.0-1_all.deb") == sha256(deb_one)
    record = json.loads((state / "sources.json").read_text())
    assert record["apt_lists"] == "system"
    assert record["sources"]["one"]["prepared"] is True
    assert record["sources"]["two"]["prepared"] is None  # it has no prepare step
    two = record["sources"]["two"]["packages"]["fake-two"]
    assert two["version"] == "2.0-3" and two["licence"] == "CC0-1.0"
    assert two["sha256"] == sha256(deb_two) and two["size"] == deb_two.stat().st_size
    assert two["uri"] == f"{repo.url}./{deb_two.name}"
    assert (root / "prepared.log").read_text().splitlines() == [
        f"{len(ONE['usr/share/sounds/fake-one/one.wav'])} progress=False"]

    ctime = (root / "usr/share/sounds/fake-one/one.wav").stat().st_ctime_ns
    again = fetch(root, two_sources("fetch_test_prep:prepare"), progress=False)
    assert sorted(again.skipped) == ["fake-one", "fake-two"]
    assert again.downloaded == [] and again.unpacked == []
    assert repo.deb_requests() == {deb_one.name: 1, deb_two.name: 1}
    assert (root / "usr/share/sounds/fake-one/one.wav").stat().st_ctime_ns == ctime
    assert len((root / "prepared.log").read_text().splitlines()) == 2  # prepare runs each time

    rows = {row["name"]: row for row in status(root)}
    assert rows["gcin"]["unpacked"] == [] and rows["gcin"]["licence"] == \
        get_source("gcin").licence


def test_missing_system_lists_are_fetched_privately(tmp_path, repo, monkeypatch):
    repo.add("fake-one", "1:1.0-1", ONE)
    repo.index()
    use_env(monkeypatch, system_apt(tmp_path, source_line(repo), update=False))
    root = tmp_path / "data"
    fetch(root, two_sources()[:1], progress=False)
    assert (root / "usr/share/sounds/fake-one/one.wav").is_file()
    record = json.loads((root / STATE_DIR / "sources.json").read_text())
    assert record["apt_lists"] == "private"
    assert any((root / STATE_DIR / "lists").glob("*Packages*"))
    assert not any((tmp_path / "system-lists").glob("*Packages*"))  # system state untouched


def test_stale_system_lists_are_refreshed_on_404(tmp_path, repo, monkeypatch):
    old = repo.add("fake-one", "1:1.0-1", ONE)
    repo.index()
    use_env(monkeypatch, system_apt(tmp_path, source_line(repo), update=True))
    old.unlink()  # the mirror moved on to 1:1.1-1; the system's lists still name 1:1.0-1
    new_wav = wav_bytes(880)
    new = repo.add("fake-one", "1:1.1-1", {"usr/share/sounds/fake-one/one.wav": new_wav})
    repo.index()
    root = tmp_path / "data"
    report = fetch(root, two_sources()[:1], progress=False)
    assert [p.version for p in report.packages] == ["1:1.1-1"]
    assert (root / "usr/share/sounds/fake-one/one.wav").read_bytes() == new_wav
    assert (root / STATE_DIR / "done" / "fake-one_1%3a1.1-1").is_file()
    assert repo.requests.get(old.name) == 1 and repo.requests.get(new.name) == 1


_KILL_SCRIPT = """
import sys
from desta.data.fetch import fetch
from desta.data.sources import Source
fetch(sys.argv[1], [Source(name=n, packages=(n,), licence="GPL-2", recipes=(), description=n)
                    for n in sys.argv[2:]], progress=False)
"""


def _wait(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_killed_fetch_resumes_only_what_was_unfinished(tmp_path, repo, monkeypatch):
    a = repo.add("fake-a", "1.0", {"usr/share/sounds/a/a.wav": wav_bytes(300)})
    b = repo.add("fake-b", "1.0", {"usr/share/sounds/b/b.wav": wav_bytes(400, 3.0, noise=True)})
    c = repo.add("fake-c", "1.0", {"usr/share/sounds/c/c.wav": wav_bytes(500)})
    repo.index()
    env = system_apt(tmp_path, source_line(repo), update=True)
    root = tmp_path / "data"
    state = root / STATE_DIR
    partial = state / "debs" / b.name  # apt-get download writes to the final name
    repo.stall.add(b.name)
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(root), "fake-a", "fake-b",
                             "fake-c"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: repo.stalled.is_set() and partial.is_file() and partial.stat().st_size > 0
              or proc.poll() is not None, "fake-b's download to start")
        assert proc.poll() is None, proc.stderr.read().decode()
        os.killpg(proc.pid, signal.SIGKILL)  # the fetch and its apt-get child
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert (state / "done" / "fake-a_1.0").is_file()
    assert not (state / "done" / "fake-b_1.0").exists()
    assert 0 < partial.stat().st_size < b.stat().st_size  # truncated
    assert not (state / "debs" / c.name).exists()
    a_wav = root / "usr/share/sounds/a/a.wav"
    a_ctime, a_marker = a_wav.stat().st_ctime_ns, (state / "done" / "fake-a_1.0").stat()

    repo.stall.clear()
    repo.release.set()
    use_env(monkeypatch, env)
    report = fetch(root, [Source(name=n, packages=(n,), licence="GPL-2", recipes=(),
                                 description=n) for n in ("fake-a", "fake-b", "fake-c")],
                   progress=False)
    assert report.skipped == ["fake-a"]
    assert report.downloaded == ["fake-b", "fake-c"] == report.unpacked
    assert repo.deb_requests() == {a.name: 1, b.name: 2, c.name: 1}
    assert a_wav.stat().st_ctime_ns == a_ctime  # not unpacked again
    assert (state / "done" / "fake-a_1.0").stat().st_mtime_ns == a_marker.st_mtime_ns
    assert sha256(state / "debs" / b.name) == sha256(b)
    data, _ = sf.read(root / "usr/share/sounds/b/b.wav")
    assert data.shape == (48_000,)
    assert (root / "usr/share/sounds/c/c.wav").is_file()


def test_corrupt_deb_is_downloaded_and_unpacked_again(tmp_path, repo, monkeypatch):
    deb_one = repo.add("fake-one", "1:1.0-1", ONE)
    repo.add("fake-two", "2.0-3", TWO)
    repo.index()
    use_env(monkeypatch, system_apt(tmp_path, source_line(repo), update=True))
    root = tmp_path / "data"
    fetch(root, two_sources(), progress=False)
    kept = root / STATE_DIR / "debs" / "fake-one_1%3a1.0-1_all.deb"  # apt quotes the epoch
    raw = bytearray(kept.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, wrong SHA256
    kept.write_bytes(bytes(raw))
    (root / "usr/share/sounds/fake-one/one.wav").unlink()
    report = fetch(root, two_sources(), progress=False)
    assert report.downloaded == ["fake-one"] == report.unpacked
    assert report.skipped == ["fake-two"]
    assert sha256(kept) == sha256(deb_one)
    assert (root / "usr/share/sounds/fake-one/one.wav").read_bytes() == \
        ONE["usr/share/sounds/fake-one/one.wav"]
    assert repo.deb_requests()[deb_one.name] == 2


def test_missing_packages_are_all_listed_before_any_download(tmp_path, repo, monkeypatch):
    repo.add("fake-one", "1:1.0-1", ONE)
    repo.index()
    use_env(monkeypatch, system_apt(tmp_path, source_line(repo), update=True))
    sources = [*two_sources()[:1],
               Source(name="gone", packages=("fake-gone-a", "fake-one", "fake-gone-b"),
                      licence="GPL-2", recipes=(), description="gone")]
    with pytest.raises(FetchError) as err:
        fetch(tmp_path / "data", sources, progress=False)
    message = str(err.value)
    assert "fake-gone-a, fake-gone-b" in message and repo.url in message
    assert "fake-one," not in message
    assert repo.deb_requests() == {}
    assert not any((tmp_path / "data" / STATE_DIR / "debs").glob("*"))


def test_unreachable_source_names_its_url(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    sources_list = tmp_path / "mirror.list"
    sources_list.write_text(f"deb [trusted=yes] http://127.0.0.1:{port}/ ./\n")
    use_env(monkeypatch, system_apt(tmp_path, "", update=False))
    with pytest.raises(FetchError) as err:
        fetch(tmp_path / "data", two_sources()[:1], progress=False, apt_sources=sources_list,
              apt_options=["Acquire::Retries=0"])  # apt's own retries only slow the test
    message = str(err.value)
    assert f"cannot reach the apt source: http://127.0.0.1:{port}/" in message
    assert "Connection refused" in message and "--apt-sources" in message


def test_no_apt_source_and_no_apt_are_clear_errors(tmp_path, monkeypatch):
    use_env(monkeypatch, system_apt(tmp_path, "", update=False))
    with pytest.raises(FetchError, match="apt has no package source configured") as err:
        fetch(tmp_path / "data", two_sources(), progress=False)
    assert str(tmp_path / "system-etc" / "sources.list") in str(err.value)
    empty = tmp_path / "empty.sources"
    empty.write_text("")
    with pytest.raises(FetchError, match=f"no 'deb' entry in {empty}"):
        fetch(tmp_path / "data", two_sources(), progress=False, apt_sources=empty)
    with pytest.raises(FetchError, match="does not exist"):
        fetch(tmp_path / "data", two_sources(), apt_sources=tmp_path / "nope.list")
    with pytest.raises(FetchError, match="expected KEY=VALUE"):
        fetch(tmp_path / "data", two_sources(), apt_options=["Acquire::http::Proxy"])
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    with pytest.raises(FetchError, match="apt-get, apt-cache, dpkg-deb not found on PATH"):
        fetch(tmp_path / "data", two_sources(), progress=False)


def test_prepare_step_that_does_not_exist_is_named_after_unpacking(tmp_path, repo, monkeypatch):
    repo.add("fake-one", "1:1.0-1", ONE)
    repo.add("fake-two", "2.0-3", TWO)
    repo.index()
    use_env(monkeypatch, system_apt(tmp_path, source_line(repo), update=True))
    prepare_module(tmp_path, monkeypatch)
    root = tmp_path / "data"
    sources = [two_sources("fetch_test_prep:no_such_function")[0],
               Source(name="two", packages=("fake-two",), licence="CC0-1.0", recipes=(),
                      description="two", prepare="fetch_test_no_such_module:prepare")]
    with pytest.raises(FetchError) as err:
        fetch(root, sources, progress=False)
    message = str(err.value)
    assert "2 step(s) failed" in message
    assert "'fetch_test_prep:no_such_function' cannot be loaded" in message
    assert "'fetch_test_no_such_module:prepare' cannot be loaded" in message
    assert (root / "usr/share/sounds/fake-two/two.wav").is_file()
    record = json.loads((root / STATE_DIR / "sources.json").read_text())
    assert record["sources"]["one"]["prepared"] is False
    assert record["sources"]["two"]["prepared"] is False
    report = fetch(root, sources, prepare=False, progress=False)  # --no-prepare: no error
    assert sorted(report.skipped) == ["fake-one", "fake-two"]
    record = json.loads((root / STATE_DIR / "sources.json").read_text())
    assert record["sources"]["one"]["prepared"] is False  # kept: prepare did not run


def test_cli_fetches_a_registered_source_from_a_mirror_given_by_env(tmp_path, repo, capsys,
                                                                    monkeypatch):
    # A stand-in for Debian's gcin-voice, one version ahead of the one the recipes know.
    wav = wav_bytes(523)
    repo.add("gcin-voice", "0~20170223-4", {"usr/share/gcin/ogg/ㄅ/3.ogg": wav})
    repo.index()
    mirror = tmp_path / "mirror.sources"
    mirror.write_text(f"Types: deb\nURIs: {repo.url}\nSuites: ./\nTrusted: yes\n")
    env = {**system_apt(tmp_path, "", update=False), APT_SOURCES_ENV: str(mirror)}
    root = tmp_path / "data"
    cmd = [sys.executable, "-m", "desta.cli", "data", "fetch", "--root", str(root),
           "--source", "gcin"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "1 package(s)" in out.stdout and "1 downloaded" in out.stdout
    assert "apt offers 0~20170223-4; desta's recipes were written against 0~20170223-3" \
        in out.stderr
    assert (root / "usr/share/gcin/ogg/ㄅ/3.ogg").read_bytes() == wav
    record = json.loads((root / STATE_DIR / "sources.json").read_text())
    assert record["apt_sources"] == str(mirror) and record["apt_lists"] == "private"
    assert record["sources"]["gcin"]["packages"]["gcin-voice"]["licence"] == \
        get_source("gcin").licence

    from desta.cli import main

    capsys.readouterr()
    assert main(["data", "fetch", "--list", "--root", str(root)]) == 0
    listed = capsys.readouterr().out
    gcin_line = next(line for line in listed.splitlines() if line.startswith("gcin "))
    assert "[1/1 unpacked]" in gcin_line
    assert main(["data", "fetch", "--list"]) == 0 and "unpacked" not in capsys.readouterr().out
    monkeypatch.setenv(APT_SOURCES_ENV, str(mirror))
    assert main([*cmd[3:-1], "nope"]) == 2
    assert "unknown real-audio source 'nope'" in capsys.readouterr().err
    assert main(["data", "fetch", "--source", "gcin"]) == 2
    assert "--root DIR is required" in capsys.readouterr().err


def test_registry_is_consistent() -> None:
    from desta.data.sources import SOURCES

    for source in SOURCES.values():
        assert set(source.versions) == set(source.packages), source.name
        assert all(source.licence_of(p) for p in source.packages)
    assert get_source("asterisk").licence_of("asterisk-core-sounds-ru-g722") == "CC-BY-3.0"
    assert get_source("asterisk").licence_of("asterisk-core-sounds-en") == "CC-BY-SA-3.0"
    with pytest.raises(ConfigError, match="versions names package.*not-listed"):
        Source(name="x", packages=("a",), licence="MIT", recipes=(), description="",
               versions={"not-listed": "1"})

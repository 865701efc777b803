"""GCompris (Qt .rcc resources) and FluidR3 SoundFont recipes, on package trees written here.

The .rcc files are built by a writer of Qt's binary resource format (v1-v3: tree, names and
data sections, zlib entries as qCompress output, zstd entries as zstd frames) holding real
OGG Vorbis, WAV and AAC clips and QML/JS data files in GCompris' own syntax. The SoundFont
is a minimal valid SF2 (RIFF sfbk: one looped 440 Hz sine sample, one instrument, a preset
per program the recipe renders), so pitches and durations of the rendered clips can be
checked exactly.
"""

from __future__ import annotations

import io
import json
import logging
import re
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import zstandard

from desta.data.recipes import DatasetError
from desta.data.recipes import gcompris as gc
from desta.data.recipes import soundfont as sfont

# ---------------------------------------------------------------------------------------------
# Qt resource writer (the layout of Qt's rcc.cpp: header, data blobs, names, tree)


def _qt_hash(name: str) -> int:
    h = 0
    for char in name:
        h = (h << 4) + ord(char)
        h ^= (h & 0xF0000000) >> 23
        h &= 0x0FFFFFFF
    return h


def build_rcc(files: dict[str, tuple[bytes, str]], *, version: int = 3) -> bytes:
    """A Qt binary resource file holding `files` ({path: (bytes, "none"|"zlib"|"zstd")})."""
    tree: dict = {}
    for path, content in files.items():
        node = tree
        *folders, name = path.split("/")
        for folder in folders:
            node = node.setdefault(folder, {})
        node[name] = content
    data, names, name_at = bytearray(), bytearray(), {}

    def name_offset(name: str) -> int:
        if name not in name_at:
            name_at[name] = len(names)
            names.extend(struct.pack(">HI", len(name), _qt_hash(name)) + name.encode("utf-16-be"))
        return name_at[name]

    # Breadth first, as rcc does: a folder's children get consecutive indices, sorted by hash.
    entries: list[tuple[str, object]] = [("", tree)]
    records: list[bytes] = []
    index = 0
    while index < len(entries):
        name, node = entries[index]
        offset = name_offset(name) if index else 0
        tail = b"" if version == 1 else struct.pack(">Q", 1_700_000_000_000)
        if isinstance(node, dict):
            children = sorted(node.items(), key=lambda item: _qt_hash(item[0]))
            records.append(struct.pack(">IHII", offset, 0x02, len(children), len(entries))
                           + tail)
            entries.extend(children)
        else:
            content, compression = node
            stored = {"none": content,
                      "zlib": struct.pack(">I", len(content)) + zlib.compress(content, 9),
                      "zstd": zstandard.ZstdCompressor(level=19).compress(content)}[compression]
            flags = {"none": 0, "zlib": 0x01, "zstd": 0x04}[compression]
            records.append(struct.pack(">IHHHI", offset, flags, 0, 1, len(data)) + tail)
            data.extend(struct.pack(">I", len(stored)) + stored)
        index += 1
    header_size = 20 if version < 3 else 24
    data_at = header_size
    names_at = data_at + len(data)
    tree_at = names_at + len(names)
    header = b"qres" + struct.pack(">IIII", version, tree_at, data_at, names_at)
    if version >= 3:
        header += struct.pack(">I", 0x01)
    return header + bytes(data) + bytes(names) + b"".join(records)


# ---------------------------------------------------------------------------------------------
# real audio

_tones = 0


def _tone(seconds: float = 0.4, rate: int = 22_050) -> np.ndarray:
    global _tones
    _tones += 1
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * (220 + 41 * _tones) * t)).astype(np.float32)


def ogg_bytes(seconds: float = 0.4) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, _tone(seconds), 22_050, format="OGG", subtype="VORBIS")
    return buffer.getvalue()


def wav_bytes(seconds: float = 0.3) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, _tone(seconds, 44_100), 44_100, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def aac_bytes(seconds: float = 1.0) -> bytes:
    """ADTS AAC (what libsndfile cannot read), encoded with PyAV."""
    rate = 22_050
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="adts") as out:
        stream = out.add_stream("aac", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(_tone(seconds, rate)[None, :], format="fltp",
                                           layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# a gcompris-qt-data tree

ACT = "gcompris/src/activities"

FARM_BOARD = """/* GCompris
*
*   SPDX-License-Identifier: GPL-3.0-or-later
*/
import QtQuick 2.12
import GCompris 1.0 as GCompris

QtObject {

    property string backgroundImage: "qrc:/gcompris/src/activities/explore_farm_animals/resource/animals/farm-animals.svg"
    property var tab : [
        {
            "image": "qrc:/gcompris/src/activities/explore_farm_animals/resource/animals/horse.svg",
            "title": qsTr("Horse"),
            "text": qsTr("The horse goes 'neigh'. Horses {really} run fast."),
            "audio": GCompris.ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/explore_farm_animals/resource/animals/horse.$CA"),
            "x": 0.18,
            "y": 0.43
        },
        // { "title": qsTr("Ghost"), "audio": GCompris.ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/explore_farm_animals/resource/animals/ghost.$CA") },
        {
            "image": "qrc:/gcompris/src/activities/explore_farm_animals/resource/animals/chicken.svg",
            "title": qsTr("Chicken"),
            "text": qsTr("The chicken goes \\"cluck\\". See http://example.org/{x}"),
            "audio": GCompris.ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/explore_farm_animals/resource/animals/chickens.$CA"),
            "x": 0.7
        }
        /* {
            "title": qsTr("Unicorn"),
            "audio": GCompris.ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/explore_farm_animals/resource/animals/unicorn.$CA")
        } */
    ]

    property var instructions : [
        {
            "text": qsTr("Click on each farm animal to discover them.")
        }
    ]
}
"""

WORLD_BOARD = """import QtQuick 2.12
import GCompris 1.0 as GCompris

QtObject {
    property var tab : [
        {
            "image": "qrc:/gcompris/src/activities/explore_world_music/resource/music/suitcase.svg",
            "title": qsTr("Mexico"),
            "text": qsTr("Mariachi is a famous type of Mexican music."),
            "audio": GCompris.ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/explore_world_music/resource/music/mexico.$CA"),
        },
        {
            "title": qsTr("European Classical Music"),
            "text": qsTr("Europe is the home of classical music."),
            "audio": GCompris.ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/explore_world_music/resource/music/beethoven.$CA"),
        },
        {
            "title": qsTr("Atlantis"),
            "audio": GCompris.ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/explore_world_music/resource/music/atlantis.$CA"),
        }
    ]
}
"""

INSTRUMENTS_JS = """/* GCompris - instruments.js
 *   SPDX-License-Identifier: GPL-3.0-or-later
 */
var colors =
        [
            [ // Level 1
            {
                "image": "qrc:/gcompris/src/activities/instruments/resource/clarinet.svg",
                "text": qsTr("Find the clarinet"),
                "audio": ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/instruments/resource/clarinet.$CA")
            },
            {
                "image": "qrc:/gcompris/src/activities/instruments/resource/flute_traversiere.svg",
                "text": qsTr("Find the transverse flute"),
                "audio": ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/instruments/resource/flute_traversiere.$CA")
            }
            ],
            [ // Level 2
            {
                "text": qsTr("Find the clarinet"),
                "audio": ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/instruments/resource/clarinet.$CA")
            },
            {
                "text": qsTr("Find the electric guitar"),
                "audio": ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/instruments/resource/electric_guitar.$CA")
            },
            {
                "text": qsTr("Find the theremin"),
                "audio": ApplicationInfo.getAudioFilePath("qrc:/gcompris/src/activities/instruments/resource/theremin.$CA")
            }
            ]
        ]
"""


def build_gcompris(base: Path, *, version: int = 3) -> Path:
    """``base/usr/share/gcompris-qt/rcc/*.rcc`` as in gcompris-qt-data; returns `base`."""
    rcc_dir = base / "usr/share/gcompris-qt/rcc"
    rcc_dir.mkdir(parents=True)
    farm = f"{ACT}/explore_farm_animals"
    world = f"{ACT}/explore_world_music"
    inst = f"{ACT}/instruments"
    memory = f"{ACT}/memory-sound"
    packages = {
        "explore_farm_animals": {
            f"{farm}/ActivityInfo.qml": (b"import GCompris 1.0\nActivityInfo {}\n", "zlib"),
            f"{farm}/resource/board/board1.qml": (FARM_BOARD.encode(), "zlib"),
            f"{farm}/resource/animals/horse.ogg": (ogg_bytes(), "none"),
            f"{farm}/resource/animals/chickens.ogg": (ogg_bytes(), "none"),
            f"{farm}/resource/animals/horse.svg": (b"<svg/>", "zlib"),
        },
        "explore_world_music": {
            f"{world}/resource/board/board1.qml": (WORLD_BOARD.encode(), "zlib"),
            f"{world}/resource/music/mexico.ogg": (ogg_bytes(), "none"),
            f"{world}/resource/music/beethoven.ogg": (ogg_bytes(), "none"),
            f"{world}/resource/music/atlantis.ogg": (ogg_bytes(), "none"),
        },
        "instruments": {
            f"{inst}/instruments.js": (INSTRUMENTS_JS.encode(), "zlib"),
            f"{inst}/resource/clarinet.ogg": (ogg_bytes(), "none"),
            f"{inst}/resource/flute_traversiere.ogg": (ogg_bytes(), "none"),
            f"{inst}/resource/electric_guitar.aac": (aac_bytes(), "none"),
            f"{inst}/resource/theremin.ogg": (ogg_bytes(), "none"),
        },
        "memory-sound": {
            f"{memory}/memorysounddataset.js": (b"var url = 'qrc:/x/'\n", "zlib"),
            f"{memory}/resource/LRBark_1_LA_cut.ogg": (ogg_bytes(), "none"),
            f"{memory}/resource/LRFactory_noise_03_LA.ogg": (ogg_bytes(), "none"),
            f"{memory}/resource/LRWeird_1_LA.ogg": (ogg_bytes(), "none"),
            f"{memory}/resource/guitar_son1.ogg": (ogg_bytes(), "none"),
        },
        "canal_lock": {
            f"{ACT}/canal_lock/resource/door_open.wav": (wav_bytes(), "none"),
            f"{ACT}/canal_lock/resource/lock.wav": (wav_bytes(), "none"),
        },
        "melody": {  # compressed audio entries, as the package has for a few WAVs
            f"{ACT}/melody/resource/xylofon_son1.wav": (wav_bytes(), "zlib"),
            f"{ACT}/melody/resource/knock.wav": (wav_bytes(), "zstd"),
        },
    }
    for activity, files in packages.items():
        (rcc_dir / f"{activity}.rcc").write_bytes(build_rcc(files, version=version))
    # an activity the recipe does not read
    (rcc_dir / "chess.rcc").write_bytes(build_rcc(
        {f"{ACT}/chess/resource/move.wav": (wav_bytes(), "none")}, version=version))
    return base


# ---------------------------------------------------------------------------------------------
# the .rcc reader


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_lists_and_reads_every_entry(tmp_path: Path, version: int) -> None:
    files = {
        "gcompris/src/a/x.ogg": (ogg_bytes(), "none"),
        "gcompris/src/a/b/y.qml": (b"QtObject {}\n" * 50, "zlib"),
        "gcompris/src/a/b/z.wav": (wav_bytes(), "zstd"),
        "gcompris/src/\u00e9t\u00e9.txt": ("r\u00e9sum\u00e9".encode(), "zlib"),
    }
    path = tmp_path / "t.rcc"
    path.write_bytes(build_rcc(files, version=version))
    rcc = gc.RccFile(path)
    entries = {entry.path: entry for entry in rcc.entries()}
    assert set(entries) == set(files)
    for name, (content, compression) in files.items():
        assert entries[name].compression == compression
        assert rcc.read(entries[name]) == content


def _rcc_with(tmp_path: Path, blob: bytes) -> Path:
    path = tmp_path / "bad.rcc"
    path.write_bytes(blob)
    return path


def test_rcc_refuses_damaged_files(tmp_path: Path) -> None:
    good = build_rcc({"gcompris/src/a/x.wav": (wav_bytes(), "zlib")})

    with pytest.raises(DatasetError, match="bad.rcc: not a Qt resource file"):
        gc.RccFile(_rcc_with(tmp_path, b"RIFF" + good[4:]))
    with pytest.raises(DatasetError, match="version 9 is not supported"):
        gc.RccFile(_rcc_with(tmp_path, good[:4] + struct.pack(">I", 9) + good[8:]))
    with pytest.raises(DatasetError, match="bad.rcc: truncated"):
        gc.RccFile(_rcc_with(tmp_path, good[:-6])).entries()

    # corrupt the zlib stream of the one entry (it starts after header + size + length)
    broken = bytearray(good)
    broken[24 + 4 + 4 + 2] ^= 0xFF
    rcc = gc.RccFile(_rcc_with(tmp_path, bytes(broken)))
    with pytest.raises(DatasetError, match="'gcompris/src/a/x.wav': (corrupt zlib|zlib data)"):
        rcc.read(rcc.entries()[0])

    # a name that would leave the output folder
    unsafe = build_rcc({"gcompris/../../etc/passwd": (b"x", "none")})
    with pytest.raises(DatasetError, match=r"unsafe entry name '\.\.'"):
        gc.RccFile(_rcc_with(tmp_path, unsafe)).entries()

    # a folder whose child is the root: a loop
    tree_at = struct.unpack_from(">I", good, 8)[0]
    looped = bytearray(good)
    struct.pack_into(">I", looped, tree_at + 10, 0)  # root's first child -> entry 0
    with pytest.raises(DatasetError, match="directory loop"):
        gc.RccFile(_rcc_with(tmp_path, bytes(looped))).entries()


# ---------------------------------------------------------------------------------------------
# gcompris prepare + recipe


def _prepared(root: Path) -> Path:
    return root / "desta-prepared" / "gcompris" / "activities"


def test_gcompris_prepare_unpacks_audio_and_data(tmp_path: Path) -> None:
    root = build_gcompris(tmp_path)
    gc.prepare(root, progress=False)
    out = _prepared(root)
    horse = out / "explore_farm_animals/resource/animals/horse.ogg"
    source = gc.RccFile(root / "usr/share/gcompris-qt/rcc/explore_farm_animals.rcc")
    entry = next(e for e in source.entries() if e.path.endswith("horse.ogg"))
    assert horse.read_bytes() == source.read(entry)  # readable audio is kept byte for byte
    assert (out / "explore_farm_animals/resource/board/board1.qml").read_text() == FARM_BOARD
    assert not (out / "explore_farm_animals/resource/animals/horse.svg").exists()
    assert not (out / "chess").exists()  # not a labelled activity
    # compressed entries come out inflated
    assert sf.info(out / "melody/resource/xylofon_son1.wav").frames > 0
    assert sf.info(out / "melody/resource/knock.wav").frames > 0
    # AAC (unreadable by libsndfile) becomes 16 kHz mono FLAC with the same stem
    assert not (out / "instruments/resource/electric_guitar.aac").exists()
    flac = sf.info(out / "instruments/resource/electric_guitar.flac")
    assert (flac.samplerate, flac.channels, flac.format) == (16_000, 1, "FLAC")
    assert flac.duration == pytest.approx(1.0, abs=0.1)
    assert not list(root.rglob("*.partial")) and not list(root.rglob("*.encoded"))


def test_gcompris_prepare_is_idempotent(tmp_path: Path) -> None:
    root = build_gcompris(tmp_path)
    gc.prepare(root, progress=False)
    files = sorted(p for p in _prepared(root).rglob("*") if p.is_file())
    stamps = {p: p.stat().st_mtime_ns for p in files}
    (files[0]).unlink()
    gc.prepare(root, progress=False)
    assert sorted(p for p in _prepared(root).rglob("*") if p.is_file()) == files
    assert all(p.stat().st_mtime_ns == stamps[p] for p in files[1:])


def test_gcompris_prepare_reports_a_damaged_file_after_unpacking_the_rest(tmp_path: Path
                                                                         ) -> None:
    root = build_gcompris(tmp_path)
    (root / "usr/share/gcompris-qt/rcc/instruments.rcc").write_bytes(b"garbage" * 10)
    with pytest.raises(DatasetError, match=r"(?s)1 problem.*instruments\.rcc: not a Qt resource"):
        gc.prepare(root, progress=False)
    assert (_prepared(root) / "explore_farm_animals/resource/animals/horse.ogg").is_file()


def test_gcompris_recipe_labels_from_data_files_and_names(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    root = build_gcompris(tmp_path)
    gc.prepare(root, progress=False)
    with caplog.at_level(logging.INFO, logger="desta.data.recipes.gcompris"):
        records = {r["id"].removeprefix("gcompris_sounds/"): r
                   for r in gc.gcompris_sounds(root)}
    assert sorted(records) == sorted([
        "explore_farm_animals/horse", "explore_farm_animals/chickens",
        "memory-sound/LRBark_1_LA_cut", "memory-sound/LRFactory_noise_03_LA",
        "memory-sound/guitar_son1",
        "instruments/clarinet", "instruments/flute_traversiere", "instruments/electric_guitar",
        "explore_world_music/mexico", "explore_world_music/beethoven",
        "explore_world_music/atlantis",
        "canal_lock/door_open", "melody/xylofon_son1", "melody/knock",
    ])
    for record in records.values():
        assert record["dataset"] == "gcompris_sounds"
        assert record["audio"].is_file() and record["audio"].is_absolute()
        assert record["meta"]["source"] == "gcompris-qt-data"

    chicken = records["explore_farm_animals/chickens"]
    assert (chicken["domain"], chicken["attributes"]) == ("sound", {"Audio category": "chicken"})
    assert chicken["meta"]["category"] == "animal" and chicken["meta"]["animal"] == "chicken"
    assert chicken["meta"]["description"] == 'The chicken goes "cluck". See http://example.org/{x}'
    assert records["memory-sound/LRBark_1_LA_cut"]["attributes"] == {"Audio category": "dog"}
    assert records["memory-sound/LRFactory_noise_03_LA"]["meta"]["category"] == "urban"
    assert records["memory-sound/guitar_son1"]["attributes"] == {
        "Instrument": "guitar", "Family": "guitar"}  # acoustic or electric is not stated

    assert records["instruments/flute_traversiere"]["attributes"] == {
        "Instrument": "flute", "Family": "flute", "Source": "acoustic"}
    guitar = records["instruments/electric_guitar"]
    assert guitar["attributes"] == {"Instrument": "electric guitar", "Family": "guitar",
                                    "Source": "electronic"}
    assert guitar["audio"].suffix == ".flac"
    assert guitar["meta"]["label_from"] == "instruments.js text 'Find the electric guitar'"

    assert records["explore_world_music/mexico"]["attributes"] == {
        "Genre": "mariachi", "Region": "Mexico"}
    assert records["explore_world_music/beethoven"]["attributes"] == {
        "Genre": "classical", "Region": "Europe"}
    assert records["explore_world_music/atlantis"]["attributes"] == {"Region": "Atlantis"}
    assert records["melody/xylofon_son1"]["attributes"]["Family"] == "mallet"
    assert records["canal_lock/door_open"]["attributes"] == {"Audio category": "door opening"}

    assert "'theremin' has no family" in caplog.text
    assert "left out 2 clip(s)" in caplog.text
    assert "memory-sound/LRWeird_1_LA.ogg" in caplog.text and "canal_lock/lock.wav" in caplog.text


def test_gcompris_recipe_needs_the_prepare_step(tmp_path: Path) -> None:
    root = build_gcompris(tmp_path)
    with pytest.raises(DatasetError, match="prepare step"):
        list(gc.gcompris_sounds(root))
    gc.prepare(root, progress=False)
    (_prepared(root) / "instruments/instruments.js").unlink()
    with pytest.raises(DatasetError, match=r"activity data file not found at .*instruments\.js"):
        list(gc.gcompris_sounds(root))


def test_gcompris_recipe_skips_and_reports_missing_audio(tmp_path: Path) -> None:
    root = build_gcompris(tmp_path)
    gc.prepare(root, progress=False)
    (_prepared(root) / "explore_farm_animals/resource/animals/horse.ogg").unlink()
    ids = [r["id"] for r in gc.gcompris_sounds(root)]
    assert "gcompris_sounds/explore_farm_animals/horse" not in ids
    assert "gcompris_sounds/explore_farm_animals/chickens" in ids
    with pytest.raises(DatasetError, match=r"board1\.qml:\d+ does not exist"):
        list(gc.gcompris_sounds(root, missing_audio="error"))


@pytest.mark.parametrize(("activity", "relative", "old", "new", "problem"), [
    ("explore_farm_animals", "resource/board/board1.qml", 'qsTr("Horse")', 'qsTr("")',
     "entry has an audio file but no title"),
    ("explore_farm_animals", "resource/board/board1.qml",
     '"qrc:/gcompris/src/activities/explore_farm_animals/resource/animals/horse.$CA"',
     '"file:///etc/passwd"', "is not a 'qrc:/gcompris/src/"),
    ("explore_farm_animals", "resource/board/board1.qml",
     "qrc:/gcompris/src/activities/explore_farm_animals/resource/animals/horse.$CA",
     "qrc:/gcompris/src/../../../etc/horse.$CA", "contains '..'"),
    ("instruments", "instruments.js", 'qsTr("Find the clarinet")', 'qsTr("Clarinet!")',
     "does not name the instrument"),
])
def test_gcompris_malformed_data_names_file_and_line(tmp_path: Path, activity: str,
                                                     relative: str, old: str, new: str,
                                                     problem: str) -> None:
    root = build_gcompris(tmp_path)
    gc.prepare(root, progress=False)
    data = _prepared(root) / activity / relative
    text = data.read_text()
    line = text[:text.index(old)].count("\n") + 1
    data.write_text(text.replace(old, new, 1))
    with pytest.raises(DatasetError) as error:
        list(gc.gcompris_sounds(root))
    message = str(error.value)
    assert problem in message
    # the line of the entry's "{": at or a few lines above the edited field
    reported = int(re.search(rf"{re.escape(data.name)}:(\d+)", message).group(1))
    assert line - 6 <= reported <= line


# ---------------------------------------------------------------------------------------------
# a minimal SoundFont (SF2 2.01): RIFF sfbk with INFO, sdta (smpl) and the nine pdta chunks


SINE_RATE, SINE_PERIOD, SINE_FRAMES = 44_000, 100, 4_400  # 440 Hz, 44 whole periods, looped


def _chunk(tag: bytes, data: bytes) -> bytes:
    return tag + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)


def _list(kind: bytes, *chunks: bytes) -> bytes:
    return _chunk(b"LIST", kind + b"".join(chunks))


def build_sf2(presets: list[tuple[int, int, str]]) -> bytes:
    """One looped 440 Hz sine sample (root key 69), one instrument, a preset per
    ``(bank, program, name)`` pointing at it."""
    wave = np.round(16_000 * np.sin(2 * np.pi * np.arange(SINE_FRAMES) / SINE_PERIOD))
    smpl = wave.astype("<i2").tobytes() + b"\0" * 92  # 46 zero samples after each sample
    count = len(presets)
    phdr = b"".join(struct.pack("<20sHHHIII", name.encode(), program, bank, i, 0, 0, 0)
                    for i, (bank, program, name) in enumerate(presets))
    phdr += struct.pack("<20sHHHIII", b"EOP", 0, 0, count, 0, 0, 0)
    pbag = b"".join(struct.pack("<HH", i, 0) for i in range(count + 1))
    pgen = struct.pack("<HH", 41, 0) * count + struct.pack("<HH", 0, 0)  # 41: instrument
    inst = struct.pack("<20sH", b"sine", 0) + struct.pack("<20sH", b"EOI", 1)
    ibag = struct.pack("<HH", 0, 0) + struct.pack("<HH", 3, 0)
    # 38 releaseVolEnv 1200 timecents (2 s, longer than a clip's tail: a note still rings
    # when its clip ends), 54 sampleModes 1 (loop), 53 sampleID 0 (last, as the spec wants)
    igen = (struct.pack("<Hh", 38, 1200) + struct.pack("<HH", 54, 1) + struct.pack("<HH", 53, 0)
            + struct.pack("<HH", 0, 0))
    shdr = struct.pack("<20sIIIIIBbHH", b"sine", 0, SINE_FRAMES, 0, SINE_FRAMES, SINE_RATE,
                       69, 0, 0, 1) + struct.pack("<20sIIIIIBbHH", b"EOS", *[0] * 9)
    body = b"sfbk" + _list(
        b"INFO", _chunk(b"ifil", struct.pack("<HH", 2, 1)), _chunk(b"isng", b"EMU8000\0"),
        _chunk(b"INAM", b"desta test font\0"),
    ) + _list(b"sdta", _chunk(b"smpl", smpl)) + _list(
        b"pdta", _chunk(b"phdr", phdr), _chunk(b"pbag", pbag), _chunk(b"pmod", b"\0" * 10),
        _chunk(b"pgen", pgen), _chunk(b"inst", inst), _chunk(b"ibag", ibag),
        _chunk(b"imod", b"\0" * 10), _chunk(b"igen", igen), _chunk(b"shdr", shdr),
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def build_soundfont(base: Path, *, leave_out: tuple[int, int] | None = None) -> Path:
    """``base/usr/share/sounds/sf2/FluidR3_GM.sf2`` with a preset per program rendered."""
    presets = [(p.bank, p.number, p.gm_name[:19]) for p in sfont.PROGRAMS
               if (p.bank, p.number) != leave_out]
    path = base / "usr/share/sounds/sf2/FluidR3_GM.sf2"
    path.parent.mkdir(parents=True)
    path.write_bytes(build_sf2(presets))
    return base


def _labels(root: Path) -> list[dict]:
    text = (root / "desta-prepared/soundfont/labels.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def _peak_hz(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), 1 << 17))
    return float(np.argmax(spectrum) * rate / (1 << 17))


def test_soundfont_prepare_renders_labelled_notes_and_phrases(tmp_path: Path) -> None:
    root = build_soundfont(tmp_path)
    sfont.prepare(root, progress=False, clips_per_program=5)
    labels = _labels(root)
    assert len(labels) == 5 * len(sfont.PROGRAMS)  # a sine sounds on every key
    programs = {(p.bank, p.number): p for p in sfont.PROGRAMS}
    for row in labels:
        program = programs[(row["bank"], row["program"])]
        assert (row["instrument"], row["family"], row["gm_name"]) == (
            program.instrument, program.family, program.gm_name)
        audio, rate = sf.read(root / "desta-prepared/soundfont" / row["file"], dtype="float32")
        info = sf.info(root / "desta-prepared/soundfont" / row["file"])
        assert (info.samplerate, info.channels, info.format) == (16_000, 1, "FLAC")
        assert len(audio) / rate == pytest.approx(row["duration"], abs=1e-3)
        assert 2.0 <= row["duration"] <= 6.0
        assert np.abs(audio).max() > 0.01
        if row["kind"] == "phrase":
            assert len(row["notes"]) >= 2 and row["pattern"]
            if not program.drums:
                assert all(program.low <= note <= program.high for note in row["notes"])
        elif program.drums:
            assert row["drum"] == sfont.DRUM_KEYS[row["pitch"]]
        else:
            assert program.low <= row["pitch"] <= program.high
            # the rendered note sounds at the labelled MIDI pitch (within 20 cents)
            expected = 440.0 * 2 ** ((row["pitch"] - 69) / 12)
            heard = _peak_hz(audio[: rate], rate)
            assert abs(1200 * np.log2(heard / expected)) < 20, (row["file"], heard)
    kinds = [row["kind"] for row in labels if row["bank"] == 0 and row["program"] == 0]
    assert kinds == ["note"] * 3 + ["phrase"] * 2


def test_soundfont_prepare_is_deterministic_and_grows_by_adding(tmp_path: Path) -> None:
    small = build_soundfont(tmp_path / "a")
    large = build_soundfont(tmp_path / "b")
    sfont.prepare(small, progress=False, clips_per_program=4)
    sfont.prepare(large, progress=False, clips_per_program=6)
    out_small, out_large = (r / "desta-prepared/soundfont" for r in (small, large))
    files = sorted(p.relative_to(out_small) for p in out_small.rglob("*.flac"))
    assert len(files) == 4 * len(sfont.PROGRAMS)
    # every clip of the smaller run is in the larger one, byte for byte, although the
    # larger run rendered other clips before each of them
    for relative in files:
        assert (out_small / relative).read_bytes() == (out_large / relative).read_bytes()
    assert len(list(out_large.rglob("*.flac"))) == 6 * len(sfont.PROGRAMS)

    # a rerun keeps what is there and rewrites the same labels
    stamps = {p: p.stat().st_mtime_ns for p in out_small.rglob("*.flac")}
    before = (out_small / "labels.jsonl").read_bytes()
    sfont.prepare(small, progress=False, clips_per_program=4)
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())
    assert (out_small / "labels.jsonl").read_bytes() == before


def test_soundfont_prepare_reports_missing_presets_after_rendering_the_rest(tmp_path: Path
                                                                           ) -> None:
    root = build_soundfont(tmp_path, leave_out=(0, 40))
    with pytest.raises(DatasetError, match=r"no preset for Violin \(bank 0, program 40\)"):
        sfont.prepare(root, progress=False, clips_per_program=2)
    labels = _labels(root)
    assert len(labels) == 2 * (len(sfont.PROGRAMS) - 1)
    assert not any(row["instrument"] == "violin" for row in labels)


def test_soundfont_prepare_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="FluidR3_GM.sf2"):
        sfont.prepare(tmp_path, progress=False)  # no package unpacked
    root = build_soundfont(tmp_path)
    with pytest.raises(DatasetError, match="clips_per_program must be a positive integer"):
        sfont.prepare(root, progress=False, clips_per_program=0)
    (root / "usr/share/sounds/sf2/FluidR3_GM.sf2").write_bytes(b"RIFF\0\0\0\0nope")
    with pytest.raises(DatasetError, match="not a readable SoundFont"):
        sfont.prepare(root, progress=False)


def test_soundfont_recipe_records(tmp_path: Path) -> None:
    root = build_soundfont(tmp_path)
    sfont.prepare(root, progress=False, clips_per_program=5)
    records = list(sfont.soundfont_instruments(root))
    assert len(records) == len(_labels(root))
    by_id = {r["id"]: r for r in records}
    assert len(by_id) == len(records)
    for record in records:
        assert record["domain"] == "music" and record["dataset"] == "soundfont_instruments"
        assert record["audio"].is_file() and record["meta"]["source"] == "fluid-soundfont-gm"
        assert list(record["attributes"])[:3] == ["Instrument", "Family", "Source"]

    note = next(r for r in records if r["meta"]["kind"] == "note" and r["meta"]["bank"] == 0
                and r["meta"]["program"] == 40)
    pitch, velocity = note["meta"]["pitch"], note["meta"]["velocity"]
    assert note["id"] == (f"soundfont_instruments/000-040-violin/"
                          f"note-{pitch:03d}-{velocity:03d}")
    assert note["attributes"] == {"Instrument": "violin", "Family": "string",
                                  "Source": "acoustic", "MIDI Note": f"{pitch:03d}",
                                  "Velocity": str(velocity)}
    assert note["meta"]["gm_name"] == "Violin"
    hit = next(r for r in records if r["meta"]["kind"] == "note" and r["meta"]["program"] == 25
               and r["meta"]["bank"] == 128)
    assert hit["attributes"] == {"Instrument": sfont.DRUM_KEYS[hit["meta"]["pitch"]],
                                 "Family": "percussion", "Source": "electronic"}
    phrase = next(r for r in records if r["meta"]["kind"] == "phrase"
                  and r["meta"]["program"] == 80)
    assert phrase["attributes"] == {"Instrument": "square-wave synth lead",
                                    "Family": "synth_lead", "Source": "electronic"}
    assert phrase["meta"]["pattern"] in ("scale run", "arpeggio", "melody")
    assert phrase["duration"] == pytest.approx(sf.info(phrase["audio"]).duration, abs=1e-3)


def test_soundfont_recipe_needs_prepare_and_names_bad_lines(tmp_path: Path) -> None:
    root = build_soundfont(tmp_path)
    with pytest.raises(DatasetError, match="prepare step"):
        list(sfont.soundfont_instruments(root))
    sfont.prepare(root, progress=False, clips_per_program=1)
    labels = root / "desta-prepared/soundfont/labels.jsonl"
    lines = labels.read_text().splitlines()
    for bad, problem in [
        ("{not json", "not valid JSON"),
        (json.dumps({**json.loads(lines[1]), "family": 3}), "field 'family'"),
        (json.dumps({**json.loads(lines[1]), "pitch": 200}), "'pitch' is missing or not 0-127"),
        (json.dumps({**json.loads(lines[1]), "file": "../../x.flac"}), "contains '..'"),
    ]:
        labels.write_text("\n".join([lines[0], bad, *lines[2:]]) + "\n")
        with pytest.raises(DatasetError, match=problem) as error:
            list(sfont.soundfont_instruments(root))
        assert "labels.jsonl:2" in str(error.value)

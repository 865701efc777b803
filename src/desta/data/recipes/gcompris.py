"""GCompris activity sounds: real animal, environment and instrument recordings that
gcompris-qt-data ships inside Qt binary resource files (``.rcc``).

Package layout (a ``dpkg -x`` tree, or ``/`` where the package is installed)::

    usr/share/gcompris-qt/rcc/<activity>.rcc      one Qt resource file per activity

:func:`prepare` unpacks the audio and the data files (``.qml``/``.js``/``.json``) of the
activities listed in :data:`ACTIVITIES`, keeping the paths the resources have inside the
application (``qrc:/gcompris/src/activities/...``)::

    desta-prepared/gcompris/activities/instruments/instruments.js
    desta-prepared/gcompris/activities/instruments/resource/piano.ogg
    desta-prepared/gcompris/activities/explore_farm_animals/resource/board/board1.qml

Audio that libsndfile reads (Debian ships OGG Vorbis and WAV) is written byte for byte;
anything else (AAC, as other GCompris builds use) is transcoded to 16 kHz mono FLAC with the
same stem. The ``gcompris_sounds`` recipe then labels the clips from the activities' own data
files (the animal shown in ``board1.qml``, the instrument named in ``instruments.js``) or,
for activities without one, from the file name through :data:`FILE_LABELS`.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from desta.data.recipes import DatasetError, make_record, register_recipe
from desta.data.recipes.metadata import AudioCheck, malformed
from desta.data.recipes.paths import require_dir, require_file, resolve_under
from desta.data.recipes.prepared import (
    missing_prepared,
    prepared_dir,
    transcode_to_flac,
    write_atomic,
)

__all__ = ["ACTIVITIES", "FILE_LABELS", "RccEntry", "RccFile", "gcompris_sounds", "prepare"]

logger = logging.getLogger(__name__)

RCC_DIR = "usr/share/gcompris-qt/rcc"
SOURCE = "gcompris"  # desta.data.sources entry
PACKAGE = "gcompris-qt-data"

# The activities whose .rcc files hold labelled real recordings (every clip of all 186 files
# was checked against its spectrogram: the others hold UI effects, synthetic tones or no
# audio at all).
ACTIVITIES = (
    "explore_farm_animals", "memory-sound", "instruments", "explore_world_music",
    "canal_lock", "guessnumber", "railroad", "reversecount", "scalesboard", "melody",
)

AUDIO_SUFFIXES = (".ogg", ".oga", ".wav", ".mp3", ".opus", ".flac", ".aac", ".m4a")
DATA_SUFFIXES = (".qml", ".js", ".json")
# `getAudioFilePath("...x.$CA")` picks the build's compressed-audio suffix at run time.
_CA = ".$CA"


# ---------------------------------------------------------------------------------------------
# Qt resource files (documented in Qt's rcc.cpp / qresource.cpp)
#
# header: "qres", u32 version (1-3), u32 tree offset, u32 data offset, u32 names offset,
#         v3+: u32 overall flags. All integers big-endian.
# tree:   one entry per node, 14 bytes (v1) or 22 bytes (v2+: + u64 last-modified ms):
#         u32 name offset, u16 flags, then a directory's u32 child count + u32 first child
#         index, or a file's u16 country + u16 language + u32 data offset. Entry 0 is the root.
# names:  u16 length (UTF-16 units), u32 hash, UTF-16BE characters.
# data:   u32 size, then the bytes; zlib entries hold qCompress output (u32 big-endian
#         uncompressed length + zlib stream), zstd entries a zstd frame.

_COMPRESSED, _DIRECTORY, _COMPRESSED_ZSTD = 0x01, 0x02, 0x04
_KNOWN_FLAGS = _COMPRESSED | _DIRECTORY | _COMPRESSED_ZSTD
_MAX_DEPTH = 64


@dataclass(frozen=True)
class RccEntry:
    """One file inside a Qt resource file."""

    path: str  # "gcompris/src/activities/instruments/resource/piano.ogg"
    compression: str  # "none", "zlib" or "zstd"
    offset: int  # where the stored bytes start in the .rcc file
    size: int  # stored (possibly compressed) size


class RccFile:
    """A Qt binary resource file (``rcc -binary`` output, format versions 1-3), read whole.

    ``entries()`` lists the files; ``read(entry)`` returns one file's bytes, decompressed.
    Anything that does not fit the format (wrong magic, offsets beyond the end, unknown flags,
    a directory loop, an unsafe name, a bad compressed stream) is a DatasetError naming the
    file and the entry.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.blob = path.read_bytes()
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read the Qt resource file: {exc}") from None
        if len(self.blob) < 20 or self.blob[:4] != b"qres":
            raise DatasetError(
                f"{path}: not a Qt resource file (expected the magic 'qres', found "
                f"{self.blob[:4]!r}); the {PACKAGE} package may be damaged, fetch it again"
            )
        self.version, self.tree, self.data, self.names = struct.unpack_from(">IIII", self.blob, 4)
        if self.version not in (1, 2, 3):
            raise DatasetError(f"{path}: Qt resource format version {self.version} is not "
                               f"supported (1-3 are)")
        self.entry_size = 14 if self.version == 1 else 22

    def _unpack(self, fmt: str, offset: int, what: str) -> tuple[int, ...]:
        if offset < 0 or offset + struct.calcsize(fmt) > len(self.blob):
            raise DatasetError(f"{self.path}: truncated or corrupt: {what} at byte {offset} "
                               f"lies beyond the end of the file ({len(self.blob)} bytes)")
        return struct.unpack_from(fmt, self.blob, offset)

    def _name(self, offset: int, where: str) -> str:
        start = self.names + offset
        (length,) = self._unpack(">H", start, f"the name of {where}")
        raw = self.blob[start + 6:start + 6 + 2 * length]
        if len(raw) != 2 * length:
            raise DatasetError(f"{self.path}: truncated name of {where} at byte {start}")
        try:
            name = raw.decode("utf-16-be")
        except UnicodeDecodeError:
            raise DatasetError(f"{self.path}: the name of {where} is not valid UTF-16") from None
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
            raise DatasetError(f"{self.path}: unsafe entry name {name!r} in {where}; refusing "
                               f"to unpack it")
        return name

    def entries(self) -> list[RccEntry]:
        """Every file in the resource tree, depth first in stored order."""
        found: list[RccEntry] = []
        self._walk(0, "", found, set(), 0)
        return found

    def _walk(self, index: int, prefix: str, found: list[RccEntry], seen: set[int],
              depth: int) -> None:
        where = f"tree entry {index}" + (f" (under {prefix!r})" if prefix else "")
        if index in seen or depth > _MAX_DEPTH:
            raise DatasetError(f"{self.path}: corrupt resource tree: {where} is reached twice "
                               f"(a directory loop)")
        seen.add(index)
        at = self.tree + index * self.entry_size
        self._unpack(f">{self.entry_size}s", at, where)  # the whole entry is in the file
        name_offset, flags = self._unpack(">IH", at, where)
        if flags & ~_KNOWN_FLAGS:
            raise DatasetError(f"{self.path}: {where} has unknown flags {flags:#x}")
        name = self._name(name_offset, where) if index else ""
        path = f"{prefix}{name}"
        if flags & _DIRECTORY:
            count, first = self._unpack(">II", at + 6, where)
            for child in range(first, first + count):
                self._walk(child, f"{path}/" if index else "", found, seen, depth + 1)
            return
        if index == 0:
            raise DatasetError(f"{self.path}: corrupt resource tree: the root is not a folder")
        (data_offset,) = self._unpack(">I", at + 10, where)
        (size,) = self._unpack(">I", self.data + data_offset, f"the size of {path!r}")
        start = self.data + data_offset + 4
        if start + size > len(self.blob):
            raise DatasetError(f"{self.path}: truncated: {path!r} needs {size} bytes at byte "
                               f"{start}, the file has {len(self.blob)}")
        compression = ("zstd" if flags & _COMPRESSED_ZSTD
                       else "zlib" if flags & _COMPRESSED else "none")
        found.append(RccEntry(path, compression, start, size))

    def read(self, entry: RccEntry) -> bytes:
        """The file's bytes, decompressed."""
        stored = self.blob[entry.offset:entry.offset + entry.size]
        where = f"{self.path}: entry {entry.path!r}"
        if entry.compression == "zlib":
            if len(stored) < 4:
                raise DatasetError(f"{where}: zlib entry shorter than its 4-byte length")
            (expected,) = struct.unpack_from(">I", stored)
            try:
                data = zlib.decompress(stored[4:])
            except zlib.error as exc:
                raise DatasetError(f"{where}: corrupt zlib data ({exc})") from None
            if len(data) != expected:
                raise DatasetError(f"{where}: zlib data inflates to {len(data)} bytes, the "
                                   f"header says {expected}")
            return data
        if entry.compression == "zstd":
            import zstandard

            try:
                return zstandard.ZstdDecompressor().decompressobj().decompress(stored)
            except zstandard.ZstdError as exc:
                raise DatasetError(f"{where}: corrupt zstd data ({exc})") from None
        return stored


# ---------------------------------------------------------------------------------------------
# prepare: unpack the activities' audio and data files


def _prepared_path(out: Path, entry_path: str) -> Path:
    relative = entry_path.removeprefix("gcompris/src/")
    return resolve_under(out, relative, source=entry_path)


def _readable(data: bytes) -> bool:
    try:
        sf.info(io.BytesIO(data))
    except (RuntimeError, TypeError):  # LibsndfileError is a RuntimeError
        return False
    return True


def _unpack_entry(rcc: RccFile, entry: RccEntry, out: Path) -> str:
    """Unpack one entry unless already done; returns "written", "transcoded" or "kept"."""
    target = _prepared_path(out, entry.path)
    suffix = target.suffix.lower()
    flac = target.with_suffix(".flac")
    if target.is_file() or (suffix in AUDIO_SUFFIXES and flac.is_file()):
        return "kept"
    data = rcc.read(entry)
    if suffix in AUDIO_SUFFIXES and not _readable(data):
        encoded = target.with_name(f".{target.name}.encoded")
        try:
            write_atomic(encoded, data)
            transcode_to_flac(encoded, flac)
        except DatasetError as exc:
            raise DatasetError(f"{rcc.path}: entry {entry.path!r}: {exc}") from None
        finally:
            encoded.unlink(missing_ok=True)
        return "transcoded"
    write_atomic(target, data)
    return "written"


def prepare(root: Path, *, progress: bool = True) -> None:
    """Unpack the audio and data files of :data:`ACTIVITIES` from ``<root>/usr/share/
    gcompris-qt/rcc/*.rcc`` into ``<root>/desta-prepared/gcompris/``.

    Idempotent: files already unpacked are skipped, and every file is written under a
    temporary name and renamed, so an interrupted run leaves no half file. A damaged .rcc
    file or entry does not stop the others; the problems are raised together at the end as
    one DatasetError.
    """
    from tqdm import tqdm

    root = Path(root)
    rcc_dir = require_dir(root / RCC_DIR, "gcompris", f"{PACKAGE} resource (.rcc)")
    out = prepared_dir(root, SOURCE)
    counts = {"written": 0, "transcoded": 0, "kept": 0}
    problems: list[str] = []
    for activity in tqdm(ACTIVITIES, desc="gcompris: unpack .rcc", unit="file",
                         disable=not progress):
        path = rcc_dir / f"{activity}.rcc"
        if not path.is_file():
            logger.warning("gcompris: %s not found; its clips are left out", path)
            continue
        try:
            rcc = RccFile(path)
            entries = rcc.entries()
        except DatasetError as exc:
            problems.append(str(exc))
            continue
        for entry in entries:
            if not entry.path.lower().endswith(AUDIO_SUFFIXES + DATA_SUFFIXES):
                continue  # images, fonts
            try:
                counts[_unpack_entry(rcc, entry, out)] += 1
            except DatasetError as exc:
                problems.append(str(exc))
    logger.info("gcompris: %d file(s) unpacked, %d transcoded to FLAC, %d already there",
                counts["written"], counts["transcoded"], counts["kept"])
    if problems:
        raise DatasetError(f"gcompris prepare: {len(problems)} problem(s); everything else "
                           f"was unpacked:\n" + "\n".join(problems))


# ---------------------------------------------------------------------------------------------
# labels


@dataclass(frozen=True)
class Label:
    """What a clip is: a sound (Audio category + coarse category) or an instrument."""

    name: str  # "Audio category" for sounds, "Instrument" for music
    category: str | None = None  # sounds: animal, nature, water, weather, domestic, ...
    animal: str | None = None
    family: str | None = None  # music: an NSynth family, or percussion
    source: str | None = None  # music: acoustic / electronic, when known

    @property
    def domain(self) -> str:
        return "music" if self.family else "sound"

    def attributes(self) -> dict[str, str]:
        if self.domain == "sound":
            return {"Audio category": self.name}
        attributes = {"Instrument": self.name, "Family": self.family or ""}
        if self.source:
            attributes["Source"] = self.source
        return attributes

    def meta(self) -> dict[str, str]:
        meta = {"category": self.category} if self.category else {}
        if self.animal:
            meta["animal"] = self.animal
        return meta


def _sound(name: str, category: str, animal: str | None = None) -> Label:
    return Label(name, category=category, animal=animal)


def _instrument(name: str, family: str, source: str | None = "acoustic") -> Label:
    return Label(name, family=family, source=source)


# Activities without a data file that names their clips: labels from the file name, checked
# against each clip's spectrogram and the package's copyright file (freesound sources).
# Keys are "<activity>/<file stem regex>"; stems that match nothing (synthetic "Weird" sounds,
# fireballs, unidentified hits/rings, a music snippet, UI effects) are left out and counted.
FILE_LABELS: dict[str, Label] = {
    "memory-sound/LRApplauses_\\d+_LA_cut": _sound("applause", "human"),
    "memory-sound/LRBark_\\d+_LA_cut": _sound("dog", "animal", "dog"),
    "memory-sound/LRDoor_Open_\\d+_LA": _sound("door opening", "domestic"),
    "memory-sound/LRFactory_noise_\\d+_LA": _sound("factory noise", "urban"),
    "memory-sound/LRFrogsInPondDuringStormLACut": _sound("frog", "animal", "frog"),
    "memory-sound/LRHeart_beat_\\d+_LA": _sound("heartbeat", "human"),
    "memory-sound/LRObject_falling_\\d+_LA": _sound("object falling", "domestic"),
    "memory-sound/LRRain_in_garden_\\d+_LA_cut": _sound("rain", "weather"),
    "memory-sound/LRStartAndStopCarEngine\\d*LACut": _sound("car engine", "vehicle"),
    "memory-sound/LRTrain_slowing_down_\\d+_LA_cut": _sound("train", "vehicle"),
    "memory-sound/LRBuddhist_gong_\\d+_LA": _instrument("gong", "percussion"),
    "memory-sound/guitar_(melody|son\\d+)": _instrument("guitar", "guitar", None),
    "canal_lock/door_open": _sound("door opening", "domestic"),
    "canal_lock/door_close": _sound("door closing", "domestic"),
    "canal_lock/water_fill": _sound("water filling", "water"),
    "guessnumber/helicopter": _sound("helicopter", "vehicle"),
    "railroad/train": _sound("train", "vehicle"),
    "reversecount/icy_walk": _sound("footsteps", "human"),
    "scalesboard/metal_hit": _sound("metal hit", "domestic"),
    "melody/knock": _sound("knock", "domestic"),
    "melody/xylofon_son\\d+": _instrument("xylophone", "mallet"),
}
_FILE_PATTERNS = [(re.compile(key), label) for key, label in FILE_LABELS.items()]

# instruments.js shows "Find the <name>"; family/source are NSynth's vocabulary, ours to add.
# "guitar" is acoustic because the activity sets it against the electric guitar; the organ's
# kind (pipe or electric) is not stated, so it gets no Source.
INSTRUMENTS: dict[str, Label] = {
    "accordion": _instrument("accordion", "reed"),
    "banjo": _instrument("banjo", "guitar"),
    "bongo": _instrument("bongo", "percussion"),
    "castanets": _instrument("castanets", "percussion"),
    "cello": _instrument("cello", "string"),
    "clarinet": _instrument("clarinet", "reed"),
    "cymbal": _instrument("cymbal", "percussion"),
    "drum kit": _instrument("drum kit", "percussion"),
    "electric guitar": _instrument("electric guitar", "guitar", "electronic"),
    "guitar": _instrument("guitar", "guitar"),
    "harmonica": _instrument("harmonica", "reed"),
    "harp": _instrument("harp", "string"),
    "horn": _instrument("horn", "brass"),
    "maracas": _instrument("maracas", "percussion"),
    "organ": _instrument("organ", "organ", None),
    "piano": _instrument("piano", "keyboard"),
    "saxophone": _instrument("saxophone", "reed"),
    "snare drum": _instrument("snare drum", "percussion"),
    "tambourine": _instrument("tambourine", "percussion"),
    "timpani": _instrument("timpani", "percussion"),
    "transverse flute": _instrument("flute", "flute"),
    "triangle": _instrument("triangle", "percussion"),
    "trombone": _instrument("trombone", "brass"),
    "trumpet": _instrument("trumpet", "brass"),
    "tuba": _instrument("tuba", "brass"),
    "violin": _instrument("violin", "string"),
}

# explore_world_music: the board titles a region; the style is the one its text describes
# ("Mariachi is a famous type of Mexican music"). Keyed by audio file stem: (genre, region
# when the title is not one: "European Classical Music" is Beethoven's 9th).
WORLD_MUSIC: dict[str, tuple[str, str | None]] = {
    "africa": ("African drumming", None),
    "america": ("rock and roll", None),
    "australia": ("Aboriginal Australian music", None),
    "beethoven": ("classical", "Europe"),
    "ireland": ("Celtic folk", None),
    "italy": ("opera", None),
    "japan": ("taiko drumming", None),
    "mexico": ("mariachi", None),
    "middleeast": ("Middle Eastern music", None),
}


# ---------------------------------------------------------------------------------------------
# reading the activities' QML/JS data files

_TOKEN = re.compile(r"""("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|(//[^\n]*|/\*.*?\*/)""",
                    re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _js_string(literal: str) -> str:
    """The value of a JS/QML string literal (quotes included in `literal`)."""
    def unescape(match: re.Match[str]) -> str:
        char = match.group(1)
        if char.startswith("u"):
            return chr(int(char[1:], 16))
        return _ESCAPES.get(char, char)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", unescape, literal[1:-1])


@dataclass(frozen=True)
class _JsObject:
    line: int
    fields: dict[str, str]  # key -> the first string literal of its value, unescaped


def _js_objects(text: str) -> Iterator[_JsObject]:
    """The innermost ``{...}`` objects of a QML/JS file with their string-valued fields.

    Comments are dropped and string literals are masked before braces are matched, so a
    commented-out entry or a "{" inside a translation cannot shift the objects.
    """
    strings: dict[int, str] = {}

    def mask(match: re.Match[str]) -> str:
        if match.group(1):
            strings[match.start()] = match.group(1)
            return '"' + "_" * (len(match.group(1)) - 2) + '"'
        return re.sub(r"[^\n]", " ", match.group(2))  # keep line numbers

    masked = _TOKEN.sub(mask, text)
    field = re.compile(r'"(_+)"\s*:\s*[^"{}]*?(?="|,|$)')
    for block in re.finditer(r"\{[^{}]*\}", masked):
        fields: dict[str, str] = {}
        for match in field.finditer(block.group(0)):
            key_at = block.start() + match.start(1) - 1
            value_at = block.start() + match.end()
            key = _js_string(strings[key_at])
            if value_at in strings:
                fields.setdefault(key, _js_string(strings[value_at]))
        yield _JsObject(masked.count("\n", 0, block.start()) + 1, fields)


def _read_text(path: Path) -> str:
    require_file(path, "gcompris_sounds", "activity data file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not valid UTF-8 text ({exc.reason})") from None


def _audio_ref(ref: str, path: Path, line: int, prepared: Path) -> tuple[str, list[Path]]:
    """(stem, candidate files) for a "qrc:/gcompris/src/...x.$CA" reference."""
    prefix = "qrc:/gcompris/src/"
    if not ref.startswith(prefix) or not ref.endswith(_CA):
        raise malformed(path, line, f"audio {ref!r} is not a 'qrc:/gcompris/src/...{_CA}' path")
    relative = ref[len(prefix):-len(_CA)]
    base = resolve_under(prepared, relative, source=f"{path}:{line}")
    return base.name, [base.with_name(base.name + suffix) for suffix in AUDIO_SUFFIXES]


@dataclass(frozen=True)
class _Clip:
    activity: str
    stem: str
    candidates: list[Path]  # the audio file, under each suffix it may have been unpacked to
    domain: str
    attributes: dict[str, str]
    meta: dict[str, str]
    source: str  # "file:line" of the data entry, or the audio file itself

    @classmethod
    def labelled(cls, activity: str, stem: str, candidates: list[Path], label: Label,
                 source: str, meta: dict[str, str]) -> _Clip:
        return cls(activity, stem, candidates, label.domain, label.attributes(),
                   {**label.meta(), **meta}, source)


def _board_clips(prepared: Path, activity: str) -> Iterator[_Clip]:
    """explore_* activities: each board entry shows a title and plays an audio file."""
    board = prepared / "activities" / activity / "resource" / "board" / "board1.qml"
    for obj in _js_objects(_read_text(board)):
        if "audio" not in obj.fields:
            continue  # instructions, not a clip
        title = obj.fields.get("title", "").strip()
        if not title:
            raise malformed(board, obj.line, "entry has an audio file but no title")
        stem, candidates = _audio_ref(obj.fields["audio"], board, obj.line, prepared)
        source = f"{board}:{obj.line}"
        meta = {"label_from": f"board1.qml title {title!r}"}
        if obj.fields.get("text"):
            meta["description"] = obj.fields["text"]
        if activity == "explore_farm_animals":
            animal = title.lower()
            yield _Clip.labelled(activity, stem, candidates, _sound(animal, "animal", animal),
                                 source, meta)
            continue
        # explore_world_music: a piece per region
        genre, region = WORLD_MUSIC.get(stem, (None, None))
        attributes = {"Genre": genre} if genre else {}
        attributes["Region"] = region or title
        yield _Clip(activity, stem, candidates, "music", attributes, meta, source)


_FIND_THE = re.compile(r"Find the (.+)")


def _instrument_clips(prepared: Path) -> Iterator[_Clip]:
    """instruments.js: levels of {"text": qsTr("Find the <instrument>"), "audio": ...}."""
    data = prepared / "activities" / "instruments" / "instruments.js"
    seen: set[str] = set()
    for obj in _js_objects(_read_text(data)):
        if "audio" not in obj.fields:
            continue
        match = _FIND_THE.fullmatch(obj.fields.get("text", "").strip())
        if match is None:
            raise malformed(data, obj.line, f"text {obj.fields.get('text')!r} does not name "
                                            f"the instrument as 'Find the <instrument>'")
        stem, candidates = _audio_ref(obj.fields["audio"], data, obj.line, prepared)
        if stem in seen:
            continue  # every level lists its instruments again
        seen.add(stem)
        shown = match.group(1).strip()
        label = INSTRUMENTS.get(shown.lower())
        if label is None:
            logger.warning("gcompris_sounds: %s:%d: instrument %r has no family in the "
                           "recipe's table; left out", data, obj.line, shown)
            continue
        yield _Clip.labelled("instruments", stem, candidates, label, f"{data}:{obj.line}",
                             {"label_from": f"instruments.js text {obj.fields['text']!r}"})


def _file_clips(prepared: Path, activity: str, skipped: list[str]) -> Iterator[_Clip]:
    """Activities without labelling data: every audio file, labelled by its name."""
    folder = prepared / "activities" / activity
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES or path.name.startswith("."):
            continue
        label = next((label for pattern, label in _FILE_PATTERNS
                      if pattern.fullmatch(f"{activity}/{path.stem}")), None)
        if label is None:
            skipped.append(f"{activity}/{path.name}")
            continue
        yield _Clip.labelled(activity, path.stem, [path], label, str(path),
                             {"label_from": f"file name {path.name!r}"})


def _activity_clips(prepared: Path, activity: str, skipped: list[str]) -> Iterator[_Clip]:
    if activity in ("explore_farm_animals", "explore_world_music"):
        yield from _board_clips(prepared, activity)
    elif activity == "instruments":
        yield from _instrument_clips(prepared)
    else:
        yield from _file_clips(prepared, activity, skipped)


@register_recipe("gcompris_sounds")
def gcompris_sounds(root: Path, *, split: str | None = None, missing_audio: str = "skip"
                    ) -> Iterator[dict[str, Any]]:
    """GCompris clips unpacked by :func:`prepare`: animal and environment sounds (domain
    ``sound``: attribute ``Audio category``, ``meta.category``, ``meta.animal``), instrument
    recordings (``music``: ``Instrument``, ``Family``, ``Source`` when known) and the regional
    pieces of explore_world_music (``music``: ``Genre``, ``Region``). No splits.
    """
    prepared = prepared_dir(root, SOURCE)
    if not (prepared / "activities").is_dir():
        raise missing_prepared(root, SOURCE)
    check = AudioCheck("gcompris_sounds", missing_audio)
    skipped: list[str] = []
    try:
        for activity in ACTIVITIES:
            if not (prepared / "activities" / activity).is_dir():
                logger.warning("gcompris_sounds: activity %s was not unpacked; left out",
                               activity)
                continue
            for clip in _activity_clips(prepared, activity, skipped):
                audio = next((p for p in clip.candidates if p.is_file()), clip.candidates[0])
                if not check.exists(audio, clip.source):
                    continue
                yield _record(clip, audio)
        check.finish()
        if skipped:
            logger.info("gcompris_sounds: left out %d clip(s) without a trustworthy label "
                        "(synthetic or unidentified sounds): %s", len(skipped),
                        ", ".join(skipped))
    finally:
        check.report()


def _record(clip: _Clip, audio: Path) -> dict[str, Any]:
    return make_record(
        id=f"gcompris_sounds/{clip.activity}/{clip.stem}", audio=audio,
        dataset="gcompris_sounds", domain=clip.domain, attributes=clip.attributes,
        meta={"source": PACKAGE, "activity": clip.activity, **clip.meta},
    )

"""Tux Paint stamps (Debian ``tuxpaint-stamps-default``): spoken stamp descriptions, spoken
digits and letters, and the stamps' sound effects.

::

    usr/share/tuxpaint/stamps/<category>/.../<stamp>.txt    line 1: English description;
                                                            then "<locale>.utf8=<text>" lines
    .../<stamp>_desc.ogg                 the English description, read aloud
    .../<stamp>_desc_<locale>.ogg        the description in <locale> (a few pt_BR ones are .wav)
    .../<stamp>_<locale>.ogg             a localized sound: spoken digits (symbols/math) and
                                         British English letters (symbols/alphabets/english)
    .../<stamp>.ogg                      the stamp's sound effect; spoken for the digits
                                         (English) and the German umlaut letters

Two recipes read it: ``tuxpaint`` (speech) and ``tuxpaint_sounds`` (sound effects). What the
package gets wrong, as measured on 2022.06.04 (docs/data/recipes.md has the figures):

- A reading may be older and shorter than today's text ("Кароль." read for a three-sentence
  description). A clip that would need more than 25 letters per second to say its text is
  skipped; this needs the clip's length, read from the file header (no decoding).
- Several locales read the English alphabet stamps as the bare letter name, not "The letter
  A.": their transcript is the letter (see ``_LETTER_NAME_LOCALES``).
- Outline/filled and upper/lower-case stamps share byte-identical recordings: each recording
  is kept once; a recording shared by stamps whose texts differ is skipped.
- Some sound effects are speech, music, silent placeholders or re-encoded copies; the
  reviewed table ``SOUND_EFFECTS`` labels the rest (``SKIPPED_SOUNDS`` says why each is out).
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from desta.data.recipes import make_record, register_recipe
from desta.data.recipes.languages import Locale, parse_locale
from desta.data.recipes.metadata import iter_lines, malformed
from desta.data.recipes.paths import list_dir, require_dir, resolve_under

logger = logging.getLogger(__name__)

PACKAGE = "tuxpaint-stamps-default"
STAMPS_DIR = "usr/share/tuxpaint/stamps"
_AUDIO_SUFFIXES = (".ogg", ".wav")
_STAMP_SUFFIXES = (".txt", ".png", ".svg", ".dat")
_LOCALE = re.compile(r"^[a-z]{2,3}(?:_[a-z]{2})?$", re.IGNORECASE)
_TEXT_LINE = re.compile(r"^([A-Za-z]{2,3}(?:_[A-Za-z]{2})?(?:@[A-Za-z]+)?)\.utf8=(.*)$")

# A reading that needs more letters per second than this cannot be the whole text (measured:
# fluent readers in this package reach 15-20 letters/s including the clip's silences).
MAX_LETTERS_PER_SECOND = 25.0

# Locales whose readings of the English alphabet stamps are the bare letter name (0.2-0.9 s,
# one word in the spectrogram), whatever the .txt line says ("La lettre A.").
_LETTER_NAME_LOCALES = frozenset({"ca", "el", "en_GB", "fr", "lt"})
_ENGLISH_ALPHABET = "symbols/alphabets/english/"
_GERMAN_ALPHABET = "symbols/alphabets/german/"
_DIGITS = "symbols/math"
_ENGLISH_LETTER = re.compile(r"^([a-z])_(?:filled|outline)$", re.IGNORECASE)
_GERMAN_LETTER = re.compile(r"^(?:([aou])_with_umlaut|(ss)_eszett)_(?:filled|outline)$",
                            re.IGNORECASE)


@dataclass(frozen=True)
class StampClip:
    """One audio file under the stamps folder, with what its name says about it."""

    path: Path
    rel: str  # path under the stamps folder, "animals/birds/crow_desc_fr.ogg"
    folder: str  # "animals/birds"
    stamp: str | None  # the stamp's name as its .txt/.png spells it; None: no such stamp
    kind: str  # "sound" | "localized" | "description"
    locale: str | None  # as the file name writes it ("zh_tw"); "en" for <stamp>_desc.ogg

    @property
    def stamp_path(self) -> str:
        return f"{self.folder}/{self.stamp}" if self.folder else str(self.stamp)


def _strip_audio_suffixes(name: str) -> str:
    # "inukshuk-photo_desc_da.ogg.ogg" is in the package: strip every audio suffix.
    while name.lower().endswith(_AUDIO_SUFFIXES):
        name = name[:-4]
    return name


def _classify(base: str, stems: dict[str, str]) -> tuple[str | None, str, str | None]:
    """(stamp, kind, locale) of an audio file name without suffix, given the folder's stamp
    names (lower case -> as spelled). Stamp names match case-insensitively: the Greek
    readings are named in lower case ("apricot_whole_desc_el" for "Apricot_whole")."""
    low = base.lower()
    for cut in sorted((len(s) for s in stems if low == s or low.startswith(s + "_")),
                      reverse=True):
        stamp, rest = stems[low[:cut]], base[cut:]
        if not rest:
            return stamp, "sound", None
        if rest.lower() == "_desc":
            return stamp, "description", "en"
        if rest.lower().startswith("_desc_") and _LOCALE.match(rest[6:]):
            return stamp, "description", rest[6:]
        if _LOCALE.match(rest[1:]):
            return stamp, "localized", rest[1:]
    # No stamp of that name (its picture was removed): keep what the name says.
    head, sep, tail = base.rpartition("_desc")
    if sep and (not tail or (tail.startswith("_") and _LOCALE.match(tail[1:]))):
        return None, "description", tail[1:] or "en"
    return None, "sound", None


def scan_stamps(root: Path) -> Iterator[StampClip]:
    """Every audio file under ``<root>/usr/share/tuxpaint/stamps``, folders in sorted order."""
    base = require_dir(resolve_under(root, STAMPS_DIR), "tuxpaint", f"stamps {STAMPS_DIR}/")
    pending = [""]
    while pending:
        folder = pending.pop(0)
        path = base / folder if folder else base
        entries = list(list_dir(path))
        stems = {entry.name.rsplit(".", 1)[0].lower(): entry.name.rsplit(".", 1)[0]
                 for entry in entries
                 if entry.is_file() and entry.name.lower().endswith(_STAMP_SUFFIXES)}
        subfolders = []
        for entry in entries:
            rel = f"{folder}/{entry.name}" if folder else entry.name
            if entry.is_dir():
                subfolders.append(rel)
            elif entry.name.lower().endswith(_AUDIO_SUFFIXES):
                stamp, kind, locale = _classify(_strip_audio_suffixes(entry.name), stems)
                yield StampClip(path=resolve_under(base, rel), rel=rel, folder=folder,
                                stamp=stamp, kind=kind, locale=locale)
        pending[:0] = subfolders  # depth-first, sorted


def read_texts(path: Path) -> dict[str, str]:
    """A stamp's ``.txt``: lower-case locale key ("en", "pt_br", "ca@valencia") -> text.

    Line 1 is the English text; each further line is ``<locale>.utf8=<text>`` (blank lines
    are ignored). Quotes are literal text (``ja.utf8=アルファベットの "A"``); a few lines
    begin with a literal ``\\t``, which is dropped. Any other line is a DatasetError naming
    the file and line.
    """
    texts: dict[str, str] = {}
    for number, line in iter_lines(path, "tuxpaint", "stamp description"):
        if number == 1:
            if not line.strip() or _TEXT_LINE.match(line):
                raise malformed(path, 1, "line 1 must be the English description, got "
                                         f"{line!r:.80}")
            texts["en"] = _clean_text(line)
            continue
        if not line.strip():
            continue
        match = _TEXT_LINE.match(line)
        if match is None:
            raise malformed(path, number, f"expected '<locale>.utf8=<text>', got {line!r:.80}")
        key = match.group(1).lower()
        if key in texts:
            raise malformed(path, number, f"second text for locale {match.group(1)!r}")
        texts[key] = _clean_text(match.group(2))
    return texts


def _clean_text(text: str) -> str:
    return " ".join(text.replace("\\t", " ").split())


def stamp_letter(clip: StampClip) -> str | None:
    """The letter an alphabet stamp shows ("A", "Ä", "ß"), or None for other stamps."""
    if clip.stamp is None:
        return None
    if clip.folder.startswith(_ENGLISH_ALPHABET.rstrip("/")):
        match = _ENGLISH_LETTER.match(clip.stamp)
        return match.group(1).upper() if match else None
    if clip.folder.startswith(_GERMAN_ALPHABET.rstrip("/")):
        match = _GERMAN_LETTER.match(clip.stamp)
        if match is None:
            return None
        if match.group(2):
            return "ß"
        return unicodedata.normalize("NFC", match.group(1).upper() + "\u0308")
    return None


def _is_digit_stamp(clip: StampClip) -> bool:
    return clip.folder == _DIGITS and clip.stamp is not None and clip.stamp.isdigit()


# Who the package's changelog credits for each set of recordings. Gender only where the
# credit itself says it (daughter, son). Speakers: one id per credited set; John Arundel read
# both the British English numbers and letters.
@dataclass(frozen=True)
class _Credit:
    credit: str
    speaker: str | None = None  # default "tuxpaint:<locale>[:<set>]"
    gender: str | None = None
    several: bool = False  # the credit names several readers


_SCHOOLSPLAY = ("Descriptive sounds for numbers from Schoolsplay, curated and prepared by "
                "Caroline Ford")
_CREDITS: dict[tuple[str, str], _Credit] = {
    ("descriptions", "be"): _Credit("Descriptive sounds by Kseniya Buraya"),
    ("descriptions", "bg"): _Credit("Descriptive sounds by Krasimir Petkov"),
    ("descriptions", "ca"): _Credit("Catalan spoken translations of all (almost all?) stamps: "
                                    "Pere Pujal Carabantes"),
    ("descriptions", "da"): _Credit("Danish descriptive sounds: Joe Dalton"),
    ("descriptions", "el"): _Credit("Greek descriptive sounds: Kiriaki Serafeim"),
    ("descriptions", "es"): _Credit("Descriptive sounds: Estefanía Ortiz"),
    ("descriptions", "fr"): _Credit("French description sounds: Jacques Chion; descriptive "
                                    "sounds by GCI students: PaulK", several=True),
    ("descriptions", "lt"): _Credit("Lithuanian alphabet sounds from Schoolsplay, curated and "
                                    "prepared by Caroline Ford"),
    ("descriptions", "pt_BR"): _Credit("Recorded by various Brazilian school children",
                                       several=True),
    ("descriptions", "ro"): _Credit("Descriptive sounds by GCI students: Tabbytha"),
    ("descriptions", "ru"): _Credit("Descriptive sounds by GCI students: Edwin Veber"),
    ("numbers", "bg"): _Credit(_SCHOOLSPLAY),
    ("numbers", "de"): _Credit(_SCHOOLSPLAY),
    ("numbers", "el"): _Credit("Greek sounds for the number stamps: The Greek Linux i18n Team"),
    ("numbers", "en_GB"): _Credit("British English descriptive sounds for numbers and letters: "
                                  "John Arundel", speaker="tuxpaint:en_GB"),
    ("numbers", "es"): _Credit("Nicer sounding spanish sounds for number stamps: Gabriel Gazzan "
                               "(His son did the sounds)", gender="Male"),
    ("numbers", "it"): _Credit(_SCHOOLSPLAY),
    ("numbers", "ja"): _Credit("Japanese sounds for the number stamps: TOYAMA Shin-ichi"),
    ("numbers", "ko"): _Credit("Korean sound clips for numbers: Sohyun Iris Lee (voice)"),
    ("numbers", "lt"): _Credit(_SCHOOLSPLAY + "; Lithuanian: Andrius Jurkus"),
    ("numbers", "nb"): _Credit(_SCHOOLSPLAY),
    ("numbers", "nl"): _Credit("Dutch sounds for numbers: Sanne Stams (9 years old), daughter "
                               "of Geert Stams", gender="Female"),
    ("numbers", "nn"): _Credit("Norwegian math sounds: Karl Ove Hufthammer"),
    ("numbers", "pt"): _Credit(_SCHOOLSPLAY),
    ("numbers", "ro"): _Credit(_SCHOOLSPLAY),
    ("numbers", "ru"): _Credit(_SCHOOLSPLAY),
    ("numbers", "sl"): _Credit(_SCHOOLSPLAY),
    ("numbers", "sv"): _Credit(_SCHOOLSPLAY),
    ("letters", "en_GB"): _Credit("British English descriptive sounds for numbers and letters: "
                                  "John Arundel", speaker="tuxpaint:en_GB"),
    ("letters", "de"): _Credit("Alphabets: German (sounds from Wikimedia Commons "
                               "German_alphabet.ogg)"),
}


@dataclass(frozen=True)
class _Spoken:
    clip: StampClip
    locale: Locale
    recording_set: str  # "descriptions" | "numbers" | "letters"
    transcript: str
    translation: str | None


def _spoken(clip: StampClip, texts: dict[str, str], counts: Counter[str]) -> _Spoken | None:
    """What a speech clip says, or None (counted in `counts`) when the package does not say."""
    where = str(clip.path)
    letter = stamp_letter(clip)
    if clip.kind == "sound":
        if _is_digit_stamp(clip):  # the digits' own sound: English
            return _Spoken(clip, parse_locale("en", where), "numbers", texts["en"], None)
        if letter is not None and clip.folder.startswith(_GERMAN_ALPHABET.rstrip("/")):
            return _Spoken(clip, parse_locale("de", where), "letters", letter, None)
        return None  # a sound effect: tuxpaint_sounds reads it
    assert clip.locale is not None
    locale = parse_locale(clip.locale, where)
    if clip.kind == "description":
        recording_set = "descriptions"
    else:
        recording_set = ("letters" if letter is not None
                         else "numbers" if _is_digit_stamp(clip) else "localized")
    if letter is not None and (clip.kind == "localized" or (
            clip.folder.startswith(_ENGLISH_ALPHABET.rstrip("/"))
            and locale.locale in _LETTER_NAME_LOCALES)):
        return _Spoken(clip, locale, recording_set, letter, None)
    text = texts.get(locale.locale.lower())
    if text is None:
        counts["no text for the clip's locale"] += 1
        return None
    translation = texts["en"] if locale.language != "en" else None
    return _Spoken(clip, locale, recording_set, text, translation)


def _letters(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def _same_words(a: str, b: str) -> bool:
    """Equal up to case and punctuation ("La lettre a." / "La lettre A")."""
    def norm(text: str) -> str:
        return "".join(ch for ch in text.casefold() if ch.isalnum())
    return norm(a) == norm(b)


def _fingerprint(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def _log_skips(dataset: str, counts: Counter[str]) -> None:
    for reason, count in sorted(counts.items()):
        logger.warning("%s: skipped %d clip(s): %s", dataset, count, reason)


@register_recipe("tuxpaint")
def tuxpaint(root: Path, *, split: str | None = None, missing_audio: str = "skip"
             ) -> Iterator[dict[str, Any]]:
    """Tux Paint speech: stamp descriptions read aloud, spoken digits and letters.

    Transcript: the stamp's text in the clip's locale (the letter itself where the reading
    is the bare letter name); attributes ``Language`` and, only where the changelog states
    it, ``Gender``; ``duration`` from the file header. ``meta``: ``speaker``, ``language``,
    ``locale``, ``translation`` (the English text), ``set`` (descriptions / numbers /
    letters), ``credit`` (the changelog's words), ``stamp``. Clips are listed from the
    folders, so ``missing_audio`` never applies.
    """
    counts: Counter[str] = Counter()
    texts_cache: dict[str, dict[str, str]] = {}
    candidates: list[_Spoken] = []
    for clip in scan_stamps(root):
        if clip.stamp is None:
            if clip.kind != "sound":
                counts["orphan reading (no stamp .txt of that name)"] += 1
            continue
        txt = clip.path.parent / f"{clip.stamp}.txt"
        if not txt.is_file():
            if clip.kind != "sound":
                counts["orphan reading (no stamp .txt of that name)"] += 1
            continue
        if str(txt) not in texts_cache:
            texts_cache[str(txt)] = read_texts(txt)
        spoken = _spoken(clip, texts_cache[str(txt)], counts)
        if spoken is not None:
            candidates.append(spoken)

    # One recording per content: filled/outline and upper/lower-case stamps share files.
    groups: dict[str, list[_Spoken]] = {}
    for spoken in candidates:
        groups.setdefault(_fingerprint(spoken.clip.path), []).append(spoken)
    kept = set()
    for group in groups.values():
        if all(_same_words(group[0].transcript, other.transcript) for other in group[1:]):
            kept.add(group[0].clip.rel)
            counts["byte-identical copy of another clip"] += len(group) - 1
        else:
            counts["one recording shared by stamps with different texts"] += len(group)

    try:
        for spoken in candidates:
            if spoken.clip.rel not in kept:
                continue
            clip = spoken.clip
            try:
                duration = sf.info(str(clip.path)).duration
            except (sf.LibsndfileError, RuntimeError) as exc:
                logger.warning("tuxpaint: skipping unreadable %s: %s", clip.path, exc)
                counts["unreadable audio file"] += 1
                continue
            if _letters(spoken.transcript) > MAX_LETTERS_PER_SECOND * duration:
                counts["reading too short for its text (older, shorter text read)"] += 1
                continue
            yield _speech_record(spoken, duration)
    finally:
        _log_skips("tuxpaint", counts)


def _speech_record(spoken: _Spoken, duration: float) -> dict[str, Any]:
    clip, locale = spoken.clip, spoken.locale
    credit = _CREDITS.get((spoken.recording_set, locale.locale))
    suffix = "" if spoken.recording_set == "descriptions" else f":{spoken.recording_set}"
    speaker = (credit.speaker if credit and credit.speaker
               else f"tuxpaint:{locale.locale}{suffix}")
    attributes = {"Language": locale.name}
    meta: dict[str, Any] = {
        "speaker": speaker, "language": locale.language, "locale": locale.locale,
        "source": PACKAGE, "set": spoken.recording_set, "stamp": clip.stamp_path,
    }
    if spoken.translation is not None:
        meta["translation"] = spoken.translation
    if credit is not None:
        meta["credit"] = credit.credit
        if credit.several:
            meta["several_speakers"] = True
        if credit.gender is not None:
            attributes["Gender"] = credit.gender
            meta["gender_source"] = f"changelog: {credit.credit!r}"
    return make_record(
        id=f"tuxpaint/{clip.rel.rsplit('.', 1)[0]}", audio=clip.path, dataset="tuxpaint",
        domain="speech", transcript=spoken.transcript, attributes=attributes,
        duration=duration, meta=meta,
    )


# -- sound effects -------------------------------------------------------------------------

# The reviewed sound effects of 2022.06.04 (each clip's spectrogram checked against its
# name): stamp path -> (Audio category, coarse category, animal). Labels say what is heard
# ("camera shutter" for the camera stamp); the changelog names a few ("crunch", "squeaky").
SOUND_EFFECTS: dict[str, tuple[str, str, str | None]] = {
    "animals/amphibians/frog": ("frog", "animal", "frog"),
    "animals/birds/blackbird": ("blackbird", "animal", "blackbird"),
    "animals/birds/crow": ("crow", "animal", "crow"),
    "animals/birds/cuckoo": ("cuckoo", "animal", "cuckoo"),
    "animals/birds/drake": ("duck", "animal", "duck"),
    "animals/birds/duck": ("duck", "animal", "duck"),
    "animals/birds/gander": ("goose", "animal", "goose"),
    "animals/birds/hen": ("hen", "animal", "chicken"),
    "animals/birds/heron_greatblue_flying": ("heron", "animal", "heron"),
    "animals/birds/lark": ("lark", "animal", "lark"),
    "animals/birds/owl": ("owl", "animal", "owl"),
    "animals/birds/penguin": ("penguin", "animal", "penguin"),
    "animals/birds/quetzal": ("quetzal", "animal", "quetzal"),
    "animals/birds/rooster": ("rooster", "animal", "chicken"),
    "animals/birds/seagull": ("seagull", "animal", "seagull"),
    "animals/birds/tucan": ("toucan", "animal", "toucan"),
    "animals/birds/turkey": ("turkey", "animal", "turkey"),
    "animals/birds/vulture": ("vulture", "animal", "vulture"),
    "animals/insects/bee": ("bee", "animal", "bee"),
    "animals/insects/grasshopper": ("grasshopper", "animal", "grasshopper"),
    "animals/insects/hornet": ("hornet", "animal", "hornet"),
    "animals/insects/mosquito": ("mosquito", "animal", "mosquito"),
    "animals/insects/xanthia": ("moth", "animal", "moth"),
    "animals/mammals/apes/chimp": ("chimpanzee", "animal", "chimpanzee"),
    "animals/mammals/apes/gorilla": ("gorilla", "animal", "gorilla"),
    "animals/mammals/aquatic/dolphin": ("dolphin", "animal", "dolphin"),
    "animals/mammals/aquatic/orca": ("orca", "animal", "orca"),
    "animals/mammals/aquatic/sea_lion": ("sea lion", "animal", "sea lion"),
    "animals/mammals/aquatic/whale": ("whale", "animal", "whale"),
    "animals/mammals/badger": ("badger", "animal", "badger"),
    "animals/mammals/bears/bear": ("bear", "animal", "bear"),
    "animals/mammals/bovines/bison": ("bison", "animal", "bison"),
    "animals/mammals/bovines/bull": ("bull", "animal", "cow"),
    "animals/mammals/bovines/cow": ("cow", "animal", "cow"),
    "animals/mammals/bovines/cow_white": ("cow", "animal", "cow"),
    "animals/mammals/bovines/goat": ("goat", "animal", "goat"),
    "animals/mammals/bovines/sheep": ("sheep", "animal", "sheep"),
    "animals/mammals/bovines/sheep_lamb": ("lamb", "animal", "sheep"),
    "animals/mammals/camel/camel": ("camel", "animal", "camel"),
    "animals/mammals/cats/lion": ("lion", "animal", "lion"),
    "animals/mammals/cats/tiger": ("tiger", "animal", "tiger"),
    "animals/mammals/deer/caribou": ("caribou", "animal", "caribou"),
    "animals/mammals/deer/deer": ("deer", "animal", "deer"),
    "animals/mammals/deer/doe": ("deer", "animal", "deer"),
    "animals/mammals/dogs/dog": ("dog", "animal", "dog"),
    "animals/mammals/dogs/fox": ("fox", "animal", "fox"),
    "animals/mammals/elephant": ("elephant", "animal", "elephant"),
    "animals/mammals/equines/donkey": ("donkey", "animal", "donkey"),
    "animals/mammals/equines/horse": ("horse", "animal", "horse"),
    "animals/mammals/equines/zebra": ("zebra", "animal", "zebra"),
    "animals/mammals/ferret": ("ferret", "animal", "ferret"),
    "animals/mammals/hippopotamus": ("hippopotamus", "animal", "hippopotamus"),
    "animals/mammals/pig": ("pig", "animal", "pig"),
    "animals/mammals/pig_golden": ("pig", "animal", "pig"),
    "animals/mammals/pig_golden2": ("pig", "animal", "pig"),
    "animals/mammals/rodents/beaver": ("beaver", "animal", "beaver"),
    "animals/mammals/rodents/mouse": ("mouse", "animal", "mouse"),
    "animals/mammals/rodents/rabbit": ("rabbit", "animal", "rabbit"),
    "animals/mammals/rodents/squirrel": ("squirrel", "animal", "squirrel"),
    "animals/marsupials/koala": ("koala", "animal", "koala"),
    "seasonal/halloween/bat_left": ("bat", "animal", "bat"),
    "seasonal/halloween/blackcat": ("cat", "animal", "cat"),
    "food/fruit/apple_red": ("apple crunch", "human", None),
    "hobbies/camera_35mm": ("camera shutter", "domestic", None),
    "household/Washing-machine": ("washing machine", "domestic", None),
    "household/arttools/scissors_small_closed": ("scissors", "domestic", None),
    "household/arttools/scissors_small_open": ("scissors", "domestic", None),
    "household/dishes/bottle": ("bottle", "domestic", None),
    "household/dishes/glass": ("glass", "domestic", None),
    "household/kettle": ("electric kettle", "domestic", None),
    "household/rubberduck": ("rubber duck squeak", "domestic", None),
    "household/toilet": ("toilet flush", "domestic", None),
    "household/tools/hammer": ("hammer", "tool", None),
    "household/tools/mallet_metal": ("mallet", "tool", None),
    "household/tools/saw": ("saw", "tool", None),
    "household/vacuum_cleaner": ("vacuum cleaner", "domestic", None),
    "naturalforces/lightningbolt": ("thunder", "weather", None),
    "seasonal/newyears/fireworks": ("fireworks", "urban", None),
    "town/flags/checkeredflag": ("race car", "vehicle", None),
    "town/roadsigns/xing_ped": ("crossing signal beeps", "alarm", None),
    "vehicles/emergency/firetruck": ("fire truck siren", "vehicle", None),
    "vehicles/ship/cartoon/bathyscape": ("sonar ping", "vehicle", None),
}

SKIPPED_SOUNDS: dict[str, str] = {
    "animals/birds/nandou": "silent placeholder (all samples zero)",
    "animals/lizards/iguana": "silent placeholder (all samples zero)",
    "animals/mammals/giraffe": "silent placeholder (all samples zero)",
    "animals/marsupials/wombat": "silent placeholder (all samples zero)",
    "animals/mammals/bovines/mountaingoat": "re-encoded copy of goat.ogg",
    "animals/mammals/bovines/ram": "re-encoded copy of goat.ogg",
    "animals/mammals/camel/dromedary": "cut from the same recording as camel.ogg",
    "hobbies/music/percussion/cymbal_crash": "music (instrument)",
    "hobbies/music/percussion/drum_tomtom_floor": "music (instrument)",
    "hobbies/music/percussion/drumkit": "music (instrument)",
    "hobbies/music/string/cello": "music (instrument)",
    "hobbies/music/string/violin": "music (instrument)",
    "hobbies/music/wind/bassoon": "music (instrument)",
    "military/final-roll-call": "music (bugle call)",
    "space/apollo_lander": "speech (Neil Armstrong's moon landing words)",
    "seasonal/hanukkah/dreydl-gimmel": "speech (the letter's name)",
    "seasonal/hanukkah/dreydl-hay": "speech (the letter's name)",
    "seasonal/hanukkah/dreydl-nun": "speech (the letter's name)",
    "seasonal/hanukkah/dreydl-shin": "speech (the letter's name)",
    "symbols/faces/excited": "a voice (may be a word)",
    "symbols/faces/happy": "a voice (may be a word)",
    "symbols/faces/mad": "a voice (may be a word)",
    "symbols/faces/sad": "a voice (may be a word)",
    "seasonal/halloween/ghost": "a voice (may be a word)",
    "town/roadsigns/xing_school": "children's voices",
    "seasonal/christmas/gift": "unclear what is heard",
    "seasonal/christmas/hard_candy": "unclear what is heard",
    "seasonal/christmas/santahat": "unclear what is heard",
    "seasonal/halloween/spider": "unclear what is heard",
    "town/roadsigns/no_uturn": "unclear what is heard",
}

# Categories for sound effects a newer package adds (not yet in the reviewed table).
_FOLDER_CATEGORIES = {"animals": "animal", "naturalforces": "weather", "household": "domestic",
                      "vehicles": "vehicle"}


def clean_label(name: str) -> str:
    """A stamp name as an Audio category: "Washing-machine" -> "washing machine",
    "frog-1" -> "frog", "pig_golden2" -> "pig golden"."""
    words = re.split(r"[_\-\s]+", name.lower())
    words = [re.sub(r"\d+$", "", word) for word in words]
    return " ".join(word for word in words if word)


@register_recipe("tuxpaint_sounds")
def tuxpaint_sounds(root: Path, *, split: str | None = None, missing_audio: str = "skip"
                    ) -> Iterator[dict[str, Any]]:
    """Tux Paint stamp sound effects (``<stamp>.ogg``): attribute ``Audio category`` (what
    is heard, lower case), ``meta`` ``category`` (animal, weather, domestic, tool, vehicle,
    alarm, human, urban) and ``animal`` for animals.

    Labels come from the reviewed table ``SOUND_EFFECTS``; clips in ``SKIPPED_SOUNDS``
    (speech, music, silent placeholders, copies) are skipped and counted. A sound effect in
    neither table (a newer package) is labelled from its name when its top folder has a
    category (animals, household, naturalforces, vehicles), with a warning, else skipped.
    """
    counts: Counter[str] = Counter()
    unreviewed: list[str] = []
    try:
        for clip in scan_stamps(root):
            if clip.kind != "sound" or clip.folder == _DIGITS or stamp_letter(clip):
                continue  # speech: the tuxpaint recipe reads these
            stem = clip.stamp if clip.stamp is not None else _strip_audio_suffixes(
                clip.path.name)
            key = f"{clip.folder}/{stem}" if clip.folder else stem
            if key in SKIPPED_SOUNDS:
                counts[SKIPPED_SOUNDS[key]] += 1
                continue
            reviewed = SOUND_EFFECTS.get(key)
            if reviewed is None:
                category = _FOLDER_CATEGORIES.get(clip.folder.split("/", 1)[0])
                if category is None:
                    counts["not in the reviewed table, folder has no category"] += 1
                    continue
                unreviewed.append(key)
                label = clean_label(stem)
                reviewed = (label, category, label if category == "animal" else None)
            label, category, animal = reviewed
            meta: dict[str, Any] = {"category": category, "source": PACKAGE, "stamp": key}
            if animal is not None:
                meta["animal"] = animal
            yield make_record(
                id=f"tuxpaint_sounds/{clip.rel.rsplit('.', 1)[0]}", audio=clip.path,
                dataset="tuxpaint_sounds", domain="sound",
                attributes={"Audio category": label}, meta=meta,
            )
    finally:
        if unreviewed:
            logger.warning("tuxpaint_sounds: %d sound effect(s) not in the reviewed table, "
                           "labelled from their names: %s", len(unreviewed),
                           ", ".join(unreviewed[:10]))
        _log_skips("tuxpaint_sounds", counts)


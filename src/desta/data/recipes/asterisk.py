"""Asterisk core sounds: studio IVR prompts in 5 languages (Debian asterisk-core-sounds-*).

Layout (a ``dpkg -x`` tree, or an installed system with ``root=/``)::

    usr/share/asterisk/sounds/<lang>_<REGION>_<f|m>_<Voice>/<name>.g722     16 kHz G.722
    usr/share/asterisk/sounds/<lang>_<REGION>_<f|m>_<Voice>/digits/1.g722   sub-folders
    usr/share/doc/asterisk-core-sounds-<lang>/core-sounds-<lang>.txt.gz
        ; Core Asterisk Sounds in English          ";" comment lines, blank lines
        digits/1: one                               <name>: <transcript>
        beep: [this is a simple beep tone]          bracketed: not speech
        letters/at: at [@]                          bracketed symbol: a note, not spoken
    <root>/desta-prepared/asterisk/<voice folder>/<name>.flac   written by :func:`prepare`

libsndfile cannot read G.722, so :func:`prepare` (run by ``desta data fetch``) transcodes every
clip once to 16 kHz mono FLAC, and the recipe reads those. The voice folder states language,
region and gender (``es_MX_f_Allison``); Allison records both en_US and es_MX, so the speaker
id is the voice name alone (``asterisk:allison``).
"""

from __future__ import annotations

import gzip
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desta.data.recipes import DatasetError, make_record, register_recipe
from desta.data.recipes.languages import parse_locale
from desta.data.recipes.metadata import AudioCheck, malformed
from desta.data.recipes.paths import list_dir, require_dir, require_file, resolve_under
from desta.data.recipes.prepared import (
    TranscodeJob,
    is_empty_source,
    missing_prepared,
    prepared_dir,
    transcode_all,
)

logger = logging.getLogger(__name__)

SOUNDS_DIR = "usr/share/asterisk/sounds"
_VOICE = re.compile(r"^(?P<lang>[a-z]{2})_(?P<region>[A-Z]{2})_(?P<sex>[fm])_(?P<name>[A-Za-z0-9]+)$")
_GENDERS = {"f": "Female", "m": "Male"}
# The CREDITS quoted in /usr/share/doc/asterisk-core-sounds-<lang>/copyright, per voice folder.
CREDITS = {
    "en_US_f_Allison": "Recorded by: Allison Smith (http://www.theivrvoice.com)",
    "es_MX_f_Allison": "Recorded by: Allison Smith (http://www.theivrvoice.com)",
    "fr_CA_f_June": "Recorded by: June Wallack (http://www.junewallack.com)",
    "it_IT_m_Carlo": "Recorded by: Carlo Flora (http://www.carloflora.com)",
    "ru_RU_f_IvrvoiceRU": "Provided by: Maxim Topal (http://www.ivrvoice.ru)",
}


@dataclass(frozen=True)
class Voice:
    """A voice folder such as ``es_MX_f_Allison``: what its name states."""

    folder: str
    language: str  # ISO 639-1
    language_name: str  # English name: the Language attribute
    locale: str  # es_MX
    gender: str  # Female / Male
    name: str  # Allison

    @property
    def speaker(self) -> str:
        return f"asterisk:{self.name.lower()}"

    @property
    def gender_source(self) -> str:
        return (f"voice folder name {self.folder} "
                f"('_{self.gender[0].lower()}_' = {self.gender.lower()})")


def parse_voice(folder: str) -> Voice | None:
    """The voice a folder name states, or None when it is not ``<ll>_<RR>_<f|m>_<Name>``.

    A language code without an English name in desta.data.recipes.languages is a
    DatasetError naming the folder.
    """
    match = _VOICE.match(folder)
    if match is None:
        return None
    locale = parse_locale(f"{match['lang']}_{match['region']}", f"voice folder {folder}")
    return Voice(folder=folder, language=locale.language, language_name=locale.name,
                 locale=locale.locale, gender=_GENDERS[match["sex"]], name=match["name"])


# --- core-sounds-<lang>.txt ------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """One ``name: transcript`` line of a core-sounds text file."""

    name: str
    text: str  # as written in the file
    path: Path
    line: int

    @property
    def source(self) -> str:
        return f"{self.path.name}:{self.line}"


_ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9_][A-Za-z0-9_./-]*):(?:\s+(?P<text>.*))?$")
# A second entry run into the first ("... dièse.vm-review-nonurgent: Pour ..."): a hyphenated
# prompt name followed by ": " inside the text. Plain words followed by a colon do not match.
_EMBEDDED = re.compile(r"(?:(?<=[\s.!?])|^)(?P<name>[a-z][a-z0-9]*(?:-[a-z0-9]+)+"
                       r"(?:/[A-Za-z0-9_-]+)?):\s+")


def core_sounds_path(root: Path, lang: str) -> Path:
    """``usr/share/doc/asterisk-core-sounds-<lang>/core-sounds-<lang>.txt`` (or ``.txt.gz``,
    as Debian ships it)."""
    doc = resolve_under(root, "usr/share/doc", f"asterisk-core-sounds-{lang}")
    plain = doc / f"core-sounds-{lang}.txt"
    return plain if plain.is_file() else doc / f"core-sounds-{lang}.txt.gz"


def read_core_sounds(path: Path) -> dict[str, Prompt]:
    """Prompt name -> :class:`Prompt` from a core-sounds text file (plain or gzipped).

    Handles what the real files hold: a UTF-8 BOM, ``;`` comments, an entry run into the
    previous one on the same line, a name repeated at the start of its text. A line that is
    not ``name: text`` is a DatasetError naming ``path:line``. A name given twice on lines
    of its own keeps its first text (logged, with both lines); one found only inside another
    line's text is used when no line of its own gives it.
    """
    require_file(path, "asterisk", f"transcript file of package {path.parent.name}")
    opener = gzip.open if path.suffix == ".gz" else open
    prompts: dict[str, Prompt] = {}
    run_in: dict[str, Prompt] = {}  # entries found inside another line's text
    number = 0
    try:
        with opener(path, "rt", encoding="utf-8-sig") as handle:
            for number, raw in enumerate(handle, start=1):
                line = raw.strip()
                if not line or line.startswith(";"):
                    continue
                match = _ENTRY.match(line)
                if match is None:
                    raise malformed(path, number, f"expected 'name: transcript', got "
                                                  f"{line[:80]!r}")
                (name, text), *embedded = _split_entries(match["name"], match["text"] or "")
                for other, other_text in embedded:
                    run_in.setdefault(other, Prompt(other, other_text, path, number))
                if name in prompts:
                    if prompts[name].text != text:
                        logger.warning("%s:%d: %s given again (first at line %d); keeping the "
                                       "first transcript", path, number, name,
                                       prompts[name].line)
                    continue
                prompts[name] = Prompt(name, text, path, number)
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise DatasetError(f"{path}: near line {number + 1}: cannot read ({exc})") from None
    # An entry on its own line wins over a copy run into another line (an older draft).
    for name, prompt in run_in.items():
        prompts.setdefault(name, prompt)
    return prompts


def _split_entries(name: str, text: str) -> list[tuple[str, str]]:
    """One line's entries: ``(name, text)``, plus any entry run into the text."""
    if text.startswith(f"{name}:"):  # "conf-adminmenu: conf-adminmenu: ..." in core-sounds-ru
        text = text[len(name) + 1:].lstrip()
    entries = []
    for match in reversed(list(_EMBEDDED.finditer(text))):
        if match.start() == 0:
            continue
        entries.append((match["name"], text[match.end():].strip()))
        text = text[:match.start()]
    entries.append((name, text.strip()))
    return entries[::-1]


SPEECH, NON_SPEECH, UNCLEAR, EMPTY = "speech", "non-speech", "unclear", "empty"
_WRAPPED = re.compile(r"^\s*(\[[^]]*\]|\([^)]*\)|<[^>]*>)\s*$")
_SYMBOL_NOTE = re.compile(r"\s*\[[^\w\]]*\]")  # "[@]", "[-]", "[ ]": the symbol a word names
# "La conferenza ? piena.": a letter (here "è") lost to "?" when the file was re-encoded.
# (French puts a space before "?", but a new sentence follows it capitalised.)
_LOST_CHARACTER = re.compile(r"\s\?\s+(\w)")


def clean_transcript(text: str) -> tuple[str | None, str]:
    """(transcript, status) for a core-sounds text.

    * ``[...]``, ``(...)`` or ``<...>`` alone is a description of a tone, beep or silence:
      NON_SPEECH.
    * A bracketed symbol after the word that names it (``at [@]``) is dropped.
    * Any other bracket or parenthesis (``Sus saludos [temporales] ...``, ``IAX (note: does
      not say "2")``) may or may not be spoken, and a ``?`` standing for a lost letter
      (``La conferenza ? piena.``) hides a word: UNCLEAR, transcript None.
    """
    text = " ".join(text.split())
    if not text:
        return None, EMPTY
    if _WRAPPED.match(text):
        return None, NON_SPEECH
    text = _SYMBOL_NOTE.sub("", text).strip()
    if not text:
        return None, EMPTY
    lost = any(match[1].islower() for match in _LOST_CHARACTER.finditer(text))
    if lost or any(mark in text for mark in "[]()<>"):
        return None, UNCLEAR
    return text, SPEECH


def lookup(prompts: dict[str, Prompt], name: str) -> Prompt | None:
    """The prompt for a clip name: exact, else the one name equal but for case (the files
    write ``digits/1f`` for ``digits/1F.g722``)."""
    if name in prompts:
        return prompts[name]
    folded = [prompt for key, prompt in prompts.items() if key.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


@dataclass(frozen=True)
class Labels:
    """What a clip's transcript lines say: skip it (non-speech), or its transcript and the
    English translation."""

    skip: bool
    transcript: str | None
    translation: str | None
    status: str  # of the clip's own line: SPEECH, UNCLEAR, EMPTY, or "missing"
    source: str | None  # file:line of its own line


def labels_for(name: str, own: dict[str, Prompt], english: dict[str, Prompt],
               language: str) -> Labels:
    """Labels of clip `name` from its language's prompts and the English ones.

    A prompt that the English file (or its own) describes as a tone, beep or silence is
    non-speech in every language: the Italian file writes ``beep: un suono beep``.
    """
    prompt = lookup(own, name)
    transcript, status = clean_transcript(prompt.text) if prompt else (None, "missing")
    en_prompt = lookup(english, name)
    en_text, en_status = clean_transcript(en_prompt.text) if en_prompt else (None, "missing")
    skip = NON_SPEECH in (status, en_status)
    translation = en_text if language != "en" and en_status == SPEECH else None
    return Labels(skip, transcript, translation, status, prompt.source if prompt else None)


# --- voices, prepare, recipe -----------------------------------------------------------------


def clip_names(folder: Path, suffix: str) -> list[str]:
    """Clip names (``digits/1``) under `folder` with `suffix`, sorted; hidden files skipped."""
    names = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = Path(dirpath).relative_to(folder)
        for filename in sorted(filenames):
            if filename.endswith(suffix) and not filename.startswith("."):
                names.append((base / filename[: -len(suffix)]).as_posix())
    return sorted(names)


def core_voices(root: Path) -> list[tuple[Voice, list[str]]]:
    """The core voices under ``usr/share/asterisk/sounds`` and their G.722 clip names."""
    sounds = require_dir(resolve_under(root, SOUNDS_DIR), "asterisk",
                         "Asterisk sounds usr/share/asterisk/sounds")
    voices = []
    for entry in list_dir(sounds, dirs=True):
        voice = parse_voice(entry.name)
        if voice is None or entry.is_symlink():
            continue
        clips = clip_names(Path(entry.path), ".g722")
        if clips:
            voices.append((voice, clips))
    if not voices:
        raise DatasetError(f"asterisk: no <lang>_<REGION>_<f|m>_<Voice>/ folder with .g722 "
                           f"clips under {sounds}; unpack the asterisk-core-sounds-<lang>-g722 "
                           f"packages there")
    return voices


def prepare(root: Path, *, progress: bool = True) -> None:
    """Transcode every core-sounds ``.g722`` clip to 16 kHz mono FLAC under
    ``<root>/desta-prepared/asterisk/<voice folder>/`` (skips clips already converted)."""
    root = Path(root)
    out = prepared_dir(root, "asterisk")
    jobs = [TranscodeJob(resolve_under(root, SOUNDS_DIR, voice.folder, f"{name}.g722"),
                         out / voice.folder / f"{name}.flac", "g722")
            for voice, clips in core_voices(root) for name in clips]
    transcode_all(jobs, desc="asterisk", progress=progress)


@register_recipe("asterisk")
def asterisk(root: Path, *, split: str | None = None, missing_audio: str = "skip"
             ) -> Iterator[dict[str, Any]]:
    """Asterisk core prompts: transcript from ``core-sounds-<lang>.txt`` (None where the line
    is missing, empty or unclear), attributes Language and Gender (from the voice folder),
    meta speaker ``asterisk:<voice>``, locale, translation (the English prompt).

    Reads the FLAC files :func:`prepare` wrote. Tones, beeps and silences (bracketed in the
    text files) are skipped and counted.
    """
    voices = core_voices(root)
    out = prepared_dir(root, "asterisk")
    if not out.is_dir():
        raise missing_prepared(root, "asterisk")
    english_path = core_sounds_path(root, "en")
    english = read_core_sounds(english_path) if english_path.is_file() else {}
    if not english:
        logger.warning("asterisk: %s not found: no translations, and non-speech is only known "
                       "from each language's own file", english_path)
    check = AudioCheck("asterisk", missing_audio)
    counts: Counter[str] = Counter()
    try:
        for voice, clips in voices:
            own = (english if voice.language == "en" and english
                   else read_core_sounds(core_sounds_path(root, voice.language)))
            for name in clips:
                labels = labels_for(name, own, english, voice.language)
                if labels.skip:
                    counts["non-speech clip(s) skipped (tones, beeps, silence)"] += 1
                    continue
                if is_empty_source(resolve_under(root, SOUNDS_DIR, voice.folder,
                                                 f"{name}.g722")):
                    counts["empty file(s) in the package skipped"] += 1
                    continue
                audio = resolve_under(out, voice.folder, f"{name}.flac")
                if not check.exists(audio, f"prepared copy of {voice.folder}/{name}.g722"):
                    continue
                counts[f"{labels.status} transcript"] += 1
                yield make_record(
                    id=f"asterisk/{voice.folder}/{name}", audio=audio, dataset="asterisk",
                    domain="speech", transcript=labels.transcript,
                    attributes={"Language": voice.language_name,
                                "Gender": voice.gender},
                    meta=clip_meta(labels, speaker=voice.speaker, language=voice.language,
                                   locale=voice.locale,
                                   package=f"asterisk-core-sounds-{voice.language}-g722",
                                   gender_source=voice.gender_source,
                                   credit=CREDITS.get(voice.folder)),
                )
        check.finish()
    finally:
        check.report()
        if counts:
            logger.info("asterisk: %s", ", ".join(f"{n} {what}" for what, n in
                                                  sorted(counts.items())))


def clip_meta(labels: Labels, *, speaker: str, language: str, locale: str | None,
              package: str, gender_source: str | None, credit: str | None
              ) -> dict[str, Any]:
    """A prompt clip's ``meta``: speaker, language, locale, source package, the voice's
    credit, where its gender and transcript come from, and the English translation."""
    meta: dict[str, Any] = {"speaker": speaker, "language": language, "source": package}
    if locale:
        meta["locale"] = locale
    if credit:
        meta["credit"] = credit
    if gender_source:
        meta["gender_source"] = gender_source
    if labels.source:
        meta["transcript_source"] = labels.source
    if labels.translation:
        meta["translation"] = labels.translation
    return meta

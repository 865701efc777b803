"""KTuberling (Debian ``ktuberling-data``): single words spoken per language, one sound theme
per language.

::

    usr/share/ktuberling/sounds/<code>.soundtheme    <language code="de">
                                                       <sound name="ball" file="de/ball.ogg"/>
    usr/share/ktuberling/sounds/<code>/*.ogg|*.wav|*.opus

``name`` is the English concept the playground object stands for ("egypt_camel"): it goes to
``meta["translation"]`` ("camel"). The package never writes down the word spoken in the
language (file names are ASCII guesses such as ``fi/silma.wav``), so ``transcript`` is None.
The four Serbian themes (``sr``, ``sr@latin``, ``sr@ijekavian``, ``sr@ijekavianlatin``) ship
byte-identical files: every recording is kept once (first theme in name order), as is a file
that one theme lists under several names. ``nn`` is skipped: its 190 Opus files come from the
GCompris voice set whose sister set in klettres-data is stated to be CereVoice text-to-speech.
"""

from __future__ import annotations

import hashlib
import logging
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from desta.data.recipes import DatasetError, make_record, register_recipe
from desta.data.recipes.languages import parse_locale
from desta.data.recipes.metadata import AudioCheck
from desta.data.recipes.paths import list_dir, require_dir, resolve_under

logger = logging.getLogger(__name__)

PACKAGE = "ktuberling-data"
SOUNDS_DIR = "usr/share/ktuberling/sounds"
# Playground prefixes of the concept names (pics/<playground>.theme): not part of the word.
_PLAYGROUND_PREFIXES = ("butterflies_", "egypt_", "moon_", "pizzeria_", "robot_workshop_",
                        "tv_", "xmas_", "tux-")
# Concepts that are not words: Tux laughing and snoring.
_NON_VERBAL = frozenset({"tux-laugh", "tux-zzz"})
_SKIPPED_THEMES = {"nn": "suspected text-to-speech (GCompris' CereVoice voice set)"}
# Voice credits the package states (ktuberling.mo translator notes).
_CREDITS = {
    "de": "translators: 'Helmut Pozimski (Deutsche Audio-Dateien)'",
    "gl": "translator note: 'Sound files contributed by Miguel Solla, with the voice of his "
          "young daughter, Miss Sara Barreiro Riveiro.'; translators: 'Sara Barreiro Riveiro "
          "(voz), Miguel Solla (voz)'",
    "sl": "translators: 'Saša Batistič (zvoki)'",
}


def concept_words(name: str) -> str:
    """The English words of a concept name: "egypt_palmtree" -> "palmtree",
    "pizzeria_olive2" -> "olive", "tux-letter-love" -> "letter love"."""
    for prefix in _PLAYGROUND_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    name = re.sub(r"\d+$", "", name)
    return " ".join(part for part in re.split(r"[_\-]+", name) if part)


def read_soundtheme(path: Path) -> tuple[str, list[tuple[str, str]]]:
    """``(language code, [(name, file), ...])`` of a ``.soundtheme`` file, in file order.

    Malformed XML, a root that is not ``<language code=...>``, or a ``<sound>`` without
    ``name``/``file`` is a DatasetError naming the file (and line for XML errors).
    """
    try:
        root = ET.parse(path, parser=ET.XMLParser(encoding="utf-8")).getroot()
    except ET.ParseError as exc:
        raise DatasetError(f"{path}:{exc.position[0]}: malformed XML: {exc}") from None
    if root.tag != "language" or not root.get("code"):
        raise DatasetError(f"{path}: root element must be <language code=...>, got "
                           f"<{root.tag} {dict(root.attrib)}>")
    sounds = []
    for sound in root.iter("sound"):
        name, file = sound.get("name"), sound.get("file")
        if not name or not file:
            raise DatasetError(f"{path}: <sound> lacks name= or file= (attributes "
                               f"{dict(sound.attrib)})")
        sounds.append((name.strip(), file.strip()))
    return root.get("code", ""), sounds


@register_recipe("ktuberling")
def ktuberling(root: Path, *, split: str | None = None, missing_audio: str = "skip"
               ) -> Iterator[dict[str, Any]]:
    """KTuberling words: ``transcript`` None (the package does not write the words down),
    attribute ``Language``; ``meta``: ``translation`` (the English concept, "camel"),
    ``concept`` (as the theme names it), ``speaker`` ("ktuberling:<locale>"), ``language``,
    ``locale``, ``credit`` where the package credits a voice. No Gender: no theme states one.
    """
    base = require_dir(resolve_under(root, SOUNDS_DIR), "ktuberling", f"{SOUNDS_DIR}/")
    check = AudioCheck("ktuberling", missing_audio)
    counts: Counter[str] = Counter()
    seen: set[str] = set()  # content fingerprints already yielded
    try:
        for entry in list_dir(base, dirs=False, suffixes=(".soundtheme",)):
            theme = Path(entry.path)
            code, sounds = read_soundtheme(theme)
            if code in _SKIPPED_THEMES:
                logger.warning("ktuberling: skipping theme %s: %s", code, _SKIPPED_THEMES[code])
                continue
            locale = parse_locale(code, str(theme))
            for name, file in sounds:
                if name in _NON_VERBAL:
                    counts["not a word (laugh, snore)"] += 1
                    continue
                source = f"{theme} (<sound name={name!r}>)"
                audio = resolve_under(base, file, source=source)
                if not check.exists(audio, source):
                    continue
                fingerprint = hashlib.blake2b(audio.read_bytes(), digest_size=16).hexdigest()
                if fingerprint in seen:
                    counts["same recording as a clip already read"] += 1
                    continue
                seen.add(fingerprint)
                meta: dict[str, Any] = {
                    "speaker": f"ktuberling:{locale.locale}", "language": locale.language,
                    "locale": locale.locale, "source": PACKAGE,
                    "translation": concept_words(name), "concept": name,
                }
                if locale.locale in _CREDITS:
                    meta["credit"] = _CREDITS[locale.locale]
                yield make_record(
                    id=f"ktuberling/{file.rsplit('.', 1)[0]}", audio=audio,
                    dataset="ktuberling", domain="speech", transcript=None,
                    attributes={"Language": locale.name}, meta=meta,
                )
        check.finish()
    finally:
        check.report()
        for reason, count in sorted(counts.items()):
            logger.warning("ktuberling: skipped %d clip(s): %s", count, reason)

"""KLettres (Debian ``klettres-data``): letters and syllables read aloud, one set per locale.

::

    usr/share/klettres/<locale>/sounds.xml       <language code="fr"> <alphabet>
                                                   <sound name="A" file="fr/alpha/a-0.ogg"/>
                                                 ... </alphabet> <syllables> ... </syllables>
    usr/share/klettres/<locale>/alpha/*.ogg, syllab/*.ogg

The ``name`` is what is said, written as KLettres shows it (upper case, the locale's own
script): it is the transcript. Files are found through ``sounds.xml`` only (``de/alpha/sz.ogg``
is listed nowhere and is not read). A file listed under two names can only say one of them:
the first listing is kept (it matches the file name in every case in 22.12: ``ties.ogg`` is
"TIES", not the later "TEIS"), later ones are skipped and counted. A locale whose
``sounds.xml`` says its audio is text-to-speech (``nn``: CereVoice) is skipped. Speakers and
credits come from the KLettres handbook (``doc/HTML/en/klettres/index.docbook``) and the
``sounds.xml`` comments; gender only where those say it.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desta.data.recipes import DatasetError, make_record, register_recipe
from desta.data.recipes.languages import parse_locale
from desta.data.recipes.metadata import AudioCheck
from desta.data.recipes.paths import list_dir, require_dir, require_file, resolve_under

logger = logging.getLogger(__name__)

PACKAGE = "klettres-data"
KLETTRES_DIR = "usr/share/klettres"
_SECTIONS = {"alphabet": "letter", "syllables": "syllable"}
# Words in a sounds.xml comment that mean the clips are synthetic.
_SYNTHETIC_MARKERS = ("text-to-speech", "cerevoice", "tts ")


@dataclass(frozen=True)
class _Credit:
    credit: str
    gender: str | None = None
    gender_source: str | None = None
    several: bool = False


# The handbook's "Credits and License" list, and the sounds.xml comments (ar, lt, pt_BR, ru).
_CREDITS = {
    "ar": _Credit("sounds.xml: 'Staring Rafik, my little nephew's voice'", gender="Male",
                  gender_source="ar/sounds.xml comment: 'Staring Rafik, my little nephew's "
                                "voice'"),
    "cs": _Credit("Czech sounds: Eva Mikulčíková"),
    "da": _Credit("Danish sounds: Erik Kjaer Pedersen"),
    "de": _Credit("German sounds: Helmut Kriege"),
    "en": _Credit("English sounds: Robert Wadley"),
    "es": _Credit("Spanish sounds: Ana Belén Caballero and Juan Pedro Paredes", several=True),
    "fr": _Credit("French sounds: Ludovic Grossard"),
    "he": _Credit("Hebrew sounds: Assaf Gorgon"),
    "it": _Credit("Italian sounds: Pietro Pasotti"),
    "lt": _Credit("sounds.xml: 'Lithuanian alphabet and syllables V 1.0, made by Liudas "
                  "Ališauskas'"),
    "nb": _Credit("sounds.xml: 'Sounds taken from GCompris. Thanks to Johnstad/Gabor.'"),
    "nds": _Credit("Low Saxon sounds: Manfred Wiese and Sönke Dibbern", several=True),
    "nl": _Credit("Dutch sounds: Geert Stams"),
    # Both people the credit names are male ("Father", "Son"), whoever read which clip.
    "pt_BR": _Credit("Brazilian Portuguese sounds: Lindonjohnson Monte (Father) and Michelle "
                     "Monte 09 years (Son)", gender="Male", several=True,
                     gender_source="handbook credits: 'Lindonjohnson Monte (Father) and "
                                   "Michelle Monte 09 years (Son)'"),
    "ru": _Credit("sounds.xml: 'Russian sounds made at Google Code-in'"),
}


def _is_synthetic(path: Path) -> bool:
    """Whether the file's comments say its sounds are text-to-speech."""
    text = path.read_text(encoding="utf-8", errors="replace").lower()
    comments = [part.split("-->", 1)[0] for part in text.split("<!--")[1:]]
    return any(marker in comment for comment in comments for marker in _SYNTHETIC_MARKERS)


def read_sounds(path: Path) -> Iterator[tuple[str, str, str, str]]:
    """``(code, section, name, file)`` per ``<sound>`` of a KLettres ``sounds.xml``, in file
    order; section is "alphabet" or "syllables".

    Malformed XML, a ``<sound>`` without ``name``/``file``, or a file without a
    ``<language code=...>`` is a DatasetError naming the file (and line).
    """
    try:
        tree = ET.parse(path, parser=ET.XMLParser(encoding="utf-8"))
    except ET.ParseError as exc:
        line = exc.position[0]
        raise DatasetError(f"{path}:{line}: malformed XML: {exc}") from None
    languages = list(tree.getroot().iter("language"))
    if not languages or not languages[0].get("code"):
        raise DatasetError(f"{path}: no <language code=...> element")
    code = languages[0].get("code", "")
    for section in _SECTIONS:
        for parent in tree.getroot().iter(section):
            for sound in parent.iter("sound"):
                name, file = sound.get("name"), sound.get("file")
                if not name or not name.strip() or not file:
                    raise DatasetError(f"{path}: <sound> in <{section}> lacks name= or file= "
                                       f"(attributes {sound.attrib})")
                yield code, section, name.strip(), file.strip()


@register_recipe("klettres")
def klettres(root: Path, *, split: str | None = None, missing_audio: str = "skip"
             ) -> Iterator[dict[str, Any]]:
    """KLettres letters and syllables: transcript the ``name`` from ``sounds.xml``,
    attributes ``Language`` (and ``Gender`` where the credits state it). ``meta``:
    ``speaker`` ("klettres:<locale>"), ``language``, ``locale``, ``unit`` (letter /
    syllable), ``credit``. Listed files that are missing are the missing-audio policy's
    (``id`` lists 108 files the package does not ship).
    """
    base = require_dir(resolve_under(root, KLETTRES_DIR), "klettres", f"{KLETTRES_DIR}/")
    check = AudioCheck("klettres", missing_audio)
    counts: Counter[str] = Counter()
    try:
        for folder in list_dir(base, dirs=True):
            xml = base / folder.name / "sounds.xml"
            if not xml.is_file():
                continue  # icons/, pics/
            require_file(xml, "klettres", "sound list")
            if _is_synthetic(xml):
                logger.warning("klettres: skipping %s: its sounds.xml says the clips are "
                               "text-to-speech", folder.name)
                continue
            seen: dict[str, str] = {}  # file -> the name it was first listed under
            for code, section, name, file in read_sounds(xml):
                locale = parse_locale(code, str(xml))
                if file in seen:
                    if seen[file] != name:
                        logger.info("klettres: %s lists %s as %r and again as %r; keeping %r",
                                    xml, file, seen[file], name, seen[file])
                        counts["file listed again under another name"] += 1
                    continue
                seen[file] = name
                source = f"{xml} (<sound name={name!r}>)"
                audio = resolve_under(base, file, source=source)
                if not check.exists(audio, source):
                    continue
                credit = _CREDITS.get(locale.locale)
                attributes = {"Language": locale.name}
                meta: dict[str, Any] = {
                    "speaker": f"klettres:{locale.locale}", "language": locale.language,
                    "locale": locale.locale, "source": PACKAGE, "unit": _SECTIONS[section],
                }
                if credit is not None:
                    meta["credit"] = credit.credit
                    if credit.several:
                        meta["several_speakers"] = True
                    if credit.gender is not None:
                        attributes["Gender"] = credit.gender
                        meta["gender_source"] = credit.gender_source
                yield make_record(
                    id=f"klettres/{file.rsplit('.', 1)[0]}", audio=audio, dataset="klettres",
                    domain="speech", transcript=name, attributes=attributes, meta=meta,
                )
        check.finish()
    finally:
        check.report()
        for reason, count in sorted(counts.items()):
            logger.warning("klettres: skipped %d clip(s): %s", count, reason)

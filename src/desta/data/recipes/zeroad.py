"""0 A.D. (Debian ``0ad-data``): the game's citizen voices and animal sounds, real recordings
inside the game's ``public.zip``.

::

    usr/share/games/0ad/mods/public/public.zip
        audio/voice/<civ>/civ/civ_<female|male>_<command>_<n>.ogg   citizen voice lines
        audio/voice/global/civ_dog_bark.ogg                         a dog
        audio/actor/fauna/animal/<animal>_<n|event>.ogg              livestock and wild animals
        audio/actor/fauna/death/goat_<n>.ogg                         goats

The voice lines are commands acknowledged in the civilisation's (reconstructed) language:
Ancient Greek, Latin, Meroitic (``napatan``) and Old Persian. The file name states the
citizen's gender (``civ_female_*`` / ``civ_male_*``) and the command, in English, which is the
line's translation. The speaker id is ``0ad:<civ>:<gender>``: the package credits no voice
actor, so one voice per civilisation and gender is an assumption; it is only used to keep a
voice on one side of a split. The language is meta only (no Language attribute): these are
reconstructions, not languages a listener would name.

:func:`prepare` copies the ``.ogg`` files (libsndfile reads them) out of the zip into
``<root>/desta-prepared/zeroad/``; the recipes read those copies.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from desta.data.recipes import DatasetError, make_record, register_recipe
from desta.data.recipes.metadata import AudioCheck
from desta.data.recipes.paths import require_file, resolve_under
from desta.data.recipes.prepared import missing_prepared, prepared_dir, write_atomic

__all__ = ["ANIMALS", "CIVILISATIONS", "prepare", "zeroad_animals", "zeroad_voices"]

logger = logging.getLogger(__name__)

SOURCE = "zeroad"
PACKAGE = "0ad-data"
PUBLIC_ZIP = "usr/share/games/0ad/mods/public/public.zip"
_MEMBERS = re.compile(r"^audio/(voice/[^/]+/civ/[^/]+|voice/global/civ_dog_\w+|"
                      r"actor/fauna/(animal|death)/[^/]+)\.ogg$")
# Civilisation folder -> (language, ISO 639-3 code).
CIVILISATIONS = {
    "greek": ("Ancient Greek", "grc"),
    "latin": ("Latin", "lat"),
    "napatan": ("Meroitic", "xmr"),
    "persian": ("Old Persian", "peo"),
}
_VOICE = re.compile(r"^civ_(female|male)_(?P<command>.+?)_?(?P<n>\d+)?$")
# File-name prefix -> the animal heard (Audio category), as the other sound recipes name it.
# Files whose name says only that an animal dies ("Animal_death_generic") are not listed.
ANIMALS = {
    "camel": "camel", "cattle": "cow", "chicken": "chicken", "elephant": "elephant",
    "flamingo": "flamingo", "horse": "horse", "lion": "lion", "peacock": "peacock",
    "pig": "pig", "sheep": "sheep", "goat": "goat", "civ_dog": "dog",
}
_ANIMAL = re.compile(r"^(?P<prefix>[a-z_]+?)_(\d+|attack\d*|death\d*|idle\d*|order\d*|"
                     r"select\d*|trained\d*|call_\d+|squeal_move|bark|move)$")
# Commands whose file names run words together ("Asyouwish") or abbreviate.
_COMMAND_TEXT = {"Asyouwish": "as you wish", "Imcoming": "I'm coming"}


def prepare(root: Path, *, progress: bool = True) -> None:
    """Copy the voice and animal ``.ogg`` files out of ``public.zip`` into
    ``<root>/desta-prepared/zeroad/`` (their zip paths kept). Idempotent: a file already
    copied with the zip's size is skipped; each is written under a temporary name and renamed.
    """
    from tqdm import tqdm

    root = Path(root)
    path = require_file(resolve_under(root, PUBLIC_ZIP), SOURCE, f"{PACKAGE} archive")
    out = prepared_dir(root, SOURCE)
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if _MEMBERS.match(m.filename)]
            if not members:
                raise DatasetError(f"{SOURCE}: {path}: no audio/voice or audio/actor/fauna "
                                   ".ogg files in the archive")
            counts: Counter[str] = Counter()
            for member in tqdm(members, desc="zeroad: copy from public.zip", unit="file",
                               disable=not progress):
                target = out / member.filename
                if target.is_file() and target.stat().st_size == member.file_size:
                    counts["kept"] += 1
                    continue
                write_atomic(target, archive.read(member))
                counts["written"] += 1
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{SOURCE}: {path}: cannot read the archive ({exc}); fetch "
                           f"{PACKAGE} again") from None
    logger.info("zeroad: %d file(s) copied, %d already there", counts["written"],
                counts["kept"])


def _prepared(root: Path, sub: str) -> Path:
    base = prepared_dir(Path(root), SOURCE) / "audio"
    if not base.is_dir():
        raise missing_prepared(Path(root), SOURCE)
    return base / sub


def command_text(command: str) -> str:
    """A voice file's command as English words: "what_is_it" -> "what is it"."""
    return _COMMAND_TEXT.get(command, command.replace("_", " "))


@register_recipe("zeroad_voices")
def zeroad_voices(root: Path, *, split: str | None = None, missing_audio: str = "skip"
                  ) -> Iterator[dict[str, Any]]:
    """0 A.D. citizen voice lines: attribute ``Gender`` (from the file name), no transcript
    (the words are a reconstructed language). ``meta``: ``speaker`` (``0ad:<civ>:<gender>``),
    ``language`` (ISO 639-3), ``language_name``, ``translation`` (the command in English),
    ``gender_source``.

    A voice folder other than the four civilisations, or a file name that is not
    ``civ_<female|male>_<command>[_<n>].ogg``, is a DatasetError naming it.
    """
    base = _prepared(root, "voice")
    check = AudioCheck("zeroad_voices", missing_audio)
    try:
        for civ_dir in sorted(p for p in base.iterdir() if p.is_dir() and p.name != "global"):
            if civ_dir.name not in CIVILISATIONS:
                raise DatasetError(f"zeroad_voices: {civ_dir}: unknown civilisation; known: "
                                   f"{', '.join(CIVILISATIONS)}")
            language, code = CIVILISATIONS[civ_dir.name]
            for audio in sorted((civ_dir / "civ").glob("*.ogg")):
                match = _VOICE.match(audio.stem)
                if match is None:
                    raise DatasetError(f"zeroad_voices: {audio}: file name is not "
                                       "civ_<female|male>_<command>[_<n>].ogg")
                if not check.exists(audio, f"listing of {civ_dir / 'civ'}"):
                    continue
                gender = match.group(1)
                yield make_record(
                    id=f"zeroad/{civ_dir.name}/{audio.stem}", audio=audio,
                    dataset="zeroad_voices", domain="speech",
                    attributes={"Gender": gender.capitalize()},
                    meta={"speaker": f"0ad:{civ_dir.name}:{gender}", "language": code,
                          "language_name": f"{language} (reconstructed)", "source": PACKAGE,
                          "translation": command_text(match.group("command")),
                          "gender_source": f"file name {audio.name} ('civ_{gender}_')"},
                )
        check.finish()
    finally:
        check.report()


@register_recipe("zeroad_animals")
def zeroad_animals(root: Path, *, split: str | None = None, missing_audio: str = "skip"
                   ) -> Iterator[dict[str, Any]]:
    """0 A.D. animal sounds: attribute ``Audio category`` (the animal, from the file name:
    ``cattle_03`` -> cow), ``meta`` ``category`` "animal", ``animal``, ``event`` (attack,
    death, select... where the name says). Files naming no animal are skipped and counted."""
    files = sorted(_prepared(root, "actor/fauna").glob("*/*.ogg"))
    files += sorted(_prepared(root, "voice/global").glob("civ_dog_*.ogg"))
    check = AudioCheck("zeroad_animals", missing_audio)
    skipped = 0
    try:
        for audio in files:
            match = _ANIMAL.match(audio.stem.removeprefix("death_"))
            animal = ANIMALS.get(match.group("prefix")) if match else None
            if animal is None:
                skipped += 1
                continue
            if not check.exists(audio, "prepared fauna folder"):
                continue
            event = match.group(2)
            meta: dict[str, Any] = {"category": "animal", "animal": animal, "source": PACKAGE}
            if not event.isdigit():
                meta["event"] = re.sub(r"[_\d]+", " ", event).strip()
            yield make_record(
                id=f"zeroad/{audio.parent.name}/{audio.stem}", audio=audio,
                dataset="zeroad_animals", domain="sound",
                attributes={"Audio category": animal}, meta=meta,
            )
        check.finish()
    finally:
        check.report()
    if skipped:
        logger.info("zeroad_animals: skipped %d file(s) naming no animal", skipped)

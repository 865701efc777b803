"""Community Asterisk prompt sets: Italian (Menardi), French (Armelle), Colombian Spanish.

Layout (a ``dpkg -x`` tree, or an installed system with ``root=/``)::

    usr/share/asterisk/sounds/it_IT_f_Menardi/<name>.wav   asterisk-prompt-it-menardi-wav, 8 kHz PCM
    usr/share/asterisk/sounds/fr/<name>.gsm                asterisk-prompt-fr-armelle, raw GSM 6.10
    usr/share/asterisk/sounds/es/<name>.gsm                asterisk-prompt-es-co, raw GSM 6.10
    <root>/desta-prepared/asterisk_prompts/<folder>/<name>.flac   written by :func:`prepare`

The sets carry no transcripts of their own. Their prompt names are Asterisk's, so a clip's
transcript is the line of the same name in ``core-sounds-<lang>.txt`` (packages
asterisk-core-sounds-<lang>): the text of the core prompt, which these recordings were made
from; a community translation may word a prompt differently (docs/data/recipes.md gives the
duration check). A clip with no such line keeps transcript None and is still a labelled
sample of its language and voice.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import soundfile as sf

from desta.data.recipes import DatasetError, make_record, register_recipe
from desta.data.recipes.asterisk import (
    SOUNDS_DIR,
    Labels,
    clip_meta,
    clip_names,
    core_sounds_path,
    labels_for,
    read_core_sounds,
)
from desta.data.recipes.languages import LANGUAGE_NAMES
from desta.data.recipes.metadata import AudioCheck
from desta.data.recipes.paths import resolve_under
from desta.data.recipes.prepared import (
    TranscodeJob,
    is_empty_source,
    missing_prepared,
    prepared_dir,
    transcode_all,
)

logger = logging.getLogger(__name__)

SOURCE = "asterisk_prompts"


@dataclass(frozen=True)
class PromptSet:
    """One community prompt package: its folder and what its files and docs state."""

    folder: str  # under usr/share/asterisk/sounds
    package: str
    language: str
    locale: str | None
    voice: str  # speaker id suffix: asterisk:<voice>
    gender: str | None
    gender_source: str | None
    credit: str  # quoted from the package's copyright / LEEME


PROMPT_SETS = (
    PromptSet("it_IT_f_Menardi", "asterisk-prompt-it-menardi-wav", "it", "it_IT", "menardi",
              "Female", "voice folder name it_IT_f_Menardi ('_f_' = female)",
              "Copyright: 2006-2011, Marco Menardi e Paola Dal Zot (copyright: 'i file sonori "
              "sono stati fatti da me e mia moglie')"),
    # The French and Colombian sets credit their voices by name only; a gender read off a
    # given name is a guess, so neither states one (the name stays in `credit`).
    PromptSet("fr", "asterisk-prompt-fr-armelle", "fr", None, "armelle", None, None,
              "Voice actor: Armelle Desjardins"),
    # LEEME: "grabadas con el acento neutral de Colombia".
    PromptSet("es", "asterisk-prompt-es-co", "es", "es_CO", "july_jimenez", None, None,
              "Sonidos grabados por Avatar Ltda. con la voz de July E. Jiménez"),
)
# See `length_misfits`.
RATE_TOLERANCE = 2.0
RATE_MIN_CHARS = 20
# Formats libsndfile reads as they are; anything else (raw .gsm) goes through prepare.
_READABLE = (".wav",)
_SUFFIXES = (".wav", ".gsm")


def _set_clips(root: Path, prompt_set: PromptSet) -> list[tuple[str, str]]:
    """``(name, suffix)`` of a set's clips, sorted; empty when its package is not unpacked."""
    folder = resolve_under(root, SOUNDS_DIR, prompt_set.folder)
    if not folder.is_dir() or folder.is_symlink():
        return []
    clips = [(name, suffix) for suffix in _SUFFIXES for name in clip_names(folder, suffix)]
    return sorted(clips)


def _needs_transcoding(path: Path) -> bool:
    """Whether libsndfile cannot read `path` (raw GSM, or a WAV in a codec it lacks)."""
    if path.suffix not in _READABLE:
        return True
    try:
        sf.info(str(path))
        return False
    except (sf.LibsndfileError, RuntimeError):
        return True


def prepare(root: Path, *, progress: bool = True) -> None:
    """Transcode the clips of every installed prompt set that libsndfile cannot read to
    16 kHz mono FLAC under ``<root>/desta-prepared/asterisk_prompts/<folder>/``."""
    root = Path(root)
    out = prepared_dir(root, SOURCE)
    jobs = []
    for prompt_set in PROMPT_SETS:
        for name, suffix in _set_clips(root, prompt_set):
            src = resolve_under(root, SOUNDS_DIR, prompt_set.folder, f"{name}{suffix}")
            if not is_empty_source(src) and _needs_transcoding(src):
                fmt = "gsm" if suffix == ".gsm" else None
                jobs.append(TranscodeJob(src, out / prompt_set.folder / f"{name}.flac", fmt))
    out.mkdir(parents=True, exist_ok=True)  # marks prepare as run, even with nothing to do
    transcode_all(jobs, desc=SOURCE, progress=progress)


@register_recipe(SOURCE)
def asterisk_prompts(root: Path, *, split: str | None = None, missing_audio: str = "skip"
                     ) -> Iterator[dict[str, Any]]:
    """Community prompt clips: transcript from the core-sounds line of the same name (None
    when there is none), attributes Language and Gender (where the folder name or the
    package's credits state it), meta speaker ``asterisk:<voice>``, translation (English).

    Reads WAV files directly and the FLAC copies :func:`prepare` wrote for the rest. Tones,
    beeps and silences are skipped and counted; a borrowed transcript whose length does not
    fit the clip is dropped (:func:`length_misfits`).
    """
    sets = [(prompt_set, clips) for prompt_set in PROMPT_SETS
            if (clips := _set_clips(root, prompt_set))]
    if not sets:
        raise DatasetError(
            f"{SOURCE}: none of the prompt folders "
            f"({', '.join(s.folder for s in PROMPT_SETS)}) is under "
            f"{resolve_under(root, SOUNDS_DIR)}; unpack "
            f"{', '.join(s.package for s in PROMPT_SETS)} there")
    out = prepared_dir(root, SOURCE)
    english_path = core_sounds_path(root, "en")
    english = read_core_sounds(english_path) if english_path.is_file() else {}
    check = AudioCheck(SOURCE, missing_audio)
    counts: Counter[str] = Counter()
    try:
        for prompt_set, clips in sets:
            own = read_core_sounds(core_sounds_path(root, prompt_set.language))
            kept: list[tuple[str, Labels, Path]] = []
            for name, suffix in clips:
                labels = labels_for(name, own, english, prompt_set.language)
                if labels.skip:
                    counts["non-speech clip(s) skipped (tones, beeps, silence)"] += 1
                    continue
                src = resolve_under(root, SOUNDS_DIR, prompt_set.folder, f"{name}{suffix}")
                if is_empty_source(src):
                    counts["empty file(s) in the package skipped"] += 1
                    continue
                audio = _audio(root, out, prompt_set, name, suffix, src)
                if check.exists(audio, f"prepared copy of {prompt_set.folder}/{name}{suffix}"):
                    kept.append((name, labels, audio))
            misfits = length_misfits(kept)
            for name, labels, audio in kept:
                if name in misfits:
                    labels = replace(labels, transcript=None, status="misfit")
                counts[f"{prompt_set.folder}: {labels.status} transcript"] += 1
                yield make_record(
                    id=f"{SOURCE}/{prompt_set.folder}/{name}", audio=audio, dataset=SOURCE,
                    domain="speech", transcript=labels.transcript,
                    attributes=_attributes(prompt_set),
                    meta=clip_meta(labels, speaker=f"asterisk:{prompt_set.voice}",
                                   language=prompt_set.language, locale=prompt_set.locale,
                                   package=prompt_set.package,
                                   gender_source=prompt_set.gender_source,
                                   credit=prompt_set.credit),
                )
        check.finish()
    finally:
        check.report()
        if counts:
            logger.info("%s: %s", SOURCE, ", ".join(f"{n} {what}" for what, n in
                                                   sorted(counts.items())))


def length_misfits(clips: list[tuple[str, Labels, Path]]) -> set[str]:
    """Names whose borrowed transcript does not fit the recording's length.

    The speaking rate (characters per second, from the file header: no decoding) of each
    transcript of RATE_MIN_CHARS or more is compared with the set's median; more than
    RATE_TOLERANCE times off means the recording says something else (Menardi's
    ``demo-thanks`` is 74 s long, its core text 4 s). On the core voices, whose transcripts
    belong to their recordings, the same test flags 1 clip in 2,643.
    """
    rates: dict[str, float] = {}
    for name, labels, audio in clips:
        if labels.transcript is None or len(labels.transcript) < RATE_MIN_CHARS:
            continue
        try:
            info = sf.info(str(audio))
        except (sf.LibsndfileError, RuntimeError):
            continue  # unreadable: `desta data manifest` reports it
        if info.frames:
            rates[name] = len(labels.transcript) * info.samplerate / info.frames
    if not rates:
        return set()
    median = statistics.median(rates.values())
    return {name for name, rate in rates.items()
            if not median / RATE_TOLERANCE <= rate <= median * RATE_TOLERANCE}


def _audio(root: Path, out: Path, prompt_set: PromptSet, name: str, suffix: str, src: Path
           ) -> Path:
    """The converted FLAC when prepare wrote one, else the package's own readable file."""
    flac = resolve_under(out, prompt_set.folder, f"{name}.flac")
    if flac.is_file() or suffix in _READABLE:
        return flac if flac.is_file() else src
    if not out.is_dir():
        raise missing_prepared(root, SOURCE)
    return flac  # missing: AudioCheck counts it


def _attributes(prompt_set: PromptSet) -> dict[str, str]:
    attributes = {"Language": LANGUAGE_NAMES[prompt_set.language]}
    if prompt_set.gender:
        attributes["Gender"] = prompt_set.gender
    return attributes

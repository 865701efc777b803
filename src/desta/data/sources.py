"""Real recorded audio that installs offline: the Debian packages desta's real-audio recipes read.

Each :class:`Source` names the packages it needs, their licence (read from each package's
``/usr/share/doc/<package>/copyright``, for the files the recipes use), the Debian versions the
recipes were written against, the recipes that read it, and an optional
``prepare`` step run once after unpacking (transcoding formats libsndfile cannot read,
unpacking Qt resource files, rendering SoundFont notes). ``desta data fetch`` downloads the
packages with ``apt-get download`` and unpacks them with ``dpkg-deb -x`` into one data root, so
the root holds the packages' own layout (``<root>/usr/share/...``): the same recipes also read
a machine where the packages are installed (``--root /``).

The data card, with what each source holds and measured durations, is docs/data/real-audio.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from desta.errors import ConfigError


@dataclass(frozen=True)
class Source:
    """One real-audio source: Debian packages + the recipes that read them."""

    name: str
    packages: tuple[str, ...]
    # Summary for tables; `licence_of(package)` is the per-package value the data card and
    # `.desta-fetch/sources.json` record.
    licence: str
    recipes: tuple[str, ...]
    description: str
    # "module:function" of a `prepare(root: Path, *, progress: bool = True) -> None` step run
    # after unpacking; idempotent (skips work already done), so a resumed fetch is cheap.
    prepare: str | None = None
    # Package -> licence, where a package's differs from `licence`.
    package_licences: Mapping[str, str] = field(default_factory=dict)
    # Package -> the Debian version the recipes were written and measured against (bookworm);
    # fetch takes apt's candidate and warns when it differs.
    versions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for what, keys in (("package_licences", self.package_licences),
                           ("versions", self.versions)):
            stray = sorted(set(keys) - set(self.packages))
            if stray:
                raise ConfigError(f"source {self.name!r}: {what} names package(s) it does not "
                                  f"list: {', '.join(stray)}")

    def licence_of(self, package: str) -> str:
        """The licence of one of this source's packages (from its copyright file)."""
        return self.package_licences.get(package, self.licence)

    def prepare_fn(self) -> Callable[..., None] | None:
        """The prepare step, imported; None when the source has none.

        Raises ConfigError naming ``module:function`` when it cannot be imported."""
        if self.prepare is None:
            return None
        module, _, name = self.prepare.partition(":")
        try:
            fn = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"source {self.name!r}: prepare step {self.prepare!r} cannot be "
                              f"loaded ({exc})") from exc
        if not callable(fn):
            raise ConfigError(f"source {self.name!r}: prepare step {self.prepare!r} is not a "
                              "function")
        return fn


_ASTERISK_LANGS = ("en", "es", "fr", "it", "ru")
# debian/copyright of asterisk-core-sounds: `Files: *` (Allison Smith: en, es) and `fr-*`
# (June Wallack) are CC-BY-SA-3.0; `ru-*` (Maxim Topal) and `it-*` (Carlo Flora) CC-BY-3.0.
_ASTERISK_LICENCES = {"en": "CC-BY-SA-3.0", "es": "CC-BY-SA-3.0", "fr": "CC-BY-SA-3.0",
                      "it": "CC-BY-3.0", "ru": "CC-BY-3.0"}

SOURCES: dict[str, Source] = {s.name: s for s in (
    Source(
        name="tuxpaint",
        packages=("tuxpaint-stamps-default",),
        licence="GPL-2",
        recipes=("tuxpaint", "tuxpaint_sounds"),
        versions={"tuxpaint-stamps-default": "2022.06.04-1"},
        description="Tux Paint stamps: spoken descriptions in 14 languages (about one "
                    "credited reader each), spoken digits in 21 and letters in 3, and the "
                    "stamps' sound effects (animals, household, weather, vehicles).",
    ),
    Source(
        name="fillets",
        packages=("fillets-ng-data", "fillets-ng-data-cs", "fillets-ng-data-nl"),
        # GPL version 2 only ("version 2 dated June, 1991"); only the fonts are GPL-2+.
        licence="GPL-2",
        recipes=("fillets",),
        versions={p: "1.0.1-1.1" for p in ("fillets-ng-data", "fillets-ng-data-cs",
                                           "fillets-ng-data-nl")},
        description="Fish Fillets NG acted dialogue in Czech and Dutch, with speaker per line "
                    "and English translations from the game's Lua dialogue tables.",
    ),
    Source(
        name="asterisk",
        packages=tuple(f"asterisk-core-sounds-{lang}" for lang in _ASTERISK_LANGS)
        + tuple(f"asterisk-core-sounds-{lang}-g722" for lang in _ASTERISK_LANGS),
        licence="CC-BY-SA-3.0 (en, es, fr) / CC-BY-3.0 (it, ru)",
        package_licences={f"asterisk-core-sounds-{lang}{suffix}": lic
                          for lang, lic in _ASTERISK_LICENCES.items()
                          for suffix in ("", "-g722")},
        versions={f"asterisk-core-sounds-{lang}{suffix}": "1.6.1-1"
                  for lang in _ASTERISK_LANGS for suffix in ("", "-g722")},
        recipes=("asterisk",),
        description="Asterisk core IVR prompts (en, es-MX, fr-CA, it, ru), 16 kHz G.722, one "
                    "studio voice per language with gender in the folder name; transcripts "
                    "from core-sounds-<lang>.txt.",
        prepare="desta.data.recipes.asterisk:prepare",
    ),
    Source(
        name="asterisk_prompts",
        # The prompt sets ship no transcripts; the core-sounds text files of the plain
        # asterisk-core-sounds-<lang> packages (docs only, no audio) give those of the
        # prompts with the same names, and English translations.
        packages=("asterisk-prompt-it-menardi-wav", "asterisk-prompt-fr-armelle",
                  "asterisk-prompt-es-co")
        + tuple(f"asterisk-core-sounds-{lang}" for lang in ("it", "fr", "es", "en")),
        licence="CC-BY-SA-3.0-IT (it) / BSD-style (fr) / GPL-2 (es)",
        package_licences={
            # Attribution condition: end users must be shown that Marco Menardi and Paola Dal
            # Zot made the recordings, with http://www.voip.ammdomus.it.
            "asterisk-prompt-it-menardi-wav": "CC-BY-SA-3.0-IT",
            # (C) 2006 Michel Gutierrez: redistribution with or without modification if the
            # notice is kept; no endorsement.
            "asterisk-prompt-fr-armelle": "BSD-style",
            "asterisk-prompt-es-co": "GPL-2",
            **{f"asterisk-core-sounds-{lang}": _ASTERISK_LICENCES[lang]
               for lang in ("it", "fr", "es", "en")},
        },
        versions={"asterisk-prompt-it-menardi-wav": "1:1.4.22+mm20110907-3.1",
                  "asterisk-prompt-fr-armelle": "20070613-2.2",
                  "asterisk-prompt-es-co": "0.20070403-2.1",
                  **{f"asterisk-core-sounds-{lang}": "1.6.1-1"
                     for lang in ("it", "fr", "es", "en")}},
        recipes=("asterisk_prompts",),
        description="Community Asterisk prompt sets: Italian (Menardi), French (Armelle), "
                    "Colombian Spanish (July E. Jiménez); transcripts from the core-sounds "
                    "text of the same prompt names.",
        prepare="desta.data.recipes.asterisk_prompts:prepare",
    ),
    Source(
        name="klettres",
        packages=("klettres-data",),
        # The sounds are under `Files: *`; CC0-1.0 covers only the appdata XML.
        licence="GPL-2+",
        recipes=("klettres",),
        versions={"klettres-data": "4:22.12.3-1"},
        description="KLettres: letters and syllables spoken in 20 locales, one credited "
                    "set each (nn is text-to-speech and skipped; id ships no audio).",
    ),
    Source(
        name="ktuberling",
        packages=("ktuberling-data",),
        licence="GPL-2+",
        recipes=("ktuberling",),
        versions={"ktuberling-data": "4:22.12.3-1"},
        description="KTuberling: single words in 22 languages (the four Serbian themes are "
                    "one recording set), mapped to English concepts by the .soundtheme files.",
    ),
    Source(
        name="gcin",
        packages=("gcin-voice",),
        licence="GPL-3 or LGPL-3 (*/3.ogg) / CC-BY-3.0 (*/5.ogg)",
        recipes=("gcin",),
        versions={"gcin-voice": "0~20170223-3"},
        description="gcin-voice: Mandarin zhuyin syllables with tones, two voices (files "
                    "3.ogg and 5.ogg; neither's gender is stated).",
    ),
    Source(
        name="gcompris",
        packages=("gcompris-qt-data",),
        # From the copyright file (`Files: *` is GPL-3+) and explore_world_music's README.
        licence="GPL-3+ (farm animals, melody: GPL-3; instruments/drum_kit.ogg: "
                "CC-Sampling-Plus-1.0; memory-sound *_LA*.ogg: Free Art License 1.2; "
                "world-music pieces: CC0-1.0, public domain or CC-BY-3.0; canal_lock, "
                "helicopter, icy_walk, metal_hit: freesound CC0-1.0 / CC-BY-3.0)",
        recipes=("gcompris_sounds",),
        versions={"gcompris-qt-data": "3.1-2"},
        description="GCompris activity resources: farm animals, memory-game and activity "
                    "sounds, 26 real instrument recordings and 9 regional music pieces, "
                    "unpacked from Qt .rcc files.",
        prepare="desta.data.recipes.gcompris:prepare",
    ),
    Source(
        name="zeroad",
        packages=("0ad-data",),
        licence="CC-BY-SA-3.0",
        recipes=("zeroad_voices", "zeroad_animals"),
        versions={"0ad-data": "0.0.26-1"},
        description="0 A.D.: citizen voice lines in four reconstructed ancient languages, "
                    "gender in the file name (civ_female_* / civ_male_*), and animal sounds "
                    "(cattle, horse, pig, sheep, goat, chicken, camel, elephant, lion, dog...). "
                    "A 1.38 GB package for 2.9 MB of these clips.",
        prepare="desta.data.recipes.zeroad:prepare",
    ),
    Source(
        name="soundfont",
        packages=("fluid-soundfont-gm",),
        licence="MIT",
        recipes=("soundfont_instruments",),
        versions={"fluid-soundfont-gm": "3.1-5.3"},
        description="FluidR3 GM SoundFont (sampled real instruments), rendered with "
                    "TinySoundFont note by note and as short phrases for 37 General MIDI "
                    "programs and 3 drum kits.",
        prepare="desta.data.recipes.soundfont:prepare",
    ),
)}


def get_source(name: str) -> Source:
    """The registered source called `name`; ConfigError listing the known ones otherwise."""
    try:
        return SOURCES[name]
    except KeyError:
        raise ConfigError(f"unknown real-audio source {name!r}; known: "
                          f"{', '.join(sorted(SOURCES))}") from None


def source_root_ok(root: Path) -> bool:
    """Whether `root` looks like a fetch root (or an installed system): has usr/share."""
    return (root / "usr" / "share").is_dir()

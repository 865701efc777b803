"""Locale codes as the real-audio packages write them (``pt_BR``, ``zh_tw``, ``sr@latin``) to
the ``Language`` attribute (the English name of the *spoken* language) and ISO 639 codes.

Only the languages these packages ship are listed; an unknown code is a DatasetError naming
where it was read, so a new package version with a new language is noticed, not mislabelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from desta.data.recipes import DatasetError

__all__ = ["Locale", "LANGUAGE_NAMES", "parse_locale"]

# ISO 639-1 (or 639-2/3 where no 2-letter code exists) -> English name of the spoken language.
# Chinese is "Mandarin Chinese": every Chinese clip in these packages is Mandarin.
LANGUAGE_NAMES = {
    "ar": "Arabic", "be": "Belarusian", "bg": "Bulgarian", "ca": "Catalan", "cs": "Czech",
    "da": "Danish", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "fi": "Finnish", "fr": "French", "ga": "Irish", "gl": "Galician", "he": "Hebrew",
    "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean",
    "lt": "Lithuanian", "ml": "Malayalam", "nb": "Norwegian Bokmål", "nds": "Low German",
    "nl": "Dutch", "nn": "Norwegian Nynorsk", "pt": "Portuguese", "ro": "Romanian",
    "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian", "sv": "Swedish",
    "tn": "Tswana", "uk": "Ukrainian", "wa": "Walloon", "zh": "Mandarin Chinese",
}

_LOCALE = re.compile(r"^([a-z]{2,3})(?:_([a-z]{2}))?(?:@([a-z]+))?$", re.IGNORECASE)


@dataclass(frozen=True)
class Locale:
    """A parsed locale: ``language`` ISO code ("pt"), ``locale`` normalised ("pt_BR",
    "sr@latin"), ``name`` the English language name ("Portuguese")."""

    language: str
    locale: str
    name: str


def parse_locale(text: str, where: str) -> Locale:
    """Parse ``pt_BR`` / ``zh_tw`` / ``sr@latin`` / ``en`` (case-insensitive region).

    `where` (a file or ``file:line``) is named in the DatasetError for an unparsable or
    unknown code.
    """
    match = _LOCALE.match(text)
    if match is None:
        raise DatasetError(f"{where}: {text!r} is not a locale code (expected e.g. 'es', "
                           f"'pt_BR', 'sr@latin')")
    language, region, variant = match.groups()
    language = language.lower()
    name = LANGUAGE_NAMES.get(language)
    if name is None:
        raise DatasetError(f"{where}: language code {language!r} has no English name in "
                           f"desta.data.recipes.languages.LANGUAGE_NAMES; add it there")
    locale = language + (f"_{region.upper()}" if region else "") + (f"@{variant}" if variant
                                                                    else "")
    return Locale(language=language, locale=locale, name=name)

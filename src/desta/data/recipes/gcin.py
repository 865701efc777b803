"""gcin-voice (Debian ``gcin-voice``): Mandarin syllables read aloud for the gcin input
method, one folder per zhuyin (bopomofo) syllable, one file per voice.

::

    usr/share/gcin-voice/ogg/<zhuyin><tone>/3.ogg    voice "3" (© 2014 Edward Der-Hua Liu)
    usr/share/gcin-voice/ogg/<zhuyin><tone>/5.ogg    voice "5" (聲優 羅竺, ChionMeilin)

The folder name is the syllable as gcin encodes it: zhuyin letters, then the tone as gcin's
tone keys number it: none = first tone (ˉ, unmarked), ``2`` = ˊ, ``3`` = ˇ, ``4`` = ˋ,
``1`` = neutral tone (˙; only on particles such as ㄉㄜ1 的, ㄇㄜ1 麼, ㄌㄜ1 了). The
transcript is the folder name as written; ``meta["zhuyin"]`` adds the usual tone mark.
Neither the package's copyright file nor its changelog states a voice's gender, so there is no
Gender attribute; ``meta["gender_estimate"]`` gives the pitch-based guess, marked as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from desta.data.recipes import DatasetError, make_record, register_recipe
from desta.data.recipes.languages import LANGUAGE_NAMES
from desta.data.recipes.metadata import AudioCheck
from desta.data.recipes.paths import list_dir, require_dir, resolve_under

PACKAGE = "gcin-voice"
VOICE_DIR = "usr/share/gcin-voice/ogg"
_SYLLABLE = re.compile(r"^([\u3105-\u3129]+)([1-4]?)$")  # ㄅ..ㄩ, then gcin's tone digit
# gcin's tone digit -> (tone as usually numbered, mark); "" is the unmarked first tone.
TONES = {"": ("1", ""), "2": ("2", "ˊ"), "3": ("3", "ˇ"), "4": ("4", "ˋ"), "1": ("neutral", "˙")}


# The two voices, by file name. Credits are the package's copyright file; the gender
# estimates are this project's pitch measurement (pyin, median over 35 / 51 sampled clips).
VOICES = {
    "3.ogg": {"credit": "copyright: 2014 Edward Der-Hua Liu",
              "gender_estimate": "male (median F0 124 Hz; estimate, not stated)"},
    "5.ogg": {"credit": "copyright: 聲優 羅竺與徵音梅林開發委員會錄音組 (ChionMeilin with the "
                        "vocal source from Chu Lo)",
              "gender_estimate": "female (median F0 287 Hz; estimate, not stated)"},
}


def zhuyin_with_mark(syllable: str, tone_digit: str) -> str:
    """The syllable written with its tone mark: ("ㄅㄚ", "3") -> "ㄅㄚˇ"; the neutral-tone
    dot goes first ("˙ㄉㄜ"), as zhuyin is usually printed."""
    _, mark = TONES[tone_digit]
    return mark + syllable if tone_digit == "1" else syllable + mark


@register_recipe("gcin")
def gcin(root: Path, *, split: str | None = None, missing_audio: str = "skip"
         ) -> Iterator[dict[str, Any]]:
    """gcin-voice syllables: transcript the folder name ("ㄅㄚ3"), attribute ``Language``
    (Mandarin Chinese). ``meta``: ``speaker`` ("gcin:3" / "gcin:5", by file name),
    ``zhuyin`` (with tone mark), ``tone``, ``credit``, ``gender_estimate``.

    A folder whose name is not zhuyin plus an optional tone digit, or a file other than the
    two voices, is a DatasetError naming it.
    """
    base = require_dir(resolve_under(root, VOICE_DIR), "gcin", f"{VOICE_DIR}/")
    check = AudioCheck("gcin", missing_audio)
    try:
        for folder in list_dir(base, dirs=True):
            match = _SYLLABLE.match(folder.name)
            if match is None:
                raise DatasetError(f"gcin: {folder.path}: folder name is not a zhuyin syllable "
                                   f"with an optional tone digit 1-4 (e.g. ㄅㄚ3)")
            syllable, tone_digit = match.groups()
            for entry in list_dir(Path(folder.path), dirs=False):
                voice = VOICES.get(entry.name)
                if voice is None:
                    raise DatasetError(f"gcin: {entry.path}: unknown voice file; expected "
                                       f"{' or '.join(VOICES)}")
                audio = resolve_under(base, folder.name, entry.name)
                if not check.exists(audio, f"listing of {folder.path}"):
                    continue  # a dangling symlink
                voice_id = entry.name.rsplit(".", 1)[0]
                yield make_record(
                    id=f"gcin/{folder.name}/{voice_id}", audio=audio, dataset="gcin",
                    domain="speech", transcript=folder.name,
                    attributes={"Language": LANGUAGE_NAMES["zh"]},
                    meta={"speaker": f"gcin:{voice_id}", "language": "zh", "source": PACKAGE,
                          "zhuyin": zhuyin_with_mark(syllable, tone_digit),
                          "tone": TONES[tone_digit][0], **voice},
                )
        check.finish()
    finally:
        check.report()

"""Tiny copies of tuxpaint-stamps-default, klettres-data, ktuberling-data and gcin-voice in the
layout ``dpkg -x`` unpacks them to (``<root>/usr/share/...``), for the recipe tests.

Audio is real Ogg Vorbis / WAV written by soundfile; metadata files use the packages' own
syntax, including the quirks met in the real files (literal quotes and ``\\t`` in Tux Paint
texts, lower-case Greek file names, a ``.ogg.ogg`` name, XML comments, files listed twice).
The tests state the expected records; nothing here knows what the recipes produce.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from recipe_fixtures import write_text, write_tone

STAMPS = "usr/share/tuxpaint/stamps"


def _stamp(folder: Path, name: str, text: str) -> None:
    write_text(folder / f"{name}.txt", text)
    (folder / f"{name}.png").write_bytes(b"\x89PNG\r\n\x1a\n")


def build_tuxpaint(root: Path) -> Path:
    """A stamps tree covering every clip kind the recipes read or skip; returns `root`."""
    stamps = root / STAMPS
    birds = stamps / "animals" / "birds"
    _stamp(birds, "crow", 'A crow.\nca.utf8=Un corb.\nfr.utf8=Un corbeau.\n'
                          'ja.utf8=カラス "crow"\n\nzh_TW.utf8=烏鴉\n')
    write_tone(birds / "crow.ogg", seconds=1.0)                 # sound effect
    write_tone(birds / "crow_desc.ogg", seconds=1.0)            # English reading
    write_tone(birds / "crow_desc_fr.ogg", seconds=1.0)
    write_tone(birds / "crow_desc_ca.ogg.ogg", seconds=1.0)     # double suffix, as in the package
    write_tone(birds / "crow_desc_da.ogg", seconds=1.0)         # no da line: skipped
    # A Greek reading named in lower case for a capitalised stamp.
    _stamp(birds, "Blackbird", "A blackbird.\nel.utf8=Κότσυφας.\n")
    write_tone(birds / "blackbird_desc_el.ogg", seconds=1.0)
    write_tone(birds / "nandou.ogg", seconds=0.5)               # silent placeholder in the package
    _stamp(birds, "nandou", "A rhea.\n")
    # Orphans: a reading whose stamp was removed, a sound effect with no stamp.
    write_tone(stamps / "animals" / "marsupials" / "wallaby_desc_ca.ogg", seconds=1.0)
    write_tone(stamps / "animals" / "insects" / "mosquito.ogg", seconds=1.0)
    # An animal sound the reviewed table does not know, and one outside the known folders.
    mammals = stamps / "animals" / "mammals"
    _stamp(mammals, "yak-2", "A yak.\n")
    write_tone(mammals / "yak-2.ogg", seconds=1.0)
    _stamp(stamps / "town", "bell_tower", "A bell tower.\n")
    write_tone(stamps / "town" / "bell_tower.ogg", seconds=1.0)
    _stamp(stamps / "hobbies" / "music" / "string", "violin", "A violin.\n")
    write_tone(stamps / "hobbies" / "music" / "string" / "violin.ogg", seconds=1.0)

    # Chess: a three-sentence text read in 0.3 s (an older, shorter text) is skipped; the
    # black and white bishops share one Belarusian recording but have different texts.
    chess = stamps / "symbols" / "chess"
    _stamp(chess, "b_1_king", "King. Can move one space in any direction. Protect it!\n"
                              "be.utf8=Кароль. Можа рабіць адзін крок у любым кірунку. "
                              "Абараняйце яго!\n"
                              "he.utf8=\\tמלך\n")
    write_tone(chess / "b_1_king_desc_be.ogg", seconds=0.3)
    _stamp(chess, "b_3_bishop", "Black bishop.\nbe.utf8=Чорны слон.\n")
    _stamp(chess, "w_3_bishop", "White bishop.\nbe.utf8=Белы слон.\n")
    write_tone(chess / "b_3_bishop_desc_be.ogg", seconds=1.0)
    shutil.copyfile(chess / "b_3_bishop_desc_be.ogg", chess / "w_3_bishop_desc_be.ogg")

    # Digits: the English sound, localized digit words, a description.
    math = stamps / "symbols" / "math"
    _stamp(math, "1", "One.\nes.utf8=Uno.\nfr.utf8=Un.\nnl.utf8=Eén.\nzh_TW.utf8=一\n")
    for name in ("1.ogg", "1_es.ogg", "1_nl.ogg", "1_zh_tw.ogg", "1_desc_fr.ogg"):
        write_tone(math / name, seconds=0.7)

    # English alphabet: filled upper/lower share byte-identical recordings.
    upper = stamps / "symbols" / "alphabets" / "english" / "filled" / "uppercase"
    lower = stamps / "symbols" / "alphabets" / "english" / "filled" / "lowercase"
    _stamp(upper, "A_filled", "The letter A.\nes.utf8=La letra A.\nfr.utf8=La lettre A.\n")
    _stamp(lower, "a_filled", "The letter a.\nes.utf8=La letra a.\nfr.utf8=La lettre a.\n")
    for name in ("A_filled_desc_es.ogg", "A_filled_desc_fr.ogg", "A_filled_desc_lt.ogg",
                 "A_filled_en_GB.ogg"):
        write_tone(upper / name, seconds=0.8)
        shutil.copyfile(upper / name, lower / name.replace("A_", "a_", 1))
    # German letters: the stamp's own sound is the spoken letter.
    german = stamps / "symbols" / "alphabets" / "german" / "filled" / "lowercase"
    _stamp(german, "a_with_umlaut_filled", "The letter a with an umlaut.\n")
    write_tone(german / "a_with_umlaut_filled.ogg", seconds=0.5)
    _stamp(german, "ss_eszett_filled", "The German letter sz or sharp s.\n")
    write_tone(german / "ss_eszett_filled.ogg", seconds=0.7)

    # Brazilian Portuguese readings are WAV files.
    veg = stamps / "food" / "vegetables"
    _stamp(veg, "corn", "Corn.\npt_BR.utf8=Milho.\n")
    write_tone(veg / "corn_desc_pt_BR.wav", seconds=0.8)
    return root


def build_klettres(root: Path) -> Path:
    """``usr/share/klettres/{fr,ar,nn,id}/`` with sounds.xml files; returns `root`."""
    base = root / "usr/share/klettres"
    write_text(base / "fr" / "sounds.xml", (
        "<!--\n   KDE EDU KLettres\n\n   Modify this file if you want to add new sounds\n-->\n\n"
        "<klettres>\n  <language code=\"fr\">\n    <menuitem>\n"
        "      <label>&amp;French</label>\n    </menuitem>\n      <alphabet>\n"
        "\t<sound name=\"A\" file=\"fr/alpha/a-0.ogg\" />\n"
        "\t<sound name=\"É\" file=\"fr/alpha/a-1.ogg\" />\n"
        "\t<sound name=\"A\" file=\"fr/alpha/a-0.ogg\" />\n"
        "      </alphabet>\n      <syllables>\n"
        "\t<!-- listed twice under two names: only the first can be right -->\n"
        "\t<sound name=\"TIES\"   file=\"fr/syllab/ties.ogg\" />\n"
        "\t<sound name=\"TEIS\"   file=\"fr/syllab/ties.ogg\" />\n"
        "\t<sound name=\"BA\" file=\"fr/syllab/ba.ogg\" />\n"
        "      </syllables>\n  </language>\n</klettres>\n"))
    for name in ("alpha/a-0.ogg", "alpha/a-1.ogg", "syllab/ties.ogg", "syllab/ba.ogg"):
        write_tone(base / "fr" / name, seconds=0.6)
    write_tone(base / "fr" / "alpha" / "sz.ogg", seconds=0.6)  # listed nowhere
    write_text(base / "ar" / "sounds.xml", (
        "<!--\n   Staring Rafik, my little nephew's voice. :)\n-->\n<klettres>\n"
        "  <language code=\"ar\">\n    <alphabet>\n"
        "\t<sound name=\"ب\" file=\"ar/alpha/b.ogg\" />\n    </alphabet>\n"
        "  </language>\n</klettres>\n"))
    write_tone(base / "ar" / "alpha" / "b.ogg", seconds=0.6)
    # Malayalam's file has another root tag in the package.
    write_text(base / "ml" / "sounds.xml", (
        "<kletters>\n   <language code=\"ml\">\n       <alphabet>\n       </alphabet>\n"
        "       <syllables>\n\t   <!-- All vowels+consanent of ക -->\n"
        "\t   <sound name=\"കാ\" file=\"ml/syllab/kaa.ogg\"/> \n"
        "       </syllables>\n   </language>\n</kletters>\n"))
    write_tone(base / "ml" / "syllab" / "kaa.ogg", seconds=0.6)
    write_text(base / "nn" / "sounds.xml", (
        "<?xml version=\"1.0\"?>\n<!--\n   Sounds taken from GCompris.\n\n   The files were "
        "generated using the commercial CereVoice Cloud\n   text-to-speech service\n-->\n"
        "<klettres>\n  <language code=\"nn\">\n    <alphabet>\n"
        "      <sound name=\"A\" file=\"nn/alpha/U0061.ogg\"/>\n    </alphabet>\n"
        "  </language>\n</klettres>\n"))
    write_tone(base / "nn" / "alpha" / "U0061.ogg", seconds=0.6)
    write_text(base / "id" / "sounds.xml", (
        "<klettres>\n  <language code=\"id\">\n    <alphabet>\n"
        "\t<sound name=\"A\" file=\"id/alpha/a.wav\" />\n    </alphabet>\n"
        "  </language>\n</klettres>\n"))  # the package ships no id audio
    (base / "pics").mkdir(parents=True)
    return root


def build_ktuberling(root: Path) -> Path:
    """``usr/share/ktuberling/sounds/`` with de, es, sr, sr@latin and nn themes."""
    base = root / "usr/share/ktuberling/sounds"
    write_text(base / "de.soundtheme", (
        "<language code=\"de\">\n\n    <sound name=\"ball\" file=\"de/ball.ogg\" />\n"
        "    <sound name=\"robot_workshop_ball\" file=\"de/ball.ogg\" />\n"
        "    <sound name=\"egypt_palmtree\" file=\"de/egypt_palmtree.ogg\" />\n"
        "    <sound name=\"pizzeria_olive2\" file=\"de/olive.ogg\" />\n"
        "    <sound name=\"tux-laugh\" file=\"de/tux-laugh.ogg\" />\n"
        "    <sound name=\"tux-letter-love\" file=\"de/brief.ogg\" />\n</language>\n"))
    for name in ("ball", "egypt_palmtree", "olive", "tux-laugh", "brief"):
        write_tone(base / "de" / f"{name}.ogg", seconds=0.5)
    write_text(base / "es.soundtheme", (
        "  <language code=\"es\">\n\n      <sound name=\"eye\" file=\"es/ojo.wav\" />\n"
        "      <sound name=\"nose\" file=\"es/nariz.wav\" />\n  </language>\n"))
    write_tone(base / "es" / "ojo.wav", seconds=0.5)  # es/nariz.wav is missing
    for code in ("sr", "sr@latin"):
        write_text(base / f"{code}.soundtheme", (
            f"  <language code=\"{code}\">\n      <sound name=\"tuberling\" "
            f"file=\"{code}/krompirko.ogg\" />\n  </language>\n"))
    write_tone(base / "sr" / "krompirko.ogg", seconds=0.5)
    (base / "sr@latin").mkdir()
    shutil.copyfile(base / "sr" / "krompirko.ogg", base / "sr@latin" / "krompirko.ogg")
    write_text(base / "nn.soundtheme", (
        "<language code=\"nn\">\n    <sound name=\"bow\" file=\"nn/bow.opus\" />\n</language>\n"))
    write_tone(base / "nn" / "bow.ogg", seconds=0.5)
    shutil.move(base / "nn" / "bow.ogg", base / "nn" / "bow.opus")
    return root


def build_gcin(root: Path) -> Path:
    """``usr/share/gcin-voice/ogg/<zhuyin><tone>/{3,5}.ogg``; returns `root`."""
    base = root / "usr/share/gcin-voice/ogg"
    for folder, voices in (("ㄅㄚ3", ("3", "5")), ("ㄉㄜ1", ("3",)), ("ㄇㄚ", ("3", "5")),
                           ("ㄌㄩ4", ("5",))):
        for voice in voices:
            write_tone(base / folder / f"{voice}.ogg", seconds=0.35)
    return root

"""Real-audio recipes tuxpaint, tuxpaint_sounds, klettres, ktuberling and gcin, on tiny trees
in the packages' own layouts (tests/fixtures_real_audio_a.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import soundfile as sf

from desta.data.recipes import RECORD_KEYS, DatasetError, get_recipe, list_recipes
from desta.data.recipes.gcin import zhuyin_with_mark
from desta.data.recipes.ktuberling import concept_words
from desta.data.recipes.languages import parse_locale
from desta.data.recipes.tuxpaint import SOUND_EFFECTS, clean_label, read_texts
from desta.data.sources import SOURCES
from fixtures_real_audio_a import (
    STAMPS,
    build_gcin,
    build_klettres,
    build_ktuberling,
    build_tuxpaint,
)
from recipe_fixtures import write_text, write_tone


def run(name: str, root: Path) -> dict[str, dict]:
    """Records by id, after checking each record's shape and that its audio is readable."""
    records = list(get_recipe(name)(root))
    by_id = {record["id"]: record for record in records}
    assert len(by_id) == len(records), "record ids must be unique"
    for record in records:
        assert tuple(record) == RECORD_KEYS and record["dataset"] == name
        assert record["audio"].is_absolute() and record["audio"].is_relative_to(root)
        assert sf.info(str(record["audio"])).frames > 0
        assert all(isinstance(v, str) for v in record["attributes"].values())
    return by_id


# -- tuxpaint ------------------------------------------------------------------------------

def test_tuxpaint_speech(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = build_tuxpaint(tmp_path)
    with caplog.at_level(logging.WARNING):
        records = run("tuxpaint", root)
    crow_fr = records["tuxpaint/animals/birds/crow_desc_fr"]
    assert crow_fr["transcript"] == "Un corbeau."
    assert crow_fr["domain"] == "speech"
    assert crow_fr["attributes"] == {"Language": "French"}
    assert crow_fr["duration"] == pytest.approx(1.0, abs=0.01)
    assert crow_fr["meta"]["translation"] == "A crow."
    assert crow_fr["meta"]["speaker"] == "tuxpaint:fr"
    assert crow_fr["meta"]["source"] == "tuxpaint-stamps-default"
    english = records["tuxpaint/animals/birds/crow_desc"]
    assert english["transcript"] == "A crow." and english["attributes"]["Language"] == "English"
    assert "translation" not in english["meta"]
    # ".ogg.ogg" is read as the Catalan reading it is.
    assert records["tuxpaint/animals/birds/crow_desc_ca.ogg"]["transcript"] == "Un corb."
    # Lower-case Greek file name of the capitalised "Blackbird" stamp.
    assert records["tuxpaint/animals/birds/blackbird_desc_el"]["transcript"] == "Κότσυφας."
    # Digits: the stamp's own sound is English; localized sounds are the locale's word.
    assert records["tuxpaint/symbols/math/1"]["transcript"] == "One."
    assert records["tuxpaint/symbols/math/1"]["meta"]["speaker"] == "tuxpaint:en:numbers"
    zh = records["tuxpaint/symbols/math/1_zh_tw"]
    assert zh["transcript"] == "一" and zh["attributes"] == {"Language": "Mandarin Chinese"}
    assert zh["meta"]["locale"] == "zh_TW" and zh["meta"]["language"] == "zh"
    # Gender only where the changelog states it (son / daughter).
    assert records["tuxpaint/symbols/math/1_es"]["attributes"]["Gender"] == "Male"
    nl = records["tuxpaint/symbols/math/1_nl"]
    assert nl["attributes"]["Gender"] == "Female" and "daughter" in nl["meta"]["gender_source"]
    assert "Gender" not in crow_fr["attributes"]
    assert records["tuxpaint/symbols/math/1_desc_fr"]["transcript"] == "Un."
    # Letters: bare letter names where the locale reads them so; identical copies once.
    letters = {rid: r for rid, r in records.items() if "/alphabets/english/" in rid}
    assert sorted(letters) == [
        "tuxpaint/symbols/alphabets/english/filled/lowercase/a_filled_desc_es",
        "tuxpaint/symbols/alphabets/english/filled/lowercase/a_filled_desc_fr",
        "tuxpaint/symbols/alphabets/english/filled/lowercase/a_filled_desc_lt",
        "tuxpaint/symbols/alphabets/english/filled/lowercase/a_filled_en_GB",
    ]
    by_locale = {r["meta"]["locale"]: r["transcript"] for r in letters.values()}
    assert by_locale == {"es": "La letra a.", "fr": "A", "lt": "A", "en_GB": "A"}
    assert letters["tuxpaint/symbols/alphabets/english/filled/lowercase/a_filled_en_GB"][
        "meta"]["speaker"] == "tuxpaint:en_GB"
    german = {r["transcript"] for rid, r in records.items() if "/german/" in rid}
    assert german == {"Ä", "ß"}
    pt = records["tuxpaint/food/vegetables/corn_desc_pt_BR"]
    assert pt["transcript"] == "Milho." and pt["meta"]["locale"] == "pt_BR"
    assert pt["meta"]["several_speakers"] is True
    # Skipped: sound effects, the too-short reading, the shared bishop recording, the
    # orphan reading, the Danish reading without a da line.
    assert not any(rid.endswith(("/crow", "/mosquito", "/violin", "wallaby_desc_ca",
                                 "b_1_king_desc_be", "bishop_desc_be", "crow_desc_da"))
                   for rid in records)
    assert len(records) == 16
    for reason in ("skipped 1 clip(s): reading too short for its text",
                   "skipped 2 clip(s): one recording shared by stamps with different texts",
                   "skipped 4 clip(s): byte-identical copy of another clip",
                   "skipped 1 clip(s): orphan reading",
                   "skipped 1 clip(s): no text for the clip's locale"):
        assert reason in caplog.text


def test_tuxpaint_sounds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = build_tuxpaint(tmp_path)
    with caplog.at_level(logging.WARNING):
        records = run("tuxpaint_sounds", root)
    assert sorted(records) == ["tuxpaint_sounds/animals/birds/crow",
                               "tuxpaint_sounds/animals/insects/mosquito",
                               "tuxpaint_sounds/animals/mammals/yak-2"]
    crow = records["tuxpaint_sounds/animals/birds/crow"]
    assert crow["domain"] == "sound" and crow["transcript"] is None
    assert crow["attributes"] == {"Audio category": "crow"}
    assert crow["meta"]["category"] == "animal" and crow["meta"]["animal"] == "crow"
    # Not in the reviewed table: labelled from its name, with a warning.
    assert records["tuxpaint_sounds/animals/mammals/yak-2"]["attributes"] == {
        "Audio category": "yak"}
    assert "not in the reviewed table, labelled from their names: animals/mammals/yak-2" \
        in caplog.text
    for reason in ("skipped 1 clip(s): silent placeholder", "skipped 1 clip(s): music",
                   "skipped 1 clip(s): not in the reviewed table, folder has no category"):
        assert reason in caplog.text


def test_tuxpaint_text_syntax(tmp_path: Path) -> None:
    path = write_text(tmp_path / "x.txt", 'The "best" one.\n\nca@valencia.utf8=El  millor.\n'
                                          "pt_BR.utf8=O melhor.\nhe.utf8=\\tהכי טוב\n")
    assert read_texts(path) == {"en": 'The "best" one.', "ca@valencia": "El millor.",
                                "pt_br": "O melhor.", "he": "הכי טוב"}


@pytest.mark.parametrize("text, line", [
    ("A crow.\nfr.utf8=Un corbeau.\nthis is not a text line\n", 3),
    ("A crow.\nfr.utf8=Un.\nfr.utf8=Deux.\n", 3),
    ("fr.utf8=Un corbeau.\n", 1),
])
def test_tuxpaint_malformed_text_names_file_and_line(tmp_path: Path, text: str,
                                                     line: int) -> None:
    root = build_tuxpaint(tmp_path)
    path = write_text(root / STAMPS / "animals" / "birds" / "crow.txt", text)
    with pytest.raises(DatasetError, match=rf"crow\.txt:{line}: malformed row"):
        list(get_recipe("tuxpaint")(root))
    assert path.is_file()


def test_tuxpaint_unknown_language_is_an_error(tmp_path: Path) -> None:
    root = build_tuxpaint(tmp_path)
    write_tone(root / STAMPS / "animals" / "birds" / "crow_desc_xx.ogg", seconds=1.0)
    with pytest.raises(DatasetError, match=r"crow_desc_xx\.ogg: language code 'xx'"):
        list(get_recipe("tuxpaint")(root))


def test_tuxpaint_missing_stamps_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="usr/share/tuxpaint/stamps"):
        get_recipe("tuxpaint")(tmp_path).__next__()


def test_sound_table_uses_known_categories() -> None:
    allowed = {"animal", "nature", "water", "weather", "domestic", "vehicle", "tool", "human",
               "alarm", "music", "urban"}
    assert {category for _, category, _ in SOUND_EFFECTS.values()} <= allowed
    assert all(animal for _, category, animal in SOUND_EFFECTS.values() if category == "animal")
    assert clean_label("Washing-machine") == "washing machine"
    assert clean_label("frog-1") == "frog"


# -- klettres ------------------------------------------------------------------------------

def test_klettres(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = build_klettres(tmp_path)
    with caplog.at_level(logging.WARNING):
        records = run("klettres", root)
    assert sorted(records) == ["klettres/ar/alpha/b", "klettres/fr/alpha/a-0",
                               "klettres/fr/alpha/a-1", "klettres/fr/syllab/ba",
                               "klettres/fr/syllab/ties", "klettres/ml/syllab/kaa"]
    e = records["klettres/fr/alpha/a-1"]
    assert e["transcript"] == "É" and e["attributes"] == {"Language": "French"}
    assert e["meta"]["speaker"] == "klettres:fr" and e["meta"]["unit"] == "letter"
    assert "Ludovic Grossard" in e["meta"]["credit"]
    assert records["klettres/fr/syllab/ties"]["transcript"] == "TIES"  # first listing wins
    assert records["klettres/fr/syllab/ba"]["meta"]["unit"] == "syllable"
    ar = records["klettres/ar/alpha/b"]
    assert ar["attributes"] == {"Language": "Arabic", "Gender": "Male"}
    assert "nephew" in ar["meta"]["gender_source"]
    assert records["klettres/ml/syllab/kaa"]["transcript"] == "കാ"
    assert "skipping nn: its sounds.xml says the clips are text-to-speech" in caplog.text
    assert "skipped 1 row(s) whose audio file is missing" in caplog.text  # id
    assert "skipped 1 clip(s): file listed again under another name" in caplog.text


def test_klettres_bad_xml_names_file(tmp_path: Path) -> None:
    root = build_klettres(tmp_path)
    write_text(root / "usr/share/klettres/fr/sounds.xml",
               "<klettres>\n<language code=\"fr\">\n<alphabet>\n<sound name=\"A\" "
               "file=\"fr/alpha/a-0.ogg\">\n</alphabet>\n")
    with pytest.raises(DatasetError, match=r"fr/sounds\.xml:5: malformed XML"):
        list(get_recipe("klettres")(root))
    write_text(root / "usr/share/klettres/fr/sounds.xml",
               "<klettres><language code=\"fr\"><alphabet><sound file=\"fr/alpha/a-0.ogg\"/>"
               "</alphabet></language></klettres>")
    with pytest.raises(DatasetError, match=r"fr/sounds\.xml: <sound> in <alphabet> lacks"):
        list(get_recipe("klettres")(root))


def test_klettres_path_escape_is_refused(tmp_path: Path) -> None:
    root = build_klettres(tmp_path)
    write_text(root / "usr/share/klettres/fr/sounds.xml",
               "<klettres><language code=\"fr\"><alphabet><sound name=\"A\" "
               "file=\"../../../etc/passwd\"/></alphabet></language></klettres>")
    with pytest.raises(DatasetError, match=r"passwd.*sounds\.xml.*contains '\.\.'"):
        list(get_recipe("klettres")(root))


# -- ktuberling ----------------------------------------------------------------------------

def test_ktuberling(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = build_ktuberling(tmp_path)
    with caplog.at_level(logging.WARNING):
        records = run("ktuberling", root)
    assert sorted(records) == ["ktuberling/de/ball", "ktuberling/de/brief",
                               "ktuberling/de/egypt_palmtree", "ktuberling/de/olive",
                               "ktuberling/es/ojo", "ktuberling/sr/krompirko"]
    ball = records["ktuberling/de/ball"]
    assert ball["transcript"] is None and ball["domain"] == "speech"
    assert ball["attributes"] == {"Language": "German"}
    assert ball["meta"]["translation"] == "ball" and ball["meta"]["concept"] == "ball"
    assert ball["meta"]["speaker"] == "ktuberling:de"
    assert records["ktuberling/de/olive"]["meta"]["translation"] == "olive"
    assert records["ktuberling/de/brief"]["meta"]["translation"] == "letter love"
    assert records["ktuberling/sr/krompirko"]["attributes"] == {"Language": "Serbian"}
    assert "skipped 1 clip(s): not a word" in caplog.text
    assert "skipped 2 clip(s): same recording as a clip already read" in caplog.text
    assert "skipping theme nn" in caplog.text
    assert "nariz.wav" in caplog.text  # missing audio is named


def test_ktuberling_bad_theme(tmp_path: Path) -> None:
    root = build_ktuberling(tmp_path)
    write_text(root / "usr/share/ktuberling/sounds/es.soundtheme",
               "<playground code=\"es\"><sound name=\"eye\" file=\"es/ojo.wav\"/></playground>")
    with pytest.raises(DatasetError, match=r"es\.soundtheme: root element must be <language"):
        list(get_recipe("ktuberling")(root))


def test_concept_words() -> None:
    assert concept_words("egypt_palmtree") == "palmtree"
    assert concept_words("robot_workshop_wheel") == "wheel"
    assert concept_words("pizzeria_oregano1") == "oregano"
    assert concept_words("frier-tux") == "frier tux"


# -- gcin ----------------------------------------------------------------------------------

def test_gcin(tmp_path: Path) -> None:
    records = run("gcin", build_gcin(tmp_path))
    assert sorted(records) == ["gcin/ㄅㄚ3/3", "gcin/ㄅㄚ3/5", "gcin/ㄇㄚ/3", "gcin/ㄇㄚ/5",
                               "gcin/ㄉㄜ1/3", "gcin/ㄌㄩ4/5"]
    ba = records["gcin/ㄅㄚ3/5"]
    assert ba["transcript"] == "ㄅㄚ3" and ba["attributes"] == {"Language": "Mandarin Chinese"}
    assert ba["meta"]["zhuyin"] == "ㄅㄚˇ" and ba["meta"]["tone"] == "3"
    assert ba["meta"]["speaker"] == "gcin:5" and "estimate" in ba["meta"]["gender_estimate"]
    assert "Gender" not in ba["attributes"]
    assert records["gcin/ㄉㄜ1/3"]["meta"]["zhuyin"] == "˙ㄉㄜ"
    assert records["gcin/ㄉㄜ1/3"]["meta"]["tone"] == "neutral"
    assert records["gcin/ㄇㄚ/3"]["meta"]["tone"] == "1"
    assert zhuyin_with_mark("ㄌㄩ", "4") == "ㄌㄩˋ"


@pytest.mark.parametrize("folder, file, problem", [
    ("ba3", "3.ogg", "not a zhuyin syllable"),
    ("ㄅㄚ5", "3.ogg", "not a zhuyin syllable"),
    ("ㄅㄚ", "7.ogg", "unknown voice file"),
])
def test_gcin_bad_names(tmp_path: Path, folder: str, file: str, problem: str) -> None:
    root = build_gcin(tmp_path)
    write_tone(root / "usr/share/gcin-voice/ogg" / folder / file, seconds=0.3)
    with pytest.raises(DatasetError, match=problem):
        list(get_recipe("gcin")(root))


# -- shared --------------------------------------------------------------------------------

def test_locales() -> None:
    assert parse_locale("zh_tw", "x").locale == "zh_TW"
    assert parse_locale("sr@latin", "x").name == "Serbian"
    assert parse_locale("pt_BR", "x").language == "pt"
    with pytest.raises(DatasetError, match="where: 'p_' is not a locale"):
        parse_locale("p_", "where")


def test_sources_list_these_recipes() -> None:
    registered = set(list_recipes())
    for source, recipes in (("tuxpaint", ("tuxpaint", "tuxpaint_sounds")),
                            ("klettres", ("klettres",)), ("ktuberling", ("ktuberling",)),
                            ("gcin", ("gcin",))):
        assert SOURCES[source].recipes == recipes
        assert set(recipes) <= registered
        assert SOURCES[source].prepare is None

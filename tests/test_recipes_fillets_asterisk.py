"""Recipes for Fish Fillets NG, Asterisk core sounds and the Asterisk community prompt sets,
on tiny copies of the Debian packages in their exact layouts (tests/fixtures_real_audio_b)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import soundfile as sf

from desta.data.recipes import RECORD_KEYS, DatasetError, get_recipe
from desta.data.recipes.asterisk import (
    NON_SPEECH,
    SPEECH,
    UNCLEAR,
    clean_transcript,
    read_core_sounds,
)
from desta.data.recipes.asterisk import prepare as prepare_asterisk
from desta.data.recipes.asterisk_prompts import prepare as prepare_prompts
from desta.data.recipes.fillets import first_person_forms, lua_tokens, parse_dialogs
from desta.data.sources import SOURCES
from fixtures_real_audio_b import (
    DOC,
    GAME,
    SOUNDS,
    build_asterisk,
    build_asterisk_prompts,
    build_fillets,
    write_core_sounds,
    write_g722,
)
from recipe_fixtures import write_text


def run(name: str, root: Path, **kwargs) -> dict[str, dict]:
    """Run a recipe; records by id, after checking each record's shape and audio file."""
    records = list(get_recipe(name)(root, **kwargs))
    by_id = {record["id"]: record for record in records}
    assert len(by_id) == len(records), "record ids must be unique"
    for record in records:
        assert tuple(record) == RECORD_KEYS
        assert record["dataset"] == name and record["domain"] == "speech"
        assert record["audio"].is_absolute() and sf.info(str(record["audio"])).frames > 0
        assert all(isinstance(v, str) for v in record["attributes"].values())
        assert record["meta"]["speaker"] and record["meta"]["language"]
    return by_id


# --- Lua subset -------------------------------------------------------------------------------


def test_lua_tokens_cover_the_subset(tmp_path: Path) -> None:
    source = ('-- comment "not a string"\n'
              'x = \'it\\\'s\' .. "a\\"b\\\\c\\/d\\65\\0661" --[==[ long\n'
              'comment ]] still ]==] [[\nfirst newline dropped]] [=[a]]b]=] 3.5e2\n'
              '"line\\\ncontinued" f(x, 1)')
    tokens = list(lua_tokens(source, tmp_path / "x.lua"))
    assert [(t.kind, t.value) for t in tokens] == [
        ("name", "x"), ("op", "="), ("string", "it's"), ("op", ".."),
        ("string", 'a"b\\c/dAB1'), ("string", "first newline dropped"), ("string", "a]]b"),
        ("number", "3.5e2"), ("string", "line\ncontinued"), ("name", "f"), ("op", "("),
        ("name", "x"), ("op", ","), ("number", "1"), ("op", ")"),
    ]
    # Lines count newlines inside long comments, long strings and escaped newlines.
    assert [t.line for t in tokens if t.kind == "string"] == [2, 2, 3, 4, 5]
    assert tokens[-1].line == 6


@pytest.mark.parametrize(("text", "line", "problem"), [
    ('dialogId("a", "font_small", "x")\ndialogStr("unfinished)\n', 2, "unfinished string"),
    ('\n\ndialogStr("before any id")\n', 3, "dialogStr before any dialogId"),
    ('dialogId("a", "font_small")\n', 1, "dialogId takes"),
    ('dialogId("a", "font_small", "x")\ndialogStr("a", "b")\n', 2, "dialogStr takes one"),
    ('dialogId("a", "font_small", "x")\n\ndialogStr("\\300")\n', 3, "larger than 255"),
    ('dialogId("a", "font_small", "x")\ndialogStr([[never closed)\n', 2, "never closed"),
    ('dialogId("a", "font_small", "x"\n', 1, r"never closed with '\)'"),
    ('dialogId("a", "font_small", "x") ` \n', 1, "unexpected character"),
])
def test_bad_lua_names_file_and_line(tmp_path: Path, text: str, line: int, problem: str
                                     ) -> None:
    path = write_text(tmp_path / "dialogs_cs.lua", text)
    with pytest.raises(DatasetError, match=f"dialogs_cs.lua:{line}: .*{problem}"):
        parse_dialogs(path)


def test_parse_dialogs(tmp_path: Path) -> None:
    root = build_fillets(tmp_path)
    parsed = parse_dialogs(root / GAME / "script/airplane/dialogs_cs.lua")
    lines = parsed.lines
    assert "let-m-stare" not in lines  # inside a long comment
    assert lines["let-m-divna"].text == "Co je to za divnou loď?"  # decimal UTF-8 escapes
    assert lines["let-v-vrak0"].text == "To je vrak dopravního letadla."  # '..' and [[ ]]
    assert lines["let-m-citat"].text == 'Řekl "Ahoj" adresáři C:\\WINDOWS a /etc.'
    assert lines["let-m-citat"].english == 'He said "Hello" to C:\\WINDOWS.'
    assert lines["let-v-myslel"].english == "I thought it was a stone."  # call over 2 lines
    assert lines["let-v-myslel"].line == 21  # counted through the long comment
    assert lines["let-m-bezprekladu"].text is None
    assert lines["let-x-zvuk"].font == "" and lines["let-x-zvuk"].text == ""
    assert parsed.dynamic_calls == 1  # for i = 0, 2 do dialogId("key"..i, "", "") end


def test_first_person_forms() -> None:
    assert first_person_forms("Myslela jsem si to. Jsem ráda.") == (["myslela", "ráda"], [])
    assert first_person_forms("Řekl bych, že jsem si myslel.") == ([], ["řekl", "myslel"])
    assert first_person_forms("Ty jsi to řekla. Byla tam.") == ([], [])  # not first person


# --- fillets ----------------------------------------------------------------------------------


def test_fillets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = build_fillets(tmp_path)
    with caplog.at_level(logging.INFO, logger="desta.data.recipes.fillets"):
        records = run("fillets", root)
    assert list(records) == [
        "fillets/cs/airplane/let-m-bezprekladu", "fillets/cs/airplane/let-m-citat",
        "fillets/cs/airplane/let-m-divna", "fillets/cs/airplane/let-m-myslela",
        "fillets/cs/airplane/let-v-myslel", "fillets/cs/airplane/let-v-rekl",
        "fillets/cs/airplane/let-v-vrak0", "fillets/cs/airplane/let-x-bily",
        "fillets/cs/airplane/let-x-papousek", "fillets/cs/share/border/hr-m-ven",
        "fillets/nl/airplane/let-m-divna", "fillets/nl/airplane/let-v-vrak0",
    ]
    divna = records["fillets/cs/airplane/let-m-divna"]
    assert divna["audio"] == (root / GAME / "sound/airplane/cs/let-m-divna.ogg").absolute()
    assert divna["transcript"] == "Co je to za divnou loď?"
    assert divna["attributes"] == {"Language": "Czech", "Gender": "Female"}
    meta = divna["meta"]
    assert meta["speaker"] == "fillets:cs:small_fish" and meta["language"] == "cs"
    assert meta["translation"] == "What kind of strange ship is that?"
    assert meta["source"] == "fillets-ng-data-cs"
    assert meta["line"] == f"{GAME}/script/airplane/dialogs_cs.lua:3"
    assert "3 feminine and 0 masculine" in meta["gender_source"]

    big = records["fillets/cs/airplane/let-v-vrak0"]
    assert big["attributes"] == {"Language": "Czech", "Gender": "Male"}
    assert "0 feminine and 3 masculine" in big["meta"]["gender_source"]
    # One masculine form is too little; a character with both genders' forms gets none.
    assert records["fillets/cs/airplane/let-x-papousek"]["attributes"] == {"Language": "Czech"}
    assert records["fillets/cs/airplane/let-x-papousek"]["meta"]["speaker"] == \
        "fillets:cs:parrot"
    white = records["fillets/cs/airplane/let-x-bily"]
    assert white["attributes"] == {"Language": "Czech"} and "gender_source" not in white["meta"]
    assert white["meta"]["speaker"] == "fillets:cs:airplane_white"  # colour fonts: per level

    untranslated = records["fillets/cs/airplane/let-m-bezprekladu"]
    assert untranslated["transcript"] is None
    assert untranslated["meta"]["translation"] == "No Czech line for this one."
    border = records["fillets/cs/share/border/hr-m-ven"]
    assert border["transcript"] == "Pojďme ven." and border["meta"]["level"] == "share"

    dutch = records["fillets/nl/airplane/let-m-divna"]
    assert dutch["transcript"] == "Wat is dat voor een raar schip?"
    assert dutch["attributes"] == {"Language": "Dutch", "Gender": "Female"}
    assert dutch["meta"]["speaker"] == "fillets:nl:small_fish"
    assert dutch["meta"]["source"] == "fillets-ng-data-nl"
    assert "voices the same character" in dutch["meta"]["gender_source"]

    log = caplog.text
    assert "1 cs clip(s) with no dialogue line" in log  # let-m-navic
    assert "1 cs clip(s) with no speaker font" in log  # let-x-zvuk
    assert "1 cs non-literal dialogue call(s)" in log


def test_fillets_languages_option(tmp_path: Path) -> None:
    root = build_fillets(tmp_path)
    records = run("fillets", root, languages=("nl",))
    assert list(records) == ["fillets/nl/airplane/let-m-divna", "fillets/nl/airplane/let-v-vrak0"]
    assert records["fillets/nl/airplane/let-v-vrak0"]["attributes"]["Gender"] == "Male"
    assert list(run("fillets", root, languages="nl")) == list(records)  # CLI: --option
    with pytest.raises(DatasetError, match="unknown language"):
        list(get_recipe("fillets")(root, languages=("de",)))


def test_fillets_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="fillets-ng-data"):
        list(get_recipe("fillets")(tmp_path))
    root = build_fillets(tmp_path / "game")
    cs = root / GAME / "script/airplane/dialogs_cs.lua"
    cs.write_text(cs.read_text(encoding="utf-8") + '\ndialogStr("x", "y")\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"dialogs_cs.lua:\d+: .*dialogStr takes one"):
        list(get_recipe("fillets")(root))


# --- asterisk core sounds ---------------------------------------------------------------------


def test_read_core_sounds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    build_asterisk(tmp_path)
    with caplog.at_level(logging.WARNING):
        es = read_core_sounds(tmp_path / DOC / "asterisk-core-sounds-es/core-sounds-es.txt.gz")
    assert es["digits/0"].text == "cero" and es["digits/0"].line == 2  # BOM line is 1
    assert "digits/0 given again (first at line 2)" in caplog.text
    assert es["conf-adminmenu"].text == "Presione 1 para silenciar su micrófono."
    assert es["vm-record-prepend"].text == "Al tono, grabe una introducción."
    assert es["vm-then-pound"].text == "luego marque numeral."  # run into the line before
    assert es["dir-welcome"].text == ""
    it = read_core_sounds(tmp_path / DOC / "asterisk-core-sounds-it/core-sounds-it.txt.gz")
    # Its own line wins over the copy run into vm-tempremoved.
    assert it["vm-then-pound"].text == "poi premere cancelletto"
    assert it["vm-tempremoved"].text == "Il tuo saluto è stato eliminato"


def test_core_sounds_bad_line_is_named(tmp_path: Path) -> None:
    path = write_core_sounds(tmp_path, "en", "; comment\nvm-goodbye: Goodbye.\nno colon here\n")
    with pytest.raises(DatasetError, match=r"core-sounds-en.txt.gz:3: malformed row"):
        read_core_sounds(path)
    with pytest.raises(DatasetError, match="transcript file of package .* not found"):
        read_core_sounds(tmp_path / "missing.txt.gz")


@pytest.mark.parametrize(("text", "expected"), [
    ("Goodbye.", ("Goodbye.", SPEECH)),
    ("[this is a simple beep tone]", (None, NON_SPEECH)),
    ("(1 second of silence)", (None, NON_SPEECH)),
    ("<beep ascending>", (None, NON_SPEECH)),
    ("at [@]", ("at", SPEECH)),
    ("spazio []", ("spazio", SPEECH)),
    ("Sus saludos [temporales] estan en uso", (None, UNCLEAR)),
    ('IAX (note: does not say "2")', (None, UNCLEAR)),
    ("  two   spaces ", ("two spaces", SPEECH)),
    ("La conferenza ? piena.", (None, UNCLEAR)),  # "è" lost when re-encoded
    ("Voulez-vous continuer ? Appuyez sur 1.", ("Voulez-vous continuer ? Appuyez sur 1.",
                                               SPEECH)),
])
def test_clean_transcript(text: str, expected: tuple[str | None, str]) -> None:
    assert clean_transcript(text) == expected


def test_asterisk_needs_prepare(tmp_path: Path) -> None:
    root = build_asterisk(tmp_path)
    with pytest.raises(DatasetError, match=r"run `desta data fetch --root .*\(prepare step\)"):
        list(get_recipe("asterisk")(root))
    empty = tmp_path / "empty"
    (empty / SOUNDS).mkdir(parents=True)
    with pytest.raises(DatasetError, match="asterisk-core-sounds-<lang>-g722"):
        list(get_recipe("asterisk")(empty))


def test_asterisk_prepare_and_recipe(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = build_asterisk(tmp_path)
    prepared = root / "desta-prepared" / "asterisk"
    with caplog.at_level(logging.INFO):
        prepare_asterisk(root, progress=False)
    assert "23 file(s) converted, 0 already converted, 1 empty source(s) skipped" in caplog.text
    flac = prepared / "es_MX_f_Allison" / "digits" / "1F.flac"
    info = sf.info(str(flac))
    assert (info.samplerate, info.channels, info.format) == (16_000, 1, "FLAC")
    assert info.frames == 6400  # 0.4 s of G.722 at 16 kHz
    assert not list(prepared.rglob(".*"))  # no temporary files left
    assert not (prepared / "it_IT_f_Menardi").exists()  # a WAV prompt set, not a core voice

    # Idempotent: nothing is converted again; a half-written temp file is not "done".
    mtime = flac.stat().st_mtime_ns
    gone = prepared / "en_US_f_Allison" / "vm-goodbye.flac"
    gone.unlink()
    (gone.parent / ".vm-goodbye.flac.partial").write_bytes(b"half")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        prepare_asterisk(root, progress=False)
    assert "1 file(s) converted, 22 already converted" in caplog.text
    assert flac.stat().st_mtime_ns == mtime and sf.info(str(gone)).frames == 6400
    assert not list(prepared.rglob(".*"))

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="desta.data.recipes.asterisk"):
        records = run("asterisk", root)
    assert list(records) == [
        "asterisk/en_US_f_Allison/conf-adminmenu", "asterisk/en_US_f_Allison/digits/1",
        "asterisk/en_US_f_Allison/letters/ascii123", "asterisk/en_US_f_Allison/letters/at",
        "asterisk/en_US_f_Allison/spy-iax2", "asterisk/en_US_f_Allison/vm-goodbye",
        "asterisk/es_MX_f_Allison/conf-adminmenu", "asterisk/es_MX_f_Allison/digits/0",
        "asterisk/es_MX_f_Allison/digits/1F", "asterisk/es_MX_f_Allison/dir-welcome",
        "asterisk/es_MX_f_Allison/letters/ascii123", "asterisk/es_MX_f_Allison/vm-goodbye",
        "asterisk/es_MX_f_Allison/vm-tempgreetactive", "asterisk/es_MX_f_Allison/vm-then-pound",
        "asterisk/it_IT_m_Carlo/digits/1", "asterisk/it_IT_m_Carlo/vm-goodbye",
        "asterisk/it_IT_m_Carlo/vm-tempremoved", "asterisk/it_IT_m_Carlo/vm-then-pound",
    ]
    en = records["asterisk/en_US_f_Allison/letters/at"]
    assert en["audio"] == (prepared / "en_US_f_Allison/letters/at.flac").absolute()
    assert en["transcript"] == "at"
    assert en["attributes"] == {"Language": "English", "Gender": "Female"}
    assert en["meta"] == {
        "speaker": "asterisk:allison", "language": "en", "source": "asterisk-core-sounds-en-g722",
        "locale": "en_US", "gender_source": "voice folder name en_US_f_Allison ('_f_' = female)",
        "transcript_source": "core-sounds-en.txt.gz:5",
        "credit": "Recorded by: Allison Smith (http://www.theivrvoice.com)",
    }
    es = records["asterisk/es_MX_f_Allison/digits/1F"]
    assert es["transcript"] == "una"  # "digits/1f" in the text file
    assert es["meta"]["speaker"] == "asterisk:allison"  # the same voice as en_US
    assert es["meta"]["locale"] == "es_MX" and es["attributes"]["Language"] == "Spanish"
    assert "translation" not in es["meta"]  # core-sounds-en has no digits/1F
    assert records["asterisk/es_MX_f_Allison/digits/0"]["transcript"] == "cero"
    assert records["asterisk/es_MX_f_Allison/vm-goodbye"]["meta"]["translation"] == "Goodbye."
    no_line = records["asterisk/es_MX_f_Allison/letters/ascii123"]
    assert no_line["transcript"] is None and no_line["meta"]["translation"] == "left brace"
    assert records["asterisk/es_MX_f_Allison/dir-welcome"]["transcript"] is None
    assert records["asterisk/es_MX_f_Allison/vm-tempgreetactive"]["transcript"] is None
    assert records["asterisk/es_MX_f_Allison/vm-then-pound"]["transcript"] == \
        "luego marque numeral."
    assert records["asterisk/en_US_f_Allison/spy-iax2"]["transcript"] is None
    carlo = records["asterisk/it_IT_m_Carlo/vm-then-pound"]
    assert carlo["attributes"] == {"Language": "Italian", "Gender": "Male"}
    assert carlo["meta"]["speaker"] == "asterisk:carlo"
    assert carlo["transcript"] == "poi premere cancelletto"
    assert carlo["meta"]["translation"] == "then press pound."
    # beep (every voice, and "un suono beep" in Italian) and silence/1 are not speech.
    assert "5 non-speech clip(s) skipped" in caplog.text
    assert "1 empty file(s) in the package skipped" in caplog.text


def test_asterisk_missing_flac_is_a_counted_skip(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    root = build_asterisk(tmp_path)
    prepare_asterisk(root, progress=False)
    (root / "desta-prepared/asterisk/it_IT_m_Carlo/digits/1.flac").unlink()
    with caplog.at_level(logging.WARNING):
        records = run("asterisk", root)
    assert "asterisk/it_IT_m_Carlo/digits/1" not in records and len(records) == 17
    assert "skipped 1 row(s) whose audio file is missing" in caplog.text
    with pytest.raises(DatasetError, match="does not exist"):
        list(get_recipe("asterisk")(root, missing_audio="error"))


def test_asterisk_unknown_language_folder_is_named(tmp_path: Path) -> None:
    root = build_asterisk(tmp_path)
    write_g722(root / SOUNDS / "xx_XX_f_Nobody" / "hello.g722")
    with pytest.raises(DatasetError, match="voice folder xx_XX_f_Nobody"):
        prepare_asterisk(root, progress=False)


# --- community prompt sets --------------------------------------------------------------------


def test_asterisk_prompts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = build_asterisk_prompts(tmp_path)
    with pytest.raises(DatasetError, match=r"\(prepare step\)"):
        list(get_recipe("asterisk_prompts")(root))  # the fr .gsm clips need converting
    prepare_prompts(root, progress=False)
    prepared = root / "desta-prepared" / "asterisk_prompts"
    assert sorted(p.relative_to(prepared).as_posix() for p in prepared.rglob("*.flac")) == [
        "fr/digits/1.flac", "fr/vm-goodbye.flac"]  # the WAVs are read as they are
    assert sf.info(str(prepared / "fr/vm-goodbye.flac")).samplerate == 16_000

    with caplog.at_level(logging.INFO, logger="desta.data.recipes.asterisk_prompts"):
        records = run("asterisk_prompts", root)
    assert list(records) == [
        "asterisk_prompts/it_IT_f_Menardi/agent-pass",
        "asterisk_prompts/it_IT_f_Menardi/agent-user",
        "asterisk_prompts/it_IT_f_Menardi/auth-incorrect",
        "asterisk_prompts/it_IT_f_Menardi/conf-nuovo",
        "asterisk_prompts/it_IT_f_Menardi/demo-thanks",
        "asterisk_prompts/it_IT_f_Menardi/digits/1",
        "asterisk_prompts/fr/digits/1", "asterisk_prompts/fr/vm-goodbye",
    ]
    menardi = records["asterisk_prompts/it_IT_f_Menardi/agent-pass"]
    assert menardi["audio"] == (root / SOUNDS / "it_IT_f_Menardi/agent-pass.wav").absolute()
    assert menardi["transcript"] == "Prego inserire la password seguita dal tasto cancelletto."
    assert menardi["attributes"] == {"Language": "Italian", "Gender": "Female"}
    assert menardi["meta"] == {
        "speaker": "asterisk:menardi", "language": "it", "locale": "it_IT",
        "source": "asterisk-prompt-it-menardi-wav",
        "gender_source": "voice folder name it_IT_f_Menardi ('_f_' = female)",
        "transcript_source": "core-sounds-it.txt:4",
        "translation": "Please enter your password followed by the pound key.",
        "credit": "Copyright: 2006-2011, Marco Menardi e Paola Dal Zot (copyright: 'i file "
                  "sonori sono stati fatti da me e mia moglie')",
    }
    # 12 s of audio for a 43-character core text: the recording says something else.
    thanks = records["asterisk_prompts/it_IT_f_Menardi/demo-thanks"]
    assert thanks["transcript"] is None
    assert records["asterisk_prompts/it_IT_f_Menardi/conf-nuovo"]["transcript"] is None
    assert records["asterisk_prompts/it_IT_f_Menardi/digits/1"]["transcript"] is None

    armelle = records["asterisk_prompts/fr/vm-goodbye"]
    assert armelle["audio"] == (prepared / "fr/vm-goodbye.flac").absolute()
    assert armelle["transcript"] == "Au revoir." and armelle["meta"]["translation"] == "Goodbye."
    # Credited by name only: no gender is written (a given name is not a statement of it).
    assert armelle["attributes"] == {"Language": "French"}
    assert armelle["meta"]["speaker"] == "asterisk:armelle" and "locale" not in armelle["meta"]
    assert "Armelle Desjardins" in armelle["meta"]["credit"]
    assert "gender_source" not in armelle["meta"]
    log = caplog.text
    assert "2 non-speech clip(s) skipped" in log  # beep, silence/1
    assert "1 it_IT_f_Menardi: misfit transcript" in log


def test_asterisk_prompts_prepare_failure_keeps_the_rest(tmp_path: Path) -> None:
    root = build_asterisk_prompts(tmp_path)
    bad = root / SOUNDS / "it_IT_f_Menardi" / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEnot really a wav file at all" * 4)
    with pytest.raises(DatasetError, match=r"1 of 3 file\(s\) could not be converted .*broken"):
        prepare_prompts(root, progress=False)
    prepared = root / "desta-prepared" / "asterisk_prompts"
    assert (prepared / "fr/vm-goodbye.flac").is_file()
    assert not list(prepared.rglob(".*"))
    # The recipe still reads everything else. It does not decode audio, so the broken WAV
    # is listed as it is (`desta data manifest` reports it unreadable).
    records = {r["id"]: r for r in get_recipe("asterisk_prompts")(root)}
    assert len(records) == 9
    assert records["asterisk_prompts/it_IT_f_Menardi/broken"]["audio"] == bad.absolute()
    assert records["asterisk_prompts/fr/vm-goodbye"]["audio"].suffix == ".flac"


def test_asterisk_prompts_without_any_set(tmp_path: Path) -> None:
    (tmp_path / SOUNDS).mkdir(parents=True)
    with pytest.raises(DatasetError, match="asterisk-prompt-it-menardi-wav"):
        list(get_recipe("asterisk_prompts")(tmp_path))


# --- registry and sources ---------------------------------------------------------------------


def test_sources_name_these_recipes_and_prepare_steps() -> None:
    for source, recipe, prepare in (("fillets", "fillets", None),
                                    ("asterisk", "asterisk", prepare_asterisk),
                                    ("asterisk_prompts", "asterisk_prompts", prepare_prompts)):
        assert SOURCES[source].recipes == (recipe,)
        assert get_recipe(recipe).recipe_name == recipe
        assert SOURCES[source].prepare_fn() is prepare
    # The prompt sets take their transcripts from the core-sounds text packages.
    assert {"asterisk-core-sounds-it", "asterisk-core-sounds-fr", "asterisk-core-sounds-es",
            "asterisk-core-sounds-en"} <= set(SOURCES["asterisk_prompts"].packages)


def test_symlinked_voice_folder_is_not_read_twice(tmp_path: Path) -> None:
    root = build_asterisk(tmp_path)
    os.symlink("en_US_f_Allison", root / SOUNDS / "en_GB_f_Allison")
    prepare_asterisk(root, progress=False)
    assert not (root / "desta-prepared/asterisk/en_GB_f_Allison").exists()
    assert not any("en_GB" in key for key in run("asterisk", root))

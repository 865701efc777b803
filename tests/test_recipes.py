"""Dataset recipes read tiny copies of each dataset in its native layout (tests/recipe_fixtures)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import soundfile as sf

from desta.data.recipes import (
    RECORD_KEYS,
    DatasetError,
    get_recipe,
    list_recipes,
    make_record,
    register_recipe,
)
from desta.data.recipes.paths import resolve_under
from desta.errors import DestaError
from recipe_fixtures import (
    build_audiocaps,
    build_clotho,
    build_common_voice,
    build_common_voice_old,
    build_crema_d,
    build_esc50,
    build_gtzan,
    build_iemocap,
    build_librispeech,
    build_libritts_r,
    build_nsynth,
    build_speech_commands,
    build_vctk,
    build_vctk_080,
    write_tone,
)

ALL_RECIPES = [
    "audiocaps", "clotho", "common_voice", "crema_d", "esc50", "gtzan", "iemocap",
    "librispeech", "libritts_r", "nsynth", "speech_commands", "vctk",
]
# The recipes of the real-audio Debian packages (tested in tests/test_recipes_*.py).
REAL_AUDIO_RECIPES = [
    "asterisk", "asterisk_prompts", "fillets", "gcin", "gcompris_sounds", "klettres",
    "ktuberling", "soundfont_instruments", "tuxpaint", "tuxpaint_sounds", "zeroad_animals",
    "zeroad_voices",
]


def run(name: str, root: Path, **kwargs) -> dict[str, dict]:
    """Run a recipe; records by id, after checking every record's shape and audio file."""
    records = list(get_recipe(name)(root, **kwargs))
    by_id = {record["id"]: record for record in records}
    assert len(by_id) == len(records), "record ids must be unique"
    for record in records:
        assert tuple(record) == RECORD_KEYS
        assert record["dataset"] == name
        assert isinstance(record["audio"], Path) and record["audio"].is_absolute()
        assert record["audio"].is_file()
        assert sf.info(str(record["audio"])).frames > 0  # a real, readable clip
        assert all(isinstance(v, str) for v in record["attributes"].values())
    return by_id


def relative(record: dict, root: Path) -> str:
    return record["audio"].relative_to(root.absolute()).as_posix()


# --- one test per dataset, field by field -------------------------------------------------


def test_librispeech(tmp_path: Path) -> None:
    base = build_librispeech(tmp_path)
    records = run("librispeech", base, split="dev-clean")  # the parent of LibriSpeech/ works
    assert sorted(records) == ["librispeech/174-50561-0000", "librispeech/84-121123-0000",
                               "librispeech/84-121123-0001"]
    first = records["librispeech/84-121123-0000"]
    assert relative(first, base) == "LibriSpeech/dev-clean/84/121123/84-121123-0000.flac"
    assert first["transcript"] == "go do you hear"
    assert first["attributes"] == {"Gender": "Female"}
    assert first["domain"] == "speech"
    assert first["caption"] is None and first["segments"] is None and first["duration"] is None
    assert records["librispeech/174-50561-0000"]["attributes"] == {"Gender": "Male"}
    everything = run("librispeech", base / "LibriSpeech")
    assert len(everything) == 4
    # Speaker 60's name contains '|' in SPEAKERS.TXT; its sex must still be read.
    assert everything["librispeech/60-121082-0000"]["attributes"] == {"Gender": "Male"}
    assert everything["librispeech/60-121082-0000"]["transcript"] == "he hoped there would be stew"


def test_libritts_r(tmp_path: Path) -> None:
    base = build_libritts_r(tmp_path)
    records = run("libritts_r", base, split="train-clean-100")
    assert list(records) == ["libritts_r/19_198_000000_000000", "libritts_r/19_198_000001_000003"]
    second = records["libritts_r/19_198_000001_000003"]
    assert relative(second, base) == ("LibriTTS_R/train-clean-100/19/198/"
                                      "19_198_000001_000003.wav")
    assert second["transcript"] == '"Mister Allen" said she, first.'  # normalized column
    assert second["attributes"] == {"Gender": "Female"}
    assert second["domain"] == "speech"


def test_vctk(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    base = build_vctk(tmp_path)
    with caplog.at_level(logging.WARNING):
        records = run("vctk", base)
    assert list(records) == ["vctk/p225_001_mic1", "vctk/p225_002_mic1", "vctk/p226_001_mic1",
                             "vctk/p315_001_mic1"]
    first = records["vctk/p225_001_mic1"]
    assert relative(first, base) == "VCTK-Corpus-0.92/wav48_silence_trimmed/p225/p225_001_mic1.flac"
    assert first["transcript"] == "Please call Stella."
    assert first["attributes"] == {"Gender": "Female", "Age": "23", "Accent": "English"}
    assert records["vctk/p226_001_mic1"]["attributes"] == {"Gender": "Male", "Age": "22",
                                                           "Accent": "English"}
    assert records["vctk/p315_001_mic1"]["transcript"] is None  # p315's texts are lost
    assert "1 clip(s) have no txt/ transcript" in caplog.text
    mic2 = run("vctk", base, mic="mic2")
    assert list(mic2) == ["vctk/p225_001_mic2"]


def test_vctk_old_release(tmp_path: Path) -> None:
    base = build_vctk_080(tmp_path)
    records = run("vctk", base / "VCTK-Corpus")
    assert list(records) == ["vctk/p225_001"]
    record = records["vctk/p225_001"]
    assert relative(record, base) == "VCTK-Corpus/wav48/p225/p225_001.wav"
    assert record["attributes"] == {"Gender": "Female", "Age": "23", "Accent": "English"}
    assert record["transcript"] == "Please call Stella."


def test_crema_d(tmp_path: Path) -> None:
    root = build_crema_d(tmp_path)
    records = run("crema_d", root)
    assert list(records) == ["crema_d/1001_DFA_ANG_XX", "crema_d/1001_IEO_HAP_HI",
                             "crema_d/1002_TIE_SAD_LO"]
    angry = records["crema_d/1001_DFA_ANG_XX"]
    assert relative(angry, root) == "AudioWAV/1001_DFA_ANG_XX.wav"
    assert angry["transcript"] == "Don't forget a jacket."
    assert angry["attributes"] == {"Emotion": "Angry", "Gender": "Male", "Age": "51"}
    assert records["crema_d/1001_IEO_HAP_HI"]["attributes"] == {
        "Emotion": "Happy", "Emotion intensity": "High", "Gender": "Male", "Age": "51"}
    sad = records["crema_d/1002_TIE_SAD_LO"]
    assert sad["transcript"] == "That is exactly what happened."
    assert sad["attributes"] == {"Emotion": "Sad", "Emotion intensity": "Low",
                                 "Gender": "Female", "Age": "21"}


def test_common_voice(tmp_path: Path) -> None:
    root = build_common_voice(tmp_path)
    records = run("common_voice", root)  # split=None reads validated.tsv
    ids = [f"common_voice/en/common_voice_en_{n}" for n in (1, 2, 3)]
    assert list(records) == ids
    first = records["common_voice/en/common_voice_en_1"]
    assert relative(first, root) == "en/clips/common_voice_en_1.mp3"
    assert sf.info(str(first["audio"])).format == "MP3"
    assert first["transcript"] == 'He said "no" twice.'
    assert first["attributes"] == {"Gender": "Male", "Age": "twenties",
                                   "Accent": "United States English, Canadian English"}
    assert records["common_voice/en/common_voice_en_2"]["attributes"] == {
        "Gender": "Female", "Age": "forties"}
    assert records["common_voice/en/common_voice_en_3"]["attributes"] == {}
    train = run("common_voice", root / "en", split="train")
    assert sorted(train) == ids[:2]
    assert run("common_voice", root, split="test") == {}


def test_common_voice_old_columns(tmp_path: Path) -> None:
    lang = build_common_voice_old(tmp_path)
    records = run("common_voice", lang.parent, language="en")
    record = records["common_voice/en/common_voice_en_9"]
    assert record["transcript"] == "Good morning."
    assert record["attributes"] == {"Gender": "Female", "Age": "thirties",
                                    "Accent": "United States English"}


def test_iemocap(tmp_path: Path) -> None:
    base = build_iemocap(tmp_path)
    records = run("iemocap", base, split="Session1")
    assert list(records) == ["iemocap/Ses01F_impro01_F000", "iemocap/Ses01F_impro01_M000",
                             "iemocap/Ses01F_impro01_M001"]
    first = records["iemocap/Ses01F_impro01_F000"]
    assert relative(first, base) == ("IEMOCAP_full_release/Session1/sentences/wav/"
                                     "Ses01F_impro01/Ses01F_impro01_F000.wav")
    assert first["transcript"] == "Excuse me."
    assert first["attributes"] == {"Emotion": "Neutral", "Gender": "Female"}
    assert first["duration"] == pytest.approx(8.2357 - 6.2901)
    # "xxx" (no majority) carries no emotion; the speaker letter comes from the turn name.
    assert records["iemocap/Ses01F_impro01_M000"]["attributes"] == {"Gender": "Male"}
    assert records["iemocap/Ses01F_impro01_M001"]["attributes"] == {"Emotion": "Frustrated",
                                                                    "Gender": "Male"}
    assert records["iemocap/Ses01F_impro01_M001"]["transcript"] == "Yeah."
    everything = run("iemocap", base / "IEMOCAP_full_release")
    assert everything["iemocap/Ses02M_script01_1_F002"]["attributes"] == {
        "Emotion": "Angry", "Gender": "Female"}
    assert len(everything) == 4


def test_esc50(tmp_path: Path) -> None:
    root = build_esc50(tmp_path)
    records = run("esc50", root)
    assert list(records) == ["esc50/1-100032-A-0", "esc50/2-102414-A-30", "esc50/1-17367-A-10"]
    knock = records["esc50/2-102414-A-30"]
    assert relative(knock, root) == "audio/2-102414-A-30.wav"
    assert knock["attributes"] == {"Audio category": "door_wood_knock"}
    assert knock["domain"] == "sound" and knock["transcript"] is None
    assert knock["duration"] == 5.0
    assert list(run("esc50", root, split="fold1")) == ["esc50/1-100032-A-0", "esc50/1-17367-A-10"]


def test_audiocaps(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    base = build_audiocaps(tmp_path)
    with caplog.at_level(logging.WARNING):
        train = run("audiocaps", base, split="train")
    assert list(train) == ["audiocaps/91139", "audiocaps/58146"]
    assert relative(train["audiocaps/91139"], base) == (
        "audio/train/Yr1nicOVtvkQ_130.000_140.000.wav")
    assert train["audiocaps/91139"]["caption"] == "A woman talks nearby as water pours"
    assert relative(train["audiocaps/58146"], base) == "audio/train/58146.flac"
    assert train["audiocaps/58146"]["caption"] == ("Multiple clanging and clanking sounds, then "
                                                   "a man speaks")
    assert train["audiocaps/58146"]["domain"] == "sound"
    assert train["audiocaps/58146"]["attributes"] == {}
    # The undownloaded clip is a counted, logged skip.
    assert "11111.wav" in caplog.text and "train.csv:4" in caplog.text
    assert "skipped 1 row(s)" in caplog.text
    val = run("audiocaps", base, split="val")
    assert [relative(r, base) for r in val.values()] == ["audio/val/vfY_TJq7n_U_130.wav"] * 2
    assert [r["caption"] for r in val.values()] == ["Rustling occurs while an engine idles",
                                                    "An engine idles and something rustles"]
    # An explicit audio folder (absolute) is honoured.
    elsewhere = tmp_path / "elsewhere"
    write_tone(elsewhere / "97151.wav")
    picked = run("audiocaps", base, split="val", audio_dir=elsewhere)
    assert picked["audiocaps/97151"]["audio"] == elsewhere / "97151.wav"


def test_clotho(tmp_path: Path) -> None:
    base = build_clotho(tmp_path)
    records = run("clotho", base)
    assert len(records) == 10
    first = records["clotho/development/Distorted AM Radio noise/1"]
    assert relative(first, base) == "development/Distorted AM Radio noise.wav"
    assert first["caption"] == "radio static number 1"
    assert records["clotho/development/Footsteps on gravel, 2/5"]["caption"] == (
        "gravel crunches under shoes")
    assert first["domain"] == "sound" and first["attributes"] == {}


def test_speech_commands(tmp_path: Path) -> None:
    base = build_speech_commands(tmp_path)
    everything = run("speech_commands", base)
    assert list(everything) == ["speech_commands/no/0a7c2a8d_nohash_0",
                                "speech_commands/yes/0a7c2a8d_nohash_0",
                                "speech_commands/yes/0b09edd3_nohash_1"]
    record = everything["speech_commands/yes/0a7c2a8d_nohash_0"]
    assert relative(record, base) == "yes/0a7c2a8d_nohash_0.wav"
    assert record["transcript"] == "yes" and record["attributes"] == {}
    assert list(run("speech_commands", base, split="train")) == [
        "speech_commands/yes/0a7c2a8d_nohash_0"]
    assert list(run("speech_commands", base, split="validation")) == [
        "speech_commands/yes/0b09edd3_nohash_1"]
    assert list(run("speech_commands", base, split="test")) == [
        "speech_commands/no/0a7c2a8d_nohash_0"]


def test_nsynth(tmp_path: Path) -> None:
    base = build_nsynth(tmp_path)
    records = run("nsynth", base, split="test")
    bass = records["nsynth/test/bass_electronic_018-022-100"]
    assert relative(bass, base) == "nsynth-test/audio/bass_electronic_018-022-100.wav"
    assert bass["attributes"] == {"Family": "bass", "Source": "electronic", "MIDI Note": "022",
                                  "Velocity": "100", "Qualities": "dark"}
    assert list(bass["attributes"]) == ["Family", "Source", "MIDI Note", "Velocity", "Qualities"]
    assert bass["domain"] == "music" and bass["duration"] == 4.0
    keys = records["nsynth/test/keyboard_acoustic_004-060-025"]
    assert keys["attributes"] == {"Family": "keyboard", "Source": "acoustic", "MIDI Note": "060",
                                  "Velocity": "25"}
    everything = run("nsynth", base)
    assert everything["nsynth/valid/guitar_synthetic_010-100-127"]["attributes"]["Qualities"] == (
        "bright, distortion")
    assert len(everything) == 3


@pytest.mark.parametrize("marsyas", [False, True])
def test_gtzan(tmp_path: Path, marsyas: bool) -> None:
    base = build_gtzan(tmp_path, marsyas=marsyas)
    records = run("gtzan", base)
    assert list(records) == ["gtzan/blues.00000", "gtzan/reggae.00000", "gtzan/reggae.00001"]
    reggae = records["gtzan/reggae.00001"]
    expected = "genres/reggae/reggae.00001.au" if marsyas else \
        "Data/genres_original/reggae/reggae.00001.wav"
    assert relative(reggae, base) == expected
    assert reggae["attributes"] == {"Genre": "reggae"} and reggae["domain"] == "music"


# --- paths may not escape the data root ---------------------------------------------------


@pytest.mark.parametrize("bad", ["../outside.wav", "sub/../../outside.wav", "..\\outside.wav"])
def test_dotdot_paths_are_rejected(tmp_path: Path, bad: str) -> None:
    write_tone(tmp_path / "outside.wav")
    root = build_esc50(tmp_path / "data", rows=f"{bad},1,0,dog,True,1,A\n")
    with pytest.raises(DatasetError, match=r"contains '\.\.'") as error:
        list(get_recipe("esc50")(root))
    assert repr(bad) in str(error.value) and "esc50.csv:2" in str(error.value)


def test_absolute_paths_are_rejected(tmp_path: Path) -> None:
    outside = write_tone(tmp_path / "outside.wav")
    root = build_esc50(tmp_path / "data", rows=f"{outside},1,0,dog,True,1,A\n")
    with pytest.raises(DatasetError, match="is absolute") as error:
        list(get_recipe("esc50")(root))
    assert str(outside) in str(error.value) and "esc50.csv:2" in str(error.value)


def test_symlink_out_of_root_is_rejected(tmp_path: Path) -> None:
    outside = write_tone(tmp_path / "outside.wav")
    root = build_esc50(tmp_path / "data", rows="evil.wav,1,0,dog,True,1,A\n")
    (root / "audio" / "evil.wav").symlink_to(outside)
    with pytest.raises(DatasetError, match="outside the data root") as error:
        list(get_recipe("esc50")(root))
    assert "evil.wav" in str(error.value)


def test_symlink_out_of_root_is_rejected_when_listing(tmp_path: Path) -> None:
    base = build_gtzan(tmp_path / "data")
    outside = write_tone(tmp_path / "outside.wav")
    (base / "Data" / "genres_original" / "blues" / "blues.00001.wav").symlink_to(outside)
    with pytest.raises(DatasetError, match="outside the data root"):
        list(get_recipe("gtzan")(base))


def test_symlink_inside_root_is_allowed(tmp_path: Path) -> None:
    root = build_esc50(tmp_path, rows="alias.wav,1,0,dog,True,1,A\n")
    target = write_tone(root / "audio" / "real.wav")
    (root / "audio" / "alias.wav").symlink_to(target)
    records = run("esc50", root)
    assert records["esc50/alias"]["audio"] == root.absolute() / "audio" / "alias.wav"


def test_resolve_under(tmp_path: Path) -> None:
    assert resolve_under(tmp_path, "a", "b.wav") == tmp_path / "a" / "b.wav"
    for bad in ("/etc/passwd", "C:\\x.wav", "a/../../b", ""):
        with pytest.raises(DatasetError):
            resolve_under(tmp_path, "audio", bad, source="meta.csv:7")
    with pytest.raises(DatasetError, match="meta.csv:7"):
        resolve_under(tmp_path, "../x", source="meta.csv:7")


def test_audio_named_in_metadata_cannot_escape(tmp_path: Path) -> None:
    """The same guard applies to the per-line formats (LibriTTS-R ids, Common Voice paths)."""
    base = build_libritts_r(tmp_path / "data")
    trans = base / "LibriTTS_R/train-clean-100/19/198/19_198.trans.tsv"
    trans.write_text("../../../../../secret\ta\tb\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="19_198.trans.tsv:1"):
        list(get_recipe("libritts_r")(base))
    root = build_common_voice(tmp_path / "cv")
    lines = (root / "en" / "validated.tsv").read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace("common_voice_en_2.mp3", "/etc/passwd")
    (root / "en" / "validated.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"validated\.tsv:3"):
        list(get_recipe("common_voice")(root))


# --- malformed metadata: file and line named ----------------------------------------------


def test_malformed_csv_row_names_file_and_line(tmp_path: Path) -> None:
    root = build_esc50(tmp_path)
    table = root / "meta" / "esc50.csv"
    lines = table.read_text().splitlines()
    lines[2] = "2-102414-A-30.wav,2,30"  # truncated row on line 3
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"esc50\.csv:3: malformed row: 3 fields"):
        list(get_recipe("esc50")(root))


def test_malformed_tsv_row_names_file_and_line(tmp_path: Path) -> None:
    root = build_common_voice(tmp_path)
    with (root / "en" / "validated.tsv").open("a", encoding="utf-8") as handle:
        handle.write("dd\tcommon_voice_en_4.mp3\textra\n")
    with pytest.raises(DatasetError, match=r"validated\.tsv:5: malformed row"):
        list(get_recipe("common_voice")(root))


@pytest.mark.parametrize(("builder", "name", "relpath", "bad_line", "line_number"), [
    (build_librispeech, "librispeech", "LibriSpeech/dev-clean/84/121123/84-121123.trans.txt",
     "GO DO YOU HEAR", 3),
    (build_librispeech, "librispeech", "LibriSpeech/SPEAKERS.TXT", "99 | X | dev-clean | 1 | Z", 7),
    (build_vctk, "vctk", "VCTK-Corpus-0.92/speaker-info.txt", "p999 F", 5),
    (build_iemocap, "iemocap", "IEMOCAP_full_release/Session1/dialog/EmoEvaluation/"
     "Ses01F_impro01.txt", "[1.0 - 2.0]\tSes01F_impro01_F009\tneu", 15),
    (build_speech_commands, "speech_commands", "validation_list.txt", "not a path", 2),
])
def test_malformed_line_names_file_and_line(tmp_path: Path, builder, name: str, relpath: str,
                                            bad_line: str, line_number: int) -> None:
    base = builder(tmp_path)
    path = base / relpath
    with path.open("a", encoding="utf-8") as handle:
        handle.write(bad_line + "\n")
    split = "validation" if name == "speech_commands" else None
    with pytest.raises(DatasetError, match="malformed row") as error:
        list(get_recipe(name)(base, split=split))
    assert f"{path.name}:{line_number}:" in str(error.value)


def test_bad_crema_d_file_name_is_named(tmp_path: Path) -> None:
    root = build_crema_d(tmp_path)
    write_tone(root / "AudioWAV" / "1001_DFA_XYZ_XX.wav")
    with pytest.raises(DatasetError, match="1001_DFA_XYZ_XX.wav"):
        list(get_recipe("crema_d")(root))


def test_bad_nsynth_json(tmp_path: Path) -> None:
    base = build_nsynth(tmp_path)
    table = base / "nsynth-test" / "examples.json"
    entries = json.loads(table.read_text())
    del entries["keyboard_acoustic_004-060-025"]["pitch"]
    table.write_text(json.dumps(entries))
    with pytest.raises(DatasetError, match="keyboard_acoustic_004-060-025.*malformed"):
        list(get_recipe("nsynth")(base, split="test"))
    table.write_text('{"bass_electronic_018-022-100": {"pitch": ')
    with pytest.raises(DatasetError, match="not valid JSON"):
        list(get_recipe("nsynth")(base, split="test"))


# --- streaming and limit ------------------------------------------------------------------


def test_limit_is_respected(tmp_path: Path) -> None:
    base = build_librispeech(tmp_path)
    recipe = get_recipe("librispeech")
    assert len(list(recipe(base, limit=2))) == 2
    assert list(recipe(base, limit=0)) == []
    assert len(list(recipe(base, limit=100))) == 4
    with pytest.raises(DatasetError, match="limit"):
        recipe(base, limit=-1)


def test_rows_are_streamed(tmp_path: Path) -> None:
    """A bad row after the limit is never read: the file is parsed row by row, not up front."""
    root = build_common_voice(tmp_path)
    with (root / "en" / "validated.tsv").open("a", encoding="utf-8") as handle:
        handle.write("broken row\n")
    assert len(list(get_recipe("common_voice")(root, limit=3))) == 3
    with pytest.raises(DatasetError):
        list(get_recipe("common_voice")(root))
    base = build_nsynth(tmp_path / "nsynth")
    table = base / "nsynth-test" / "examples.json"
    table.write_text(table.read_text().rstrip().rstrip("}") + ', "x": [')  # truncated file
    assert len(list(get_recipe("nsynth")(base, split="test", limit=2))) == 2


# --- registry and option errors -----------------------------------------------------------


def test_registry_lists_all_recipes() -> None:
    assert list_recipes() == sorted(ALL_RECIPES + REAL_AUDIO_RECIPES)
    for name in list_recipes():
        assert get_recipe(name).recipe_name == name


def test_unknown_recipe_lists_known_ones() -> None:
    with pytest.raises(DatasetError, match="unknown dataset recipe 'librispeach'") as error:
        get_recipe("librispeach")
    assert all(name in str(error.value) for name in ALL_RECIPES)
    assert isinstance(error.value, DestaError)


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(DatasetError, match="already registered"):
        register_recipe("esc50")(lambda root, **_: iter(()))


def test_unknown_split_is_refused_at_call(tmp_path: Path) -> None:
    base = build_librispeech(tmp_path)
    with pytest.raises(DatasetError, match="unknown split 'dev_clean'.*dev-clean"):
        get_recipe("librispeech")(base, split="dev_clean")
    with pytest.raises(DatasetError, match="known splits: none"):
        get_recipe("gtzan")(base, split="train")
    with pytest.raises(DatasetError, match="split 'train-clean-100'.*not found"):
        list(get_recipe("librispeech")(base, split="train-clean-100"))  # known, not downloaded


def test_bad_root_and_option(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a directory"):
        get_recipe("esc50")(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="bad recipe option"):
        get_recipe("esc50")(tmp_path, colour="blue")
    with pytest.raises(DatasetError, match="missing_audio"):
        get_recipe("esc50")(tmp_path, missing_audio="ignore")


@pytest.mark.parametrize(("name", "builder", "metadata"), [
    ("librispeech", build_librispeech, "LibriSpeech/SPEAKERS.TXT"),
    ("libritts_r", build_libritts_r, "LibriTTS_R/speakers.tsv"),
    ("vctk", build_vctk, "VCTK-Corpus-0.92/speaker-info.txt"),
    ("crema_d", build_crema_d, "VideoDemographics.csv"),
    ("common_voice", build_common_voice, "en/validated.tsv"),
    ("iemocap", build_iemocap, "IEMOCAP_full_release/Session1/dialog/transcriptions/"
     "Ses01F_impro01.txt"),
    ("esc50", build_esc50, "meta/esc50.csv"),
    ("audiocaps", build_audiocaps, "train.csv"),
    ("clotho", build_clotho, "clotho_captions_development.csv"),
    ("speech_commands", build_speech_commands, "testing_list.txt"),
    ("nsynth", build_nsynth, "nsynth-test/examples.json"),
])
def test_missing_metadata_file_is_named(tmp_path: Path, name: str, builder, metadata: str
                                        ) -> None:
    root = builder(tmp_path)
    (root / metadata).unlink()
    split = {"audiocaps": "train", "clotho": "development", "speech_commands": "test",
             "nsynth": "test"}.get(name)
    with pytest.raises(DatasetError) as error:
        list(get_recipe(name)(root, split=split))
    assert Path(metadata).name in str(error.value)


# --- missing audio ------------------------------------------------------------------------


def test_missing_audio_is_a_counted_skip_or_an_error(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    root = build_esc50(tmp_path)
    os.remove(root / "audio" / "2-102414-A-30.wav")
    with caplog.at_level(logging.WARNING):
        records = run("esc50", root)
    assert list(records) == ["esc50/1-100032-A-0", "esc50/1-17367-A-10"]
    assert "2-102414-A-30.wav" in caplog.text and "esc50.csv:3" in caplog.text
    assert "skipped 1 row(s) whose audio file is missing (2 found)" in caplog.text
    with pytest.raises(DatasetError, match=r"2-102414-A-30\.wav.*esc50\.csv:3"):
        list(get_recipe("esc50")(root, missing_audio="error"))


def test_all_audio_missing_is_an_error(tmp_path: Path) -> None:
    base = build_librispeech(tmp_path)
    for flac in base.rglob("*.flac"):
        flac.unlink()
    with pytest.raises(DatasetError, match="none of the 4 listed audio files exist"):
        list(get_recipe("librispeech")(base))


# --- records ------------------------------------------------------------------------------


def test_make_record_has_exactly_the_clip_record_fields(tmp_path: Path) -> None:
    record = make_record(id="x/1", audio=tmp_path / "a.wav", dataset="x", domain="music",
                         attributes={"Genre": "jazz"})
    assert tuple(record) == ("id", "audio", "dataset", "domain", "transcript", "attributes",
                             "caption", "segments", "duration", "meta")
    assert record["attributes"] == {"Genre": "jazz"} and record["transcript"] is None
    assert record["meta"] == {}
    with pytest.raises(DatasetError, match="domain 'noise'"):
        make_record(id="x/1", audio=tmp_path / "a.wav", dataset="x", domain="noise")


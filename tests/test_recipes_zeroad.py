"""0 A.D. recipes (zeroad_voices, zeroad_animals) and their prepare step, on a public.zip in
the package's own layout (tests/fixtures_real_audio_b.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import soundfile as sf

from desta.data.recipes import DatasetError, get_recipe
from desta.data.recipes.zeroad import command_text, prepare
from desta.data.sources import SOURCES
from fixtures_real_audio_b import ZEROAD_OGG, ZEROAD_ZIP, build_zeroad

PREPARED = "desta-prepared/zeroad"


def records(name: str, root: Path) -> dict[str, dict]:
    out = {r["id"]: r for r in get_recipe(name)(root)}
    for r in out.values():
        assert r["dataset"] == name and sf.info(str(r["audio"])).frames > 0
    return out


def test_prepare_copies_only_voices_and_fauna_once(tmp_path: Path) -> None:
    root = build_zeroad(tmp_path)
    prepare(root, progress=False)
    copied = sorted(str(p.relative_to(root / PREPARED)) for p in (root / PREPARED).rglob("*")
                    if p.is_file())
    assert copied == sorted(n for n in ZEROAD_OGG
                            if "/movement/" not in n and "/music/" not in n)
    first = (root / PREPARED / ZEROAD_OGG[0]).stat().st_mtime_ns
    prepare(root, progress=False)  # idempotent: nothing rewritten
    assert (root / PREPARED / ZEROAD_OGG[0]).stat().st_mtime_ns == first
    assert not list((root / PREPARED).rglob("*.partial"))


def test_voices_gender_from_file_name(tmp_path: Path) -> None:
    root = build_zeroad(tmp_path)
    prepare(root, progress=False)
    voices = records("zeroad_voices", root)
    assert sorted(voices) == ["zeroad/greek/civ_female_attack_1",
                              "zeroad/greek/civ_female_what_is_it_3",
                              "zeroad/greek/civ_male_Asyouwish_1",
                              "zeroad/latin/civ_male_attack_10",
                              "zeroad/napatan/civ_female_hello"]
    what = voices["zeroad/greek/civ_female_what_is_it_3"]
    assert what["attributes"] == {"Gender": "Female"} and what["transcript"] is None
    assert what["meta"]["speaker"] == "0ad:greek:female"
    assert what["meta"]["translation"] == "what is it"
    assert what["meta"]["language"] == "grc" and "reconstructed" in what["meta"]["language_name"]
    assert voices["zeroad/greek/civ_male_Asyouwish_1"]["meta"]["translation"] == "as you wish"
    assert voices["zeroad/latin/civ_male_attack_10"]["attributes"] == {"Gender": "Male"}
    assert voices["zeroad/napatan/civ_female_hello"]["meta"]["speaker"] == "0ad:napatan:female"
    assert command_text("work_land") == "work land"


def test_animals_named_by_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = build_zeroad(tmp_path)
    prepare(root, progress=False)
    with caplog.at_level(logging.INFO):
        animals = records("zeroad_animals", root)
    labels = {k: r["attributes"]["Audio category"] for k, r in animals.items()}
    assert labels == {"zeroad/animal/cattle_03": "cow", "zeroad/animal/horse_attack1": "horse",
                      "zeroad/animal/pig_squeal_move": "pig", "zeroad/death/goat_10": "goat",
                      "zeroad/death/death_camel_10": "camel", "zeroad/global/civ_dog_bark": "dog"}
    assert animals["zeroad/animal/horse_attack1"]["meta"]["event"] == "attack"
    assert "event" not in animals["zeroad/animal/cattle_03"]["meta"]
    assert all(r["domain"] == "sound" and r["meta"]["category"] == "animal"
               for r in animals.values())
    assert "skipped 1 file(s) naming no animal" in caplog.text  # Animal_death_generic


def test_bad_layouts_are_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="converted audio not found.*--source zeroad"):
        list(get_recipe("zeroad_voices")(tmp_path))
    with pytest.raises(DatasetError, match="0ad-data archive"):
        prepare(tmp_path, progress=False)
    odd = build_zeroad(tmp_path / "odd", ("audio/voice/egyptian/civ/civ_female_yes_1.ogg",
                                          "audio/voice/greek/civ/civ_child_yes_1.ogg"))
    prepare(odd, progress=False)
    with pytest.raises(DatasetError, match="egyptian: unknown civilisation"):
        list(get_recipe("zeroad_voices")(odd))
    (odd / PREPARED / "audio/voice/egyptian/civ/civ_female_yes_1.ogg").unlink()
    (odd / PREPARED / "audio/voice/egyptian/civ").rmdir()
    (odd / PREPARED / "audio/voice/egyptian").rmdir()
    with pytest.raises(DatasetError, match=r"civ_child_yes_1.ogg: file name is not"):
        list(get_recipe("zeroad_voices")(odd))
    broken = tmp_path / "broken"
    (broken / ZEROAD_ZIP).parent.mkdir(parents=True)
    (broken / ZEROAD_ZIP).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DatasetError, match="cannot read the archive"):
        prepare(broken, progress=False)
    empty = build_zeroad(tmp_path / "empty", ("audio/music/theme.ogg",))
    with pytest.raises(DatasetError, match="no audio/voice or audio/actor/fauna"):
        prepare(empty, progress=False)


def test_source_lists_the_recipes() -> None:
    source = SOURCES["zeroad"]
    assert source.packages == ("0ad-data",) and source.licence == "CC-BY-SA-3.0"
    assert source.recipes == ("zeroad_voices", "zeroad_animals")
    assert source.prepare_fn() is prepare

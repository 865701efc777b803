"""The real-audio corpus build over fixture trees in the packages' own layouts: selection,
the speaker split, augmented sound copies, English-only transcripts, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desta.data.real_corpus import (
    CorpusPlan,
    build_real_corpus,
    heldout_speaker,
    narrowband_copy,
    select_speech,
    split_instruments,
)
from desta.data.recipes.asterisk import prepare as prepare_asterisk
from desta.data.recipes.gcompris import prepare as prepare_gcompris
from desta.data.recipes.soundfont import prepare as prepare_soundfont
from desta.data.recipes.zeroad import prepare as prepare_zeroad
from desta.data.seed import read_manifest
from desta.errors import ConfigError
from fixtures_real_audio_a import build_gcin, build_klettres, build_ktuberling, build_tuxpaint
from fixtures_real_audio_b import build_asterisk, build_fillets, build_zeroad
from test_recipes_gcompris_soundfont import build_gcompris, build_soundfont


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("real_root")
    for build in (build_tuxpaint, build_klettres, build_ktuberling, build_gcin, build_fillets,
                  build_asterisk, build_gcompris, build_soundfont, build_zeroad):
        build(base)
    prepare_asterisk(base, progress=False)
    prepare_gcompris(base, progress=False)
    prepare_zeroad(base, progress=False)
    prepare_soundfont(base, progress=False, clips_per_program=4)
    return base


def _records(path: Path):
    return list(read_manifest(path))


def test_corpus_split_keeps_speakers_apart_and_is_deterministic(root, tmp_path):
    plan = CorpusPlan(sound_copies=2, workers=1)
    report = build_real_corpus(root, plan=plan)
    train, held = _records(report.train), _records(report.heldout)
    assert train and held
    train_speakers = {r.meta.get("speaker") for r in train if r.domain == "speech"}
    held_speakers = {r.meta.get("speaker") for r in held if r.domain == "speech"}
    assert not train_speakers & held_speakers
    assert all(heldout_speaker(s) for s in held_speakers)
    for rec in train + held:
        assert (root / rec.audio).is_file(), rec.audio
        assert rec.duration and rec.duration > 0
        if rec.domain == "speech" and rec.meta.get("language") != "en":
            # The embedded ASR is English-only: no words in the seed, " " for the model.
            assert rec.transcript is None and rec.meta["row_transcript"] == " "
    # Sound recordings: every training one has augmented copies; the farm animals are held out.
    sounds = [r for r in train if r.domain == "sound"]
    originals = [r for r in sounds if "augmented_from" not in r.meta]
    assert len(sounds) == 3 * len(originals) > 0
    assert all(r.meta.get("activity") == "explore_farm_animals" for r in held
               if r.dataset == "gcompris_sounds")
    # Every training clip with a stated gender has a telephone-band copy with its labels.
    gendered = {r.id: r for r in train if r.domain == "speech" and r.attributes.get("Gender")
                and "augmented_from" not in r.meta}
    copies = [r for r in train if r.meta.get("augmentation", "").startswith("narrowband")]
    assert gendered and sorted(r.meta["augmented_from"] for r in copies) == sorted(gendered)
    for copy in copies:
        original = gendered[copy.meta["augmented_from"]]
        assert copy.attributes["Gender"] == original.attributes["Gender"]
        assert copy.transcript == original.transcript
        assert copy.meta["speaker"] == original.meta["speaker"]
        wave, rate = sf.read(root / copy.audio)
        spectrum = np.abs(np.fft.rfft(wave)) ** 2
        high = spectrum[np.fft.rfftfreq(len(wave), 1 / rate) > 4_100].sum()
        assert rate == 16_000 and high < 1e-4 * spectrum.sum(), copy.audio
    assert not any("augmented_from" in r.meta for r in held)
    counts = json.loads((report.out_dir / "corpus.json").read_text())
    assert counts["train"]["clips"] == len(train) and counts["data_root"] == ".."
    first = report.train.read_bytes(), report.heldout.read_bytes()
    again = build_real_corpus(root, plan=plan)
    assert (again.train.read_bytes(), again.heldout.read_bytes()) == first


def test_corpus_folder_must_be_inside_the_root(root, tmp_path):
    with pytest.raises(ConfigError, match="must be inside the data root"):
        build_real_corpus(root, tmp_path / "elsewhere")


def test_selection_caps_speakers_and_holds_out_the_named_ones():
    def rec(i, speaker, dataset="tuxpaint"):
        return {"id": f"{dataset}/{i}", "dataset": dataset, "meta": {"speaker": speaker}}

    records = ([rec(i, "tuxpaint:ro") for i in range(300)]
               + [rec(i, "fillets:nl:big_fish", "fillets") for i in range(300, 500)]
               + [rec(i, "fillets:cs:statue", "fillets") for i in range(500, 510)])
    plan = CorpusPlan()
    train, held = select_speech(records, plan)
    assert len(train) == plan.speaker_caps["tuxpaint"]
    assert {r["meta"]["speaker"] for r in held} == {"fillets:nl:big_fish", "fillets:cs:statue"}
    assert len(held) == plan.heldout_per_speaker + 10
    assert select_speech(records, plan) == (train, held)  # seeded order


def test_instrument_split_holds_out_a_share_of_every_program():
    records = [{"id": f"soundfont_instruments/{p}/note-{n}"} for p in ("piano", "flute")
               for n in range(20)]
    train, held = split_instruments(records, CorpusPlan(instrument_heldout=0.15))
    assert len(held) == 6 and len(train) == 34
    assert {r["id"].split("/")[1] for r in held} == {"piano", "flute"}


def test_an_unreadable_clip_gets_no_narrowband_copy(tmp_path, caplog):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    rec = {"id": "x/bad", "audio": bad, "attributes": {"Gender": "Female"}, "meta": {}}
    assert narrowband_copy(rec, tmp_path / "out") is None
    assert "no narrowband copy of x/bad" in caplog.text
    good = tmp_path / "good.wav"
    sf.write(good, 0.1 * np.sin(np.arange(16_000) * 0.3).astype(np.float32), 16_000)
    copy = narrowband_copy({**rec, "id": "x/good", "audio": good}, tmp_path / "out")
    assert copy["id"] == "x/good#8k" and copy["meta"]["augmented_from"] == "x/good"
    assert copy["attributes"] == {"Gender": "Female"} and Path(copy["audio"]).is_file()

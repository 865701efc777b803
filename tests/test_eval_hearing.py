"""The hearing probe (held-out clips, open questions, keyword scoring, text ceiling) and the
SAKURA text ceiling, scored through the registry and runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desta.data.seed import ClipRecord, seed_description, write_manifest
from desta.evaluation import hearing
from desta.evaluation.registry import ScoreContext, get_spec
from desta.evaluation.runner import evaluate

SAKURA = Path(__file__).parent / "fixtures" / "eval" / "sakura"


@pytest.fixture
def manifest(tmp_path) -> Path:
    corpus = tmp_path / "root" / "desta-corpus"
    corpus.mkdir(parents=True)
    audio = tmp_path / "root" / "clips"
    audio.mkdir()
    records = []
    specs = [("speech", {"Language": "Czech", "Gender": "Female"}, None, "cs"),
             ("speech", {"Language": "Dutch", "Gender": "Male"}, None, "nl"),
             ("speech", {"Language": "English"}, "please call me back", "en"),
             ("sound", {"Audio category": "dog"}, None, None),
             ("music", {"Instrument": "violin", "Family": "string"}, None, None)]
    for i, (domain, attributes, transcript, lang) in enumerate(specs):
        sf.write(audio / f"{i}.wav", 0.1 * np.ones(24_000, np.float32), 16_000)
        records.append(ClipRecord(id=f"c/{i}", audio=f"clips/{i}.wav", dataset="t",
                                  domain=domain, duration=1.5, transcript=transcript,
                                  attributes=attributes,
                                  meta={"speaker": f"s{i}", **({"language": lang} if lang
                                                               else {})}))
    write_manifest(corpus / "heldout.jsonl", records)
    (corpus / "corpus.json").write_text(json.dumps({"data_root": ".."}))
    return corpus / "heldout.jsonl"


def test_items_cover_every_label_a_clip_has(manifest):
    items = hearing.load(manifest, None)
    tasks = sorted((i.metadata["task"], i.reference) for i in items)
    assert tasks == [("gender", "Female"), ("gender", "Male"), ("instrument", "string"),
                     ("language", "Czech"), ("language", "Dutch"), ("language", "English"),
                     ("sound", "dog"), ("transcript", "please call me back")]
    assert all(i.audio_paths[0].is_file() for i in items)  # resolved via corpus.json
    item = next(i for i in items if i.metadata["task"] == "gender")
    ceiling = hearing.text_ceiling_messages(item)
    record = ClipRecord.from_json(manifest.read_text().splitlines()[0])
    assert seed_description(record) in ceiling[-1]["content"]
    assert item.prompt in ceiling[-1]["content"] and "audios" not in ceiling[-1]
    assert hearing.messages(item)[-1]["audios"][0]["text"] is None  # the model's own ASR
    assert [i.metadata["task"] for i in hearing.load(manifest, "sound")] == ["sound"]


def test_scores_against_chance_and_the_text_ceiling(manifest):
    items = hearing.load(manifest, None)
    answers = {"gender": {"Female": "A woman is speaking.", "Male": "The speaker is female."},
               "language": {"Czech": "This is Czech.", "Dutch": "It sounds like German.",
                            "English": "English."},
               "sound": {"dog": "A dog barking."}, "instrument": {"string": "A cello."},
               "transcript": {"please call me back": "please call me"}}
    rows = [hearing.result_row(i, answers[i.metadata["task"]][i.reference]) for i in items]
    ceiling = [hearing.result_row(i, str(i.reference)) for i in items]
    out = hearing.score(rows, ScoreContext(backbone_rows=ceiling))
    s = out["summary"]
    assert s["gender"] == 50.0 and s["language"] == pytest.approx(200 / 3)
    assert s["sound"] == 100.0 and s["instrument family"] == 100.0
    assert s["English WER"] == 25.0  # one deletion in four words
    assert s["gender (text ceiling)"] == 100.0 and s["gender (audio / ceiling %)"] == 50.0
    assert out["chance"] == {"gender": 50.0, "language": pytest.approx(100 / 3),
                             "sound": 100.0, "instrument family": 100.0}
    assert out["audio"]["gender"]["per_label"] == {"Female": 100.0, "Male": 0.0}


def test_runner_scores_a_predictions_file(manifest, tmp_path):
    items = hearing.load(manifest, None)
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(hearing.result_row(i, "A woman speaking Czech.")) + "\n"
                             for i in items))
    result = evaluate("hearing", data=manifest, predictions=preds, out=tmp_path / "out")
    assert result.scores["summary"]["gender"] == 50.0
    assert result.files  # scores and report written to --out


def test_bad_manifest_is_named(tmp_path):
    bad = tmp_path / "m.jsonl"
    bad.write_text('{"id": "x"}\n')
    with pytest.raises(Exception, match=r"m.jsonl:1"):
        hearing.load(bad, None)


def test_sakura_text_ceiling_asks_from_the_label():
    spec = get_spec("sakura-text")
    items = spec.load(SAKURA, None)
    item = next(i for i in items if i.metadata["track"] == "Animal")
    content = spec.messages(item)[-1]["content"]
    assert f"(Audio category: {item.metadata['attribute_label']}, Duration: 5s)" in content
    assert item.prompt in content and "audios" not in spec.messages(item)[-1]
    # The same scorer as SAKURA's audio runs: an answer naming the right option counts.
    rows = [spec.result_row(i, i.reference) for i in items]
    assert spec.score(rows, ScoreContext())["summary"]

"""Training data: streamed manifests, length-aware batches, sharding, resume position,
collation through the model's pieces, and the consecutive-words metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from desta import ConfigError, MessageError
from desta.model import DestaConfig, DestaModel
from desta.training.data import (
    Collator,
    RowEncoder,
    TrainBatches,
    iter_rows,
    manifest_files,
    plan_batches,
    shard,
)
from desta.training.metrics import consecutive_words_accuracy, consecutive_words_match


def _row(i: int, words: int, audio: str = "a.wav", text: str | None = "hello") -> dict:
    response = " ".join(["word"] * words)
    return {"id": f"r{i}", "dataset": "t", "seed_description": "[00:00-00:01] hello",
            "prompt": "What?", "response": response,
            "messages": [{"role": "user", "content": "<|AUDIO|>\nWhat?",
                          "audios": [{"audio": audio, "text": text}]},
                         {"role": "assistant", "content": response}]}


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def model(tiny_backbones) -> DestaModel:
    whisper, llm = tiny_backbones
    return DestaModel.from_config(DestaConfig(encoder_model_id=whisper, llm_model_id=llm,
                                              prompt_size=8, qformer_intermediate_size=96),
                                  device="cpu")


@pytest.fixture(scope="module")
def encoder(model) -> RowEncoder:
    return RowEncoder(model.builder, max_transcript_tokens=100)


def test_manifests_from_files_and_directories(tmp_path):
    a = _write(tmp_path / "d" / "b" / "two.jsonl", [_row(2, 1)])
    b = _write(tmp_path / "d" / "a.jsonl", [_row(1, 1)])
    single = _write(tmp_path / "single.jsonl", [_row(0, 1)])
    assert manifest_files([single, tmp_path / "d"]) == [single, b, a]
    # A `desta data generate` output folder: its failure logs are not rows.
    (tmp_path / "d" / "shard-0-of-1.failures.jsonl").write_text('{"id": "x", "error": "e"}\n')
    (tmp_path / "d" / "failures.jsonl").write_text('{"id": "x", "error": "e"}\n')
    assert manifest_files([tmp_path / "d"]) == [b, a]
    with pytest.raises(ConfigError, match="does not exist"):
        manifest_files([tmp_path / "missing.jsonl"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no \\*.jsonl"):
        manifest_files([tmp_path / "empty"])


def test_rows_are_streamed_and_bad_lines_are_located(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(_row(0, 1)) + "\n\n" + "{not json\n")
    rows = iter_rows([path])
    assert next(rows).id == "r0"  # read before the bad line is reached: lazy
    with pytest.raises(ConfigError, match=r"m.jsonl:3: not valid JSON"):
        next(rows)
    path.write_text(json.dumps({"id": "x"}) + "\n")
    with pytest.raises(ConfigError, match=r"m.jsonl:1: missing 'messages'"):
        list(iter_rows([path]))


def test_row_length_is_the_assembled_length(model, encoder, tmp_path):
    rows = list(iter_rows([_write(tmp_path / "m.jsonl", [_row(0, 3), _row(1, 17)])]))
    batch = model.builder.build([encoder.conversation(r) for r in rows],
                                [[encoder.transcript_ids("hello")]] * 2)
    assert [encoder.length(r) for r in rows] == batch.attention_mask.sum(1).tolist()
    bad = list(iter_rows([_write(tmp_path / "bad.jsonl", [{**_row(2, 1), "messages": [
        {"role": "user", "content": "no locator", "audios": [{"audio": "a.wav"}]},
        {"role": "assistant", "content": "x"}]}])]))[0]
    with pytest.raises(MessageError, match=r"bad.jsonl:1 \(id r2\).*locator"):
        encoder.length(bad)


def test_length_bucketing_cuts_padding_keeps_every_row_and_drops_long_ones(encoder, tmp_path):
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 60, size=64).tolist() + [400]  # the last is over the limit
    path = _write(tmp_path / "m.jsonl", [_row(i, n) for i, n in enumerate(sizes)])
    lengths = {r.id: encoder.length(r) for r in iter_rows([path])}
    limit = max(v for k, v in lengths.items() if k != "r64")

    def padding(batches):
        return sum(max(lengths[r.id] for r in b) * len(b) - sum(lengths[r.id] for r in b)
                   for b in batches)

    bucketed = list(plan_batches(iter_rows([path]), length_of=encoder.length, batch_size=8,
                                 bucket_rows=64, max_length=limit,
                                 rng=np.random.default_rng(1)))
    ids = sorted(r.id for b in bucketed for r in b)
    assert ids == sorted(f"r{i}" for i in range(64))  # each kept row exactly once, r64 dropped
    assert all(len(b) == 8 for b in bucketed)
    rows = list(iter_rows([path]))[:64]
    in_order = [rows[i:i + 8] for i in range(0, 64, 8)]
    assert padding(bucketed) < 0.3 * padding(in_order)
    again = list(plan_batches(iter_rows([path]), length_of=encoder.length, batch_size=8,
                              bucket_rows=64, max_length=limit, rng=np.random.default_rng(1)))
    assert [[r.id for r in b] for b in again] == [[r.id for r in b] for b in bucketed]


def test_sharding_and_resume_position(encoder, tmp_path):
    path = _write(tmp_path / "m.jsonl", [_row(i, i % 7 + 1) for i in range(22)])
    collator = Collator(encoder, None, tmp_path)

    def plan(rank, world, skip=0):
        ds = TrainBatches([path], collator=collator, batch_size=2, bucket_rows=6,
                          max_length=1000, seed=3, epoch=1, rank=rank, world=world, skip=skip)
        return [[r.id for r in b] for b in ds.plan()]

    whole = plan(0, 1)
    ranks = [plan(r, 3) for r in range(3)]
    assert len({len(p) for p in ranks}) == 1  # same number of steps on every process
    assert ranks[0] == whole[0::3][: len(ranks[0])] and ranks[2] == whole[2::3][: len(ranks[0])]
    seen = [i for p in ranks for b in p for i in b]
    assert len(seen) == len(set(seen))  # no row on two processes
    assert plan(1, 3, skip=2) == ranks[1][2:]
    assert plan(0, 1) == whole  # deterministic
    other_epoch = TrainBatches([path], collator=collator, batch_size=2, bucket_rows=6,
                               max_length=1000, seed=3, epoch=2, rank=0, world=1)
    assert [[r.id for r in b] for b in other_epoch.plan()] != whole
    assert list(shard(iter([[1], [2], [3]]), 1, 2)) == [[2]]


def test_collation_matches_model_prepare(model, encoder, speech_clip, noise_clip, tmp_path):
    speech, text = speech_clip
    rows_data = [_row(0, 4, audio=speech.name, text=text),
                 _row(1, 9, audio=noise_clip.name, text=None)]  # no text: VAD decides
    root = speech.parent
    assert noise_clip.parent == root
    rows = list(iter_rows([_write(tmp_path / "m.jsonl", rows_data)]))
    collated = Collator(encoder, model.processor.feature_extractor, root)(rows)
    assert sorted(collated.waves) == [1]  # only the clip without text waits for ASR
    ours = collated.to_prepared(model, encoder)
    messages = [[{**m, "audios": [{**a, "audio": str(root / a["audio"])} for a in m["audios"]]}
                 if "audios" in m else m for m in r["messages"]] for r in rows_data]
    ref = model.prepare(messages, for_training=True, max_transcript_tokens=100)
    assert ours.transcripts == ref.transcripts == [[text], [" "]]
    assert torch.equal(ours.batch.input_ids, ref.batch.input_ids)
    assert torch.equal(ours.batch.labels, ref.batch.labels)
    assert torch.equal(ours.input_features, ref.input_features)
    assert model(ours).loss.isfinite()


def test_missing_audio_names_the_row(encoder, model, tmp_path):
    rows = list(iter_rows([_write(tmp_path / "m.jsonl", [_row(0, 2, audio="nope.wav")])]))
    with pytest.raises(Exception, match=r"m.jsonl:1.*nope.wav"):
        Collator(encoder, model.processor.feature_extractor, tmp_path)(rows)


@pytest.mark.parametrize("prediction, label, expected", [
    ("The speaker says: Hello, World!", "hello world", True),
    ("I heard HELLO   there, world", "hello world", False),  # not contiguous
    ("The answer is (b) Female.", "(b) female", True),
    ("female", "(b) female speaker", False),
    ("anything", "", False),
])
def test_consecutive_words(prediction, label, expected):
    assert consecutive_words_match(prediction, label) is expected


def test_consecutive_words_accuracy():
    assert consecutive_words_accuracy(["a dog barks", "a cat"], ["dog barks", "dog"]) == 0.5
    with pytest.raises(ValueError):
        consecutive_words_accuracy(["x"], [])

"""`desta data generate`: rows from the embedded backbone; sharding, resume after kill -9,
failures, and the rows' fit with `DestaModel.prepare(..., for_training=True)`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from desta.data.backends import Conversation, SamplingParams, TransformersBackend
from desta.data.generate import (
    BACKBONE_TEMPLATE,
    ROW_FIELDS,
    GenerateConfig,
    available_attributes,
    backbone_messages,
    repair_jsonl,
    resolve_audio_paths,
    run_generation,
    select_shard,
    shard_of,
    shard_paths,
)
from desta.data.instructions import InstructionPool
from desta.data.seed import ClipRecord, read_manifest, seed_description, write_manifest
from desta.data.summary import summarize
from desta.data.synth import build_synth_corpus
from desta.errors import DestaError

MAX_NEW_TOKENS = 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen_corpus")
    build_synth_corpus(out, size=6, seed=11, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def backend() -> TransformersBackend:
    return TransformersBackend(params=SamplingParams(max_new_tokens=MAX_NEW_TOKENS),
                               batch_size=3)


@pytest.fixture(scope="module")
def pool() -> InstructionPool:
    return InstructionPool.load()


class EchoBackend:
    """A tiny deterministic engine (no model): answers with the prompt's last line reversed.
    Items whose conversation mentions `fail_on` raise, like an engine refusing a request."""

    name = "echo"
    model_name = "echo"

    def __init__(self, batch_size: int = 4, fail_on: str | None = None) -> None:
        self.batch_size = batch_size
        self.fail_on = fail_on
        self.calls = 0

    def generate(self, conversations: Sequence[Conversation], seeds: Sequence[int]
                 ) -> list[str | BaseException]:
        self.calls += 1
        out: list[str | BaseException] = []
        for conv in conversations:
            text = conv[-1]["content"]
            if self.fail_on and self.fail_on in text:
                out.append(RuntimeError(f"engine refused: {self.fail_on}"))
            else:
                out.append(text.splitlines()[-1][::-1])
        return out

    def close(self) -> None:
        pass


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _records(n: int) -> list[ClipRecord]:
    return [ClipRecord(id=f"fake/{i:03d}", audio=f"audio/{i:03d}.wav", dataset=f"set{i % 2}",
                       domain=("speech", "sound", "music")[i % 3], duration=1.0 + i % 4,
                       transcript="hello there" if i % 3 == 0 else None,
                       attributes={"Gender": "Male"} if i % 3 == 0 else {"Audio category": "x"})
            for i in range(n)]


# ---- the real backbone ---------------------------------------------------------------------------


def test_rows_from_the_embedded_backbone_are_valid_training_rows(
        corpus: Path, backend: TransformersBackend, pool: InstructionPool,
        tmp_path: Path) -> None:
    config = GenerateConfig(manifest=corpus / "manifest.jsonl", out_dir=tmp_path, seed=5,
                            data_root=corpus, progress=False)
    report = run_generation(config, backend, pool)
    assert (report.written, report.failed, report.total) == (6, 0, 6)
    records = {r.id: r for r in read_manifest(corpus / "manifest.jsonl")}
    rows = _rows(tmp_path / "shard-0-of-1.jsonl")
    assert [r["id"] for r in rows] == list(records)
    for row in rows:
        rec = records[row["id"]]
        assert tuple(row) == ROW_FIELDS
        assert row["dataset"] == rec.dataset
        assert row["seed_description"] == seed_description(rec)
        assert row["prompt"] in {i.text for i in pool.candidates(rec.domain)}
        assert row["prompt"] == pool.sample(rec.domain, 5, key=rec.id,
                                            available=available_attributes(rec)).text
        assert row["response"].strip()
        user, assistant = row["messages"]
        assert user == {"role": "user",
                        "content": f"<start_audio><|AUDIO|><end_audio>\n{row['prompt']}",
                        "audios": [{"audio": rec.audio, "text": rec.transcript}]}
        assert assistant == {"role": "assistant", "content": row["response"]}
    # The response is the backbone's own answer to the seed description + prompt.
    first = rows[0]
    alone = backend.generate([backbone_messages(first["seed_description"], first["prompt"])],
                             [0])
    assert alone == [first["response"]]
    summary = summarize(tmp_path)  # finds the manifest through generation.json
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert summary["rows"] == 6 and summary["failures"] == 0
    assert sum(summary["rows_per_domain"].values()) == 6
    assert "unknown" not in summary["rows_per_domain"]
    assert (tmp_path / "response_lengths.png").stat().st_size > 1000

    # The training side reads the rows as they are (audio resolved under the data root).
    from desta.model import DestaModel

    model = DestaModel.from_config(device="cpu")
    convs = [resolve_audio_paths(r["messages"], corpus) for r in rows]
    prepared = model.prepare(convs, for_training=True)
    labels = prepared.batch.labels
    assert labels is not None and labels.shape[0] == 6
    for i, row in enumerate(rows):
        target = model.tokenizer(row["response"], add_special_tokens=False)["input_ids"]
        assert int((labels[i] != -100).sum()) == len(target) + 1  # response + EOS


def test_backbone_sees_the_seed_description_in_place_of_the_audio() -> None:
    conv = backbone_messages("[00:00-00:02] hi (Gender: Male, Duration: 2s)", "Who speaks?")
    assert conv == [{"role": "user", "content": "<start_audio>[00:00-00:02] hi (Gender: Male, "
                                                "Duration: 2s)<end_audio>\nWho speaks?"}]
    assert BACKBONE_TEMPLATE.replace("{seed_description}", "<|AUDIO|>").format(prompt="p") == \
        "<start_audio><|AUDIO|><end_audio>\np"
    with_system = backbone_messages("d", "p", system_prompt="Be brief.")
    assert with_system[0] == {"role": "system", "content": "Be brief."}


def test_resume_after_sigkill_loses_and_duplicates_nothing(
        corpus: Path, backend: TransformersBackend, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "desta.cli", "data", "generate", "--manifest",
           str(corpus / "manifest.jsonl"), "--out", str(out), "--batch-size", "1",
           "--max-new-tokens", str(MAX_NEW_TOKENS), "--seed", "5", "--no-progress"]
    rows_path = out / "shard-0-of-1.jsonl"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if rows_path.exists() and rows_path.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"generate ended before the kill: {proc.stderr.read()!r}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    before = rows_path.read_bytes()
    kept = before[: before.rfind(b"\n") + 1]
    n_kept = kept.count(b"\n")
    assert 2 <= n_kept < 6
    # A kill in the middle of a write leaves half a line: make sure the file ends torn.
    with rows_path.open("ab") as fh:
        fh.write(b'{"id": "synth/torn-row", "response": "half a li')
    config = GenerateConfig(manifest=corpus / "manifest.jsonl", out_dir=out, seed=5,
                            progress=False)
    report = run_generation(config, backend)
    assert report.already_done == n_kept and report.written == 6 - n_kept
    after = rows_path.read_bytes()
    assert after.startswith(kept)  # finished rows untouched
    ids = [r["id"] for r in _rows(rows_path)]
    assert sorted(ids) == sorted(r.id for r in read_manifest(corpus / "manifest.jsonl"))
    assert "synth/torn-row" not in ids


# ---- the machinery, with a deterministic engine ------------------------------------------------


def test_shards_cover_every_id_exactly_once(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    records = _records(40)
    write_manifest(manifest, records)
    out = tmp_path / "out"
    for index in range(3):
        config = GenerateConfig(manifest=manifest, out_dir=out, num_shards=3, shard_index=index,
                                progress=False)
        run_generation(config, EchoBackend())
    seen: list[str] = []
    for index in range(3):
        ids = [r["id"] for r in _rows(shard_paths(out, index, 3)[0])]
        assert all(shard_of(i, 3) == index for i in ids)
        assert ids == [r.id for r in select_shard(records, 3, index)]  # manifest order
        seen += ids
    assert sorted(seen) == sorted(r.id for r in records)
    assert len(set(seen)) == len(seen)
    sizes = [len(_rows(shard_paths(out, i, 3)[0])) for i in range(3)]
    assert min(sizes) >= 5  # the hash spreads ids over the shards
    assert summarize(out)["rows"] == 40


def test_failures_are_recorded_retried_and_cleared(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    records = _records(9)
    bad_seed = ClipRecord(id="fake/nothing", audio="a.wav", dataset="set9", domain="sound",
                          duration=2.0, duration_style="none")  # nothing to describe
    write_manifest(manifest, [*records, bad_seed])
    out = tmp_path / "out"
    config = GenerateConfig(manifest=manifest, out_dir=out, progress=False)
    # The engine refuses every speech clip (their seed descriptions say "Gender").
    report = run_generation(config, EchoBackend(fail_on="Gender"))
    speech_ids = {r.id for r in records if r.domain == "speech"}
    assert report.failed == len(speech_ids) + 1
    assert report.written == 9 - len(speech_ids)
    summary = summarize(out, manifest)
    failures = {f["id"]: f for f in _rows(out / "failures.jsonl")}
    assert set(failures) == speech_ids | {"fake/nothing"}
    assert failures["fake/nothing"]["stage"] == "seed_description"
    assert "nothing to describe" in failures["fake/nothing"]["error"]
    assert all("engine refused" in failures[i]["error"] for i in speech_ids)
    assert summary["failures"] == len(failures)
    assert summary["failures_per_stage"] == {"generate": len(speech_ids), "seed_description": 1}

    # A rerun with a working engine retries exactly the failed items.
    report = run_generation(config, EchoBackend())
    assert (report.already_done, report.written, report.failed) == (9 - len(speech_ids),
                                                                    len(speech_ids), 1)
    summary = summarize(out, manifest)
    assert summary["rows"] == 9 and summary["failed_ids"] == ["fake/nothing"]


def test_missing_audio_under_the_data_root_is_a_failure(tmp_path: Path) -> None:
    (tmp_path / "audio").mkdir()
    records = _records(2)
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / records[0].audio, np.zeros(1600, dtype=np.float32), 16_000)
    write_manifest(tmp_path / "m.jsonl", records)
    config = GenerateConfig(manifest=tmp_path / "m.jsonl", out_dir=tmp_path / "out",
                            data_root=tmp_path, progress=False)
    report = run_generation(config, EchoBackend())
    assert report.written == 1 and report.failure_ids == [records[1].id]
    fail = _rows(tmp_path / "out" / "shard-0-of-1.failures.jsonl")[0]
    assert fail["stage"] == "audio" and "does not exist" in fail["error"]


def test_batch_error_falls_back_to_single_items(tmp_path: Path) -> None:
    class Fragile(EchoBackend):
        def generate(self, conversations, seeds):  # type: ignore[override]
            if len(conversations) > 1:
                raise MemoryError("batch too large")
            return super().generate(conversations, seeds)

    write_manifest(tmp_path / "m.jsonl", _records(5))
    config = GenerateConfig(manifest=tmp_path / "m.jsonl", out_dir=tmp_path / "out",
                            progress=False)
    report = run_generation(config, Fragile(batch_size=5))
    assert report.written == 5 and report.failed == 0


def test_torn_tail_is_cut_and_complete_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "c", "resp')
    assert [r["id"] for r in repair_jsonl(path)] == ["a", "b"]
    assert path.read_bytes() == b'{"id": "a"}\n{"id": "b"}\n'
    path.write_bytes(b'{"id": "a"}\nnot json\n')
    with pytest.raises(DestaError, match=r"rows.jsonl:2"):
        repair_jsonl(path)


def test_a_shard_cannot_be_written_by_two_runs_at_once(tmp_path: Path) -> None:
    import fcntl

    write_manifest(tmp_path / "m.jsonl", _records(2))
    out = tmp_path / "out"
    out.mkdir()
    lock = shard_paths(out, 0, 1)[2]
    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # held by "another process" (another open file)
        config = GenerateConfig(manifest=tmp_path / "m.jsonl", out_dir=out, progress=False)
        with pytest.raises(DestaError, match="another process"):
            run_generation(config, EchoBackend())


def test_bad_shard_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DestaError, match="--shard-index"):
        GenerateConfig(manifest=tmp_path / "m.jsonl", out_dir=tmp_path, num_shards=2,
                       shard_index=2)


# ---- recipe -> manifest ----------------------------------------------------------------------


def test_manifest_from_a_recipe_measures_durations_and_attributes(tmp_path: Path) -> None:
    import soundfile as sf

    from desta.cli import main as desta_main
    from recipe_fixtures import build_librispeech

    root = build_librispeech(tmp_path / "data")
    bad = next((root / "LibriSpeech" / "dev-clean" / "174").rglob("*.flac"))
    bad.write_bytes(b"not audio")  # an unreadable clip must be reported, not dropped
    out = tmp_path / "m.jsonl"
    assert desta_main(["data", "manifest", "librispeech", "--root", str(root), "--split", "dev-clean",
                      "--out", str(out), "--no-progress"]) == 0
    records = read_manifest(out)
    assert [r.id for r in records] and len(records) == 2
    for rec in records:
        assert not Path(rec.audio).is_absolute()
        info = sf.info(root / rec.audio)
        assert rec.duration == pytest.approx(info.frames / info.samplerate)
        assert rec.attributes["Gender"] == "Female"  # the dataset's label is kept
        assert {"Volume", "Speaking speed"} <= set(rec.attributes)
        seed_description(rec)  # complete enough to describe
    failures = _rows(tmp_path / "m.failures.jsonl")
    assert len(failures) == 1 and failures[0]["audio"].endswith(bad.name)
    assert "AudioError" in failures[0]["error"]


# ---- answers checked against the labels -------------------------------------------------------


class ScriptedBackend(EchoBackend):
    """Answers each conversation with the next scripted answer for its seed description (a
    stand-in engine, so the test controls which answers contradict the labels)."""

    def __init__(self, script: dict[str, list[str]], batch_size: int = 4) -> None:
        super().__init__(batch_size)
        self.script = {k: list(v) for k, v in script.items()}

    def generate(self, conversations, seeds):  # type: ignore[override]
        self.calls += 1
        out = []
        for conv in conversations:
            key = next(k for k in self.script if k in conv[-1]["content"])
            out.append(self.script[key].pop(0) if self.script[key] else "no answer")
        return out


def test_contradicting_answers_are_asked_again_then_dropped(tmp_path: Path) -> None:
    from desta.data.generate import GenerateConfig, run_generation
    from desta.data.seed import write_manifest

    records = [ClipRecord(id=f"g/{i}", audio=f"{i}.wav", dataset="g", domain="speech",
                          duration=2.0 + i, attributes={"Gender": gender, "Language": "Czech"})
               for i, gender in enumerate(["Female", "Male", "Female"])]
    write_manifest(tmp_path / "m.jsonl", records)
    seeds = {r.id: seed_description(r) for r in records}
    greedy = ScriptedBackend({seeds["g/0"]: ["The speaker is a woman."],
                              seeds["g/1"]: ["The speaker is a woman."],
                              seeds["g/2"]: ["This man speaks English."]})
    retry = ScriptedBackend({seeds["g/0"]: [], seeds["g/1"]: ["A man is talking."],
                             seeds["g/2"]: ["A man.", "It is a woman speaking English.",
                                            "Some man."]})
    config = GenerateConfig(manifest=tmp_path / "m.jsonl", out_dir=tmp_path / "out",
                            progress=False, verify_answers=True, verify_retries=3,
                            kind_weights={"describe": 1.0})  # prompts that ask nothing
    pool = InstructionPool.load()
    report = run_generation(config, greedy, pool, retry_backend=retry)
    rows = {r["id"]: r["response"] for r in _rows(tmp_path / "out" / "shard-0-of-1.jsonl")}
    assert rows == {"g/0": "The speaker is a woman.", "g/1": "A man is talking."}
    (failure,) = _rows(tmp_path / "out" / "shard-0-of-1.failures.jsonl")
    assert failure["id"] == "g/2" and failure["stage"] == "verify"
    assert "after 3 sampled retries" in failure["error"] and report.failed == 1
    assert retry.calls == 3  # g/1 settled on the first retry, g/2 used all three


def test_verified_rows_from_the_real_backbone_never_contradict_their_labels(
        backend: TransformersBackend, tmp_path: Path) -> None:
    """SmolLM2-135M misreads `Gender:` in a seed description often; with verification on,
    what reaches the rows agrees with every label (and the rest are failures, not rows)."""
    from desta.data.answer_check import contradiction
    from desta.data.backends import SamplingParams, TransformersBackend
    from desta.data.generate import GenerateConfig, run_generation
    from desta.data.seed import write_manifest

    records = [ClipRecord(id=f"v/{i}", audio=f"{i}.wav", dataset="v", domain="speech",
                          duration=2.0, attributes={"Language": "English",
                                                    "Gender": ("Female", "Male")[i % 2]},
                          transcript="please call me back")
               for i in range(6)]
    write_manifest(tmp_path / "m.jsonl", records)
    retry = TransformersBackend(params=SamplingParams(max_new_tokens=MAX_NEW_TOKENS,
                                                      do_sample=True), batch_size=3)
    config = GenerateConfig(manifest=tmp_path / "m.jsonl", out_dir=tmp_path / "out",
                            progress=False, verify_answers=True, verify_retries=1,
                            kind_weights={"attribute": 1.0})
    report = run_generation(config, backend, retry_backend=retry)
    rows = _rows(tmp_path / "out" / "shard-0-of-1.jsonl")
    by_id = {r.id: r for r in records}
    assert report.written + report.failed == 6 and len(rows) == report.written
    asks = {i.text: i.requires for i in InstructionPool.load()}
    for row in rows:
        assert contradiction(by_id[row["id"]].attributes, row["response"],
                             asked=asks[row["prompt"]]) is None

"""Data stage against hostile or damaged inputs, on real files: metadata symlinked out of the
data root, symlink loops in a dataset tree, manifests with invalid UTF-8, audio paths that
leave the data root, and empty, corrupt or frameless clips (checked from the header, all
reported at once with their manifest lines)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desta.data.generate import GenerateConfig, run_generation
from desta.data.recipes import DatasetError, get_recipe
from desta.data.recipes.paths import resolve_under
from desta.data.seed import ClipRecord, ManifestError, read_manifest, write_manifest
from recipe_fixtures import build_esc50, build_speech_commands
from test_data_generate import EchoBackend

SECRET = "SECRET-FIRST-LINE-OF-A-PRIVATE-FILE"


def private_file(tmp_path: Path) -> Path:
    """A file outside every data root, whose first line must never be shown."""
    path = tmp_path / "private" / "notes.txt"
    path.parent.mkdir()
    path.write_text(f"{SECRET}\nmore private text\n")
    return path


# ---- recipes: metadata outside the root, symlink loops --------------------------------------
def test_a_metadata_table_symlinked_out_of_the_root_is_refused_unread(tmp_path: Path) -> None:
    root = build_esc50(tmp_path / "data")
    table = root / "meta" / "esc50.csv"
    table.unlink()
    table.symlink_to(private_file(tmp_path))
    with pytest.raises(DatasetError) as excinfo:
        list(get_recipe("esc50")(root))
    message = str(excinfo.value)
    assert "outside the data root" in message and str(table) in message
    assert SECRET not in message


def test_a_line_list_symlinked_out_of_the_root_is_refused_unread(tmp_path: Path) -> None:
    root = build_speech_commands(tmp_path / "data")
    listed = root / "validation_list.txt"
    listed.unlink()
    listed.symlink_to(private_file(tmp_path))
    with pytest.raises(DatasetError) as excinfo:
        list(get_recipe("speech_commands")(root, split="validation"))
    assert "outside the data root" in str(excinfo.value)
    assert SECRET not in str(excinfo.value)


def test_a_metadata_symlink_inside_the_root_is_fine(tmp_path: Path) -> None:
    root = build_esc50(tmp_path / "data")
    table = root / "meta" / "esc50.csv"
    moved = root / "meta" / "original.csv"
    table.rename(moved)
    table.symlink_to(moved)
    assert len(list(get_recipe("esc50")(root))) == 3


def test_metadata_outside_the_root_can_still_be_read_outside_a_recipe(tmp_path: Path) -> None:
    """The check belongs to a running recipe: the helpers themselves still read any file
    (other tools use them on files they name on purpose)."""
    from desta.data.recipes.metadata import iter_lines

    path = private_file(tmp_path)
    assert [line for _, line in iter_lines(path, "tool", "notes")][0] == SECRET


def test_symlink_loops_in_a_dataset_tree_are_skipped(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    root = build_speech_commands(tmp_path / "data")
    (root / "loop").symlink_to(root / "loop")  # a folder entry that points at itself
    (root / "yes" / "a.wav").symlink_to(root / "yes" / "b.wav")
    (root / "yes" / "b.wav").symlink_to(root / "yes" / "a.wav")
    with caplog.at_level(logging.WARNING):
        records = list(get_recipe("speech_commands")(root))
    assert sorted(r["id"] for r in records) == [
        "speech_commands/no/0a7c2a8d_nohash_0", "speech_commands/yes/0a7c2a8d_nohash_0",
        "speech_commands/yes/0b09edd3_nohash_1"]
    for name in ("loop", "a.wav", "b.wav"):
        assert f"skipping {root}" in caplog.text and name in caplog.text
    with pytest.raises(DatasetError, match="symlink loop"):
        resolve_under(root, "yes", "a.wav", source="list.txt:3")


# ---- manifests ------------------------------------------------------------------------------
def clip_record(i: int, audio: str) -> ClipRecord:
    return ClipRecord(id=f"clip/{i}", audio=audio, dataset="set", domain="sound",
                      duration=0.5, attributes={"Audio category": "tone"})


def test_invalid_utf8_in_a_manifest_names_the_file_and_line(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, [clip_record(0, "a.wav")])
    with manifest.open("ab") as fh:
        fh.write(b'{"id": "clip/1", "audio": "caf\xe9.wav"}\n')  # Latin-1, not UTF-8
    with pytest.raises(ManifestError) as excinfo:
        read_manifest(manifest)
    assert f"{manifest}:2:" in str(excinfo.value) and "UTF-8" in str(excinfo.value)


def test_a_json_bomb_in_a_manifest_names_the_line(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "a", "duration": ' + "9" * 5000 + "}\n" + "[" * 100_000 + "\n")
    with pytest.raises(ManifestError, match=rf"{manifest}:1: manifest line is not valid JSON"):
        read_manifest(manifest)


def write_tone(path: Path, seconds: float = 0.5) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(16_000 * seconds)) / 16_000
    sf.write(path, (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 16_000)
    return path


def test_generate_refuses_audio_paths_that_leave_the_data_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_tone(root / "audio" / "good.wav")
    outside = write_tone(tmp_path / "outside.wav")  # a real clip, but not the dataset's
    (root / "audio" / "link.wav").symlink_to(outside)
    records = [clip_record(0, "audio/good.wav"), clip_record(1, "../outside.wav"),
               clip_record(2, "audio/../../outside.wav"), clip_record(3, str(outside)),
               clip_record(4, "audio/link.wav")]
    write_manifest(tmp_path / "m.jsonl", records)
    out = tmp_path / "out"
    report = run_generation(GenerateConfig(manifest=tmp_path / "m.jsonl", out_dir=out,
                                           data_root=root, progress=False), EchoBackend())
    assert report.written == 1 and sorted(report.failure_ids) == [f"clip/{i}" for i in (1, 2, 3, 4)]
    rows = [json.loads(line) for line in (out / "shard-0-of-1.jsonl").read_text().splitlines()]
    assert rows[0]["messages"][0]["audios"][0]["audio"] == "audio/good.wav"
    errors = {f["id"]: f["error"] for f in map(json.loads, (
        out / "shard-0-of-1.failures.jsonl").read_text().splitlines())}
    assert "m.jsonl:2:" in errors["clip/1"] and "'..'" in errors["clip/1"]
    assert "m.jsonl:3:" in errors["clip/2"] and "'..'" in errors["clip/2"]
    assert "m.jsonl:4:" in errors["clip/3"] and "outside the data root" in errors["clip/3"]
    assert "m.jsonl:5:" in errors["clip/4"] and "outside the data root" in errors["clip/4"]


def test_generate_checks_every_clip_header_and_reports_all_bad_rows_at_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "root"
    write_tone(root / "good.wav")
    (root / "empty.wav").write_bytes(b"")
    (root / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    sf.write(root / "frameless.wav", np.zeros(0, dtype=np.float32), 16_000)  # header only
    write_tone(root / "good2.wav")
    names = ["good", "empty", "corrupt", "frameless", "missing", "good2"]
    write_manifest(tmp_path / "m.jsonl",
                   [clip_record(i, f"{name}.wav") for i, name in enumerate(names)])
    backend = EchoBackend()
    with caplog.at_level(logging.ERROR):
        report = run_generation(GenerateConfig(manifest=tmp_path / "m.jsonl",
                                               out_dir=tmp_path / "out", data_root=root,
                                               progress=False), backend)
    assert report.written == 2 and report.failed == 4
    assert sorted(report.failure_ids) == ["clip/1", "clip/2", "clip/3", "clip/4"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # one message for all of them
    text = errors[0].getMessage()
    assert "4 of 6 clip(s)" in text
    for line, name in zip((2, 3, 4, 5), ("empty", "corrupt", "frameless", "missing"),
                          strict=True):
        assert f"m.jsonl:{line}:" in text and f"{name}.wav" in text
    # The bad rows are retried: a rerun checks them again, generates nothing twice.
    write_tone(root / "missing.wav")
    again = run_generation(GenerateConfig(manifest=tmp_path / "m.jsonl",
                                          out_dir=tmp_path / "out", data_root=root,
                                          progress=False), backend)
    assert (again.already_done, again.written, again.failed) == (2, 1, 3)

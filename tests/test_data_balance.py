"""Rows balanced per prompt over an attribute's labels, so no prompt predicts its answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from desta.data.balance import balance_rows, label_of

ASK = "Is the speaker male or female?"


def _row(i: int, gender: str | None, prompt: str) -> dict:
    attrs = f"Language: Czech, Gender: {gender}" if gender else "Language: Czech"
    return {"id": f"r{i}", "seed_description": f"[00:00-00:02] ({attrs}, Duration: 2s)",
            "prompt": prompt, "response": "x",
            "messages": [{"role": "user", "content": f"<|AUDIO|>\n{prompt}",
                          "audios": [{"audio": "a.wav", "text": None}]},
                         {"role": "assistant", "content": "x"}]}


def test_label_of_reads_the_seed_description():
    assert label_of("[00:00-00:02] hi (Gender: Female, Duration: 2s)", "Gender") == "Female"
    assert label_of("[00:00-00:02] (Language: Dutch)", "Gender") is None
    assert label_of("[00:00-00:02] (Noise Gender: x, Duration: 2s)", "Gender") is None


def test_each_asking_prompt_keeps_equal_labels_and_the_rest_passes():
    rows = ([_row(i, "Male", ASK) for i in range(7)] + [_row(7 + i, "Female", ASK)
                                                         for i in range(3)]
            + [_row(20 + i, "Male", "Describe the audio.") for i in range(5)]
            + [_row(30, None, ASK)])  # no label: passes through
    kept, report = balance_rows(rows, "Gender", {ASK}, seed=0)
    asked = [r for r in kept if r["prompt"] == ASK and "Gender" in r["seed_description"]]
    assert sorted(label_of(r["seed_description"], "Gender") for r in asked) == \
        ["Female"] * 3 + ["Male"] * 3
    assert sum(r["prompt"] == "Describe the audio." for r in kept) == 5
    assert any(r["id"] == "r30" for r in kept)
    assert report[ASK] == {"before": {"Female": 3, "Male": 7}, "after": {"Female": 3, "Male": 3}}
    assert [r["id"] for r in kept] == [r["id"] for r in rows if r in kept]  # order kept
    assert balance_rows(rows, "Gender", {ASK}, seed=0)[0] == kept  # seeded
    # A prompt answered for one label only teaches nothing about the audio: dropped.
    only_male = [_row(i, "Male", ASK) for i in range(4)]
    assert balance_rows(only_male, "Gender", {ASK})[0] == []


def test_cli_writes_balanced_rows_and_report(tmp_path):
    folder = tmp_path / "rows"
    folder.mkdir()
    rows = [_row(i, "Male" if i < 6 else "Female", ASK) for i in range(8)]
    (folder / "shard-0-of-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "shard-0-of-1.failures.jsonl").write_text('{"id": "z", "error": "e"}\n')
    out = subprocess.run([sys.executable, "-m", "desta.cli", "data", "balance", "--rows",
                          str(folder), "--attribute", "Gender", "--out", str(tmp_path / "b")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    kept = [json.loads(x) for x in (tmp_path / "b" / "balanced.jsonl").read_text().splitlines()]
    assert len(kept) == 4
    report = json.loads((tmp_path / "b" / "balance.json").read_text())
    assert report["per_prompt"][ASK]["before"] == {"Female": 2, "Male": 6}
    assert Path(tmp_path / "b" / "balanced.jsonl").is_file()

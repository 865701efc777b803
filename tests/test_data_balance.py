"""Rows balanced per prompt over an attribute's labels, so no prompt predicts its answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from desta.data.balance import balance_rows, label_of, prompt_skew
from desta.errors import ConfigError

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


def test_max_words_cuts_before_balancing_so_the_cut_cannot_unbalance():
    # Female answers are longer: cut after balancing, 3 female and 6 male would be left.
    rows = ([dict(_row(i, "Male", ASK), response="Male.") for i in range(6)]
            + [dict(_row(6 + i, "Female", ASK), response="The speaker sounds female to me, "
                    "with a clear and bright voice.") for i in range(3)]
            + [dict(_row(9 + i, "Female", ASK), response="Female.") for i in range(3)]
            + [dict(_row(20, None, "Describe the audio."), response=" ".join(["w"] * 30))])
    kept, report = balance_rows(rows, "Gender", {ASK}, seed=0, max_words=10)
    asked = [label_of(r["seed_description"], "Gender") for r in kept if r["prompt"] == ASK]
    assert sorted(asked) == ["Female"] * 3 + ["Male"] * 3
    assert all(len(r["response"].split()) <= 10 for r in kept if r["prompt"] == ASK)
    assert report[ASK]["before"] == {"Female": 3, "Male": 6}
    assert any(r["id"] == "r20" for r in kept)  # not asking about Gender: never cut
    with pytest.raises(ConfigError, match="max_words"):
        balance_rows(rows, "Gender", {ASK}, max_words=0)


def test_prompt_skew_names_prompts_that_predict_their_answer():
    other = "What is the gender of the speaker?"
    rows = ([_row(i, "Male", ASK) for i in range(18)] + [_row(18 + i, "Female", ASK)
                                                          for i in range(6)]
            + [_row(40 + i, "Male" if i % 2 else "Female", other) for i in range(30)]
            + [_row(80 + i, "Female", "Rare prompt?") for i in range(5)])
    assert prompt_skew(rows, "Gender", {ASK, other, "Rare prompt?"}) == \
        {ASK: {"Female": 6, "Male": 18}}  # 75 % male; the balanced and the rare one pass
    balanced, _ = balance_rows(rows, "Gender", {ASK, other})
    assert prompt_skew(balanced, "Gender", {ASK, other}) == {}
    # One label in all rows (a one-gender corpus): nothing to compare, no warning.
    assert prompt_skew([_row(i, "Male", ASK) for i in range(30)], "Gender", {ASK}) == {}


def test_trainer_warns_about_a_skewed_prompt(tmp_path, caplog):
    from desta.training.trainer import warn_prompt_skew

    rows = [_row(i, "Male" if i < 18 else "Female", ASK) for i in range(24)]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level("WARNING", logger="desta.training.trainer"):
        found = warn_prompt_skew([path])
    assert found == {"Gender": {ASK: {"Female": 6, "Male": 18}}}
    assert "desta data balance --attribute Gender" in caplog.text and ASK in caplog.text
    even = [_row(i, "Male" if i % 2 else "Female", ASK) for i in range(24)]
    path.write_text("".join(json.dumps(r) + "\n" for r in even))
    assert warn_prompt_skew([path]) == {}

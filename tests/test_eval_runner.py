"""The evaluation runner: prediction store, end-to-end on the embedded model over real
sakura-dev clips, resumability (limit, rerun, torn last line), scoring another system's file
through the `desta eval` command line, the Speech-IFEval backbone run, and the report."""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from desta.errors import DestaError
from desta.evaluation.cli import register
from desta.evaluation.records import BenchmarkDataError, BenchmarkFileNotFoundError
from desta.evaluation.registry import DEFAULT_SYSTEM, audio_question_messages, with_system_prompt
from desta.evaluation.report import markdown_report
from desta.evaluation.runner import PREDICTIONS_FILE, PredictionStore, evaluate
from desta.evaluation.sakura import read_sakura
from desta.evaluation.speech_ifeval import backbone_text_messages, read_speech_ifeval

SAKURA_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "sakura-dev"
FIXTURES = Path(__file__).parent / "fixtures" / "eval"


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="desta")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


# ---------------------------------------------------------------------------------------------
# prediction store
# ---------------------------------------------------------------------------------------------


def test_store_appends_and_reloads(tmp_path):
    store = PredictionStore(tmp_path / "sub" / "p.jsonl")
    assert store.load() == {}
    store.append([{"id": "a", "response": "x"}, {"id": "b", "response": "ü"}])
    store.append([{"id": "a", "response": "second copy is ignored"}])
    rows = store.load()
    assert list(rows) == ["a", "b"]
    assert rows["a"]["response"] == "x" and rows["b"]["response"] == "ü"


def test_store_cuts_a_torn_last_line_and_repairs_a_lost_newline(tmp_path):
    path = tmp_path / "p.jsonl"
    good = json.dumps({"id": "a", "response": "x"}) + "\n"
    path.write_text(good + '{"id": "b", "resp')  # killed mid-write
    assert list(PredictionStore(path).load()) == ["a"]
    assert path.read_text() == good  # the torn bytes are gone, so an append starts clean
    path.write_text(good + json.dumps({"id": "c", "response": "y"}))  # newline lost
    store = PredictionStore(path)
    assert list(store.load()) == ["a", "c"]
    store.append([{"id": "d", "response": "z"}])
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "c", "d"]


def test_store_rejects_a_bad_line_in_the_middle(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(BenchmarkDataError, match="line 2 is not valid JSON"):
        PredictionStore(path).load()
    path.write_text('{"no_id": 1}\n')
    with pytest.raises(BenchmarkDataError, match="'id'"):
        PredictionStore(path).load()


# ---------------------------------------------------------------------------------------------
# another system's predictions, through the command line (no model)
# ---------------------------------------------------------------------------------------------


def test_cli_scores_another_systems_mmau_file(tmp_path, capsys):
    """The official-format file of test_eval_mmau (hand-worked there): 6/11 with DeSTA's
    extracted prediction (derived from `model_output`), 5/11 on the official key."""
    out = tmp_path / "other"
    assert run_cli(["eval", "mmau", "--predictions",
                    str(FIXTURES / "mmau_predictions_other_system.json"), "--out", str(out)]) == 0
    scores = json.loads((out / "scores.json").read_text())
    assert scores["total"]["correct"] == 6 and scores["total"]["count"] == 11
    assert scores["task"]["speech"]["correct"] == 2
    assert re.search(r"^total +54.55$", capsys.readouterr().out, re.M)
    report = (out / "report.md").read_text()
    assert "| total | 54.55 |" in report and "57.50" in report and "66.00" in report
    assert (out / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / PREDICTIONS_FILE).exists()  # nothing generated

    out2 = tmp_path / "official_key"
    run_cli(["eval", "mmau", "--predictions", str(FIXTURES / "mmau_predictions_other_system.json"),
             "--out", str(out2), "--prediction-key", "model_output"])
    scores = json.loads((out2 / "scores.json").read_text())
    assert (scores["total"]["correct"], scores["no_prediction"]) == (5, 1)


def test_cli_errors_name_what_to_do(tmp_path):
    with pytest.raises(DestaError, match="--judge-url and --judge-model"):
        run_cli(["eval", "sakura", "--predictions", "x.jsonl", "--judge-url", "http://x/v1"])
    with pytest.raises(DestaError, match="give --data"):
        evaluate("sakura", model="embedded", out=tmp_path)
    with pytest.raises(DestaError, match="unknown benchmark"):
        evaluate("nope", predictions=tmp_path / "x")


def test_sakura_predictions_joined_to_the_data_by_id(tmp_path, sakura_subset):
    """Another system's rows carrying only id + response are joined to the benchmark items."""
    items = read_sakura(sakura_subset)
    answers = {items[0].id: "I think it is (b) Female", items[1].id: "no idea",
               items[2].id: items[2].reference, items[3].id: ""}
    path = tmp_path / "theirs.jsonl"
    path.write_text("".join(json.dumps({"id": k, "response": v}) + "\n"
                            for k, v in answers.items()))
    result = evaluate("sakura", data=sakura_subset, predictions=path, out=tmp_path / "o")
    expected = [items[0].reference == "(b) Female", False, True, False]
    assert [ok for _, ok in result.scores["results"]] == expected
    stray = tmp_path / "stray.jsonl"
    stray.write_text(json.dumps({"id": "Gender/nope.wav/single", "response": "x"}) + "\n")
    with pytest.raises(BenchmarkDataError, match="not an item"):
        evaluate("sakura", data=sakura_subset, predictions=stray)


def test_speech_ifeval_forgetting_from_given_backbone_rows(tmp_path):
    """Closed-ended rows hand-scored: the model follows 1 of 2, the backbone 2 of 2, so over
    the rule-based rates (no judge for CoT) delta = (50 - 100) / 100 = -50 %."""
    base = {"subset": "closed_ended_questions", "instruction_id_list":
            ["change_case:english_capital"], "kwargs": [{}], "instruction": "Say it loudly."}
    model_rows = [{**base, "id": "c:0", "response": "HELLO THERE"},
                  {**base, "id": "c:1", "response": "hello there"}]
    backbone_rows = [{**base, "id": "c:0", "response": "HELLO"},
                     {**base, "id": "c:1", "response": "WORLD"}]
    mp, bp = tmp_path / "m.jsonl", tmp_path / "b.jsonl"
    mp.write_text("".join(json.dumps(r) + "\n" for r in model_rows))
    bp.write_text("".join(json.dumps(r) + "\n" for r in backbone_rows))
    scores = evaluate("speech-ifeval", predictions=mp, backbone_predictions=bp).scores
    assert scores["subsets"]["closed_ended_questions"]["rate"] == 50.0
    assert scores["backbone"]["rule_rate"] == 100.0
    assert scores["ifrate"] is None  # CoT needs a judge
    assert scores["forgetting"]["delta"] == pytest.approx(-50.0)
    assert scores["forgetting"]["over"] == "rule_rate"


# ---------------------------------------------------------------------------------------------
# the embedded model on real sakura-dev clips
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def sakura_subset(tmp_path) -> Path:
    """A 4-item SAKURA layout: the first row of the real Gender and Animal tracks (2 questions
    each) with their real clips."""
    root = tmp_path / "sakura"
    for track in ("Gender", "Animal"):
        src = SAKURA_DEV / track
        with (src / "metadata.csv").open(newline="") as f:
            reader = csv.DictReader(f)
            row = next(reader)
            fields = reader.fieldnames
        (root / track / "audio").mkdir(parents=True)
        with (root / track / "metadata.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerow(row)
        shutil.copy(src / "audio" / row["file"], root / track / "audio" / row["file"])
    return root


@pytest.fixture(scope="module")
def model():
    from desta.model import DestaModel

    return DestaModel.from_config(device="cpu")


@pytest.mark.integration
def test_runner_end_to_end_resumable(tmp_path, sakura_subset, model):
    out = tmp_path / "run"
    items = read_sakura(sakura_subset)
    assert len(items) == 4
    settings = {"data": sakura_subset, "model": model, "out": out, "batch_size": 2,
                "max_new_tokens": 24, "progress": False}

    first = evaluate("sakura", limit=2, **settings)
    assert first.run["generated"] == 2 and first.scores["total"]["count"] == 2
    lines = (out / PREDICTIONS_FILE).read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [items[0].id, items[1].id]
    # greedy and deterministic: the stored answers are what generate gives for that batch
    asked = [with_system_prompt(audio_question_messages(i), DEFAULT_SYSTEM) for i in items[:2]]
    assert asked[0][0] == {"role": "system", "content": "Focus on the audio clips and instruction."}
    direct = model.generate(asked, max_new_tokens=24)
    assert [json.loads(line)["response"] for line in lines] == direct.texts
    # answers made with other settings must not be mixed into this run
    with pytest.raises(DestaError, match=r"system_prompt: .* -> 'Be brief.'"):
        evaluate("sakura", system_prompt="Be brief.", **settings)
    with pytest.raises(DestaError, match="max_new_tokens: 24 -> 30"):
        evaluate("sakura", **{**settings, "max_new_tokens": 30})

    # a kill while writing item 3 leaves a torn line: it must be redone, not kept or doubled
    torn = json.dumps({"id": items[2].id, "track": "Animal", "response": "half"})[:40]
    with (out / PREDICTIONS_FILE).open("a") as f:
        f.write(torn)
    second = evaluate("sakura", **settings)
    assert second.run["generated"] == 2 and second.run["already_done"] == 2
    rows = [json.loads(line) for line in (out / PREDICTIONS_FILE).read_text().splitlines()]
    assert [r["id"] for r in rows] == [i.id for i in items]  # each once, in order
    assert (out / PREDICTIONS_FILE).read_text().splitlines()[:2] == lines  # kept as they were
    assert rows[2]["response"] != "half" and rows[2]["answer"] == items[2].reference

    third = evaluate("sakura", **settings)  # nothing left to do
    assert third.run["generated"] == 0
    assert third.scores["results"] == second.scores["results"]
    scores = json.loads((out / "scores.json").read_text())
    assert scores["total"]["count"] == 4 and set(scores["tracks"]) == {"Animal", "Gender"}
    report = (out / "report.md").read_text()
    assert "| Gender single |" in report and "88.40" in report  # DeSTA2's published number
    assert "rule-based option match" in report
    assert (out / "scores.png").stat().st_size > 1000


@pytest.mark.integration
def test_speech_ifeval_backbone_run_uses_textual_audio(tmp_path, model):
    """The harness produces the backbone run itself: text-only, `textual_audio` in place of
    the clip, so exactly the backbone LLM answers."""
    sample = FIXTURES / "speech-ifeval.closed_ended_questions.sample.jsonl"
    items = read_speech_ifeval(sample)[:2]
    theirs = tmp_path / "model.jsonl"  # the audio model's rows (another system's, no audio here)
    theirs.write_text("".join(json.dumps({"id": i.id, "response": "SOME ANSWER"}) + "\n"
                              for i in items))
    data = tmp_path / "sif"
    data.mkdir()
    shutil.copy(sample, data / sample.name)
    result = evaluate("speech-ifeval", data=data, predictions=theirs, model=model,
                      out=tmp_path / "out", backbone_run=True, limit=2, max_new_tokens=16,
                      progress=False)
    backbone = [json.loads(line) for line in
                (tmp_path / "out" / "backbone_predictions.jsonl").read_text().splitlines()]
    assert [b["id"] for b in backbone] == [i.id for i in items]
    assert items[0].id.startswith("closed_ended_questions:")
    message = backbone_text_messages(items[0])
    assert message[0]["content"] == (f"Speech Input: {items[0].metadata['textual_audio']}\n\n"
                                     f"{items[0].prompt}")
    assert "audios" not in message[0]
    expected = model.generate(
        [with_system_prompt(backbone_text_messages(i), "Follow the given instructions.")
         for i in items], max_new_tokens=16)
    assert [b["response"] for b in backbone] == expected.texts
    assert result.scores["subsets"]["closed_ended_questions"]["rate"] == 100.0  # all capitals
    assert "backbone" in result.scores


def test_with_system_prompt_sets_replaces_or_removes_the_system_turn():
    user = {"role": "user", "content": "<|AUDIO|>\nWhat is it?", "audios": []}
    assert with_system_prompt([user], None) == [user]
    assert with_system_prompt([user], "S") == [{"role": "system", "content": "S"}, user]
    old = [{"role": "system", "content": "old"}, user]
    assert with_system_prompt(old, "new") == [{"role": "system", "content": "new"}, user]
    assert with_system_prompt(old, "") == [user]
    assert old[0]["content"] == "old"  # the input is left as it was


def test_report_marks_missing_numbers_and_sources():
    scores = {"source": "x.json", "summary": {"total": 50.0, "sound": 50.0}}
    text = markdown_report("mmau", scores)
    assert "| total | 50.00 | 57.50 [1] (original test-mini) | 66.00 [2] |" in text
    assert "| speech | – | – | 71.17 [2] |" in text
    assert "[1] DeSTA2.5-Audio paper" in text


def test_mmau_data_join_needs_no_audio_but_a_run_does(tmp_path):
    """Scoring rows joined to the MMAU sample needs only the JSON; running a model first checks
    that every clip exists (before any model is loaded)."""
    sample = FIXTURES / "mmau-test-mini.sample.json"
    first = json.loads(sample.read_text())[0]
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"id": first["id"],
                                 "model_output": f'The correct answer is: "{first["answer"]}"'})
                     + "\n")
    scores = evaluate("mmau", data=sample, predictions=preds).scores
    assert (scores["total"]["correct"], scores["total"]["count"]) == (1, 1)
    with pytest.raises(BenchmarkFileNotFoundError, match="12 audio file"):
        evaluate("mmau", data=sample, model="embedded", out=tmp_path / "run")


def test_a_json_object_where_rows_are_expected_says_so(tmp_path):
    """A valid JSON document that holds no rows (a benchmark without its own object format)
    is named as such, not as "line 1 is not valid JSON"."""
    document = tmp_path / "scores.json"
    document.write_text(json.dumps({"total": 50.0, "task": {"sound": 50.0}}, indent=2))
    with pytest.raises(BenchmarkDataError, match=r"holds one JSON object \(keys \['task', "
                                                 r"'total'\]\), not rows"):
        evaluate("mmau", predictions=document)
    one_line = tmp_path / "one.jsonl"  # a one-line object is a JSONL file of one row
    one_line.write_text(json.dumps({"id": "x", "answer": "a", "choices": ["a", "b"],
                                    "task": "sound", "model_prediction": "a"}) + "\n")
    assert evaluate("mmau", predictions=one_line).scores["total"]["count"] == 1
    broken = tmp_path / "broken.json"
    broken.write_text('{"results": {\n  "a": 1,\n')
    with pytest.raises(BenchmarkDataError, match="line 1 is not valid JSON"):
        evaluate("sakura", predictions=broken)


@pytest.mark.integration
def test_mmau_test_split_without_answers_is_answered(tmp_path, model):
    """The test split withholds its answers: the runner still answers every item and stores
    the official rows; the scores say to submit them instead of a near-zero accuracy."""
    clips = sorted((SAKURA_DEV / "Animal" / "audio").iterdir())[:2]
    (tmp_path / "audio").mkdir()
    rows = []
    for i, clip in enumerate(clips):
        shutil.copy(clip, tmp_path / "audio" / clip.name)
        rows.append({"id": f"t{i}", "audio_id": f"./audio/{clip.name}", "question":
                     "Which animal is heard?", "choices": ["dog", "cat", "cow", "sheep"],
                     "answer": "", "task": "sound", "split": "test"})
    test_split = tmp_path / "mmau-test.json"
    test_split.write_text(json.dumps(rows))
    result = evaluate("mmau", data=test_split, model=model, out=tmp_path / "run",
                      max_new_tokens=8, progress=False)
    stored = [json.loads(line) for line in
              (tmp_path / "run" / PREDICTIONS_FILE).read_text().splitlines()]
    assert [r["id"] for r in stored] == ["t0", "t1"] and all("model_output" in r for r in stored)
    assert result.run["generated"] == 2
    assert result.scores["no_answer"] == 2 and "submit the predictions" in result.scores["note"]

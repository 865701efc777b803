"""AIR-Bench against the official scripts of OFA-Sys/AIR-Bench: the meta-file layout and
prompt of Inference_Foundation.py / Inference_Chat.py, score_foundation.py's letter rule and
tally, align_in_foundation.py's prompt, score_chat.py's judge prompt and cal_score.py's
parsing and per-category tally. Official-format result files (tests/fixtures/airbench) are
scored through `desta eval airbench --predictions`, with numbers worked out by hand below;
judges are a real OpenAI-compatible HTTP server on loopback."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desta.evaluation.airbench import (
    align_messages,
    chat_judge_messages,
    foundation_prompt,
    official_letter,
    parse_chat_scores,
    parse_choice,
    read_airbench,
    score_airbench,
    score_chat,
    score_foundation,
)
from desta.evaluation.cli import register
from desta.evaluation.judges import OpenAIJudge
from desta.evaluation.records import BenchmarkDataError, BenchmarkFileNotFoundError
from desta.evaluation.runner import evaluate, read_predictions_file
from test_eval_sakura import ChatServer

FIXTURES = Path(__file__).parent / "fixtures" / "airbench"
FOUNDATION_FILE = FIXTURES / "Foundation_result_modelx.jsonl"
CHAT_FILE = FIXTURES / "Chat_result_modelx.jsonl"


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="desta")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


# ---------------------------------------------------------------------------------------------
# foundation: the letter rule of score_foundation.py and the offline align step
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("response, letter", [
    ("A.", "A"), ("B", "B"), ("  C\n", "C"), ("\nD", "D"),
    ("The answer is D.", "D"),      # second-to-last character
    ("The answer is D", None),      # ... which here is a space
    ("(B)", "B"), ("**B**", None), ("b.", None),
    ("Answer: B", "A"),             # the "A" of "Answer"
    ("Cat", "C"),                   # the first character decides, even inside a word
    ("A dog barks", "A"),
    ("I think\nA.", "A"),           # newlines removed before reading: "I thinkA."
    ("None", None), ("", None), ("   ", None), (None, None), ("x", None),
])
def test_official_letter_rule(response, letter):
    assert official_letter(response) == letter


CHOICES = ["dog", "cat", "hot dog", "bird"]


@pytest.mark.parametrize("response, index", [
    ("A", 0), ("b.", None), ("B.", 1), ("(C)", 2), ("**D**", 3), ("C. hot dog", 2),
    ("Answer: B", 1), ("The answer is (D).", 3), ("option c", 2),
    ("It is a cat.", 1),            # the text of exactly one choice
    ("hot dog", 2),                 # "dog" inside "hot dog" is not a second choice
    ("answer is a dog", 0),         # the article is not the letter A: the text "dog" decides
    ("A dog or a cat", None),       # two choices named
    ("", None), ("Something else entirely", None),
])
def test_offline_align_parse_choice(response, index):
    assert parse_choice(response, CHOICES) == index


def test_official_result_file_foundation_scores_by_hand():
    """Foundation_result_modelx.jsonl (official output format, 16 rows), by hand.

    Letter rule on raw responses (score_foundation.py), per task_id correct/counted (fail):
    Speaker_Gender_Recognition_VoxCeleb1: "B" right, "The speaker is female." fails, "C" on a
      two-choice row counts wrong, "None" fails -> 1/2 (2 fail) = 50 %;
    Speaker_Emotion_Recontion_IEMOCAP: "C. sad" right, "The answer is D." right, "Answer: B"
      reads as A (wrong), whitespace fails -> 2/3 (1) = 66.67 %;
    Speaker_Emotion_Recontion_MELD: "Sadness" fails, "Anger" reads as A (wrong) -> 0/1 (1);
    Sound_AQA_clotho: "D" right, "(B)" reads B (wrong), null fails -> 1/2 (1) = 50 %;
    Music_AQA_MusicCaps: "**B**" and "I think it's A.\\n..." fail -> 0/0 (2): no accuracy
      (score_foundation.py itself would stop with a KeyError here);
    the row with task_name null is skipped.
    Total 4/8 = 50 % (7 fail); failed rows as wrong: 4/15.

    Offline align step, then the same rule: VoxCeleb1 "female" -> B wrong, "C" and "None"
    fail -> 1/2 (2); IEMOCAP 3/3 (1); MELD "Sadness" -> C wrong, "Anger" -> D right -> 1/2;
    clotho 1/2 (1); MusicCaps "**B**" right, "piano" right -> 2/2. Total 8/11 (4 fail)."""
    rows = read_predictions_file(FOUNDATION_FILE)
    result = score_airbench(rows)
    assert result["split"] == "foundation"
    official = result["official"]
    tasks = official["tasks"]
    assert list(tasks) == ["Speaker_Gender_Recognition_VoxCeleb1",
                           "Speaker_Emotion_Recontion_IEMOCAP", "Speaker_Emotion_Recontion_MELD",
                           "Sound_AQA_clotho", "Music_AQA_MusicCaps"]
    got = {t: (c["correct"], c["total"], c["fail"]) for t, c in tasks.items()}
    assert got == {"Speaker_Gender_Recognition_VoxCeleb1": (1, 2, 2),
                   "Speaker_Emotion_Recontion_IEMOCAP": (2, 3, 1),
                   "Speaker_Emotion_Recontion_MELD": (0, 1, 1),
                   "Sound_AQA_clotho": (1, 2, 1), "Music_AQA_MusicCaps": (0, 0, 2)}
    assert [c["accuracy"] for c in tasks.values()] == [50.0, pytest.approx(200 / 3), 0.0, 50.0, None]
    assert (official["correct"], official["total_sum"], official["fail_num"],
            official["skipped"]) == (4, 8, 7, 1)
    assert official["accuracy"] == 50.0
    assert official["accuracy_fails_wrong"] == pytest.approx(400 / 15)
    assert official["categories"]["speech"]["accuracy"] == 50.0        # 3/6
    assert official["categories"]["music"]["accuracy"] is None

    aligned = result["aligned"]
    got = {t: (c["correct"], c["total"], c["fail"]) for t, c in aligned["tasks"].items()}
    assert got == {"Speaker_Gender_Recognition_VoxCeleb1": (1, 2, 2),
                   "Speaker_Emotion_Recontion_IEMOCAP": (3, 3, 1),
                   "Speaker_Emotion_Recontion_MELD": (1, 2, 0),
                   "Sound_AQA_clotho": (1, 2, 1), "Music_AQA_MusicCaps": (2, 2, 0)}
    assert (aligned["correct"], aligned["total_sum"], aligned["fail_num"]) == (8, 11, 4)
    assert result["accuracy"] == pytest.approx(800 / 11)
    assert result["summary"]["speech accuracy"] == pytest.approx(500 / 7)
    assert result["summary"]["music accuracy"] == 100.0
    assert result["summary"]["foundation accuracy (letter rule on raw responses)"] == 50.0
    assert "offline" in result["method"]


def test_foundation_answer_not_a_choice_is_a_data_error():
    """score_foundation.py exits when a parsed row's answer_gt is none of its choices; a row
    whose response fails never gets that far."""
    row = json.loads(FOUNDATION_FILE.read_text().splitlines()[0])
    row["answer_gt"] = "child"
    with pytest.raises(BenchmarkDataError, match="'child' is not one of its choices"):
        score_foundation([row])
    row["response"] = "Unclear"
    assert score_foundation([row])["official"]["fail_num"] == 1


# ---------------------------------------------------------------------------------------------
# foundation: the official align prompt through a real judge
# ---------------------------------------------------------------------------------------------


def test_align_prompt_is_the_official_text():
    rows = read_predictions_file(FOUNDATION_FILE)
    two, four = rows[1], rows[4]
    lead = ('There is a question "{q}", and one response is "{r}". Among the following '
            "choices, which option best matches this response? You may only response with the "
            "letter of the option. If the letter of an option has already appeared in the "
            "Answer, then simply return that letter. If there are no matching options, then "
            "choose one at random. The following lines are the options.")
    tail = "To reiterate, the response you provide to me must be a single letter, either A, B, C, or D."
    assert align_messages(two) == [{"role": "user", "content": lead.format(
        q="What is the gender of the speaker?", r="The speaker is female.")
        + "\nA. male\nB. female\n" + tail}]
    assert align_messages(four)[0]["content"] == lead.format(
        q="What emotion does the speaker convey?", r="C. sad") \
        + "\nA. neutral\nB. happy\nC. sad\nD. angry\n" + tail


class AlignJudge(ChatServer):
    """Answers the align prompt with the letter of the first option whose text is a whole word
    of the response, else the response's first character when it is A-D, else 'no idea'."""

    @staticmethod
    def rule(messages) -> str:
        user = messages[-1]["content"]
        response = re.search(r'one response is "(.*)"\. Among', user, re.S).group(1)
        options = re.findall(r"^([ABCD])\. (.*)$", user, re.M)
        for letter, text in options:
            if re.search(rf"\b{re.escape(text)}\b", response, re.I):
                return letter
        first = response.strip()[:1]
        return f"{first}." if first in "ABCD" and first else "no idea"


def test_foundation_align_step_by_judge(tmp_path):
    """Judge-aligned letters on the fixture (hand-worked from AlignJudge's rule):
    VoxCeleb1 B right, female -> B wrong, C wrong, 'None' fails -> 1/3 (1);
    IEMOCAP sad right, 'The answer is D.' fails, 'Answer: B' -> A wrong, blank fails -> 1/2 (2);
    MELD sadness wrong, anger right -> 1/2; clotho D right, '(B)' fails, null not asked ->
    1/1 (2); MusicCaps '**B**' fails, piano right -> 1/1 (1). Total 5/9 (6 fail).
    15 prompts: every row with a response, the task_name-null row included."""
    rows = read_predictions_file(FOUNDATION_FILE)
    with AlignJudge() as server:
        judge = OpenAIJudge(server.base_url, "gpt-3.5-turbo", cache_path=tmp_path / "c.jsonl")
        result = score_foundation(rows, judge)
        assert server.requests == 15
        again = score_foundation(rows, judge)   # cached: no new request, same numbers
        assert server.requests == 15 and again["aligned"] == result["aligned"]
    aligned = result["aligned"]
    got = {t: (c["correct"], c["total"], c["fail"]) for t, c in aligned["tasks"].items()}
    assert got == {"Speaker_Gender_Recognition_VoxCeleb1": (1, 3, 1),
                   "Speaker_Emotion_Recontion_IEMOCAP": (1, 2, 2),
                   "Speaker_Emotion_Recontion_MELD": (1, 2, 0),
                   "Sound_AQA_clotho": (1, 1, 2), "Music_AQA_MusicCaps": (1, 1, 1)}
    assert result["accuracy"] == pytest.approx(500 / 9)
    assert result["official"]["accuracy"] == 50.0  # unchanged by the judge
    assert "gpt-3.5-turbo" in result["method"]


# ---------------------------------------------------------------------------------------------
# reader: the release layout and the official prompts
# ---------------------------------------------------------------------------------------------


def _meta_rows(path: Path) -> list[dict]:
    rows = read_predictions_file(path)
    for row in rows:
        del row["response"]
    return rows


@pytest.fixture
def foundation_dir(tmp_path):
    """A Foundation/ folder holding the fixture's questions as Foundation_meta.json (task_name
    null row left out), an Audio_Grounding row, and a clip for each."""
    root = tmp_path / "Foundation"
    rows = [r for r in _meta_rows(FOUNDATION_FILE) if r["task_name"]]
    for row in rows:  # the release has no choice_c / choice_d keys on two-choice rows
        for key in ("choice_c", "choice_d"):
            if row[key] is None:
                del row[key]
    rows.append({"path": "Y0aB.wav", "question": "When does the dog bark?",
                 "choice_a": "[0.0, 1.5]", "choice_b": "[2.0, 3.0]", "choice_c": "[4.1, 5.0]",
                 "choice_d": "[6.0, 9.9]", "answer_gt": "[2.0, 3.0]",
                 "task_name": "Audio_Grounding", "dataset_name": "AudioGrounding",
                 "uniq_id": 100})
    for row in rows:
        name = row["path"][:-3] + "flac" if row["task_name"] == "Audio_Grounding" else row["path"]
        clip = root / f"{row['task_name']}_{row['dataset_name']}" / name
        clip.parent.mkdir(parents=True, exist_ok=True)
        sf.write(clip, np.zeros(800, dtype=np.float32), 16000)
    (root / "Foundation_meta.json").write_text(json.dumps(rows))
    return root


def test_reader_layout_and_official_prompt(foundation_dir):
    items = read_airbench(foundation_dir, check_audio=True)
    assert len(items) == 16 and items[0].id == "foundation:0"
    assert items[0].audio_paths[0] == \
        foundation_dir / "Speaker_Gender_Recognition_VoxCeleb1" / "id10001_1.wav"
    assert items[-1].audio_paths[0] == \
        foundation_dir / "Audio_Grounding_AudioGrounding" / "Y0aB.flac"
    instruction = ("Choose the most suitable answer from options A, B, C, and D to respond the "
                   "question in next line, you may only choose A or B or C or D.")
    assert items[0].prompt == (instruction + "\nWhat is the gender of the speaker?\n"
                               "A. male\nB. female\nC. None\nD. None")
    assert items[4].prompt == (instruction + "\nWhat emotion does the speaker convey?\n"
                               "A. neutral\nB. happy\nC. sad\nD. angry")
    assert foundation_prompt(items[4].metadata) == items[4].prompt
    assert read_airbench(foundation_dir / "Foundation_meta.json", "foundation")[3].id == \
        "foundation:3"
    (foundation_dir / "Sound_AQA_clotho" / "roof.wav").unlink()
    assert len(read_airbench(foundation_dir)) == 16   # scoring needs only the meta file
    with pytest.raises(BenchmarkFileNotFoundError, match="roof.wav"):
        read_airbench(foundation_dir, check_audio=True)


def test_reader_rejects_bad_rows(foundation_dir, tmp_path):
    meta = foundation_dir / "Foundation_meta.json"
    rows = json.loads(meta.read_text())
    rows[0]["answer_gt"] = "child"
    meta.write_text(json.dumps(rows))
    with pytest.raises(BenchmarkDataError, match=r"entry 0: answer_gt 'child' is not one"):
        read_airbench(meta)
    del rows[0]["answer_gt"]
    meta.write_text(json.dumps(rows))
    with pytest.raises(BenchmarkDataError, match="entry 0 lacks field.*'answer_gt'"):
        read_airbench(meta)
    chat = tmp_path / "Chat_meta.json"
    rows = _meta_rows(CHAT_FILE)
    del rows[2]["meta_info"]
    chat.write_text(json.dumps(rows))
    with pytest.raises(BenchmarkDataError, match="entry 2 lacks field.*'meta_info'"):
        read_airbench(chat)
    (tmp_path / "meta.json").write_text("[]")
    with pytest.raises(BenchmarkDataError, match="pass --subset"):
        read_airbench(tmp_path / "meta.json")
    assert read_airbench(tmp_path / "meta.json", "chat") == []
    with pytest.raises(BenchmarkFileNotFoundError, match="expected one"):
        read_airbench(tmp_path / "Foundation", subset="chat")


def test_our_rows_are_the_official_output_and_score_the_same(foundation_dir, tmp_path):
    """Rows written by our runner carry the official output fields (choice_c/d null on
    two-choice rows); joined by id through --data they score as the official file does."""
    items = read_airbench(foundation_dir)
    responses = [r["response"] for r in read_predictions_file(FOUNDATION_FILE)]
    official_keys = {"path", "question", "choice_a", "choice_b", "choice_c", "choice_d",
                     "answer_gt", "task_name", "dataset_name", "response", "uniq_id"}
    preds = tmp_path / "ours.jsonl"
    with preds.open("w") as f:
        for item, response in zip(items[:15], responses[:15], strict=True):
            row = {"id": item.id, "response": response}
            f.write(json.dumps(row) + "\n")
    from desta.evaluation.airbench import airbench_result_row

    row = airbench_result_row(items[0], "B")
    assert official_keys <= set(row) and row["choice_c"] is None
    scores = evaluate("airbench", data=foundation_dir, predictions=preds, report=False).scores
    file_scores = score_airbench(read_predictions_file(FOUNDATION_FILE))
    assert scores["official"]["tasks"] == file_scores["official"]["tasks"]
    assert scores["aligned"]["tasks"] == file_scores["aligned"]["tasks"]


def test_official_file_joins_the_benchmark_data_by_uniq_id(foundation_dir, tmp_path):
    """The official result file has no `id`, only `uniq_id`: with --data its rows are joined
    to the items by `foundation:<uniq_id>` and score as the file alone does."""
    rows = [r for r in read_predictions_file(FOUNDATION_FILE) if r["task_name"]]
    assert all("id" not in r for r in rows)
    theirs = tmp_path / "Foundation_result_modelx.jsonl"
    theirs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    alone = score_airbench(rows)
    joined = evaluate("airbench", data=foundation_dir, predictions=theirs,
                      report=False).scores
    assert joined["official"]["tasks"] == alone["official"]["tasks"]
    assert joined["aligned"]["tasks"] == alone["aligned"]["tasks"]


def test_cli_scores_the_official_foundation_file(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(["eval", "airbench", "--predictions", str(FOUNDATION_FILE),
                    "--out", str(out)]) == 0
    scores = json.loads((out / "scores.json").read_text())
    assert scores["official"]["correct"] == 4 and scores["official"]["total_sum"] == 8
    printed = capsys.readouterr().out
    assert re.search(r"^foundation accuracy +72\.73$", printed, re.M)
    assert re.search(r"^foundation accuracy \(letter rule on raw responses\) +50\.00$",
                     printed, re.M)
    assert "| foundation accuracy | 72.73 |" in (out / "report.md").read_text()


# ---------------------------------------------------------------------------------------------
# chat: score_chat.py's prompt, cal_score.py's parsing and tally
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reply, pair", [
    ("8 6", (8, 6)), (" 8 6 \n", (8, 6)), ("10 10", (10, 10)),
    ("0 5", (0, 5)),                 # cal_score.py checks only the upper bound
    ("8 6\nThe first is more detailed.", None),   # newline removed: "6The" is no integer
    ("8\n6", None),                  # becomes "86": one value
    ("8  6", None),                  # two spaces: three fields
    ("8, 6", None), ("7.5 9", None), ("11 3", None), ("great answers", None), ("", None),
])
def test_parse_chat_scores_as_cal_score(reply, pair):
    assert parse_chat_scores(reply) == pair


def test_chat_prompt_is_the_official_text():
    row = read_predictions_file(CHAT_FILE)[1]
    expected = (
        "You are a helpful and precise assistant for checking the quality of the answer.\n"
        "[Detailed Audio Description]\nhi my name is wally\n[Question]\n"
        "What name did the first person introduce themselves as?\n"
        "[The Start of Assistant 1s Answer]\nwally\n[The End of Assistant 1s Answer]\n"
        "[The Start of Assistant 2s Answer]\nThe first person is called Wally.\n"
        "[The End of Assistant 2s Answer]\n[System]\n"
        "We would like to request your feedback on the performance of two AI assistants in "
        "response to the user question and audio description displayed above. AI assistants "
        "are provided with detailed audio descriptions and questions.\nPlease rate the "
        "helpfulness, relevance, accuracy, and comprehensiveness of their responses. Each "
        "assistant receives an overall score on a scale of 1 to 10, where a higher score "
        "indicates better overall performance. Please output a single line containing only "
        "two values indicating the scores for Assistant 1 and 2, respectively. The two scores "
        "are separated by a space.")
    assert chat_judge_messages(row) == [{"role": "user", "content": expected}]
    swapped = chat_judge_messages(row, "model_first")[0]["content"]
    assert swapped == expected.replace("\nwally\n", "\n@@\n").replace(
        "\nThe first person is called Wally.\n", "\nwally\n").replace(
        "\n@@\n", "\nThe first person is called Wally.\n")


class ChatJudge(ChatServer):
    """Scores each answer by its word count (max 10) and gives the second position one point
    more (max 10), a position bias; an answer 'mumble' gets an explanation line after the
    scores, which cal_score.py cannot read."""

    @staticmethod
    def rule(messages) -> str:
        user = messages[-1]["content"]
        first = user.split("[The Start of Assistant 1s Answer]\n", 1)[1].split(
            "\n[The End of Assistant 1s Answer]", 1)[0]
        second = user.split("[The Start of Assistant 2s Answer]\n", 1)[1].split(
            "\n[The End of Assistant 2s Answer]", 1)[0]
        a, b = min(10, len(first.split())), min(10, len(second.split()) + 1)
        if "mumble" in (first, second):
            return f"{a} {b}\nAssistant 1 is better."
        return f"{a} {b}"


def test_official_chat_file_scores_by_hand(tmp_path):
    """Chat_result_modelx.jsonl (official format, 9 rows; one null response, skipped, not
    sent). (reference, model) per pass, from ChatJudge's rule:

    reference first: speech (7,5) (1,7); sound (6,5) ['mumble' fails]; music (4,10) (6,3);
      speech_and_sound (7,4); speech_and_music (5,9).
    model first:     speech (8,4) (2,6); sound (7,4); music (5,10) (7,2); s&s (8,3); s&m (6,8).
    Model means, reference first / model first / mean: speech 6 / 5 / 5.5; sound 5 / 4 / 4.5;
    music 6.5 / 6 / 6.25; s&s 4 / 3 / 3.5; s&m 9 / 8 / 8.5; mixed audio (the mean of s&s and
    s&m) 6.5 / 5.5 / 6.
    Average = mean(speech, sound, music, mixed) = 22.25 / 4 = 5.5625 (reference 23 / 4)."""
    rows = read_predictions_file(CHAT_FILE)
    with ChatJudge() as server:
        judge = OpenAIJudge(server.base_url, "gpt-4-0125-preview", cache_path=tmp_path / "c.jsonl")
        result = score_airbench(rows, judge)
        assert server.requests == 16
        single = score_chat(rows, judge, orders=("reference_first",))
        assert server.requests == 16  # the same prompts: answered from the cache
    assert result["split"] == "chat" and result["skipped"] == 1
    first = result["passes"]["reference_first"]
    assert (first["fail_num"], first["success_num"]) == (1, 7)
    assert first["categories"]["speech"] == {"count": 2, "reference": 4.0, "model": 6.0,
                                             "win_rate": 0.5}
    assert first["categories"]["sound"] == {"count": 1, "reference": 6.0, "model": 5.0,
                                            "win_rate": 0.0}
    assert first["categories"]["mixed audio"] == {"count": 2, "reference": 6.0, "model": 6.5,
                                                  "win_rate": 0.5}
    swapped = result["passes"]["model_first"]["categories"]
    assert swapped["speech"] == {"count": 2, "reference": 5.0, "model": 5.0, "win_rate": 0.5}
    assert swapped["music"] == {"count": 2, "reference": 6.0, "model": 6.0, "win_rate": 0.5}
    combined = result["categories"]
    assert {c: combined[c]["model"] for c in combined} == {
        "speech": 5.5, "sound": 4.5, "music": 6.25, "speech_and_sound": 3.5,
        "speech_and_music": 8.5, "mixed audio": 6.0}
    assert combined["speech_and_music"]["win_rate"] == 1.0
    assert result["model_score"] == 5.5625 and result["reference_score"] == 5.75
    assert result["summary"]["chat average (model)"] == 5.5625
    # score_chat.py's single pass alone: (6 + 5 + 6.5 + 6.5) / 4
    assert single["model_score"] == 6.0 and single["reference_score"] == 5.25


def test_chat_needs_judge_meta_info_and_known_tasks():
    rows = read_predictions_file(CHAT_FILE)
    with pytest.raises(BenchmarkDataError, match="needs an LLM judge"):
        score_chat(rows, None)
    bad = [dict(rows[0], task_name="podcast_QA")]
    with pytest.raises(BenchmarkDataError, match="'podcast_QA' is not one cal_score.py knows"):
        score_chat(bad, None)
    with pytest.raises(BenchmarkDataError, match="no meta_info"):
        score_chat([dict(rows[0], meta_info=None)], None)
    with pytest.raises(BenchmarkDataError, match="mix splits"):
        score_airbench([dict(rows[0], split="chat"), dict(rows[1], split="foundation")])


def test_cli_scores_the_official_chat_file(tmp_path, capsys):
    out = tmp_path / "chat"
    with ChatJudge() as server:
        assert run_cli(["eval", "airbench", "--predictions", str(CHAT_FILE), "--out", str(out),
                        "--judge-url", server.base_url, "--judge-model", "gpt-4"]) == 0
        assert server.requests == 16
    scores = json.loads((out / "scores.json").read_text())
    assert scores["split"] == "chat" and scores["model_score"] == 5.5625
    printed = capsys.readouterr().out
    assert re.search(r"^chat average \(model\) +5\.56$", printed, re.M)
    assert re.search(r"^mixed audio \(model\) +6\.00$", printed, re.M)
    assert (out / "judge_cache.jsonl").is_file()


def _judged_row(row: dict, order: str, reply: str, uuid: str) -> dict:
    """A row of score_chat.py's output: its batch input (the judge prompt in openai_args, the
    answer as Audio-LLM-response) plus the judge's reply in `gen`."""
    from desta.evaluation.airbench import chat_judge_messages

    return {"uuid": uuid, "openai_args": {"messages": chat_judge_messages(row, order)},
            "meta_info": row["meta_info"], "path": row["path"], "question": row["question"],
            "answer_gt": row["answer_gt"], "task_name": row["task_name"],
            "dataset_name": row["dataset_name"], "Audio-LLM-response": row["response"],
            "gen": reply, "prompt_tokens": 100, "completion_tokens": 3, "finish_reason": "stop"}


def test_judged_files_score_as_they_stand(tmp_path):
    """score_chat.py's output (replies in `gen`; the Assistant order read off the prompt it
    sent) and cal_score.py's input (`gpt-score`; "cir" in the name = the swapped pass) are
    tallied without a judge. Mixed audio is the mean of its two categories (README), not the
    pooled rows: s&s model 7 and 3 (mean 5), s&m 10 -> 7.5 (pooled would be 6.67)."""
    base = {"meta_info": "a voice over rain", "path": "x.wav", "dataset_name": "d",
            "question": "What is heard?", "answer_gt": "Rain and a voice."}
    rows = [dict(base, task_name="speech_QA", response="A man talks."),
            dict(base, task_name="speech_and_sound_QA", response="Rain."),
            dict(base, task_name="speech_and_sound_QA", response="Talking in rain."),
            dict(base, task_name="speech_and_music_QA", response="Music?")]
    first = ["6 8", "5 7", "7 3", "4 10"]  # reference first: (reference, model)
    swapped = ["9 6", "7 5", "2 8", "seven 4"]  # model first: (model, reference); one fails
    out = tmp_path / "batch_run_output.jsonl"
    out.write_text("".join(
        json.dumps(_judged_row(r, "reference_first", g, f"a{i}")) + "\n"
        for i, (r, g) in enumerate(zip(rows, first, strict=True))) + "".join(
        json.dumps(_judged_row(r, "model_first", g, f"b{i}")) + "\n"
        for i, (r, g) in enumerate(zip(rows, swapped, strict=True))))
    result = evaluate("airbench", predictions=out).scores
    assert result["split"] == "chat" and result["orders"] == ["reference_first", "model_first"]
    assert "stored replies" in result["method"]
    ref_first = result["passes"]["reference_first"]["categories"]
    assert ref_first["mixed audio"] == {"count": 3, "reference": 5.0, "model": 7.5,
                                        "win_rate": 0.75}
    model_first = result["passes"]["model_first"]
    assert (model_first["fail_num"], model_first["success_num"]) == (1, 4)  # cal_score.py's
    assert model_first["categories"]["speech_and_sound"] == {
        "count": 2, "reference": 6.5, "model": 4.5, "win_rate": 0.5}
    assert model_first["categories"]["speech_and_music"]["count"] == 0
    # combined: each category the mean of its passes (speech (8 + 9) / 2, s&s (5 + 4.5) / 2,
    # s&m 10: its second pass failed), then mixed = mean(s&s, s&m) = (4.75 + 10) / 2
    assert result["categories"]["speech"]["model"] == 8.5
    assert result["categories"]["speech_and_music"]["model"] == 10.0
    assert result["categories"]["mixed audio"]["model"] == pytest.approx(7.375)

    # cal_score.py's own input: a JSON list, the pass told by the file name
    cir = tmp_path / "chat_score_cir.json"
    cir.write_text(json.dumps([{"task_name": r["task_name"], "gpt-score": g}
                               for r, g in zip(rows, swapped, strict=True)]))
    alone = evaluate("airbench", predictions=cir).scores
    assert alone["orders"] == ["model_first"]
    assert alone["passes"]["model_first"] == model_first
    plain = tmp_path / "chat_score.json"
    plain.write_text(cir.read_text())
    assert evaluate("airbench", predictions=plain).scores["orders"] == ["reference_first"]

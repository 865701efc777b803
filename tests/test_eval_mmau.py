"""MMAU: reader, DeSTA prompt, prediction extraction and the official string-match score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desta.errors import DestaError
from desta.evaluation.mmau import (
    build_mmau_prompt,
    extract_mmau_prediction,
    mmau_messages,
    mmau_result_row,
    mmau_string_match,
    read_mmau,
    read_mmau_predictions,
    score_mmau,
)
from desta.evaluation.records import BenchmarkDataError, BenchmarkFileNotFoundError

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
SAMPLE = FIXTURES / "mmau-test-mini.sample.json"
OTHER_SYSTEM = FIXTURES / "mmau_predictions_other_system.json"
# hand-written rows in the released predictions format, one per edge case met in DeSTA2.5's
# released MMAU test-mini predictions (see test_edge_cases_scored_by_hand)
EDGE_CASES = Path(__file__).parent / "fixtures" / "mmau" / "edge_cases_predictions.json"


def test_reader_resolves_audio_against_json_folder_and_keeps_row():
    items = read_mmau(SAMPLE)
    assert len(items) == 12
    first = items[0]
    assert first.id == "3fe64f3d-282c-4bc8-a753-68f8f6c35652"
    assert first.audio_paths == [FIXTURES / "test-mini-audios" / f"{first.id}.wav"]
    assert first.reference == "Man"
    assert first.metadata["sub-category"] == "Acoustic Source Inference"
    assert first.prompt == (
        "Based on the given audio, identify the source of the speaking voice. Choose from the "
        'following options: "Man", "Woman", "Child" or "Robot"'
    )
    other_root = read_mmau(SAMPLE, audio_root="/data/mmau")
    assert other_root[0].audio_paths[0] == Path("/data/mmau/test-mini-audios") / f"{first.id}.wav"


def test_reader_errors(tmp_path):
    with pytest.raises(BenchmarkFileNotFoundError, match="nothere.json"):
        read_mmau(tmp_path / "nothere.json")
    # the sample's clips are not shipped: check_audio must say so
    with pytest.raises(BenchmarkFileNotFoundError, match="12 audio file"):
        read_mmau(SAMPLE, check_audio=True)
    bad = tmp_path / "bad.json"
    bad.write_text('[\n {"id": "x",\n  "audio_id": }\n]')
    with pytest.raises(BenchmarkDataError, match="line 3"):
        read_mmau(bad)
    rows = json.loads(SAMPLE.read_text())
    del rows[1]["choices"], rows[1]["task"]
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps(rows))
    with pytest.raises(BenchmarkDataError, match=r"entry 1 lacks field\(s\) 'choices', 'task'"):
        read_mmau(missing)
    assert issubclass(BenchmarkDataError, DestaError)


def test_messages_match_the_released_run():
    """System prompt, user turn and option list exactly as inference_desta25_audio_vllm.py."""
    item = read_mmau(SAMPLE)[5]
    messages = mmau_messages(item)
    assert messages[0] == {
        "role": "system",
        "content": 'Focus on the audio clip and instruction. Output your answer in the format '
                   '"The correct answer is: ___".',
    }
    assert messages[1]["content"] == (
        "<|AUDIO|>\n\nA prominent E minor 7th (Em7) chord is played in the audio. Approximately "
        "during which time interval does this chord occur? Choose from the following options: "
        '"1.50 to 4.00", "4.50 to 7.00", "7.40 to 10.10" or "10.50 to 13.00"'
    )
    assert messages[1]["audios"] == [{"audio": str(item.audio_paths[0]), "text": None}]
    assert build_mmau_prompt("Q?", ["x", "y"]) == 'Q? Choose from the following options: "x" or "y"'
    assert build_mmau_prompt("Q?", ["x"]) == 'Q? Choose from the following options: "x"'
    # eight options (one malformed row of the real test-mini has them) and numbers as options
    assert build_mmau_prompt("Q?", list("abcdefgh")).endswith('"f", "g" or "h"')
    assert build_mmau_prompt("Q?", [2, 3]) == 'Q? Choose from the following options: "2" or "3"'


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        # DeSTA's extraction: every exact "The correct answer is: " removed, ends stripped
        ('The correct answer is: "Man"', '"Man"'),
        ('The correct answer is: "A woman".', '"A woman".'),
        ("The correct answer is: Rooster", "Rooster"),
        ("  The correct answer is: 5\n", "5"),
        # reasoning before the prefix stays, as in the released file
        ("From 1.00 to 3.25 it lasts 2.25 s.\n\nThe correct answer is: 2.25 seconds",
         "From 1.00 to 3.25 it lasts 2.25 s.\n\n2.25 seconds"),
        # only the exact casing and spacing is removed
        ("the correct answer is: Radio", "the correct answer is: Radio"),
        ("The correct answer is:Radio", "The correct answer is:Radio"),
        ("I cannot hear the audio.", "I cannot hear the audio."),
        ("", ""),
        (None, ""),
    ],
)
def test_extract_prediction(output, expected):
    assert extract_mmau_prediction(output) == expected


def test_result_row_keeps_both_keys():
    item = read_mmau(SAMPLE)[0]
    row = mmau_result_row(item, 'The correct answer is: "Man".')
    assert row["model_output"] == 'The correct answer is: "Man".'
    assert row["model_prediction"] == '"Man".'
    assert row["choices"] == ["Man", "Woman", "Child", "Robot"]


CHOICES = ["A child", "A woman", "An adult man", "A teenager"]


@pytest.mark.parametrize(
    ("prediction", "correct"),
    [
        ("A woman", True),
        ("a WOMAN", True),  # case
        ("woman, a.", True),  # punctuation and word order do not matter (word sets)
        ("It is a woman.", True),  # extra words that belong to no other choice
        ("woman", False),  # answer word "a" missing
        ("A woman or an adult man", False),  # distractor words "an", "adult", "man"
        ("A woman, not a child", False),  # distractor word "child"
        ("", False),  # empty prediction
        ("   ", False),
        (None, False),
        ("A womanly voice", False),  # "womanly" is not the token "woman"
    ],
)
def test_string_match_rule(prediction, correct):
    assert mmau_string_match("A woman", prediction, CHOICES) is correct


def test_string_match_shared_words_and_numbers():
    # "to" is shared by every interval, so it is not a distractor; "1", "50", "4", "00", "13" are
    choices = ["1.50 to 4.00", "4.50 to 7.00", "7.40 to 10.10", "10.50 to 13.00"]
    assert mmau_string_match("7.40 to 10.10", "from 7.40 to 10.10", choices)
    assert not mmau_string_match("7.40 to 10.10", "7.40 to 10.10 or 10.50 to 13.00", choices)
    # a choice with the same word set as the answer adds no distractors
    assert mmau_string_match("Man", "man", ["Man", "man.", "Woman"])


def test_other_system_predictions_score_by_hand():
    """A predictions file in the official format (`model_output` only), scored by hand:

    row  task   diff    sub-category         model_output                              verdict
     0   sound  medium  Acoustic Source Inf.  The correct answer is: "Man"             ok (no distractor word)
     1   sound  medium  Acoustic Source Inf.  It is a woman speaking.                  ok {a, woman} present
     2   sound  medium  Acoustic Source Inf.  ...radio, not a fire truck.              wrong: fire, truck
     3   sound  medium  Acoustic Source Inf.  sound effect                             wrong: "effects" missing
     4   music  easy    Instrumentation       MALE SPEECH!                             ok (case)
     5   music  medium  Temporal Reasoning    Between 7.40 and 10.10.                  wrong: "to" missing
     6   music  medium  Temporal Reasoning    The chord is B:maj/1                     ok {b, maj, 1}
     7   music  medium  Instrumentation       "" (empty)                               wrong
     8   speech medium  Dissonant Emotion     The correct answer is: "Exaggerates..."  wrong: "the" is a
                                                                   word of "Complimenting the ..."
     9   speech medium  Dissonant Emotion     calling conversation fairly pointless    ok
    10   speech medium  Dissonant Emotion     ..., not agreeing about the art.         wrong: agreeing...
    11   speech (no model_output key)                                                  not scored

    model_output: 5 / 11 = 45.4545 %; sound 2/4, music 2/4, speech 1/3; easy 1/1, medium 4/10.
    Extracted model_prediction: row 8 becomes `Exaggerates messiness to absurd extent` -> ok,
    so 6 / 11 = 54.5454 % and speech 2/3.
    """
    rows = read_mmau_predictions(OTHER_SYSTEM)
    result = score_mmau(rows, prediction_key="model_output")
    assert result["total"] == {"correct": 5, "count": 11, "accuracy": pytest.approx(500 / 11)}
    assert result["no_prediction"] == 1
    assert result["empty_prediction"] == 1
    assert {k: (v["correct"], v["count"]) for k, v in result["task"].items()} == {
        "sound": (2, 4), "music": (2, 4), "speech": (1, 3)}
    assert {k: (v["correct"], v["count"]) for k, v in result["difficulty"].items()} == {
        "easy": (1, 1), "medium": (4, 10)}
    assert {k: (v["correct"], v["count"]) for k, v in result["sub-category"].items()} == {
        "Acoustic Source Inference": (2, 4),
        "Instrumentation": (1, 2),
        "Temporal Reasoning": (1, 2),
        "Dissonant Emotion Interpretation": (1, 3),
    }
    assert result["task"]["speech"]["accuracy"] == pytest.approx(100 / 3)
    assert [ok for _, ok in result["results"]] == [
        True, True, False, False, True, False, True, False, False, True, False]

    for row in rows:
        if "model_output" in row:
            row["model_prediction"] = extract_mmau_prediction(row["model_output"])
    extracted = score_mmau(rows)  # default key: model_prediction
    assert extracted["total"]["correct"] == 6
    assert extracted["total"]["accuracy"] == pytest.approx(600 / 11)
    assert extracted["task"]["speech"]["correct"] == 2


def test_score_errors():
    with pytest.raises(BenchmarkDataError, match="prediction_key"):
        score_mmau([], prediction_key="response")
    with pytest.raises(BenchmarkDataError, match="'choices'"):
        score_mmau([{"id": "x", "answer": "a", "task": "sound", "model_prediction": "a"}])
    with pytest.raises(BenchmarkDataError, match="must be a string"):
        score_mmau([{"answer": "a", "choices": ["a"], "task": "t", "model_prediction": 3}])


@pytest.mark.parametrize(
    ("answer", "prediction", "choices", "correct"),
    [
        # a choice with the answer's word set adds no distractor: "#" is not a word character,
        # so C#:maj/1 counts as C:maj/1
        ("C:maj/1", "C#:maj/1", ["C:maj/1", "C#:maj/1", "G:maj/1"], True),
        ("C:maj/1", "G:maj/1", ["C:maj/1", "C#:maj/1", "G:maj/1"], False),
        # the other choice names the same words in another order: credited too
        ("joy; anger and joy", "anger and joy; joy", ["joy; anger and joy",
                                                     "anger and joy; joy", "sadness"], True),
        # the answer repeated among the choices adds nothing; a repeated distractor still counts
        ("nine", "nine.", ["four", "nine", "fourteen", "fourteen", "nine"], True),
        ("nine", "fourteen", ["four", "nine", "fourteen", "fourteen"], False),
        # \\w is Unicode-aware: an unaccented spelling misses the answer word
        ("Fr\u00e9d\u00e9ric Chopin", "FR\u00c9D\u00c9RIC chopin.", ["Franz Liszt", "Fr\u00e9d\u00e9ric Chopin"], True),
        ("Fr\u00e9d\u00e9ric Chopin", "Frederic Chopin", ["Franz Liszt", "Fr\u00e9d\u00e9ric Chopin"], False),
        # punctuation splits words: "usual'quiet" is "usual" + "quiet"
        ("Contrasts usual 'quiet evening'.", "Contrasts usual'quiet evening'.",
         ["Contrasts usual 'quiet evening'.", "They went home early."], True),
        # numbers given as JSON numbers are matched as their digits
        (3, "3.", [2, 3, 4], True),
        (3, "2", [2, 3, 4], False),
        # a prediction without any word is wrong, even if the answer has none either
        ("?", "?", ["?", "!"], False),
        ("A", '"".', ["A", "B"], False),
    ],
)
def test_string_match_official_quirks(answer, prediction, choices, correct):
    assert mmau_string_match(answer, prediction, choices) is correct


def _counts(group: dict) -> dict:
    return {k: (v["correct"], v["count"]) for k, v in group.items()}


def test_edge_cases_scored_by_hand():
    """Hand-written rows, one per edge case of the released DeSTA2.5 predictions, scored by hand
    with both keys (P = "The correct answer is: "; pred = model_prediction, out = model_output):

    row  task   diff    case                                          pred  out
     0   sound  medium  prefix words "the", "is" are distractor words  ok    wrong
     1   music  medium  reasoning before P keeps a distractor "1"      wrong wrong
     2   speech hard    other choice, same word set; answer repeated   ok    ok
     3   speech easy    two choices, picks the other                   wrong wrong
     4   music  medium  C#:maj/1 has the word set of C:maj/1           ok    ok
     5   sound  hard    "2." for "3"                                   wrong wrong
     6   music  hard    "Frederic" is not "frederic"-with-accents      wrong wrong
     7   speech medium  refusal without P                              wrong wrong
     8   sound  medium  empty output                                   wrong wrong (empty)
     9   sound  easy    no sub-category; "the" from "Yes, it is the…"  ok    wrong
    10   music  easy    P + '"".': no word once P is removed           wrong wrong (pred empty)
    11   speech medium  no prediction keys: not scored
    13   speech medium  "usual'quiet" glued by the model               ok    wrong

    pred: 5/12; sound 2/4, music 1/4, speech 2/4; easy 1/3, medium 3/6, hard 1/3.
    out:  2/12; sound 0/4, music 1/4, speech 1/4; easy 0/3, medium 1/6, hard 1/3.
    Row 9 is counted in task, difficulty and total but left out of the sub-category table.
    """
    rows = read_mmau_predictions(EDGE_CASES)
    # the file's model_prediction is exactly DeSTA's extraction of its model_output
    assert all(extract_mmau_prediction(r["model_output"]) == r["model_prediction"]
               for r in rows if "model_output" in r)

    pred = score_mmau(rows)
    assert pred["total"] == {"correct": 5, "count": 12, "accuracy": pytest.approx(500 / 12)}
    assert _counts(pred["task"]) == {"sound": (2, 4), "music": (1, 4), "speech": (2, 4)}
    assert _counts(pred["difficulty"]) == {"easy": (1, 3), "medium": (3, 6), "hard": (1, 3)}
    assert _counts(pred["sub-category"]) == {
        "Acoustic Scene Reasoning": (1, 2), "Temporal Reasoning": (1, 2),
        "Emotion State summarisation": (1, 1), "Phonological Sequence Decoding": (0, 1),
        "Temporal Event Reasoning": (0, 1), "Socio-cultural Interpretation": (0, 1),
        "Counting": (0, 1), "Instrumentation": (0, 1), "Dissonant Emotion Interpretation": (1, 1),
    }
    assert [ok for _, ok in pred["results"]] == [
        True, False, True, False, True, False, False, False, False, True, False, True]
    assert (pred["no_prediction"], pred["empty_prediction"]) == (1, 2)

    out = score_mmau(rows, prediction_key="model_output")
    assert out["total"]["correct"] == 2 and out["total"]["count"] == 12
    assert _counts(out["task"]) == {"sound": (0, 4), "music": (1, 4), "speech": (1, 4)}
    assert _counts(out["difficulty"]) == {"easy": (0, 3), "medium": (1, 6), "hard": (1, 3)}
    assert out["sub-category"]["Dissonant Emotion Interpretation"] == {
        "correct": 0, "count": 1, "accuracy": 0.0}
    assert (out["no_prediction"], out["empty_prediction"]) == (1, 1)


def test_runner_extracts_like_desta_when_only_model_output(tmp_path):
    """A file with the official key only: the default key is extracted with DeSTA's rule, so
    the scores equal those of the file with DeSTA's own model_prediction."""
    from desta.evaluation.runner import evaluate

    rows = json.loads(EDGE_CASES.read_text())
    for row in rows:
        row.pop("model_prediction", None)
    only_output = tmp_path / "outputs.json"
    only_output.write_text(json.dumps(rows))
    scores = evaluate("mmau", predictions=only_output, out=tmp_path / "run", report=False).scores
    reference = score_mmau(read_mmau_predictions(EDGE_CASES))
    assert scores["total"] == reference["total"]
    assert scores["sub-category"] == reference["sub-category"]


def test_test_split_without_answers_is_read_and_not_scored(tmp_path):
    """The MMAU test split withholds its answers (blank or absent): the file reads (so a model
    can answer it), and scoring says that nothing can be scored instead of a silent near-zero
    accuracy (the string match against an empty answer would count most replies wrong)."""
    from desta.evaluation.runner import evaluate

    rows = json.loads(SAMPLE.read_text())
    for i, row in enumerate(rows):
        if i % 2:
            row["answer"] = ""
        else:
            del row["answer"]
    test_split = tmp_path / "mmau-test.json"
    test_split.write_text(json.dumps(rows))
    items = read_mmau(test_split)
    assert len(items) == 12 and {i.reference for i in items} == {""}
    predictions = [{**row, "model_output": f'The correct answer is: "{row["choices"][0]}"',
                    "model_prediction": f'"{row["choices"][0]}"'} for row in rows]
    scored = score_mmau(predictions)
    assert scored["no_answer"] == 12 and scored["total"]["count"] == 0
    assert "submit the predictions" in scored["note"] and scored["summary"] == {}
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps(predictions))
    result = evaluate("mmau", predictions=preds, out=tmp_path / "o")
    assert "the test split" in result.scores["note"]
    assert "submit the predictions" in (tmp_path / "o" / "report.md").read_text()
    # a file where only some rows lack an answer scores the others
    mixed = [dict(r) for r in json.loads(SAMPLE.read_text())]
    mixed[0]["answer"] = " "
    part = score_mmau([{**r, "model_prediction": r["answer"]} for r in mixed])
    assert (part["no_answer"], part["total"]["count"], part["total"]["correct"]) == (1, 11, 11)
    assert "note" not in part and part["summary"]["total"] == 100.0

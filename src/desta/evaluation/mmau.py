"""MMAU: DeSTA's multiple-choice prompt, answer extraction and the official string-match score.

Checked against the official scorer as DeSTA2.5 ships it (kehanlu/DeSTA2.5-Audio,
examples/evaluation/MMAU-v05.15.25/mmau_evaluate.py @ 0d790c44, a copy of Sakshi113/MMAU
evaluation.py) and the script that produced DeSTA2.5's released test-mini predictions
(inference_desta25_audio_vllm.py @ 07dce869). The official rule: lowercase both texts, take their
`\\b\\w+\\b` word sets; a prediction is correct iff it holds every answer word and none of the
words of the other choices (minus the words those share with the answer; a choice with the same
word set as the answer adds nothing); a prediction without any word is wrong. Rows without the
prediction key are skipped. Accuracy is reported per task, per difficulty, per sub-category (rows
without one are left out of that table) and in total, in percent.

DeSTA's extraction (`model_prediction`) deletes every exact `"The correct answer is: "` and
strips the ends; scoring that key reproduces the released figures (speech 71.17, sound 70.57,
music 56.29, total 66.00). The official script itself reads `model_output`; on the same file that
gives 59.70, because the words of the prefix ("the", "is", ...) hit other choices.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from desta.evaluation.records import (
    BenchmarkDataError,
    BenchmarkItem,
    read_json,
    require_audio,
    require_fields,
)
from desta.evaluation.registry import BenchmarkSpec, CliOption, Published, ScoreContext, register

logger = logging.getLogger(__name__)

# The released DeSTA2.5 MMAU run (inference_desta25_audio_vllm.py): this system prompt, then
# `<|AUDIO|>\n\n<question> Choose from the following options: "A", "B", "C" or "D"`.
MMAU_SYSTEM_PROMPT = (
    'Focus on the audio clip and instruction. Output your answer in the format '
    '"The correct answer is: ___".'
)
# DeSTA removes exactly this string (case and the trailing space included) from the output
ANSWER_PREFIX = "The correct answer is: "
PREDICTION_KEYS = ("model_prediction", "model_output")

_WORD = re.compile(r"\b\w+\b")


def build_mmau_prompt(question: str, choices: Sequence[str]) -> str:
    """The user-turn text: `<question> Choose from the following options: "A", "B", "C" or "D"`."""
    quoted = [f'"{c}"' for c in choices]
    if len(quoted) > 1:
        options = ", ".join(quoted[:-1]) + " or " + quoted[-1]
    else:
        options = quoted[0] if quoted else ""
    return f"{question} Choose from the following options: {options}"


MMAU_FIELDS = ("id", "audio_id", "question", "choices", "task")


def read_mmau(
    json_path: str | Path, *, audio_root: str | Path | None = None, check_audio: bool = False
) -> list[BenchmarkItem]:
    """Read an MMAU JSON file (e.g. `mmau-test-mini.json`, or the test split) into items.

    `audio_id` (like `./test-mini-audios/<id>.wav`) is resolved against `audio_root`, by default
    the JSON file's folder. The prompt is DeSTA's multiple-choice prompt; the whole original row
    is kept in `metadata` so predictions can be written back in the official format. `answer`
    may be blank or missing (the test split's answers are withheld: its predictions are
    generated, then submitted). With `check_audio`, every clip must exist.
    """
    json_path = Path(json_path)
    data = read_json(json_path, "MMAU file")
    if not isinstance(data, list):
        raise BenchmarkDataError(
            f"MMAU file {json_path} must hold a JSON list of questions, got {type(data).__name__}"
        )
    root = Path(audio_root) if audio_root is not None else json_path.parent
    items = []
    for index, row in enumerate(data):
        where = f"MMAU file {json_path}, entry {index}"
        if not isinstance(row, dict):
            raise BenchmarkDataError(f"{where} must be a JSON object")
        require_fields(row, MMAU_FIELDS, where)
        if not isinstance(row["choices"], list) or not row["choices"]:
            raise BenchmarkDataError(f"{where}: field 'choices' must be a non-empty list")
        items.append(
            BenchmarkItem(
                benchmark="mmau",
                id=str(row["id"]),
                audio_paths=[root / row["audio_id"]],
                prompt=build_mmau_prompt(row["question"], row["choices"]),
                reference=str(row.get("answer") or ""),
                metadata=dict(row),
            )
        )
    if check_audio:
        require_audio(items, json_path)
    return items


def mmau_messages(item: BenchmarkItem) -> list[dict[str, Any]]:
    """Chat messages for one MMAU item: the answer-format system prompt, then the audio and the
    multiple-choice question in the user turn (desta message format, one `<|AUDIO|>` locator)."""
    return [
        {"role": "system", "content": MMAU_SYSTEM_PROMPT},
        {
            "role": "user",
            "content": f"<|AUDIO|>\n\n{item.prompt}",
            "audios": [{"audio": str(item.audio_paths[0]), "text": None}],
        },
    ]


def extract_mmau_prediction(model_output: str | None) -> str:
    """DeSTA's `model_prediction`: the output with every `The correct answer is: ` removed and
    the ends stripped. Quotes and a final period stay (the word-set match ignores them); text
    before the prefix stays too, as in the released run (a reasoning answer keeps its
    reasoning, and the words there count)."""
    if not model_output:
        return ""
    return model_output.replace(ANSWER_PREFIX, "").strip()


def mmau_result_row(item: BenchmarkItem, model_output: str) -> dict[str, Any]:
    """The official predictions-file row: the original MMAU fields + `model_output` (raw text)
    + `model_prediction` (the extracted choice)."""
    row = dict(item.metadata)
    row["model_output"] = model_output
    row["model_prediction"] = extract_mmau_prediction(model_output)
    return row


def _words(text: Any) -> set[str]:
    # str(): a number given as an answer or choice is matched as its digits (the official
    # script would stop with an AttributeError there)
    return set(_WORD.findall(str(text).lower()))


def mmau_string_match(answer: Any, prediction: str | None, choices: Iterable[Any]) -> bool:
    """The official MMAU rule: all answer words present, no word unique to another choice.
    A prediction with no word (empty, blank, punctuation only, None) is wrong."""
    prediction_words = _words(prediction or "")
    if not prediction_words:
        return False
    answer_words = _words(answer)
    distractor_words: set[str] = set()
    for choice in choices:
        choice_words = _words(choice)
        if choice_words != answer_words:  # the answer itself (or a same-word duplicate)
            distractor_words |= choice_words - answer_words
    return answer_words <= prediction_words and prediction_words.isdisjoint(distractor_words)


def _accuracy(correct: int, count: int) -> dict[str, float | int]:
    return {"correct": correct, "count": count, "accuracy": 100.0 * correct / count if count else 0.0}


def score_mmau(
    items_with_predictions: Iterable[Mapping[str, Any]],
    prediction_key: str = "model_prediction",
) -> dict[str, Any]:
    """Score MMAU rows (official predictions format) with the official string match.

    `prediction_key` is `model_prediction` (DeSTA's extracted choice; scoring it reproduces the
    released figures) or `model_output` (the key the official script reads). As in the official
    script, rows without that key are not scored (counted in `no_prediction`) and a prediction
    without any word is scored wrong (counted in `empty_prediction`). Accuracies are in percent:
    `total`, and per `task`, `difficulty` and `sub-category` (each `{"correct", "count",
    "accuracy"}`); a row without a sub-category is left out of that table only, as the official
    script does. `results` lists `(id, correct)` per scored row. Rows whose `answer` is blank
    or missing (the test split withholds its answers) are not scored either: they are counted
    in `no_answer`, and when no row has an answer `note` says that the predictions must be
    submitted to the MMAU leaderboard instead. `summary` holds total and per-task accuracy.
    """
    if prediction_key not in PREDICTION_KEYS:
        raise BenchmarkDataError(
            f"prediction_key must be one of {PREDICTION_KEYS}, got {prediction_key!r}"
        )
    groups: dict[str, dict[str, list[int]]] = {
        "task": defaultdict(lambda: [0, 0]),
        "difficulty": defaultdict(lambda: [0, 0]),
        "sub-category": defaultdict(lambda: [0, 0]),
    }
    correct_total = count_total = no_prediction = empty = no_answer = 0
    results: list[tuple[str, bool]] = []
    for index, row in enumerate(items_with_predictions):
        where = f"MMAU prediction row {index} (id {row.get('id', '?')})"
        require_fields(row, ("choices", "task"), where)
        if not isinstance(row["choices"], list):
            raise BenchmarkDataError(
                f"{where}: 'choices' must be a list, got {type(row['choices']).__name__}"
            )
        if row.get("answer") is None or not str(row["answer"]).strip():
            no_answer += 1  # scoring against a blank answer would count as a silent miss
            continue
        if prediction_key not in row:
            no_prediction += 1
            continue
        prediction = row[prediction_key]
        if prediction is not None and not isinstance(prediction, str):
            raise BenchmarkDataError(
                f"{where}: {prediction_key!r} must be a string, got {type(prediction).__name__}"
            )
        if not _words(prediction or ""):
            empty += 1
        ok = mmau_string_match(row["answer"], prediction, row["choices"])
        correct_total += ok
        count_total += 1
        results.append((str(row.get("id", index)), ok))
        keys = [("task", row["task"]), ("difficulty", row.get("difficulty", "unknown"))]
        if row.get("sub-category") is not None:
            keys.append(("sub-category", row["sub-category"]))
        for group, key in keys:
            groups[group][str(key)][0] += ok
            groups[group][str(key)][1] += 1
    if no_prediction:
        logger.warning("%d MMAU rows have no %r and were not scored", no_prediction, prediction_key)
    out: dict[str, Any] = {
        "prediction_key": prediction_key,
        "total": _accuracy(correct_total, count_total),
        **{
            group: {key: _accuracy(c, n) for key, (c, n) in sorted(counts.items())}
            for group, counts in groups.items()
        },
        "no_prediction": no_prediction,
        "no_answer": no_answer,
        "empty_prediction": empty,
        "results": results,
    }
    if no_answer and not count_total:
        out["note"] = (f"none of the {no_answer} MMAU rows has an answer (the test split "
                       "withholds them): nothing is scored here; submit the predictions "
                       "(model_prediction) to the MMAU leaderboard for test-split scores")
        out["summary"] = {}
        return out
    if no_answer:
        logger.warning("%d MMAU rows have a blank answer and were not scored", no_answer)
    summary: dict[str, float | None] = {"total": out["total"]["accuracy"]}
    summary.update({task: cell["accuracy"] for task, cell in out["task"].items()})
    out["summary"] = summary
    return out


def read_mmau_predictions(path: str | Path) -> list[dict[str, Any]]:
    """Load an MMAU predictions file (a JSON list of rows, official format)."""
    data = read_json(path, "MMAU predictions file")
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise BenchmarkDataError(f"MMAU predictions file {path} must hold a JSON list of objects")
    return data


# ---------------------------------------------------------------------------------------------
# the runner's spec
# ---------------------------------------------------------------------------------------------


def _load(data: Path, subset: str | None) -> list[BenchmarkItem]:
    return read_mmau(data, check_audio=False)  # the runner checks the clips before generating


def _score(rows: list[dict[str, Any]], ctx: ScoreContext) -> dict[str, Any]:
    key = ctx.options.get("prediction_key") or "model_prediction"
    if key == "model_prediction":  # files with the official key only: extract as DeSTA does
        rows = [row if "model_prediction" in row or "model_output" not in row else
                {**row, "model_prediction": extract_mmau_prediction(row["model_output"])}
                for row in rows]
    return score_mmau(rows, prediction_key=key)


SRC_PAPER = "DeSTA2.5-Audio paper (arXiv 2507.02768), via REFERENCE.md section 1"
SRC_RELEASE = "DeSTA2.5-Audio released MMAU v05.15.25 test-mini predictions, via REFERENCE.md"

SPEC = register(BenchmarkSpec(
    "mmau", "MMAU test-mini / test (official string match)", _load, mmau_messages,
    mmau_result_row, _score, response_key="model_output",
    max_new_tokens=512,  # as DeSTA2.5's released MMAU run
    cli_options=(CliOption("--prediction-key", default="model_prediction",
                           choices=PREDICTION_KEYS, help="MMAU: which key to score"),),
    published={
        "total": [Published("DeSTA2.5-Audio", 57.50, SRC_PAPER, "original test-mini"),
                  Published("DeSTA2.5-Audio (v05.15.25)", 66.00, SRC_RELEASE)],
        "speech": [Published("DeSTA2.5-Audio (v05.15.25)", 71.17, SRC_RELEASE)],
        "sound": [Published("DeSTA2.5-Audio (v05.15.25)", 70.57, SRC_RELEASE)],
        "music": [Published("DeSTA2.5-Audio (v05.15.25)", 56.29, SRC_RELEASE)],
    },
))

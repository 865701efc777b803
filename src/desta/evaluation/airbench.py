"""AIR-Bench (Yang et al., ACL 2024): foundation (single choice) and chat (LLM judge 1-10
against a reference answer), scored as the official scripts of `OFA-Sys/AIR-Bench` do.

Official code read (facts only): `Inference_Foundation.py` @ d5c1bdf, `Inference_Chat.py`
@ 09f83c1, `score_foundation.py` @ d5c1bdf, `align_in_foundation.py` @ d5c1bdf,
`score_chat.py` @ 1b5bd7f, `cal_score.py` @ 2c35f44, `Chat_result_modelx.jsonl` @ b0f2796,
`README.md` @ 1b4313a.

Layout. `--data` is `Foundation/Foundation_meta.json` or `Chat/Chat_meta.json` (or the folder
holding one), a JSON list of rows. A row's clip is `<folder>/<task_name>_<dataset_name>/<path>`;
for task `Audio_Grounding` the clip is the `.flac` beside the `.wav` the row names (the last
three characters of `path` become `flac`). Foundation rows: `path, question, choice_a, choice_b
[, choice_c, choice_d], answer_gt, task_name, dataset_name, uniq_id`; chat rows: `meta_info,
question, answer_gt, path, task_name, dataset_name, uniq_id`. The output rows are the official
inference output (those fields + `response`; foundation rows carry `choice_c`/`choice_d` as
null when absent) plus our `id` and `split`.

Foundation prompt (verbatim): the fixed instruction, the question, then `A. ..\\nB. ..\\nC. ..
\\nD. ..` on separate lines; a two-choice row shows `C. None` and `D. None`, as the official
f-string does.

Foundation scoring. `score_foundation.py` reads a letter from the response (whitespace
stripped, newlines removed): its first character if that is A-D, else its second-to-last
character if that is A-D (`The answer is B.`), else the row fails; empty and `None` responses
fail. Failed rows are left out of the accuracy (counted in `fail_num`), accuracy is per
`<task_name>_<dataset_name>`, and rows whose `task_name` is null are skipped. The README's
optional GPT "align" step (`align_in_foundation.py`, gpt-3.5-turbo) first maps every response
to a letter with a fixed prompt; the letter rule then reads the aligner's reply. We report:

- `official`: `score_foundation.py` on the raw responses, exactly;
- `aligned` (the headline): the align step first, by the judge with the official prompt when
  one is given, else offline by `parse_choice` (stated letters like `Answer: B` or `(B)`, or
  the text of exactly one choice); then the same letter rule and tally. The GPT aligner picks
  an option at random when nothing matches, where the offline one fails the row.

Chat scoring. `score_chat.py` (gpt-4-0125-preview) sends one user message with the audio's
meta info, the question, Assistant 1 = the reference `answer_gt`, Assistant 2 = the model's
`response`, and asks for a single line of two scores. `cal_score.py` keeps a reply only when,
stripped and with newlines removed, it splits on single spaces into exactly two integers
(anything else fails and is left out; a score above 10 aborts the official script, here it
fails the reply), then averages both scores and counts wins (model above reference) per
category: speech (`speech_QA`, `speech_dialogue_QA`), sound (`sound_QA`,
`sound_generation_QA`), music (`music_QA`, `music_generation_analysis_QA`),
`speech_and_sound` and `speech_and_music`. Its default input `chat_score_cir.json` holds a
second pass with the answers swapped (model as Assistant 1); we run both orders by default and
average a category's per-order means. The README's "Mixed Audio" is the mean of
speech_and_sound and speech_and_music, and its "Average" the mean of Speech, Sound, Music and
Mixed Audio; both are derived here the same way.

Judged files score as they stand, without a judge: `score_chat.py`'s output (JSONL rows with
the judge's reply in `gen`, the model's answer in `Audio-LLM-response` and the judge prompt in
`openai_args`, whose Assistant order tells the pass) and `cal_score.py`'s input (a JSON list
of rows with the reply in `gpt-score`; a file name holding "cir" is the swapped pass, as
cal_score.py decides). With `--judge-url` they are judged again.

Differences from the official runs: judges are asked once, deterministically (the judge's
temperature, 0 by default, and a reply cache), where the official scripts sample at
temperature 1 or, for a random half of the prompts, 2; a null `response` fails a foundation row
(the official scorer crashes on it) and is skipped in chat, as there.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desta.evaluation.records import (
    BenchmarkDataError,
    BenchmarkFileNotFoundError,
    BenchmarkItem,
    read_json,
    require_audio,
    require_fields,
)
from desta.evaluation.registry import (
    DEFAULT_SYSTEM,
    BenchmarkSpec,
    CliOption,
    ScoreContext,
    audio_question_messages,
    register,
)

if TYPE_CHECKING:
    from desta.evaluation.judges import OpenAIJudge

logger = logging.getLogger(__name__)

LETTERS = "ABCD"
FOUNDATION_FIELDS = ("path", "question", "choice_a", "choice_b", "answer_gt", "task_name",
                     "dataset_name", "uniq_id")
CHAT_FIELDS = ("meta_info", "path", "question", "answer_gt", "task_name", "dataset_name",
               "uniq_id")

# Inference_Foundation.py @ d5c1bdf: its instruction, byte for byte (grammar included)
FOUNDATION_INSTRUCTION = ("Choose the most suitable answer from options A, B, C, and D to "
                          "respond the question in next line, you may only choose A or B or C "
                          "or D.")

# foundation task_name (as spelled in Foundation_meta.json, typos included) -> the paper's
# category; the official repo ships no such list, the spellings come from a public scorer
# of the released meta file. Unlisted names fall under "other".
FOUNDATION_CATEGORIES: dict[str, str] = {
    **{name: "speech" for name in (
        "Speech_Grounding", "Spoken_Language_Identification", "Speaker_Gender_Recognition",
        "Speaker_Emotion_Recontion", "Speaker_Age_Prediction", "Speech_Entity_Reconition",
        "Speaker_Intent_Classification", "Speaker_Number_Verification",
        "Synthesized_Voice_Detection")},
    **{name: "sound" for name in (
        "Audio_Grounding", "vocal_sound_classification", "Acoustic_Scene_Classification",
        "Sound_AQA")},
    **{name: "music" for name in (
        "Music_Instruments_Classfication", "Music_Genre_Recognition",
        "Music_Midi_Pitch_Analysis", "Music_Midi_Velocity_Analysis", "Music_AQA",
        "Music_Mood_Recognition")},
}

# cal_score.py's task_name -> category map and category order
CHAT_CATEGORIES: dict[str, str] = {
    "speech_QA": "speech", "speech_dialogue_QA": "speech",
    "sound_QA": "sound", "sound_generation_QA": "sound",
    "music_QA": "music", "music_generation_analysis_QA": "music",
    "speech_and_sound_QA": "speech_and_sound",
    "speech_and_music_QA": "speech_and_music",
}
CHAT_CATEGORY_ORDER = ("speech", "sound", "music", "speech_and_sound", "speech_and_music")
MIXED = ("speech_and_sound", "speech_and_music")
# judge passes: score_chat.py's order (reference = Assistant 1) and the swapped one
CHAT_ORDERS = ("reference_first", "model_first")


# ---------------------------------------------------------------------------------------------
# reading the release
# ---------------------------------------------------------------------------------------------


def options_of(row: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
    """`(choice_a, choice_b, choice_c, choice_d)`, None where the row has no such key (the
    official scripts' `row.get`)."""
    return (row["choice_a"], row["choice_b"], row.get("choice_c"), row.get("choice_d"))


def choices_of(row: Mapping[str, Any]) -> list[str]:
    """The row's choices in letter order (`choice_a` .. `choice_d`, those present)."""
    return [str(c) for c in options_of(row) if c not in (None, "")]


def clip_path(folder: Path, row: Mapping[str, Any]) -> Path:
    """Where the official inference scripts look for a row's clip."""
    name = str(row["path"])
    if row["task_name"] == "Audio_Grounding":
        name = name[:-3] + "flac"  # the release stores these clips as FLAC
    return folder / f"{row['task_name']}_{row['dataset_name']}" / name


def foundation_prompt(row: Mapping[str, Any]) -> str:
    """The official foundation prompt: instruction, question, the four lettered options."""
    a, b, c, d = options_of(row)
    return f"{FOUNDATION_INSTRUCTION}\n{row['question']}\nA. {a}\nB. {b}\nC. {c}\nD. {d}"


def answer_letter(row: Mapping[str, Any], where: str = "AIR-Bench foundation row") -> str:
    """The letter of the choice equal to `answer_gt` (the first one, as the official chain of
    comparisons); a row whose answer is no choice is a data error (the official scorer exits)."""
    for letter, option in zip(LETTERS, options_of(row), strict=True):
        if option is not None and row["answer_gt"] == option:
            return letter
    raise BenchmarkDataError(
        f"{where}: answer_gt {row['answer_gt']!r} is not one of its choices "
        f"{[c for c in options_of(row) if c is not None]}; fix the meta file"
    )


def _split_of(path: Path, subset: str | None) -> str:
    if subset in ("foundation", "chat"):
        return subset
    name = path.name.lower()
    if "foundation" in name:
        return "foundation"
    if "chat" in name:
        return "chat"
    raise BenchmarkDataError(
        f"cannot tell whether {path} is AIR-Bench foundation or chat; pass --subset "
        "foundation or --subset chat"
    )


def read_airbench(data: str | Path, subset: str | None = None, *,
                  check_audio: bool = False) -> list[BenchmarkItem]:
    """Read `Foundation_meta.json` or `Chat_meta.json` (or the folder holding one) into items
    with id `<split>:<uniq_id>`; with `check_audio`, every clip must exist (a model run checks
    that anyway; scoring a predictions file needs only the meta file)."""
    path = Path(data)
    if subset not in (None, "foundation", "chat"):
        raise BenchmarkDataError(f"AIR-Bench --subset must be foundation or chat, got {subset!r}")
    if path.is_dir():
        found = sorted(path.glob("*_meta.json"))
        if subset:
            found = [p for p in found if subset in p.name.lower()]
        if len(found) != 1:
            raise BenchmarkFileNotFoundError(
                f"expected one AIR-Bench *_meta.json in {path} (found {len(found)}); pass the "
                "file itself (Foundation_meta.json or Chat_meta.json)"
            )
        path = found[0]
    split = _split_of(path, subset)
    rows = read_json(path, "AIR-Bench meta file")
    if not isinstance(rows, list):
        raise BenchmarkDataError(f"AIR-Bench meta file {path} must hold a JSON list of rows")
    items = []
    for index, row in enumerate(rows):
        where = f"AIR-Bench {split} file {path}, entry {index}"
        if not isinstance(row, dict):
            raise BenchmarkDataError(f"{where} must be a JSON object")
        require_fields(row, FOUNDATION_FIELDS if split == "foundation" else CHAT_FIELDS, where)
        metadata = dict(row)
        if split == "foundation":
            answer_letter(row, where)
            prompt = foundation_prompt(row)
            metadata.setdefault("choice_c", None)
            metadata.setdefault("choice_d", None)
        else:
            prompt = str(row["question"])  # Inference_Chat.py: the question alone
        metadata["split"] = split
        items.append(BenchmarkItem(benchmark="airbench", id=f"{split}:{row['uniq_id']}",
                                   audio_paths=[clip_path(path.parent, row)], prompt=prompt,
                                   reference=str(row["answer_gt"]), metadata=metadata))
    if check_audio:
        require_audio(items, path, hint="Download the AIR-Bench audio next to the meta file "
                                        "(<task_name>_<dataset_name>/ folders).")
    return items


def airbench_result_row(item: BenchmarkItem, response: str) -> dict[str, Any]:
    """The official output row (the meta row's fields + `response`) with our `id`, `split`."""
    row = dict(item.metadata)
    row["id"] = item.id
    row["response"] = response
    return row


# ---------------------------------------------------------------------------------------------
# foundation
# ---------------------------------------------------------------------------------------------


def official_letter(response: Any) -> str | None:
    """The letter `score_foundation.py` reads: the first character of the stripped response
    (newlines removed) if it is A-D, else its second-to-last character if that is; None when
    neither is, or the response is empty, `None` or the string 'None'."""
    if response is None:
        return None
    text = str(response).strip().replace("\n", "")
    if not text or text == "None":
        return None
    if text[0] in LETTERS:
        return text[0]
    if len(text) > 1 and text[-2] in LETTERS:
        return text[-2]
    return None


def parse_choice(response: str | None, choices: Sequence[str]) -> int | None:
    """The index of the choice a response picks, or None (the offline align step).

    A letter counts when the reply is the letter (`B`, `B.`, `(B)`, `**B**`), starts with it
    followed by `.`/`)`/`:` (`B. dog`), or states it (`Answer: B`, `the answer is (B)`,
    `option B`); otherwise the reply must contain exactly one choice's full text (whole words,
    case-insensitive)."""
    text = (response or "").strip()
    if not text:
        return None
    letters = LETTERS[:len(choices)]
    patterns = [
        rf"^[\*\"'(\[]*([{letters}])[\*\"')\]]*[.:]?$",
        rf"^[\*(]*([{letters}])[\*]*\s*[.):]",
        rf"(?i:answer|option|choice)\s*(?i:is)?\s*[:\-]?\s*[\*\"'(\[]*([{letters}])(?![\w'])",
        # a lower-case letter only where it cannot be the article: "option c", "answer: (b)."
        rf"(?i:answer|option|choice)\s*(?i:is)?\s*[:\-]?\s*[\*\"'(\[]*([{letters.lower()}])"
        rf"(?=[\*\"')\].,;:!]|\s*$)",
    ]
    for pattern in patterns:
        m = re.search(pattern, text)
        if m:
            return letters.index(m.group(1).upper())

    def words(t: str) -> str:
        return f" {' '.join(re.sub(r'[^0-9a-z]+', ' ', t.lower()).split())} "

    # choice texts, longest first and masked once found: "hot dog" is not also "dog"
    remaining, hits = words(text), []
    for i in sorted(range(len(choices)), key=lambda k: -len(choices[k])):
        needle = words(choices[i])
        if needle.strip() and needle in remaining:
            hits.append(i)
            remaining = remaining.replace(needle, " \x00 ")
    return hits[0] if len(hits) == 1 else None


def rule_align(row: Mapping[str, Any]) -> str | None:
    """The offline stand-in for the GPT align step: the letter `parse_choice` finds, or None."""
    if row.get("response") is None:
        return None
    picked = parse_choice(str(row["response"]), choices_of(row))
    return None if picked is None else LETTERS[picked]


def align_messages(row: Mapping[str, Any]) -> list[dict[str, str]]:
    """`align_in_foundation.py`'s prompt (@ d5c1bdf, byte for byte): one user message asking
    which option the response matches (only A and B listed when the row lacks choice C or D)."""
    a, b, c, d = options_of(row)
    head = ('There is a question "QUESTION", and one response is "ANSWER". Among the following '
            "choices, which option best matches this response? You may only response with the "
            "letter of the option. If the letter of an option has already appeared in the "
            "Answer, then simply return that letter. If there are no matching options, then "
            "choose one at random. The following lines are the options.")
    # the official order of substitution: the response first, then the question
    head = head.replace("ANSWER", str(row["response"])).replace("QUESTION", str(row["question"]))
    lines = [head, f"A. {a}", f"B. {b}"]
    if c is not None and d is not None:
        lines += [f"C. {c}", f"D. {d}"]
    lines.append("To reiterate, the response you provide to me must be a single letter, "
                 "either A, B, C, or D.")
    return [{"role": "user", "content": "\n".join(lines)}]


def _pct(num: int, den: int) -> float | None:
    return 100.0 * num / den if den else None


def tally_foundation(rows: Sequence[Mapping[str, Any]],
                     letters: Sequence[str | None]) -> dict[str, Any]:
    """`score_foundation.py`'s tally of the letters read from each row: per
    `<task_name>_<dataset_name>` (in order of first appearance) correct / counted / failed and
    accuracy = correct / counted (failed rows left out), plus our pooled totals per category
    and overall, and `accuracy_fails_wrong` (failed rows counted as wrong)."""
    tasks: dict[str, dict[str, Any]] = {}
    skipped = 0
    for index, (row, letter) in enumerate(zip(rows, letters, strict=True)):
        if row["task_name"] is None:
            skipped += 1  # score_foundation.py: "task_name is None", not counted at all
            continue
        task_id = f"{row['task_name']}_{row['dataset_name']}"
        cell = tasks.setdefault(task_id, {
            "task_name": row["task_name"], "dataset_name": row["dataset_name"],
            "category": FOUNDATION_CATEGORIES.get(str(row["task_name"]), "other"),
            "correct": 0, "total": 0, "fail": 0})
        if letter is None:
            cell["fail"] += 1
            continue
        truth = answer_letter(row, f"AIR-Bench foundation row {index} (id {row.get('id', '?')})")
        cell["total"] += 1
        cell["correct"] += letter == truth
    for cell in tasks.values():
        cell["accuracy"] = _pct(cell["correct"], cell["total"])
    pooled: dict[str, list[int]] = {}
    for cell in tasks.values():
        acc = pooled.setdefault(cell["category"], [0, 0, 0])
        acc[0] += cell["correct"]
        acc[1] += cell["total"]
        acc[2] += cell["fail"]
    correct = sum(c["correct"] for c in tasks.values())
    total = sum(c["total"] for c in tasks.values())
    fail = sum(c["fail"] for c in tasks.values())
    order = [c for c in ("speech", "sound", "music", "other") if c in pooled]
    return {
        "accuracy": _pct(correct, total), "correct": correct, "total_sum": total,
        "fail_num": fail, "skipped": skipped,
        "accuracy_fails_wrong": _pct(correct, total + fail),
        "categories": {c: {"correct": pooled[c][0], "total": pooled[c][1], "fail": pooled[c][2],
                           "accuracy": _pct(pooled[c][0], pooled[c][1])} for c in order},
        "tasks": tasks,
    }


def score_foundation(rows: Sequence[Mapping[str, Any]],
                     judge: OpenAIJudge | None = None) -> dict[str, Any]:
    """Foundation scores: `official` (the letter rule on raw responses) and `aligned` (the
    align step, by `judge` with the official prompt or offline by rule, then the letter rule);
    the top-level accuracy and summary are the aligned ones."""
    for index, row in enumerate(rows):
        require_fields(row, ("choice_a", "choice_b", "answer_gt", "task_name", "dataset_name",
                             "response"),
                       f"AIR-Bench foundation row {index} (id {row.get('id', '?')})")
    official = tally_foundation(rows, [official_letter(r["response"]) for r in rows])
    if judge is None:
        aligned_letters = [rule_align(r) for r in rows]
        method = ("offline rule-based align step (stand-in for align_in_foundation.py's GPT "
                  "step), then score_foundation.py's letter rule")
    else:
        # align_in_foundation.py leaves out rows whose response is null
        asked = [i for i, r in enumerate(rows) if r["response"] is not None]
        replies = judge.complete_many([align_messages(rows[i]) for i in asked],
                                      desc="AIR-Bench foundation align") if asked else []
        aligned_letters = [None] * len(rows)
        for i, reply in zip(asked, replies, strict=True):
            aligned_letters[i] = official_letter(reply)
        method = (f"align step by LLM judge {judge.model} (align_in_foundation.py prompt), "
                  "then score_foundation.py's letter rule")
    aligned = tally_foundation(rows, aligned_letters)
    summary: dict[str, float | None] = {
        f"{c} accuracy": v["accuracy"] for c, v in aligned["categories"].items()}
    summary["foundation accuracy"] = aligned["accuracy"]
    summary["foundation accuracy (letter rule on raw responses)"] = official["accuracy"]
    return {"accuracy": aligned["accuracy"], "count": len(rows), "method": method,
            "aligned": aligned, "official": official, "summary": summary}


# ---------------------------------------------------------------------------------------------
# chat
# ---------------------------------------------------------------------------------------------

# score_chat.py @ 1b5bd7f (`build_test_file`): its judge prompt, byte for byte; X..X are its
# placeholders
CHAT_JUDGE_TEMPLATE = (
    "You are a helpful and precise assistant for checking the quality of the answer.\n"
    "[Detailed Audio Description]\nXAudioX\n[Question]\nXQuestionX\n"
    "[The Start of Assistant 1s Answer]\nXAssistant1X\n[The End of Assistant 1s Answer]\n"
    "[The Start of Assistant 2s Answer]\nXAssistant2X\n[The End of Assistant 2s Answer]\n"
    "[System]\n"
    "We would like to request your feedback on the performance of two AI assistants in "
    "response to the user question and audio description displayed above. AI assistants are "
    "provided with detailed audio descriptions and questions.\n"
    "Please rate the helpfulness, relevance, accuracy, and comprehensiveness of their "
    "responses. Each assistant receives an overall score on a scale of 1 to 10, where a "
    "higher score indicates better overall performance. Please output a single line "
    "containing only two values indicating the scores for Assistant 1 and 2, respectively. "
    "The two scores are separated by a space."
)


def chat_judge_messages(row: Mapping[str, Any], order: str = "reference_first"
                        ) -> list[dict[str, str]]:
    """The official judge message for a chat row: Assistant 1 is the reference and Assistant 2
    the model (`reference_first`, score_chat.py), or the other way round (`model_first`)."""
    if order not in CHAT_ORDERS:
        raise ValueError(f"order must be one of {CHAT_ORDERS}, got {order!r}")
    first, second = str(row["answer_gt"]), str(row["response"])
    if order == "model_first":
        first, second = second, first
    # the official chain of str.replace, in its order
    content = (CHAT_JUDGE_TEMPLATE.replace("XAudioX", str(row["meta_info"]))
               .replace("XQuestionX", str(row["question"]))
               .replace("XAssistant1X", first).replace("XAssistant2X", second))
    return [{"role": "user", "content": content}]


def parse_chat_scores(reply: str | None) -> tuple[int, int] | None:
    """(Assistant 1's score, Assistant 2's score) as `cal_score.py` reads them, or None: the
    reply, stripped and with newlines removed, must split on single spaces into exactly two
    integers, neither above 10."""
    parts = (reply or "").strip().replace("\n", "").split(" ")
    if len(parts) != 2:
        return None
    try:
        first, second = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    if first > 10 or second > 10:
        logger.warning("AIR-Bench chat judge gave a score above 10 (%r); cal_score.py would "
                       "abort, here the reply is left out", reply)
        return None
    return first, second


def chat_category(task_name: Any) -> str:
    """cal_score.py's category of a chat `task_name`."""
    try:
        return CHAT_CATEGORIES[str(task_name)]
    except KeyError:
        raise BenchmarkDataError(
            f"AIR-Bench chat task_name {task_name!r} is not one cal_score.py knows "
            f"({', '.join(CHAT_CATEGORIES)})"
        ) from None


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _chat_cell(pairs: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """cal_score.py's figures over (reference, model) score pairs."""
    n = len(pairs)
    return {"count": n,
            "reference": sum(r for r, _ in pairs) / n if n else None,
            "model": sum(m for _, m in pairs) / n if n else None,
            "win_rate": sum(m > r for r, m in pairs) / n if n else None}


def _stored_replies(row: Mapping[str, Any]) -> Mapping[str, Any]:
    replies = row.get("judge_replies")
    return replies if isinstance(replies, Mapping) else {}


def score_chat(rows: Sequence[Mapping[str, Any]], judge: OpenAIJudge | None,
               orders: Sequence[str] = CHAT_ORDERS) -> dict[str, Any]:
    """Chat scores by the official judge prompt and `cal_score.py`'s tally, for each judge
    pass in `orders`; per category the model's and the reference's mean scores and the
    model's win rate, then the mean over the passes, the README's mixed-audio category (the
    mean of the two mixed categories) and average. Rows with a null response are skipped, as
    score_chat.py does. Without a judge, rows carrying the official judge's replies
    (`judge_replies`, from the benchmark's judged files) are tallied as they stand, each pass
    over the rows that have its reply (`orders` is then the passes present)."""
    if not orders or any(o not in CHAT_ORDERS for o in orders):
        raise BenchmarkDataError(f"AIR-Bench chat orders must be among {CHAT_ORDERS}, "
                                 f"got {list(orders)}")
    stored = judge is None and bool(rows) and all(_stored_replies(r) for r in rows)
    for index, row in enumerate(rows):
        where = f"AIR-Bench chat row {index} (id {row.get('id', '?')})"
        if stored:  # cal_score.py reads the task name and the judge's reply only
            require_fields(row, ("task_name",), where)
            continue
        require_fields(row, ("meta_info", "question", "answer_gt", "task_name", "response"),
                       where)
        if row["meta_info"] is None:
            raise BenchmarkDataError(f"{where} has no meta_info, which the judge prompt needs")
    categories = [chat_category(row["task_name"]) for row in rows]
    if stored:
        asked = list(range(len(rows)))
        present = {o for r in rows for o in _stored_replies(r)}
        orders = [o for o in CHAT_ORDERS if o in present]
    else:
        asked = [i for i, row in enumerate(rows) if row["response"] is not None]
    if not stored and asked and judge is None:
        raise BenchmarkDataError("AIR-Bench chat needs an LLM judge: pass --judge-url and "
                                 "--judge-model (the official judge is gpt-4-0125-preview)")
    passes: dict[str, dict[str, Any]] = {}
    for order in orders:
        if stored:
            judged = [i for i in asked if order in _stored_replies(rows[i])]
            replies = [str(_stored_replies(rows[i])[order]) for i in judged]
        else:
            assert judge is not None or not asked
            judged = asked
            replies = judge.complete_many([chat_judge_messages(rows[i], order) for i in asked],
                                          desc=f"AIR-Bench chat judge ({order})") \
                if asked and judge is not None else []
        by_category: dict[str, list[tuple[int, int]]] = {c: [] for c in CHAT_CATEGORY_ORDER}
        fail = two_part_fail = 0
        for i, reply in zip(judged, replies, strict=True):
            pair = parse_chat_scores(reply)
            if pair is None:
                fail += 1
                # cal_score.py counts a two-part reply that is not two integers as a success
                # too (total_sum is raised before int() fails)
                two_part_fail += len(reply.strip().replace("\n", "").split(" ")) == 2
                continue
            # stored as (reference, model)
            by_category[categories[i]].append(pair if order == "reference_first" else pair[::-1])
        cells = {c: _chat_cell(by_category[c]) for c in CHAT_CATEGORY_ORDER}
        cells["mixed audio"] = {key: _mean([cells[c][key] for c in MIXED])
                                for key in ("reference", "model", "win_rate")}
        cells["mixed audio"]["count"] = sum(cells[c]["count"] for c in MIXED)
        passes[order] = {"categories": cells, "fail_num": fail,
                         "success_num": sum(len(v) for v in by_category.values())
                         + two_part_fail}
    names = [*CHAT_CATEGORY_ORDER, "mixed audio"]
    keys = ("reference", "model", "win_rate")
    combined = {c: {key: _mean([passes[o]["categories"][c][key] for o in orders]) for key in keys}
                for c in CHAT_CATEGORY_ORDER}
    # the README's definition applied to the final numbers: the mean of the mixed categories
    combined["mixed audio"] = {key: _mean([combined[c][key] for c in MIXED]) for key in keys}
    board = ("speech", "sound", "music", "mixed audio")
    average = {key: _mean([combined[c][key] for c in board]) for key in ("reference", "model")}
    summary: dict[str, float | None] = {f"{c} (model)": combined[c]["model"] for c in names}
    summary["chat average (model)"] = average["model"]
    summary["chat average (reference)"] = average["reference"]
    if stored:
        method = f"the official judge's stored replies, passes: {', '.join(orders)}"
    else:
        method = f"LLM judge {judge.model}, score_chat.py prompt, passes: {', '.join(orders)}" \
            if judge is not None else None
    return {"model_score": average["model"], "reference_score": average["reference"],
            "count": len(rows), "skipped": len(rows) - len(asked), "orders": list(orders),
            "method": method, "categories": combined, "passes": passes, "summary": summary}


def score_airbench(rows: Sequence[Mapping[str, Any]], judge: OpenAIJudge | None = None,
                   split: str | None = None,
                   chat_orders: Sequence[str] = CHAT_ORDERS) -> dict[str, Any]:
    """Foundation or chat scores, by the rows' `split` field (else `split`; else foundation
    when the rows carry `choice_a`, as the official output files of the two splits differ)."""
    name = (rows[0].get("split") if rows else None) or split or (
        "foundation" if rows and "choice_a" in rows[0] else "chat")
    if name not in ("foundation", "chat"):
        raise BenchmarkDataError(f"AIR-Bench split must be foundation or chat, got {name!r}")
    mixed = {r.get("split") for r in rows} - {None, name}
    if mixed:
        raise BenchmarkDataError(f"AIR-Bench rows mix splits ({name}, {sorted(mixed)}); "
                                 "score foundation and chat files separately")
    if name == "foundation":
        result = score_foundation(rows, judge)
    else:
        result = score_chat(rows, judge, chat_orders)
    result["split"] = name
    return result


def _score(rows: list[dict[str, Any]], ctx: ScoreContext) -> dict[str, Any]:
    orders = ctx.options.get("airbench_chat_orders") or "both"
    return score_airbench(rows, ctx.judge, ctx.options.get("subset"),
                          ("reference_first",) if orders == "reference_first" else CHAT_ORDERS)


def _load(data: Path, subset: str | None) -> list[BenchmarkItem]:
    return read_airbench(data, subset)


def _split_of_row(row: Mapping[str, Any]) -> str:
    # chat rows have meta_info and no choices
    return "chat" if "meta_info" in row and "choice_a" not in row else "foundation"


def _pass_of_judged_row(row: Mapping[str, Any]) -> str:
    """Which Assistant order a `score_chat.py` output row was judged in: the one whose
    official prompt is the row's `openai_args` message (reference first when neither is)."""
    try:
        sent = row["openai_args"]["messages"][-1]["content"]
    except (KeyError, IndexError, TypeError):
        return "reference_first"
    for order in CHAT_ORDERS:
        if chat_judge_messages(row, order)[0]["content"] == sent:
            return order
    logger.warning("AIR-Bench judged row %s: its judge prompt is not the official one in "
                   "either order; read as reference first", row.get("uuid", "?"))
    return "reference_first"


def rows_from_official(content: Any, path: Path) -> list[dict[str, Any]]:
    """Rows of the benchmark's own files: inference output rows (`uniq_id`, no `id`) get our
    id `<split>:<uniq_id>`; `score_chat.py` output rows (`gen`) and `cal_score.py` input rows
    (`gpt-score`) become chat rows carrying the judge's reply for their pass
    (`judge_replies`)."""
    if not isinstance(content, list):
        raise BenchmarkDataError(f"AIR-Bench predictions file {path} must hold rows (a JSON "
                                 "list or JSONL)")
    rows = []
    for index, row in enumerate(content):
        if "gen" in row or "gpt-score" in row:
            out = {k: v for k, v in row.items() if k not in ("openai_args", "gen", "gpt-score")}
            if "response" not in out:
                out["response"] = row.get("Audio-LLM-response")
            if "gen" in row:
                order = _pass_of_judged_row({**row, "response": out["response"]})
                reply = row["gen"]
            else:  # cal_score.py: 'cir' in the input file name means the swapped pass
                order = "model_first" if "cir" in path.name else "reference_first"
                reply = row["gpt-score"]
            out["judge_replies"] = {order: reply}
            out.setdefault("split", "chat")
            key = row.get("uniq_id", row.get("uuid", index))
            out.setdefault("id", f"chat:{key}")
            rows.append(out)
        elif "id" not in row and "uniq_id" in row:
            rows.append({**row, "id": f"{_split_of_row(row)}:{row['uniq_id']}"})
        else:
            rows.append(row)
    return rows


SPEC = register(BenchmarkSpec(
    "airbench", "AIR-Bench foundation (letters) and chat (judge 1-10)", _load,
    audio_question_messages, airbench_result_row, _score, max_new_tokens=256,
    system_prompt=DEFAULT_SYSTEM, official_rows=rows_from_official,
    cli_options=(CliOption(
        "--airbench-chat-orders", default="both", choices=("both", "reference_first"),
        help="AIR-Bench chat: judge both answer orders and average (default), or only "
             "reference first as score_chat.py alone does"),),
    published_notes=("No AIR-Bench number is given in REFERENCE.md; none is shown.",),
))

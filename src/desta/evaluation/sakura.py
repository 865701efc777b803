"""SAKURA (Yang et al., Interspeech 2025): the data, the official LLM judge and its tally, an
offline rule-based stand-in, and the benchmark's own result and judgement files.

Official code (ckyang1124/SAKURA): `evaluation/llm_judge.py` (judge prompt, gpt-4o-2024-11-20
at temperature 0.0 and top_p 0.9, verdict extraction) and `evaluation/calculate_acc.py`
(accuracy). Their repository itself is not in the index we could read: the texts used here are
verbatim copies of those two files found in other public repositories (index ids 4403386993
and 4128483234, whose `llm_judge.py` carries the line "the parameter setting used in the
original paper"); no commit of ckyang1124/SAKURA can be named.

- Data: `<root>/<Track>/metadata.csv` (columns `file, attribute_label, single_instruction,
  single_answer, multi_instruction, multi_answer`) or `<root>/<Track>/metadata.json` (keyed by
  the clip's repository path, `data/Animal/audio/dog28.wav`, with the same fields), clips in
  `<root>/<Track>/audio/`. Each clip gives two items, `<Track>/<file>/single` and `.../multi`.
- Judge: `llm_judge.py`'s system prompt and user template, byte for byte (its indentation
  included), placeholders replaced in its order; the verdict is its regular expression
  `Explanation: (.*?)\\nJudgement: (.*?)(?:\\n\\n|$)` (else "No extracted judgement").
- Tally (`calculate_acc.py`): a verdict counts as correct iff `.lower().strip()` of it is
  exactly "correct"; "incorrect" is wrong, and anything else (a quoted `"correct"`, "correct.",
  no verdict) is invalid and wrong. Accuracy = correct / all rows, per track x hop.
- Offline (`match_option`, no judge given): a response counts only when it points at exactly
  one option (by letter or by the option's full text); paraphrases the judge accepts
  ("happiness" for "Happy") are missed, so this is a lower bound.

Other systems' files score as they stand (`rows_from_official`): a result file `{"attribute",
"type", "results": {clip: {"instruction", "response", "label"}}}` as the inference scripts
write them, and a judgement file `{"judge_model", ..., "results": {clip: {"Explanation",
"Judgement", "instruction", "model_response", "label"}}}` named as `llm_judge.py` names it
(`<result file>_judgements.json`). A clip key may be the file name or the metadata.json path.
The track and hop come from the document (`attribute`, `type`), else from the file or folder
names, else (the track) from the clip path; where they stay unknown the rows join `--data` by
clip and instruction.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
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
    Published,
    ScoreContext,
    audio_question_messages,
    register,
)

if TYPE_CHECKING:
    from desta.evaluation.judges import OpenAIJudge

CHANCE_LEVELS = {"Gender": 50.0, "Language": 25.0, "Emotion": 25.0, "Animal": 25.0}
HOPS = ("single", "multi")

_OPTION_MARK = re.compile(r"\(([a-z])\)")
_ANSWER = re.compile(r"^\s*\(([a-z])\)\s*(.*?)\s*$", re.DOTALL)


def parse_options(instruction: str, where: str = "instruction") -> dict[str, str]:
    """The inline options `(a) ... (b) ...` of a SAKURA instruction, as {"a": text, ...}.

    The options are the last run of markers `(a)`, `(b)`, ... in order; each text runs to the
    next marker (or the end), stripped.
    """
    marks = list(_OPTION_MARK.finditer(instruction))
    starts = [i for i, m in enumerate(marks) if m.group(1) == "a"]
    if not starts:
        raise BenchmarkDataError(f"{where}: no inline options '(a) ... (b) ...' in {instruction!r}")
    run = [marks[starts[-1]]]
    for m in marks[starts[-1] + 1:]:
        if ord(m.group(1)) == ord(run[-1].group(1)) + 1:
            run.append(m)
    if len(run) < 2:
        raise BenchmarkDataError(f"{where}: fewer than two options in {instruction!r}")
    options = {}
    for i, m in enumerate(run):
        end = run[i + 1].start() if i + 1 < len(run) else len(instruction)
        text = instruction[m.end():end].strip()
        if not text:
            raise BenchmarkDataError(f"{where}: option ({m.group(1)}) is empty in {instruction!r}")
        options[m.group(1)] = text
    return options


def parse_answer(answer: str, where: str = "answer") -> tuple[str, str]:
    """Split a reference answer like `(a) dog` into ("a", "dog")."""
    m = _ANSWER.match(answer)
    if not m:
        raise BenchmarkDataError(f"{where}: answer {answer!r} is not of the form '(x) text'")
    return m.group(1), m.group(2)


def _normalise(text: str) -> str:
    """Lowercase, typographic quotes made plain, every non-word run one space, padded."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"[^\w']+|(?<!\w)'|'(?!\w)", " ", text)
    return f" {' '.join(text.split())} "


def _letters_named(response: str, letters: Iterable[str]) -> set[str]:
    """Option letters the response names explicitly: `(b)`, a leading `b)`/`b.`/`b:`,
    `answer: B`, `answer is b`, `option b`, `choice (b)`."""
    allowed = "".join(sorted(letters))
    found = set()
    patterns = [
        rf"\(([{allowed}])\)",
        rf"^\s*\**([{allowed}])\**\s*[).:]",
        # a bare letter after "answer" must end the phrase: "the answer is a dog" names no letter
        rf"\banswer\s*(?:is|:)?\s*[:\-]?\s*\**\(?([{allowed}])(?:\)|(?=\**\s*(?:$|[.,;:!])))",
        rf"\b(?:option|choice)\s*\(?([{allowed}])(?:\)|(?![\w']))",
    ]
    for pattern in patterns:
        for m in re.finditer(pattern, response, flags=re.IGNORECASE | re.MULTILINE):
            found.add(m.group(1).lower())
    return found


def _texts_named(response: str, options: Mapping[str, str]) -> set[str]:
    """Options whose whole text appears in the response (as whole words, case-insensitive).
    Longer texts are matched first and masked, so `Fast walking` does not also count `walking`."""
    text = _normalise(response)
    found = set()
    for letter, option in sorted(options.items(), key=lambda kv: -len(kv[1])):
        needle = _normalise(option)
        if needle.strip() and needle in text:
            found.add(letter)
            text = text.replace(needle, " \x00 ")
    return found


def match_option(response: str | None, options: Mapping[str, str]) -> str | None:
    """The single option letter a free-form response chooses, or None when it chooses none
    or several (unparsable, scored incorrect).

    An option counts as chosen when the response names its letter (`(b)`, `b)`, `Answer: B`)
    or contains its full text; naming one option both ways is still one choice.
    """
    if not response or not response.strip():
        return None
    chosen = _letters_named(response, options) | _texts_named(response, options)
    return chosen.pop() if len(chosen) == 1 else None


def sakura_result_row(item: BenchmarkItem, response: str) -> dict[str, Any]:
    """A result row for `score_sakura`: the item's id, track, hop, clip file, instruction,
    answer (`(x) text`), the label the official judge is shown (the answer) and the response."""
    return {
        "id": item.id,
        "track": item.metadata["track"],
        "hop": item.metadata["hop"],
        "file": item.metadata["file"],
        "instruction": item.prompt,
        "answer": item.reference,
        "label": item.reference,
        "response": response,
    }


# ---------------------------------------------------------------------------------------------
# the data: <root>/<Track>/metadata.csv or metadata.json, clips in <root>/<Track>/audio/
# ---------------------------------------------------------------------------------------------

SAKURA_TRACKS = ("Gender", "Language", "Emotion", "Animal")
SAKURA_COLUMNS = (
    "file",
    "attribute_label",
    "single_instruction",
    "single_answer",
    "multi_instruction",
    "multi_answer",
)


def _track_rows(root: Path, track: str) -> tuple[Path, list[tuple[str, dict[str, str]]]]:
    """(metadata file, [(where, row with a `file` field)]) of one track, CSV or JSON."""
    csv_path = root / track / "metadata.csv"
    if csv_path.is_file():
        with csv_path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in SAKURA_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise BenchmarkDataError(
                    f"{csv_path} lacks column(s) {', '.join(missing)}; header is "
                    f"{reader.fieldnames}")
            return csv_path, [(f"{csv_path} line {reader.line_num}", row) for row in reader]
    json_path = root / track / "metadata.json"
    if not json_path.is_file():
        raise BenchmarkFileNotFoundError(
            f"SAKURA {track} metadata not found: neither {csv_path} nor {json_path} exists")
    data = read_json(json_path, f"SAKURA {track} metadata")
    if not isinstance(data, dict):
        raise BenchmarkDataError(
            f"{json_path} must be a JSON object keyed by clip path (data/{track}/audio/x.wav)")
    rows = []
    for key, entry in data.items():
        where = f"{json_path} entry {key!r}"
        if not isinstance(entry, dict):
            raise BenchmarkDataError(f"{where} must be an object")
        require_fields(entry, SAKURA_COLUMNS[1:], where)
        rows.append((where, {**entry, "file": PurePosixPath(str(key)).name}))
    return json_path, rows


def read_sakura(
    root: str | Path, *, tracks: Iterable[str] | None = None, check_audio: bool = True
) -> list[BenchmarkItem]:
    """Read SAKURA tracks from `<root>/<Track>/metadata.csv` or `metadata.json` (+ `audio/`).

    Each clip gives two items, `<Track>/<file>/single` and `<Track>/<file>/multi`, whose
    metadata hold `track`, `hop` ("single" | "multi"), `file`, `attribute_label` and the parsed
    inline `options` ({"a": "dog", ...}). `tracks` defaults to the four official tracks present.
    """
    root = Path(root)
    if not root.is_dir():
        raise BenchmarkFileNotFoundError(
            f"SAKURA root folder not found: {root}. It must hold <Track>/metadata.csv (or "
            "metadata.json) folders.")
    if tracks is None:
        tracks = [t for t in SAKURA_TRACKS if (root / t / "metadata.csv").is_file()
                  or (root / t / "metadata.json").is_file()]
        if not tracks:
            raise BenchmarkFileNotFoundError(
                f"no SAKURA track found under {root}: expected one of "
                f"{', '.join(f'{t}/metadata.csv' for t in SAKURA_TRACKS)} (or metadata.json)")
    items = []
    for track in tracks:
        _, rows = _track_rows(root, track)
        for line, row in rows:
            for hop in HOPS:
                instruction = row[f"{hop}_instruction"]
                answer = row[f"{hop}_answer"]
                where = f"{line} ({hop}-hop)"
                options = parse_options(instruction, where=where)
                letter, _ = parse_answer(answer, where=where)
                if letter not in options:
                    raise BenchmarkDataError(
                        f"{where}: answer {answer!r} names option ({letter}) but the "
                        f"instruction only has {sorted(options)}")
                items.append(BenchmarkItem(
                    benchmark="sakura", id=f"{track}/{row['file']}/{hop}",
                    audio_paths=[root / track / "audio" / row["file"]], prompt=instruction,
                    reference=answer,
                    metadata={"track": track, "hop": hop, "file": row["file"],
                              "attribute_label": row["attribute_label"], "options": options,
                              "answer_letter": letter}))
    if check_audio:
        require_audio(items, root)
    return items


# ---------------------------------------------------------------------------------------------
# the benchmark's own result and judgement files
# ---------------------------------------------------------------------------------------------


def _official_answer(label: str, instruction: str) -> str | None:
    """A result file's `label` as a reference answer `(x) text`: kept when it has that form,
    else the option with that text (case-insensitive); None when it is neither."""
    if _ANSWER.match(label):
        return label
    try:
        options = parse_options(instruction)
    except BenchmarkDataError:
        return None
    for letter, text in options.items():
        if text.strip().lower() == label.strip().lower():
            return f"({letter}) {text}"
    return None


def _names_track_hop(names: Iterable[str]) -> tuple[str | None, str | None]:
    """The first track and the first hop named by the `_`/`-`/space-separated parts of `names`."""
    track = hop = None
    for name in names:
        for part in re.split(r"[_\-\s.]+", name):
            if track is None and part.capitalize() in SAKURA_TRACKS:
                track = part.capitalize()
            if hop is None and part.lower() in HOPS:
                hop = part.lower()
    return track, hop


def _clip_track(key: str) -> str | None:
    """The track a metadata.json clip path names (`data/Animal/audio/dog28.wav` -> Animal)."""
    parts = PurePosixPath(key).parts[:-1]
    return next((p for p in parts if p in SAKURA_TRACKS), None)


def rows_from_official(document: Any, path: Path) -> list[dict[str, Any]]:
    """Result rows (as `sakura_result_row` writes them, ids `<Track>/<clip>/<hop>`) from one of
    the benchmark's own files: a result file, or a judgement file (its rows also carry the
    official `judgement`, as it stands). Rows already in our format (a list) are returned as
    they are. A row whose track or hop the file does not tell has no `id`: it is joined to
    `--data` by clip and instruction (`row_key`)."""
    if isinstance(document, list):
        return document
    results = document.get("results")
    if not isinstance(results, Mapping) or not results:
        raise BenchmarkDataError(f"{path}: a SAKURA file needs a non-empty 'results' object")
    judged = "judge_model" in document or any(
        isinstance(r, Mapping) and "Judgement" in r for r in results.values())
    track = str(document["attribute"]).capitalize() if "attribute" in document else None
    hop = document.get("type")
    if hop is not None and hop not in HOPS:
        raise BenchmarkDataError(f"{path}: 'type' must be one of {HOPS}, got {hop!r}")
    if track is not None and track not in SAKURA_TRACKS:
        raise BenchmarkDataError(
            f"{path}: 'attribute' must be one of {SAKURA_TRACKS}, got {document['attribute']!r}")
    named_track, named_hop = _names_track_hop(
        [path.stem, path.parent.name, path.parent.parent.name])
    track, hop = track or named_track, hop or named_hop
    response_key = "model_response" if judged else "response"
    rows = []
    for clip, entry in results.items():
        where = f"{path}: results[{clip!r}]"
        if not isinstance(entry, Mapping):
            raise BenchmarkDataError(f"{where} must be an object")
        require_fields(entry, ("instruction", response_key, "label"), where)
        row: dict[str, Any] = {"file": PurePosixPath(str(clip)).name,
                               "instruction": entry["instruction"],
                               "label": str(entry["label"]),
                               "response": entry[response_key] or ""}
        answer = _official_answer(str(entry["label"]), str(entry["instruction"]))
        if answer is not None:
            row["answer"] = answer
        if judged:
            row["judgement"] = str(entry.get("Judgement", ""))
        clip_track = track or _clip_track(str(clip))
        if clip_track is not None:
            row["track"] = clip_track
        if hop is not None:
            row["hop"] = hop
        if clip_track is not None and hop is not None:
            row["id"] = f"{clip_track}/{row['file']}/{hop}"
        rows.append(row)
    return rows


def _join_key(file: str, instruction: str) -> str:
    return f"{file}\x1f{' '.join(instruction.split())}"


def official_row_key(row: Mapping[str, Any]) -> str | None:
    """The key an official row is joined to `--data` by: its clip and its instruction."""
    if "file" not in row or "instruction" not in row:
        return None
    return _join_key(str(row["file"]), str(row["instruction"]))


def item_join_keys(item: BenchmarkItem) -> list[str]:
    """The key each item answers to in `official_row_key` (clip + instruction)."""
    return [_join_key(item.metadata["file"], item.prompt)]


# ---------------------------------------------------------------------------------------------
# LLM judge (the official metric): evaluation/llm_judge.py, byte for byte
# ---------------------------------------------------------------------------------------------

# llm_judge.py `query_llm`'s system prompt (a trailing space, then the source's indentation)
JUDGE_SYSTEM_PROMPT = (
    "You are a good judge. You will be given a question with list of possible options, a "
    "ground truth answer and a model generated response. \n"
    "                       You have to determine whether the model generated answer is correct."
)

# llm_judge.py `user_prompt_template`: a triple-quoted string indented by four spaces in the
# source, so every line starts with them and the blank line before "Now here" holds them too
_JUDGE_LINES = (
    "",
    "You will be given a question with list of possible options, a ground truth answer and a "
    "model generated response. Determine whether the model generated response is correct "
    "based on the following criteria:",
    "1. Since there is one and only one corect answer, it should be judged incorrect if the "
    "model do not choose any option from the option list or it choose more than one option.",
    "2. If the model choose one option from the option list, it should be judged correct if "
    "the chosen option aligns with the ground truth answer, otherwise it should be judged "
    "incorrect.",
    "3. Read the question, options, ground truth answer and model generated response "
    "carefully before making a decision.",
    None,
    "Considering the following examples:",
    "Question: What is the capital of France? (a) Paris (b) London (c) Berlin (d) Madrid",
    "Ground truth answer: (a) Paris",
    'If the model generated response is: "The capital of France is Tokyo.", it should be '
    "judged incorrect since it does not choose any option from the option list.",
    'If the model generated response is: "The capital of France is Paris and London.", it '
    "should be judged incorrect since it chooses more than one option from the option list.",
    'If the model generated response is: "The capital of France is London.", it should be '
    "judged incorrect since it chooses one option from the option list but the chosen option "
    "does not align with the ground truth answer.",
    'If the model generated response is: "The capital of France is Paris.", it should be '
    "judged correct since it chooses one option from the option list and the chosen option "
    "aligns with the ground truth answer.",
    "Another Question: What is the underlying emotion of the speaker? (a) Happy (b) Sad (c) "
    "Angry (d) Neutral",
    "Ground truth answer: (a) Happy",
    'If the model generated response is: "The speaker is happy.", it should be judged correct '
    "since it chooses one option from the option list and the chosen option aligns with the "
    "ground truth answer.",
    'If the model generated response is: "The speaker expresses happiness.", it should be '
    'judged correct since "happiness" aligns with the ground truth answer "happy", and they '
    "are just different part of speech of the same word.",
    'If the model generated response is: "Happiness," it should be judged correct since it is '
    'also a valid derivative of the ground truth answer "happy".',
    "",
    "Now here is the question and the model generated response for you to judge:",
    "Question: [QUESTION]",
    "Ground truth answer: [GROUND_TRUTH_ANSWER]",
    "Model generated response: [MODEL_GENERATED_RESPONSE]",
    None,
    "Carefully make your decision based on the above criteria. Return your judgement with the "
    "following format:",
    "Explanation: <Your explanation on your judgement>",
    'Judgement: <Your judgement, either "correct" or "incorrect">',
    "",
)
# None: an empty line; every other line (the blank ones too) carries the 4-space indent, except
# the first (the text starts right after the opening quotes, with a newline)
JUDGE_USER_TEMPLATE = "\n".join(
    "" if line is None else ("" if i == 0 else "    " + line)
    for i, line in enumerate(_JUDGE_LINES))

# llm_judge.py: "the parameter setting used in the original paper" (max_tokens is recorded in
# the judgement file but not sent)
JUDGE_MODEL = "gpt-4o-2024-11-20"
JUDGE_SAMPLING: dict[str, Any] = {"temperature": 0.0, "top_p": 0.9}


def sakura_judge_messages(instruction: str, label: str, response: str) -> list[dict[str, str]]:
    """`llm_judge.py`'s messages for one row; `label` is the row's label as the result file
    gives it. The placeholders are replaced in the official order (question, response, label),
    so a response holding `[GROUND_TRUTH_ANSWER]` is filled too, as there."""
    user = (JUDGE_USER_TEMPLATE.replace("[QUESTION]", instruction)
            .replace("[MODEL_GENERATED_RESPONSE]", response)
            .replace("[GROUND_TRUTH_ANSWER]", label))
    return [{"role": "system", "content": JUDGE_SYSTEM_PROMPT},
            {"role": "user", "content": user}]


_EXTRACT = re.compile(r"Explanation: (.*?)\nJudgement: (.*?)(?:\n\n|$)", re.DOTALL)
NO_JUDGEMENT = "No extracted judgement"


def extract_judgement(text: str | None) -> str:
    """The `Judgement` string `llm_judge.py`'s `extract_judgement` stores for a judge reply
    ("No extracted judgement" when its pattern does not match)."""
    match = _EXTRACT.search(text or "")
    return match.group(2) if match else NO_JUDGEMENT


def official_verdict(judgement: str) -> bool | None:
    """`calculate_acc.py`'s reading of a stored `Judgement`: True for "correct", False for
    "incorrect" (after `.lower().strip()`), None (invalid, counted wrong) for anything else."""
    verdict = judgement.lower().strip()
    if verdict == "correct":
        return True
    return False if verdict == "incorrect" else None


def parse_sakura_verdict(text: str | None) -> bool | None:
    """The verdict of a judge reply as the official scripts read it: `extract_judgement`, then
    `official_verdict`."""
    return official_verdict(extract_judgement(text))


# ---------------------------------------------------------------------------------------------
# scoring
# ---------------------------------------------------------------------------------------------


def score_sakura(
    rows: Iterable[Mapping[str, Any]],
    *,
    method: str = "rule",
    judge: OpenAIJudge | None = None,
) -> dict[str, Any]:
    """Accuracy (percent) per track x hop for SAKURA result rows.

    Each row needs `track`, `hop`, `instruction` and `response` (see `sakura_result_row`).
    `method="rule"` uses `match_option` (offline; rows need `answer`); `method="judge"` asks
    `judge` with `llm_judge.py`'s prompt (the row's `label`, else its `answer`) and reads the
    verdict as the official scripts do; `method="judgements"` reads the rows' own `judgement`
    (the official judge's output) with `calculate_acc.py`'s rule. Returns
    `tracks[track][hop] = {"correct", "count", "accuracy", "unparsable"}` with the track's
    `chance`, overall `single` / `multi` / `total` (over rows), `average` (mean of the track x
    hop accuracies, as the paper's summary), `results` (id, correct) per row, and `summary`
    / `chance` for the report.
    """
    if method not in ("rule", "judge", "judgements"):
        raise BenchmarkDataError(f"method must be 'rule', 'judge' or 'judgements', got {method!r}")
    if method == "judge" and judge is None:
        raise BenchmarkDataError("method='judge' needs a judge (desta.evaluation.judges.OpenAIJudge)")
    rows = list(rows)
    verdicts: list[bool | None] = []
    for index, row in enumerate(rows):
        where = f"SAKURA result row {index} (id {row.get('id', '?')})"
        if "track" not in row or "hop" not in row:
            raise BenchmarkDataError(
                f"{where} has no track and hop: name the file <Track>_<model>_<single|multi>"
                "[_judgements].json (or keep 'attribute' and 'type' in it), or pass --data so "
                "rows join the benchmark by clip and instruction")
        require_fields(row, ("instruction", "response"), where)
        if row["hop"] not in HOPS:
            raise BenchmarkDataError(f"{where}: hop must be one of {HOPS}")
    if method == "rule":
        for index, row in enumerate(rows):
            where = f"SAKURA result row {index} (id {row.get('id', '?')})"
            if "answer" not in row:
                raise BenchmarkDataError(
                    f"{where}: label {row.get('label')!r} is neither '(x) text' nor the text of "
                    "one of the options; pass --data to take the answer from the benchmark")
            options = parse_options(row["instruction"], where=where)
            letter, _ = parse_answer(row["answer"], where=where)
            chosen = match_option(row["response"], options)
            verdicts.append(None if chosen is None else chosen == letter)
    elif method == "judgements":  # verdicts already made by the official judge script
        for index, row in enumerate(rows):
            require_fields(row, ("judgement",), f"SAKURA judged row {index}")
            verdicts.append(official_verdict(str(row["judgement"])))
    else:
        assert judge is not None
        for index, row in enumerate(rows):
            if "label" not in row and "answer" not in row:
                raise BenchmarkDataError(f"SAKURA result row {index} has no label for the judge")
        replies = judge.with_sampling(**JUDGE_SAMPLING).complete_many(
            [sakura_judge_messages(str(r["instruction"]), str(r.get("label", r.get("answer"))),
                                   r["response"] or "") for r in rows],
            desc="SAKURA judge")
        verdicts = [parse_sakura_verdict(reply) for reply in replies]

    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: {h: [0, 0, 0] for h in HOPS})
    results = []
    for row, verdict in zip(rows, verdicts, strict=True):
        cell = counts[row["track"]][row["hop"]]
        cell[0] += bool(verdict)
        cell[1] += 1
        cell[2] += verdict is None
        results.append((str(row.get("id", "")), bool(verdict)))

    def summary(correct: int, count: int, unparsable: int) -> dict[str, Any]:
        return {"correct": correct, "count": count, "unparsable": unparsable,
                "accuracy": 100.0 * correct / count if count else 0.0}

    tracks: dict[str, Any] = {}
    per_hop = {h: [0, 0, 0] for h in HOPS}
    cells = []
    headline: dict[str, float | None] = {}
    chance: dict[str, float] = {}
    for track in sorted(counts):
        tracks[track] = {"chance": CHANCE_LEVELS.get(track)}
        for hop in HOPS:
            c, n, u = counts[track][hop]
            tracks[track][hop] = summary(c, n, u)
            per_hop[hop] = [a + b for a, b in zip(per_hop[hop], (c, n, u), strict=True)]
            if n:
                cells.append(tracks[track][hop]["accuracy"])
                headline[f"{track} {hop}"] = tracks[track][hop]["accuracy"]
                if track in CHANCE_LEVELS:
                    chance[f"{track} {hop}"] = CHANCE_LEVELS[track]
    total = [a + b for a, b in zip(*per_hop.values(), strict=True)]
    average = sum(cells) / len(cells) if cells else 0.0
    headline["average"] = average
    out: dict[str, Any] = {
        "method": method,
        "tracks": tracks,
        "single": summary(*per_hop["single"]),
        "multi": summary(*per_hop["multi"]),
        "total": summary(*total),
        "average": average,
        "results": results,
        "summary": headline,
        "chance": chance,
    }
    if method == "rule":
        out["method_note"] = ("this run is scored by the offline rule-based option match; the "
                              "published numbers come from an LLM judge (GPT-4o), which also "
                              "accepts paraphrased answers")
    return out


# ---------------------------------------------------------------------------------------------
# the runner's spec
# ---------------------------------------------------------------------------------------------


def _load(data: Path, subset: str | None) -> list[BenchmarkItem]:
    tracks = subset.split(",") if subset else None
    return read_sakura(data, tracks=tracks, check_audio=False)


def _score(rows: list[dict[str, Any]], ctx: ScoreContext) -> dict[str, Any]:
    if ctx.judge is not None:
        return score_sakura(rows, method="judge", judge=ctx.judge)
    if rows and all("judgement" in row for row in rows):  # the official judge's own files
        return score_sakura(rows, method="judgements")
    return score_sakura(rows, method="rule")


SRC_PAPER = "DeSTA2.5-Audio paper (arXiv 2507.02768), via REFERENCE.md section 1"
SRC_SAKURA = "SAKURA paper (Yang et al., Interspeech 2025), LLM judge, via sakura-dev/README.md"

SPEC = register(BenchmarkSpec(
    "sakura", "SAKURA 4 tracks x single/multi hop (official LLM judge, or offline rule)",
    _load, audio_question_messages, sakura_result_row, _score, max_new_tokens=128,
    system_prompt=DEFAULT_SYSTEM, official_rows=rows_from_official,
    row_key=official_row_key, join_keys=item_join_keys,
    published={
        "average": [Published("DeSTA2.5-Audio", 69.85, SRC_PAPER)],
        **{f"{track} {hop}": [Published("DeSTA2 (8.3B)", d2, SRC_SAKURA),
                              Published("Qwen2-Audio-Instruct", qw, SRC_SAKURA)]
           for track, hop, d2, qw in [
               ("Gender", "single", 88.4, 88.0), ("Gender", "multi", 85.2, 47.2),
               ("Language", "single", 94.2, 83.8), ("Language", "multi", 75.4, 48.0),
               ("Emotion", "single", 34.8, 64.2), ("Emotion", "multi", 36.4, 39.8),
               ("Animal", "single", 34.4, 88.8), ("Animal", "multi", 31.2, 61.4)]},
    },
))

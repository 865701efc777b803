"""Speech-IFEval (kehanlu/Speech-IFEval): the data, the instruction-following rates, IFrate, the
forgetting rate, the LLM-judged parts, and the benchmark's own output files.

Official code matched (kehanlu/Speech-IFEval): `instruction_following_eval/evaluation_main.py`
@ 06a68bae (strict following per item, `print_report`'s groups), `instructions.py` as of the
commit "mod bullet list" (see `ifeval_rules.py`: `variant="speech-ifeval"`),
`script/llm_evaluation.py` @ 2befe4f3 (the CoT and task-performance judge prompts, byte for
byte, and its verdict pattern), README.md @ 10212d9a (layout, leaderboard, Δ).

- closed-ended and creative writing: the percent of items whose response follows ALL of the
  item's instructions under the strict rules (an empty response follows nothing);
- chain-of-thought: the percent of responses an LLM judge says show reasoning;
- IFrate = mean of the three rates; forgetting Δ = (IFrate_model - IFrate_backbone) /
  IFrate_backbone, the backbone LLM answering the same instructions from the textual
  description of the audio (`textual_audio`, `--backbone-run`).

Layout (`--data`): the repository's `data/` folder (`eval_data/*.jsonl` + `audios/`), its
`eval_data/` folder (clips in the sibling `audios/`), a folder holding the subset files
(clips in its `audios/` if there is one, else beside the files), or one subset file. Subset
files are named after the subset: `closed_ended_questions` (or the older `close`),
`creative_writing` (`open`), `chain-of-thought`; the `-woprompt` baselines are skipped.
`audio_filepath` is relative to the clip folder. Item ids are `<subset>:<id>` (ids repeat
across subsets).

Another system's outputs (`--predictions`, e.g. the repository's `outputs/<model>/` folder)
score as they stand: a row's subset is its `subset` field, else the file name's, else its
`metric` (`cot` -> chain-of-thought, `open` -> creative writing, else closed-ended); integer
ids become `<subset>:<id>` so they join `--data`; the `-woprompt` files are skipped.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desta.evaluation.ifeval_rules import check_instruction
from desta.evaluation.records import (
    BenchmarkDataError,
    BenchmarkFileNotFoundError,
    BenchmarkItem,
    read_jsonl,
    require_audio,
    require_fields,
)
from desta.evaluation.registry import (
    BenchmarkSpec,
    Messages,
    Published,
    ScoreContext,
    audio_question_messages,
    register,
)
from desta.evaluation.text import whisper_basic_normalise

if TYPE_CHECKING:
    from desta.evaluation.judges import OpenAIJudge

logger = logging.getLogger(__name__)

SPEECH_IFEVAL_SUBSETS = ("closed_ended_questions", "creative_writing", "chain-of-thought")
# file stems -> subset; the older names of the repository's history included
SUBSET_FILE_NAMES = {"closed_ended_questions": "closed_ended_questions",
                     "close": "closed_ended_questions", "creative_writing": "creative_writing",
                     "open": "creative_writing", "chain-of-thought": "chain-of-thought"}
# Speech-IFEval's prompt for DeSTA2 (examples/eval_desta2.py), for the audio run and the
# textual_audio backbone run alike
SPEECH_IFEVAL_SYSTEM = "Follow the given instructions."


# ---------------------------------------------------------------------------------------------
# the data
# ---------------------------------------------------------------------------------------------


def speech_ifeval_subset(path: str | Path) -> str | None:
    """The subset a Speech-IFEval file belongs to, from its name (None when it is not clear,
    and for the `-woprompt` baseline variants)."""
    name = Path(path).name
    if "woprompt" in name:
        return None
    stem = name.split(".")[0]
    if stem in SUBSET_FILE_NAMES:
        return SUBSET_FILE_NAMES[stem]
    for subset in SPEECH_IFEVAL_SUBSETS:  # e.g. speech-ifeval.closed_ended_questions.sample
        if subset in name:
            return subset
    return None


def subset_of_row(row: Mapping[str, Any], default: str | None = None) -> str:
    """A row's subset: its `subset`, else `default` (the file's), else from its `metric`."""
    if row.get("subset"):
        return str(row["subset"])
    if default:
        return default
    metric = row.get("metric")
    return {"cot": "chain-of-thought", "open": "creative_writing"}.get(
        str(metric), "closed_ended_questions")


def read_speech_ifeval(
    jsonl_path: str | Path,
    *,
    audio_root: str | Path | None = None,
    subset: str | None = None,
    check_audio: bool = False,
) -> list[BenchmarkItem]:
    """Read one Speech-IFEval subset file (JSONL) into items with ids `<subset>:<id>`.

    `audio_filepath` is resolved against `audio_root` (default: the file's folder). The subset
    comes from the file name unless given (else from each row's `metric`). Rule-scored rows
    must carry `instruction_id_list` and a `kwargs` list of the same length. Rows without an
    `id` (the CoT file) get their line number. `reference` is the row's `label`.
    """
    jsonl_path = Path(jsonl_path)
    subset = subset or speech_ifeval_subset(jsonl_path)
    if subset is not None and subset not in SPEECH_IFEVAL_SUBSETS:
        raise BenchmarkDataError(
            f"unknown Speech-IFEval subset {subset!r}; expected one of {SPEECH_IFEVAL_SUBSETS}"
        )
    root = Path(audio_root) if audio_root is not None else jsonl_path.parent
    items = []
    for line_no, row in read_jsonl(jsonl_path, "Speech-IFEval file"):
        where = f"Speech-IFEval file {jsonl_path}, line {line_no}"
        require_fields(row, ("audio_filepath", "instruction"), where)
        row_subset = subset_of_row(row, subset)
        if row_subset != "chain-of-thought":
            require_fields(row, ("instruction_id_list", "kwargs"), where)
        if "instruction_id_list" in row:
            ids, kwargs = row["instruction_id_list"], row.get("kwargs")
            if not isinstance(ids, list) or not isinstance(kwargs, list) or len(ids) != len(kwargs):
                raise BenchmarkDataError(
                    f"{where}: 'instruction_id_list' and 'kwargs' must be lists of the same "
                    f"length, got {ids!r} and {kwargs!r}"
                )
        local = str(row["id"]) if "id" in row else str(line_no)
        metadata = {k: v for k, v in row.items() if k not in ("instruction", "label")}
        metadata["subset"] = row_subset
        items.append(BenchmarkItem(
            benchmark="speech-ifeval",
            id=local if local.startswith(f"{row_subset}:") else f"{row_subset}:{local}",
            audio_paths=[root / row["audio_filepath"]],
            prompt=row["instruction"],
            reference=row.get("label"),
            metadata=metadata,
        ))
    if check_audio:
        require_audio(items, jsonl_path)
    return items


def _subset_files(folder: Path, subset: str | None) -> list[tuple[Path, str]]:
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.jsonl")):
        name = speech_ifeval_subset(path)
        if name is None or (subset and name != subset):
            continue
        if name in found:  # e.g. both close.jsonl and closed_ended_questions.jsonl
            raise BenchmarkDataError(
                f"{folder} holds two {name} files ({found[name].name}, {path.name}); keep one "
                "or pass the file itself")
        found[name] = path
    return [(found[s], s) for s in SPEECH_IFEVAL_SUBSETS if s in found]


def load_speech_ifeval(data: Path, subset: str | None = None) -> list[BenchmarkItem]:
    """The items of the layouts the module docstring lists (`subset`: one subset only)."""
    if subset is not None and subset not in SPEECH_IFEVAL_SUBSETS:
        raise BenchmarkDataError(
            f"unknown Speech-IFEval subset {subset!r}; expected one of {SPEECH_IFEVAL_SUBSETS}")
    if data.is_file():
        return read_speech_ifeval(data, subset=subset)
    if not data.is_dir():
        raise BenchmarkFileNotFoundError(f"Speech-IFEval data not found: {data}")
    folder = data / "eval_data" if (data / "eval_data").is_dir() else data
    files = _subset_files(folder, subset)
    if not files:
        raise BenchmarkFileNotFoundError(
            f"no Speech-IFEval subset file in {folder}: expected closed_ended_questions.jsonl, "
            "creative_writing.jsonl or chain-of-thought.jsonl (or close.jsonl / open.jsonl)")
    if (folder / "audios").is_dir():
        audio_root = folder / "audios"
    elif folder.name == "eval_data" and (folder.parent / "audios").is_dir():
        audio_root = folder.parent / "audios"  # the repository's data/eval_data + data/audios
    else:
        audio_root = folder
    return [item for path, name in files
            for item in read_speech_ifeval(path, subset=name, audio_root=audio_root)]


def speech_ifeval_result_row(item: BenchmarkItem, response: str) -> dict[str, Any]:
    """A result row in the official output format: the item's fields + `response`."""
    row = dict(item.metadata)
    row["id"] = item.id
    row["instruction"] = item.prompt
    if item.reference is not None:
        row["label"] = item.reference
    row["response"] = response
    return row


def backbone_text_messages(item: BenchmarkItem) -> Messages:
    """The text reference: the backbone gets the clip's `textual_audio` in place of the
    audio, then the same instruction (text only, so exactly the backbone LLM runs), in the
    benchmark's own form (`Speech Input: ...`, examples/eval_llama3_8B_instruct.py)."""
    textual = item.metadata.get("textual_audio")
    if not textual:
        raise BenchmarkDataError(
            f"Speech-IFEval item {item.id} has no 'textual_audio'; the backbone run needs it"
        )
    return [{"role": "user", "content": f"Speech Input: {textual}\n\n{item.prompt}"}]


def rows_from_file(content: Any, path: Path) -> list[dict[str, Any]]:
    """Rows of one of the benchmark's own output files (see the module docstring): each with
    its `subset` and an id `<subset>:<id>`; a `-woprompt` baseline file gives no rows."""
    if not isinstance(content, list):
        raise BenchmarkDataError(
            f"Speech-IFEval predictions file {path} must hold rows (JSONL or a JSON list)")
    if "woprompt" in path.name:
        logger.info("%s: the baseline without constraint prompt is not part of IFrate; skipped",
                    path)
        return []
    file_subset = speech_ifeval_subset(path)
    rows = []
    for index, row in enumerate(content):
        subset = subset_of_row(row, file_subset)
        out = {**row, "subset": subset, "source_stem": path.name.split(".")[0]}
        local = str(row.get("id", index))
        out["id"] = local if local.startswith(f"{subset}:") else f"{subset}:{local}"
        rows.append(out)
    return rows


# ---------------------------------------------------------------------------------------------
# closed-ended and creative writing: the strict rules
# ---------------------------------------------------------------------------------------------


def follow_instructions(
    response: str | None, instruction_id_list: Sequence[str], kwargs: Sequence[Mapping[str, Any]]
) -> list[bool]:
    """Per instruction, whether the response follows it: Speech-IFEval's strict checkers, the
    official `follow_instruction_list` (empty response: all False)."""
    if len(instruction_id_list) != len(kwargs):
        raise BenchmarkDataError(
            f"instruction_id_list {list(instruction_id_list)} and kwargs {list(kwargs)} "
            "differ in length"
        )
    return [check_instruction(i, response or "", k, variant="speech-ifeval")
            for i, k in zip(instruction_id_list, kwargs, strict=True)]


# `print_report` of the official evaluation_main.py groups instructions this way ("other" else)
INSTRUCTION_GROUPS = {
    "detectable_format:number_bullet_lists": "bullet_lists",
    "length_constraints:number_words": "length_constraints",
    "length_constraints:number_sentences": "length_constraints",
    "length_constraints:number_paragraphs": "length_constraints",
    "keywords:forbidden_words": "keywords",
    "keywords:existence": "keywords",
    "change_case:english_capital": "change_case",
    "change_case:english_lowercase": "change_case",
    "detectable_format:json_format": "json_format",
    "startend:quotation": "wrapping",
    "detectable_format:title": "wrapping",
    "combination:repeat_prompt": "startend",
    "startend:end_checker": "startend",
}


def score_instruction_following(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Strict following rate for closed-ended or creative-writing result rows.

    Each row needs `instruction_id_list`, `kwargs` and `response`. Returns `rate` (percent of
    rows with all instructions followed), `instruction_rate` (percent of single instructions
    followed), `per_instruction[id]` and `per_group[group]` (the official report's groups) as
    `{"followed", "count", "rate"}`, `count`, `followed`, and `results` (id, follow_all,
    follow_list) per row.
    """
    followed_all = count = instr_followed = instr_count = 0
    per_id: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per_group: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    results = []
    for index, row in enumerate(rows):
        require_fields(row, ("instruction_id_list", "kwargs", "response"),
                       f"Speech-IFEval result row {index} (id {row.get('id', '?')})")
        follows = follow_instructions(row["response"], row["instruction_id_list"], row["kwargs"])
        ok = all(follows)
        followed_all += ok
        count += 1
        instr_followed += sum(follows)
        instr_count += len(follows)
        for instruction_id, f in zip(row["instruction_id_list"], follows, strict=True):
            for table, key in ((per_id, instruction_id),
                               (per_group, INSTRUCTION_GROUPS.get(instruction_id, "other"))):
                table[key][0] += f
                table[key][1] += 1
        results.append((str(row.get("id", index)), ok, follows))
    return {
        "rate": 100.0 * followed_all / count if count else 0.0,
        "followed": followed_all,
        "count": count,
        "instruction_rate": 100.0 * instr_followed / instr_count if instr_count else 0.0,
        "per_instruction": {
            k: {"followed": f, "count": n, "rate": 100.0 * f / n}
            for k, (f, n) in sorted(per_id.items())
        },
        "per_group": {
            k: {"followed": f, "count": n, "rate": 100.0 * f / n}
            for k, (f, n) in sorted(per_group.items())
        },
        "results": results,
    }


# ---------------------------------------------------------------------------------------------
# the LLM-judged parts: script/llm_evaluation.py @ 2befe4f3, prompts byte for byte
# ---------------------------------------------------------------------------------------------

# `generate_eval_response`, metric "cot" (the f-string's lines, its final newline included)
COT_JUDGE_SYSTEM_PROMPT = (
    "You will be given a user input and a model response. The model's response is a reply to "
    "the user input. Your task is to determine whether the response demonstrates reasoning "
    "behavior, such as breaking down the problem, explaining intermediate steps, or providing "
    "a analysis.\n"
    "\n"
    "Please strictly follow the guidelines below:\n"
    '- Output "YES" if the response includes any form of behavior beyond a direct answer '
    "corresponding to the user input.\n"
    '- Output "NO" only if the response is a minimal or purely factual reply.\n'
    '- Answer in the format: "Result: <YES or NO>" at the end.\n'
)
# metric "accuracy" (two lines end in a space in the source)
TASK_ACCURACY_SYSTEM_PROMPT = (
    "You will be given a question, a corresponding correct answer and a response from a "
    "model. \n"
    "Model's Response is a reply to the Question. Your task is to judge if \"Model's Response\" "
    'aligns with the "Ground Truth Answer" based on the "Question". \n'
    "Please strictly follow the guidelines below:\n"
    '- Answer with the format "Result: <YES or NO>" at the end.\n'
    '- Output "YES" if the response aligns with the ground truth answer; output "NO" if the '
    "response does not match the ground truth answer.\n"
)
# metric "wer" (one line in the source, its \n escapes made newlines by the f-string)
TASK_TRANSCRIPT_SYSTEM_PROMPT = (
    "You will be given a response from an ASR model. Your task is to extract a **substring** "
    "from the model's response that eliminates all extra phrases, explanations, or "
    "introductory text. The substring will be evaluate by the WER metric, so it should be "
    "**exactly the same** as the model's response, with no modifications.\n\n"
    "Please strictly follow the guidelines below:\n"
    "- The substring should be **exactly the same** as the model's response, with no "
    "modifications.\n"
    "- Eliminate all extra phrases, explanations, or introductory text while keeping the "
    "substring itself 100% unchanged.\n"
    "- You must output the substring only."
)
# llm_evaluation.py sends model gpt-4o-2024-11-20 and no sampling settings: the API default,
# temperature 1
JUDGE_MODEL = "gpt-4o-2024-11-20"
JUDGE_SAMPLING: dict[str, Any] = {"temperature": 1.0}
# the stems whose instructions llm_evaluation.py cuts to their first line (remove_instruction)
FIRST_LINE_STEMS = ("close", "close.1")


def cot_judge_messages(instruction: str, response: str) -> list[dict[str, str]]:
    """`llm_evaluation.py`'s messages asking whether `response` reasons step by step."""
    return [
        {"role": "system", "content": COT_JUDGE_SYSTEM_PROMPT},
        {"role": "user", "content": f"User input: {instruction}\nModel's Response: {response}"},
    ]


def task_judge_messages(row: Mapping[str, Any]) -> list[dict[str, str]]:
    """`llm_evaluation.py`'s messages for one closed-ended row: a YES/NO agreement verdict
    (`metric` accuracy) or the transcript cut out of the response (`metric` wer). Rows read
    from a file named `close.jsonl` ask with the instruction's first line only, as there."""
    instruction = str(row["instruction"])
    if row.get("source_stem") in FIRST_LINE_STEMS:
        instruction = instruction.split("\n")[0]
    if row["metric"] == "wer":
        system = TASK_TRANSCRIPT_SYSTEM_PROMPT
        content = f"Question: {instruction}\nModel's Response: {row['response']}"
    else:
        system = TASK_ACCURACY_SYSTEM_PROMPT
        content = (f"Question: {instruction}\nGround Truth Answer: {row['label']}\n"
                   f"Model's Response: {row['response']}")
    return [{"role": "system", "content": system}, {"role": "user", "content": content}]


_OFFICIAL_RESULT = re.compile(r"(?i)(?<=result:\s)(yes|no)")
_LENIENT_RESULT = re.compile(r"result\s*:\s*[*\"']*\s*(yes|no)\b", re.IGNORECASE)


def parse_cot_verdict(text: str | None) -> bool | None:
    """True for `Result: YES`, False for `Result: NO`, None if absent.

    The official pattern `(?i)(?<=result:\\s)(yes|no)` decides wherever it matches (its first
    match; "Result: Nope" reads as no, as there). Where it finds nothing the official script
    stops with an error; there we accept what it misses (no or several spaces after the colon,
    markdown like `**YES**`), else None."""
    match = _OFFICIAL_RESULT.search(text or "") or _LENIENT_RESULT.search(text or "")
    return match.group(1).lower() == "yes" if match else None


def stored_replies(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every row carries the official judge's reply (`eval_response`, as
    llm_evaluation.py writes it into reports/llm_eval@*.jsonl): such rows score without a
    judge."""
    return bool(rows) and all(r.get("eval_response") is not None for r in rows)


def _judge_replies(rows: Sequence[Mapping[str, Any]], asked: list[int],
                   judge: OpenAIJudge | None, build: Callable[[Mapping[str, Any]], Messages],
                   desc: str) -> list[str]:
    """The replies for the rows `asked`: the rows' stored `eval_response` without a judge, else
    the judge's (llm_evaluation.py's settings)."""
    if judge is None:
        if not stored_replies(rows):
            raise BenchmarkDataError(f"{desc} needs an LLM judge (--judge-url), or rows carrying "
                                     "the official judge's 'eval_response'")
        return [str(rows[i]["eval_response"]) for i in asked]
    return judge.with_sampling(**JUDGE_SAMPLING).complete_many(
        [build(rows[i]) for i in asked], desc=desc)


def score_chain_of_thought(
    rows: Sequence[Mapping[str, Any]], judge: OpenAIJudge | None
) -> dict[str, Any]:
    """CoT following rate: percent of rows whose `response` the judge says shows reasoning
    (without a judge: the rows' stored official replies, `eval_response`). An empty response
    counts as not followed without asking; a reply with no verdict counts as not followed and
    is reported in `unparsable`."""
    for index, row in enumerate(rows):
        require_fields(row, ("instruction", "response"), f"Speech-IFEval CoT row {index}")
    asked = [i for i, r in enumerate(rows) if (r["response"] or "").strip()]
    replies = _judge_replies(
        rows, asked, judge, lambda r: cot_judge_messages(r["instruction"], r["response"]),
        "CoT judge")
    verdicts: list[bool | None] = [False] * len(rows)
    for i, reply in zip(asked, replies, strict=True):
        verdicts[i] = parse_cot_verdict(reply)
    followed = sum(bool(v) for v in verdicts)
    return {
        "rate": 100.0 * followed / len(rows) if rows else 0.0,
        "followed": followed,
        "count": len(rows),
        "unparsable": sum(v is None for v in verdicts),
        "results": [(str(r.get("id", i)), bool(v)) for i, (r, v) in
                    enumerate(zip(rows, verdicts, strict=True))],
    }


def _normalise_transcript(text: str) -> str:
    # llm_evaluation.py: angle brackets dropped, then Whisper's basic normaliser
    return whisper_basic_normalise(text.replace("<", "").replace(">", "")).strip()


def score_closed_task(rows: Sequence[Mapping[str, Any]],
                      judge: OpenAIJudge | None) -> dict[str, Any]:
    """How well the closed-ended answers do the task, as `script/llm_evaluation.py` scores it:
    `metric` accuracy rows by a judge's YES/NO against `label` (accuracy per `dataset`);
    `metric` wer rows by the transcript the judge cuts out of the response, normalised, then
    one corpus WER (percent) over all of them. An empty response is wrong (accuracy) or an
    empty transcript (WER) without asking; a verdict-less judge reply counts as wrong and in
    `unparsable` (the official script stops there); rows whose normalised label is empty are
    left out of the WER (`empty_references`). Without a judge, the rows' stored official
    replies (`eval_response`) are read."""
    for index, row in enumerate(rows):
        require_fields(row, ("instruction", "response", "metric", "dataset"),
                       f"Speech-IFEval closed-ended row {index}")
        if row["metric"] not in ("accuracy", "wer"):
            raise BenchmarkDataError(
                f"Speech-IFEval closed-ended row {index}: metric {row['metric']!r} is neither "
                "'accuracy' nor 'wer'")
        if not row.get("label"):
            raise BenchmarkDataError(
                f"Speech-IFEval closed-ended row {index} (id {row.get('id', '?')}) has no "
                "'label' to score the task against")
    asked = [i for i, r in enumerate(rows) if (r["response"] or "").strip()]
    replies = dict(zip(asked, _judge_replies(rows, asked, judge, task_judge_messages,
                                             "closed-ended task judge"), strict=True))
    datasets: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    refs, hyps, not_substring, empty_refs = [], [], 0, 0
    for i, row in enumerate(rows):
        reply = replies.get(i)
        if row["metric"] == "accuracy":
            verdict = parse_cot_verdict(reply) if reply is not None else False
            cell = datasets[str(row["dataset"])]
            cell[0] += bool(verdict)
            cell[1] += 1
            cell[2] += verdict is None
            continue
        ref = _normalise_transcript(str(row["label"]))
        hyp = _normalise_transcript(reply or "")
        if not ref:
            empty_refs += 1
            continue
        not_substring += hyp not in _normalise_transcript(row["response"] or "")
        refs.append(ref)
        hyps.append(hyp)
    out: dict[str, Any] = {"accuracy": {
        name: {"correct": c, "count": n, "unparsable": u, "accuracy": 100.0 * c / n}
        for name, (c, n, u) in sorted(datasets.items())}}
    if refs or empty_refs:
        import jiwer

        out["wer"] = {"wer": 100.0 * float(jiwer.wer(refs, hyps)) if refs else None,
                      "count": len(refs), "empty_references": empty_refs,
                      # the extraction should be a substring; llm_evaluation.py warns otherwise
                      "not_substring": not_substring}
    return out


# ---------------------------------------------------------------------------------------------
# summary numbers
# ---------------------------------------------------------------------------------------------


def if_rate(closed_ended: float, creative_writing: float, chain_of_thought: float) -> float:
    """IFrate: the mean of the three following rates (percent)."""
    return (closed_ended + creative_writing + chain_of_thought) / 3.0


def forgetting_rate(ifrate_model: float, ifrate_backbone: float) -> float:
    """Forgetting delta in percent: (IFrate_model - IFrate_backbone) / IFrate_backbone * 100.
    Negative means the audio model follows instructions worse than its text backbone."""
    if ifrate_backbone <= 0:
        raise BenchmarkDataError(
            f"the backbone's IFrate must be positive to compute forgetting, got {ifrate_backbone}"
        )
    return 100.0 * (ifrate_model - ifrate_backbone) / ifrate_backbone


def speech_ifeval_rates(rows: Iterable[Mapping[str, Any]],
                        judge: OpenAIJudge | None) -> dict[str, Any]:
    """Per subset (each row's `subset_of_row`) its following rate, the closed-ended task
    performance with a judge, `ifrate` (all three subsets present) and `rule_rate` (the mean
    of the closed-ended and creative rates, what is left without a judge)."""
    by_subset: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_subset.setdefault(subset_of_row(row), []).append(row)
    unknown = sorted(set(by_subset) - set(SPEECH_IFEVAL_SUBSETS))
    if unknown:
        raise BenchmarkDataError(
            f"Speech-IFEval rows name unknown subset(s) {unknown}; expected {SPEECH_IFEVAL_SUBSETS}")
    out: dict[str, Any] = {"subsets": {}}
    rates: dict[str, float] = {}
    for subset in SPEECH_IFEVAL_SUBSETS:
        subset_rows = by_subset.get(subset)
        if not subset_rows:
            continue
        if subset == "chain-of-thought":
            if judge is None and not stored_replies(subset_rows):
                out["subsets"][subset] = {"count": len(subset_rows), "rate": None,
                                          "note": "needs an LLM judge (--judge-url)"}
                continue
            result = score_chain_of_thought(subset_rows, judge)
        else:
            result = score_instruction_following(subset_rows)
            if subset == "closed_ended_questions" and (judge is not None
                                                       or stored_replies(subset_rows)):
                result["task"] = score_closed_task(subset_rows, judge)
        out["subsets"][subset] = result
        rates[subset] = result["rate"]
    full = all(s in rates for s in SPEECH_IFEVAL_SUBSETS)
    out["ifrate"] = if_rate(*(rates[s] for s in SPEECH_IFEVAL_SUBSETS)) if full else None
    rule = [rates[s] for s in ("closed_ended_questions", "creative_writing") if s in rates]
    out["rule_rate"] = sum(rule) / len(rule) if rule else None
    return out


def score_speech_ifeval(rows: Sequence[Mapping[str, Any]], judge: OpenAIJudge | None = None,
                        backbone_rows: Sequence[Mapping[str, Any]] | None = None
                        ) -> dict[str, Any]:
    """The model's rates (`speech_ifeval_rates`), the backbone's beside them and the
    forgetting Δ when `backbone_rows` are given (over IFrate, or over `rule_rate` when the CoT
    rate is missing: no judge), and the report's `summary`."""
    scores = speech_ifeval_rates(rows, judge)
    if backbone_rows is not None:
        backbone = speech_ifeval_rates(backbone_rows, judge)
        scores["backbone"] = backbone
        key = "ifrate" if scores["ifrate"] is not None and backbone["ifrate"] is not None \
            else "rule_rate"
        if scores[key] is not None and backbone[key]:
            scores["forgetting"] = {
                "delta": forgetting_rate(scores[key], backbone[key]),
                "over": key,
                "note": None if key == "ifrate" else
                "CoT needs a judge (--judge-url): delta over the closed-ended and creative "
                "rates only",
            }
    summary: dict[str, float | None] = {
        subset: result.get("rate") for subset, result in scores["subsets"].items()}
    summary["IFrate"] = scores["ifrate"]
    task = scores["subsets"].get("closed_ended_questions", {}).get("task", {})
    for dataset, cell in task.get("accuracy", {}).items():
        summary[f"task accuracy: {dataset}"] = cell["accuracy"]
    if "wer" in task:
        summary["task WER (lower is better)"] = task["wer"]["wer"]
    if "forgetting" in scores:
        summary["forgetting delta"] = scores["forgetting"]["delta"]
    scores["summary"] = summary
    return scores


# ---------------------------------------------------------------------------------------------
# the runner's spec
# ---------------------------------------------------------------------------------------------


def _score(rows: list[dict[str, Any]], ctx: ScoreContext) -> dict[str, Any]:
    return score_speech_ifeval(rows, ctx.judge, ctx.backbone_rows)


SRC_PAPER = "DeSTA2.5-Audio paper (arXiv 2507.02768), via REFERENCE.md section 1"
SRC_README = "Speech-IFEval README leaderboard (kehanlu/Speech-IFEval @ 10212d9a)"

SPEC = register(BenchmarkSpec(
    "speech-ifeval", "Speech-IFEval closed/creative/CoT, IFrate, forgetting",
    load_speech_ifeval, audio_question_messages, speech_ifeval_result_row, _score,
    max_new_tokens=2048,  # the benchmark's own generation limit
    system_prompt=SPEECH_IFEVAL_SYSTEM, official_rows=rows_from_file,
    backbone_messages=backbone_text_messages,
    published={
        "IFrate": [Published("DeSTA2.5-Audio", 93.89, SRC_PAPER),
                   Published("Qwen2-Audio-Instruct", 47.11, SRC_PAPER),
                   Published("DeSTA2", 89.23, SRC_README)],
        "closed_ended_questions": [Published("DeSTA2", 83.71, SRC_README)],
        "creative_writing": [Published("DeSTA2", 91.75, SRC_README)],
        "chain-of-thought": [Published("DeSTA2", 91.50, SRC_README)],
        "forgetting delta": [Published("DeSTA2", -3.57, SRC_README)],
    },
))

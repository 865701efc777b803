"""The evaluation runner: benchmark items -> batched greedy `generate` -> predictions JSONL ->
official scores -> report.

The runner knows no benchmark: it looks the `BenchmarkSpec` up in the registry
(`registry.py`; each benchmark module registers its own), which says how to read the
benchmark's files, how to ask the model (chat messages), what a prediction row looks like (the
benchmark's official output fields) and how to score rows. `evaluate` runs a model over the
items or scores an existing predictions file (another system's), then writes `scores.json`,
`report.md` and a PNG chart (`report.py`).

Predictions are appended to `<out>/predictions.jsonl` as each batch finishes (flushed and
fsynced), so a killed run loses at most one batch: a rerun skips the ids already there, and a
torn last line (the kill came mid-write) is cut off and redone, never duplicated.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desta.errors import DestaError
from desta.evaluation.records import (
    BenchmarkDataError,
    BenchmarkFileNotFoundError,
    BenchmarkItem,
    parse_json,
    read_json,
    read_jsonl,
    require_audio,
)
from desta.evaluation.registry import (
    BenchmarkSpec,
    Messages,
    OfficialReader,
    ScoreContext,
    all_specs,
    get_spec,
    with_system_prompt,
)

if TYPE_CHECKING:
    from desta.evaluation.judges import OpenAIJudge
    from desta.model import DestaModel

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.jsonl"
BACKBONE_PREDICTIONS_FILE = "backbone_predictions.jsonl"
SCORES_FILE = "scores.json"
JUDGE_CACHE_FILE = "judge_cache.jsonl"
RUN_SETTINGS_FILE = "run_settings.json"



# ---------------------------------------------------------------------------------------------
# predictions store: append-only JSONL, resumable, tolerant of a torn last line
# ---------------------------------------------------------------------------------------------


class PredictionStore:
    """Prediction rows (dicts with an `id`) in a JSONL file, one row per line.

    `load()` returns the rows already written, keyed by id. A last line without its newline
    that is not valid JSON is what a kill mid-write leaves: it is cut from the file (and so
    redone by the next run); a bad line anywhere else is an error. A row id written twice
    (two runs on one file at once) keeps the first row.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, dict[str, Any]]:
        """The rows already in the file, by id (repairs a torn last line in place)."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        rows: dict[str, dict[str, Any]] = {}
        offset = 0
        for line_no, raw in enumerate(lines, start=1):
            is_last = line_no == len(lines)
            line_start = offset
            offset += len(raw) + 1
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                if is_last:  # no newline after it: the write was cut off
                    logger.warning("%s: dropping a torn last line (%d bytes); it is redone",
                                   self.path, len(raw))
                    with self.path.open("r+b") as f:
                        f.truncate(line_start)
                    break
                raise BenchmarkDataError(
                    f"predictions file {self.path}: line {line_no} is not valid JSON. Fix or "
                    "delete that line (a rerun redoes the missing ids)."
                ) from None
            if is_last:  # a complete row whose newline was lost: give it one
                with self.path.open("ab") as f:
                    f.write(b"\n")
            if not isinstance(row, dict) or "id" not in row:
                raise BenchmarkDataError(
                    f"predictions file {self.path}: line {line_no} must be a JSON object "
                    "with an 'id' field"
                )
            rows.setdefault(str(row["id"]), row)
        return rows

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append rows and force them to disk (flush + fsync) before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


def read_predictions_file(
    path: str | Path, official: OfficialReader | None = None
) -> list[dict[str, Any]]:
    """Rows of a predictions file from any system: a JSON list of objects (e.g. MMAU's
    official format), JSONL (one object per line), or one JSON object (SAKURA's result files,
    Dynamic-SUPERB's phase-2 result files). `official(content, path)` turns what the file holds
    into rows where a benchmark's own files need it (SAKURA's objects, the subset in a
    VoiceBench or Speech-IFEval file name). A folder means all its `*.json` / `*.jsonl` files,
    in name order."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl"))
        if not files:
            raise BenchmarkFileNotFoundError(f"no *.json or *.jsonl predictions file in {path}")
        return [row for f in files for row in read_predictions_file(f, official)]
    if not path.is_file():
        raise BenchmarkFileNotFoundError(f"predictions file not found: {path}")
    content = _read_rows_or_document(path)
    if official is not None:
        return official(content, path)
    if isinstance(content, dict):
        raise BenchmarkDataError(
            f"predictions file {path} holds one JSON object (keys {sorted(content)[:6]}), not "
            "rows; this benchmark reads a JSON list of rows or JSONL (one object per line)")
    return content


def _read_rows_or_document(path: Path) -> list[dict[str, Any]] | dict[str, Any]:
    """A JSON list of rows, one JSON object (a document), or JSONL rows. A file that parses as
    one object is a document when it spans several lines or has `results`; a one-line object
    is a JSONL file of one row."""
    text = path.read_text(encoding="utf-8")
    head = text.lstrip()[:1]
    if head == "[":
        data = parse_json(text, path, "predictions file")
        if not all(isinstance(r, dict) for r in data):
            raise BenchmarkDataError(f"predictions file {path} must hold a list of JSON objects")
        return data
    if head == "{":
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            document = None  # JSONL rows (read below), or a broken file (reported below)
        if isinstance(document, dict) and ("\n" in text.strip() or "results" in document):
            return document
    return [row for _, row in read_jsonl(path, "predictions file")]


# ---------------------------------------------------------------------------------------------
# running a model
# ---------------------------------------------------------------------------------------------


def load_model(spec: str, device: str | None = None) -> DestaModel:
    """The model `spec` names: `embedded` (shipped), `embedded-untrained`, a checkpoint dir
    or a hub id (desta.model.embedded)."""
    from desta.model.embedded import load_model as load

    return load(spec, device=device)


def generate_predictions(
    model: DestaModel,
    items: Sequence[BenchmarkItem],
    store: PredictionStore,
    *,
    messages: Callable[[BenchmarkItem], Messages],
    result_row: Callable[[BenchmarkItem, str], dict[str, Any]],
    batch_size: int = 8,
    max_new_tokens: int = 512,
    desc: str = "generating",
    progress: bool = True,
) -> dict[str, Any]:
    """Answer every item not yet in `store`, greedily, `batch_size` conversations per
    `generate` call, appending each batch's rows as it finishes. Returns run statistics
    (items done now / before, seconds, seconds per item)."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise DestaError(f"batch size must be at least 1, got {batch_size}")
    done = store.load()
    todo = [item for item in items if item.id not in done]
    logger.info("%s: %d item(s), %d already in %s", desc, len(items), len(items) - len(todo),
                store.path)
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc=desc, unit="item",
               disable=not progress)
    start = time.perf_counter()
    try:
        for first in range(0, len(todo), batch_size):
            batch = todo[first:first + batch_size]
            result = model.generate([messages(item) for item in batch],
                                    max_new_tokens=max_new_tokens, do_sample=False)
            rows = []
            for item, text in zip(batch, result.texts, strict=True):
                row = result_row(item, text)
                assert str(row.get("id")) == item.id, "result rows must carry the item id"
                rows.append(row)
            store.append(rows)
            bar.update(len(batch))
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    return {"generated": len(todo), "already_done": len(items) - len(todo),
            "seconds": seconds, "seconds_per_item": seconds / len(todo) if todo else None}


def _rows_for(items: Sequence[BenchmarkItem], store: PredictionStore) -> list[dict[str, Any]]:
    done = store.load()
    missing = [item.id for item in items if item.id not in done]
    if missing:  # generate_predictions just ran, so only a concurrent edit can cause this
        raise BenchmarkDataError(f"{store.path} lacks {len(missing)} item(s), first {missing[0]}")
    return [done[item.id] for item in items]


def _unique(items: list[BenchmarkItem], source: Path) -> list[BenchmarkItem]:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise BenchmarkDataError(
                f"{source}: item id {item.id!r} occurs twice; ids must be unique to resume runs"
            )
        seen.add(item.id)
    return items


def _join_predictions(rows: list[dict[str, Any]], items: list[BenchmarkItem],
                      spec: BenchmarkSpec, source: Path) -> list[dict[str, Any]]:
    """Another system's rows joined to the benchmark items: by `id`, else by the spec's
    `row_key` among the items' `join_keys`. Each row is rebuilt from the item (official
    fields) and the row's answer, then the row's own fields win."""
    by_id = {item.id: item for item in items}
    by_key: dict[str, BenchmarkItem | None] = {}
    if spec.join_keys is not None:
        for item in items:
            for key in spec.join_keys(item):
                # a key two items share cannot tell them apart
                by_key[key] = None if key in by_key and by_key[key] is not item else item
    joined = []
    for index, row in enumerate(rows):
        rid = str(row.get("id", ""))
        item = by_id.get(rid)
        if item is None and spec.row_key is not None:
            key = spec.row_key(row)
            if key is not None and key in by_key:
                item = by_key[key]
                if item is None:
                    raise BenchmarkDataError(
                        f"predictions file {source}: row {index} matches several items of "
                        "--data; give it an 'id'")
        if item is None:
            raise BenchmarkDataError(
                f"predictions file {source}: row {index} has id {rid!r}, which is not an item "
                "of the benchmark data given with --data"
            )
        if spec.response_key not in row:
            raise BenchmarkDataError(
                f"predictions file {source}: row {index} (id {item.id}) lacks "
                f"{spec.response_key!r}"
            )
        base = spec.result_row(item, row[spec.response_key] or "")
        joined.append({**base, **row, "id": item.id})
    return joined


@dataclass
class EvalResult:
    """What `evaluate` produced: the scores and the files written."""

    benchmark: str
    scores: dict[str, Any]
    out_dir: Path | None
    files: dict[str, Path]
    run: dict[str, Any] | None = None


def evaluate(
    benchmark: str,
    *,
    data: str | Path | None = None,
    model: DestaModel | str | None = None,
    predictions: str | Path | None = None,
    out: str | Path | None = None,
    batch_size: int = 8,
    limit: int | None = None,
    max_new_tokens: int | None = None,
    judge: OpenAIJudge | None = None,
    subset: str | None = None,
    backbone_predictions: str | Path | None = None,
    backbone_run: bool = False,
    options: dict[str, Any] | None = None,
    system_prompt: str | None = None,
    device: str | None = None,
    progress: bool = True,
    report: bool = True,
) -> EvalResult:
    """Run `model` over a benchmark (or score `predictions` from any system) and report.

    Args:
        benchmark: a registered benchmark (`registry.benchmark_names()`).
        data: the benchmark in its local layout (file or folder, see each reader).
        model: a loaded `DestaModel`, or `embedded` / checkpoint dir / hub id to load.
        predictions: score this file (JSON list or JSONL rows in the benchmark's output
            format) instead of running a model; with `data`, rows are joined to the items by id.
        out: output folder (predictions, scores, report); required when a model runs.
        batch_size, max_new_tokens: generation settings (greedy decoding always).
        limit: only the first `limit` items (a later run without it finishes the rest).
        judge: LLM judge for the benchmarks or parts that need one.
        subset: benchmark-specific selection (SAKURA tracks "Gender,Animal"; a Speech-IFEval,
            VoiceBench or AIR-Bench subset; a Dynamic-SUPERB phase).
        backbone_predictions: the text-only reference rows (Speech-IFEval: the backbone on
            `textual_audio`), in any format `predictions` takes.
        backbone_run: produce those rows with this model's backbone (text only), for the
            benchmarks whose spec has `backbone_messages`.
        options: scorer options (the specs' `cli_options` by `dest`, defaults filled in),
            e.g. {"prediction_key": "model_output"} for MMAU.
        system_prompt: the system turn of every conversation; None: the benchmark's default
            (`BenchmarkSpec.system_prompt`), "": none. A resumed run must keep the same prompt,
            model and max_new_tokens (checked against `<out>/run_settings.json`).
    """
    spec = get_spec(benchmark)
    if limit is not None and limit < 1:
        raise DestaError(f"--limit must be at least 1, got {limit}")
    out_dir = Path(out) if out is not None else None
    items: list[BenchmarkItem] | None = None
    if data is not None:
        data = Path(data)
        items = _unique(spec.load(data, subset), data)
        if limit is not None:
            items = items[:limit]
    run_info: dict[str, Any] | None = None
    backbone_rows: list[dict[str, Any]] | None = None
    loaded = None
    system = spec.system_prompt if system_prompt is None else system_prompt
    new_tokens = max_new_tokens or spec.max_new_tokens
    settings = {"model": _describe(model), "system_prompt": system, "max_new_tokens": new_tokens}

    def get_model() -> DestaModel:
        nonlocal loaded
        if loaded is None:
            if model is None:
                raise DestaError(f"{benchmark}: give --model to run, or --predictions to score")
            loaded = load_model(model, device) if isinstance(model, str) else model
        return loaded

    if predictions is not None:
        rows = read_predictions_file(predictions, spec.official_rows)
        if items is not None:
            rows = _join_predictions(rows, items, spec, Path(predictions))
        elif limit is not None:
            rows = rows[:limit]
    else:
        if items is None:
            raise DestaError(f"{benchmark}: give --data (the benchmark files) to run a model")
        if out_dir is None:
            raise DestaError("give --out: the folder for predictions.jsonl, scores and report")
        require_audio(items, benchmark, hint="Download the benchmark audio or fix --data.")
        _check_run_settings(out_dir, settings)
        store = PredictionStore(out_dir / PREDICTIONS_FILE)
        run_info = generate_predictions(
            get_model(), items, store,
            messages=lambda item: with_system_prompt(spec.messages(item), system),
            result_row=spec.result_row, batch_size=batch_size, max_new_tokens=new_tokens,
            desc=benchmark, progress=progress)
        rows = _rows_for(items, store)

    if backbone_predictions is not None:
        backbone_rows = read_predictions_file(backbone_predictions, spec.official_rows)
        if items is not None:
            backbone_rows = _join_predictions(backbone_rows, items, spec,
                                              Path(backbone_predictions))
    elif backbone_run:
        backbone = spec.backbone_messages
        if backbone is None:
            with_backbone = [s.name for s in all_specs().values() if s.backbone_messages]
            raise DestaError(f"--backbone-run: {benchmark} has no text-only backbone run "
                             f"(benchmarks with one: {', '.join(with_backbone)})")
        if items is None or out_dir is None:
            raise DestaError("--backbone-run needs --data and --out")
        _check_run_settings(out_dir, settings)
        store = PredictionStore(out_dir / BACKBONE_PREDICTIONS_FILE)
        generate_predictions(
            get_model(), items, store,
            messages=lambda item: with_system_prompt(backbone(item), system),
            result_row=spec.result_row, batch_size=batch_size,
            max_new_tokens=new_tokens, desc=f"{benchmark}: backbone, text only",
            progress=progress)
        backbone_rows = _rows_for(items, store)

    opts: dict[str, Any] = {o.dest: o.default for o in spec.cli_options}
    opts.update({"subset": subset, **(options or {})})
    ctx = ScoreContext(judge=judge, backbone_rows=backbone_rows, options=opts)
    scores = spec.score(rows, ctx)
    scores["benchmark"] = benchmark
    scores["source"] = str(predictions) if predictions is not None else _describe(model)
    if run_info is not None:
        scores["run"] = run_info
    files: dict[str, Path] = {}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        files["scores"] = out_dir / SCORES_FILE
        files["scores"].write_text(json.dumps(scores, indent=2, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
        if predictions is None:
            files["predictions"] = out_dir / PREDICTIONS_FILE
        if report:
            from desta.evaluation.report import write_report

            files.update(write_report(benchmark, scores, out_dir))
    return EvalResult(benchmark, scores, out_dir, files, run_info)


def _check_run_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """Refuse to resume a run in `out_dir` with other generation settings than the answers
    already there (they would mix in one score); record the settings of a new run."""
    path = out_dir / RUN_SETTINGS_FILE
    if path.is_file():
        before = read_json(path)
        changed = sorted(k for k in settings if before.get(k) != settings[k])
        if changed:
            shown = "; ".join(f"{k}: {before.get(k)!r} -> {settings[k]!r}" for k in changed)
            raise DestaError(
                f"{out_dir} holds answers made with other settings ({shown}); use another "
                f"--out, or delete {out_dir} to start over"
            )
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _describe(model: DestaModel | str | None) -> str:
    if isinstance(model, str) or model is None:
        return str(model)
    config = getattr(model, "config", None)
    return (f"DestaModel (encoder {getattr(config, 'encoder_model_id', '?')}, "
            f"LLM {getattr(config, 'llm_model_id', '?')})")


def make_judge(url: str, model: str, cache_dir: str | Path | None,
               concurrency: int = 8) -> OpenAIJudge:
    """An `OpenAIJudge` whose reply cache lives in `cache_dir/judge_cache.jsonl`, with at most
    `concurrency` requests in flight."""
    from desta.evaluation.judges import OpenAIJudge

    cache = Path(cache_dir) / JUDGE_CACHE_FILE if cache_dir is not None else None
    return OpenAIJudge(url, model, cache_path=cache, concurrency=concurrency)


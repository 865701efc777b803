"""Self-generated training data: the backbone LLM answers each clip's seed description + prompt.

For every manifest record (one clip):

1. its seed description is rendered (:func:`desta.data.seed.seed_description`);
2. a prompt is drawn from the instruction pool, matched to the clip's domain and seeded by
   ``(seed, clip id)`` so it never depends on shard layout, batch size or resumes;
3. the backbone answers the *text* conversation in which the audio locator is replaced by the
   seed description (:data:`BACKBONE_TEMPLATE`)::

       user: <start_audio>[00:00-00:03] Hello there. (Gender: Female, ...)<end_audio>
             What is the speaker's emotion?

4. the row is written in the released DeSTA-AQA5M format (:data:`ROW_FIELDS`) with ``messages``
   the training conversation (:data:`TRAINING_TEMPLATE`: the locator instead of the seed
   description, the clip in ``audios``), exactly what ``DestaModel.prepare(...,
   for_training=True)`` reads.

Scale and safety (docs/data/generation.md):

* **Sharding**: a record belongs to shard ``sha256(id) mod K`` (:func:`shard_of`), so any shard
  can be run anywhere (SLURM array, Ray task) and together they cover every id exactly once.
* **Resumable, kill -9 safe**: each shard appends to ``shard-I-of-K.jsonl``; each batch is one
  ``write`` followed by ``flush`` + ``fsync``. On start a torn last line (a kill mid-write) is cut
  off and every id already written is skipped, so no finished row is lost or duplicated.
  A lock file stops two processes from writing the same shard.
* **Failures** (seed description, bad audio, backend error, empty answer) are appended to
  ``shard-I-of-K.failures.jsonl`` with the error and retried on the next run; the summary
  merges them into ``failures.jsonl``.
* **Audio checks** (with ``data_root``): before anything is generated, every clip still to do
  is checked from its file header: inside the data root (no ``..``, no symlink out of it),
  present, decodable, not empty. Every bad clip is reported at once, each with its manifest
  line, in one error message, and recorded as a failure; the other clips go on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from desta.audio.io import audio_duration
from desta.data.backends import Backend, Conversation
from desta.data.instructions import InstructionPool
from desta.data.recipes.paths import resolve_under
from desta.data.seed import ClipRecord, iter_manifest, seed_description
from desta.errors import ConfigError, DestaError
from desta.locking import ExclusiveLock

logger = logging.getLogger(__name__)

AUDIO_LOCATOR = "<|AUDIO|>"
START_AUDIO, END_AUDIO = "<start_audio>", "<end_audio>"
TRAINING_TEMPLATE = f"{START_AUDIO}{AUDIO_LOCATOR}{END_AUDIO}\n{{prompt}}"
"""User message of a training row; ``audios`` holds the clip."""
BACKBONE_TEMPLATE = f"{START_AUDIO}{{seed_description}}{END_AUDIO}\n{{prompt}}"
"""User message the backbone answers: the training message with the locator replaced."""
ROW_FIELDS = ("id", "dataset", "seed_description", "prompt", "response", "messages")
RUN_FILE = "generation.json"
_BAD_AUDIO_LISTED = 20  # bad clips named one per line in the error message (all are recorded)
ROW_TRANSCRIPTS = ("given", "model")


def shard_of(clip_id: str, num_shards: int) -> int:
    """The shard a clip id belongs to: stable across machines, Python versions and runs."""
    digest = hashlib.sha256(clip_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


def item_seed(seed: int, clip_id: str) -> int:
    """Per-clip sampling seed derived from ``(seed, id)`` (31 bits, fits every engine)."""
    digest = hashlib.sha256(f"{seed}\x00{clip_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def shard_paths(out_dir: Path, shard_index: int, num_shards: int) -> tuple[Path, Path, Path]:
    """(rows, failures, lock) files of one shard."""
    stem = f"shard-{shard_index}-of-{num_shards}"
    return (out_dir / f"{stem}.jsonl", out_dir / f"{stem}.failures.jsonl",
            out_dir / f".{stem}.lock")


def training_messages(record: ClipRecord, prompt: str, audio: str,
                      row_transcript: str = "given") -> Conversation:
    """The training conversation of a row (user turn only; the response is appended later).

    The clip's transcript for the model: ``meta["row_transcript"]`` when the record sets one
    (the real corpus gives non-English speech " ", what the English-only embedded ASR gives
    it), else the record's transcript ("given") or None ("model": transcribed at training)."""
    if "row_transcript" in record.meta:
        text = record.meta["row_transcript"]
    else:
        text = record.transcript if row_transcript == "given" else None
    return [{"role": "user", "content": TRAINING_TEMPLATE.format(prompt=prompt),
             "audios": [{"audio": audio, "text": text}]}]


def available_attributes(record: ClipRecord) -> list[str]:
    """What a prompt's `requires` can ask about: the record's attribute names, plus
    "transcript" when it has spoken words."""
    names = [*record.attributes]
    if record.transcript and record.transcript.strip():
        names.append("transcript")
    return names


def backbone_messages(description: str, prompt: str, system_prompt: str | None = None
                      ) -> Conversation:
    """The text conversation the backbone answers (seed description in place of the audio)."""
    conv: Conversation = []
    if system_prompt:
        conv.append({"role": "system", "content": system_prompt})
    conv.append({"role": "user", "content": BACKBONE_TEMPLATE.format(
        seed_description=description, prompt=prompt)})
    return conv


# ---- crash-safe JSONL ---------------------------------------------------------------------------


def repair_jsonl(path: Path) -> list[dict[str, Any]]:
    """Cut a torn last line off ``path`` (a kill mid-write) and return its complete rows.

    Only the tail can be torn because every write ends with a newline; a bad line elsewhere
    means the file was edited or corrupted, and raises instead of guessing.
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        logger.warning("%s: dropping a torn last line of %d bytes (interrupted write)",
                       path, len(data) - end)
        with path.open("r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    rows = []
    for lineno, line in enumerate(data[:end].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DestaError(f"{path}:{lineno}: not a JSON row ({err.msg}); the file was "
                             "changed outside desta: fix or remove that line and rerun") from err
    return rows


def append_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows with one write, then flush and fsync: durable before the call returns."""
    if not rows:
        return
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    with path.open("ab") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


# ---- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerateConfig:
    """Everything a generation run needs besides the backend (all defaults in one place)."""

    manifest: Path
    out_dir: Path
    num_shards: int = 1
    shard_index: int = 0
    seed: int = 0
    instruction_files: tuple[str, ...] = ()  # user prompt pools added to the packaged one
    system_prompt: str | None = None
    data_root: Path | None = None  # check clips (inside it, readable); relativise their paths
    limit: int | None = None  # first N records of this shard (smoke runs)
    progress: bool = True
    # Prompt kinds drawn with these weights (None: every applicable prompt equally likely),
    # e.g. {"attribute": 1} for open questions about a labelled attribute.
    kind_weights: dict[str, float] | None = None
    # The transcript a row gives the model with its clip: "given" = the record's transcript;
    # "model" = none (null), so the model transcribes it as at inference (VAD + Whisper ASR,
    # once per clip in the training tap cache).
    row_transcript: str = "given"
    # Keep no answer that contradicts the clip's labels (gender, language, sound, instrument;
    # desta.data.answer_check): ask again, sampled, up to `verify_retries` times, then record
    # a failure. The targets stay the backbone's own words.
    verify_answers: bool = False
    verify_retries: int = 3

    def __post_init__(self) -> None:
        if self.row_transcript not in ROW_TRANSCRIPTS:
            raise ConfigError(f"--row-transcript must be one of {list(ROW_TRANSCRIPTS)}, "
                              f"got {self.row_transcript!r}")
        if self.num_shards < 1 or not 0 <= self.shard_index < self.num_shards:
            raise ConfigError(f"--shard-index must be in [0, --num-shards) and --num-shards "
                              f">= 1; got index {self.shard_index} of {self.num_shards}")
        if self.limit is not None and self.limit < 0:
            raise ConfigError(f"--limit must be >= 0, got {self.limit}")


@dataclass
class GenerateReport:
    """Counts of one shard run."""

    shard: str
    total: int  # records in this shard
    already_done: int  # skipped: written by an earlier run
    written: int = 0
    failed: int = 0
    rows_path: str = ""
    failures_path: str = ""
    failure_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Item:
    record: ClipRecord
    description: str
    prompt: str
    audio: str
    seed: int
    asks: tuple[str, ...] = ()  # attributes the prompt asks about (its `requires`)


def audio_ref(record: ClipRecord, data_root: Path) -> str:
    """The clip's path relative to `data_root` (as training rows store it), after checking
    that it stays inside the root and that its header is a readable, non-empty clip.

    Raises:
        DestaError: the path leaves the root, or the file is missing, empty or unreadable.
    """
    path = Path(record.audio)
    if path.is_absolute():
        try:
            path = path.relative_to(data_root.absolute())
        except ValueError:
            raise DestaError(f"audio file {path} is outside the data root {data_root}"
                             ) from None
    full = resolve_under(data_root, path.as_posix())  # no '..', no symlink out of the root
    audio_duration(full)  # header only: missing, empty, corrupt or frameless -> AudioError
    return path.as_posix()


def check_audio(records: Sequence[ClipRecord], data_root: Path, lines: dict[str, int],
                manifest: Path, *, progress: bool = False
                ) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Check every record's clip (:func:`audio_ref`); returns the audio reference per good
    record id, and one failure per bad record, its manifest line in the error. All bad ones
    are logged together in one error message."""
    from tqdm import tqdm

    refs: dict[str, str] = {}
    failures: list[dict[str, Any]] = []
    for record in tqdm(records, desc="check audio", unit="clip", disable=not progress,
                       dynamic_ncols=True):
        try:
            refs[record.id] = audio_ref(record, data_root)
        except DestaError as err:
            failures.append(_failure(record, "audio",
                                     f"{manifest}:{lines[record.id]}: {type(err).__name__}: "
                                     f"{err}"))
    if failures:
        shown = "\n".join(f["error"] for f in failures[:_BAD_AUDIO_LISTED])
        more = len(failures) - _BAD_AUDIO_LISTED
        logger.error("%d of %d clip(s) in %s cannot be used (recorded as failures and retried "
                     "on the next run; fix or remove those lines):\n%s%s", len(failures),
                     len(records), manifest, shown,
                     f"\n... and {more} more (all in the failures file)" if more > 0 else "")
    return refs, failures


def _failure(record: ClipRecord, stage: str, err: BaseException | str) -> dict[str, Any]:
    message = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    return {"id": record.id, "dataset": record.dataset, "domain": record.domain,
            "stage": stage, "error": message}


def _batches(records: Sequence[ClipRecord], size: int) -> Iterator[Sequence[ClipRecord]]:
    for start in range(0, len(records), size):
        yield records[start:start + size]


def _answer(backend: Backend, items: Sequence[_Item], system_prompt: str | None
            ) -> list[str | BaseException]:
    """Backend answers; a batch-level error is retried item by item so one item cannot sink it."""
    convs = [backbone_messages(i.description, i.prompt, system_prompt) for i in items]
    seeds = [i.seed for i in items]
    try:
        return backend.generate(convs, seeds)
    except Exception as err:
        if len(items) == 1:
            return [err]
        logger.warning("batch of %d failed (%s: %s); retrying one at a time", len(items),
                       type(err).__name__, err)
        out: list[str | BaseException] = []
        for conv, seed in zip(convs, seeds, strict=True):
            try:
                out.extend(backend.generate([conv], [seed]))
            except Exception as one_err:
                out.append(one_err)
        return out


def select_shard(records: Sequence[ClipRecord], num_shards: int, shard_index: int
                 ) -> list[ClipRecord]:
    """The records of one shard, in manifest order."""
    return [r for r in records if shard_of(r.id, num_shards) == shard_index]


def run_generation(config: GenerateConfig, backend: Backend,
                   pool: InstructionPool | None = None,
                   retry_backend: Backend | None = None) -> GenerateReport:
    """Generate (or finish generating) one shard; returns its counts. See the module docstring.
    `retry_backend` (a sampling one) asks again for answers `verify_answers` rejects."""
    from tqdm import tqdm

    pool = pool or InstructionPool.load(config.instruction_files)
    numbered = list(iter_manifest(config.manifest))
    lines = {record.id: lineno for lineno, record in numbered}
    records = select_shard([record for _, record in numbered], config.num_shards,
                           config.shard_index)
    if config.limit is not None:
        records = records[:config.limit]
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows_path, failures_path, lock_path = shard_paths(out_dir, config.shard_index,
                                                      config.num_shards)
    with ExclusiveLock(lock_path, "another process is writing this shard; wait for it or "
                       "run a different --shard-index"):
        _write_run_file(out_dir, config, backend)
        done = {row["id"] for row in repair_jsonl(rows_path)}
        repair_jsonl(failures_path)
        todo = [r for r in records if r.id not in done]
        report = GenerateReport(shard=rows_path.stem, total=len(records),
                                already_done=len(records) - len(todo),
                                rows_path=str(rows_path), failures_path=str(failures_path))
        if report.already_done:
            logger.info("%s: %d of %d rows already written; resuming", rows_path.name,
                        report.already_done, len(records))
        refs = {r.id: r.audio for r in todo}
        if config.data_root is not None:
            refs, bad = check_audio(todo, Path(config.data_root), lines, config.manifest,
                                    progress=config.progress)
            append_jsonl(failures_path, bad)
            report.failed += len(bad)
            report.failure_ids += [f["id"] for f in bad]
            todo = [r for r in todo if r.id in refs]
        bar = tqdm(total=len(todo), desc=f"generate {rows_path.stem}", unit="row",
                   disable=not config.progress, dynamic_ncols=True)
        for batch in _batches(todo, backend.batch_size):
            rows, failures = _run_batch(batch, refs, config, backend, pool, retry_backend)
            append_jsonl(rows_path, rows)  # rows first: a kill between the two only retries
            append_jsonl(failures_path, failures)
            report.written += len(rows)
            report.failed += len(failures)
            report.failure_ids += [f["id"] for f in failures]
            bar.update(len(batch))
            bar.set_postfix(failed=report.failed, refresh=False)
        bar.close()
    if report.failed:
        logger.warning("%d item(s) failed; see %s (they are retried on the next run)",
                       report.failed, failures_path)
    return report


def _run_batch(batch: Sequence[ClipRecord], refs: dict[str, str], config: GenerateConfig,
               backend: Backend, pool: InstructionPool, retry_backend: Backend | None = None
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    items: list[_Item] = []
    failures: list[dict[str, Any]] = []
    for record in batch:
        try:
            description = seed_description(record)
        except DestaError as err:
            failures.append(_failure(record, "seed_description", err))
            continue
        instruction = pool.sample(record.domain, config.seed, key=record.id,
                                  kind_weights=config.kind_weights,
                                  available=available_attributes(record))
        items.append(_Item(record, description, instruction.text, refs[record.id],
                           item_seed(config.seed, record.id), instruction.requires))
    rows: list[dict[str, Any]] = []
    if items:
        answers = _answer(backend, items, config.system_prompt)
        if len(answers) != len(items):
            raise DestaError(f"backend {backend.name} returned {len(answers)} answers for "
                             f"{len(items)} prompts (a bug in the backend)")
        if config.verify_answers:
            answers = _verified(items, answers, config, retry_backend)
        for item, answer in zip(items, answers, strict=True):
            if isinstance(answer, BaseException):
                failures.append(_failure(item.record, "generate", answer))
            elif isinstance(answer, _Rejected):
                failures.append(_failure(item.record, "verify", answer.reason))
            elif not answer.strip():
                failures.append(_failure(item.record, "generate", "empty response"))
            else:
                rows.append(make_row(item.record, item.description, item.prompt, answer,
                                     item.audio, config.row_transcript))
    return rows, failures


@dataclass(frozen=True)
class _Rejected:
    """An answer that still contradicts the clip's labels after every retry."""

    reason: str


def _verified(items: Sequence[_Item], answers: list[Any], config: GenerateConfig,
              retry_backend: Backend | None) -> list[Any]:
    """Answers that contradict the record's labels (desta.data.answer_check) are asked again,
    sampled with the item's seed + attempt, up to `config.verify_retries` times; one still
    contradicting is returned as `_Rejected` (a failure, never a row)."""
    from desta.data.answer_check import contradiction

    out = list(answers)

    def reason(i: int) -> str | None:
        answer = out[i]
        if isinstance(answer, BaseException) or not str(answer).strip():
            return None
        return contradiction(items[i].record.attributes, str(answer), items[i].asks)

    pending = [i for i in range(len(items)) if reason(i)]
    for attempt in range(1, config.verify_retries + 1):
        if not pending or retry_backend is None:
            break
        retried = _answer(retry_backend, [dataclasses.replace(items[i],
                                                             seed=items[i].seed + attempt)
                                          for i in pending], config.system_prompt)
        for i, answer in zip(pending, retried, strict=True):
            if not isinstance(answer, BaseException) and answer.strip():
                out[i] = answer
        pending = [i for i in pending if reason(i)]
    for i in pending:
        out[i] = _Rejected(f"answer contradicts the labels ({reason(i)}) after "
                           f"{config.verify_retries} sampled retries: {str(out[i])[:120]!r}")
    return out


def make_row(record: ClipRecord, description: str, prompt: str, response: str, audio: str,
             row_transcript: str = "given") -> dict[str, Any]:
    """One output row in the DeSTA-AQA5M layout (:data:`ROW_FIELDS`)."""
    messages = training_messages(record, prompt, audio, row_transcript)
    messages.append({"role": "assistant", "content": response})
    return {"id": record.id, "dataset": record.dataset, "seed_description": description,
            "prompt": prompt, "response": response, "messages": messages}


def _write_run_file(out_dir: Path, config: GenerateConfig, backend: Backend) -> None:
    """Record how the rows were made (provenance; also tells `summarize` the manifest)."""
    info = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()
            if k not in ("progress", "shard_index")}
    params = getattr(backend, "params", None)  # not part of the Backend protocol
    info.update(backend=backend.name, model=backend.model_name,
                training_template=TRAINING_TEMPLATE, backbone_template=BACKBONE_TEMPLATE,
                params=asdict(params) if params is not None else None)
    tmp = out_dir / f".{RUN_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / RUN_FILE)  # atomic: concurrent shards never see half a file


def resolve_audio_paths(messages: Conversation, data_root: str | os.PathLike[str]
                        ) -> Conversation:
    """A copy of a row's ``messages`` with relative audio paths joined onto ``data_root``."""
    root = Path(data_root)
    out = []
    for msg in messages:
        msg = dict(msg)
        if "audios" in msg:
            msg["audios"] = [{**a, "audio": str(root / a["audio"])} for a in msg["audios"]]
        out.append(msg)
    return out

"""Training rows -> batches: streamed JSONL, length-aware bucketing, sharding, collation.

Rows are the released DeSTA-AQA5M format, one JSON object per line:
`{"id", "dataset", "seed_description", "prompt", "response", "messages"}` with `messages` =
[user turn holding `<|AUDIO|>` + `audios: [{"audio": path under the data root, "text": ...}]`,
assistant turn = the target]. Manifests are read line by line (a 5M-row manifest never sits
in memory); only `data.bucket_rows` rows are held at a time, sorted by token length and cut into
batches so that rows of similar length share a batch (little padding).

The batch order is a pure function of (files, seed, epoch): every process plans the same global
sequence and takes its own share, and a resumed run skips the batches it already trained on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from desta.errors import ConfigError, DestaError
from desta.model.assembly import (
    AssembledBatch,
    Conversation,
    PromptBuilder,
    parse_conversations,
)

logger = logging.getLogger(__name__)


@dataclass
class Row:
    """One training row, with where it came from (for error messages)."""

    id: str
    messages: list[dict[str, Any]]
    seed_description: str | None
    prompt: str | None
    source: str  # "file:line"
    label: str | None = None  # short reference answer, when a row has one (validation metric)


# ---- reading manifests ------------------------------------------------------------------
def _is_failure_log(path: Path) -> bool:
    """`desta data generate`'s failure logs (shard-I-of-K.failures.jsonl, failures.jsonl)
    sit beside its rows; they hold no training rows."""
    return path.name == "failures.jsonl" or path.name.endswith(".failures.jsonl")


def manifest_files(paths: Sequence[str | Path]) -> list[Path]:
    """JSONL files named directly, or found (recursively, sorted) under directories; in a
    directory, the generation stage's failure logs are left out."""
    files: list[Path] = []
    for entry in paths:
        path = Path(entry).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.jsonl")
                           if p.is_file() and not _is_failure_log(p))
            if not found:
                raise ConfigError(f"manifest directory {path} holds no *.jsonl files")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"manifest {path} does not exist (give JSONL files or directories)")
    return files


def iter_rows(files: Iterable[Path]) -> Iterator[Row]:
    """Rows of the given JSONL files, in order, read lazily; malformed rows raise naming
    the file and line."""
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield _parse_row(line, f"{path}:{number}")


def count_rows(files: Iterable[Path]) -> int:
    """Non-empty lines in the manifests (one cheap streaming pass)."""
    total = 0
    for path in files:
        with path.open("rb") as handle:
            total += sum(1 for line in handle if line.strip())
    return total


def _parse_row(line: str, source: str) -> Row:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{source}: not valid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object per line")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ConfigError(f"{source}: missing 'messages' (a list of chat turns ending with the "
                          "assistant response)")
    return Row(id=str(data.get("id", source)), messages=messages,
               seed_description=data.get("seed_description"), prompt=data.get("prompt"),
               source=source, label=data.get("label"))


def resolve_audio_paths(messages: list[dict[str, Any]], data_root: Path) -> list[dict[str, Any]]:
    """Copy of `messages` with relative audio paths joined to the data root."""
    out = []
    for msg in messages:
        msg = dict(msg)
        if isinstance(msg.get("audios"), list):
            audios = []
            for ref in msg["audios"]:
                if isinstance(ref, dict) and isinstance(ref.get("audio"), str):
                    ref = {**ref, "audio": str(data_root / ref["audio"])}
                audios.append(ref)
            msg["audios"] = audios
        out.append(msg)
    return out


# ---- lengths and bucketing --------------------------------------------------------------
class RowEncoder:
    """Turns rows into parsed conversations and counts their LLM tokens exactly as the model
    will assemble them (chat template, audio positions, transcripts, response + EOS)."""

    def __init__(self, builder: PromptBuilder, *, max_transcript_tokens: int) -> None:
        self.builder = builder
        self.max_transcript_tokens = max_transcript_tokens

    def conversation(self, row: Row) -> Conversation:
        try:
            (conv,), _ = parse_conversations([row.messages], audio_locator=self.builder.locator,
                                             for_training=True)
        except DestaError as err:
            raise type(err)(f"{row.source} (id {row.id}): {err}") from None
        return conv

    def transcript_ids(self, text: str) -> list[int]:
        return self.builder.transcript_ids(text, self.max_transcript_tokens)

    def length(self, row: Row) -> int:
        conv = self.conversation(row)
        context = self.builder.context_ids(conv)
        n = len(context) - len(conv.clips)  # each locator id becomes audio + transcript
        for clip in conv.clips:
            # Unknown transcripts (ASR at collation) count as empty here.
            n += self.builder.prompt_size + len(self.transcript_ids(clip.text or ""))
        target = self.builder.tokenizer(conv.target, add_special_tokens=False)["input_ids"]
        return n + len(target) + 1  # + EOS

    def teacher_conversation(self, row: Row) -> Conversation:
        """Text-only conversation the backbone answered when the target was generated:
        seed description + prompt in place of the audio (for self-distillation)."""
        if not row.seed_description or not row.prompt:
            raise ConfigError(f"{row.source} (id {row.id}): self-distillation needs "
                              "'seed_description' and 'prompt' in every row")
        conv = self.conversation(row)
        context = [m for m in conv.messages if m["role"] == "system"]
        context.append({"role": "user", "content": f"{row.seed_description}\n{row.prompt}"})
        return Conversation(messages=context, clips=[], target=conv.target)


def plan_batches(rows: Iterable[Row], *, length_of: Any, batch_size: int, bucket_rows: int,
                 max_length: int, rng: np.random.Generator | None) -> Iterator[list[Row]]:
    """Cut a row stream into batches of similar length.

    Reads `bucket_rows` rows at a time, drops those longer than `max_length` tokens, sorts by
    length, cuts batches, and yields them in a shuffled order (`rng`; None keeps length order).
    Rows left over from a bucket start the next one, so only the very last batch can be short.
    """
    buffer: list[tuple[int, Row]] = []
    dropped = 0

    def flush(final: bool) -> Iterator[list[Row]]:
        buffer.sort(key=lambda item: item[0])
        cut = len(buffer) if final else len(buffer) - len(buffer) % batch_size
        batches = [[r for _, r in buffer[i:i + batch_size]] for i in range(0, cut, batch_size)]
        del buffer[:cut]
        order = rng.permutation(len(batches)) if rng is not None else range(len(batches))
        for i in order:
            yield batches[i]

    for row in rows:
        n = length_of(row)
        if n > max_length:
            dropped += 1
            continue
        buffer.append((n, row))
        if len(buffer) >= bucket_rows:
            yield from flush(final=False)
    yield from flush(final=True)
    if dropped:
        logger.warning("dropped %d row(s) longer than %d tokens", dropped, max_length)


def shard(batches: Iterable[list[Row]], rank: int, world: int) -> Iterator[list[Row]]:
    """This process's share: from each group of `world` consecutive batches, the rank-th.
    An incomplete last group is dropped so every process runs the same number of steps."""
    group: list[list[Row]] = []
    for batch in batches:
        group.append(batch)
        if len(group) == world:
            yield group[rank]
            group = []


# ---- collation ---------------------------------------------------------------------------
@dataclass
class Collated:
    """A batch with audio decoded and Whisper features computed; `to_prepared` finishes it
    with the model (ASR for clips without a transcript, token assembly)."""

    rows: list[Row]
    conversations: list[Conversation]
    input_features: torch.Tensor | None  # (N clips, mels, F); None when taps come cached
    texts: list[str | None]  # per clip, None = transcribe
    waves: dict[int, np.ndarray]  # clip index -> waveform, only for clips needing ASR
    feature_frames: list[int] | None = None  # clip window: mel frames per clip
    taps: list[torch.Tensor] | None = None  # K x (N, T, d) from the tap cache

    def to_prepared(self, model: Any, encoder: RowEncoder) -> Any:
        """PreparedBatch for `model(...)` (labels on response + EOS)."""
        texts, taps = list(self.texts), self.taps
        if taps is None:
            texts, taps = model.fill_transcripts(self.texts, self.waves, self.input_features,
                                                 self.feature_frames)
        return model.assemble(self.conversations, texts, self.input_features, taps,
                              encoder.max_transcript_tokens, self.feature_frames)

    def teacher_batch(self, encoder: RowEncoder) -> AssembledBatch:
        """Text-only batch (seed description instead of audio) for self-distillation."""
        convs = [encoder.teacher_conversation(r) for r in self.rows]
        return encoder.builder.build(convs, [[] for _ in convs])


class Collator:
    """Rows -> Collated: parse, load and resample audio, Whisper log-mel features in the
    model's encoder window — or, with a tap cache, the clips' cached taps (no audio decoding).
    Picklable (tokenizer + feature extractor only), so it runs in DataLoader workers."""

    def __init__(self, encoder: RowEncoder, feature_extractor: Any, data_root: str | Path,
                 max_seconds: float = 30.0, *, encoder_window: str = "30s",
                 clip_window_step: float = 1.0, tap_cache: Any = None) -> None:
        self.encoder = encoder
        self.feature_extractor = feature_extractor
        self.data_root = Path(data_root).expanduser()
        self.max_seconds = max_seconds
        self.encoder_window, self.clip_window_step = encoder_window, clip_window_step
        self.tap_cache = tap_cache

    def __call__(self, rows: list[Row]) -> Collated:
        from desta.audio.features import clip_frames, log_mel
        from desta.audio.io import load_audio

        convs, clips = [], []
        for row in rows:
            resolved = dataclasses.replace(
                row, messages=resolve_audio_paths(row.messages, self.data_root))
            conv = self.encoder.conversation(resolved)
            convs.append(conv)
            clips += [(row, clip) for clip in conv.clips]
        texts = [clip.text for _, clip in clips]
        if self.tap_cache is not None and clips:
            return self._from_cache(rows, convs, clips, texts)
        waves = []
        for row, clip in clips:
            wave = load_audio(clip.audio, sample_rate=clip.sampling_rate,
                              name=f"{row.source}: {clip.name}")
            # The encoder sees the first 30 s, as released.
            waves.append(wave[: int(self.max_seconds * 16_000)])
        features, frames = None, None
        if waves:
            frames = clip_frames(waves, self.encoder_window, self.clip_window_step)
            features = log_mel(self.feature_extractor, waves, frames)
        pending = {i: w for i, (w, t) in enumerate(zip(waves, texts)) if t is None}
        return Collated(rows=rows, conversations=convs, input_features=features, texts=texts,
                        waves=pending, feature_frames=frames)

    def _from_cache(self, rows: list[Row], convs: list[Conversation], clips: list[Any],
                    texts: list[str | None]) -> Collated:
        entries = []
        for i, (row, clip) in enumerate(clips):
            if not isinstance(clip.audio, str):
                raise ConfigError(f"{row.source}: the tap cache needs audio given as file paths")
            entry = self.tap_cache.load(Path(clip.audio))
            if texts[i] is None:
                if entry.transcript is None:
                    raise ConfigError(f"{row.source}: {clip.audio} has no transcript in the row "
                                      "or the tap cache; rebuild the cache")
                texts[i] = entry.transcript
            entries.append(entry)
        t = max(e.taps.shape[1] for e in entries)
        k, d = entries[0].taps.shape[0], entries[0].taps.shape[2]
        stacked = torch.zeros(k, len(entries), t, d)
        for i, e in enumerate(entries):
            stacked[:, i, : e.taps.shape[1]] = e.taps
        full = all(e.taps.shape[1] == t for e in entries) and self.encoder_window == "30s"
        return Collated(rows=rows, conversations=convs, input_features=None, texts=texts,
                        waves={}, feature_frames=None if full else [e.frames for e in entries],
                        taps=list(stacked.unbind(0)))


class TrainBatches(IterableDataset):
    """One epoch of collated training batches for one process, starting after `skip`
    batches (the data position of a resumed run). Batches are split across DataLoader
    workers round-robin, which the DataLoader reassembles in the same order."""

    def __init__(self, files: list[Path], *, collator: Collator, batch_size: int,
                 bucket_rows: int, max_length: int, seed: int, epoch: int, rank: int,
                 world: int, skip: int = 0) -> None:
        super().__init__()
        self.files, self.collator = files, collator
        self.batch_size, self.bucket_rows, self.max_length = batch_size, bucket_rows, max_length
        self.seed, self.epoch, self.rank, self.world, self.skip = seed, epoch, rank, world, skip

    def plan(self) -> Iterator[list[Row]]:
        """This process's batches of rows (no audio loaded), after the skip."""
        rng = np.random.default_rng([self.seed, self.epoch])
        files = [self.files[i] for i in rng.permutation(len(self.files))]
        batches = plan_batches(iter_rows(files), length_of=self.collator.encoder.length,
                               batch_size=self.batch_size, bucket_rows=self.bucket_rows,
                               max_length=self.max_length, rng=rng)
        for index, batch in enumerate(shard(batches, self.rank, self.world)):
            if index >= self.skip:
                yield batch

    def __iter__(self) -> Iterator[Collated]:
        worker = get_worker_info()
        for index, rows in enumerate(self.plan()):
            if worker is None or index % worker.num_workers == worker.id:
                yield self.collator(rows)


def validation_batches(files: list[Path], *, batch_size: int, max_rows: int | None,
                       max_length: int, encoder: RowEncoder, rank: int,
                       world: int) -> list[list[Row]]:
    """The held-out rows (first `max_rows`, in file order), cut into batches by length; this
    process's share is every world-th batch. Rows are small; audio is loaded per batch."""
    rows: list[Row] = []
    for row in iter_rows(files):
        if max_rows is not None and len(rows) >= max_rows:
            break
        rows.append(row)
    batches = list(plan_batches(rows, length_of=encoder.length, batch_size=batch_size,
                                bucket_rows=max(len(rows), 1), max_length=max_length, rng=None))
    return batches[rank::world]


def reference_of(row: Row) -> str:
    """What a validation prediction is scored against: the row's `label` when it has one,
    else its target response (last assistant message)."""
    if row.label:
        return row.label
    return str(row.messages[-1].get("content", ""))

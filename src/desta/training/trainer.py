"""The training loop, on Hugging Face Accelerate.

Accelerate owns everything distributed and numeric: process groups (DDP on GPU or gloo on
CPU; FSDP / DeepSpeed through `accelerate config`), launch (`accelerate launch`, `torchrun`,
SLURM), mixed precision, gradient accumulation and clipping, and checkpoint state (optimizer,
RNG per process, step counter). This module owns what is specific to DeSTA:

- the model: frozen backbones + trainable connector (float32 master weights);
- the data position (epoch, batches consumed) so a resumed run continues exactly;
- checkpoints holding only the trainable tensors, under their released names, next to
  `config.json` and the tokenizer, so every checkpoint directory loads with
  `DestaModel.from_pretrained`; written crash-safely (a `.partial` folder, every file
  fsynced, a marker listing each file's size and SHA-256 written last, then an atomic
  rename) and verified on resume, falling back to the newest intact checkpoint;
- a lock on the output directory (two runs never write the same files) and a stop with a
  named step when the loss becomes NaN or infinite;
- validation: held-out loss, greedy generation, the consecutive-words metric;
- optional self-distillation against the backbone's own text-only output.

One step = one optimizer step (`train.grad_accum` micro-batches per process).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from desta.errors import ConfigError, DestaError
from desta.locking import ExclusiveLock
from desta.training.config import TrainConfig
from desta.training.data import (
    Collator,
    Row,
    RowEncoder,
    TrainBatches,
    count_rows,
    iter_rows,
    manifest_files,
    reference_of,
    resolve_audio_paths,
    validation_batches,
)
from desta.training.metrics import consecutive_words_match

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
DONE_MARKER = "trainer_state.json"  # written last: lists every file with its size and SHA-256
LOCK_FILE = ".train.lock"  # in the output directory, held while a Trainer owns it
_STEP_PREFIX = "step_"
_STEP_DIR = re.compile(rf"{_STEP_PREFIX}(\d+)")
_PARTIAL = ".partial"  # a checkpoint being written; renamed to its step name once complete


class NonFiniteLossError(DestaError):
    """The training loss became NaN or infinite: the run diverged."""


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint (accelerate custom state)."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches this process consumed in `epoch`
    history: list[dict[str, float]] = field(default_factory=list)  # train log records
    validation: list[dict[str, float]] = field(default_factory=list)

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "batches_in_epoch": self.batches_in_epoch,
                "history": self.history, "validation": self.validation}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.epoch = state["step"], state["epoch"]
        self.batches_in_epoch = state["batches_in_epoch"]
        self.history, self.validation = list(state["history"]), list(state["validation"])


@dataclass
class TrainResult:
    output_dir: Path
    final_dir: Path | None  # exported model (None when interrupted)
    last_checkpoint: Path | None
    steps: int
    interrupted: bool
    history: list[dict[str, float]]
    validation: list[dict[str, float]]


def step_checkpoints(output_dir: str | Path) -> list[Path]:
    """The checkpoint folders under `output_dir/checkpoints`, newest first (complete or not;
    folders still being written are not listed)."""
    root = Path(output_dir) / CHECKPOINTS
    found = [(int(m.group(1)), p) for p in root.glob(f"{_STEP_PREFIX}*")
             if (m := _STEP_DIR.fullmatch(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found, reverse=True)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest intact checkpoint under `output_dir/checkpoints`, if any. Newer ones that
    fail :func:`checkpoint_problem` (a torn marker, a truncated or missing file) are skipped
    with a warning saying what is wrong with each."""
    for path in step_checkpoints(output_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        logger.warning("checkpoint %s is not usable (%s); trying the one before it", path,
                       problem)
    return None


def checkpoint_problem(path: str | Path) -> str | None:
    """What is wrong with the checkpoint folder `path`, or None when it is intact: its marker
    is missing or unreadable, or a file the marker lists is missing, of another size, or does
    not match its SHA-256."""
    path = Path(path)
    marker = path / DONE_MARKER
    if not marker.is_file():
        return f"no {DONE_MARKER}: it was never completed"
    try:
        state = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"{DONE_MARKER} is unreadable ({err})"
    files = state.get("files") if isinstance(state, dict) else None
    if not isinstance(files, dict) or not files:
        return f"{DONE_MARKER} lists no files"
    for name, entry in sorted(files.items()):
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        size = file.stat().st_size
        if size != entry.get("size"):
            return f"{name} is {size} bytes, {entry.get('size')} were written (truncated?)"
        if _sha256(file) != entry.get("sha256"):
            return f"{name} does not match its SHA-256 (corrupted)"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    """Flush a file's (or, for a folder, its entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def adapters_disabled(module: torch.nn.Module) -> Iterator[None]:
    """Run the backbone without its LoRA adapters (the teacher is the original LLM)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for m in module.modules() if isinstance(m, BaseTunerLayer)]
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield
    finally:
        for layer in layers:
            layer.enable_adapters(True)


def distillation_kl(student_logits: torch.Tensor, student_labels: torch.Tensor,
                    teacher_logits: torch.Tensor, teacher_labels: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """Mean over response tokens of KL(teacher || student), both at temperature T, times T^2.
    Logits at position t predict the label at t+1; both batches hold the same responses in
    the same row order, so the selected positions line up one to one."""
    s_mask, t_mask = student_labels[:, 1:] != -100, teacher_labels[:, 1:] != -100
    student = student_logits[:, :-1][s_mask].float() / temperature  # (T, V)
    teacher = teacher_logits[:, :-1][t_mask].float() / temperature
    assert student.shape == teacher.shape, (student.shape, teacher.shape)
    kl = F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1), log_target=True,
                  reduction="batchmean")
    return kl * temperature**2


class LabelTokens:
    """Token ids that begin a row's labels: each seed-description value ("Female", "Czech")
    with and without a leading space, in its own case, lower case and capitalised. A first
    token shorter than 3 characters (a split word's "C") is not taken: it would mark
    unrelated tokens."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._ids: dict[str, frozenset[int]] = {}

    def of_value(self, value: str) -> frozenset[int]:
        if value not in self._ids:
            ids = set()
            for text in {value, value.lower(), value.capitalize()}:
                for variant in (text, " " + text):
                    first = self.tokenizer(variant, add_special_tokens=False)["input_ids"][:1]
                    piece = self.tokenizer.decode(first).strip().lower() if first else ""
                    if len(piece) >= min(3, len(value)) and value.lower().startswith(piece):
                        ids.add(first[0])
            self._ids[value] = frozenset(ids)
        return self._ids[value]

    def of_seed(self, seed_description: str | None) -> frozenset[int]:
        from desta.data.balance import seed_values

        return frozenset().union(*(self.of_value(v) for v in seed_values(seed_description)))


def label_weighted_ce(logits: torch.Tensor, labels: torch.Tensor,
                      label_ids: list[frozenset[int]], weight: float) -> torch.Tensor:
    """Cross-entropy over target tokens (logits at t predict the label at t+1), each token of
    row i in `label_ids[i]` counting `weight` times; normalised by the total weight, so with
    weight 1 it equals the model's own mean loss."""
    targets = labels[:, 1:]
    mask = targets != -100
    ce = F.cross_entropy(logits[:, :-1][mask].float(), targets[mask], reduction="none")
    marked = torch.zeros_like(targets, dtype=torch.bool)
    for i, ids in enumerate(label_ids):
        if ids:
            marked[i] = torch.isin(targets[i], torch.tensor(sorted(ids), device=targets.device))
    w = torch.where(marked[mask], weight, 1.0).to(ce.dtype)
    return (w * ce).sum() / w.sum()


SKEW_ATTRIBUTES = ("Gender",)
SKEW_SCAN_ROWS = 200_000  # enough to see a prompt's label mix; keeps start-up cheap at 5 M rows


def warn_prompt_skew(files: list[Path]) -> dict[str, dict[str, dict[str, int]]]:
    """Warn about prompts that predict their answer in the training rows (one label of
    `SKEW_ATTRIBUTES` holds most of a prompt's rows): the connector then learns the prompt,
    not the audio. Reads at most `SKEW_SCAN_ROWS` rows; returns {attribute: skewed prompts}."""
    from itertools import islice

    from desta.data.balance import prompt_skew
    from desta.data.instructions import InstructionPool

    rows = [{"prompt": r.prompt, "seed_description": r.seed_description or ""}
            for r in islice(iter_rows(files), SKEW_SCAN_ROWS)]
    found = {}
    for attribute in SKEW_ATTRIBUTES:
        asking = {i.text for i in InstructionPool.load() if attribute.lower() in i.requires}
        skewed = prompt_skew(rows, attribute, asking)
        for prompt, counts in skewed.items():
            logger.warning("training rows: %r is answered %s; it will teach the label, not "
                           "listening (`desta data balance --attribute %s`)", prompt,
                           ", ".join(f"{k} {v}" for k, v in counts.items()), attribute)
        if skewed:
            found[attribute] = skewed
    return found


class Trainer:
    """Trains the connector (and LoRA, if configured) of a DeSTA model from a TrainConfig.

    `resume`: "auto" continues from the newest complete checkpoint in the output directory
    (if any), a path resumes from that checkpoint, None starts fresh.
    """

    def __init__(self, cfg: TrainConfig, *, resume: str | Path | None = "auto") -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration

        cfg.validate()
        if not cfg.data.train:
            raise ConfigError("data.train is empty: give one or more JSONL manifests or "
                              "directories (e.g. --set data.train=[corpus/train.jsonl])")
        self.cfg = cfg
        self.output_dir = Path(cfg.train.output_dir).expanduser()
        trackers = list(cfg.train.report_to)
        self.accelerator = Accelerator(
            # Without a GPU, torchrun / `accelerate launch` processes form a gloo CPU group.
            cpu=not torch.cuda.is_available(),
            mixed_precision=cfg.train.mixed_precision,
            gradient_accumulation_steps=cfg.train.grad_accum,
            log_with=trackers or None,
            project_config=ProjectConfiguration(project_dir=str(self.output_dir),
                                                logging_dir=str(self.output_dir)),
            # Every batch uses every connector parameter; frozen backbone buffers never change.
            kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)],
        )
        acc = self.accelerator
        # Only the main process writes run files; it holds the lock until fit() ends.
        self._lock = ExclusiveLock(
            self.output_dir / LOCK_FILE, f"another training run is using the output directory "
            f"{self.output_dir}; wait for it to finish or choose another train.output_dir")
        if acc.is_main_process:
            self._lock.acquire()
        self.train_files = manifest_files(cfg.data.train)
        if acc.is_main_process:
            warn_prompt_skew(self.train_files)
        self.val_files = manifest_files(cfg.data.validation) if cfg.data.validation else []

        from accelerate.utils import set_seed

        set_seed(cfg.train.seed)
        self.model = self._build_model()
        self.encoder = RowEncoder(self.model.builder,
                                  max_transcript_tokens=cfg.data.max_transcript_tokens)
        self.tap_cache = self._build_tap_cache() if cfg.data.tap_cache else None
        self.label_tokens = LabelTokens(self.model.tokenizer)
        mcfg = self.model.config
        self.collator = Collator(self.encoder, self.model.processor.feature_extractor,
                                 cfg.data.data_root, encoder_window=mcfg.encoder_window,
                                 clip_window_step=mcfg.clip_window_step,
                                 tap_cache=self.tap_cache)
        if cfg.model.connector_init == "data" and not cfg.model.init_from:
            self._init_connector_from_data()

        groups = self._param_groups()
        self._optimized = [p for g in groups for p in g["params"]]
        optimizer = torch.optim.AdamW(
            groups, lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), eps=cfg.optim.eps,
            weight_decay=cfg.optim.weight_decay, fused=acc.device.type == "cuda")
        self.total_steps = self._total_steps()
        from transformers import get_scheduler

        # Not passed to prepare(): accelerate would step it once per process per step; the
        # recipe's schedule counts optimizer steps.
        self.scheduler = get_scheduler(cfg.optim.schedule, optimizer,
                                       num_warmup_steps=cfg.optim.warmup_steps,
                                       num_training_steps=self.total_steps)
        self.wrapped, self.optimizer = acc.prepare(self.model, optimizer)
        self.progress = Progress()
        acc.register_for_checkpointing(self.scheduler, self.progress)
        acc.register_save_state_pre_hook(self._save_hook)
        acc.register_load_state_pre_hook(self._load_hook)

        self.resumed_from: Path | None = None
        try:
            self._resume(resume)
        except BaseException:
            self.close()
            raise
        self._stop_requested = False
        self._tracking = False

    # ---- setup ----------------------------------------------------------------------------
    def _backbone_dtype(self) -> torch.dtype:
        choice = self.cfg.train.backbone_dtype
        if choice == "auto":
            gpu_bf16 = (self.cfg.train.mixed_precision == "bf16"
                        and self.accelerator.device.type == "cuda")
            return torch.bfloat16 if gpu_bf16 else torch.float32
        return getattr(torch, choice)

    def _build_model(self) -> Any:
        from desta.model import DestaModel

        cfg, device, dtype = self.cfg, self.accelerator.device, self._backbone_dtype()
        if cfg.model.init_from:
            model = DestaModel.from_pretrained(cfg.model.init_from, dtype=dtype, device=device)
        else:
            model = DestaModel.from_config(cfg.model.to_desta_config(), dtype=dtype,
                                           device=device, seed=cfg.train.seed)
        for param in model.trainable_parameters():  # float32 master weights
            param.data = param.data.float()
        n = sum(p.numel() for p in model.trainable_parameters())
        logger.info("model: %s + %s, %.1f M trainable parameters", model.config.encoder_model_id,
                    model.config.llm_model_id, n / 1e6)
        return model

    def _param_groups(self) -> list[dict[str, Any]]:
        """Trainable parameters; with `optim.qformer_lr`, the Q-Former layers and queries form
        their own group at that lr (the schedule scales both), or, at 0, are left out of the
        optimizer (still saved: they are the connector's fixed feature map)."""
        params = self.model.trainable_parameters()
        qformer_lr = self.cfg.optim.qformer_lr
        if qformer_lr is None:
            return [{"params": params}]
        conn = self.model.connector
        slow = {id(p) for p in [*conn.qformer.parameters(), *conn.layer_prompts]}
        rest = [p for p in params if id(p) not in slow]
        if qformer_lr == 0:
            return [{"params": rest}]
        return [{"params": rest}, {"params": [p for p in params if id(p) in slow],
                                   "lr": qformer_lr}]

    def _init_connector_from_data(self, max_clips: int = 256) -> None:
        """`model.connector_init: data`: tap statistics of the first training clips (cached
        taps when there is a cache, the encoder otherwise), same on every process."""
        from desta.training.data import iter_rows

        rows, clips = [], 0
        for row in iter_rows(self.train_files):
            n = len(self.encoder.conversation(row).clips)
            if n:
                rows.append(row)
                clips += n
            if clips >= max_clips:
                break
        if not rows:
            logger.info("connector_init data: no audio in the training rows; BERT init kept")
            return
        total = sq = count = 0
        model = self.model
        device = next(model.connector.parameters()).device
        with torch.no_grad():
            for start in range(0, len(rows), 16):
                batch = self.collator(rows[start:start + 16])
                taps, frames = batch.taps, batch.feature_frames
                if taps is None:
                    feats = batch.input_features.to(device, model.encoder.dtype)
                    taps, _ = model.encode(feats, frames)
                for i in range(taps[0].shape[0]):
                    n = taps[0].shape[1] if frames is None else frames[i] // 2
                    x = torch.cat([t[i, :n].float().cpu() for t in taps])
                    total, sq, count = total + x.sum(0), sq + (x * x).sum(0), count + len(x)
        mean = total / count
        std = (sq / count - mean * mean).clamp_min(0).sqrt()
        emb = model.llm.get_input_embeddings().weight.detach().float()
        rms = float(emb.pow(2).mean().sqrt())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.train.seed)
            model.connector.init_from_data(mean.to(device), std.to(device), rms)
        logger.info("connector_init data: tap statistics of %d clip(s), LLM embedding RMS %.4f",
                    clips, rms)

    def _build_tap_cache(self) -> Any:
        """The frozen encoder's taps for every clip of the training and validation rows,
        computed once (main process; the others wait) and reused every epoch."""
        from desta.training.data import iter_rows
        from desta.training.tap_cache import TapCache

        acc, cfg = self.accelerator, self.cfg
        cache = TapCache(cfg.data.tap_cache, self.model)
        if acc.is_main_process:
            root = Path(cfg.data.data_root).expanduser()

            def clips() -> Iterator[tuple[Path, bool]]:
                for row in iter_rows([*self.train_files, *self.val_files]):
                    conv = self.encoder.conversation(row)
                    for clip in conv.clips:
                        if isinstance(clip.audio, str):
                            yield root / clip.audio, clip.text is None

            was_training = self.model.training
            self.model.eval()
            done = cache.build(clips(), progress=cfg.train.progress)
            self.model.train(was_training)
            logger.info("tap cache %s: %d clip(s) computed", cache.root, done)
        acc.wait_for_everyone()
        return cache

    def _total_steps(self) -> int:
        if self.cfg.train.max_steps:
            return self.cfg.train.max_steps
        t = self.cfg.train
        rows = count_rows(self.train_files)
        per_step = t.batch_size * t.grad_accum * self.accelerator.num_processes
        # An upper bound: rows over max_length are dropped later, when batches are planned.
        return max(1, math.ceil(rows / per_step) * t.epochs)

    # ---- checkpoints ----------------------------------------------------------------------
    def _save_hook(self, models: list[Any], weights: list[dict[str, Any]], output_dir: str) -> None:
        """accelerate is about to save the model: keep only the trainable tensors (released
        names) and add config + tokenizer, making the directory a loadable checkpoint."""
        from desta.model.checkpoint import trainable_state_dict

        if weights:
            weights[0] = trainable_state_dict(self.model)
        if self.accelerator.is_main_process:
            self.model.config.save(output_dir)
            self.model.tokenizer.save_pretrained(output_dir)

    def _load_hook(self, models: list[Any], input_dir: str) -> None:
        from safetensors.torch import load_file

        from desta.model.checkpoint import WEIGHTS_NAME, load_trainable

        if models:
            models.pop(0)  # we load the trainable tensors ourselves (the file has only those)
            path = Path(input_dir) / WEIGHTS_NAME
            load_trainable(self.model, load_file(str(path)), source=str(path))

    def save_checkpoint(self) -> Path:
        """Save everything needed to resume; prune old checkpoints. Returns its directory.

        Crash-safe: the state goes into `step_N.partial`, every file is fsynced, the marker
        (each file's size and SHA-256) is written last through a temporary file, and the
        folder is renamed to `step_N`; a kill at any point leaves the previous checkpoints
        untouched and at worst a `.partial` folder, which the next save removes."""
        acc = self.accelerator
        root = self.output_dir / CHECKPOINTS
        path = root / f"{_STEP_PREFIX}{self.progress.step:08d}"
        partial = path.with_name(path.name + _PARTIAL)
        if acc.is_main_process and partial.exists():
            shutil.rmtree(partial)  # left by a save that was interrupted
        acc.wait_for_everyone()
        acc.save_state(str(partial))
        for file in partial.iterdir():  # each process flushes what it wrote (and the rest)
            _fsync(file)
        acc.wait_for_everyone()
        if acc.is_main_process:
            files = {f.name: {"size": f.stat().st_size, "sha256": _sha256(f)}
                     for f in sorted(partial.iterdir()) if f.is_file()}
            state = {"step": self.progress.step, "epoch": self.progress.epoch,
                     "batches_in_epoch": self.progress.batches_in_epoch,
                     "num_processes": acc.num_processes, "files": files}
            tmp = partial / f".{DONE_MARKER}.tmp"
            tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
            _fsync(tmp)
            os.replace(tmp, partial / DONE_MARKER)
            _fsync(partial)
            if path.exists():  # this step was saved before (e.g. a damaged copy): replace it
                stale = path.with_name(path.name + ".replaced")
                shutil.rmtree(stale, ignore_errors=True)
                os.replace(path, stale)
                os.replace(partial, path)
                shutil.rmtree(stale, ignore_errors=True)
            else:
                os.replace(partial, path)
            _fsync(root)
            done = [p for p in step_checkpoints(self.output_dir) if (p / DONE_MARKER).is_file()]
            for old in done[self.cfg.train.keep_checkpoints:]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        logger.info("saved checkpoint %s", path)
        return path

    def _resume(self, resume: str | Path | None) -> None:
        """Load the checkpoint to resume from: `resume` itself (refused if damaged), or with
        "auto" the newest intact one, saying when newer ones were skipped."""
        if resume is None:
            return
        if resume == "auto":
            path = latest_checkpoint(self.output_dir)
            if path is None:
                if any((p / DONE_MARKER).exists() for p in step_checkpoints(self.output_dir)):
                    # Completed checkpoints exist but none is intact: never silently restart.
                    raise ConfigError(
                        f"no intact checkpoint in {self.output_dir / CHECKPOINTS} (see the "
                        "warnings above); remove the damaged ones to start over, or resume "
                        "from one with --resume DIR")
                return
            if path != step_checkpoints(self.output_dir)[0]:
                logger.warning("resuming from %s, the newest intact checkpoint", path)
        else:
            path = Path(resume)
            problem = checkpoint_problem(path)
            if problem is not None:
                raise ConfigError(f"cannot resume from {path}: {problem}")
        state = json.loads((path / DONE_MARKER).read_text(encoding="utf-8"))
        if state.get("num_processes") != self.accelerator.num_processes:
            # The data position is per process; another world size would replay other rows.
            raise ConfigError(
                f"{path} was written by {state.get('num_processes')} process(es), this run has "
                f"{self.accelerator.num_processes}; resume with the same number of processes")
        self.accelerator.load_state(str(path))
        self.resumed_from = path
        logger.info("resumed from %s at step %d (epoch %d, batch %d)", path, self.progress.step,
                    self.progress.epoch, self.progress.batches_in_epoch)

    # ---- signals ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT: finish the current step, checkpoint, stop. A second SIGINT aborts."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: Any) -> None:
            if self._stop_requested and signum == signal.SIGINT:
                raise KeyboardInterrupt
            logger.warning("received %s: checkpointing after this step",
                           signal.Signals(signum).name)
            self._stop_requested = True

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def request_stop(self) -> None:
        """Ask the loop to checkpoint and stop after the current step (as SIGTERM does)."""
        self._stop_requested = True

    def close(self) -> None:
        """Release the output directory's lock (fit() does so when it ends)."""
        self._lock.release()

    # ---- training -----------------------------------------------------------------------------
    def _loss(self, collated: Any) -> tuple[torch.Tensor, dict[str, float]]:
        cfg, acc = self.cfg.distill, self.accelerator
        prepared = collated.to_prepared(self.model, self.encoder)
        teacher_logits = teacher = None
        if cfg.weight > 0:
            teacher = collated.teacher_batch(self.encoder)
            dev = acc.device
            with torch.no_grad(), acc.autocast(), adapters_disabled(self.model.llm):
                teacher_logits = self.model.llm(
                    input_ids=teacher.input_ids.to(dev),
                    attention_mask=teacher.attention_mask.to(dev),
                    position_ids=teacher.position_ids.to(dev)).logits
        out = self.wrapped(prepared)
        ce = out.loss
        if self.cfg.train.label_weight != 1.0:
            ids = [self.label_tokens.of_seed(r.seed_description) for r in collated.rows]
            ce = label_weighted_ce(out.logits, prepared.batch.labels.to(out.logits.device), ids,
                                   self.cfg.train.label_weight)
        parts = {"ce": ce.detach()}
        loss = ce if cfg.weight == 0 else cfg.ce_weight * ce
        if teacher_logits is not None:
            kl = distillation_kl(out.logits, prepared.batch.labels.to(out.logits.device),
                                 teacher_logits, teacher.labels.to(teacher_logits.device),
                                 cfg.temperature)
            loss = loss + cfg.weight * kl
            parts["kl"] = kl.detach()
        return loss, parts

    def fit(self, *, stop_after_steps: int | None = None,
            step_callback: Callable[[Trainer, dict[str, float]], None] | None = None
            ) -> TrainResult:
        """Train until the configured epochs / max_steps (or `stop_after_steps` more optimizer
        steps, or a stop signal); checkpoint and export. `step_callback(trainer, record)` is
        called on every process after each optimizer step."""
        from torch.utils.data import DataLoader
        from tqdm.auto import tqdm

        cfg, acc, prog = self.cfg, self.accelerator, self.progress
        if acc.is_main_process:
            self._lock.acquire()  # a no-op unless an earlier fit() released it
            self.output_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.output_dir / "config.yaml")
        if cfg.train.report_to and not self._tracking:
            acc.init_trackers("tensorboard" if "tensorboard" in cfg.train.report_to else "desta")
            self._tracking = True
        limit = self.total_steps
        if stop_after_steps is not None:
            limit = min(limit, prog.step + stop_after_steps)
        bar = tqdm(total=self.total_steps, initial=prog.step, unit="step", dynamic_ncols=True,
                   disable=not (cfg.train.progress and acc.is_main_process), desc="train")
        if self.val_files and cfg.validation.at_start and prog.step == 0 \
                and self.resumed_from is None:
            self._validate()

        interrupted, last_ckpt = False, None
        window: list[dict[str, float]] = []
        window_start, window_rows = time.perf_counter(), 0
        accum_parts: dict[str, list[torch.Tensor]] = {}
        self.wrapped.train()
        with self._stop_on_signals():
            while prog.epoch < cfg.train.epochs and prog.step < limit and not interrupted:
                dataset = TrainBatches(
                    self.train_files, collator=self.collator, batch_size=cfg.train.batch_size,
                    bucket_rows=cfg.data.bucket_rows, max_length=cfg.data.max_length,
                    seed=cfg.train.seed, epoch=prog.epoch, rank=acc.process_index,
                    world=acc.num_processes, skip=prog.batches_in_epoch)
                # A private generator: creating the loader must not draw from the global RNG
                # (dropout), or a resumed run would diverge from an uninterrupted one.
                loader = DataLoader(dataset, batch_size=None, num_workers=cfg.data.num_workers,
                                    generator=torch.Generator())
                for collated in loader:
                    with acc.accumulate(self.wrapped):
                        loss, parts = self._loss(collated)
                        acc.backward(loss)
                        grad_norm = None
                        if acc.sync_gradients and cfg.optim.grad_clip > 0:
                            grad_norm = acc.clip_grad_norm_(self._optimized,
                                                            cfg.optim.grad_clip)
                        self.optimizer.step()
                        self.optimizer.zero_grad(set_to_none=True)
                        if acc.sync_gradients:  # parameters left out of the optimizer too
                            self.model.zero_grad(set_to_none=True)
                    prog.batches_in_epoch += 1
                    window_rows += len(collated.rows)
                    for k, v in {"loss": loss.detach(), **parts}.items():
                        accum_parts.setdefault(k, []).append(v)
                    if not acc.sync_gradients:
                        continue
                    lr = self.scheduler.get_last_lr()[0]
                    if not acc.optimizer_step_was_skipped:
                        self.scheduler.step()
                    prog.step += 1
                    record = self._step_record(accum_parts, grad_norm, lr)
                    accum_parts = {}
                    # Same reduced value on every process: all stop together, nothing is saved.
                    if not math.isfinite(record["loss"]) and not acc.optimizer_step_was_skipped:
                        bar.close()
                        self.close()
                        raise NonFiniteLossError(
                            f"the training loss became {record['loss']} at step {prog.step} "
                            f"(epoch {prog.epoch}); stopped without saving it. The last "
                            f"checkpoint is {latest_checkpoint(self.output_dir) or 'none'}. "
                            "Lower optim.lr, keep optim.grad_clip on, or check the rows")
                    window.append(record)
                    bar.update(1)
                    bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}")
                    if prog.step % cfg.train.log_every == 0:
                        elapsed = time.perf_counter() - window_start
                        self._log_window(window, window_rows * acc.num_processes / elapsed)
                        window, window_start, window_rows = [], time.perf_counter(), 0
                    if step_callback is not None:
                        step_callback(self, record)
                    if self.val_files and cfg.validation.every and \
                            prog.step % cfg.validation.every == 0 and prog.step < limit:
                        self._validate()
                    if self._stop_requested:
                        acc.set_trigger()
                    stop = acc.check_trigger()  # any process asked: all stop together
                    if stop or (cfg.train.save_every and prog.step % cfg.train.save_every == 0):
                        last_ckpt = self.save_checkpoint()
                    if stop:
                        interrupted = True
                        break
                    if prog.step >= limit:
                        break
                else:
                    prog.epoch += 1
                    prog.batches_in_epoch = 0
        bar.close()
        if window:
            elapsed = time.perf_counter() - window_start
            self._log_window(window, window_rows * acc.num_processes / max(elapsed, 1e-9))

        final_dir = None
        if not interrupted:
            if self.val_files and (not prog.validation or prog.validation[-1]["step"] != prog.step):
                self._validate()
            if last_ckpt is None or not last_ckpt.name.endswith(f"{prog.step:08d}"):
                last_ckpt = self.save_checkpoint()
            if prog.epoch >= cfg.train.epochs or prog.step >= self.total_steps:
                final_dir = self.export(self.output_dir / "final")
        if acc.is_main_process:
            self._write_metrics()
            self.plot(self.output_dir / "loss_curves.png")
        if self._tracking:
            acc.end_training()
            self._tracking = False
        self.close()
        return TrainResult(self.output_dir, final_dir, last_ckpt, prog.step, interrupted,
                           prog.history, prog.validation)

    def _step_record(self, parts: dict[str, list[torch.Tensor]], grad_norm: Any,
                     lr: float) -> dict[str, float]:
        """Mean over this step's micro-batches and over processes."""
        names = sorted(parts)
        local = torch.stack([torch.stack(parts[k]).float().mean() for k in names])
        merged = self.accelerator.reduce(local.to(self.accelerator.device), reduction="mean")
        record = {"step": float(self.progress.step), "epoch": float(self.progress.epoch), "lr": lr}
        record.update({k: float(v) for k, v in zip(names, merged.tolist())})
        if grad_norm is not None:
            record["grad_norm"] = float(grad_norm)
        return record

    def _log_window(self, window: list[dict[str, float]], samples_per_s: float) -> None:
        record = {k: sum(r[k] for r in window) / len(window) for k in window[-1]
                  if all(k in r for r in window)}
        record["step"], record["epoch"] = window[-1]["step"], window[-1]["epoch"]
        record["lr"] = window[-1]["lr"]
        record["samples_per_s"] = samples_per_s
        self.progress.history.append(record)
        if self._tracking:
            self.accelerator.log({f"train/{k}": v for k, v in record.items() if k != "step"},
                                 step=int(record["step"]))
        logger.info("step %d: %s", int(record["step"]),
                    ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "step"))

    # ---- validation ---------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Held-out loss (token-weighted mean), greedy generation and the consecutive-words
        metric on `data.validation`, split over processes. RNG state is left untouched."""
        from accelerate.utils import gather_object

        cfg, acc = self.cfg, self.accelerator
        if not self.val_files:
            raise ConfigError("data.validation is empty: nothing to evaluate on")
        model = self.model
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros(2, device=acc.device, dtype=torch.float64)  # (sum, tokens)
        predictions: list[dict[str, Any]] = []
        with torch.random.fork_rng(devices=[acc.device] if acc.device.type == "cuda" else []):
            batches = validation_batches(
                self.val_files, batch_size=cfg.validation.batch_size,
                max_rows=cfg.validation.max_rows, max_length=cfg.data.val_max_length,
                encoder=self.encoder, rank=acc.process_index, world=acc.num_processes)
            for rows in batches:
                prepared = self.collator(rows).to_prepared(model, self.encoder)
                with acc.autocast():
                    out = model(prepared)
                tokens = int((prepared.batch.labels[:, 1:] != -100).sum())
                loss_sum += torch.tensor([float(out.loss) * tokens, tokens], device=acc.device,
                                         dtype=torch.float64)
            rows = self._generation_rows()
            for start in range(0, len(rows), cfg.validation.batch_size):
                chunk = rows[start:start + cfg.validation.batch_size]
                convs = [resolve_audio_paths(r.messages[:-1], Path(cfg.data.data_root))
                         for r in chunk]
                with acc.autocast():
                    result = model.generate(convs, max_new_tokens=cfg.validation.max_new_tokens)
                for row, text in zip(chunk, result.texts):
                    ref = reference_of(row)
                    predictions.append({"id": row.id, "prediction": text, "reference": ref,
                                        "match": consecutive_words_match(text, ref)})
        model.train(was_training)
        total = acc.reduce(loss_sum, reduction="sum")
        predictions = gather_object(predictions) if acc.num_processes > 1 else predictions
        metrics = {"loss": float(total[0] / total[1].clamp(min=1)),
                   "tokens": float(total[1])}
        if predictions:
            metrics["consecutive_words"] = sum(p["match"] for p in predictions) / len(predictions)
            metrics["generated"] = float(len(predictions))
        self.last_predictions = predictions
        return metrics

    def _generation_rows(self) -> list[Row]:
        from desta.training.data import iter_rows

        n = self.cfg.validation.generate_rows
        if not n:
            return []
        rows = []
        for row in iter_rows(self.val_files):
            if len(rows) >= n:
                break
            rows.append(row)
        return rows[self.accelerator.process_index::self.accelerator.num_processes]

    def _validate(self) -> dict[str, float]:
        metrics = self.evaluate()
        record = {"step": float(self.progress.step), **metrics}
        self.progress.validation.append(record)
        if self._tracking:
            self.accelerator.log({f"val/{k}": v for k, v in metrics.items()},
                                 step=self.progress.step)
        if self.accelerator.is_main_process:
            folder = self.output_dir / "validation"
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / f"step_{self.progress.step:08d}.jsonl").open("w") as handle:
                for p in self.last_predictions:
                    handle.write(json.dumps(p, ensure_ascii=False) + "\n")
        logger.info("validation at step %d: %s", self.progress.step,
                    ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        return metrics

    # ---- outputs ------------------------------------------------------------------------------
    def export(self, directory: str | Path) -> Path:
        """Trainable-only model in the released layout (`DestaModel.from_pretrained` loads
        it); written by the main process."""
        directory = Path(directory)
        if self.accelerator.is_main_process:
            self.model.save_pretrained(directory)
        self.accelerator.wait_for_everyone()
        return directory

    def _write_metrics(self) -> None:
        with (self.output_dir / "metrics.jsonl").open("w") as handle:
            for rec in self.progress.history:
                handle.write(json.dumps({"split": "train", **rec}) + "\n")
            for rec in self.progress.validation:
                handle.write(json.dumps({"split": "validation", **rec}) + "\n")

    def plot(self, path: str | Path) -> Path | None:
        """PNG of the training and validation loss (and the validation metric)."""
        return plot_curves(self.progress.history, self.progress.validation, path)


def plot_curves(history: list[dict[str, float]], validation: list[dict[str, float]],
                path: str | Path) -> Path | None:
    """Loss curves (train per log window, held-out per evaluation) and, when present, the
    consecutive-words metric, as a PNG. Returns None when there is nothing to draw."""
    if not history and not validation:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_metric = any("consecutive_words" in v for v in validation)
    fig, axes = plt.subplots(1, 2 if has_metric else 1, figsize=(11 if has_metric else 6, 4),
                             squeeze=False)
    ax = axes[0][0]
    if history:
        ax.plot([r["step"] for r in history], [r["loss"] for r in history], label="train")
    if validation:
        ax.plot([r["step"] for r in validation], [r["loss"] for r in validation], "o-",
                label="held-out")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (response tokens)")
    ax.set_title("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    if has_metric:
        ax = axes[0][1]
        pts = [(r["step"], r["consecutive_words"]) for r in validation if "consecutive_words" in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("fraction")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title("held-out consecutive-words match")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

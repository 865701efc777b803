"""Training configuration: YAML recipes <-> typed dataclasses, validated on load.

A recipe file has one mapping per section (`model`, `data`, `optim`, `train`, `validation`,
`distill`); every key must be a field of that section's dataclass (unknown keys are errors, so a
typo never silently falls back to a default). Every default lives here, once. Command-line
overrides use dotted paths: `--set optim.lr=3e-4 --set data.train=[a.jsonl,b.jsonl]` (values
are parsed as YAML).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Union

import yaml

from desta.errors import ConfigError
from desta.model.config import EMBEDDED_ENCODER_ID, EMBEDDED_LLM_ID, DestaConfig


@dataclass
class ModelSection:
    """The model to train: backbones and connector shape (fields of `DestaConfig`), or a
    checkpoint to continue from (`init_from`, whose own config then wins)."""

    llm_model_id: str = EMBEDDED_LLM_ID
    encoder_model_id: str = EMBEDDED_ENCODER_ID
    target_layer_ids: list[int] | None = None  # None = 4 evenly spaced taps
    qformer_num_hidden_layers: int = 2
    qformer_intermediate_size: int = 3072
    qformer_dropout: float = 0.1
    prompt_size: int = 64
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj"])
    placeholder_token: str | None = None
    encoder_window: str = "30s"  # "30s" (released) | "clip" (each clip at its own length)
    clip_window_step: float = 1.0  # seconds the clip window is rounded up to
    init_from: str | None = None  # checkpoint dir / hub id to start from (weights only)
    # "bert" (BERT's init, as released) | "data": value projections centred and whitened by
    # the training taps' statistics, output scaled to the LLM's embeddings (docs/training.md)
    connector_init: str = "bert"

    def to_desta_config(self) -> DestaConfig:
        """The `DestaConfig` these fields describe (validated there)."""
        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name not in ("init_from", "connector_init")}
        return DestaConfig(**kwargs)


@dataclass
class DataSection:
    """Where the JSONL rows and their audio are, and how they become batches."""

    data_root: str = "."  # audio paths in the rows are relative to this
    train: list[str] = field(default_factory=list)  # JSONL files or directories of them
    validation: list[str] = field(default_factory=list)
    max_length: int = 300  # tokens per training row (audio positions included); longer: dropped
    val_max_length: int = 512
    max_transcript_tokens: int = 100
    # Rows read ahead and sorted by length before cutting batches: larger = less padding,
    # more memory (rows only, no audio).
    bucket_rows: int = 2048
    num_workers: int = 0  # DataLoader workers that decode audio and compute Whisper features
    # Folder of encoder taps computed once per clip and reused every epoch (the encoder is
    # frozen); None = run the encoder on every batch. Rows must then carry transcripts or
    # have them computed once into the cache (clips with `text: null` get VAD + ASR there).
    tap_cache: str | None = None


@dataclass
class OptimSection:
    """AdamW + warm-up/decay schedule (stepped once per optimizer step)."""

    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    weight_decay: float = 0.01
    eps: float = 1e-8
    schedule: str = "cosine"  # any transformers.get_scheduler name: cosine, linear, constant...
    warmup_steps: int = 5000
    grad_clip: float = 1.0  # max global grad norm; 0 = off
    # lr of the Q-Former layers and their queries; None = lr; 0 = kept at their initialisation
    # (only the projection into the LLM and the tap fusion weights learn: with
    # model.connector_init data, a linear read-out of random Q-Former features; docs/model-card.md)
    qformer_lr: float | None = None


@dataclass
class TrainSection:
    """Run length, precision, checkpoints, logging."""

    output_dir: str = "runs/desta"
    batch_size: int = 12  # per process
    grad_accum: int = 1
    epochs: int = 5
    max_steps: int | None = None  # optimizer steps; stops early and sizes the schedule
    mixed_precision: str = "no"  # no | bf16 | fp16 (accelerate)
    # Storage dtype of the frozen backbones: auto = bfloat16 with bf16 mixed precision on GPU,
    # else float32. The trainable connector always keeps float32 master weights.
    backbone_dtype: str = "auto"
    seed: int = 42
    log_every: int = 10
    save_every: int = 1000  # optimizer steps between checkpoints; 0 = only at the end/interrupt
    keep_checkpoints: int = 3
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])  # + "wandb"
    progress: bool = True
    # Loss weight of the response tokens that spell one of the row's seed-description labels
    # ("female", "Czech"): the few tokens that depend on the audio. 1 = plain cross-entropy,
    # as released.
    label_weight: float = 1.0


@dataclass
class ValidationSection:
    """Held-out evaluation: loss, greedy generation, consecutive-words metric."""

    every: int = 1000  # optimizer steps; 0 = only at the start and end
    max_rows: int | None = 500  # rows of `data.validation` used; None = all
    batch_size: int = 8
    generate_rows: int = 32  # of those, how many get a greedy generation
    max_new_tokens: int = 192
    at_start: bool = True  # evaluate the untrained adapter too (the baseline)


@dataclass
class DistillSection:
    """Optional self-distillation: KL(teacher || student) on the response tokens, where the
    teacher is the same frozen LLM fed the row's seed description instead of the audio."""

    weight: float = 0.0  # 0 = off
    temperature: float = 1.0
    ce_weight: float = 1.0


@dataclass
class TrainConfig:
    """A whole training recipe."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    validation: ValidationSection = field(default_factory=ValidationSection)
    distill: DistillSection = field(default_factory=DistillSection)

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field."""
        _check_finite(self, "")
        self.model.to_desta_config()
        positive = {
            "data.max_length": self.data.max_length, "data.val_max_length": self.data.val_max_length,
            "data.max_transcript_tokens": self.data.max_transcript_tokens,
            "data.bucket_rows": self.data.bucket_rows, "train.batch_size": self.train.batch_size,
            "train.grad_accum": self.train.grad_accum, "train.epochs": self.train.epochs,
            "train.log_every": self.train.log_every,
            "train.keep_checkpoints": self.train.keep_checkpoints,
            "validation.batch_size": self.validation.batch_size,
            "validation.max_new_tokens": self.validation.max_new_tokens,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        non_negative = {
            "data.num_workers": self.data.num_workers, "optim.warmup_steps": self.optim.warmup_steps,
            "optim.weight_decay": self.optim.weight_decay, "optim.grad_clip": self.optim.grad_clip,
            "train.save_every": self.train.save_every, "validation.every": self.validation.every,
            "validation.generate_rows": self.validation.generate_rows,
            "distill.weight": self.distill.weight, "distill.ce_weight": self.distill.ce_weight,
            "train.label_weight": self.train.label_weight,
        }
        for name, value in non_negative.items():
            if value < 0:
                raise ConfigError(f"{name} must be >= 0, got {value}")
        if self.train.max_steps is not None and self.train.max_steps < 1:
            raise ConfigError(f"train.max_steps must be >= 1 or null, got {self.train.max_steps}")
        if self.validation.max_rows is not None and self.validation.max_rows < 1:
            raise ConfigError("validation.max_rows must be >= 1 or null")
        if not self.optim.lr > 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.optim.lr}")
        if self.optim.qformer_lr is not None and not self.optim.qformer_lr >= 0:
            raise ConfigError(f"optim.qformer_lr must be >= 0 or null, got "
                              f"{self.optim.qformer_lr}")
        if len(self.optim.betas) != 2 or not all(0 <= b < 1 for b in self.optim.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {self.optim.betas}")
        if self.distill.temperature <= 0:
            raise ConfigError("distill.temperature must be > 0")
        if self.distill.ce_weight == 0 and self.distill.weight == 0:
            raise ConfigError("distill.ce_weight and distill.weight are both 0: nothing to train")
        _choice("model.connector_init", self.model.connector_init, ("bert", "data"))
        _choice("train.mixed_precision", self.train.mixed_precision, ("no", "bf16", "fp16"))
        _choice("train.backbone_dtype", self.train.backbone_dtype,
                ("auto", "float32", "bfloat16", "float16"))
        for tracker in self.train.report_to:
            _choice("train.report_to", tracker, ("tensorboard", "wandb"))
        from transformers.trainer_utils import SchedulerType

        _choice("optim.schedule", self.optim.schedule, tuple(s.value for s in SchedulerType))
        if self.data.max_length > self.data.val_max_length:
            raise ConfigError("data.val_max_length must be >= data.max_length")

    # ---- (de)serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_yaml())
        return path


def _check_finite(section: Any, where: str) -> None:
    """Every number of every section is finite: YAML reads `.inf` / `.nan` as floats, and a
    NaN passes every `<` check (an infinite lr would train to NaN and exit 0)."""
    for f in dataclasses.fields(section):
        value, name = getattr(section, f.name), f"{where}.{f.name}" if where else f.name
        if dataclasses.is_dataclass(value):
            _check_finite(value, name)
            continue
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, float) and not math.isfinite(item):
                at = f"{name}[{i}]" if isinstance(value, list) else name
                raise ConfigError(f"{at} must be a finite number, got {item}")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {list(allowed)}, got {value!r}")


# ---- building dataclasses from plain data, with type checks ----------------------------
def _convert(value: Any, annotation: Any, where: str) -> Any:
    """Check `value` against a (resolved) type annotation; ints are accepted for floats."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: unexpected null")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(annotation)
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, where)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML reads `1e-4` (no dot) as a string; accept numeric strings.
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise AssertionError(f"unsupported annotation {annotation!r} at {where}")


def _build(cls: type, data: Any, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(names)}")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any], *, source: str = "config") -> TrainConfig:
    """Build and validate a TrainConfig from nested plain data (as read from YAML)."""
    try:
        cfg = _build(TrainConfig, data, "")
        cfg.validate()
    except ConfigError as err:
        raise ConfigError(f"{source}: {str(err).lstrip(': ')}") from None
    return cfg


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` strings (value parsed as YAML) to nested plain data."""
    for item in overrides:
        path, sep, raw = item.partition("=")
        keys = [k for k in path.strip().split(".") if k]
        if not sep or len(keys) < 2:
            raise ConfigError(f"override {item!r}: expected section.key=value, e.g. optim.lr=3e-4")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({err})") from None
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {key} is not a section")
        node[keys[-1]] = value
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML recipe (a path, or the name of a shipped recipe such as `tiny-cpu`),
    apply overrides, validate."""
    path = resolve_recipe(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return config_from_dict(apply_overrides(data, overrides or []), source=str(path))


def recipe_names() -> list[str]:
    """Names of the recipes shipped in `desta/configs/`."""
    folder = resources.files("desta") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve_recipe(name_or_path: str | Path) -> Path:
    """A YAML path as given, or a shipped recipe by name (`released`, `tiny-cpu`...)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = Path(str(resources.files("desta") / "configs" / f"{name_or_path}.yaml"))
    if shipped.is_file():
        return shipped
    raise ConfigError(f"no training config at {name_or_path!r}: give a YAML path or one of the "
                      f"shipped recipes {recipe_names()}")

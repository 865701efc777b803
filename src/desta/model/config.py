"""`DestaConfig`: every field of a DeSTA2.5-Audio model, compatible with the released
`config.json` (REFERENCE.md section 5) plus the few knobs the released code hard-coded."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desta.errors import ConfigError

logger = logging.getLogger(__name__)

MODEL_TYPE = "desta25"
ENCODER_WINDOWS = ("30s", "clip")
EMBEDDED_ENCODER_ID = "embedded:whisper-tiny.en"
EMBEDDED_LLM_ID = "embedded:smollm2-135m-instruct"

# Keys that Hugging Face's PretrainedConfig writes into every config.json; released checkpoints
# carry them, they mean nothing to us.
_HF_BOILERPLATE = {
    "architectures", "auto_map", "transformers_version", "torch_dtype", "dtype", "_name_or_path",
    "return_dict", "output_hidden_states", "output_attentions", "torchscript", "use_bfloat16",
    "tf_legacy_loss", "pruned_heads", "tie_word_embeddings", "chunk_size_feed_forward",
    "is_encoder_decoder", "is_decoder", "cross_attention_hidden_size", "add_cross_attention",
    "tie_encoder_decoder", "id2label", "label2id", "problem_type", "tokenizer_class",
    "prefix", "bos_token_id", "pad_token_id", "eos_token_id", "sep_token_id",
    "decoder_start_token_id", "task_specific_params", "finetuning_task", "max_length",
    "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups",
    "diversity_penalty", "temperature", "top_k", "top_p", "typical_p", "repetition_penalty",
    "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids",
    "num_return_sequences", "output_scores", "return_dict_in_generate",
    "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
    "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens",
}


def default_taps(num_encoder_layers: int) -> list[int]:
    """Four evenly spaced encoder layers ending with the last one, 0-indexed.

    Gives the released choices: tiny (4) [0,1,2,3], small (12) [2,5,8,11],
    medium (24) [5,11,17,23], large (32) [7,15,23,31].
    """
    if num_encoder_layers < 4:
        return list(range(num_encoder_layers))
    return [(k + 1) * num_encoder_layers // 4 - 1 for k in range(4)]


@dataclass
class DestaConfig:
    """Configuration of a DeSTA model. Field names follow the released `config.json`."""

    llm_model_id: str = EMBEDDED_LLM_ID
    encoder_model_id: str = EMBEDDED_ENCODER_ID
    connector_mode: str = "qformer_1"
    qformer_num_hidden_layers: int = 2
    prompt_size: int = 64
    # Encoder taps (0-indexed layers); None = default_taps(encoder depth).
    target_layer_ids: list[int] | None = None
    qformer_intermediate_size: int = 3072  # BERT default, not 4 x d_model
    qformer_dropout: float = 0.1
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj"])
    audio_locator: str = "<|AUDIO|>"
    # Whisper input window. "30s": every clip padded or cut to 30 s (3000 mel frames, 1500
    # encoder positions), as released; the default, and what released checkpoints (which lack
    # the key) run with. "clip": each clip is encoded at its own length rounded up to a multiple
    # of `clip_window_step` seconds (at most 30 s); positional embeddings are sliced and the
    # Q-Former sees only the clip's own positions. Saved in config.json, so a checkpoint always
    # runs the way it was trained.
    encoder_window: str = "30s"
    clip_window_step: float = 1.0
    # Existing, otherwise unused LLM token standing in for audio positions; None = chosen per
    # backbone when the model is built (see model.tokens.choose_placeholder_token).
    placeholder_token: str | None = None
    # Filled in from the backbones when a model is built; saved so a checkpoint is readable
    # without them.
    llm_config: dict[str, Any] | None = None
    encoder_config: dict[str, Any] | None = None
    model_type: str = MODEL_TYPE

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field."""
        if self.model_type != MODEL_TYPE:
            raise ConfigError(f"model_type must be {MODEL_TYPE!r}, got {self.model_type!r}")
        if self.connector_mode != "qformer_1":
            raise ConfigError(
                f"connector_mode {self.connector_mode!r} is not supported; use 'qformer_1'"
            )
        for name in ("qformer_num_hidden_layers", "prompt_size", "qformer_intermediate_size",
                     "lora_r", "lora_alpha"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("qformer_dropout", "lora_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
        if self.target_layer_ids is not None:
            ids = self.target_layer_ids
            if (not isinstance(ids, list) or not ids
                    or not all(isinstance(i, int) and i >= 0 for i in ids)):
                raise ConfigError(
                    f"target_layer_ids must be a non-empty list of layer indices, got {ids!r}"
                )
            if len(set(ids)) != len(ids) or sorted(ids) != ids:
                raise ConfigError(f"target_layer_ids must be increasing and distinct: {ids}")
        if self.encoder_window not in ENCODER_WINDOWS:
            raise ConfigError(f"encoder_window must be one of {list(ENCODER_WINDOWS)}, got "
                              f"{self.encoder_window!r}")
        step = self.clip_window_step
        if (isinstance(step, bool) or not isinstance(step, (int, float))
                or not 0.02 <= step <= 30.0 or abs(step * 50 - round(step * 50)) > 1e-9):
            # A whole number of mel frame pairs (20 ms), so every window has integer positions.
            raise ConfigError(f"clip_window_step must be a multiple of 0.02 s in [0.02, 30], "
                              f"got {step!r}")
        for name in ("llm_model_id", "encoder_model_id", "audio_locator"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"{name} must be a non-empty string")

    def taps(self, num_encoder_layers: int) -> list[int]:
        """Tapped encoder layers, checked against the encoder's depth."""
        taps = self.target_layer_ids or default_taps(num_encoder_layers)
        if max(taps) >= num_encoder_layers:
            raise ConfigError(
                f"target_layer_ids {taps} exceed the encoder's {num_encoder_layers} layers "
                f"({self.encoder_model_id})"
            )
        return list(taps)

    # ---- (de)serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> DestaConfig:
        """Build from a dict such as a released `config.json`; HF boilerplate keys are
        ignored, other unknown keys are reported (not fatal: newer releases may add some)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known - _HF_BOILERPLATE)
        if unknown:
            logger.warning("%s: ignoring unknown config keys %s", source, unknown)
        kwargs = {k: v for k, v in data.items() if k in known}
        try:
            return cls(**kwargs)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / "config.json"
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> DestaConfig:
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise ConfigError(f"no DeSTA config at {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(data, source=str(path))

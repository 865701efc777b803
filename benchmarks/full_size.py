"""The released model's shapes with random weights, for speed measurements where the real
Whisper-large-v3 / Llama-3.1-8B weights cannot be downloaded. Numbers of parameters, FLOPs and
memory traffic are those of the real model; outputs are meaningless.

Tokenizers come from the embedded models (ids fit inside Llama-3's vocabulary); the Whisper
feature extractor is large-v3's (128 mel bins).
"""

from __future__ import annotations

from pathlib import Path

import torch

# openai/whisper-large-v3 and meta-llama/Llama-3.1-8B-Instruct config values.
WHISPER_LARGE_V3 = dict(
    d_model=1280, encoder_layers=32, decoder_layers=32, encoder_attention_heads=20,
    decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120, num_mel_bins=128,
    vocab_size=51866, max_source_positions=1500, max_target_positions=448,
)
LLAMA_3_1_8B = dict(
    hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
    num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0,
    max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=False,
    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
)


def full_size_random_model(device: str | torch.device, dtype: torch.dtype = torch.bfloat16,
                           *, use_lora: bool = False, assets: str | Path | None = None,
                           encoder_window: str = "30s"):
    """A DestaModel with the released recipe's shapes (large-v3 taps [7,15,23,31], 6-layer
    Q-Former, 64 queries, Llama-3.1-8B) and random weights, built directly on `device`, with
    the given encoder window ("30s" as released, or "clip").

    `assets`: a folder with `whisper/` and `llm/` holding the embedded models' tokenizer and
    config files only (for machines without the embedded packages); default: the embedded
    models' converted directories."""
    from transformers import (
        AutoTokenizer,
        LlamaConfig,
        LlamaForCausalLM,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    from desta.backbones import EMBEDDED_ENCODER_ID, EMBEDDED_LLM_ID, resolve_backbone
    from desta.model import DestaConfig, DestaModel

    if assets is not None:
        enc_dir, llm_dir = str(Path(assets) / "whisper"), str(Path(assets) / "llm")
    else:
        enc_dir = resolve_backbone(EMBEDDED_ENCODER_ID)
        llm_dir = resolve_backbone(EMBEDDED_LLM_ID)
    small = WhisperProcessor.from_pretrained(enc_dir)
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=128),
                                 tokenizer=small.tokenizer)
    tokenizer = AutoTokenizer.from_pretrained(llm_dir)
    wcfg = WhisperConfig.from_pretrained(enc_dir)
    wcfg.update(WHISPER_LARGE_V3)
    lcfg = LlamaConfig(**LLAMA_3_1_8B, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            encoder = WhisperForConditionalGeneration(wcfg)
            encoder.generation_config = encoder.generation_config.from_pretrained(enc_dir)
            llm = LlamaForCausalLM(lcfg)
    finally:
        torch.set_default_dtype(previous)
    config = DestaConfig(encoder_model_id="openai/whisper-large-v3",
                         llm_model_id="meta-llama/Llama-3.1-8B-Instruct",
                         qformer_num_hidden_layers=6, prompt_size=64, use_lora=use_lora,
                         encoder_window=encoder_window)
    with torch.device(device):
        model = DestaModel(config, encoder=encoder.eval(), processor=processor, llm=llm.eval(),
                           tokenizer=tokenizer)
    return model.to(device=device, dtype=dtype).eval()

"""DeSTA2.5-Audio: frozen Whisper encoder -> taps -> Q-Former connector -> frozen LLM.

Reads top to bottom: building the model from backbones, encoder taps, connector, input
embeddings (audio vectors written over their placeholder positions), loss, and batched
generation with VAD + Whisper ASR supplying transcripts. Shapes: N clips, B conversations,
L tokens, P prompt_size, H LLM hidden size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from desta.audio.features import (
    SAMPLE_RATE,
    WHISPER_WINDOW_SECONDS,
    clip_frames,
    length_groups,
    log_mel,
    window_frames,
)
from desta.model.assembly import (
    AssembledBatch,
    AudioRef,
    Conversation,
    PromptBuilder,
    choose_placeholder_token,
    parse_conversations,
    prepare_tokenizer,
)
from desta.model.config import DestaConfig
from desta.model.connector import QFormerConnector

logger = logging.getLogger(__name__)

# End-of-turn tokens of common chat templates; generation also stops on the backbone's EOS.
_CHAT_END_TOKENS = ("<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>")
PREPARE_CHUNK = 8
"""Conversations `generate` prepares (audio, encoder, connector) at a time: measured on a
2-core CPU, larger encoder batches are slower per clip (docs/benchmarks.md)."""
MAX_ACTIVE_ROWS = 32
"""Rows `generate` decodes together; more wait and take the slot of a finished row."""


@dataclass
class PreparedBatch:
    """Everything the LLM call needs: token ids/mask/labels, clip positions, and per-clip
    Whisper features (N, mels, F) — or encoder outputs already computed for them.

    F is 3000 for the 30 s window. With `encoder_window: clip` each clip has its own window,
    `feature_frames[i]` mel frames, and features and taps are padded to the longest."""

    batch: AssembledBatch
    input_features: torch.Tensor | None
    transcripts: list[list[str]]  # per conversation, per clip
    taps: list[torch.Tensor] | None = None  # K x (N, T, d) if the encoder already ran
    feature_frames: list[int] | None = None  # per clip; None = every clip fills F frames

    @property
    def tap_lengths(self) -> list[int] | None:
        """Encoder positions per clip (half the mel frames), or None when all are full."""
        return None if self.feature_frames is None else [f // 2 for f in self.feature_frames]


@dataclass
class GenerationResult:
    texts: list[str]  # one per conversation
    transcripts: list[list[str]]  # the transcript used for each clip, per conversation
    token_ids: list[list[int]]  # generated ids, stop token excluded

    @property
    def text(self) -> list[str]:  # the released API's name
        return self.texts


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


class DestaModel(nn.Module):
    """A DeSTA audio language model. Build it with `from_pretrained` (a checkpoint directory or
    hub id) or `from_config` (fresh connector on the configured backbones)."""

    def __init__(self, config: DestaConfig, *, encoder: nn.Module, processor: Any,
                 llm: nn.Module, tokenizer: Any) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder  # WhisperForConditionalGeneration: encoder for taps, decoder for ASR
        self.processor = processor  # WhisperProcessor (feature extractor + tokenizer)
        self.llm = llm
        self.tokenizer = tokenizer

        enc_cfg, llm_cfg = encoder.config, llm.config
        config.encoder_config = enc_cfg.to_dict()
        config.llm_config = llm_cfg.to_dict()
        self.taps = config.taps(enc_cfg.encoder_layers)
        config.target_layer_ids = self.taps

        prepare_tokenizer(tokenizer, config.audio_locator)
        if config.placeholder_token is None:
            config.placeholder_token = choose_placeholder_token(tokenizer)
        self.builder = PromptBuilder(
            tokenizer, audio_locator=config.audio_locator,
            placeholder_token=config.placeholder_token, prompt_size=config.prompt_size,
            max_length=getattr(llm_cfg, "max_position_embeddings", None),
        )
        self.connector = QFormerConnector(
            encoder_dim=enc_cfg.d_model, encoder_heads=enc_cfg.encoder_attention_heads,
            llm_dim=llm_cfg.hidden_size, num_taps=len(self.taps),
            prompt_size=config.prompt_size, num_layers=config.qformer_num_hidden_layers,
            intermediate_size=config.qformer_intermediate_size, dropout=config.qformer_dropout,
        )
        if config.use_lora:
            self._add_lora()
        self._freeze_backbones()
        self.stop_token_ids = self._stop_token_ids()
        self._speech_detector: Any = None
        self._transcriber: Any = None

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: DestaConfig | None = None, *, dtype: torch.dtype | None = None,
                    device: str | torch.device | None = None, seed: int = 0) -> DestaModel:
        """A model with a freshly initialised (untrained) connector on the configured backbones."""
        from desta.backbones import load_encoder, load_llm

        config = config or DestaConfig()
        device = torch.device(device) if device is not None else default_device()
        dtype = dtype or default_dtype(device)
        encoder, processor = load_encoder(config.encoder_model_id, dtype=dtype, device=device)
        llm, tokenizer = load_llm(config.llm_model_id, dtype=dtype, device=device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(config, encoder=encoder, processor=processor, llm=llm,
                        tokenizer=tokenizer)
        return model.to(device=device, dtype=dtype)

    @classmethod
    def from_pretrained(cls, path_or_id: str | Path, *, dtype: torch.dtype | None = None,
                        device: str | torch.device | None = None,
                        llm_model_id: str | None = None,
                        encoder_model_id: str | None = None) -> DestaModel:
        """Load a DeSTA checkpoint: a directory written by `save_pretrained` or a released
        DeSTA2.5-Audio checkpoint (directory or hub id). Backbones are rebuilt from the ids in
        its config; `llm_model_id` / `encoder_model_id` override them (e.g. local copies)."""
        from desta.model.checkpoint import load_checkpoint

        return load_checkpoint(cls, path_or_id, dtype=dtype, device=device,
                               llm_model_id=llm_model_id, encoder_model_id=encoder_model_id)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write config.json, the trainable tensors (model.safetensors, released names) and the
        tokenizer files. Backbones are not saved: they are rebuilt from their ids."""
        from desta.model.checkpoint import save_checkpoint

        return save_checkpoint(self, directory)

    def _add_lora(self) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        cfg = self.config
        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=list(cfg.lora_target_modules))
        # Injected in place (not wrapped in a PeftModel), so tensor names stay
        # `llm.model.layers.N.self_attn.q_proj.lora_A.default.weight` as in released checkpoints.
        inject_adapter_in_model(lora, self.llm)

    def _freeze_backbones(self) -> None:
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        for name, p in self.llm.named_parameters():
            p.requires_grad_("lora_" in name)
        self.encoder.eval()

    def _stop_token_ids(self) -> list[int]:
        ids: list[int] = []
        gen_eos = getattr(getattr(self.llm, "generation_config", None), "eos_token_id", None)
        ids += gen_eos if isinstance(gen_eos, list) else [gen_eos]
        ids.append(self.tokenizer.eos_token_id)
        vocab = self.tokenizer.get_vocab()
        ids += [vocab[t] for t in _CHAT_END_TOKENS if t in vocab]
        return sorted({i for i in ids if i is not None})

    def train(self, mode: bool = True) -> DestaModel:
        super().train(mode)
        self.encoder.eval()  # frozen: never in training mode (no dropout)
        return self

    @property
    def device(self) -> torch.device:
        return self.connector.layer_weights.device

    @property
    def dtype(self) -> torch.dtype:
        return self.connector.layer_weights.dtype

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # ---- encoder window -------------------------------------------------------------------
    def window_frames(self, num_samples: int) -> int:
        """Mel frames of this model's encoder window for a clip of `num_samples` samples."""
        return window_frames(num_samples, self.config.encoder_window,
                             self.config.clip_window_step)

    def feature_frames(self, waves: Sequence[np.ndarray]) -> list[int] | None:
        """Window length per clip in mel frames; None for the 30 s window (all full)."""
        return clip_frames(waves, self.config.encoder_window, self.config.clip_window_step)

    # ---- encoder taps -> connector ------------------------------------------------------
    @torch.no_grad()
    def encode(self, input_features: torch.Tensor, frames: Sequence[int] | None = None
               ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Run the frozen Whisper encoder once. Returns the taps (raw outputs of the tapped
        layers, before the final LayerNorm; K x (N, T, d)) and the final encoder output
        (N, T, d), which the Whisper decoder reuses for ASR.

        `frames[i]`: clip i's window in mel frames (clip window). Clips of equal window run
        together at that length (positional embeddings sliced); outputs are padded with zeros
        to the longest, T = max(frames) / 2. Without `frames` every clip fills the features."""
        feats = input_features.to(device=self.device, dtype=self.encoder.dtype)
        n, full = feats.shape[0], feats.shape[-1]
        if frames is None or all(f == full for f in frames):
            return self._encode_window(feats)
        t = max(frames) // 2
        taps = [feats.new_zeros(n, t, self.encoder.config.d_model) for _ in self.taps]
        final = feats.new_zeros(n, t, self.encoder.config.d_model)
        for f, idx in length_groups(frames):
            group_taps, group_final = self._encode_window(feats[idx, :, :f])
            for out, tap in zip(taps, group_taps):
                out[idx, : f // 2] = tap
            final[idx, : f // 2] = group_final
        return taps, final

    def _encode_window(self, feats: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Whisper's encoder forward on (N, mels, F) features of one window length: the same
        operations as `WhisperEncoder.forward`, with the positional embeddings cut to F/2 (for
        F = 3000 the two are identical) and the tapped layers' raw outputs kept."""
        encoder = self.encoder.get_encoder()
        x = F.gelu(encoder.conv1(feats))
        x = F.gelu(encoder.conv2(x)).permute(0, 2, 1)  # (N, F/2, d)
        if x.shape[1] > encoder.embed_positions.weight.shape[0]:
            raise ValueError(f"features of {feats.shape[-1]} frames exceed the encoder's "
                             f"{encoder.embed_positions.weight.shape[0]} positions")
        x = x + encoder.embed_positions.weight[: x.shape[1]]
        captured: dict[int, torch.Tensor] = {}
        for index, layer in enumerate(encoder.layers):
            out = layer(x, None)
            x = out[0] if isinstance(out, tuple) else out
            if index in self.taps:
                captured[index] = x
        return [captured[i] for i in self.taps], encoder.layer_norm(x)

    def audio_vectors(self, taps: list[torch.Tensor], lengths: Sequence[int] | None = None
                      ) -> torch.Tensor:
        """Taps -> (N, P, H) vectors in the LLM embedding space; `lengths[i]` = clip i's
        encoder positions when the taps are padded (clip window)."""
        return self.connector([t.to(self.dtype) for t in taps],
                              None if lengths is None else list(lengths))

    def embed(self, prepared: PreparedBatch) -> torch.Tensor:
        """LLM input embeddings (B, L, H) with each clip's audio vectors written over its
        placeholder positions (transcript positions already hold the transcript's tokens)."""
        batch = prepared.batch
        embeds = self.llm.get_input_embeddings()(batch.input_ids.to(self.device))
        if not batch.spans:
            return embeds
        taps = prepared.taps
        if taps is None:
            taps, _ = self.encode(prepared.input_features, prepared.feature_frames)
        audio = self.audio_vectors(taps, prepared.tap_lengths).to(embeds.dtype)  # (N, P, H)
        p = self.config.prompt_size
        rows = torch.tensor([s.row for s in batch.spans], device=embeds.device)
        starts = torch.tensor([s.start for s in batch.spans], device=embeds.device)
        cols = starts[:, None] + torch.arange(p, device=embeds.device)  # (N, P)
        # Out of place, so gradients flow into the connector.
        return embeds.index_put((rows[:, None].expand(-1, p), cols), audio)

    # ---- training -----------------------------------------------------------------------
    def forward(self, prepared: PreparedBatch) -> Any:
        """Teacher-forced pass; `.loss` is the mean cross-entropy over target tokens only."""
        batch = prepared.batch
        return self.llm(
            inputs_embeds=self.embed(prepared),
            attention_mask=batch.attention_mask.to(self.device),
            position_ids=batch.position_ids.to(self.device),
            labels=None if batch.labels is None else batch.labels.to(self.device),
        )

    # ---- inputs: audio, transcripts, token ids ------------------------------------------
    def prepare(self, messages: Any, *, for_training: bool = False,
                max_transcript_tokens: int | None = None) -> PreparedBatch:
        """Parse messages, load the clips, get transcripts (given text; else VAD + Whisper
        ASR; " " when there is no speech), and assemble the LLM inputs."""
        convs, _ = parse_conversations(messages, audio_locator=self.config.audio_locator,
                                       for_training=for_training)
        clips = [c for conv in convs for c in conv.clips]
        features, taps, texts, frames = None, None, [], None
        if clips:
            waves = [self._load_clip(c) for c in clips]
            frames = self.feature_frames(waves)
            features = self.features(waves)
            texts, taps = self.fill_transcripts([c.text for c in clips], waves, features,
                                                frames)
        return self.assemble(convs, texts, features, taps, max_transcript_tokens, frames)

    def fill_transcripts(self, texts: Sequence[str | None], waves: Any,
                         features: torch.Tensor, frames: Sequence[int] | None = None
                         ) -> tuple[list[str], list[torch.Tensor] | None]:
        """Transcripts for clips whose text is None: Silero VAD, then Whisper ASR from the
        final states of the same encoder pass that gives the taps; " " when there is no speech
        (the released convention). `waves[i]` is needed only for those clips; `frames` as in
        `encode` (with the clip window, ASR runs Whisper on its own 30 s window). Returns the
        texts and, when the encoder ran, the taps of all clips."""
        texts = list(texts)
        need = [i for i, t in enumerate(texts) if t is None]
        if not need:
            return texts, None
        taps, final = self.encode(features, frames)
        speech = self.speech_detector.has_speech_batch([waves[i] for i in need])
        asr = [i for i, s in zip(need, speech) if s]
        for i, s in zip(need, speech):
            if not s:
                texts[i] = " "
        if asr and frames is None:
            for i, text in zip(asr, self.transcriber.transcribe_encoded(final[asr])):
                texts[i] = text
        elif asr:
            # Whisper decodes from its own 30 s window: from clip-length encoder states tiny.en
            # loops and mishears short words (docs/model.md), so ASR gets a full pass.
            for i, text in zip(asr, self.transcriber.transcribe([waves[i] for i in asr])):
                texts[i] = text
        return texts, taps

    def assemble(self, convs: Sequence[Conversation], texts: Sequence[str],
                 features: torch.Tensor | None, taps: list[torch.Tensor] | None = None,
                 max_transcript_tokens: int | None = None,
                 frames: Sequence[int] | None = None) -> PreparedBatch:
        """Token ids, labels and clip positions for parsed conversations whose clips (in order)
        have transcripts `texts` and Whisper features `features`."""
        grouped: list[list[str]] = []
        offset = 0
        for conv in convs:
            grouped.append(list(texts[offset: offset + len(conv.clips)]))
            offset += len(conv.clips)
        ids = [[self.builder.transcript_ids(t, max_transcript_tokens) for t in g]
               for g in grouped]
        batch = self.builder.build(convs, ids)
        return PreparedBatch(batch=batch, input_features=features, transcripts=grouped, taps=taps,
                             feature_frames=None if frames is None else list(frames))

    def features(self, waves: Sequence[np.ndarray]) -> torch.Tensor:
        """Whisper log-mel features (N, mels, F), computed on the model's device: F = 3000
        (30 s window), or for the clip window each clip at its own window (`feature_frames`),
        zero-padded to the longest."""
        return log_mel(self.processor.feature_extractor, waves, self.feature_frames(waves),
                       self.device)

    def _load_clip(self, clip: AudioRef) -> np.ndarray:
        from desta.audio.io import load_audio

        wave = load_audio(clip.audio, sample_rate=clip.sampling_rate, name=clip.name)
        limit = int(WHISPER_WINDOW_SECONDS * SAMPLE_RATE)
        if len(wave) > limit:
            # Documented treatment: the encoder (and ASR) see the first 30 s, as released.
            logger.warning("%s: %.1f s long; only the first %.0f s are used", clip.name,
                           len(wave) / SAMPLE_RATE, WHISPER_WINDOW_SECONDS)
            wave = wave[:limit]
        return wave  # load_audio already refused missing, empty and corrupt clips

    @property
    def speech_detector(self) -> Any:
        if self._speech_detector is None:
            from desta.audio.vad import SpeechDetector

            self._speech_detector = SpeechDetector()
        return self._speech_detector

    @property
    def transcriber(self) -> Any:
        if self._transcriber is None:
            from desta.audio.asr import WhisperTranscriber

            self._transcriber = WhisperTranscriber(self.encoder, self.processor)
        return self._transcriber

    # ---- generation ---------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, messages: Any, *, max_new_tokens: int = 512, do_sample: bool = False,
                 temperature: float = 1.0, top_p: float = 1.0, top_k: int | None = None,
                 repetition_penalty: float | None = None,
                 streamer: Any = None) -> GenerationResult:
        """Answer one conversation or a batch of them (released message format). Greedy by
        default; sampling with `do_sample=True` (seeded by torch's global RNG). Text-only
        batches run exactly the backbone.

        A batch is prepared (audio, VAD + ASR, encoder, connector) in chunks of
        `PREPARE_CHUNK` conversations, which keeps the encoder's activations in cache, then
        answered by `desta.model.decoding.decode` (continuous batching, in-place KV cache,
        shared prompt prefix; the same greedy tokens as `generate_prepared`).
        `streamer` (a transformers `BaseStreamer`) or `repetition_penalty` take the
        `generate_prepared` path instead: the streamer first gets the prompt ids (an empty
        (B, 0) tensor when the prompt is embeddings), then the batch's new ids step by step."""
        from desta.model.decoding import Sampling, decode, why_not_fast

        if streamer is not None or repetition_penalty or why_not_fast(self.llm):
            prepared = self.prepare(messages)
            out = self.generate_prepared(
                prepared, max_new_tokens=max_new_tokens, do_sample=do_sample,
                temperature=temperature, top_p=top_p, top_k=top_k,
                repetition_penalty=repetition_penalty, streamer=streamer)
            token_ids = [self._until_stop(row.tolist()) for row in out]
            texts = self.tokenizer.batch_decode(token_ids, skip_special_tokens=True)
            return GenerationResult(texts=texts, transcripts=prepared.transcripts,
                                    token_ids=token_ids)

        parse_conversations(messages, audio_locator=self.config.audio_locator)  # fail early
        convs = [messages] if isinstance(messages[0], dict) else list(messages)
        was_training = self.training
        self.eval()
        try:
            ids, embeds, shareable, transcripts = [], [], [], []
            for start in range(0, len(convs), PREPARE_CHUNK):
                prepared = self.prepare(convs[start:start + PREPARE_CHUNK])
                transcripts += prepared.transcripts
                rows = self._prompt_rows(prepared)
                ids += rows[0]
                embeds += rows[1]
                shareable += rows[2]
            seeds = (torch.randint(0, 2**31 - 1, (len(ids),)).tolist() if do_sample
                     else None)
            new = decode(self.llm, ids, prompt_embeds=embeds, shareable=shareable,
                         max_new_tokens=max_new_tokens, stop_ids=self.stop_token_ids,
                         sampling=Sampling(do_sample=do_sample, temperature=temperature,
                                           top_p=top_p, top_k=top_k),
                         seeds=seeds, max_active=MAX_ACTIVE_ROWS)
        finally:
            self.train(was_training)
        token_ids = [self._until_stop(row) for row in new]
        texts = self.tokenizer.batch_decode(token_ids, skip_special_tokens=True)
        return GenerationResult(texts=texts, transcripts=transcripts, token_ids=token_ids)

    def _prompt_rows(self, prepared: PreparedBatch
                     ) -> tuple[list[list[int]], list[torch.Tensor], list[int]]:
        """Per conversation: its prompt ids and input embeddings (B rows, left padding
        removed) and how many leading positions precede its first clip (shareable: plain
        token embeddings)."""
        batch = prepared.batch
        embeds = self.embed(prepared)  # (B, L, H)
        mask = batch.attention_mask.bool()
        first_clip = {}
        for span in batch.spans:
            first_clip.setdefault(span.row, span.start)
        ids, rows, shareable = [], [], []
        for i in range(embeds.shape[0]):
            pad = int((~mask[i]).sum())
            ids.append(batch.input_ids[i, pad:].tolist())
            rows.append(embeds[i, pad:])
            shareable.append(first_clip.get(i, embeds.shape[1]) - pad)
        return ids, rows, shareable

    @torch.no_grad()
    def generate_prepared(self, prepared: PreparedBatch, *, max_new_tokens: int = 512,
                          do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
                          top_k: int | None = None, repetition_penalty: float | None = None,
                          streamer: Any = None,
                          stop_rows: Callable[[torch.Tensor], torch.Tensor] | None = None,
                          ) -> torch.Tensor:
        """Batched generation from prepared inputs; returns the new token ids (B, T), padded
        after each row's stop token. `stop_rows(new_ids (B, t)) -> (B,) bool` can end rows
        early (per-request token limits, cancelled requests)."""
        from transformers import GenerationConfig, StoppingCriteriaList

        batch = prepared.batch
        gen = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=do_sample,
            eos_token_id=self.stop_token_ids, pad_token_id=self.builder.pad_id,
            **({"temperature": temperature, "top_p": top_p, "top_k": top_k}
               if do_sample else {}),
            **({"repetition_penalty": repetition_penalty} if repetition_penalty else {}),
        )
        kwargs: dict[str, Any] = {"attention_mask": batch.attention_mask.to(self.device),
                                  "generation_config": gen, "streamer": streamer}
        was_training = self.training
        self.eval()
        try:
            if batch.spans:
                kwargs["inputs_embeds"] = self.embed(prepared)
                offset = 0  # with embeddings only, generate returns just the new tokens
            else:
                kwargs["input_ids"] = batch.input_ids.to(self.device)
                offset = batch.input_ids.shape[1]
            if stop_rows is not None:
                kwargs["stopping_criteria"] = StoppingCriteriaList([_RowStop(stop_rows, offset)])
            return self.llm.generate(**kwargs)[:, offset:]
        finally:
            self.train(was_training)

    def _until_stop(self, ids: list[int]) -> list[int]:
        for n, token in enumerate(ids):
            if token in self.stop_token_ids:
                return ids[:n]
        return ids


class _RowStop:
    """Adapts `stop_rows(new_ids)` to transformers' StoppingCriteria call (which sees the
    prompt ids too when the prompt is ids)."""

    def __init__(self, stop_rows: Callable[[torch.Tensor], torch.Tensor], offset: int) -> None:
        self.stop_rows = stop_rows
        self.offset = offset

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        return self.stop_rows(input_ids[:, self.offset:])

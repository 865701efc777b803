"""Input assembly: chat messages with `<|AUDIO|>` locators -> LLM token ids, attention mask,
labels, and the exact positions where audio vectors and transcript embeddings go.

Per clip the LLM sees `<start_audio>` [P audio vectors][transcript tokens] `<end_audio>`
(REFERENCE.md section 3). The ids are built directly: the chat-templated text is tokenized once
(the locator is an added special token, so it is its own token) and each locator id is expanded
in the id list; no detokenize / re-tokenize round trip. The P audio positions hold the
placeholder token (their embeddings are overwritten by the connector output); the transcript
positions hold the transcript's own LLM token ids, which gives exactly the released "placeholder
then overwrite with transcript embeddings" input while keeping `input_ids` meaningful.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from desta.errors import ConfigError, MessageError

ROLES = ("system", "user", "assistant")
START_AUDIO, END_AUDIO = "<start_audio>", "<end_audio>"
IGNORE_INDEX = -100

# Known-unused tokens per backbone family, in order of preference; the released Llama-3 choice
# first. Other tokenizers fall back to choose_placeholder_token's rule.
_PREFERRED_PLACEHOLDERS = ("<|reserved_special_token_87|>", "<|video_pad|>", "<empty_output>")


@dataclass
class AudioRef:
    """One clip attached to a message: `audio` is a path, encoded bytes or a waveform."""

    audio: Any
    text: str | None
    sampling_rate: int | None
    name: str  # where it came from, for error messages


@dataclass
class Conversation:
    messages: list[dict[str, str]]  # role + content only, as the chat template wants them
    clips: list[AudioRef]
    target: str | None = None  # training target (final assistant message)


@dataclass(frozen=True)
class AudioSpan:
    """Where one clip sits in the batch: audio vectors at [start, start+num_audio), then its
    transcript tokens at [start+num_audio, start+num_audio+num_transcript)."""

    row: int
    start: int
    num_audio: int
    num_transcript: int

    @property
    def audio_slice(self) -> slice:
        return slice(self.start, self.start + self.num_audio)

    @property
    def transcript_slice(self) -> slice:
        end = self.start + self.num_audio
        return slice(end, end + self.num_transcript)


@dataclass
class AssembledBatch:
    input_ids: torch.Tensor  # (B, L), left padded
    attention_mask: torch.Tensor  # (B, L)
    spans: list[AudioSpan]  # one per clip, in clip order
    labels: torch.Tensor | None = None  # (B, L), IGNORE_INDEX outside targets
    position_ids: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        # Positions count real tokens only, so a row's numbers do not depend on its padding.
        self.position_ids = (self.attention_mask.cumsum(-1) - 1).clamp(min=0)


def parse_conversations(
    messages: Any, *, audio_locator: str, for_training: bool = False
) -> tuple[list[Conversation], bool]:
    """Validate the released message format; return conversations and whether a single
    conversation (not a list of them) was given."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise MessageError("messages must be a non-empty list of message dicts "
                           "(one conversation) or a list of such lists (a batch)")
    single = isinstance(messages[0], dict)
    batch = [messages] if single else list(messages)
    return [_parse_one(conv, i, audio_locator, for_training) for i, conv in enumerate(batch)], single


def _parse_one(conv: Any, index: int, locator: str, for_training: bool) -> Conversation:
    where = f"conversation {index}"
    if not isinstance(conv, (list, tuple)) or not conv:
        raise MessageError(f"{where}: expected a non-empty list of messages")
    messages, clips = [], []
    for j, msg in enumerate(conv):
        at = f"{where}, message {j}"
        if not isinstance(msg, dict):
            raise MessageError(f"{at}: expected a dict with 'role' and 'content'")
        role, content = msg.get("role"), msg.get("content")
        if not isinstance(role, str) or role not in ROLES:
            raise MessageError(f"{at}: unknown role {role!r}; expected one of {list(ROLES)}")
        if not isinstance(content, str):
            raise MessageError(f"{at}: 'content' must be a string, got {type(content).__name__}")
        _check_unicode(content, f"{at}: 'content'")
        audios = msg.get("audios") or []
        if not isinstance(audios, (list, tuple)):
            raise MessageError(f"{at}: 'audios' must be a list of {{'audio', 'text'}} dicts")
        if content.count(locator) != len(audios):
            raise MessageError(
                f"{at}: content has {content.count(locator)} {locator} locator(s) but "
                f"'audios' has {len(audios)} entr{'y' if len(audios) == 1 else 'ies'}; "
                "they must match one to one"
            )
        for k, ref in enumerate(audios):
            clips.append(_parse_audio(ref, f"{at}, audio {k}"))
        messages.append({"role": role, "content": content})
    target = None
    if for_training:
        if messages[-1]["role"] != "assistant":
            raise MessageError(f"{where}: a training conversation must end with the assistant "
                               "response (the target)")
        if locator in messages[-1]["content"]:
            raise MessageError(f"{where}: the target response may not contain audio")
        target = messages.pop()["content"]
    return Conversation(messages=messages, clips=clips, target=target)


def _parse_audio(ref: Any, where: str) -> AudioRef:
    if not isinstance(ref, dict) or "audio" not in ref:
        raise MessageError(f"{where}: expected a dict {{'audio': path_or_data, 'text': str|None}}")
    text = ref.get("text")
    if text is not None:
        if not isinstance(text, str):
            raise MessageError(f"{where}: 'text' must be a string or null")
        _check_unicode(text, f"{where}: 'text'")
    audio = ref["audio"]
    name = f"{where} ({audio})" if isinstance(audio, str) else where
    return AudioRef(audio=audio, text=text, sampling_rate=ref.get("sampling_rate"), name=name)


def _check_unicode(text: str, where: str) -> None:
    # A lone surrogate ("\ud800" in JSON) is a Python str but no text: tokenizers reject it.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise MessageError(f"{where} is not valid Unicode: a lone surrogate at character "
                           f"{err.start}") from None


def wrap_locators(text: str, locator: str) -> str:
    """`<|AUDIO|>` -> `<start_audio><|AUDIO|><end_audio>`, leaving already wrapped ones alone
    (released training rows carry the tags; released inference wraps bare locators)."""
    bare = rf"(?<!{re.escape(START_AUDIO)}){re.escape(locator)}(?!{re.escape(END_AUDIO)})"
    return re.sub(bare, f"{START_AUDIO}{locator}{END_AUDIO}", text)


def choose_placeholder_token(tokenizer: Any) -> str:
    """An existing single token the backbone never produces in chat: a known one for the
    family, else the last added special token that is not bos/eos/pad/unk and does not appear
    in the chat template."""
    vocab = tokenizer.get_vocab()
    for token in _PREFERRED_PLACEHOLDERS:
        if token in vocab:
            return token
    reserved = {tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token}
    template = str(getattr(tokenizer, "chat_template", "") or "")
    for token in reversed(list(tokenizer.get_added_vocab())):
        if token not in reserved and token not in template and not token.startswith("<|AUDIO"):
            return token
    raise ConfigError("could not find an unused special token in the LLM tokenizer to stand "
                      "for audio positions; set `placeholder_token` in the config")


class PromptBuilder:
    """Turns parsed conversations (+ per-clip transcript ids) into an AssembledBatch."""

    def __init__(self, tokenizer: Any, *, audio_locator: str, placeholder_token: str,
                 prompt_size: int, max_length: int | None = None) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError("the LLM tokenizer has no chat template; DeSTA needs an "
                              "instruction-tuned backbone with one")
        self.tokenizer = tokenizer
        self.locator = audio_locator
        self.locator_id = _single_token_id(tokenizer, audio_locator, "audio_locator")
        self.placeholder_id = _single_token_id(tokenizer, placeholder_token, "placeholder_token")
        self.prompt_size = prompt_size
        self.max_length = max_length
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
            else tokenizer.eos_token_id

    def transcript_ids(self, text: str, max_tokens: int | None = None) -> list[int]:
        """LLM token ids of a transcript, cut to `max_tokens` (training uses 100). A
        transcript is plain text: a special-token string in it (`<|AUDIO|>`, `<|im_end|>`) is
        tokenised as its characters, never as that token (the locator's id is not even in
        the LLM's embedding table)."""
        ids = self.tokenizer(text, add_special_tokens=False,
                             split_special_tokens=True)["input_ids"]
        return ids[:max_tokens] if max_tokens else ids

    def context_ids(self, conv: Conversation) -> list[int]:
        """Chat-templated context with the generation prompt; locators still single ids."""
        text = self.tokenizer.apply_chat_template(
            conv.messages, tokenize=False, add_generation_prompt=True
        )
        return self.tokenizer(wrap_locators(text, self.locator),
                              add_special_tokens=False)["input_ids"]

    def build(self, conversations: Sequence[Conversation],
              transcripts: Sequence[Sequence[list[int]]]) -> AssembledBatch:
        """`transcripts[i][k]`: LLM token ids of the k-th clip's transcript in conversation i.
        Conversations with a `target` get labels (target + EOS; everything else ignored)."""
        rows, label_rows, row_spans = [], [], []
        with_labels = any(c.target is not None for c in conversations)
        for i, (conv, conv_transcripts) in enumerate(zip(conversations, transcripts, strict=True)):
            ids, spans = self._expand(self.context_ids(conv), conv_transcripts, i)
            labels = [IGNORE_INDEX] * len(ids)
            if conv.target is not None:
                target = self.tokenizer(conv.target, add_special_tokens=False)["input_ids"]
                target.append(self.tokenizer.eos_token_id)
                ids, labels = ids + target, labels + target
            if self.max_length and len(ids) > self.max_length:
                raise MessageError(
                    f"conversation {i}: {len(ids)} tokens (incl. {len(spans)} clip(s) x "
                    f"{self.prompt_size} audio positions + transcripts) exceed the limit of "
                    f"{self.max_length} tokens; shorten the prompt or raise the limit"
                )
            rows.append(ids)
            label_rows.append(labels)
            row_spans.append(spans)

        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        spans: list[AudioSpan] = []
        for i, (ids, lab) in enumerate(zip(rows, label_rows)):
            pad = width - len(ids)  # left padding
            input_ids[i, pad:] = torch.tensor(ids)
            mask[i, pad:] = 1
            labels[i, pad:] = torch.tensor(lab)
            spans += [AudioSpan(i, s.start + pad, s.num_audio, s.num_transcript)
                      for s in row_spans[i]]
        return AssembledBatch(input_ids, mask, spans, labels if with_labels else None)

    def _expand(self, ids: list[int], transcripts: Sequence[list[int]],
                row: int) -> tuple[list[int], list[AudioSpan]]:
        n_locators = ids.count(self.locator_id)
        if n_locators != len(transcripts):
            raise MessageError(
                f"conversation {row}: the chat template kept {n_locators} audio locator(s) "
                f"but {len(transcripts)} clip(s) were given (a message may have been dropped "
                "by the template)"
            )
        out: list[int] = []
        spans: list[AudioSpan] = []
        clip = 0
        for token in ids:
            if token != self.locator_id:
                out.append(token)
                continue
            text_ids = transcripts[clip]
            spans.append(AudioSpan(row, len(out), self.prompt_size, len(text_ids)))
            out += [self.placeholder_id] * self.prompt_size + list(text_ids)
            clip += 1
        return out, spans


def prepare_tokenizer(tokenizer: Any, audio_locator: str) -> None:
    """Add the audio locator as a special token and pad on the left with EOS (as released)."""
    from transformers import AddedToken

    if audio_locator not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(audio_locator, special=True, normalized=False)],
                             special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"


def _single_token_id(tokenizer: Any, token: str, field_name: str) -> int:
    ids = tokenizer(token, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ConfigError(f"{field_name} {token!r} must be a single token of the LLM tokenizer; "
                          f"it tokenizes to {len(ids)} tokens")
    return ids[0]

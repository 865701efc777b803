"""Batched decoding for a Hugging Face causal LM, built for throughput where `generate` wastes it.

`decode` answers many prompts with one model:

* **continuous batching**: up to `max_active` rows decode together; when a row ends, the next
  waiting prompt takes its slot at once, so the batch stays full instead of running down to the
  slowest row (`generate` keeps computing rows that have finished);
* **a KV cache written in place**: one buffer per layer with room for the rows' growth, so a
  step costs no `torch.cat` over the whole cache (HF's `DynamicCache` copies it every step);
* **a shared prompt prefix computed once**: the chat template's opening (system prompt, role
  header) is the same in every row; its keys and values are computed once and copied;
* **prompts sorted by length** before they are admitted, so a prefill group pads little.

Rows are independent: each row's tokens depend only on its own prompt (and its own seed when
sampling), not on which rows share its batch. Greedy outputs match `generate` on the same
prompts up to float rounding of differently shaped matrix products (measured and documented in
docs/benchmarks.md); sampling draws from one `torch.Generator` per row.

Only models whose cache layers are all plain full-attention layers take this path
(`supports_fast_decoding`); others (sliding-window, linear-attention) should use `generate`.
Shapes: n active rows, h key/value heads, C buffer columns, d head size, V vocabulary.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

# Columns added to the right of the buffer at a time: each repack copies the live cache once.
_HEADROOM = 256
# A prefix shorter than this is not worth a separate forward pass.
_MIN_SHARED_PREFIX = 4


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen from the logits. Greedy (argmax) unless `do_sample`."""

    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None

    def choose(self, logits: torch.Tensor, generators: Sequence[torch.Generator | None]
               ) -> torch.Tensor:
        """Next token per row from float logits (n, V)."""
        if not self.do_sample:
            return logits.argmax(dim=-1)
        scores = logits / self.temperature
        if self.top_k is not None and self.top_k < scores.shape[-1]:
            kth = torch.topk(scores, self.top_k, dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p < 1.0:
            # Keep the most likely tokens until their mass reaches top_p (at least one).
            sorted_scores, order = torch.sort(scores, dim=-1, descending=True)
            probs = sorted_scores.softmax(dim=-1)
            drop_sorted = (probs.cumsum(dim=-1) - probs) >= self.top_p
            drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
            scores = scores.masked_fill(drop, float("-inf"))
        probs = scores.softmax(dim=-1)
        return torch.stack([torch.multinomial(p, 1, generator=g)[0]
                            for p, g in zip(probs, generators, strict=True)])


# Generation-config fields that add logits processors `decode` does not apply.
_PROCESSOR_FIELDS = ("repetition_penalty", "encoder_repetition_penalty", "no_repeat_ngram_size",
                     "bad_words_ids", "suppress_tokens", "begin_suppress_tokens",
                     "forced_bos_token_id", "forced_eos_token_id", "sequence_bias",
                     "min_length", "min_new_tokens", "exponential_decay_length_penalty")


def supports_fast_decoding(model: Any) -> bool:
    """Whether `decode` can run `model`: a transformers release with per-layer caches, and
    only plain full-attention cache layers (no sliding window, no linear attention)."""
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:
        return False
    try:
        cache = DynamicCache(config=model.config)
    except TypeError:  # releases before per-layer caches
        return False
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def why_not_fast(model: Any) -> str | None:
    """Why `decode` cannot stand in for `model.generate` on this model, or None if it can."""
    config = getattr(model, "generation_config", None)
    extra = [f for f in _PROCESSOR_FIELDS if getattr(config, f, None) not in (None, 0, 1.0)]
    if extra:
        return "its generation config sets " + ", ".join(extra)
    if not supports_fast_decoding(model):
        return "its cache layers are not all plain full attention"
    return None


@dataclass
class _Window:
    """The live part of the buffers: rows [0, n), columns [start, end)."""

    n: int = 0
    start: int = 0
    end: int = 0


@functools.cache
def _slot_layer_class() -> type:
    from transformers.cache_utils import DynamicLayer

    class SlotLayer(DynamicLayer):
        """One layer's keys/values in a preallocated (rows, h, C, d) buffer. The model's
        `update` writes the new columns at the window's end and gets a view of the window;
        the window itself is moved by `decode`, once for all layers."""

        def __init__(self, window: _Window) -> None:
            super().__init__()
            self.window = window
            self.k_buf: torch.Tensor | None = None
            self.v_buf: torch.Tensor | None = None

        def allocate(self, rows: int, cols: int, like: tuple[torch.Tensor, torch.Tensor]
                     ) -> None:
            k, v = like  # (1, h, 1, d) keys and values of one token: shapes and dtype
            self.k_buf = k.new_zeros(rows, k.shape[1], cols, k.shape[3])
            self.v_buf = v.new_zeros(rows, v.shape[1], cols, v.shape[3])
            self.device, self.dtype = k.device, k.dtype
            self.is_initialized = True

        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor
                                ) -> None:
            raise AssertionError("SlotLayer buffers are allocated by decode()")

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
                   **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            w = self.window
            q = key_states.shape[-2]
            assert self.k_buf is not None and self.v_buf is not None
            self.k_buf[:w.n, :, w.end:w.end + q] = key_states
            self.v_buf[:w.n, :, w.end:w.end + q] = value_states
            self.keys = self.k_buf[:w.n, :, w.start:w.end + q]
            self.values = self.v_buf[:w.n, :, w.start:w.end + q]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.window.end - self.window.start

        def get_mask_sizes(self, query_length: int, *args: Any) -> tuple[int, int]:
            return self.get_seq_length() + query_length, 0

    return SlotLayer


class _SlotCache:
    """A `DynamicCache` whose layers are `SlotLayer`s sharing one window, plus the padding
    mask (rows, C) of the same layout."""

    def __init__(self, num_layers: int, rows: int, device: torch.device) -> None:
        from transformers.cache_utils import DynamicCache

        self.window = _Window()
        layer_class = _slot_layer_class()
        self.hf = DynamicCache()
        self.hf.layers = [layer_class(self.window) for _ in range(num_layers)]
        self.rows = rows
        self.mask: torch.Tensor | None = None  # (rows, C) bool: column holds a real token
        self.device = device

    @property
    def layers(self) -> list[Any]:
        return self.hf.layers

    @property
    def allocated(self) -> bool:
        return self.mask is not None

    def allocate(self, cols: int, like: tuple[torch.Tensor, torch.Tensor]) -> None:
        for layer in self.layers:
            layer.allocate(self.rows, cols, like)
        self.mask = torch.zeros(self.rows, cols, dtype=torch.bool, device=self.device)

    @property
    def cols(self) -> int:
        assert self.mask is not None
        return self.mask.shape[1]

    def attention_mask(self, query_length: int) -> torch.Tensor:
        """(n, end - start + q) mask for a forward of q new columns (all real)."""
        w = self.window
        assert self.mask is not None
        self.mask[:w.n, w.end:w.end + query_length] = True
        return self.mask[:w.n, w.start:w.end + query_length]

    def repack(self, left: int, extra: int) -> None:
        """Move the window to start at column `left`, with `extra` free columns after it."""
        w = self.window
        assert self.mask is not None
        width = w.end - w.start
        cols = left + width + extra
        for layer in self.layers:
            for name in ("k_buf", "v_buf"):
                old = getattr(layer, name)
                new = old.new_zeros(old.shape[0], old.shape[1], cols, old.shape[3])
                new[:, :, left:left + width] = old[:, :, w.start:w.end]
                setattr(layer, name, new)
        mask = self.mask.new_zeros(self.rows, cols)
        mask[:, left:left + width] = self.mask[:, w.start:w.end]
        self.mask = mask
        w.start, w.end = left, left + width

    def move_row(self, src: int, dst: int) -> None:
        w = self.window
        assert self.mask is not None
        for layer in self.layers:
            layer.k_buf[dst, :, w.start:w.end] = layer.k_buf[src, :, w.start:w.end]
            layer.v_buf[dst, :, w.start:w.end] = layer.v_buf[src, :, w.start:w.end]
        self.mask[dst] = self.mask[src]

    def trim(self) -> None:
        """Drop leading columns that no live row uses (they only cost attention)."""
        w = self.window
        assert self.mask is not None
        if w.n == 0:
            w.start = w.end
            return
        used = self.mask[:w.n, w.start:w.end].any(dim=0)
        w.start += int(used.to(torch.int8).argmax())


@dataclass
class _Row:
    index: int  # position in the caller's list
    prompt: list[int]
    embeds: torch.Tensor | None  # (L, H) when the prompt is given as embeddings
    generator: torch.Generator | None
    tokens: list[int] = field(default_factory=list)

    @property
    def position(self) -> int:  # position id of the next token fed to the model
        return len(self.prompt) + len(self.tokens) - 1


def _common_prefix(prompts: Sequence[Sequence[int]], limit: int) -> int:
    if len(prompts) < 2:
        return 0
    first = prompts[0]
    n = min(limit, *(len(p) for p in prompts))
    for p in prompts[1:]:
        i = 0
        while i < n and p[i] == first[i]:
            i += 1
        n = i
        if n == 0:
            break
    return n


@torch.inference_mode()
def decode(model: Any, prompts: Sequence[Sequence[int]], *, max_new_tokens: int,
           stop_ids: Collection[int], sampling: Sampling | None = None,
           seeds: Sequence[int] | None = None, max_active: int = 32,
           prompt_embeds: Sequence[torch.Tensor] | None = None,
           shareable: Sequence[int] | None = None, share_prefix: bool = True,
           on_step: Callable[[dict[int, int]], bool] | None = None) -> list[list[int]]:
    """Generate up to `max_new_tokens` tokens after each prompt; returns the new token ids per
    prompt, in order, ending with the stop token when one was produced.

    `prompt_embeds[i]` (L_i, H), when given, is fed instead of the embeddings of `prompts[i]`
    (whose length it must have); `shareable[i]` then caps how many leading positions of row i
    are plain token embeddings and may be shared with other rows. `on_step(new)` gets each
    step's {prompt index: token} and may return True to stop everything (cancellation); rows
    cut short that way return the tokens they had.
    """
    sampling = sampling or Sampling()
    if max_active < 1 or max_new_tokens < 1:
        raise ValueError("max_active and max_new_tokens must be >= 1")
    if not prompts:
        return []
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    device = next(model.parameters()).device
    stops = set(stop_ids)
    rows = []
    for i, p in enumerate(prompts):
        gen = None
        if sampling.do_sample:
            gen = torch.Generator(device=device)
            gen.manual_seed(int(seeds[i]) if seeds is not None else 0)
        rows.append(_Row(i, list(p), None if prompt_embeds is None else prompt_embeds[i], gen))
    ctx = _Context(model, device)

    # The shared prefix: every row keeps at least one token of its own, whose logits start it.
    limit = min(len(p) for p in prompts) - 1
    if shareable is not None:
        limit = min(limit, *shareable)
    prefix = _common_prefix(prompts, limit) if share_prefix else 0
    prefix_cache = None
    if prefix >= _MIN_SHARED_PREFIX:
        prefix_cache = ctx.cache(1, prefix)
        ctx.forward(prefix_cache, ctx.inputs(rows[:1], 0, prefix),
                    positions=torch.arange(prefix, device=device)[None], valid=None)
    else:
        prefix = 0

    results: dict[int, list[int]] = {}
    # Longest prompts first: the first group sets the columns every later row aligns to.
    pending = sorted(rows, key=lambda r: -len(r.prompt))
    width = min(max_active, len(rows))
    main = ctx.cache(width, len(pending[0].prompt) + min(max_new_tokens, _HEADROOM) + 1)
    main.window.n = 0
    main.window.start = main.window.end = len(pending[0].prompt)
    active: list[_Row] = []
    last = torch.zeros(width, dtype=torch.long, device=device)

    def grow(row: _Row, token: int) -> bool:
        row.tokens.append(token)
        return token in stops or len(row.tokens) >= max_new_tokens

    while pending or active:
        if pending and len(active) < width:  # fill the free slots with waiting prompts
            group = pending[: width - len(active)]
            del pending[: len(group)]
            logits = _prefill(ctx, main, group, prefix, prefix_cache)
            rows_now = group
            slots = range(len(active), len(active) + len(group))
            active.extend(group)
        else:  # one step for every active row
            w = main.window
            if w.end + 1 > main.cols:
                main.repack(max((len(r.prompt) for r in pending), default=0), _HEADROOM)
            positions = torch.tensor([[r.position] for r in active], device=device)
            out = model(input_ids=last[:w.n, None], attention_mask=main.attention_mask(1),
                        position_ids=positions, use_cache=True, **{ctx.cache_kw: main.hf})
            w.end += 1
            logits = out.logits[:, -1].float()
            rows_now = active
            slots = range(len(active))
        tokens = sampling.choose(logits, [r.generator for r in rows_now])
        last[slots.start:slots.stop] = tokens
        values = tokens.tolist()
        if on_step is not None and on_step({r.index: t for r, t in zip(rows_now, values)}):
            for r, t in zip(rows_now, values):
                r.tokens.append(t)
            break
        done = [s for s, r, t in zip(slots, rows_now, values, strict=True) if grow(r, t)]
        _retire(main, active, last, done, results)

    for row in active + pending:  # cut short by on_step
        results.setdefault(row.index, row.tokens)
    return [results[i] for i in range(len(rows))]


class _Context:
    """The model, its embedding table, and the shapes of its keys/values (from one probe)."""

    def __init__(self, model: Any, device: torch.device) -> None:
        self.model = model
        self.device = device
        self.embed = model.get_input_embeddings()
        self.num_layers = model.config.get_text_config(decoder=True).num_hidden_layers
        # transformers 5.x renamed `past_key_values` to `cache` (the old name warns).
        params = inspect.signature(model.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        # Prefill needs the last position's logits only (not (g, q, V)).
        self.last_only = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        out = model(input_ids=torch.zeros(1, 1, dtype=torch.long, device=device),
                    use_cache=True)
        probe = getattr(out, "cache", None) or out.past_key_values
        self.like = (probe.layers[0].keys, probe.layers[0].values)

    def cache(self, rows: int, cols: int) -> _SlotCache:
        cache = _SlotCache(self.num_layers, rows, self.device)
        cache.allocate(cols, self.like)
        cache.window.n = rows
        return cache

    def inputs(self, rows: Sequence[_Row], lo: int, hi: int) -> torch.Tensor:
        """Input embeddings (g, q, H) of prompt positions [lo, hi) of a row group, each row
        right-aligned (shorter rows padded on the left with zeros)."""
        chunks = []
        for row in rows:
            top = min(hi, len(row.prompt))
            if row.embeds is not None:
                chunks.append(row.embeds[lo:top].to(self.device))
            else:
                chunks.append(self.embed(torch.tensor(row.prompt[lo:top], device=self.device)))
        width = max(c.shape[0] for c in chunks)
        out = chunks[0].new_zeros(len(rows), width, chunks[0].shape[-1])
        for i, c in enumerate(chunks):
            out[i, width - c.shape[0]:] = c
        return out

    def forward(self, cache: _SlotCache, inputs: torch.Tensor, *, positions: torch.Tensor,
                valid: torch.Tensor | None) -> torch.Tensor:
        """Run `inputs` (g, q, H) into `cache` after its window; returns the logits of the
        last position (g, V). `valid` (g, q) marks real (not padding) input positions."""
        w = cache.window
        q = inputs.shape[1]
        mask = cache.attention_mask(q)
        if valid is not None:
            mask[:, -q:] = valid
        out = self.model(inputs_embeds=inputs, attention_mask=mask, position_ids=positions,
                         use_cache=True, **self.last_only, **{self.cache_kw: cache.hf})
        w.end += q
        return out.logits[:, -1].float()


def _prefill(ctx: _Context, main: _SlotCache, group: list[_Row], prefix: int,
             prefix_cache: _SlotCache | None) -> torch.Tensor:
    """Prefill a group of new rows and copy their keys/values into the next free slots of
    `main`, right-aligned to its window. Returns the logits (g, V) of each row's first token."""
    g = len(group)
    lengths = [len(r.prompt) for r in group]
    span = max(lengths)  # the group's columns: [shared prefix][padding][own tokens]
    own = span - prefix
    tmp = ctx.cache(g, span)
    tmp.window.end = prefix
    if prefix_cache is not None:
        for layer, pre in zip(tmp.layers, prefix_cache.layers, strict=True):
            layer.k_buf[:, :, :prefix] = pre.k_buf[:, :, :prefix]
            layer.v_buf[:, :, :prefix] = pre.v_buf[:, :, :prefix]
        assert tmp.mask is not None
        tmp.mask[:, :prefix] = True
    valid = torch.zeros(g, own, dtype=torch.bool, device=ctx.device)
    positions = torch.ones(g, own, dtype=torch.long, device=ctx.device)
    for i, length in enumerate(lengths):
        k = length - prefix
        valid[i, own - k:] = True
        positions[i, own - k:] = torch.arange(prefix, length, device=ctx.device)
    logits = ctx.forward(tmp, ctx.inputs(group, prefix, span), positions=positions,
                         valid=valid)

    w = main.window
    if w.end < span:  # cannot happen: the window starts after the longest prompt
        main.repack(span, _HEADROOM)
    lo, hi, left = w.n, w.n + g, w.end - span
    assert main.mask is not None and tmp.mask is not None
    keep = tmp.mask[:, None, :, None]  # padding columns are zeroed, never attended anyway
    for layer, new in zip(main.layers, tmp.layers, strict=True):
        layer.k_buf[lo:hi, :, left:w.end] = torch.where(keep, new.k_buf, 0)
        layer.v_buf[lo:hi, :, left:w.end] = torch.where(keep, new.v_buf, 0)
    main.mask[lo:hi] = False
    main.mask[lo:hi, left:w.end] = tmp.mask
    w.n = hi
    w.start = min(w.start, left) if lo else left
    return logits


def _retire(main: _SlotCache, active: list[_Row], last: torch.Tensor, done: list[int],
            results: dict[int, list[int]]) -> None:
    """Free the slots of finished rows: the last live row moves into each freed slot."""
    for slot in sorted(done, reverse=True):
        row = active[slot]
        results[row.index] = row.tokens
        tail = len(active) - 1
        if slot != tail:
            main.move_row(tail, slot)
            active[slot] = active[tail]
            last[slot] = last[tail]
        active.pop()
        main.window.n -= 1
    if done:
        main.trim()

"""`desta.model.decoding.decode` (continuous batching, in-place KV cache, shared prefix) gives
every row the tokens `model.generate` gives that prompt alone.

A tiny random Llama in float64, so that differently shaped matrix products cannot flip a
greedy choice by rounding: any difference is a bookkeeping bug (a row reading another row's
cache, a wrong position id, a padding column attended, a slot moved wrongly)."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

from desta.model.decoding import Sampling, decode, supports_fast_decoding

VOCAB = 97
STOPS = (5, 11)


@pytest.fixture(scope="module")
def llm() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, bos_token_id=1, eos_token_id=5,
                         pad_token_id=0)
    return LlamaForCausalLM(config).to(torch.float64).eval()


def _prompts(n: int, *, prefix: int, seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    shared = torch.randint(12, VOCAB, (prefix,), generator=g).tolist()
    return [shared + torch.randint(12, VOCAB, (int(torch.randint(1, 30, (1,), generator=g)),),
                                   generator=g).tolist() for _ in range(n)]


def _alone(llm: LlamaForCausalLM, prompt: list[int], max_new_tokens: int,
           stops: tuple[int, ...] = STOPS) -> list[int]:
    ids = torch.tensor([prompt])
    out = llm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                       do_sample=False, eos_token_id=list(stops) or None, pad_token_id=0)
    return out[0, len(prompt):].tolist()


@pytest.mark.parametrize(("prefix", "max_active"), [(10, 3), (0, 4), (10, 64)])
def test_every_row_gets_its_own_greedy_answer(llm, prefix: int, max_active: int) -> None:
    prompts = _prompts(10, prefix=prefix, seed=prefix + max_active)
    # Stop tokens the model does produce, at different steps of different rows, so rows end
    # at different times and their slots are refilled.
    free = [_alone(llm, p, 24, stops=()) for p in prompts[:4]]
    stops = tuple({free[r][2 + 5 * r] for r in range(4)})
    got = decode(llm, prompts, max_new_tokens=24, stop_ids=stops, max_active=max_active)
    want = [_alone(llm, p, 24, stops) for p in prompts]
    assert got == want
    assert len({len(row) for row in got}) > 2


def test_long_answers_outgrow_the_buffer(llm) -> None:
    """Past 256 new tokens the cache is repacked while rows are still being admitted."""
    prompts = _prompts(5, prefix=6, seed=3)
    got = decode(llm, prompts, max_new_tokens=300, stop_ids=(), max_active=2)
    assert got == [_alone(llm, p, 300, stops=()) for p in prompts]
    assert all(len(row) == 300 for row in got)


def test_prompt_embeddings_and_unshareable_positions(llm) -> None:
    """Rows given as embeddings (as DeSTA's audio vectors are) decode like their ids would;
    `shareable` keeps the prefix from covering positions whose embeddings differ per row."""
    prompts = _prompts(4, prefix=8, seed=5)
    table = llm.get_input_embeddings()
    embeds = [table(torch.tensor(p)) for p in prompts]
    embeds[1] = embeds[1].clone()
    embeds[1][3] += 0.5  # row 1 differs from the others at position 3, inside the prefix
    got = decode(llm, prompts, max_new_tokens=12, stop_ids=STOPS, prompt_embeds=embeds,
                 shareable=[3, 3, 3, 3])
    for prompt, emb, row in zip(prompts, embeds, got, strict=True):
        out = llm.generate(inputs_embeds=emb[None], attention_mask=torch.ones(1, len(prompt)),
                           max_new_tokens=12, do_sample=False, eos_token_id=list(STOPS),
                           pad_token_id=0)
        assert row == out[0].tolist()
    plain = decode(llm, prompts, max_new_tokens=12, stop_ids=STOPS)
    assert got[0] == plain[0] and got[1] != plain[1]


def test_a_sampled_row_does_not_depend_on_its_batch(llm) -> None:
    prompts = _prompts(6, prefix=5, seed=9)
    sampling = Sampling(do_sample=True, temperature=0.9, top_p=0.8, top_k=40)
    seeds = [101, 202, 303, 404, 505, 606]
    together = decode(llm, prompts, max_new_tokens=16, stop_ids=STOPS, sampling=sampling,
                      seeds=seeds, max_active=3)
    alone = [decode(llm, [p], max_new_tokens=16, stop_ids=STOPS, sampling=sampling,
                    seeds=[s])[0] for p, s in zip(prompts, seeds, strict=True)]
    assert together == alone
    other_seed = decode(llm, prompts[:1], max_new_tokens=16, stop_ids=STOPS,
                        sampling=sampling, seeds=[7])[0]
    assert other_seed != together[0]


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    sampling = Sampling(do_sample=True, top_p=0.75)
    drawn = {int(sampling.choose(logits, [torch.Generator().manual_seed(s)])[0])
             for s in range(200)}
    assert drawn == {0, 1}  # 0.5 + 0.3 reaches 0.75; 0.15 and 0.05 are never drawn


def test_on_step_can_stop_all_rows(llm) -> None:
    prompts = _prompts(3, prefix=4, seed=2)
    steps: list[dict[int, int]] = []

    def on_step(new: dict[int, int]) -> bool:
        steps.append(new)
        return len(steps) == 4

    got = decode(llm, prompts, max_new_tokens=50, stop_ids=(), on_step=on_step)
    assert [len(row) for row in got] == [4, 4, 4]
    full = decode(llm, prompts, max_new_tokens=4, stop_ids=())
    assert got == full


def test_bad_arguments_are_refused(llm) -> None:
    with pytest.raises(ValueError, match="at least one token"):
        decode(llm, [[3, 4], []], max_new_tokens=4, stop_ids=STOPS)
    with pytest.raises(ValueError, match=">= 1"):
        decode(llm, [[3, 4]], max_new_tokens=0, stop_ids=STOPS)
    assert decode(llm, [], max_new_tokens=4, stop_ids=STOPS) == []


def test_sliding_window_models_are_not_taken(llm) -> None:
    assert supports_fast_decoding(llm)
    sliding = MistralForCausalLM(MistralConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, sliding_window=8))
    assert not supports_fast_decoding(sliding)

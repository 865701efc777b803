"""The Q-Former connector: BERT-compatible numerics, fusion, taps defaults, shapes."""

import pytest
import torch
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertEncoder

from desta.errors import ConfigError
from desta.model.config import DestaConfig, default_taps
from desta.model.connector import QFormer, QFormerConnector


def _hf_bert_encoder(d: int, heads: int, d_ff: int, layers: int) -> BertEncoder:
    cfg = BertConfig(hidden_size=d, num_attention_heads=heads, intermediate_size=d_ff,
                     num_hidden_layers=layers, is_decoder=True, add_cross_attention=True)
    # The released model was trained with BERT's eager attention and no mask: bidirectional.
    cfg._attn_implementation = "eager"
    return BertEncoder(cfg).eval()


def test_qformer_matches_hf_bert_layers():
    torch.manual_seed(0)
    hf = _hf_bert_encoder(64, 4, 96, 2)
    ours = QFormer(64, 4, 96, 2, dropout=0.1).eval()
    # strict: every released BertLayer tensor name exists in ours and nothing else.
    ours.load_state_dict(hf.state_dict(), strict=True)
    queries, memory = torch.randn(3, 8, 64), torch.randn(3, 50, 64)
    expected = hf(hidden_states=queries, encoder_hidden_states=memory).last_hidden_state
    torch.testing.assert_close(ours(queries, memory), expected, rtol=1e-5, atol=1e-5)


def test_qformer_self_attention_is_bidirectional():
    torch.manual_seed(0)
    q = QFormer(32, 4, 64, 1, dropout=0.0).eval()
    queries, memory = torch.randn(1, 6, 32), torch.randn(1, 10, 32)
    base = q(queries, memory)
    changed = queries.clone()
    changed[:, -1] += 1.0  # a later query must influence earlier ones
    assert not torch.allclose(q(changed, memory)[:, 0], base[:, 0])


def _reference_fusion(conn: QFormerConnector, hf: BertEncoder, taps):
    """The released computation, tap by tap, with HF's BertEncoder."""
    outs = [hf(hidden_states=conn.layer_prompts[i].expand(t.shape[0], -1, -1),
               encoder_hidden_states=t).last_hidden_state for i, t in enumerate(taps)]
    stacked = torch.stack(outs, 0).permute(1, 2, 0, 3)  # (B, P, K, d)
    weights = torch.softmax(conn.layer_weights, -1).unsqueeze(-1)
    return conn.proj((stacked * weights).sum(2))


def test_connector_equals_per_tap_reference():
    torch.manual_seed(1)
    conn = QFormerConnector(encoder_dim=64, encoder_heads=4, llm_dim=48, num_taps=3,
                            prompt_size=5, num_layers=2, intermediate_size=96, dropout=0.1).eval()
    with torch.no_grad():
        conn.layer_weights.normal_()  # non-uniform fusion
    hf = _hf_bert_encoder(64, 4, 96, 2)
    hf.load_state_dict(conn.qformer.state_dict())
    taps = [torch.randn(2, 30, 64) for _ in range(3)]
    out = conn(taps)
    assert out.shape == (2, 5, 48)
    torch.testing.assert_close(out, _reference_fusion(conn, hf, taps), rtol=1e-5, atol=1e-5)


def test_connector_parameter_names_follow_released_layout():
    conn = QFormerConnector(encoder_dim=32, encoder_heads=4, llm_dim=16, num_taps=4,
                            prompt_size=7, num_layers=1, intermediate_size=3072, dropout=0.1)
    names = dict(conn.named_parameters())
    assert names["layer_prompts.3"].shape == (1, 7, 32)
    assert names["layer_weights"].shape == (7, 4)
    assert names["qformer.layer.0.intermediate.dense.weight"].shape == (3072, 32)
    assert names["qformer.layer.0.crossattention.output.LayerNorm.bias"].shape == (32,)
    assert names["proj.0.weight"].shape == (32,) and names["proj.1.weight"].shape == (16, 32)


def test_connector_rejects_wrong_tap_count():
    conn = QFormerConnector(encoder_dim=32, encoder_heads=4, llm_dim=16, num_taps=2,
                            prompt_size=3, num_layers=1, intermediate_size=64, dropout=0.0)
    with pytest.raises(ValueError, match="expected 2 encoder taps"):
        conn([torch.randn(1, 5, 32)])


@pytest.mark.parametrize(("layers", "taps"), [(4, [0, 1, 2, 3]), (12, [2, 5, 8, 11]),
                                              (24, [5, 11, 17, 23]), (32, [7, 15, 23, 31])])
def test_default_taps_match_released_choices(layers, taps):
    assert default_taps(layers) == taps
    assert DestaConfig().taps(layers) == taps


def test_config_validation_names_field():
    with pytest.raises(ConfigError, match="prompt_size"):
        DestaConfig(prompt_size=0)
    with pytest.raises(ConfigError, match="target_layer_ids"):
        DestaConfig(target_layer_ids=[3, 1])
    with pytest.raises(ConfigError, match="exceed"):
        DestaConfig(target_layer_ids=[1, 9]).taps(4)
    with pytest.raises(ConfigError, match="connector_mode"):
        DestaConfig(connector_mode="mlp")


def test_data_init_makes_the_audio_vectors_follow_the_clip():
    """Taps sharing a large common component (as Whisper states do): under BERT's init the
    clips' audio vectors barely differ; after `init_from_data` the clip-specific part dominates,
    the output RMS matches the LLM's embeddings, and the layout is unchanged."""
    torch.manual_seed(0)
    d, clips, t = 64, 12, 40
    common = torch.randn(d) * 3.0
    taps = [common + 0.3 * torch.randn(clips, 1, d) + 0.3 * torch.randn(clips, t, d)
            for _ in range(2)]

    def clip_specific(conn: QFormerConnector) -> float:
        with torch.no_grad():
            v = conn.eval()(taps).flatten(1)
        return float(((v - v.mean(0)).norm(dim=1) / v.mean(0).norm()).mean())

    conn = QFormerConnector(encoder_dim=d, encoder_heads=4, llm_dim=48, num_taps=2,
                            prompt_size=8, num_layers=2, intermediate_size=96, dropout=0.0)
    names = {n: p.shape for n, p in conn.state_dict().items()}
    before = clip_specific(conn)
    x = torch.cat([tap.reshape(-1, d) for tap in taps])
    conn.init_from_data(x.mean(0), x.std(0), embedding_rms=0.1)
    after = clip_specific(conn)
    assert after > 3 * before, (before, after)
    assert {n: p.shape for n, p in conn.state_dict().items()} == names
    with torch.no_grad():
        rms = float(conn(taps).pow(2).mean().sqrt())
    assert rms == pytest.approx(0.1, rel=0.3)

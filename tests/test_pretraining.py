"""The pieces shared by ViLBERT and M3P: BERT masking, in-batch matching pairs, the MLM head."""
import pytest
import torch
import torch.nn.functional as F

from hzlib.baselines import _pretraining as P
from hzlib.train import trim_padding

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tokens(B=64, L=40, vocab=500, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.zeros(B, L, dtype=torch.int64)
    for i in range(B):
        k = 4 + i % (L - 8)
        t[i, 0], t[i, 1:k - 1], t[i, k - 1] = 2, torch.randint(4, vocab, (k - 2,), generator=g), 3
        t[i, 1 + i % 3] = 1  # an unknown word: not a target
    return t


def test_mask_tokens_follows_bert_on_words_only():
    t = _tokens(B=400, L=60)
    torch.manual_seed(0)
    inputs, targets = P.mask_tokens(t, 500, 60)
    picked = targets != P.IGNORE
    words = t >= 4
    assert not (picked & ~words).any()                      # never pad / <unk> / <bos> / <eos>
    assert torch.equal(targets[picked], t[picked])
    assert torch.equal(inputs[~picked], t[~picked])         # only targets are touched
    assert abs(picked.sum().item() / words.sum().item() - 0.15) < 0.01
    n = picked.sum().item()
    masked = (inputs[picked] == P.MASK_ID).sum().item() / n
    kept = (inputs[picked] == t[picked]).sum().item() / n   # 10% kept (+ random draws of the same id)
    assert P.MASK_ID == 1 and abs(masked - 0.8) < 0.03 and abs(kept - 0.1) < 0.03
    assert (inputs[picked] >= 4).sum().item() / n == pytest.approx(0.2, abs=0.03)


def test_mask_tokens_ignores_trailing_padding():
    t = _tokens(B=8, L=32)
    torch.manual_seed(3)
    full = P.mask_tokens(t, 500, 32)
    torch.manual_seed(3)
    trimmed = P.mask_tokens(trim_padding(t), 500, 32)
    L = trimmed[0].shape[1]
    assert L < 32
    assert torch.equal(full[0][:, :L], trimmed[0]) and torch.equal(full[1][:, :L], trimmed[1])


def test_itm_pairs_roll_texts_by_one():
    t = torch.tensor([[2, 5, 3], [2, 6, 3], [2, 7, 3], [2, 8, 3]])
    img, txt, y = P.itm_pairs(t, half=False)
    assert img.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert txt.tolist() == [0, 1, 2, 3, 3, 0, 1, 2]
    assert y.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    img, txt, y = P.itm_pairs(t, half=True)
    assert img.tolist() == [0, 1, 2, 3] and txt.tolist() == [0, 1, 1, 2] and y.tolist() == [1, 1, 0, 0]
    img, txt, y = P.itm_pairs(t[:2], half=True)  # even two pairs give a true negative
    assert txt.tolist() == [0, 0] and y.tolist() == [1, 0]


def test_itm_pairs_label_an_identical_text_aligned():
    t = torch.tensor([[2, 5, 3], [2, 5, 3], [2, 7, 3], [2, 8, 3]])
    _, _, y = P.itm_pairs(t, half=False)
    assert y.tolist() == [1, 1, 1, 1, 0, 1, 0, 0]


def test_itm_loss_is_binary_cross_entropy():
    z, y = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 0.0])
    by_hand = -(torch.log(torch.sigmoid(z[0])) + torch.log(1 - torch.sigmoid(z[1]))
                + torch.log(1 - torch.sigmoid(z[2]))) / 3
    torch.testing.assert_close(P.itm_loss(z, y), by_hand)


def test_mlm_head_is_tied_and_reads_only_targets():
    torch.manual_seed(0)
    emb = P.token_embedding(12, 8)
    head = P.MaskedLMHead(emb, "gelu")
    with torch.no_grad():
        head.bias.copy_(torch.randn(12))
    h = torch.randn(2, 5, 8)
    targets = torch.full((2, 5), P.IGNORE)
    targets[0, 1], targets[1, 3] = 7, 4
    dense, norm = head.transform[0], head.transform[2]
    rows = torch.stack([h[0, 1], h[1, 3]])
    z = F.gelu(rows @ dense.weight.T + dense.bias)
    z = (z - z.mean(1, keepdim=True)) / torch.sqrt(z.var(1, unbiased=False, keepdim=True) + norm.eps)
    logits = (z * norm.weight + norm.bias) @ emb.weight.T + head.bias
    by_hand = -(logits.log_softmax(1)[0, 7] + logits.log_softmax(1)[1, 4]) / 2
    torch.testing.assert_close(head(h, targets), by_hand)
    assert head.embedding is emb
    none = head(h, torch.full((2, 5), P.IGNORE))
    none.backward()  # no targets: a zero that still has a graph
    assert none.item() == 0


def test_patch_embedding_is_a_patch_projection():
    torch.manual_seed(0)
    pe = P.PatchEmbedding(16, 8, 6)
    x = torch.randn(2, 3, 16, 16)
    patches = x.unfold(2, 8, 8).unfold(3, 8, 8)            # (B, 3, 2, 2, 8, 8)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(2, 4, 3 * 8 * 8)
    tok = torch.cat([pe.lead.expand(2, 1, 6), patches @ pe.patch.weight.reshape(6, -1).T], 1) + pe.position
    torch.testing.assert_close(pe(x), F.layer_norm(tok, (6,), pe.norm.weight, pe.norm.bias), rtol=1e-5, atol=1e-5)


def _pad_mask():
    return torch.tensor([[False] * 5 + [True] * 2, [False] * 7, [False] * 3 + [True] * 4])


def test_encoder_layer_is_torchs_pre_norm_layer():
    """The same arithmetic as nn.TransformerEncoderLayer(norm_first=True, dropout=0), padded keys masked
    (the reference implementation, its weights copied in)."""
    torch.manual_seed(0)
    ours = P.encoder_layer(16, 4, 2.0, "gelu").eval()
    ref = torch.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation=F.gelu, batch_first=True,
                                           norm_first=True).eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(ours.attn.qkv.weight)
        ref.self_attn.in_proj_bias.copy_(ours.attn.qkv.bias)
        ref.self_attn.out_proj.weight.copy_(ours.attn.out.weight)
        ref.self_attn.out_proj.bias.copy_(ours.attn.out.bias + 0.1)
        ours.attn.out.bias.add_(0.1)  # a non-zero bias, so that it is checked too
        pairs = ((ref.norm1, ours.norm1), (ref.norm2, ours.norm2), (ref.linear1, ours.ff[0]), (ref.linear2, ours.ff[2]))
        for a, b in pairs:
            a.load_state_dict(b.state_dict())
        x, pad = torch.randn(3, 7, 16), _pad_mask()
        torch.testing.assert_close(ours(x, src_key_padding_mask=pad), ref(x, src_key_padding_mask=pad),
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_cross_attention_is_torchs_multihead_attention():
    """Queries of one width over keys/values of another: nn.MultiheadAttention(kdim=vdim=other) with the
    same weights; what sits at a padded key does not matter."""
    torch.manual_seed(0)
    ours = P.Attention(8, 2, kv_width=6)
    ref = torch.nn.MultiheadAttention(8, 2, kdim=6, vdim=6, batch_first=True)
    with torch.no_grad():
        ref.q_proj_weight.copy_(ours.q.weight)
        ref.k_proj_weight.copy_(ours.kv.weight[:8])
        ref.v_proj_weight.copy_(ours.kv.weight[8:])
        ref.in_proj_bias.copy_(torch.cat([ours.q.bias, ours.kv.bias]) + 0.05)
        ours.q.bias.add_(0.05)
        ours.kv.bias.add_(0.05)
        ref.out_proj.load_state_dict(ours.out.state_dict())
        x, y, pad = torch.randn(3, 4, 8), torch.randn(3, 7, 6), _pad_mask()
        expected = ref(x, y, y, key_padding_mask=pad, need_weights=False)[0]
        torch.testing.assert_close(ours(x, y, key_padding_mask=pad), expected, rtol=1e-5, atol=1e-5)
        y[0, 5:] = 100.0
        torch.testing.assert_close(ours(x, y, key_padding_mask=pad), expected, rtol=1e-5, atol=1e-5)


def test_attention_initialises_as_torch_does():
    """Xavier-uniform projections and zero biases, as nn.MultiheadAttention: the models' starting point
    did not change with the implementation."""
    a = P.Attention(64, 4)
    bound = (6 / (64 + 3 * 64)) ** 0.5  # xavier over the fused (3*64, 64) matrix, as torch's in_proj
    assert a.qkv.weight.abs().max() <= bound and a.qkv.weight.abs().max() > 0.9 * bound
    assert not a.qkv.bias.any() and not a.out.bias.any()
    with pytest.raises(ValueError, match="multiple of heads"):
        P.Attention(10, 4)

"""Capture on the models people debug (random weights, small inputs, CPU): every block equals a plain hook's output."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import peeklens as pl


def rand_images(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


# ------------------------------------------------------------------ torchvision
@pytest.mark.slow
def test_vit_b_16_blocks_tokens_and_cls(hooks, same):
    from torchvision.models import vit_b_16

    torch.manual_seed(0)
    model = vit_b_16(weights=None, image_size=32)  # 2 x 2 patches + the class token
    x = rand_images(3, 32)
    names = ["encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_1.mlp",
             "encoder.layers.encoder_layer_1.self_attention"]
    ref = hooks(model, names, lambda: model(x))
    acts = pl.capture(model, x, layers=names, nonneg="semi", progress=False)
    assert acts.input_names == ["input:0", "input:1", "input:2"]
    assert acts[names[0]].shape == (5, 768)
    same(acts[names[0]], ref[names[0]][0])
    same(acts[names[1]], ref[names[1]][0])
    # MultiheadAttention returns (output, None): the output is element [0]
    same(acts[names[2] + "[0]"], ref[names[2]][0][0])
    assert acts[names[0]].signed and not acts["input:0"].signed

    tok = pl.capture(model, x, layers=names[:1], samples="tokens", include_input=False, nonneg="semi", progress=False)
    assert tok.n_samples == 3 * 5 and tok[names[0]].shape == (768,)
    same(tok[names[0]], ref[names[0]][0].reshape(15, 768))
    assert tok.sample_info["sample"].tolist() == np.repeat(np.arange(3), 5).tolist()
    assert tok.sample_info["position"].tolist() == list(range(5)) * 3
    cls = pl.capture(model, x, layers=names[:1], samples="first", nonneg="semi", progress=False)
    same(cls[names[0]], ref[names[0]][0][:, 0])
    assert cls.input_names == ["input:0", "input:1", "input:2"]  # one sample per image: inputs stay whole


@pytest.mark.slow
def test_swin_t_channels_last_stages(hooks, same):
    from torchvision.models import swin_t

    torch.manual_seed(0)
    model = swin_t(weights=None)
    x = rand_images(2, 64)
    names = ["features.1", "features.3.0.mlp"]
    ref = hooks(model, names, lambda: model(x))
    acts = pl.capture(model, x, layers=names, nonneg="semi", include_input=False, progress=False)
    for n in names:
        same(acts[n], ref[n][0])
    assert acts["features.1"].shape == (16, 16, 96)  # (H, W, C): swin keeps channels last


@pytest.mark.slow
def test_convnext_tiny_signed_gelu_and_pooled_stage(hooks, same):
    from torchvision.models import convnext_tiny

    torch.manual_seed(0)
    model = convnext_tiny(weights=None)
    x = rand_images(2, 32)
    names = ["features.1.0.block.4", "features.2"]  # a GELU inside a block; a downsampling stage
    ref = hooks(model, names, lambda: model(x))
    acts = pl.capture(model, x, layers=names, nonneg="semi", include_input=False, progress=False)
    same(acts["features.1.0.block.4"], ref["features.1.0.block.4"][0])
    same(acts["features.2"], ref["features.2"][0])
    pooled = pl.capture(model, x, layers=["features.2"], samples="mean", nonneg="semi", include_input=False,
                        progress=False)
    same(pooled["features.2"], ref["features.2"][0].mean((2, 3)))


def test_mobilenet_v3_small_default_relus(hooks, same):
    from torchvision.models import mobilenet_v3_small

    torch.manual_seed(0)
    model = mobilenet_v3_small(weights=None)
    x = rand_images(2, 32)
    acts = pl.capture(model, x, progress=False)
    relus = [n for n, m in model.named_modules() if isinstance(m, nn.ReLU)]
    ref = hooks(model, relus, lambda: model(x))
    assert acts.layer_names == relus
    for n in relus:
        same(acts[n], ref[n][0])


def test_efficientnet_b0_silu_stage_semi(hooks, same):
    from torchvision.models import efficientnet_b0

    torch.manual_seed(0)
    model = efficientnet_b0(weights=None)
    x = rand_images(2, 32)
    names = ["features.2", "features.0.2"]  # an MBConv stage (signed) and the stem's SiLU
    ref = hooks(model, names, lambda: model(x))
    acts = pl.capture(model, x, layers=names, nonneg="semi", progress=False)
    for n in names:
        same(acts[n], ref[n][0])
    assert acts["features.2"].signed


# ------------------------------------------------------------------ torch.nn sequence modules
class SeqFirstEncoder(nn.Module):
    """Batch-first in and out; inside, PyTorch's default (sequence, batch, features) encoder."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0.0)
        self.enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)

    def forward(self, x, pad):
        return self.enc(x.transpose(0, 1), src_key_padding_mask=pad).transpose(0, 1)


def test_transformer_encoder_sequence_first_with_padding(hooks, same):
    torch.manual_seed(0)
    model = SeqFirstEncoder()
    x = torch.randn(4, 6, 16)
    pad = torch.zeros(4, 6, dtype=torch.bool)
    pad[1, 4:] = True
    pad[3, 2:] = True
    batch = {"x": x, "pad": pad}
    names = ["enc.layers.0", "enc.layers.1"]
    ref = hooks(model, names, lambda: model(x, pad))
    acts = pl.capture(model, [batch], layers=names, include_input=False, nonneg="semi", progress=False)
    same(acts["enc.layers.0"], ref["enc.layers.0"][0].transpose(0, 1))  # stored batch first
    same(acts["enc.layers.1"], ref["enc.layers.1"][0].transpose(0, 1))
    # a submodule inside keeps the (sequence, batch) layout: refused with the reason
    with pytest.raises(pl.CaptureError, match=r"linear1.*\(6, 1, 32\).*first axis is not the batch.*sequence-first"):
        pl.capture(model, [batch], layers=["enc.layers.1.linear1"], include_input=False, nonneg="semi",
                   progress=False)
    keep = ~pad  # padding must not become samples
    tok = pl.capture(model, [batch], layers=names, mask=lambda b: ~b["pad"], samples="tokens", nonneg="semi",
                     progress=False)
    assert tok.n_samples == int(keep.sum())
    same(tok["enc.layers.0"], ref["enc.layers.0"][0].transpose(0, 1)[keep])
    same(tok["input:0"], x[keep])  # a (batch, tokens, features) input follows the tokens
    mean = pl.capture(model, [batch], layers=names[:1], mask=lambda b: ~b["pad"], samples="mean", nonneg="semi",
                      include_input=False, progress=False)
    h = ref["enc.layers.0"][0].transpose(0, 1)
    expect = torch.stack([h[i][keep[i]].mean(0) for i in range(4)])
    same(mean["enc.layers.0"], expect)


class WithAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2)  # (L, N, E) in and out
        self.head = nn.Linear(8, 3)

    def forward(self, x):  # x: (N, L, E)
        s = x.transpose(0, 1)
        out, weights = self.attn(s, s, s)
        return self.head(out.mean(0)) + weights.sum()


def test_multihead_attention_inside_a_model_gives_output_and_weights(hooks, same):
    torch.manual_seed(0)
    model = WithAttention()
    x = torch.randn(5, 4, 8)
    ref = hooks(model, ["attn"], lambda: model(x))["attn"][0]
    acts = pl.capture(model, x, layers=["attn"], include_input=False, nonneg="semi", progress=False)
    assert acts.layer_names == ["attn[0]", "attn[1]"]
    same(acts["attn[0]"], ref[0].transpose(0, 1))
    same(acts["attn[1]"], ref[1])  # weights are (batch, L, S) already
    only = pl.capture(model, x, layers=["attn[0]"], include_input=False, nonneg="semi", progress=False)
    assert only.layer_names == ["attn[0]"]


class Recurrent(nn.Module):
    def __init__(self, cell, batch_first):
        super().__init__()
        self.batch_first = batch_first
        self.rnn = cell(6, 5, num_layers=2, batch_first=batch_first)
        self.head = nn.Linear(5, 2)

    def forward(self, x):  # x: (N, T, 6)
        out, _ = self.rnn(x if self.batch_first else x.transpose(0, 1))
        return self.head(out[:, -1] if self.batch_first else out[-1])


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_lstm_and_gru_outputs_and_hidden_states(cell, batch_first, hooks, same):
    torch.manual_seed(0)
    model = Recurrent(cell, batch_first)
    x = torch.randn(7, 4, 6)
    ref = hooks(model, ["rnn"], lambda: model(x))["rnn"][0]
    acts = pl.capture(model, x, layers=["rnn"], include_input=False, nonneg="semi", progress=False)
    out = ref[0] if batch_first else ref[0].transpose(0, 1)
    same(acts["rnn[0]"], out)
    if cell is nn.LSTM:
        assert acts.layer_names == ["rnn[0]", "rnn[1][0]", "rnn[1][1]"]
        same(acts["rnn[1][0]"], ref[1][0].transpose(0, 1))  # h_n: (layers, batch, H) -> (batch, layers, H)
        same(acts["rnn[1][1]"], ref[1][1].transpose(0, 1))
    else:
        assert acts.layer_names == ["rnn[0]", "rnn[1]"]
        same(acts["rnn[1]"], ref[1].transpose(0, 1))
    only = pl.capture(model, x, layers=["rnn[0]"], include_input=False, nonneg="semi", samples="tokens",
                      progress=False)
    assert only.layer_names == ["rnn[0]"] and only.n_samples == 7 * 4
    same(only["rnn[0]"], out.reshape(28, 5))


class TinyGPT(nn.Module):
    """A pure-PyTorch GPT-style decoder: token + position embeddings, causal blocks, a LM head."""

    def __init__(self, vocab=30, d=16, n_layer=2, n_pos=16):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(n_pos, d)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d, 2, 4 * d, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True)
            for _ in range(n_layer)
        )
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, input_ids, attention_mask=None):
        t = input_ids.shape[1]
        h = self.tok(input_ids) + self.pos(torch.arange(t, device=input_ids.device))
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        pad = None if attention_mask is None else attention_mask == 0
        for block in self.blocks:
            h = block(h, src_mask=causal, src_key_padding_mask=pad)
        return self.head(self.ln(h))


def token_batches(seed=0):
    """Tokenizer-style dict batches of two lengths, right-padded, with next-token targets."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, t, lengths in ((3, 8, [8, 5, 3]), (2, 6, [6, 4])):
        ids = torch.randint(1, 30, (n, t), generator=g)
        mask = (torch.arange(t)[None] < torch.tensor(lengths)[:, None]).long()
        ids = ids * mask
        out.append({"input_ids": ids, "attention_mask": mask, "labels": torch.roll(ids, -1, 1)})
    return out


def test_gpt_style_decoder_fed_dict_batches_per_token(hooks, same):
    torch.manual_seed(0)
    model = TinyGPT()
    batches = token_batches()
    names = ["blocks.0.linear1", "blocks.1"]
    acts = pl.capture(model, batches, layers=names, samples="tokens", include_input=False, nonneg="semi",
                      progress=False)
    keep = [b["attention_mask"].bool() for b in batches]
    assert acts.n_samples == sum(int(k.sum()) for k in keep) == 26
    for n in names:
        refs = [hooks(model, [n], lambda b=b: model(b["input_ids"], b["attention_mask"]))[n][0][k]
                for b, k in zip(batches, keep)]
        same(acts[n], torch.cat(refs))
    info = acts.sample_info
    assert info["token"].tolist() == torch.cat([b["input_ids"][k] for b, k in zip(batches, keep)]).tolist()
    assert info["sample"].tolist() == [0] * 8 + [1] * 5 + [2] * 3 + [3] * 6 + [4] * 4
    assert info["position"][:10].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]
    # per-token targets follow the tokens
    assert acts.labels.tolist() == torch.cat([b["labels"][k] for b, k in zip(batches, keep)]).tolist()
    mean = pl.capture(model, batches, layers=names[1:], samples="mean", include_input=False, nonneg="semi",
                      progress=False)
    assert mean.n_samples == 5 and mean.labels is None  # per-token targets are no per-sequence labels


# ------------------------------------------------------------------ Hugging Face transformers (built from configs)
def hf_batch(vocab=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (3, 7), generator=g)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 5:] = 0
    mask[2, 3:] = 0
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids),
            "labels": torch.tensor([0, 1, 1])}


@pytest.mark.slow
def test_huggingface_bert_from_config(hooks, same):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, max_position_embeddings=32))
    batch = hf_batch()
    names = ["encoder.layer.0.intermediate", "encoder.layer.1", "encoder.layer.1.attention"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    ref = hooks(model, names, lambda: model(**inputs))
    acts = pl.capture(model, [batch], layers=names, include_input=False, nonneg="semi", progress=False)
    assert acts.labels.tolist() == [0, 1, 1]
    same(acts["encoder.layer.0.intermediate"], ref["encoder.layer.0.intermediate"][0])
    same(acts["encoder.layer.1"], ref["encoder.layer.1"][0])
    same(acts["encoder.layer.1.attention[0]"], ref["encoder.layer.1.attention"][0][0])
    keep = batch["attention_mask"].bool()
    tok = pl.capture(model, [batch], layers=names[:2], samples="tokens", include_input=False, nonneg="semi",
                     progress=False)
    assert tok.n_samples == int(keep.sum())
    same(tok["encoder.layer.1"], ref["encoder.layer.1"][0][keep])
    assert tok.sample_info["token"].tolist() == batch["input_ids"][keep].tolist()
    assert tok.labels.tolist() == batch["labels"][tok.sample_info["sample"]].tolist()


@pytest.mark.slow
def test_huggingface_gpt2_from_config(hooks, same):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=32, n_layer=2, n_head=2, n_positions=32,
                                           bos_token_id=0, eos_token_id=0))
    batch = hf_batch()
    del batch["token_type_ids"]
    names = ["transformer.h.0.mlp", "transformer.h.1.mlp.act", "transformer.h.1"]
    ref = hooks(model, names, lambda: model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]))
    acts = pl.capture(model, [batch], layers=names, include_input=False, nonneg="semi", progress=False)
    for n in names[:2]:
        same(acts[n], ref[n][0])
    h1 = ref["transformer.h.1"][0]
    same(acts["transformer.h.1"] if "transformer.h.1" in acts else acts["transformer.h.1[0]"],
         h1 if isinstance(h1, torch.Tensor) else h1[0])
    mean = pl.capture(model, [batch], layers=names[:1], samples="mean", include_input=False, nonneg="semi",
                      progress=False)
    m = batch["attention_mask"].float()[..., None]
    same(mean["transformer.h.0.mlp"], (ref[names[0]][0] * m).sum(1) / m.sum(1))


# ------------------------------------------------------------------ several inputs
class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.relu = nn.ReLU()
        self.side = nn.Linear(5, 4)
        self.out = nn.ReLU()

    def forward(self, image, extra):
        h = self.relu(self.conv(image)).mean((2, 3))
        return self.out(h + self.side(extra))


def test_model_with_two_inputs_by_keyword(hooks, same):
    torch.manual_seed(0)
    model = TwoInputs()
    img, extra, y = torch.rand(6, 1, 8, 8), torch.rand(6, 5), torch.arange(6) % 2
    batches = [{"image": img[:4], "extra": extra[:4], "label": y[:4]},
               {"image": img[4:], "extra": extra[4:], "label": y[4:]}]
    ref = hooks(model, ["relu", "out"], lambda: model(img, extra))
    acts = pl.capture(model, batches, progress=False)
    assert acts.names == ["input:0", "relu", "out"] and acts.labels.tolist() == y.tolist()
    same(acts["input:0"], img[:, 0])
    same(acts["relu"], ref["relu"][0])
    same(acts["out"], ref["out"][0])
    # the other input stored instead, chosen by key; a tuple batch through forward=
    other = pl.capture(model, batches, inputs="extra", progress=False)
    same(other["input:0"], extra)
    tup = pl.capture(model, [(img, extra, y)], forward=lambda m, b: m(b[0], b[1]), labels=2, progress=False)
    same(tup["out"], ref["out"][0])
    assert tup.labels.tolist() == y.tolist()


class OneLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, activation="gelu", batch_first=True,
                                                norm_first=True)

    def forward(self, x, pad):
        return self.layer(x, src_key_padding_mask=pad)


def test_encoder_layers_keep_their_fused_fast_path(hooks):
    """A hook on nn.TransformerEncoderLayer turns off its eval-mode fused kernel; capture watches it from outside,
    so the captured output is bit for bit the plain forward's (a hooked run differs in the last bits)."""
    torch.manual_seed(0)
    model = OneLayer().eval()
    x = torch.randn(8, 32, 64)
    pad = torch.zeros(8, 32, dtype=torch.bool)
    pad[:, 20:] = True
    with torch.no_grad():
        plain = model(x, pad)
    hooked = hooks(model, ["layer"], lambda: model(x, pad))["layer"][0]
    assert not torch.equal(hooked, plain)  # the slow path: this test can tell the two apart
    acts = pl.capture(model, [{"x": x, "pad": pad}], layers=["layer"], include_input=False, nonneg="semi",
                      progress=False)
    np.testing.assert_array_equal(acts["layer"].data, plain.reshape(8, -1).T.numpy())
    assert not nn.modules.module._global_forward_hooks  # removed afterwards


class NestedEncoder(nn.Module):
    """batch_first encoder with a padding mask: in eval mode its layers pass nested tensors to each other."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2)

    def forward(self, x, attention_mask):
        return self.enc(x, src_key_padding_mask=attention_mask == 0)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_nested_tensor_fast_path_outputs_are_padded_back(hooks, same):
    torch.manual_seed(0)
    model = NestedEncoder().eval()
    x = torch.randn(4, 6, 16)
    mask = torch.ones(4, 6, dtype=torch.long)
    mask[:, 4:] = 0  # every sequence padded: the nested tensors are shorter than the mask
    mask[2, 2:] = 0
    ref = hooks(model, ["enc.layers.0"], lambda: model(x, mask))["enc.layers.0"][0]
    assert ref.is_nested
    ref = torch.nested.to_padded_tensor(ref, 0.0, output_size=(4, 6, 16))
    keep = mask.bool()
    acts = pl.capture(model, [{"x": x, "attention_mask": mask}], layers=["enc.layers.0"], samples="tokens",
                      include_input=False, nonneg="semi", progress=False)
    same(acts["enc.layers.0"], ref[keep])
    flat = pl.capture(model, [{"x": x, "attention_mask": mask}], layers=["enc.layers.0"], include_input=False,
                      nonneg="semi", progress=False)
    assert flat["enc.layers.0"].shape == (6, 16)
    same(flat["enc.layers.0"], ref)


class LSTMThenFunctional(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 5)  # sequence first

    def forward(self, x):  # x: (N, T, 6)
        out, _ = self.lstm(x.transpose(0, 1))
        return torch.relu(out.mean(0))


def test_module_nodes_in_a_traced_capture_are_made_batch_first_too(hooks, same):
    torch.manual_seed(0)
    model = LSTMThenFunctional()
    x = torch.randn(7, 4, 6)
    ref = hooks(model, ["lstm"], lambda: model(x))["lstm"][0]
    acts = pl.capture(model, x, layers=["lstm[0]", "relu"], include_input=False, nonneg="semi", progress=False)
    assert acts.meta["mode"] == "fx"
    same(acts["lstm[0]"], ref[0].transpose(0, 1))
    same(acts["relu"], torch.relu(ref[0].mean(0)))

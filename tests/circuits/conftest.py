"""Fixtures for the circuits tests: tiny models of several architectures and a hand-built
model whose circuit is known exactly."""

from __future__ import annotations

import pytest
import torch

from workbench.models import ModelConfig, to_bridge

TOKEN_WORDS = (["When", "and", "went", "to", "the", "gave", "a", ",", "The", "lasted", "from",
                "year", "17", "01"] + ["store", "garden", "school", "park", "office", "hospital",
                                       "drink", "book", "ring", "ball", "bone", "kiss", "war",
                                       "deal", "trip", "strike", "project", "dynasty"]
               + ["Mary", "John", "Tom", "James", "Dan", "Sid", "Martin", "Amy"]
               + [f"{y:02d}" for y in range(2, 100)])


def save_tiny_tokenizer(path) -> None:
    """A word-level tokenizer (whitespace/punctuation split) saved next to a model."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(dict.fromkeys(TOKEN_WORDS))}
    vocab["<unk>"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>",
                                                eos_token="<unk>", bos_token="<unk>",
                                                pad_token="<unk>")
    fast.save_pretrained(str(path))
    return len(vocab)


@pytest.fixture(scope="session")
def hf_dirs(tmp_path_factory):
    """Tiny randomly initialised GPT-2 and Llama (GQA, rotary, RMSNorm, gated MLP) dirs."""
    import transformers

    root = tmp_path_factory.mktemp("hf")
    n_vocab = len(dict.fromkeys(TOKEN_WORDS)) + 1
    torch.manual_seed(0)
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=n_vocab, n_positions=32, n_embd=32, n_layer=2, n_head=4,
        bos_token_id=0, eos_token_id=0))
    gpt2.save_pretrained(root / "gpt2")
    save_tiny_tokenizer(root / "gpt2")
    llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=n_vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        bos_token_id=0, eos_token_id=0, pad_token_id=0))
    llama.save_pretrained(root / "llama")
    save_tiny_tokenizer(root / "llama")
    return {"gpt2": root / "gpt2", "llama": root / "llama"}


def native(**kw):
    base = dict(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, d_vocab=11,
                d_vocab_out=7, n_ctx=8, init_seed=1)
    base.update(kw)
    return to_bridge(ModelConfig(**base))


TRUE_CIRCUIT = {"tok_embed->a0.g0.v", "a0.h0->a1.g0.v", "a1.h0->logits"}


def hand_built_data(n: int = 64, seed: int = 0):
    """Random clean/corrupted sequences for :func:`hand_built_bridge` (answer: full argmax)."""
    from circuits.datasets import PairDataset
    from circuits.masked_forward import MaskedModel

    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, 8, (n, 6), generator=g)
    corrupted = torch.randint(0, 8, (n, 6), generator=g)
    pos = torch.full((n,), 5)
    answer = MaskedModel(hand_built_bridge())(clean, pos).argmax(-1)
    return PairDataset(name="hand-built", clean=clean, corrupted=corrupted, positions=pos,
                       answer=answer, distractor=torch.full((n,), -1))


def hand_built_bridge():
    cfg, sd = hand_built_weights()
    return to_bridge(cfg, sd)


def hand_built_weights():
    """2 layers x 2 heads, attention only, no norm, uniform attention (W_Q = W_K = 0).

    Tokens are one-hot in dims 0-7; head a0.h0 copies dims 0-7 to 8-15; head a1.h0 copies
    8-15 to 16-23; the unembedding reads only 16-23; every other head writes nothing and
    positions live in dims 24-31. So under interchange ablation the output depends on exactly
    the three edges of ``TRUE_CIRCUIT``.
    """
    cfg = ModelConfig(n_layers=2, attn_only=True, d_vocab=8, d_vocab_out=8, n_ctx=6,
                      d_model=32, n_heads=2, d_head=8)
    eye = torch.eye(8)
    sd = {"tok_embed.weight": torch.cat([4 * eye, torch.zeros(8, 24)], 1),
          "pos.weight": torch.cat([torch.zeros(6, 24), torch.randn(6, 8,
                                   generator=torch.Generator().manual_seed(0))], 1),
          "head.weight": torch.zeros(8, 32)}
    sd["head.weight"][:, 16:24] = 3 * eye
    for layer in range(2):
        p = f"layers.{layer}.attn."
        for name in "qkvo":
            shape = (32, 16) if name == "o" else (16, 32)
            sd[p + name + ".weight"] = torch.zeros(shape)
            sd[p + name + ".bias"] = torch.zeros(32 if name == "o" else 16)
        src = 8 * layer
        sd[p + "v.weight"][0:8, src:src + 8] = eye  # head 0's value reads the source block
        sd[p + "o.weight"][src + 8:src + 16, 0:8] = eye  # and writes the next block
    return cfg, sd


def save_hand_built_run(home, tmp_path):
    """The hand-built model as a stored in-house run, and a JSONL pair task for it."""
    import json

    from workbench.checkpoint import save_checkpoint
    from workbench.store import RunStore

    cfg, sd = hand_built_weights()
    store = RunStore(home)
    vocab = {"input_vocab": [str(i) for i in range(8)],
             "output_vocab": [str(i) for i in range(8)], "layout": "aligned"}
    run = store.create_run(kind="train", task="hand-built",
                           config={"model": cfg.to_dict(), "task": "hand-built"},
                           name="hand-built")
    path = store.run_dir(run.id) / "checkpoints" / "step_1.safetensors"
    save_checkpoint(path, sd, {"step": 1, "model": cfg.to_dict(), "vocab": vocab})
    store.add_artifact(run.id, path, "checkpoint", step=1)
    store.set_status(run.id, "completed")
    data = hand_built_data(64)
    task = tmp_path / "hand_built.jsonl"
    with open(task, "w") as fh:
        for i in range(len(data)):
            fh.write(json.dumps({"clean": [str(t) for t in data.clean[i].tolist()],
                                 "corrupted": [str(t) for t in data.corrupted[i].tolist()],
                                 "answer": str(int(data.answer[i]))}) + "\n")
    return run.id, task

"""Small aligned tasks built by hand for the programs tests (no dependency on generators)."""

from __future__ import annotations

import itertools
import random

import torch

from programs.config import ProgramConfig
from programs.data import ProgramShape
from programs.model import ProgramModel
from training.tasks import Example, TaskData



def fixed_reverse(length: int = 4, vocab: str = "abcd", seed: int = 0,
                  frac_train: float = 0.8) -> TaskData:
    """BOS + every sequence of ``length`` letters; label at position i is the reversed token."""
    bodies = list(itertools.product(vocab, repeat=length))
    random.Random(seed).shuffle(bodies)
    examples = [Example(input=("BOS", *body), output=(None, *reversed(body)))
                for body in bodies]
    cut = int(frac_train * len(examples))
    return TaskData(name="fixed-reverse", train=tuple(examples[:cut]),
                    test=tuple(examples[cut:]), input_vocab=("BOS", *vocab, "PAD"),
                    output_vocab=tuple(vocab), layout="aligned", pad_token="PAD")


SHAPE = ProgramShape(input_vocab=("BOS", "a", "b", "c", "PAD"), output_vocab=("x", "y", "z"),
                     n_ctx=5, width=5)
# the same with "PAD" as the padding token: its positions are never attention keys
PAD_SHAPE = ProgramShape(input_vocab=SHAPE.input_vocab, output_vocab=SHAPE.output_vocab,
                         n_ctx=SHAPE.n_ctx, width=SHAPE.width, pad="PAD")


def random_model(seed: int, *, layers=2, cat_heads=2, num_heads=1, cat_mlps=1, num_mlps=1,
                 causal=False, shape=SHAPE, values=False, features="tents") -> ProgramModel:
    """``values``: numerical heads sum a variable they read (``num_head_values``);
    ``features``: ``num_mlp_features``."""
    cfg = ProgramConfig(n_layers=layers, n_cat_heads=cat_heads, n_num_heads=num_heads,
                        n_cat_mlps=cat_mlps, n_num_mlps=num_mlps, d_mlp=8, causal=causal,
                        num_head_values=values, num_mlp_features=features, seed=seed)
    torch.manual_seed(seed)
    model = ProgramModel(cfg, shape)
    with torch.no_grad():  # sharper logits: more varied programs than a near-uniform init
        for p in model.parameters():
            p.mul_(3.0)
    return model


def random_inputs(seed: int, n: int = 300, shape=SHAPE) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, len(shape.input_vocab), (n, shape.n_ctx), generator=gen)
    x[:, 0] = 0  # BOS first, but BOS may also appear elsewhere: ties get exercised
    return x

"""The training loss: per-token mean (default) and the original code's per-sequence mean."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from programs.data import IGNORE
from programs.train import make_optimizer, make_step, sequence_weights
from programs_helpers import SHAPE, random_inputs, random_model


def test_sequence_weights_give_each_labelled_sequence_equal_total_weight():
    y = torch.tensor([[IGNORE, 1, 2, IGNORE],  # 2 labelled tokens
                      [IGNORE, 0, 0, 1],  # 3
                      [IGNORE, IGNORE, IGNORE, IGNORE]])  # none: weighs nothing
    w = sequence_weights(y).view(4, 3).T  # back to [batch, pos]
    expected = torch.tensor([[0, 1 / 4, 1 / 4, 0], [0, 1 / 6, 1 / 6, 1 / 6], [0, 0, 0, 0]])
    torch.testing.assert_close(w, expected)


def _labels(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Random labels with a random number of unlabelled tail positions per sequence."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, len(SHAPE.output_vocab), x.shape, generator=gen)
    cut = torch.randint(2, x.shape[1] + 1, (len(x), 1), generator=gen)
    y[torch.arange(x.shape[1])[None, :] >= cut] = IGNORE
    y[:, 0] = IGNORE
    return y


@pytest.mark.parametrize("loss_mean", ["token", "sequence"])
def test_step_loss_matches_a_plain_reference(loss_mean):
    model = random_model(0)
    model = type(model)(dataclasses.replace(model.cfg, loss_mean=loss_mean), SHAPE)
    x = random_inputs(1, n=64)
    y = _labels(x, 2)
    torch.manual_seed(5)  # the same Gumbel noise for the step and the reference
    with torch.no_grad():
        logits = model(x, 1.0)  # [batch, pos, d_out]
    losses = F.cross_entropy(logits.transpose(1, 2), y, ignore_index=IGNORE,
                             reduction="none")  # [batch, pos]
    labelled = y != IGNORE
    if loss_mean == "token":
        expected = losses[labelled].mean()
    else:
        expected = (losses.sum(1) / labelled.sum(1)).mean()
    torch.manual_seed(5)
    got = make_step(model, make_optimizer(model, model.cfg))(x, y, 1.0)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)

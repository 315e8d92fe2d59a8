"""From model outputs to the scored mask: top-1 for 1:1, the union above threshold otherwise,
nothing for a negative the model does not fire on."""
from __future__ import annotations

from types import SimpleNamespace

import torch

from model.predict import union_masks


def out(scores, presence=10.0):
    masks = torch.full((1, 3, 4, 4), -10.0)
    masks[0, 0, :2, :2] = 10      # query 0: top-left
    masks[0, 1, 2:, 2:] = 10      # query 1: bottom-right
    masks[0, 2, :, :] = 10        # query 2: everything
    return SimpleNamespace(pred_logits=torch.logit(torch.tensor([scores])), pred_masks=masks,
                           presence_logits=torch.tensor([[presence]]))


def test_one_to_one_takes_the_top_query_whatever_its_score():
    [m] = union_masks(out([0.2, 0.3, 0.1]), [(8, 8)], ["1:1"])
    assert m.shape == (8, 8) and m[4:, 4:].all() and m.sum() == 16


def test_other_cardinalities_take_the_union_above_threshold():
    [m] = union_masks(out([0.9, 0.8, 0.1]), [(8, 8)], ["1:N"])
    assert m.sum() == 32 and m[:4, :4].all() and m[4:, 4:].all()
    [n] = union_masks(out([0.9, 0.8, 0.1], presence=-10.0), [(8, 8)], ["negative"])   # presence says no
    assert not n.any()

"""SAM3-I wiring on the tiny config: exact concept path, identity-but-learning adapters, frozen
base, routing by tier, adapter-only checkpoints and loading a local facebook/sam3-layout folder."""
from __future__ import annotations

import copy

import pytest
import torch
from transformers import Sam3Model

from model.losses import LossWeights, alignment_loss, set_loss
from model.sam3i import TINY_ADAPTERS, AdapterConfig, Sam3I, build_model, load_adapters, load_base, tiny_sam3_config
from model.tokenizer import tokenize

OUTPUTS = ("pred_masks", "pred_logits", "pred_boxes", "presence_logits", "semantic_seg")
TEXTS = ["the black dog left of the bench", "something you can sit on"]


@pytest.fixture(scope="module")
def inputs():
    torch.manual_seed(3)
    ids, am = tokenize(TEXTS)
    return torch.randn(2, 3, 112, 112), ids, am


def fresh():
    base = load_base("tiny", seed=0)
    return copy.deepcopy(base), Sam3I(base, TINY_ADAPTERS)


def targets():
    m1 = torch.zeros(1, 32, 32)
    m1[0, 4:20, 6:18] = 1
    return [{"masks": m1, "boxes": torch.tensor([[6 / 32, 4 / 32, 18 / 32, 20 / 32]])},
            {"masks": torch.zeros(0, 32, 32), "boxes": torch.zeros(0, 4)}]          # a negative


def perturb_adapters(model: Sam3I):
    with torch.no_grad():
        for m in model.adapter_modules():
            for p in m.parameters():
                p.add_(torch.randn_like(p) * 0.05)


def test_concept_path_is_the_base_model_exactly(inputs):
    x, ids, am = inputs
    base, model = fresh()
    perturb_adapters(model)                      # trained adapters must not leak into the concept path
    with torch.no_grad():
        want = base(pixel_values=x, input_ids=ids, attention_mask=am)
        got = model("concept", ids, am, pixel_values=x)
        for tier in ("simple", "complex"):
            other = model(tier, ids, am, pixel_values=x)
            assert not torch.equal(other.pred_masks, want.pred_masks), f"{tier} route ignores its adapters"
    for k in OUTPUTS:
        assert torch.equal(got[k], want[k]), k


def test_adapters_start_as_identity_but_only_last_projections_are_zero(inputs):
    x, ids, am = inputs
    base, model = fresh()
    with torch.no_grad():
        want = base(pixel_values=x, input_ids=ids, attention_mask=am)
        for tier in ("simple", "complex"):
            got = model(tier, ids, am, pixel_values=x)
            for k in OUTPUTS:
                torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-6)
    ad = model.text_s[0]
    assert ad.attn.out_proj.weight.abs().sum() == 0 and ad.mlp.up.weight.abs().sum() == 0
    assert ad.attn.in_proj_weight.abs().sum() > 0 and ad.mlp.down.weight.abs().sum() > 0
    assert model.detr_enc["simple"][0].down.weight.abs().sum() > 0
    for b in ("simple", "complex"):            # mask-predictor copies start as the original
        orig = model.sam3.mask_decoder.original.state_dict()
        assert all(torch.equal(v, orig[k]) for k, v in model.mask_heads[b].state_dict().items())


def test_one_step_gives_every_adapter_weight_a_gradient_and_moves_no_frozen_weight(inputs):
    x, ids, am = inputs
    _, model = fresh()
    frozen_before = {k: v.clone() for k, v in model.sam3.state_dict().items()}
    params = model.set_trainable(model.adapter_modules())
    assert len(model.unused) == 8               # pixel-decoder stage 3 of both copies: unused by SAM3 itself
    assert not any(p.requires_grad for p in model.sam3.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3)
    w = LossWeights()

    def step():
        opt.zero_grad()
        vision = model.vision(x)
        concept = model("concept", ids, am, vision_embeds=vision)["text_embedding"]
        outs = {t: model(t, ids, am, vision_embeds=vision) for t in ("simple", "complex")}
        loss = sum(set_loss(o, targets(), w)[0] for o in outs.values())
        loss = loss + alignment_loss(outs["simple"]["text_embedding"], outs["complex"]["text_embedding"], concept, w)[0]
        loss.backward()
        return loss

    step()
    opt.step()
    step()                                       # the gradients after one optimiser step
    named = {n: p for n, p in model.named_parameters() if not n.startswith("sam3.") and n not in model.unused}
    zero = [n for n, p in named.items() if p.grad is None or p.grad.abs().sum() == 0]
    assert not zero, f"adapter weights without gradient after one step: {zero[:10]}"
    assert len(named) > 100
    after = model.sam3.state_dict()
    changed = [k for k, v in frozen_before.items() if not torch.equal(v, after[k])]
    assert not changed, f"frozen SAM3 weights changed: {changed[:5]}"


def test_zeroing_both_projections_would_leave_gradients_at_zero(inputs):
    """The flaw the reference code has (both projections zero): kept as a guard for our init."""
    x, ids, am = inputs
    _, model = fresh()
    with torch.no_grad():
        for ad in model.text_s:
            ad.mlp.down.weight.zero_()
            ad.mlp.down.bias.zero_()
    out = model("simple", ids, am, pixel_values=x)
    set_loss(out, targets(), LossWeights())[0].backward()
    assert all(ad.mlp.down.weight.grad.abs().sum() == 0 and ad.mlp.up.weight.grad.abs().sum() == 0 for ad in model.text_s)


def test_adapter_checkpoint_round_trip(tmp_path, inputs):
    x, ids, am = inputs
    _, model = fresh()
    perturb_adapters(model)
    model.save_adapters(tmp_path / "a.pt")
    ckpt = torch.load(tmp_path / "a.pt", weights_only=False)
    assert not any(k.startswith("sam3.") for k in ckpt["adapters"])          # adapters only
    n_adapter = sum(v.numel() for v in ckpt["adapters"].values())
    assert n_adapter < sum(p.numel() for p in model.parameters()) / 2
    _, other = fresh()
    load_adapters(other, tmp_path / "a.pt")
    with torch.no_grad():
        assert torch.equal(model("complex", ids, am, pixel_values=x).pred_masks,
                           other("complex", ids, am, pixel_values=x).pred_masks)
    wrong = Sam3I(load_base("tiny"), AdapterConfig(text_bottleneck=8, text_heads=2, detr_bottleneck=8))
    with pytest.raises(ValueError, match="adapters were built with"):
        load_adapters(wrong, tmp_path / "a.pt")


def test_stage2_copies_simple_into_the_cascade(inputs):
    _, model = fresh()
    perturb_adapters(model)
    model.copy_simple_into_complex()
    for a, b in ((model.text_s, model.text_cs), (model.detr_dec["simple"], model.detr_dec["complex"]),
                 (model.mask_heads["simple"], model.mask_heads["complex"])):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_loads_a_local_sam3_folder_and_never_a_hub_name(tmp_path, inputs):
    x, ids, am = inputs
    torch.manual_seed(5)
    saved = Sam3Model(tiny_sam3_config()).eval()
    saved.save_pretrained(tmp_path / "sam3")                 # config.json + model.safetensors
    assert (tmp_path / "sam3" / "model.safetensors").exists()
    model = build_model(str(tmp_path / "sam3"), TINY_ADAPTERS)
    with torch.no_grad():
        assert torch.equal(model("concept", ids, am, pixel_values=x).pred_masks,
                           saved(pixel_values=x, input_ids=ids, attention_mask=am).pred_masks)
    with pytest.raises(FileNotFoundError, match="local path only"):
        load_base("facebook/sam3")


def test_unknown_tier_is_refused(inputs):
    x, ids, am = inputs
    _, model = fresh()
    with pytest.raises(ValueError, match="tier must be one of"):
        model("reasoning", ids, am, pixel_values=x)

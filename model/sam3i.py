"""SAM3-I: instruction adapters on a frozen `transformers.Sam3Model`.

Three routes through one model, chosen by the caller's tier (the model never guesses it):
  concept -> the untouched SAM3 path (no adapter runs; output equals Sam3Model's bit for bit)
  simple  -> S-adapters in the text encoder, the simple DETR adapters and mask-predictor copy
  complex -> its own copy of S (copied in at stage 2), then the C-adapters, the complex DETR
             adapters and mask-predictor copy
Text adapters sit on the residual stream after self-attention in every CLIP block: pre-norm
multi-head attention, then a pre-norm bottleneck (d -> r -> d, GELU), both residual. DETR
encoder and decoder layers get a residual bottleneck on their output. Each adapter starts as the
identity by zeroing only its last projection (attention out_proj, bottleneck up): the other
weights keep their random init, so gradients reach them from the second step on (zeroing both
projections would leave the first one's gradient zero for ever).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import Sam3Config, Sam3Model

TIERS = ("concept", "simple", "complex")
BRANCHES = ("simple", "complex")


@dataclass
class AdapterConfig:
    text_bottleneck: int = 64
    text_heads: int = 4
    detr_bottleneck: int = 64


class Bottleneck(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.down = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(x)))


class TextAdapter(nn.Module):
    """x + MHA(LN(x)), then + Bottleneck(LN(.)); identity at init (zeroed out_proj and up)."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        nn.init.zeros_(self.attn.out_proj.weight)
        nn.init.zeros_(self.attn.out_proj.bias)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = Bottleneck(dim, hidden)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
        h = self.attn_norm(x)
        x = x + self.attn(h, h, h, key_padding_mask=pad_mask, need_weights=False)[0]
        return x + self.mlp(self.mlp_norm(x))


class _AdaptedClipLayer(nn.Module):
    """A CLIP text block with the route's adapters after self-attention.

    Same operations in the same order as CLIPEncoderLayer.forward, so the concept route is exact."""

    def __init__(self, layer: nn.Module, index: int, owner: "Sam3I"):
        super().__init__()
        self.layer = layer
        self.index = index
        object.__setattr__(self, "_owner", owner)        # a back-reference, not a submodule

    def forward(self, hidden_states, attention_mask=None, **kwargs):
        layer = self.layer
        residual = hidden_states
        h = layer.layer_norm1(hidden_states)
        h, _ = layer.self_attn(hidden_states=h, attention_mask=attention_mask, **kwargs)
        h = residual + h
        h = self._owner._adapt_text(self.index, h)
        residual = h
        h = layer.layer_norm2(h)
        h = layer.mlp(h)
        return residual + h


class _MaskRouter(nn.Module):
    """Stands in for Sam3Model.mask_decoder: the original for concept, a branch copy otherwise."""

    def __init__(self, original: nn.Module, owner: "Sam3I"):
        super().__init__()
        self.original = original
        object.__setattr__(self, "_owner", owner)

    def forward(self, *args, **kwargs):
        tier = self._owner.tier
        head = self.original if tier == "concept" else self._owner.mask_heads[tier]
        return head(*args, **kwargs)


class Sam3I(nn.Module):
    def __init__(self, sam3: Sam3Model, adapter: AdapterConfig | None = None):
        super().__init__()
        self.adapter_config = adapter or AdapterConfig()
        a = self.adapter_config
        cfg = sam3.config
        self.sam3 = sam3
        self.tier = "concept"
        self._pad_mask: torch.Tensor | None = None
        for p in sam3.parameters():
            p.requires_grad_(False)

        text_layers = sam3.text_encoder.text_model.encoder.layers
        d_text, d_detr = cfg.text_config.hidden_size, cfg.detr_encoder_config.hidden_size
        heads = a.text_heads if d_text % a.text_heads == 0 else 1

        def text_stack():
            return nn.ModuleList(TextAdapter(d_text, heads, a.text_bottleneck) for _ in text_layers)

        def detr_stack(n):
            return nn.ModuleDict({b: nn.ModuleList(Bottleneck(d_detr, a.detr_bottleneck) for _ in range(n))
                                  for b in BRANCHES})

        # the trainable parts (everything outside self.sam3)
        self.text_s = text_stack()          # simple route
        self.text_cs = text_stack()         # the complex route's copy of S (stage 2 copies S in)
        self.text_c = text_stack()          # the C-adapters stacked on it
        self.detr_enc = detr_stack(len(sam3.detr_encoder.layers))
        self.detr_dec = detr_stack(len(sam3.detr_decoder.layers))
        self.mask_heads = nn.ModuleDict({b: copy.deepcopy(sam3.mask_decoder) for b in BRANCHES})
        # SAM3 feeds its pixel decoder one level fewer than it has upsampling stages, so the last
        # stage's weights are never used (in SAM3 too): keep them out of training and the checks.
        used = len(cfg.vision_config.scale_factors) - 2
        self.unused = {f"mask_heads.{b}.pixel_decoder.{part}.{i}.{w}" for b in BRANCHES
                       for part in ("conv_layers", "norms") for w in ("weight", "bias")
                       for i in range(used, cfg.mask_decoder_config.num_upsampling_stages)}

        for i in range(len(text_layers)):
            text_layers[i] = _AdaptedClipLayer(text_layers[i], i, self)
        for i, layer in enumerate(sam3.detr_encoder.layers):
            layer.register_forward_hook(self._detr_hook(self.detr_enc, i))
        for i, layer in enumerate(sam3.detr_decoder.layers):
            layer.register_forward_hook(self._detr_hook(self.detr_dec, i))
        sam3.mask_decoder = _MaskRouter(sam3.mask_decoder, self)

    # -- routing ---------------------------------------------------------------------------------
    def _adapt_text(self, i: int, h: torch.Tensor) -> torch.Tensor:
        if self.tier == "simple":
            return self.text_s[i](h, self._pad_mask)
        if self.tier == "complex":
            return self.text_c[i](self.text_cs[i](h, self._pad_mask), self._pad_mask)
        return h

    def _detr_hook(self, stacks: nn.ModuleDict, i: int):
        def hook(module, args, output):
            if self.tier == "concept":
                return None
            return output + stacks[self.tier][i](output)
        return hook

    def branch_modules(self, branch: str) -> list[nn.Module]:
        """What stage training of `branch` updates (stage 1: simple, stage 2: complex)."""
        text = [self.text_s] if branch == "simple" else [self.text_c]
        return text + [self.detr_enc[branch], self.detr_dec[branch], self.mask_heads[branch]]

    def set_trainable(self, modules: list[nn.Module]) -> list[nn.Parameter]:
        """Train exactly these adapter modules (minus weights the forward never uses)."""
        for m in self.adapter_modules():
            m.requires_grad_(False)
        for m in modules:
            m.requires_grad_(True)
        for name, p in self.named_parameters():
            if name in self.unused:
                p.requires_grad_(False)
        return [p for p in self.parameters() if p.requires_grad]

    def adapter_modules(self) -> list[nn.Module]:
        return [self.text_s, self.text_cs, self.text_c, self.detr_enc, self.detr_dec, self.mask_heads]

    def copy_simple_into_complex(self) -> None:
        """Stage 2 start: the cascade's S, DETR adapters and mask head begin as the trained simple ones."""
        self.text_cs.load_state_dict(self.text_s.state_dict())
        self.detr_enc["complex"].load_state_dict(self.detr_enc["simple"].state_dict())
        self.detr_dec["complex"].load_state_dict(self.detr_dec["simple"].state_dict())
        self.mask_heads["complex"].load_state_dict(self.mask_heads["simple"].state_dict())

    # -- forward ---------------------------------------------------------------------------------
    def vision(self, pixel_values: torch.Tensor):
        """The frozen image encoder's features (shared by every tier of one image)."""
        with torch.no_grad():
            return self.sam3.get_vision_features(pixel_values=pixel_values)

    def forward(self, tier: str, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                pixel_values: torch.Tensor | None = None, vision_embeds=None):
        """Sam3Model's output for the route of `tier`, plus `text_embedding` [B, d] (masked mean
        of the projected text features) for the stage-3 alignment losses."""
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}, got {tier!r}")
        self.tier, self._pad_mask = tier, attention_mask == 0
        try:
            text = self.sam3.get_text_features(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
            out = self.sam3(pixel_values=pixel_values, vision_embeds=vision_embeds, text_embeds=text,
                            attention_mask=attention_mask)
        finally:
            self.tier, self._pad_mask = "concept", None
        m = attention_mask.unsqueeze(-1).to(text.pooler_output.dtype)
        out["text_embedding"] = (text.pooler_output * m).sum(1) / m.sum(1).clamp(min=1)
        return out

    # -- adapter checkpoints ---------------------------------------------------------------------
    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("sam3.")}

    def load_adapter_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        want = set(self.adapter_state_dict())
        if set(state) != want:
            missing, extra = sorted(want - set(state)), sorted(set(state) - want)
            raise ValueError(f"adapter checkpoint does not fit this model: missing {missing[:5]}, "
                             f"unexpected {extra[:5]}")
        self.load_state_dict(state, strict=False)

    def save_adapters(self, path: str | Path, extra: dict | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save({"adapters": self.adapter_state_dict(), "adapter_config": asdict(self.adapter_config),
                    "sam3_config": self.sam3.config.to_dict(), **(extra or {})}, tmp)
        tmp.replace(path)                       # a kill mid-save leaves the previous file whole


def load_adapters(model: Sam3I, path: str | Path) -> dict:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if ckpt.get("adapter_config") != asdict(model.adapter_config):
        raise ValueError(f"{path}: adapters were built with {ckpt.get('adapter_config')}, "
                         f"this model has {asdict(model.adapter_config)}")
    model.load_adapter_state_dict(ckpt["adapters"])
    return ckpt


# ---- the base model ------------------------------------------------------------------------------
def tiny_sam3_config(image_size: int = 112, hidden: int = 32, queries: int = 16, init_std: float = 0.25) -> Sam3Config:
    """A small random SAM3 (2 layers everywhere, hidden 32) for tests and CPU runs. The text
    encoder keeps the real vocabulary (49,408) and context (32) so the real tokenizer fits.

    Weights are drawn with std `init_std` instead of SAM3's 0.02: at width 32 the frozen
    presence, box and scoring heads would otherwise give near-constant outputs (presence logit
    ~ -6e-4 for every input), which no adapter could move, so a tiny model could never predict."""
    patches = image_size // 14
    small = dict(hidden_size=hidden, intermediate_size=2 * hidden, num_attention_heads=2, initializer_range=init_std)
    return Sam3Config(
        initializer_range=init_std,
        vision_config=dict(
            backbone_config=dict(model_type="sam3_vit_model", num_hidden_layers=2, image_size=image_size,
                                 patch_size=14, window_size=max(1, patches // 2), global_attn_indexes=[1],
                                 pretrain_image_size=image_size, **small),
            fpn_hidden_size=hidden, initializer_range=init_std,
            backbone_feature_sizes=[[patches * 4] * 2, [patches * 2] * 2, [patches] * 2]),
        text_config=dict(num_hidden_layers=2, projection_dim=hidden, **small),
        geometry_encoder_config=dict(num_layers=1, **small),
        detr_encoder_config=dict(num_layers=2, **small),
        detr_decoder_config=dict(num_layers=2, num_queries=queries, **small),
        mask_decoder_config=dict(hidden_size=hidden, num_attention_heads=2, initializer_range=init_std),
    )


TINY_ADAPTERS = AdapterConfig(text_bottleneck=16, text_heads=2, detr_bottleneck=16)


def load_base(source: str, seed: int = 0) -> Sam3Model:
    """`tiny` / `full` (random weights, seeded) or a local folder in the facebook/sam3 layout
    (config.json + model.safetensors). Never downloads: the folder must exist."""
    if source in ("tiny", "full"):
        torch.manual_seed(seed)
        return Sam3Model(tiny_sam3_config() if source == "tiny" else Sam3Config()).eval()
    folder = Path(source)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{source}: not a local SAM3 checkpoint folder (no config.json); weights load "
                                f"from a local path only, e.g. a copy of facebook/sam3")
    return Sam3Model.from_pretrained(str(folder), local_files_only=True).eval()


def build_model(base: str = "tiny", adapter: AdapterConfig | None = None, seed: int = 0) -> Sam3I:
    sam3 = load_base(base, seed)
    if adapter is None:
        adapter = TINY_ADAPTERS if base == "tiny" else AdapterConfig()
    torch.manual_seed(seed + 1)
    return Sam3I(sam3, adapter)


def image_size(model: Sam3I) -> int:
    size = model.sam3.config.vision_config.backbone_config.image_size
    return int(size[0] if isinstance(size, (list, tuple)) else size)

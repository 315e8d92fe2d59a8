"""The `mllm_choice` checker: a second model answers a multiple-choice question, "which of these
regions does this instruction refer to?" (the SAM3-I data engine's consistency check).

For a candidate text and its spec the checker builds numbered options: the target set as one
option, distractor regions (other instances of the target's category first, then the largest
others; for a group target also the whole category, the rest of it, its single members and
other categories' groups; for a negative the instances nearest the absent concept), and a last
option "none of these", the right answer for a negative. Region options are shuffled with a seed
from (check.mllm.seed, spec id), so every round of a spec sees the same question; the mapping
(option -> instance ids), the target option and the answer go into the result's `detail`.

Each option is described by its facts (category, colour, size, position, box); with
check.mllm.send_image the photo goes along with each region outlined in its option's colour
and labelled with its number. The answer is constrained to {"choice": <option number>} (a JSON
schema whose enum is the option numbers). Pass iff the answer is the target option; fail with
a reason naming the option picked; unverifiable when the answer is not an option number.
Server errors raise (engine.generate.llm_client): the unit fails and is retried, not silently passed.
"""
from __future__ import annotations

import copy
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from string import Template

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from engine.checks.base import CheckResult
from engine.config import MLLMChoiceConfig
from engine.generate.base import SpecView
from engine.generate.prompt import read_prompt_file
from engine.sources.imageio import load_rgb
from engine.lexicon import Lexicon, load_lexicon
from engine.generate.llm_client import (
    UnitImages,
    ChatClient,
    derive_seed,
    jpeg_data_url,
    parse_json_answer,
    structured_output,
)
from engine.language.programs import Scene

NONE_TEXT = "none of these: the instruction matches nothing in the image"
MAX_MEMBERS_LISTED = 8       # a group option lists this many members; more would drown the question
# outline colours, in option order; distinct on photos and nameable in the prompt
COLOURS = (("red", (230, 25, 75)), ("blue", (0, 130, 200)), ("green", (60, 180, 75)),
           ("yellow", (255, 225, 25)), ("magenta", (240, 50, 230)), ("cyan", (70, 240, 240)),
           ("orange", (245, 130, 48)), ("white", (255, 255, 255)))


# ---- the prompt file ------------------------------------------------------------------------------
class ChoicePromptFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str
    json_schema: dict = Field(alias="schema")
    system: str
    user: str
    image_note: str = ""


_PLACEHOLDERS = {"instruction": "", "options": "", "image_note": ""}


def load_choice_prompt(version: str, prompt_dir: str | Path | None = None) -> ChoicePromptFile:
    """engine/prompts/<version>.yaml (or <prompt_dir>/<version>.yaml); its `version` must match."""
    data, path = read_prompt_file(version, prompt_dir, ChoicePromptFile, "choice prompt file")
    if "choice" not in data.json_schema.get("properties", {}):
        raise ValueError(f"{path}: the schema has no `choice` property")
    for name in ("system", "user"):
        try:
            Template(getattr(data, name)).substitute(_PLACEHOLDERS)
        except (KeyError, ValueError) as e:
            raise ValueError(f"{path}: template {name!r} has an unknown or bad placeholder: {e}") from None
    return data


# ---- the question ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    number: int
    ids: tuple[str, ...]          # () = "none of these"
    text: str                     # what the model reads
    short: str                    # what a rejection reason says


@dataclass(frozen=True)
class Question:
    options: tuple[Option, ...]
    target: int                   # the right answer's option number

    @property
    def numbers(self) -> list[int]:
        return [o.number for o in self.options]

    def option(self, number: int) -> Option:
        return self.options[number - 1]

    def mapping(self) -> dict[str, list[str]]:
        return {str(o.number): list(o.ids) for o in self.options}


def _unique(regions: list[tuple[str, ...]], exclude: tuple[str, ...]) -> list[tuple[str, ...]]:
    seen, out = {exclude, ()}, []
    for r in regions:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


def distractor_regions(spec: SpecView, scene: Scene) -> list[tuple[str, ...]]:
    """Wrong answers, most confusable first (see the module docstring)."""
    inst = scene.instances
    targets = tuple(sorted(spec.target_ids))
    if targets:
        cats = {inst[t]["category"] for t in targets}
        supers: set = set()
    else:                                 # a negative: the concept it describes is absent
        c, s = spec.program.get("category"), spec.program.get("supercategory")
        cats = {c.value} if c else set()
        supers = {s.value} if s else set()

    def bigger_first(ids):
        return sorted(ids, key=lambda i: (-float(inst[i].get("area") or 0), i))

    others = [i for i in inst if i not in targets]
    same = bigger_first(i for i in others if inst[i]["category"] in cats)
    related = bigger_first(i for i in others if inst[i]["category"] not in cats and inst[i]["supercategory"] in supers)
    rest = bigger_first(i for i in others if i not in same and i not in related)
    regions: list[tuple[str, ...]] = []
    if len(targets) > 1:                  # a group: the wrong group is the likely mistake
        regions.append(tuple(sorted(i for i in inst if inst[i]["category"] in cats and not inst[i]["iscrowd"])))
        regions.append(tuple(sorted(i for i in same if not inst[i]["iscrowd"])))
        regions += [(i,) for i in bigger_first(targets)]
        by_cat: dict[str, list[str]] = {}
        for i in rest:
            if not inst[i]["iscrowd"]:
                by_cat.setdefault(inst[i]["category"], []).append(i)
        regions += [tuple(sorted(g)) for g in sorted(by_cat.values(), key=lambda g: (-len(g), g)) if len(g) > 1]
    regions += [(i,) for i in same + related + rest]
    return _unique(regions, targets)


def build_question(spec: SpecView, scene: Scene, lexicon: Lexicon, distractors: int, seed: int,
                   colours: bool = False, no_color: frozenset[str] = frozenset({"person"})) -> Question:
    """Numbered options: the target (if any) and `distractors` wrong regions in a seeded order,
    then "none of these". Instances of a `no_color` supercategory are described without their
    dominant colour (a person's mixes skin, hair and clothes; see PlanConfig)."""
    for i in spec.target_ids:
        if i not in scene.instances:
            raise KeyError(f"spec {spec.spec_id}: target {i!r} is not in the scene of image {scene.image_id!r}")
    target = tuple(sorted(spec.target_ids))
    regions = ([target] if target else []) + distractor_regions(spec, scene)[:distractors]
    random.Random(derive_seed(seed, spec.spec_id, "options")).shuffle(regions)
    options = []
    for k, ids in enumerate(regions, start=1):
        text = _region_text(ids, scene, lexicon, no_color)
        if colours:
            text += f" [outlined in {COLOURS[(k - 1) % len(COLOURS)][0]}, labelled {k}]"
        options.append(Option(k, ids, text, _region_short(ids, scene, lexicon, no_color)))
    options.append(Option(len(options) + 1, (), NONE_TEXT, "none of these"))
    answer = regions.index(target) + 1 if target else len(options)
    return Question(tuple(options), answer)


def _colour(f: dict, no_color: frozenset[str]) -> str | None:
    return None if f.get("supercategory") in no_color else f["color"]


def _one(iid: str, scene: Scene, lexicon: Lexicon, no_color: frozenset[str]) -> str:
    f = scene.instances[iid]
    colour = _colour(f, no_color)
    parts = [lexicon.noun(f["category"]) + (" (a crowd of them)" if f.get("iscrowd") else "")]
    parts += [f"colour {colour}"] if colour else []
    parts += [f"size {f['size_label']}", f"at {f['pos_x']} / {f['pos_y']}"]
    if all(f.get(k) is not None for k in ("x0", "y0", "x1", "y1")):
        parts.append(f"box x {f['x0']:.2f}-{f['x1']:.2f}, y {f['y0']:.2f}-{f['y1']:.2f}")
    return ", ".join(parts)


def _region_text(ids: tuple[str, ...], scene: Scene, lexicon: Lexicon, no_color: frozenset[str]) -> str:
    if len(ids) == 1:
        return "the " + _one(ids[0], scene, lexicon, no_color)
    listed = [f"({_one(i, scene, lexicon, no_color)})" for i in ids[:MAX_MEMBERS_LISTED]]
    more = f" and {len(ids) - MAX_MEMBERS_LISTED} more" if len(ids) > MAX_MEMBERS_LISTED else ""
    return f"a group of {len(ids)}, all together: " + "; ".join(listed) + more


def _region_short(ids: tuple[str, ...], scene: Scene, lexicon: Lexicon, no_color: frozenset[str]) -> str:
    shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
    if len(ids) == 1:
        f = scene.instances[ids[0]]
        what = " ".join(w for w in (_colour(f, no_color), lexicon.noun(f["category"])) if w)
        return f"the {what} at {f['pos_x']} / {f['pos_y']} ({shown})"
    cats = sorted({scene.instances[i]["category"] for i in ids})
    what = lexicon.plural(cats[0]) if len(cats) == 1 else "objects"
    return f"the group of {len(ids)} {what} ({shown})"


def parse_choice(content: str | None, numbers: list[int]) -> int | None:
    data = parse_json_answer(content)
    value = data.get("choice") if isinstance(data, dict) else None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in numbers:
        return value
    return None


# ---- the checker ----------------------------------------------------------------------------------
class MLLMChoiceChecker:
    name = "mllm_choice"

    def __init__(self, cfg: MLLMChoiceConfig, lexicon: Lexicon | None = None, load=load_rgb,
                 base_url: str | None = None, no_color_supercategories=("person",), http=None):
        self.cfg = cfg
        self.no_color = frozenset(no_color_supercategories)
        self.lexicon = lexicon or load_lexicon()
        self.prompt = load_choice_prompt(cfg.prompt_version, cfg.prompt_dir)
        self.prompt_version = self.prompt.version
        self.load = load
        base = base_url or cfg.base_url
        if http is None and not base:
            raise ValueError("the mllm_choice checker needs check.mllm.base_url (or generate.base_url)")
        # `http`: a ready client (engine.generate.replicas.ReplicaClient over the build's engines)
        self.http = http or ChatClient.from_config(cfg, base)
        self._lock = threading.Lock()
        self.model = cfg.model or self.http.first_model("set check.mllm.model")
        self.requests = 0
        self.unit_images = UnitImages(load, "check.mllm.send_image")

    def close(self) -> None:
        self.http.close()

    def bind_unit(self, images: pd.DataFrame, instances: pd.DataFrame) -> None:
        """The unit's images and instances, for check.mllm.send_image."""
        self.unit_images.bind(images, instances)

    def question(self, spec: SpecView, scene: Scene) -> Question:
        return build_question(spec, scene, self.lexicon, self.cfg.distractors, self.cfg.seed, self.cfg.send_image,
                              self.no_color)

    def request_body(self, text: str, spec: SpecView, q: Question) -> dict:
        p = self.prompt
        options = "\n".join(f"{o.number}. {o.text}" for o in q.options)
        user = Template(p.user).substitute(instruction=text.replace('"', "'"), options=options,
                                           image_note=p.image_note if self.cfg.send_image else "")
        content: str | list = user
        if self.cfg.send_image:
            content = [{"type": "text", "text": user},
                       {"type": "image_url", "image_url": {"url": self.image_url(spec, q)}}]
        schema = copy.deepcopy(p.json_schema)
        schema["properties"]["choice"]["enum"] = q.numbers
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": Template(p.system).substitute(_PLACEHOLDERS)},
                         {"role": "user", "content": content}],
            "temperature": self.cfg.temperature,
            "max_tokens": self.cfg.max_tokens,
            "seed": derive_seed(self.cfg.seed, spec.spec_id, text),
        }
        return body | structured_output(self.cfg.structured_output, "choice", schema)

    def check(self, text: str, spec: SpecView, scene: Scene) -> CheckResult:
        q = self.question(spec, scene)
        message = self.http.chat(self.request_body(text, spec, q))
        with self._lock:                 # specs may be checked in threads (generate.concurrency)
            self.requests += 1
        content = message.get("content") if isinstance(message, dict) else None
        choice = parse_choice(content, q.numbers)
        detail = {"options": q.mapping(), "target": q.target, "choice": choice, "model": self.model,
                  "prompt_version": self.prompt_version}
        if choice is None:
            return CheckResult(self.name, "unverifiable",
                               f"the model's answer is not one of options {q.numbers}: {str(content)[:120]!r}", detail)
        picked = f"picked option {choice}: {q.option(choice).short}"
        if choice == q.target:
            return CheckResult(self.name, "pass", picked, detail)
        right = q.option(q.target)
        if not right.ids:
            return CheckResult(self.name, "fail", f"{picked}; nothing in the image should match "
                                                  f"(option {right.number}, none of these)", detail)
        return CheckResult(self.name, "fail", f"{picked}; the target is option {right.number}: {right.short}", detail)

    # -- the picture (check.mllm.send_image) ---------------------------------------------------
    def image_url(self, spec: SpecView, q: Question) -> str:
        rgb = self.unit_images.pixels(spec.image_id, spec.spec_id)
        h, w = rgb.shape[:2]
        regions = [(o.number, COLOURS[(o.number - 1) % len(COLOURS)][1],
                    [self.unit_images.mask(i, h, w) for i in o.ids]) for o in q.options if o.ids]
        return jpeg_data_url(outline_regions(rgb, regions))


def _edge(mask: np.ndarray, width: int) -> np.ndarray:
    """The band of `width` pixels inside the mask's border."""
    inner = mask.copy()
    for _ in range(width):
        shrunk = inner.copy()
        shrunk[1:] &= inner[:-1]
        shrunk[:-1] &= inner[1:]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    return mask & ~inner


def outline_regions(rgb: np.ndarray, regions: list[tuple[int, tuple[int, int, int], list[np.ndarray]]]) -> np.ndarray:
    """The photo with each mask outlined in its colour and a numbered label at its top-left."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = rgb.shape[:2]
    out = rgb.copy()
    width = max(2, round(max(h, w) / 250))
    for _, colour, masks in regions:
        for m in masks:
            out[_edge(m, width)] = colour
    img = Image.fromarray(out)
    draw = ImageDraw.Draw(img)
    size = max(12, round(max(h, w) / 40))
    try:
        font = ImageFont.load_default(size=size)
    except (TypeError, OSError):         # Pillow without FreeType: the fixed bitmap font
        font = ImageFont.load_default()
    placed: dict[tuple[int, int], int] = {}     # label anchor -> labels there already
    for number, colour, masks in regions:
        for m in masks:
            ys, xs = np.nonzero(m)
            if not len(xs):
                continue
            # above the region's top-left corner, so the label hides the object's border, not
            # the object; a region in several options (a group and its member) gets its labels
            # side by side
            tw, th = (lambda b: (b[2] - b[0] + 4, b[3] - b[1] + 4))(draw.textbbox((0, 0), str(number), font=font))
            anchor = (int(xs.min()), int(ys.min()))
            k = placed.get(anchor, 0)
            placed[anchor] = k + 1
            x = min(max(0, anchor[0] + k * (tw + 2)), max(0, w - tw))
            y = anchor[1] - th - 1 if anchor[1] >= th + 1 else min(int(ys.max()) + 2, max(0, h - th))
            draw.rectangle((x, y, x + tw, y + th), fill=colour)
            left, top = draw.textbbox((0, 0), str(number), font=font)[:2]
            draw.text((x + 2 - left, y + 2 - top), str(number), fill=(0, 0, 0), font=font)
    return np.asarray(img)

"""Garment and posture constraints: what people wear and how they are posed (engine.scene.people).

Values:
- garment: "<region>:<colour>", region upper (top, shirt), lower (trousers) or all (dressed
  in one colour: both regions). Exact: the region's garment colour is that colour.
  Or "outfit:<tone>", tone dark | light ("in dark clothes"): the decided outfit tone.
- posture: standing | sitting | lying. Exact: the decided posture.

Margins (the rule of engine.language.margins): *sure* when the fact is decided and is the
value; *maybe* for any person whose region a viewer might read as that colour: the colour, or a
look-alike that is its dominant colour (COLOR_NEIGHBOURS), holds a clear share of what it wears
there, or nothing is known about it at all. A person with no garment facts of its own (a crowd
region, too small to read) may be wearing anything. An outfit tone is maybe for a person with
TONE_MAYBE of its outfit in that tone, or a region's colour of that tone (a black top is dark,
a white one light), or no tone facts at all. A posture is maybe wherever the mask does
not rule it out. Things that are not people never wear or sit.
"""
from __future__ import annotations

from engine.scene.people import parse_hist

REGIONS = ("upper", "lower", "all")
TONES = ("dark", "light")
TONE_MAYBE = 0.3         # a distractor with this share of its outfit in a tone may be read as dressed in it
TONE_OF_COLOR = {"black": "dark", "white": "light"}   # a garment of this colour is of this tone
MAYBE_SHARE = 0.2        # a distractor with this share of the colour in a region may be read as wearing it
MAYBE_NEIGHBOUR = 0.35   # ... or a look-alike colour with this share as its main colour there
MAYBE_DILUTED = 0.08     # ... or, where no torso band was found (its histogram is of the whole body
                         # below the head, legs and hair too), this share: a green shirt under an open hoodie


def is_person(f: dict) -> bool:
    return f.get("supercategory") == "person"


def _regions(value: str) -> tuple[tuple[str, ...], str]:
    region, color = str(value).split(":", 1)
    if region not in REGIONS:
        raise ValueError(f"unknown garment region {region!r} in {value!r}")
    return (("upper", "lower") if region == "all" else (region,)), color


def _tone_margin(f: dict, tone: str) -> tuple[bool, bool]:
    if tone not in TONES:
        raise ValueError(f"unknown outfit tone {tone!r}")
    sure = f.get("outfit_tone") == tone
    hist = parse_hist(f.get("tone_hist"))
    maybe = sure or not hist or hist.get(tone, 0.0) >= TONE_MAYBE or any(
        TONE_OF_COLOR.get(f.get(f"{r}_color") or "") == tone for r in ("upper", "lower"))
    return sure, maybe


def garment_exact(f: dict, value: str) -> bool:
    if str(value).startswith("outfit:"):
        return is_person(f) and f.get("outfit_tone") == str(value).split(":", 1)[1]
    regions, color = _regions(value)
    return is_person(f) and all(f.get(f"{r}_color") == color for r in regions)


def garment_margin(f: dict, value: str) -> tuple[bool, bool]:
    from engine.language.margins import COLOR_NEIGHBOURS
    if not is_person(f):
        return False, False
    if f.get("iscrowd"):
        return False, True
    if str(value).startswith("outfit:"):
        return _tone_margin(f, str(value).split(":", 1)[1])
    regions, color = _regions(value)
    sure = garment_exact(f, value)

    def may(region: str) -> bool:
        if f.get(f"{region}_color") == color:
            return True
        hist = parse_hist(f.get(f"{region}_hist"))
        if not hist:
            return True
        top = max(hist, key=hist.get)
        need = MAYBE_DILUTED if not f.get(f"{region}_frac") else MAYBE_SHARE
        return hist.get(color, 0.0) >= need or (
            top in COLOR_NEIGHBOURS.get(color, ()) and hist[top] >= MAYBE_NEIGHBOUR)
    # "dressed in white": someone in a white top and dark trousers might be taken for it too
    maybe = sure or any(may(r) for r in regions)
    return sure, maybe


def posture_exact(f: dict, value: str) -> bool:
    return is_person(f) and f.get("posture") == value


def posture_margin(f: dict, value: str) -> tuple[bool, bool]:
    if not is_person(f):
        return False, False
    sure = posture_exact(f, value)
    maybe_set = f.get("posture_maybe")
    maybe = sure or maybe_set is None or value in str(maybe_set).split(",") or bool(f.get("iscrowd"))
    return sure, maybe


# ---- planning --------------------------------------------------------------------------------

KINDS = ("garment", "posture")
GROUP = 4                 # this many people or more: a row a viewer cannot count at a glance


SAME_LEVEL = 0.5          # people whose heights overlap by this share of the shorter one stand at one level


def same_level(f: dict, scene) -> bool:
    """Another person spans much of the same height of the picture: "halfway up" or "at the
    bottom" does not tell them apart for a viewer (three people side by side, one stepping
    forward, whose centres fall in different bins)."""
    if f.get("y0") is None or f.get("y1") is None:
        return False
    h = float(f["y1"]) - float(f["y0"])
    for g in scene.instances.values():
        if g["instance_id"] == f["instance_id"] or not is_person(g) or g.get("iscrowd") or g.get("y0") is None:
            continue
        overlap = min(float(f["y1"]), float(g["y1"])) - max(float(f["y0"]), float(g["y0"]))
        if overlap >= SAME_LEVEL * min(h, float(g["y1"]) - float(g["y0"])):
            return True
    return False


def atoms(f: dict) -> list:
    """Garment and posture constraints a person's facts support (none for anything else)."""
    from engine.language.programs import Constraint as C
    if not is_person(f) or f.get("iscrowd"):
        return []
    out = []
    up, low = f.get("upper_color") or "", f.get("lower_color") or ""
    if up and up == low:
        out.append(C("garment", f"all:{up}"))
    if up:
        out.append(C("garment", f"upper:{up}"))
    if low:
        out.append(C("garment", f"lower:{low}"))
    if f.get("outfit_tone"):
        out.append(C("garment", f"outfit:{f['outfit_tone']}"))
    if f.get("posture"):
        out.append(C("posture", f["posture"]))
    return out


def worn(programs: list) -> list:
    """The programs that say what a person wears or how they are posed."""
    return [p for p in programs if set(p.kinds()) & set(KINDS)]


def prefer(programs: list, scene) -> list:
    """A person's simple programs, what they wear or do first. Among GROUP or more people an
    ordinal past the first ("the third person from the right") is dropped: people in a row are
    where viewers miscount. Where clothing or posture tells the person apart, programs that only
    use frame position and ordinals are dropped, and so are those that lean on a frame position,
    an ordinal, a superlative or where they are beside something at all ("the person left of the
    oven", "halfway up the image"): what the person wears is what a viewer looks for first."""
    n = sum(is_person(f) and not f.get("iscrowd") for f in scene.instances.values())
    if n >= GROUP:
        programs = [p for p in programs
                    if not any(c.kind == "ordinal" and not str(c.value).endswith(":1") for c in p)]
    said = worn(programs)
    if said:
        # what they wear or do says it: drop "the person on the left", "the leftmost person" and
        # "the person left of the oven"; keep what the masks show them doing ("holding a phone")
        programs = [p for p in programs if p in said or not any(_placed(c) for c in p)]
    return sorted(programs, key=lambda p: p not in said)


def _placed(c) -> bool:
    """A constraint that finds a person by where they are, not what they wear or do."""
    from engine.lexicon.interactions import DEPTH, INTERACTIONS
    return c.kind in ("position", "ordinal", "superlative") or (c.kind == "relation" and c.rel not in INTERACTIONS + DEPTH)

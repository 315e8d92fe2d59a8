"""Words for garment and posture constraints (engine.language.people), shared by the template
generator and the lexical checker so that every phrase written is one the checker reads back.

A garment phrase follows the noun or "the one" / "whoever is": "in the red top", "wearing dark
trousers", "dressed in white". A colour word about a person appears only inside one of these.
"""
from __future__ import annotations

UPPER_NOUNS = ("top", "shirt")
LOWER_NOUNS = ("trousers", "pants")
# colour value -> extra words people use for it on clothes (beside the lexicon's colour words)
GARMENT_COLOR_EXTRA = {"black": ("dark",)}


def _garment_templates(region: str, color: str, written: bool = False) -> list[str]:
    """Phrases for a region and colour word; `written`: only those that also read well after
    "who is" ("who is with a red top" does not), the checker reads them all."""
    if written:
        return [p for p in _garment_templates(region, color) if not p.startswith("with ")]
    if region == "upper":
        out = []
        for n in UPPER_NOUNS:
            out += [f"in the {color} {n}", f"in a {color} {n}", f"wearing a {color} {n}", f"wearing the {color} {n}",
                    f"dressed in a {color} {n}", f"with a {color} {n}", f"with the {color} {n}"]
        return out
    if region == "lower":
        out = []
        for n in LOWER_NOUNS:
            out += [f"in {color} {n}", f"in the {color} {n}", f"wearing {color} {n}", f"wearing the {color} {n}",
                    f"dressed in {color} {n}", f"with {color} {n}", f"with the {color} {n}"]
        return out
    if region == "outfit":      # a tone, not a hue: "in dark clothes", "wearing light clothing"
        return [f"in {color} clothes", f"dressed in {color} clothes", f"wearing {color} clothes",
                f"in {color} clothing", f"dressed in {color} clothing", f"with {color} clothes"]
    return [f"dressed in {color}", f"dressed all in {color}", f"wearing all {color}", f"all in {color}"]


OUTFIT_TONES = ("dark", "light")   # engine.language.people TONES: "outfit:dark"


def outfit_phrases() -> dict[str, list[str]]:
    """value -> phrases for every outfit tone ("outfit:dark" -> "in dark clothes", ...)."""
    return {f"outfit:{t}": _garment_templates("outfit", t) for t in OUTFIT_TONES}


def garment_phrases(value: str, color_words: list[str]) -> list[str]:
    """Every phrase for a garment value, given the lexicon's words for its colour."""
    region, color = value.split(":", 1)
    words = list(color_words) + [w for w in GARMENT_COLOR_EXTRA.get(color, ()) if region == "lower"]
    return [p for w in words for p in _garment_templates(region, w)]


def written_garment(value: str, color_words: list[str], rng) -> str:
    """One phrase for a garment value: the plain colour word most of the time."""
    region, color = value.split(":", 1)
    words = list(color_words) if region != "outfit" else [color]
    word = words[0] if len(words) == 1 or rng.random() < 0.8 else rng.choice(words[1:])
    if region == "lower" and GARMENT_COLOR_EXTRA.get(color) and rng.random() < 0.4:
        word = rng.choice(GARMENT_COLOR_EXTRA[color])
    return rng.choice(_garment_templates(region, word, written=True))


POSTURE_PHRASES = {
    "standing": ("standing up", "on their feet", "standing"),
    "sitting": ("sitting down", "seated", "sitting"),
    "lying": ("lying down", "lying"),
}
# written: never a bare "sitting" / "standing" / "lying", which with a position after it reads
# as a relation ("sitting, on the left" -> "sitting on the left")
WRITTEN_POSTURES = {"standing": ("standing up", "on their feet"), "sitting": ("sitting down", "seated"),
                    "lying": ("lying down",)}
# one-word forms written before the noun ("the seated person"); the checker reads all of them
POSTURE_ADJECTIVES = {"standing": ("standing",), "sitting": ("seated", "sitting"), "lying": ()}


def written_posture(value: str, rng) -> str:
    return rng.choice(WRITTEN_POSTURES[value])

"""Category names as people say them: readable nouns, plurals and articles.

Datasets name categories for machines ("GlassBottle_Close", "traffic-light", "CAR"); text
needs what a person would write ("glass bottle close", "traffic light", "car"). Plurals and
articles come from `inflect` (a maintained inflection library) rather than a rule list; only
what inflect does not cover is handled here: acronyms ("TV" -> "TVs"), and noun phrases with a
trailing modifier, where the head noun takes the plural ("bottle with a cap" -> "bottles
with a cap").
"""
from __future__ import annotations

import functools
import re

from engine.language.inflect_import import load_inflect

# A category name that says nothing: export tools write these for a parent or background class.
PLACEHOLDER_NAMES = frozenset({"", "none", "null", "background", "bg", "object", "objects", "thing", "things",
                               "item", "items", "class", "unlabeled", "unlabelled", "other", "misc", "undefined",
                               "_background_", "__background__"})

_PREPOSITIONS = ("with", "of", "in", "on", "for", "from", "without", "at", "under", "near")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_ACRONYM = re.compile(r"^[A-Z][A-Z0-9]+$")


@functools.lru_cache(maxsize=1)
def _engine():
    return load_inflect().engine()


def split_words(name: str) -> list[str]:
    """Words of a machine name: CamelCase, snake_case, kebab-case, dots and digits split."""
    parts = re.split(r"[\s_\-./]+", name.strip())
    words: list[str] = []
    for p in parts:
        words += [w for w in _CAMEL.split(p) if w]
    return words


def _words(name: str) -> str:
    return " ".join(w if _ACRONYM.match(w) else w.lower() for w in split_words(name))


def readable_noun(name: str) -> str:
    """The noun a person would write for a category name: words split, lower case except
    acronyms ("traffic_light" -> "traffic light", "TV_stand" -> "TV stand").

    An underscore between CamelCase parts separates a kind from its variant, not the words of
    one noun ("GlassBottle_Close": a glass bottle, variant "close"): the variant goes in
    parentheses after the noun, so plurals and articles apply to the noun ("glass bottles
    (close)", not "glass bottle closes")."""
    head, sep, variant = name.strip().rpartition("_")
    if sep and len(split_words(head)) > 1 and _CAMEL.search(head) and variant[:1].isupper() \
            and len(split_words(variant)) == 1:
        return f"{_words(head)} ({_words(variant)})"
    return _words(name)


def kind_words(name: str) -> tuple[str, ...]:
    """The words of a category's kind, without its variant: "GlassBottle_Close" and
    "GlassBottle_Loose" are both ("glass", "bottle")."""
    return tuple(re.sub(r"\s*\(.*\)$", "", readable_noun(name)).lower().split())


def same_kind(a: str, b: str) -> bool:
    """Two categories of one kind for a reader: the same head noun, in variants ("glass bottle
    (close)" and "glass bottle (loose)"), in sorts ("plastic bottle", "glass bottle") or one
    inside the other ("bear", "teddy bear"). A photo of one is a photo where the other may sit
    unmarked at the border, or be told apart only by what the picture may not show."""
    x, y = kind_words(a), kind_words(b)
    return bool(x) and bool(y) and x[-1] == y[-1]


def is_placeholder(name: str) -> bool:
    """A name that names no concept ("none", "background", "objects")."""
    return readable_noun(name).lower() in PLACEHOLDER_NAMES or not re.search(r"[A-Za-z]", name)


def plural(noun: str) -> str:
    """The plural of a noun phrase: inflect for the head word; an acronym takes "s"; a head
    followed by a prepositional modifier is pluralised alone ("bottle with a cap")."""
    if noun.endswith(")") and " (" in noun:          # "glass bottle (close)": the noun takes it
        head, variant = noun.rsplit(" (", 1)
        return f"{plural(head)} ({variant}"
    words = noun.split(" ")
    for i, w in enumerate(words[1:], 1):
        if w.lower() in _PREPOSITIONS and w.lower() != "of":
            return " ".join([plural(" ".join(words[:i]))] + words[i:])
    last = words[-1]
    if _ACRONYM.match(last):
        return " ".join(words[:-1] + [last + "s"])
    if " of " in noun:                       # "pair of skis": inflect pluralises the head
        return _engine().plural_noun(noun)
    return " ".join(words[:-1] + [_engine().plural_noun(last)])


def article(phrase: str) -> str:
    """'a' or 'an' for the phrase that follows, by its first sound (inflect)."""
    return _engine().a(phrase).split(" ", 1)[0]

"""The lexicon: category nouns, synonyms and affordance phrases (data in engine/data/lexicon.yaml).

Used three ways: the planner gets each category's affordance keys (`affordance_map`, for
`programs.Scene.affordances`), the template generator gets words and phrases to write with,
and the lexical checker gets the vocabulary to parse text back into constraints.

A category the lexicon does not know still works: its name is its noun (with a regular
plural) and it has no affordances, so it gets no complex-tier instructions.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_PATH = Path(__file__).parent / "data" / "lexicon.yaml"

# ---- closed-class words shared by the generator and the parser ------------------------------
SIZE_WORDS = {"small": ("small", "little"), "medium": ("medium-sized",), "large": ("large", "big")}
SUPERLATIVE_WORDS = {"largest": ("largest", "biggest"), "smallest": ("smallest", "tiniest")}
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
                9: "nine", 10: "ten", 11: "eleven", 12: "twelve"}
ORDINAL_WORDS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth",
                 7: "seventh", 8: "eighth", 9: "ninth", 10: "tenth"}
EXTREME_WORDS = {"left": ("leftmost",), "right": ("rightmost",), "top": ("topmost", "uppermost"),
                 "bottom": ("bottommost", "lowest")}
RELATION_WORDS = {
    "left_of": ("to the left of", "left of"),
    "right_of": ("to the right of", "right of"),
    "above": ("above",),
    "below": ("below", "beneath", "under", "underneath"),
    "next_to": ("next to", "beside"),
    "on": ("on", "on top of"),
    "inside": ("inside", "in"),
    "overlapping": ("overlapping",),
}

_IRREGULAR = {"person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
              "knife": "knives", "shelf": "shelves", "sheep": "sheep", "foot": "feet", "tooth": "teeth",
              "calf": "calves", "leaf": "leaves", "skis": "skis", "scissors": "scissors", "cattle": "cattle"}


def pluralize(noun: str) -> str:
    """A regular English plural; for "pair of skis"-like phrases the head word is pluralized."""
    if " of " in noun:
        head, rest = noun.split(" of ", 1)
        return f"{pluralize(head)} of {rest}"
    words = noun.split(" ")
    last = words[-1]
    low = last.lower()
    if low in _IRREGULAR:
        plural = _IRREGULAR[low]
    elif re.search(r"(s|x|z|ch|sh)$", low):
        plural = last + "es"
    elif re.search(r"[^aeiou]y$", low):
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return " ".join(words[:-1] + [plural])


def indefinite_article(phrase: str) -> str:
    """'a' or 'an' for the phrase that follows (by its first sound, approximately)."""
    w = phrase.lower()
    if re.match(r"(uni|use|usu|eu|one\b|once)", w):
        return "a"
    if re.match(r"(hour|honest|honou?r)", w) or re.match(r"[aeiou]", w):
        return "an"
    return "a"


def word_tokens(text: str) -> list[str]:
    """Lower-case word tokens; punctuation other than word-internal hyphens and apostrophes dropped."""
    text = text.lower().replace("\u2019", "'")
    return re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", text)


# ---- file format -------------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AffordanceSpec(_Model):
    type: Literal["affordance", "function", "state"]
    singular: list[str] = Field(min_length=1)
    plural: list[str] = Field(min_length=1)


class SynonymSpec(_Model):
    singular: str
    plural: str


class CategorySpec(_Model):
    noun: str | None = None
    plural: str
    synonyms: list[str | SynonymSpec] = []
    hyponyms: list[str] = []
    supercategory: str
    affordances: list[str] = []


class SupercategorySpec(_Model):
    singular: str
    plural: str


class LexiconFile(_Model):
    version: int = Field(ge=1)
    colors: dict[str, list[str]] = {}
    supercategories: dict[str, SupercategorySpec] = {}
    affordances: dict[str, AffordanceSpec] = {}
    categories: dict[str, CategorySpec]


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file, entry and problem."""


# ---- resolved entries --------------------------------------------------------------------------
@dataclass(frozen=True)
class PhraseForm:
    """One affordance phrase in a form the generator can decorate.

    `standalone` is the phrase as written ("something you can sit on", "those who can speak");
    `body` is what follows a determiner and adjectives ("thing you can sit on", "ones who can
    speak"), so "the leftmost " + body reads well.
    """
    standalone: str
    body: str
    plural: bool


@dataclass(frozen=True)
class Affordance:
    key: str
    type: str
    singular: tuple[PhraseForm, ...]
    plural: tuple[PhraseForm, ...]


@dataclass(frozen=True)
class Entry:
    category: str
    noun: str
    plural: str
    synonyms: tuple[tuple[str, str], ...]      # (singular, plural)
    hyponyms: tuple[str, ...]
    supercategory: str
    affordances: frozenset[str]


def _phrase_form(text: str, plural: bool) -> PhraseForm:
    words = text.split(" ")
    first = words[0].lower()
    if not plural:
        if first == "something":
            return PhraseForm(text, " ".join(["thing"] + words[1:]), False)
        if first == "someone":
            return PhraseForm(text, " ".join(["one"] + words[1:]), False)
        if first in ("a", "an") and len(words) > 1:
            return PhraseForm(text, " ".join(words[1:]), False)
        raise ValueError('a singular phrase must start with "something", "someone", "a" or "an"')
    if first in ("a", "an", "something", "someone", "the"):
        raise ValueError('a plural phrase must start with a plural noun or "those"')
    if first == "those":
        return PhraseForm(text, " ".join(["ones"] + words[1:]), True)
    return PhraseForm(text, text, True)


def _contains_phrase(text: str, phrase: str) -> bool:
    t, p = word_tokens(text), word_tokens(phrase)
    return any(t[i:i + len(p)] == p for i in range(len(t) - len(p) + 1)) if p else False


class Lexicon:
    def __init__(self, data: LexiconFile, source: str = "<memory>"):
        self.source = source
        self.version = data.version
        self._data = data
        self._colors = {c: tuple(ws) or (c,) for c, ws in data.colors.items()}
        self._supers = {k: (v.singular, v.plural) for k, v in data.supercategories.items()}
        self._affordances: dict[str, Affordance] = {}
        for key, spec in data.affordances.items():
            forms = []
            for plural, texts in ((False, spec.singular), (True, spec.plural)):
                for text in texts:
                    try:
                        forms.append(_phrase_form(text.strip(), plural))
                    except ValueError as e:
                        raise LexiconError(f"{source}: affordances.{key}: phrase {text!r}: {e}") from None
            self._affordances[key] = Affordance(key, spec.type, tuple(f for f in forms if not f.plural),
                                                tuple(f for f in forms if f.plural))
        self._entries: dict[str, Entry] = {}
        for cat, spec in data.categories.items():
            syn = tuple((s, pluralize(s)) if isinstance(s, str) else (s.singular, s.plural) for s in spec.synonyms)
            missing = [k for k in spec.affordances if k not in self._affordances]
            if missing:
                raise LexiconError(f"{source}: categories.{cat}: unknown affordance keys {missing}")
            self._entries[cat] = Entry(cat, spec.noun or cat, spec.plural, syn, tuple(spec.hyponyms),
                                       spec.supercategory, frozenset(spec.affordances))
        self._check_phrases()

    def _check_phrases(self) -> None:
        color_words = {w for ws in self._colors.values() for w in ws}
        for key, aff in self._affordances.items():
            for form in aff.singular + aff.plural:
                bad = color_words & set(word_tokens(form.standalone))
                if bad:
                    raise LexiconError(f"{self.source}: affordances.{key}: phrase {form.standalone!r} "
                                       f"contains colour words {sorted(bad)}")
        for cat, e in self._entries.items():
            nouns = self.nouns_of(cat)
            for key in sorted(e.affordances):
                for form in self._affordances[key].singular + self._affordances[key].plural:
                    hit = sorted(n for n in nouns if _contains_phrase(form.standalone, n))
                    if hit:
                        raise LexiconError(f"{self.source}: affordances.{key}: phrase {form.standalone!r} "
                                           f"names category {cat!r} ({hit}); complex text must not")

    # ---- categories --------------------------------------------------------------------------
    def categories(self) -> list[str]:
        return list(self._entries)

    def entry(self, category: str) -> Entry | None:
        return self._entries.get(category)

    def noun(self, category: str) -> str:
        e = self._entries.get(category)
        return e.noun if e else category.replace("-", " ").replace("_", " ")

    def plural(self, category: str) -> str:
        e = self._entries.get(category)
        return e.plural if e else pluralize(self.noun(category))

    def synonyms(self, category: str) -> tuple[tuple[str, str], ...]:
        e = self._entries.get(category)
        return e.synonyms if e else ()

    def names(self, category: str) -> list[tuple[str, str]]:
        """(singular, plural) pairs the generator may use for the category: noun first."""
        return [(self.noun(category), self.plural(category))] + list(self.synonyms(category))

    def nouns_of(self, category: str) -> set[str]:
        """Every lower-case word or phrase that names the category: name, noun, plural,
        synonyms and hyponyms with their plurals."""
        out = {category.lower(), self.noun(category).lower(), self.plural(category).lower()}
        for s, p in self.synonyms(category):
            out |= {s.lower(), p.lower()}
        e = self._entries.get(category)
        for h in (e.hyponyms if e else ()):
            out |= {h.lower(), pluralize(h).lower()}
        return {n for n in out if word_tokens(n)}

    def supercategory_of(self, category: str) -> str | None:
        e = self._entries.get(category)
        return e.supercategory if e else None

    def supercategory_noun(self, supercategory: str, plural: bool = False) -> str:
        sg, pl = self._supers.get(supercategory, (supercategory.replace("-", " "), None))
        return (pl or pluralize(sg)) if plural else sg

    def supercategories(self) -> dict[str, tuple[str, str]]:
        return dict(self._supers)

    # ---- affordances -------------------------------------------------------------------------
    def affordances(self, category: str) -> frozenset[str]:
        e = self._entries.get(category)
        return e.affordances if e else frozenset()

    def affordance_map(self) -> dict[str, frozenset[str]]:
        """category -> affordance keys, for programs.Scene.affordances."""
        return {c: e.affordances for c, e in self._entries.items() if e.affordances}

    def affordance(self, key: str) -> Affordance | None:
        return self._affordances.get(key)

    def affordance_keys(self) -> list[str]:
        return list(self._affordances)

    def affordance_type(self, key: str) -> str:
        a = self._affordances.get(key)
        return a.type if a else "affordance"

    def phrases(self, key: str, plural: bool = False) -> tuple[PhraseForm, ...]:
        a = self._affordances.get(key)
        if a is None:
            raise KeyError(f"lexicon {self.source}: no affordance key {key!r}")
        return a.plural if plural else a.singular

    # ---- colours -----------------------------------------------------------------------------
    def color_words(self, color: str) -> tuple[str, ...]:
        return self._colors.get(color, (color,))

    def colors(self) -> dict[str, tuple[str, ...]]:
        return dict(self._colors)


def _format_error(path: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        lines.append(f"{path}: {loc}: {e['msg']}")
    return "\n".join(lines)


def load_lexicon(path: str | Path | None = None) -> Lexicon:
    """Load and validate a lexicon file; the default file is loaded once and cached."""
    if path is None:
        return _default()
    return _load(Path(path))


def _load(path: Path) -> Lexicon:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise LexiconError(f"{path}: lexicon file not found") from None
    except yaml.YAMLError as e:
        raise LexiconError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise LexiconError(f"{path}: expected a mapping with version, affordances and categories")
    try:
        data = LexiconFile.model_validate(raw)
    except ValidationError as e:
        raise LexiconError(_format_error(str(path), e)) from None
    return Lexicon(data, str(path))


@functools.lru_cache(maxsize=1)
def _default() -> Lexicon:
    return _load(DEFAULT_PATH)

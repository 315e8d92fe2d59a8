"""The lexicon: category nouns, synonyms and affordance phrases (data in engine/data/lexicon.yaml).

Used three ways: the planner gets each category's affordance keys (`affordance_map`, for
`programs.Scene.affordances`), the template generator gets words and phrases to write with,
and the lexical checker gets the vocabulary to parse text back into constraints.

A category the lexicon does not know still works: its readable name is its noun ("GlassBottle_Close"
-> "glass bottle close", plural by inflect, engine/language/names.py) and it has no affordances, so its
complex tier is built from instance facts alone (engine/language/plan.py). Lookups ignore case and the
machine spelling ("Bus", "traffic_light" find "bus", "traffic light").

Extensions: a project or a source adds its own taxonomy in a file of the same format
(`load_lexicon(extensions=[...])`, config `lexicon.extend` and `sources.<id>.lexicon`); it may
add categories, supercategories and affordance keys, and reference the base file's keys, but
not redefine anything the base (or another extension) defines. `appearance` words become a
state key of their own ("an item that looks wrinkled and oval"). `python -m engine.lexicon draft SOURCE`
writes a draft extension for the categories a source uses that the lexicon lacks
(engine/lexicon/draft.py).
"""
from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.language import names

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "lexicon.yaml"
# everyday nouns beyond COCO (plural, supercategory): filled in under the default lexicon for
# categories neither it nor an extension defines
COMMON_PATH = DEFAULT_PATH.with_name("lexicon_common.yaml")

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
    "above": ("above", "directly above", "right above", "just above"),
    "below": ("below", "beneath", "under", "underneath", "directly below", "right below", "just below",
              "directly beneath"),
    "next_to": ("next to", "beside"),
    "on": ("on", "on top of"),
    "inside": ("inside", "in"),
    "overlapping": ("overlapping",),
}

@functools.lru_cache(maxsize=1 << 16)
def pluralize(noun: str) -> str:
    """The plural of a noun phrase (inflect; see engine/language/names.py). Cached: inflect
    takes about half a millisecond a word, and the same nouns come back for every text."""
    return names.plural(noun)


def indefinite_article(phrase: str) -> str:
    """'a' or 'an' for the phrase that follows, by its first sound (inflect)."""
    return names.article(phrase)


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
    noun: str | None = None                 # default: the readable name ("glass bottle close")
    plural: str | None = None               # default: inflect's plural of the noun
    synonyms: list[str | SynonymSpec] = []
    hyponyms: list[str] = []
    supercategory: str | None = None
    affordances: list[str] = []             # keys of `affordances` (function / affordance / state)
    appearance: list[str] = []              # words for how every member looks ("wrinkled", "oval")
    stuff: bool = False                     # amorphous background ("sky", "wall"): never a negative


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
    supercategory: str | None
    affordances: frozenset[str]
    stuff: bool = False


def appearance_key(words: list[str]) -> str:
    return "looks_" + "_".join(re.sub(r"[^a-z0-9]+", "-", w.lower()).strip("-") for w in words)


def appearance_phrases(words: list[str]) -> tuple[str, str]:
    """(singular, plural) state phrases for appearance words: "an item that looks wrinkled and oval"."""
    said = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return f"an item that looks {said}", f"items that look {said}"


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
        self.extensions: tuple[str, ...] = ()
        self.fallback: frozenset[str] = frozenset()   # categories only lexicon_common.yaml defines
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
        self._index: dict[str, str] = {}        # casefolded name or readable noun -> key
        for cat, spec in data.categories.items():
            syn = tuple((s, pluralize(s)) if isinstance(s, str) else (s.singular, s.plural) for s in spec.synonyms)
            missing = [k for k in spec.affordances if k not in self._affordances]
            if missing:
                raise LexiconError(f"{source}: categories.{cat}: unknown affordance keys {missing}")
            keys = set(spec.affordances)
            if spec.appearance:
                keys.add(self._add_appearance(cat, spec.appearance))
            noun = spec.noun or names.readable_noun(cat)
            self._entries[cat] = Entry(cat, noun, spec.plural or pluralize(noun), syn, tuple(spec.hyponyms),
                                       spec.supercategory, frozenset(keys), spec.stuff)
            for k in {cat.casefold(), names.readable_noun(cat).casefold()}:
                if self._index.get(k, cat) != cat:
                    raise LexiconError(f"{source}: categories {self._index[k]!r} and {cat!r} are the same name "
                                       "up to case or spelling")
                self._index[k] = cat
        self._check_phrases()

    def _add_appearance(self, cat: str, words: list[str]) -> str:
        words = [w.strip() for w in words if w.strip()]
        if not words:
            raise LexiconError(f"{self.source}: categories.{cat}: appearance words are empty")
        closed = {w for ws in (*SIZE_WORDS.values(), *SUPERLATIVE_WORDS.values(), *EXTREME_WORDS.values()) for w in ws}
        closed |= {"left", "right", "top", "bottom", "middle", "center", "centre"}
        closed |= {w for ws in self._colors.values() for w in ws}
        bad = sorted({t for w in words for t in word_tokens(w)} & closed)
        if bad:
            raise LexiconError(f"{self.source}: categories.{cat}: appearance words {bad} are colour, size or "
                               "position words, which the instance facts decide")
        key = appearance_key(words)
        sg, pl = appearance_phrases(words)
        self._affordances[key] = Affordance(key, "state", (_phrase_form(sg, False),), (_phrase_form(pl, True),))
        return key

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

    def key(self, category: str) -> str | None:
        """The lexicon's key for a dataset's category name, ignoring case and machine spelling."""
        if category in self._entries:
            return category
        return self._index.get(category.casefold()) or self._index.get(names.readable_noun(category).casefold())

    def is_fallback(self, category: str) -> bool:
        """Known only from lexicon_common.yaml (a plural and a supercategory, no kind facts)."""
        return self.key(category) in self.fallback

    def entry(self, category: str) -> Entry | None:
        k = self.key(category)
        return self._entries[k] if k is not None else None

    def noun(self, category: str) -> str:
        e = self.entry(category)
        return e.noun if e else names.readable_noun(category)

    def plural(self, category: str) -> str:
        e = self.entry(category)
        return e.plural if e else pluralize(self.noun(category))

    def synonyms(self, category: str) -> tuple[tuple[str, str], ...]:
        e = self.entry(category)
        return e.synonyms if e else ()

    def is_stuff(self, category: str) -> bool:
        e = self.entry(category)
        return bool(e and e.stuff)

    def missing(self, category: str) -> list[str]:
        """What the lexicon lacks for a category: 'entry' (then everything), else the parts
        that are empty among synonyms, supercategory and complex-tier knowledge."""
        e = self.entry(category)
        if e is None:
            return ["entry"]
        out = [] if e.synonyms else ["synonyms"]
        out += [] if e.supercategory else ["supercategory"]
        out += [] if e.affordances else ["functions/affordances/states"]
        return out

    def names(self, category: str) -> list[tuple[str, str]]:
        """(singular, plural) pairs the generator may use for the category: noun first."""
        return [(self.noun(category), self.plural(category))] + list(self.synonyms(category))

    def nouns_of(self, category: str) -> set[str]:
        """Every lower-case word or phrase that names the category: name, noun, plural,
        synonyms and hyponyms with their plurals."""
        out = {category.lower(), names.readable_noun(category).lower(), self.noun(category).lower(),
               self.plural(category).lower(), pluralize(names.readable_noun(category)).lower()}
        for s, p in self.synonyms(category):
            out |= {s.lower(), p.lower()}
        e = self.entry(category)
        for h in (e.hyponyms if e else ()):
            out |= {h.lower(), pluralize(h).lower()}
        return {n for n in out if word_tokens(n)}

    def supercategory_of(self, category: str) -> str | None:
        e = self.entry(category)
        return e.supercategory if e else None

    def supercategory_for(self, category: str, source_supercategory: str | None) -> str:
        """The supercategory text may use for a category: the lexicon's, else the source's
        when it names a real group ("Bottle" for "GlassBottle_Close"), else "" (Roboflow's
        "none", a LabelMe->COCO supercategory equal to the name, a word naming the category).
        The lexicon's own is kept even when it names the category ("person"): planner rules
        group by it; `supercategory_names` says whether text may use it."""
        own = self.supercategory_of(category)
        if own:
            return own
        sup = (source_supercategory or "").strip()
        if not sup or names.is_placeholder(sup):
            return ""
        return "" if self.supercategory_names(category, sup) else sup

    def supercategory_names(self, category: str, supercategory: str) -> bool:
        """Whether the supercategory's words name the category ("patch of sky" for sky, "person"
        for person): such a supercategory cannot stand in for it in complex text."""
        said = (self.supercategory_noun(supercategory), self.supercategory_noun(supercategory, plural=True))
        return any(_contains_phrase(t, n) for t in said for n in self.nouns_of(category))

    def supercategory_noun(self, supercategory: str, plural: bool = False) -> str:
        sg, pl = self._supers.get(supercategory, (names.readable_noun(supercategory), None))
        return (pl or pluralize(sg)) if plural else sg

    def supercategories(self) -> dict[str, tuple[str, str]]:
        return dict(self._supers)

    # ---- affordances -------------------------------------------------------------------------
    def affordances(self, category: str) -> frozenset[str]:
        e = self.entry(category)
        return e.affordances if e else frozenset()

    def affordance_map(self, categories=None) -> dict[str, frozenset[str]]:
        """category -> affordance keys, for programs.Scene.affordances: the lexicon's own keys,
        or the given dataset names (any case or spelling) mapped to their entries' keys."""
        if categories is None:
            return {c: e.affordances for c, e in self._entries.items() if e.affordances}
        return {c: self.affordances(c) for c in categories if self.affordances(c)}

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


def extension_files(cfg) -> list[str]:
    """The lexicon extension files an EngineConfig names: project-wide, then per source."""
    out = list(cfg.lexicon.extend)
    out += [s.lexicon for _, s in sorted(cfg.sources.items()) if s.lexicon and s.lexicon not in out]
    return out


def lexicon_for(cfg) -> Lexicon:
    """The base lexicon with every extension the config names merged in."""
    return load_lexicon(extensions=extension_files(cfg))


def files_digest(paths: list[str]) -> str:
    """sha256 over the files' bytes: a build's units depend on the extensions' content."""
    import hashlib
    h = hashlib.sha256()
    for p in paths:
        try:
            h.update(Path(p).read_bytes())
        except OSError as e:
            raise LexiconError(f"{p}: cannot read the lexicon extension: {e.strerror}") from None
    return h.hexdigest()[:16]


def _format_error(path: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        lines.append(f"{path}: {loc}: {e['msg']}")
    return "\n".join(lines)


def load_lexicon(path: str | Path | None = None, extensions=()) -> Lexicon:
    """Load and validate a lexicon file, plus extension files merged into it; the default file
    alone is loaded once and cached."""
    if path is None and not extensions:
        return _default()
    if not extensions:
        return _load(Path(path))
    return _extended(str(path or DEFAULT_PATH), tuple(str(e) for e in extensions))


def _read(path: Path) -> LexiconFile:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise LexiconError(f"{path}: lexicon file not found") from None
    except yaml.YAMLError as e:
        raise LexiconError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise LexiconError(f"{path}: expected a mapping with version, affordances and categories")
    raw.setdefault("categories", {})
    try:
        return LexiconFile.model_validate(raw)
    except ValidationError as e:
        raise LexiconError(_format_error(str(path), e)) from None


def _load(path: Path) -> Lexicon:
    return Lexicon(_read(path), str(path))


def merge(base: LexiconFile, ext: LexiconFile, ext_name: str, base_name: str = "the base lexicon") -> LexiconFile:
    """base + ext; an extension adds, it never redefines (the error names both files)."""
    clash = []
    for section in ("colors", "supercategories", "affordances"):
        clash += [f"{section}.{k}" for k in getattr(ext, section) if k in getattr(base, section)]
    folded = {names.readable_noun(c).casefold(): c for c in base.categories}
    clash += [f"categories.{c} (as {folded[names.readable_noun(c).casefold()]!r})" for c in ext.categories
              if names.readable_noun(c).casefold() in folded]
    if clash:
        raise LexiconError(f"{ext_name}: redefines what {base_name} defines: {', '.join(clash)}; "
                           "an extension may only add categories, supercategories and keys")
    return LexiconFile(version=base.version, colors={**base.colors, **ext.colors},
                       supercategories={**base.supercategories, **ext.supercategories},
                       affordances={**base.affordances, **ext.affordances},
                       categories={**base.categories, **ext.categories})


def fill_in(data: LexiconFile, common: LexiconFile) -> LexiconFile:
    """`data` plus the entries of `common` it lacks: a category is added only when no category
    of `data` has its name, and its supercategory only when `data` has none of that key (what
    the base or an extension defines always wins)."""
    known = {names.readable_noun(c).casefold() for c in data.categories}
    cats = {c: e for c, e in common.categories.items() if names.readable_noun(c).casefold() not in known}
    supers = {k: v for k, v in common.supercategories.items() if k not in data.supercategories}
    return LexiconFile(version=data.version, colors=data.colors,
                       supercategories={**data.supercategories, **supers},
                       affordances=data.affordances, categories={**data.categories, **cats})


@functools.lru_cache(maxsize=16)
def _extended(path: str, extensions: tuple[str, ...]) -> Lexicon:
    data, name = _read(Path(path)), path
    for ext in extensions:
        data = merge(data, _read(Path(ext)), ext, name)
        name = f"{name} + {ext}"
    before = set(data.categories)
    if Path(path) == DEFAULT_PATH:
        data = fill_in(data, _read(COMMON_PATH))
    lex = Lexicon(data, name)
    lex.extensions = extensions
    lex.fallback = frozenset(set(data.categories) - before)
    return lex


@functools.lru_cache(maxsize=1)
def _default() -> Lexicon:
    return _extended(str(DEFAULT_PATH), ())


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "draft":
        print("usage: python -m engine.lexicon draft SOURCE [options]  (see --help after 'draft')", file=sys.stderr)
        return 2
    from engine.lexicon.draft import main as draft_main
    return draft_main(argv[1:])


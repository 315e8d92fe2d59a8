"""The `lexical` checker: parse the text back into a referring program and evaluate it.

It reads only the text and the scene, never the spec's program: a text passes when what it
says, as far as the lexicon understands it, selects exactly the spec's targets (nothing for
a negative). A text about another instance of the same category therefore fails.

Parsing, in three steps:
1. Tokens: the longest known phrase at each position (category nouns, synonyms, plurals,
   supercategory nouns, affordance phrases, colours, size / ordinal / position / relation
   words, numbers, quantifiers, fillers). "on", "in", "near", "by", "over" are relations only
   when a noun follows ("on the bench", not "on the left"); a word that is both a colour and
   a noun ("orange") is a colour when a noun follows it.
2. Segments: the first noun phrase describes the target; each relation opens a segment for its
   object. A relation attaches to the phrase just before it, or to the target when it follows
   "and" ("the cup on the table next to the couch" = the table is next to the couch; "the dog
   left of the bench and next to the car" = the dog is next to the car). This is the
   convention engine/generate/template.py writes.
3. Program: each segment becomes constraints; relation segments become relation constraints
   with the object's program. Grammatical number is checked too: "the dog" must select at
   most one instance, "the dogs" not exactly one.

Verdicts: pass / fail (with what it parsed and selected) / unverifiable (unknown words that
might be constraints, no noun or affordance phrase, ambiguous nouns).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.checks.base import CheckResult
from engine.generate.base import SpecView
from engine.lexicon import (EXTREME_WORDS, NUMBER_WORDS, ORDINAL_WORDS, RELATION_WORDS, SIZE_WORDS,
                            SUPERLATIVE_WORDS, Lexicon, load_lexicon, pluralize, word_tokens)
from engine.language.programs import Constraint, Program, Scene, evaluate
from engine.generate.people_words import POSTURE_ADJECTIVES, POSTURE_PHRASES, garment_phrases, outfit_phrases
from engine.lexicon import interactions as acts
from engine.lexicon.variety import SUPER_ALTERNATES


@dataclass(frozen=True)
class Tok:
    kind: str                 # NOUN SUPER AFF COLOR SIZE SUPERL ORD ORDNUM FROM POS REL PREP COUNT
    value: object = None      # ALL DET HEAD AND IMG FILL UNKNOWN
    number: str | None = None  # "sg" | "pl" | None (either)
    text: str = ""
    alt_color: str | None = None  # a noun that is also a colour word ("orange")


# ---- closed-class vocabulary ---------------------------------------------------------------
def _closed_class() -> dict[tuple[str, ...], list[Tok]]:
    v: dict[tuple[str, ...], list[Tok]] = {}

    def add(phrase: str, *toks: Tok):
        v[tuple(word_tokens(phrase))] = list(toks)

    for label, words in SIZE_WORDS.items():
        for w in words:
            add(w, Tok("SIZE", label))
    add("medium", Tok("SIZE", "medium"))
    add("mid-sized", Tok("SIZE", "medium"))
    for label, words in SUPERLATIVE_WORDS.items():
        for w in words:
            add(w, Tok("SUPERL", label))
    for side, words in EXTREME_WORDS.items():
        for w in words:
            add(w, Tok("ORD", f"{side}:1"))
    for side in ("left", "right"):
        for p in (f"{side}-most", f"far {side}", f"furthest to the {side}", f"farthest to the {side}",
                  f"furthest {side}", f"farthest {side}", f"most to the {side}"):
            add(p, Tok("ORD", f"{side}:1"))
    for p in ("very top", "top-most", "highest", "highest up"):
        add(p, Tok("ORD", "top:1"))
    for p in ("very bottom", "bottom-most", "lowest down"):
        add(p, Tok("ORD", "bottom:1"))
    for k, w in ORDINAL_WORDS.items():
        add(w, Tok("ORDNUM", k))
        add(f"{k}{'st' if k == 1 else 'nd' if k == 2 else 'rd' if k == 3 else 'th'}", Tok("ORDNUM", k))
    for side in ("left", "right", "top", "bottom"):
        add(f"from the {side}", Tok("FROM", side))
        add(f"from {side}", Tok("FROM", side))
    for w, pos in (("left", "left"), ("left-hand", "left"), ("right", "right"), ("right-hand", "right"),
                   ("center", "center"), ("centre", "center"), ("middle", "center"), ("central", "center"),
                   ("top", "top"), ("upper", "top"), ("bottom", "bottom"), ("lower", "bottom"),
                   ("mid-height", "middle"), ("halfway", "middle")):
        add(w, Tok("POS", pos))
    for rel, phrases in RELATION_WORDS.items():
        for p in phrases:
            if p not in ("on", "in"):
                add(p, Tok("REL", rel))
    for p, rel in (("on the left of", "left_of"), ("on the right of", "right_of"), ("sitting on", "on"),
                   ("resting on", "on"), ("lying on", "on"), ("standing on", "on"), ("placed on", "on"),
                   ("alongside", "next_to"), ("next to", "next_to"), ("close to", "next_to"),
                   ("within", "inside"), ("inside of", "inside"), ("overlaps", "overlapping"),
                   ("overlap", "overlapping"), ("overlapping with", "overlapping"), ("higher than", "above"),
                   ("lower than", "below")):
        add(p, Tok("REL", rel))
    for p, rel in acts.PARSE.items():          # riding, holding, in front of, partly hidden by ...
        add(p, Tok("REL", rel))
    add("not", Tok("NOT"))
    add("other", Tok("FILL"))
    for w, rel in (("on", "on"), ("in", "inside"), ("near", "next_to"), ("by", "next_to"), ("over", "above")):
        add(w, Tok("PREP", rel))
    for n, w in NUMBER_WORDS.items():
        add(w, Tok("COUNT", n))
        add(str(n), Tok("COUNT", n))
    add("both", Tok("COUNT", 2), Tok("DET", "the"))
    for w in ("all", "every", "each"):
        add(w, Tok("ALL"))
    add("everything", Tok("ALL"), Tok("HEAD", number="sg"))
    add("everyone", Tok("ALL"), Tok("HEAD", number="sg"))
    for w in ("the", "this", "these", "those"):
        add(w, Tok("DET", "the"))
    for w in ("a", "an", "any"):
        add(w, Tok("DET", "a"))
    for w, n in (("thing", "sg"), ("things", "pl"), ("one", "sg"), ("ones", "pl"), ("object", "sg"),
                 ("objects", "pl"), ("item", "sg"), ("items", "pl"), ("figure", "sg"), ("figures", "pl")):
        add(w, Tok("HEAD", number=n))
    add("something", Tok("DET", "a"), Tok("HEAD", number="sg"))
    add("someone", Tok("DET", "a"), Tok("HEAD", number="sg"))
    add("and", Tok("AND"))
    for w in ("picture", "image", "photo", "photograph", "frame", "scene", "shot", "view"):
        add(w, Tok("IMG"))
    for w in ("of", "is", "are", "that", "which", "who", "there", "here", "at", "side", "part", "corner",
              "only", "located", "positioned", "area", "region", "half", "up", "down", "to", "among",
              "seen", "shown", "visible", "sits", "stands", "counting", "colored", "coloured", "in-color",
              "one's", "its", "whole", "entire", "toward", "towards", "edge"):
        add(w, Tok("FILL"))
    return v


_CLOSED = _closed_class()
_MODIFIER_KINDS = {"DET", "COLOR", "SIZE", "SUPERL", "ORD", "ORDNUM", "COUNT", "ALL"}
_HEAD_KINDS = {"NOUN", "SUPER", "AFF"}


class _Unverifiable(Exception):
    """The text cannot be parsed into constraints."""


class _Ambiguous(Exception):
    """The text parses but does not pick out what it says it does ("the car" among three)."""


@dataclass
class _Segment:
    toks: list[Tok] = field(default_factory=list)
    rel: str | None = None
    negated: bool = False
    parent: "_Segment | None" = None
    children: list["_Segment"] = field(default_factory=list)


class LexicalChecker:
    name = "lexical"

    def __init__(self, lexicon: Lexicon | None = None):
        self.lexicon = lexicon or load_lexicon()
        self.vocab = dict(_CLOSED)
        self._add_lexicon(self.lexicon)
        self.max_len = max(len(k) for k in self.vocab)
        # the last scene's extra words: every text of one image is checked against the same
        # scene object, and building them was most of a check's time
        self._scene_words: tuple[Scene, dict] | None = None

    # ---- vocabulary --------------------------------------------------------------------------
    def _add_lexicon(self, lex: Lexicon) -> None:
        for color, words in lex.colors().items():
            for w in words:
                self.vocab[tuple(word_tokens(w))] = [Tok("COLOR", color)]
        nouns: dict[tuple[str, ...], dict[str, set[str]]] = {}   # form -> category -> numbers
        for cat in lex.categories():
            self._noun_forms(lex, cat, nouns)
        for form, cats in nouns.items():
            self.vocab[form] = [self._noun_tok(form, cats)]
        for sup, (sg, pl) in lex.supercategories().items():
            for text, number in ((sg, "sg"), (pl, "pl")):
                key = tuple(word_tokens(text))
                if key not in nouns:   # a category noun wins ("person")
                    self.vocab[key] = [Tok("SUPER", sup, None if sg == pl else number, text)]
        for sup, forms in SUPER_ALTERNATES.items():      # "gadget" for electronic devices
            for sg, pl in forms:
                for text, number in ((sg, "sg"), (pl, "pl")):
                    key = tuple(word_tokens(text))
                    if key not in nouns:
                        self.vocab[key] = [Tok("SUPER", sup, None if sg == pl else number, text)]
        self._add_affordances(lex)
        for (rel, obj), forms in acts.ROLES.items():   # "the skier": a person riding skis
            for sg, pl in forms:
                for text, number in ((sg, "sg"), (pl, "pl")):
                    self.vocab[tuple(word_tokens(text))] = [Tok("NOUN", ("person",), number, text),
                                                           Tok("ROLE", (rel, obj), number, text)]
        self._add_people(lex)

    def _add_people(self, lex: Lexicon) -> None:
        """Garment and posture phrases as whole tokens ("in the red top" is not "in" + "top"),
        exactly the forms engine.generate.people_words writes; "whoever" is "the one"."""
        for color, words in lex.colors().items():
            for region in ("upper", "lower", "all"):
                value = f"{region}:{color}"
                for phrase in garment_phrases(value, list(words)):
                    self.vocab[tuple(word_tokens(phrase))] = [Tok("GARMENT", value, text=phrase)]
        for value, phrases in outfit_phrases().items():     # "in dark clothes": a tone, not a hue
            for phrase in phrases:
                self.vocab[tuple(word_tokens(phrase))] = [Tok("GARMENT", value, text=phrase)]
        for value, phrases in POSTURE_PHRASES.items():
            for phrase in phrases + POSTURE_ADJECTIVES[value]:
                self.vocab[tuple(word_tokens(phrase))] = [Tok("POSTURE", value, text=phrase)]
        self.vocab[("whoever",)] = [Tok("DET", "the"), Tok("HEAD", number="sg")]

    def _noun_forms(self, lex: Lexicon, cat: str, out: dict) -> None:
        e = lex.entry(cat)
        forms = [(cat, "sg"), (lex.noun(cat), "sg"), (lex.plural(cat), "pl")]
        for s, p in lex.synonyms(cat):
            forms += [(s, "sg"), (p, "pl")]
        for h in (e.hyponyms if e else ()):
            forms += [(h, "sg"), (pluralize(h), "pl")]
        for text, number in forms:
            key = tuple(word_tokens(text))
            if key:
                out.setdefault(key, {}).setdefault(cat, set()).add(number)

    def _noun_tok(self, form: tuple[str, ...], cats: dict[str, set[str]]) -> Tok:
        numbers = set().union(*cats.values())
        number = next(iter(numbers)) if len(numbers) == 1 else None
        alt = next((t.value for t in self.vocab.get(form, []) if t.kind == "COLOR"), None)
        return Tok("NOUN", tuple(sorted(cats)), number, " ".join(form), alt)

    def _add_affordances(self, lex: Lexicon) -> None:
        units: dict[tuple[str, ...], set[tuple[str, str | None]]] = {}
        tails: dict[tuple[str, ...], set[str]] = {}

        def unit(text: str, key: str, number: str | None):
            units.setdefault(tuple(word_tokens(text)), set()).add((key, number))

        for key in lex.affordance_keys():
            for form in lex.phrases(key) + lex.phrases(key, plural=True):
                number = "pl" if form.plural else "sg"
                unit(form.standalone, key, number)
                unit(form.body, key, number)
                words = form.body.split(" ")
                if not form.plural and words[0] in ("thing", "one"):
                    unit("every" + form.body, key, "all")
                tail = tuple(word_tokens(" ".join(words[1:])))
                if len(tail) >= 2:
                    tails.setdefault(tail, set()).add(key)
        for tail, keys in tails.items():
            if len(keys) == 1 and tail not in units and tail not in self.vocab:
                units[tail] = {(next(iter(keys)), None)}
        for form, entries in units.items():
            keys = {k for k, _ in entries}
            if len(keys) > 1:
                continue      # one phrase for two keys would be ambiguous: not understood
            key = next(iter(keys))
            numbers = {n for _, n in entries}
            if numbers == {"all"}:
                self.vocab[form] = [Tok("ALL"), Tok("AFF", key, "sg", " ".join(form))]
                continue
            numbers.discard("all")
            number = next(iter(numbers)) if len(numbers) == 1 else None
            self.vocab[form] = [Tok("AFF", key, number, " ".join(form))]

    def _scene_vocab_of(self, scene: Scene) -> dict[tuple[str, ...], list[Tok]]:
        last = self._scene_words
        if last is None or last[0] is not scene:
            last = self._scene_words = (scene, self._scene_vocab(scene))
        return last[1]

    def _scene_vocab(self, scene: Scene) -> dict[tuple[str, ...], list[Tok]]:
        """Words the lexicon lacks but the scene uses: unknown categories (present, or in the
        source's vocabulary), their supercategories, and colour values. A supercategory word
        that is also an absent category's noun ("bottle" over "glass bottle" instances, no
        plain bottle here) means the supercategory."""
        extra: dict[tuple[str, ...], list[Tok]] = {}
        lex = self.lexicon
        present = scene.categories()
        nouns: dict = {}
        for cat in sorted(present | set(scene.vocabulary)):
            if lex.entry(cat) is None:
                self._noun_forms(lex, cat, nouns)
        for f in scene.instances.values():
            col = f.get("color")
            if col and tuple(word_tokens(col)) not in self.vocab:
                extra[tuple(word_tokens(col))] = [Tok("COLOR", col)]
        for form, cats in nouns.items():
            if form not in self.vocab:
                extra[form] = [self._noun_tok(form, cats)]
        present_keys = {lex.key(c) or c for c in present}
        for sup in sorted({f["supercategory"] for f in scene.instances.values() if f["supercategory"]}):
            sg, pl = lex.supercategory_noun(sup), lex.supercategory_noun(sup, plural=True)
            for text, number in ((sg, "sg"), (pl, "pl")):
                key = tuple(word_tokens(text))
                toks = extra.get(key) or self.vocab.get(key, [])
                if key in extra or any(t.kind == "SUPER" and t.value == sup for t in toks):
                    continue
                if any(t.kind == "NOUN" and set(t.value) & present_keys for t in toks):
                    continue          # a category here has that noun: it stays the category
                extra[key] = [Tok("SUPER", sup, None if sg == pl else number, text)]
        return extra

    # ---- step 1: tokens ----------------------------------------------------------------------
    def tokenize(self, text: str, scene: Scene | None = None) -> list[Tok]:
        extra = self._scene_vocab_of(scene) if scene is not None else {}
        words = word_tokens(text)
        max_len = max([self.max_len] + [len(k) for k in extra])
        out: list[Tok] = []
        i = 0
        while i < len(words):
            for n in range(min(max_len, len(words) - i), 0, -1):
                key = tuple(words[i:i + n])
                toks = extra.get(key) or self.vocab.get(key)
                if toks:
                    out += toks
                    i += n
                    break
            else:
                out.append(Tok("UNKNOWN", words[i], text=words[i]))
                i += 1
        return self._resolve(out)

    @staticmethod
    def _next_head(toks: list[Tok], start: int) -> Tok | None:
        j = start
        while j < len(toks):
            t = toks[j]
            if t.kind in _MODIFIER_KINDS or (t.kind == "NOUN" and t.alt_color and j + 1 < len(toks)
                                            and toks[j + 1].kind in _HEAD_KINDS | {"NOUN"}):
                j += 1
            elif t.kind == "HEAD" and j + 1 < len(toks) and toks[j + 1].kind == "FILL":
                j += 2        # "one of the cars"
            else:
                return t
        return None

    def _resolve(self, toks: list[Tok]) -> list[Tok]:
        out = list(toks)
        # a colour-noun ("orange") directly before another noun or head is a colour
        for i, t in enumerate(out):
            if t.kind == "NOUN" and t.alt_color:
                nxt = next((u for u in out[i + 1:] if u.kind not in ("COLOR", "SIZE")), None)
                if nxt is not None and nxt.kind in _HEAD_KINDS | {"HEAD"}:
                    out[i] = Tok("COLOR", t.alt_color, text=t.text)
        # "on" / "in" / "near" are relations only when a noun phrase follows
        for i, t in enumerate(out):
            if t.kind == "PREP":
                nxt = self._next_head(out, i + 1)
                out[i] = Tok("REL", t.value, text=t.text) if nxt is not None and nxt.kind in _HEAD_KINDS \
                    else Tok("FILL", text=t.text)
        return out

    # ---- step 2: segments --------------------------------------------------------------------
    @staticmethod
    def segments(toks: list[Tok]) -> _Segment:
        main = _Segment()
        current = main
        after_and = negate = False
        for t in toks:
            if t.kind == "NOT":
                negate = True      # "not holding ...", "not the one on the couch": about the target
                continue
            if t.kind == "REL":
                parent = main if after_and or negate else current
                seg = _Segment(rel=t.value, parent=parent, negated=negate)
                parent.children.append(seg)
                current = seg
                after_and = negate = False
                continue
            if negate and t.kind not in ("FILL", "DET", "HEAD"):
                raise _Unverifiable(f"'not' before {t.text or t.kind!r}: only a relation can be negated")
            if t.kind == "AND":
                after_and = True
            elif t.kind not in ("FILL", "DET"):
                after_and = False
            current.toks.append(t)
        return main

    # ---- step 3: program ---------------------------------------------------------------------
    def program(self, seg: _Segment, scene: Scene, is_main: bool = True) -> tuple[Program, dict]:
        toks = seg.toks
        kinds = [t.kind for t in toks]
        cs: list[Constraint] = []
        cats: list[str] = []
        for t in toks:
            if t.kind == "NOUN":
                cats.append(self._pick_category(t, scene))
        if len(set(cats)) > 1:
            raise _Unverifiable(f"one phrase names several categories {sorted(set(cats))}")
        if cats:
            cs.append(Constraint("category", cats[0]))
        cs += [Constraint(_TOKEN_KINDS[t.kind], t.value) for t in toks if t.kind in _TOKEN_KINDS]
        nums = [t.value for t in toks if t.kind == "ORDNUM"]
        sides = [t.value for t in toks if t.kind == "FROM"]
        if len(nums) != len(sides):
            raise _Unverifiable(f"an ordinal without its side in {' '.join(t.text or t.kind for t in toks)!r}")
        cs += [Constraint("ordinal", f"{s}:{k}") for k, s in zip(nums, sides)]
        # a bare "item" / "object" / "thing" is a head too: it ranges over every instance
        # (for the target only: "next to the thing" says nothing a person could find)
        has_head = any(k in _HEAD_KINDS or (k == "HEAD" and is_main) for k in kinds)
        for child in seg.children:
            child_prog, _ = self._relation_object(child, scene)
            if child_prog is None:
                side = {"left_of": "left", "right_of": "right", "above": "top", "below": "bottom"}.get(child.rel)
                cs.append(Constraint("position", side))       # "left of the picture"
            else:
                cs.append(Constraint("not_relation" if child.negated else "relation", rel=child.rel, obj=child_prog))
        for t in toks:
            if t.kind == "ROLE":
                rel, obj = t.value
                cs.append(Constraint("relation", rel=rel, obj=Program((Constraint("category", self._spelled(obj, scene)),))))
        if not has_head:
            raise _Unverifiable("no noun, affordance phrase or 'item' for the "
                                + ("target" if is_main else "related object"))
        info = {
            "determiner": any(k in ("DET", "COUNT", "ALL") for k in kinds),
            "all": "ALL" in kinds,
            "count": "COUNT" in kinds,
            "selector": any(k in ("SUPERL", "ORD", "ORDNUM") for k in kinds),
            "definite": any(t.kind == "DET" and t.value == "the" for t in toks),
            "one_of": any(t.kind == "HEAD" and t.number == "sg" for t in toks) and "COUNT" in kinds,
            "number": self._number(toks),
        }
        return Program(tuple(cs)), info

    def _relation_object(self, seg: _Segment, scene: Scene) -> tuple[Program | None, dict]:
        if not any(t.kind in _HEAD_KINDS for t in seg.toks) and any(t.kind == "IMG" for t in seg.toks) \
                and seg.rel in ("left_of", "right_of", "above", "below") and not seg.children:
            return None, {}
        prog, info = self.program(seg, scene, is_main=False)
        if info["definite"] and info["number"] == "sg" and not info["count"] and not info["all"] \
                and not info["selector"]:
            n = len(evaluate(prog, scene))
            if n > 1:
                raise _Ambiguous(f"the related object {_fmt(prog)} is ambiguous: {n} instances match")
        return prog, info

    @staticmethod
    def _number(toks: list[Tok]) -> str | None:
        heads = [t for t in toks if t.kind in ("NOUN", "SUPER", "AFF", "HEAD")]
        # "the one on the left" / "of the things ..., the one" -> singular
        if any(t.kind == "HEAD" and t.number == "sg" for t in toks):
            return "sg"
        for t in heads:
            if t.number is not None:
                return t.number
        return None

    def _pick_category(self, t: Tok, scene: Scene) -> str:
        # the lexicon's key ("bus") stands for the dataset's own spelling of it ("Bus")
        spelled = {}
        for c in scene.categories() | set(scene.vocabulary):
            spelled.setdefault(self.lexicon.key(c) or c, c)
        cands = list(dict.fromkeys(spelled.get(c, c) for c in t.value))
        if not set(cands) & scene.categories():
            return self._loose(t, scene) or cands[0]
        if len(cands) == 1:
            return cands[0]
        present = [c for c in cands if c in scene.categories()]
        if len(present) > 1:
            raise _Unverifiable(f"{t.text!r} could mean any of {present}")
        return present[0] if present else cands[0]

    def _spelled(self, category: str, scene: Scene) -> str:
        """The scene's spelling of a lexicon category ("Skis" for "skis"), else the key."""
        for c in sorted(scene.categories() | set(scene.vocabulary)):
            if (self.lexicon.key(c) or c) == category:
                return c
        return category

    def _loose(self, t: Tok, scene: Scene) -> str | None:
        """'table' for the scene's only 'dining table' when no plain table is in the scene:
        people drop a compound noun's modifier when nothing else could be meant. Only for
        background ("stuff") nouns: a 'dog' is never the scene's hot dog, nor a 'bear' its teddy."""
        if not all(self.lexicon.is_stuff(c) for c in t.value):
            return None
        last = t.text.split(" ")[-1]
        found = {c for c in scene.categories()
                 for n in self.lexicon.nouns_of(c) if len(n.split(" ")) > 1 and n.split(" ")[-1] == last}
        return found.pop() if len(found) == 1 else None

    # ---- the checker -------------------------------------------------------------------------
    def parse(self, text: str, scene: Scene) -> tuple[Program, dict]:
        toks = self.tokenize(text, scene)
        unknown = [t.value for t in toks if t.kind == "UNKNOWN"]
        if unknown:
            raise _Unverifiable(f"unknown words {unknown}")
        return self.program(self.segments(toks), scene)

    def check(self, text: str, spec: SpecView, scene: Scene) -> CheckResult:
        if not scene.affordances:
            cats = set(self.lexicon.categories()) | scene.categories() | set(scene.vocabulary)
            scene = Scene(scene.image_id, scene.instances, scene.relations, self.lexicon.affordance_map(cats),
                          scene.vocabulary)
        try:
            prog, info = self.parse(text, scene)
        except _Ambiguous as e:
            return CheckResult(self.name, "fail", f"{text!r}: {e}")
        except _Unverifiable as e:
            return CheckResult(self.name, "unverifiable", f"{text!r}: cannot parse: {e}")
        selected = evaluate(prog, scene)
        targets = set(spec.target_ids)
        said = f"{text!r} parsed as [{_fmt(prog)}] selects {sorted(selected)}"
        if info["determiner"] and not info["all"] and not info["selector"]:
            if info["number"] == "sg" and len(selected) > 1:
                return CheckResult(self.name, "fail", f"{said}: a singular phrase for {len(selected)} instances")
            if info["number"] == "pl" and len(selected) == 1:
                return CheckResult(self.name, "fail", f"{said}: a plural phrase for one instance")
        if selected == targets:
            return CheckResult(self.name, "pass", said)
        return CheckResult(self.name, "fail", f"{said}, but the target is {sorted(targets) or 'nothing'}")

# token kind -> the constraint kind it stands for, one token one constraint
_TOKEN_KINDS = {"SUPER": "supercategory", "AFF": "affordance", "COLOR": "color", "SIZE": "size",
                "POS": "position", "SUPERL": "superlative", "ORD": "ordinal", "COUNT": "count",
                "GARMENT": "garment", "POSTURE": "posture"}


def _fmt(prog: Program) -> str:
    parts = []
    for c in prog:
        if c.kind == "relation":
            parts.append(f"{c.rel}([{_fmt(c.obj)}])")
        else:
            parts.append(f"{c.kind}={c.value}")
    return ", ".join(parts)


"""The `template` generator: a small English grammar over referring programs (embedded default).

A spec's program becomes one noun phrase:

    [determiner] [ordinal | superlative] [size] [colour] HEAD [ordinal "from the left"]
        [position] [extra affordance / supercategory clause] [relation (and relation)...]

HEAD is the category noun or a synonym (concept, simple), or an affordance phrase from the
lexicon with no category noun (complex: "thing you can sit on", "animal that barks").
Everything that describes the target comes before its relations, and a relation's object
carries its own modifiers after its noun, so "the dog on the left next to the bench on the
right" has one reading; a second relation of the target is joined with "and". The lexical
checker (engine/checks/lexical.py) parses exactly this convention back.

Phrasing is drawn from several equivalent forms with random.Random(f"{seed}:{spec_id}:{round}")
where round = len(feedback): reproducible, and different after each rejection.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from engine.generate.base import SpecView
from engine.lexicon import (EXTREME_WORDS, NUMBER_WORDS, ORDINAL_WORDS, SIZE_WORDS, SUPERLATIVE_WORDS,
                            Lexicon, indefinite_article, load_lexicon)
from engine.language.programs import Constraint, Program, Scene, evaluate
from engine.generate.people_words import written_garment, written_posture
from engine.lexicon import interactions as acts
from engine.lexicon.variety import ALTERNATE_SHARE, SUPER_ALTERNATES

POS_X = {
    "left": ("on the left", "on the left side", "on the left-hand side", "in the left part of the image",
             "towards the left", "toward the left edge"),
    "right": ("on the right", "on the right side", "on the right-hand side", "in the right part of the image",
              "towards the right", "toward the right edge"),
    "center": ("in the center", "in the middle", "in the centre", "in the central part of the image"),
}
POS_Y = {
    "top": ("at the top", "near the top", "in the upper part of the image", "at the top of the picture",
            "up at the top", "near the top edge"),
    "bottom": ("at the bottom", "near the bottom", "in the lower part of the image", "at the bottom of the picture",
               "down at the bottom", "near the bottom edge"),
    "middle": ("halfway up the image", "at mid-height", "at mid-height in the picture", "halfway down the picture"),
}
FAR = {"left": ("on the far left", "furthest to the left"),
       "right": ("on the far right", "furthest to the right"),
       "top": ("at the very top", "highest up in the picture"),
       "bottom": ("at the very bottom", "lowest down in the picture")}
FROM_SIDE = {"left": "from the left", "right": "from the right", "top": "from the top", "bottom": "from the bottom"}
RELATIONS = {
    "left_of": ("to the left of", "to the left of", "left of", "on the left of"),
    "right_of": ("to the right of", "to the right of", "right of", "on the right of"),
    # above / below are said of a thing directly over the other in the picture (margins._stacked)
    # ("right below" would read as a side next to "to the right of")
    "above": ("directly above", "just above"),
    "below": ("directly below", "just below", "directly beneath"),
    "next_to": ("next to", "beside", "alongside", "close to"),
    "on": ("on", "on top of"),
    "inside": ("inside", "in"),
    "overlapping": ("overlapping", "overlapping with"),
}
IN_PICTURE = ("in the picture", "in the image", "in this photo", "in the photo")
PLACED = ("located", "positioned", "seen", "visible")     # "the cup located on the left"
REDUCED_RELATIVE = 0.45    # complex: share of predicates said without "that is"
PLAIN_NOUN_SHARE = 0.55    # the category's plain noun; a synonym the rest of the time ...
CONCEPT_PLAIN_NOUN_SHARE = 0.7  # ... and in a concept prompt, which is the noun alone
_RELATIVE_PRONOUNS = {"that", "which", "who"}
_TRAILING_PREPOSITIONS = {"on", "at", "in", "to", "from", "with", "for", "of", "into", "over", "by"}


class TemplateGenerator:
    name = "template"
    model = "template-grammar-v1"
    prompt_version = "v1"

    def __init__(self, lexicon: Lexicon | None = None):
        self.lexicon = lexicon or load_lexicon()

    def generate(self, spec: SpecView, scene: Scene, seed: int, feedback: list[str]) -> str:
        rng = random.Random(f"{seed}:{spec.spec_id}:{len(feedback)}")
        return _Writer(self.lexicon, scene, rng, spec).write()


@dataclass
class _Head:
    words: str                       # "dog", "thing you can sit on"
    clauses: list[str]               # extra predicates ("also something you can lie down on")
    standalone: str = ""             # the affordance phrase as written ("something you can sit on")
    every: str = ""                  # its universal form ("everything you can sit on")
    ends_with_preposition: bool = False
    worn: bool = False               # a person found by what they wear or do ("whoever is dressed in white")


class _Writer:
    def __init__(self, lex: Lexicon, scene: Scene, rng: random.Random, spec: SpecView):
        self.lex, self.scene, self.rng, self.spec = lex, scene, rng, spec
        self.complex = spec.tier == "complex"
        targets = {scene.instances[i]["category"] for i in spec.target_ids if i in scene.instances}
        # complex text must not name the target's category, by noun or synonym
        self.forbidden = set().union(*(lex.nouns_of(c) for c in targets)) if targets else set()

    def pick(self, options):
        return self.rng.choice(list(options))

    # ---- top level ---------------------------------------------------------------------------
    def write(self) -> str:
        spec, prog = self.spec, self.spec.program
        if self.complex and prog.get("category") is not None:
            raise ValueError(f"spec {spec.spec_id}: a complex-tier program must not name a category "
                             f"({prog.dumps()})")
        if spec.tier == "concept":
            return self.concept()
        count = prog.get("count")
        n = int(count.value) if count is not None else len(spec.target_ids)
        card = spec.cardinality
        if card == "1:1" or (card == "1:All" and n <= 1):
            # "the only dog": said of a lone instance, and always when the program counts it
            only = (card == "1:All" and self.rng.random() < 0.5) or (card == "1:1" and count is not None) \
                or (card == "1:1" and prog.get("not_relation") is not None and self.rng.random() < 0.4)
            text = self.phrase(prog, plural=False, quant="the only" if only else "the", role="target")
        elif card == "1:N":
            text = self.phrase(prog, plural=True, quant=self.count_quant(n, required=count is not None), role="target")
        elif card == "1:All":
            # a number only where the planner found the members countable at a glance
            counted = ["both" if n == 2 else f"all {NUMBER_WORDS.get(n, 'the')}"] if count is not None else []
            quant = self.pick(["all the", "all of the", "every", "the", *counted])    # "all three dogs"
            text = self.phrase(prog, plural=quant != "every", quant=quant, role="target")
        else:  # negative: nothing matches; say it the way a person would say it if it did
            if count is not None:
                text = self.phrase(prog, plural=True, quant=self.count_quant(n, required=True), role="target")
            else:
                text = self.phrase(prog, plural=False, quant="the", role="target")
        return text

    def concept(self) -> str:
        prog, card = self.spec.program, self.spec.cardinality
        many = len(self.spec.target_ids) > 1
        plural = (many and self.rng.random() < 0.5) or (card == "negative" and self.rng.random() < 0.2)
        cat = prog.get("category")
        if cat is not None:
            return self.noun(str(cat.value), plural, CONCEPT_PLAIN_NOUN_SHARE)
        sup = prog.get("supercategory")
        if sup is not None:
            return self.lex.supercategory_noun(str(sup.value), plural)
        raise ValueError(f"spec {self.spec.spec_id}: a concept-tier program needs a category ({prog.dumps()})")

    def count_quant(self, n: int, required: bool) -> str:
        word = NUMBER_WORDS.get(n)
        options = [f"the {word}"] * 2 if word else []
        if n == 2:
            options.append("both")
        if not required or not options:
            options.append("the")
        return self.pick(options)

    # ---- noun phrases ------------------------------------------------------------------------
    def noun(self, category: str, plural: bool, plain_share: float = PLAIN_NOUN_SHARE) -> str:
        names = self.lex.names(category)
        # the plain noun most of the time, a synonym now and then
        sg, pl = names[0] if len(names) == 1 or self.rng.random() < plain_share else self.pick(names[1:])
        return pl if plural else sg

    def color_word(self, color: str) -> str:
        words = self.lex.color_words(color)
        return words[0] if len(words) == 1 or self.rng.random() < 0.8 else self.pick(words[1:])

    def phrase(self, prog: Program, plural: bool, quant: str, role: str) -> str:
        """A noun phrase for `prog`: quant is the determiner ("the", "the two", "every", "a")."""
        by_kind: dict[str, list[Constraint]] = {}
        for c in prog:
            by_kind.setdefault(c.kind, []).append(c)
        if role == "target" and quant == "the" and not plural and self.rng.random() < 0.5:
            contrast = self.other(prog)
            if contrast is not None:
                return contrast
        role_noun = self.role(by_kind, plural) if role == "target" else None
        h = _Head(role_noun, []) if role_noun else self.head(by_kind, plural, role)
        tail_prep = h.ends_with_preposition
        pre: list[str] = []
        post: list[str] = []          # predicates that follow the head ("on the left")
        for c in by_kind.get("superlative", []):
            pre.append(self.pick(SUPERLATIVE_WORDS[str(c.value)]))
        for c in by_kind.get("ordinal", []):
            side, k = str(c.value).split(":")
            k = int(k)
            # with a position beside it the adjective reads better ("the lowest broccoli halfway up")
            if k == 1 and (by_kind.get("position") or self.rng.random() < 0.6):
                pre.append(self.pick(EXTREME_WORDS[side]))
            elif k == 1:
                post.append(self.pick(FAR[side]))
            elif not self.complex and not tail_prep and self.rng.random() < 0.6:
                pre.append(ORDINAL_WORDS.get(k, f"{k}th"))
                post.insert(0, FROM_SIDE[side])
            else:
                post.append(f"{ORDINAL_WORDS.get(k, f'{k}th')} {FROM_SIDE[side]}")
        for c in by_kind.get("size", []):
            pre.append(self.pick(SIZE_WORDS[str(c.value)]))
        colors = [self.color_word(str(c.value)) for c in by_kind.get("color", [])]
        if colors:
            pre.append(" and ".join(colors))
        # what a person wears and how they are posed: right after the noun ("the person in the red top")
        worn = [written_garment(str(c.value), list(self.lex.color_words(str(c.value).split(":", 1)[1])), self.rng)
                for c in by_kind.get("garment", [])]
        worn += [written_posture(str(c.value), self.rng) for c in by_kind.get("posture", [])]
        post = worn + post
        self._worn = set(worn)     # "located" / "visible" go before a position, never before what is worn
        positions = [str(c.value) for c in by_kind.get("position", [])]
        if positions:
            post.append(self.position(positions))
        post += h.clauses
        relations = [self.relation(c, plural) for c in by_kind.get("relation", []) + by_kind.get("not_relation", [])]

        if quant == "every" and plural:
            quant = "all the"
        words = " ".join(w for w in [" ".join(pre), h.words] if w)
        if plural and not pre and h.words.startswith("ones ") and quant:
            # people: "those who can speak", "the two who can speak", "both of those who ..."
            rest = h.words[len("ones "):]
            lead = {"the": "those", "all the": "all those", "all of the": "all of those", "both": "both of those"}
            np = f"{lead.get(quant, quant)} {rest}"
        elif quant == "a":
            np = f"{indefinite_article(words)} {words}"
        elif quant:
            np = f"{quant} {words}"
        else:
            np = words
        if h.words == "one" and quant == "the" and not pre and role == "target" and self.complex and h.worn:
            np = self.pick(["the one", "the one", "whoever", "someone"])   # "whoever is dressed in white"
        elif self.complex and role == "target" and quant == "the" and not pre and not plural and not h.standalone \
                and h.words in ("one", "figure") and self.rng.random() < 0.25:
            np = "someone"        # "someone who is holding the cell phone"
        if h.standalone and quant in ("the", "a") and not pre and not plural and role == "target" \
                and self.rng.random() < 0.4:
            np = h.standalone  # "something you can sit on", "an animal that barks"
        elif h.every and quant == "every" and not pre:
            np = h.every
        return self.attach(np, post, relations, plural, tail_prep, role)

    def head(self, by_kind, plural: bool, role: str) -> _Head:
        """The head words, extra predicate clauses, and the affordance phrase's other forms."""
        clauses: list[str] = []
        if by_kind.get("category"):
            return _Head(self.noun(str(by_kind["category"][0].value), plural), clauses)
        sup = by_kind.get("supercategory")
        sup_sg = self.lex.supercategory_noun(str(sup[0].value)) if sup else None
        sup_pl = self.lex.supercategory_noun(str(sup[0].value), plural=True) if sup else None
        alternates = [a for a in SUPER_ALTERNATES.get(str(sup[0].value), ()) if not (
            {a[0].lower(), a[1].lower()} & self.forbidden)] if sup else []
        if alternates and self.rng.random() < ALTERNATE_SHARE:
            sup_sg, sup_pl = self.pick(alternates)     # "the gadget ..." as well as "the electronic device ..."
        if sup and (sup_sg.lower() in self.forbidden or sup_pl.lower() in self.forbidden):
            sup = None                 # "person" cannot be said of a person in complex text
        affs = by_kind.get("affordance", [])
        if affs:
            form = self.pick(self.lex.phrases(str(affs[0].value), plural))
            body, standalone, every = form.body, form.standalone, ""
            words = body.split(" ")
            if not plural and words[0] in ("thing", "one"):
                every = "every" + body  # "everything you can sit on", "everyone who can speak"
            if sup:
                if words[0] in ("thing", "things"):
                    body = " ".join([sup_pl if plural else sup_sg] + words[1:])
                    standalone = f"{indefinite_article(body)} {body}" if not plural else body
                    every = ""
                elif (sup_pl if plural else sup_sg).lower() not in body.lower():
                    clauses.append(sup_pl if plural else f"{indefinite_article(sup_sg)} {sup_sg}")
            for extra in affs[1:]:
                other = self.pick(self.lex.phrases(str(extra.value), plural))
                clauses.append(f"also {other.standalone}")
            return _Head(body, clauses, standalone, every, body.split(" ")[-1] in _TRAILING_PREPOSITIONS)
        if sup:
            return _Head(sup_pl if plural else sup_sg, clauses)
        if self.complex and role == "target" and (by_kind.get("garment") or by_kind.get("posture")):
            # a person found by what they wear or do, without "person" or a synonym
            return _Head("ones" if plural else "one", clauses, worn=True)
        if self.complex and role == "target" and self._all_people():
            # "the one riding the horse", "the figure on the left" ("someone ..." in phrase())
            word = self.pick(("one", "one", "figure"))
            return _Head(word + "s" if plural else word, clauses)
        if self.complex and role == "target":
            # a category the lexicon knows nothing of: a generic noun that does not name it
            word = self.pick(("item", "item", "object"))
            return _Head(word + "s" if plural else word, clauses)
        return _Head("objects" if plural else "object", clauses)

    def position(self, values: list[str]) -> str:
        xs = [v for v in values if v in POS_X]
        ys = [v for v in values if v in POS_Y]
        if len(xs) == 1 and len(ys) == 1 and xs[0] != "center" and ys[0] != "middle" and self.rng.random() < 0.6:
            y, x = ys[0], xs[0]
            return self.pick([f"in the {y} {x} corner", f"at the {y} {x}",
                              f"in the {'upper' if y == 'top' else 'lower'} {x} part of the image"])
        parts = [self.pick(POS_X[v]) for v in xs] + [self.pick(POS_Y[v]) for v in ys]
        unknown = [v for v in values if v not in POS_X and v not in POS_Y]
        if unknown:
            raise ValueError(f"spec {self.spec.spec_id}: unknown position values {unknown}")
        return ", ".join(parts)

    def relation(self, c: Constraint, plural: bool) -> str:
        if c.kind == "not_relation":
            # existential: "not holding an umbrella" (any umbrella)
            cat = c.obj.get("category")
            verb = self.pick(acts.verbs(c.rel, str(cat.value) if cat is not None else None))
            return f"not {verb} {self.phrase(c.obj, plural=False, quant='a', role='object')}"
        if c.rel in acts.VERBS or (c.rel, None) in acts.VERBS:
            cat = c.obj.get("category")
            words = self.pick(acts.verbs(c.rel, str(cat.value) if cat is not None else None))
        else:
            words = self.pick(RELATIONS[c.rel]) if c.rel in RELATIONS else c.rel.replace("_", " ")
        return f"{words} {self.object_phrase(c.obj)}"

    def role(self, by_kind: dict, plural: bool) -> str | None:
        """A role noun for a person whose program says what they ride or hold with a bare object
        category ("the skier" = the person riding skis); the relation is then said by the noun."""
        cats = by_kind.get("category", [])
        if (cats and str(cats[0].value) != "person") or (not cats and not self._all_people()):
            return None
        for c in by_kind.get("relation", []):
            if len(c.obj) == 1 and c.obj.get("category") is not None:
                nouns = acts.role_nouns(c.rel, str(c.obj.get("category").value))
                nouns = [n for n in nouns if not set(n[0].split(" ")) & self.forbidden]
                if nouns and self.rng.random() < 0.6:
                    by_kind["relation"] = [r for r in by_kind["relation"] if r is not c]
                    sg, pl = self.pick(nouns)
                    return pl if plural else sg
        return None

    def _all_people(self) -> bool:
        return bool(self.spec.target_ids) and all(
            self.scene.instances[t]["category"] == "person" for t in self.spec.target_ids if t in self.scene.instances)

    def other(self, prog: Program) -> str | None:
        """"the other dog, not the one on the couch": two of a kind, the target is the one the
        negated relation leaves; said only when the other one surely has the relation."""
        cat = prog.get("category")
        neg = [c for c in prog if c.kind == "not_relation"]
        if cat is None or len(prog) != 2 or len(neg) != 1 or self.spec.cardinality != "1:1":
            return None
        same = [i for i, f in self.scene.instances.items() if f["category"] == cat.value]
        positive = Program((cat, Constraint("relation", rel=neg[0].rel, obj=neg[0].obj)))
        if len(same) != 2 or any(self.scene.instances[i]["iscrowd"] for i in same) or \
                len(evaluate(positive, self.scene)) != 1:
            return None
        verb = self.pick(acts.verbs(neg[0].rel, str(neg[0].obj.get("category").value)
                                    if neg[0].obj.get("category") is not None else None))
        noun = self.noun(str(cat.value), False)
        return f"the other {noun}, not the one {verb} {self.object_phrase(neg[0].obj)}"

    def object_phrase(self, obj: Program) -> str:
        """The related object: 'the bench' when the description picks out one, else 'a bench'."""
        count = obj.get("count")
        if count is not None:
            inner = Program(tuple(c for c in obj if c.kind != "count"))
            n = int(count.value)
            return "one of " + self.phrase(inner, plural=True, quant=f"the {NUMBER_WORDS.get(n, n)}", role="object")
        matches = evaluate(obj, self.scene)
        quant = "the" if len(matches) <= 1 else "a"
        return self.phrase(obj, plural=False, quant=quant, role="object")

    def relative_pronoun(self, np: str, role: str = "object") -> str:
        """'who' after people ("the person who is ..."), else 'that' or 'which'."""
        if (self.lex.nouns_of("person") | {"someone"}) & set(np.lower().split(" ")):
            return "who"
        if role == "target" and self.spec.target_ids and all(
                self.scene.instances[t]["supercategory"] == "person" for t in self.spec.target_ids):
            return "who"
        return self.pick(["that", "which"])

    def attach(self, np: str, post: list[str], relations: list[str], plural: bool, tail_prep: bool,
               role: str) -> str:
        be = "are" if plural else "is"
        relative = self.complex or tail_prep
        if not post and not relations:
            if role == "target" and self.rng.random() < 0.05 and not tail_prep:
                return f"{np} {self.pick(IN_PICTURE)}"
            return np
        if relative and np == "whoever":
            return f"whoever {be} " + " and ".join(post + relations)
        has_pronoun = bool(_RELATIVE_PRONOUNS & set(np.split(" ")))
        if relative and not tail_prep and not has_pronoun and self.rng.random() < REDUCED_RELATIVE:
            relative = False      # "the kitchen item third from the right": no "that is" every time
        if relative:
            # "something you can sit on that is on the left and next to the table";
            # after a head that already has a relative clause: "an animal that barks and is ..."
            preds = " and ".join(post + relations)
            if has_pronoun:
                return f"{np} and {be} {preds}"
            if post and not relations and post[0] not in getattr(self, "_worn", ()) and self.rng.random() < 0.35:
                return f"{np} {self.pick(PLACED)} {preds}"     # "the appliance located at the bottom"
            return f"{np} {self.relative_pronoun(np, role)} {be} {preds}"
        text = np
        if post and role == "target" and not post[0].startswith("from ") and post[0] not in getattr(self, "_worn", ()) \
                and self.rng.random() < 0.15:
            text += " " + self.pick(PLACED)
        if post:
            text += " " + " ".join(post) if len(post) == 1 else " " + ", ".join(post)
        if relations:
            first = relations[0]
            if self.rng.random() < 0.35:
                first = f"{self.relative_pronoun(np, role)} {be} {first}"
            # after a position a comma keeps the relation off the picture ("..., which is above"),
            # and "to the" keeps "on the right right of" from happening
            if post and first.startswith(("left of", "right of")):
                first = "to the " + first
            sep = ", " if post else " "
            text += sep + first + "".join(f" and {r}" for r in relations[1:])
        return text

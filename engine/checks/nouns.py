"""The `no_category_noun` checker: complex-tier text must not name the target's category.

SAM3-I's complex tier finds the target through function, affordance, state or reasoning, so
its text may not contain the target category's noun, plural, synonyms or hyponyms (whole
words, any case). A longer noun of another category that merely contains one ("hot dog" for
a dog target, "teddy bear" for a bear) does not count. Other tiers pass unchecked.
"""
from __future__ import annotations

from engine.checks.base import CheckResult
from engine.generate.base import SpecView
from engine.lexicon import Lexicon, load_lexicon, word_tokens
from engine.language.programs import Scene


def _find(tokens: list, phrase: tuple[str, ...]) -> int:
    n = len(phrase)
    return next((i for i in range(len(tokens) - n + 1) if tuple(tokens[i:i + n]) == phrase), -1)


class NoCategoryNounChecker:
    name = "no_category_noun"

    def __init__(self, lexicon: Lexicon | None = None):
        self.lexicon = lexicon or load_lexicon()
        self._lexical = None
        self._cache: dict[tuple[str, ...], tuple[dict, list]] = {}

    def _nouns(self, categories: tuple[str, ...]):
        """The target categories' nouns (tokens -> category), and other categories' longer
        nouns that contain one of them, longest first. Cached per category set."""
        if categories not in self._cache:
            forbidden = {tuple(word_tokens(n)): cat for cat in categories for n in self.lexicon.nouns_of(cat)}
            own = {self.lexicon.key(c) or c for c in categories}
            others = {tuple(word_tokens(n)) for cat in self.lexicon.categories() if cat not in own
                      for n in self.lexicon.nouns_of(cat)}
            containing = sorted((o for o in others if len(o) > 1 and any(_find(list(o), f) >= 0 for f in forbidden)),
                                key=len, reverse=True)
            self._cache[categories] = (forbidden, containing)
        return self._cache[categories]

    def _parser(self):
        if self._lexical is None:
            from engine.checks.lexical import LexicalChecker
            self._lexical = LexicalChecker(self.lexicon)
        return self._lexical

    def check(self, text: str, spec: SpecView, scene: Scene) -> CheckResult:
        if spec.tier != "complex":
            return CheckResult(self.name, "pass", f"not checked on the {spec.tier} tier")
        categories = sorted({scene.instances[i]["category"] for i in spec.target_ids if i in scene.instances})
        categories += [str(c.value) for c in spec.program if c.kind == "category" and c.value not in categories]
        forbidden, containing = self._nouns(tuple(categories))
        tokens: list = word_tokens(text)
        # blank out longer nouns of other categories that contain a forbidden one ("hot dog")
        for other in containing:
            while (i := _find(tokens, other)) >= 0:
                tokens[i:i + len(other)] = [None] * len(other)
        # a noun that is also a colour word ("orange") is a colour before another noun
        colors = {w for ws in self.lexicon.colors().values() for w in ws}
        if any(len(f) == 1 and f[0] in colors for f in forbidden):
            toks = self._parser().tokenize(text, scene)
            adjectives = {t.text for t in toks if t.kind == "COLOR"} - \
                {t.text for t in toks if t.kind == "NOUN" and set(t.value) & set(categories)}
            tokens = [None if w in adjectives else w for w in tokens]
        hits = sorted({(cat, " ".join(f)) for f, cat in forbidden.items() if _find(tokens, f) >= 0})
        if hits:
            named = ", ".join(f"{word!r} names {cat!r}" for cat, word in hits)
            return CheckResult(self.name, "fail", f"complex text {text!r} names its target: {named}")
        return CheckResult(self.name, "pass", f"no noun of {categories or 'any target category'}")

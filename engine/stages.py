"""The per-unit stages: describe -> plan -> generate -> check -> dedup.

`UnitWorker` holds what is costly to build once (lexicon, generator, checkers, and in model
backends the model itself) and processes one work unit at a time. It knows nothing of Ray:
`pipelines/` wraps it in actors, `engine.build` calls it in a loop.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pandas as pd

from engine.checks.base import CheckResult
from engine.checks.lexical import LexicalChecker
from engine.checks.nouns import NoCategoryNounChecker
from engine.checks.program import ProgramChecker
from engine.config import EngineConfig
from engine.checks.dedup import select_diverse
from engine.scene.facts import describe
from engine.generate.base import SpecView
from engine.sources.imageio import load_rgb
from engine.lexicon import Lexicon, lexicon_for
from engine.language.margins import cut_by_things
from engine.language.plan import Planner
from engine.language.programs import Scene
from schemas.facts import FACTS, RELATIONS_TABLE
from schemas.instructions import INSTRUCTIONS
from schemas.specs import SPECS


@dataclass
class UnitResult:
    unit_id: str
    facts: pd.DataFrame
    relations: pd.DataFrame
    specs: pd.DataFrame
    instructions: pd.DataFrame
    validated: bool = False   # every frame came from its Table's validation (UnitStore.write records it)

    def tables(self) -> dict:
        return {"facts": (FACTS, self.facts), "relations": (RELATIONS_TABLE, self.relations),
                "specs": (SPECS, self.specs), "instructions": (INSTRUCTIONS, self.instructions)}


def make_generator(cfg: EngineConfig, lexicon: Lexicon, load=load_rgb):
    backend = cfg.generate.backend
    if backend == "template":
        from engine.generate.template import TemplateGenerator
        return TemplateGenerator(lexicon)
    if backend == "openai":
        from engine.generate.openai_backend import OpenAIGenerator
        return OpenAIGenerator(cfg.generate, lexicon, load=load)
    if backend == "vllm":
        from engine.generate.vllm_backend import VllmGenerator
        return VllmGenerator(cfg.generate, lexicon, load=load)
    raise ValueError(f"generate.backend={backend!r} is not available (embedded default: 'template')")


def make_checkers(cfg: EngineConfig, lexicon: Lexicon, load=load_rgb) -> dict:
    checkers = {"program": ProgramChecker((cfg.facts.small_frac, cfg.facts.large_frac)), "lexical": LexicalChecker(lexicon),
                "no_category_noun": NoCategoryNounChecker(lexicon)}
    # model-backed checkers only when asked for (policy or check.extra): the default stays offline
    wanted = set(cfg.check.extra).union(*cfg.check.policy.values())
    if "mllm_choice" in wanted:
        from engine.checks.mllm_choice import MLLMChoiceChecker
        http = None
        if cfg.generate.backend == "vllm" and not cfg.check.mllm.base_url:
            # the build's own engines answer the questions too (one model, as in the paper)
            from engine.generate.replicas import ReplicaClient
            http = ReplicaClient.from_config(cfg.check.mllm, cfg.generate.endpoints)
        checkers["mllm_choice"] = MLLMChoiceChecker(cfg.check.mllm, lexicon, load=load,
                                                    base_url=cfg.check.mllm.base_url or cfg.generate.base_url,
                                                    no_color_supercategories=cfg.plan.no_color_supercategories,
                                                    http=http)
    if "sam3i" in wanted:
        from engine.checks.sam3i import Sam3iChecker
        checkers["sam3i"] = Sam3iChecker(cfg.check.sam3i, cfg.check.sam3i_iou, load=load)
    return checkers


def _target_category(spec: SpecView, scene: Scene) -> str:
    if spec.target_ids:
        return ",".join(sorted({scene.instances[t]["category"] for t in spec.target_ids}))
    # a negative's absent concept: its category, or every category that has its affordance
    c = spec.program.get("category")
    if c is not None:
        return str(c.value)
    a = spec.program.get("affordance")
    return ",".join(sorted(cat for cat, keys in scene.affordances.items() if a and a.value in keys))


class UnitWorker:
    def __init__(self, cfg: EngineConfig, lexicon: Lexicon | None = None, load=load_rgb):
        self.cfg = cfg
        self.lexicon = lexicon or lexicon_for(cfg)
        self.generator = make_generator(cfg, self.lexicon, load)
        self.checkers = make_checkers(cfg, self.lexicon, load)
        self.load = load

    def bind(self, images: pd.DataFrame, instances: pd.DataFrame) -> None:
        """Hand the unit's images and masks to model backends that send pictures."""
        for part in (self.generator, *self.checkers.values()):
            bind = getattr(part, "bind_unit", None)
            if bind is not None:
                bind(images, instances)

    # -- describe + plan -----------------------------------------------------------------
    def scenes(self, images: pd.DataFrame, facts: pd.DataFrame, relations: pd.DataFrame) -> dict[str, Scene]:
        """Scenes with the lexicon's view of each category: supercategories text may use,
        affordance keys, and the source's negative vocabulary (engine/sources/vocabulary.py)."""
        from engine.sources.vocabulary import source_of, vocabulary
        lex = self.lexicon
        used: dict[str, set[str]] = {}
        for image_id, cat in zip(facts["image_id"], facts["category"]):
            used.setdefault(source_of(image_id), set()).add(cat)
        vocab = {}
        for sid, cats in used.items():
            src = self.cfg.sources.get(sid)
            vocab[sid] = frozenset(vocabulary(src.exhaustive if src else "used", sorted(cats), lex))
        out = {}
        # each image's rows found once (a per-image filter of the unit's tables grows with the unit)
        facts_of = dict(tuple(facts.groupby("image_id", sort=False)))
        relations_of = dict(tuple(relations.groupby("image_id", sort=False))) if len(relations) else {}
        federated = {r["image_id"]: r for r in images.to_dict("records")
                     if isinstance(r.get("verified_absent"), str) or isinstance(r.get("not_exhaustive"), str)}
        for i in images["image_id"]:
            scene = Scene.from_tables(i, facts_of.get(i, facts.iloc[:0]), relations_of.get(i, relations.iloc[:0]))
            for f in scene.instances.values():
                f["supercategory"] = lex.supercategory_for(f["category"], f["supercategory"])
                f["stuff"] = lex.is_stuff(f["category"])
                f["supercategory_says_it"] = bool(f["supercategory"]) and lex.supercategory_names(
                    f["category"], f["supercategory"])
            for f in scene.instances.values():
                # how much of its outline runs along things (not a floor or wall behind it)
                f["cut_by_things"] = cut_by_things(f.get("outline_contact"), scene.instances)
            v = vocab.get(source_of(i), frozenset())
            if i in federated:
                v = self._federate(scene, federated[i])
            # a pile with unmarked members is not marked in full (engine.scene.unmarked)
            scene.incomplete = scene.incomplete | {f["category"] for f in scene.instances.values() if f.get("unmarked_kin")}
            scene.affordances = lex.affordance_map(scene.categories() | v)
            scene.vocabulary = v
            scene.unknown = frozenset(c for c in scene.categories() | v if lex.entry(c) is None)
            out[i] = scene
        return out

    @staticmethod
    def _federate(scene: Scene, image: dict) -> frozenset[str]:
        """An LVIS-style image knows only some categories: those marked in full and those
        checked absent. Its negatives come from the checked-absent ones alone (whatever the
        source's vocabulary says: another image's category may sit here unmarked)."""
        split = lambda v: frozenset(x for x in v.split(",") if x) if isinstance(v, str) else frozenset()
        scene.incomplete = split(image.get("not_exhaustive"))
        absent = split(image.get("verified_absent"))
        scene.verified = (scene.categories() - scene.incomplete) | absent
        return absent | (scene.categories() - scene.incomplete)

    def plan(self, scenes: dict[str, Scene], unit_id: str) -> pd.DataFrame:
        # negatives name things (categories with affordances), not stuff like "wall" or "sky",
        # whose nouns overlap too loosely with present objects ("table", "fruit")
        things = [c for c in self.lexicon.categories() if self.lexicon.affordances(c) and not self.lexicon.is_stuff(c)]
        holders: dict[str, set[str]] = {}
        for cat, keys in self.lexicon.affordance_map().items():
            for k in keys:
                holders.setdefault(k, set()).add(cat)
        planner = Planner(self.cfg.plan, things, seed=self.cfg.generate.seed,
                          size_thresholds=(self.cfg.facts.small_frac, self.cfg.facts.large_frac),
                          key_holders={k: frozenset(v) for k, v in holders.items()})
        rows = [s.to_row(unit_id) for scene in scenes.values() for s in planner.plan(scene)]
        return SPECS.from_records(rows)

    # -- generate + check ----------------------------------------------------------------
    def required_checks(self, spec: SpecView) -> list[str]:
        key = "negative" if spec.cardinality == "negative" else spec.tier
        return self.cfg.check.policy.get(key, ["program"])

    def checks_for(self, spec: SpecView) -> list[str]:
        names = ["program", "lexical"] + (["no_category_noun"] if spec.tier == "complex" else [])
        return list(dict.fromkeys(names + self.required_checks(spec) + self.cfg.check.extra))

    def generate_and_check(self, spec: SpecView, scene: Scene, image_row: dict) -> dict:
        seed = self.cfg.generate.seed
        feedback: list[str] = []
        required = self.required_checks(spec)
        for rnd in range(self.cfg.check.max_rounds):
            text = self.generator.generate(spec, scene, seed, feedback)
            results: list[CheckResult] = []
            for name in self.checks_for(spec):
                if name not in self.checkers:
                    results.append(CheckResult(name, "unverifiable", f"checker {name!r} is not configured"))
                else:
                    results.append(self.checkers[name].check(text, spec, scene))
            failed = [r for r in results if r.checker in required and r.verdict != "pass"]
            if not failed:
                break
            feedback += [f"{r.checker}: {r.reason}" for r in failed]
        cid = "i-" + hashlib.sha256(f"{spec.spec_id}|{rnd}|{text}".encode()).hexdigest()[:16]
        return {
            "instruction_id": cid, "spec_id": spec.spec_id, "image_id": spec.image_id,
            "source_id": image_row["source_id"], "unit_id": image_row["unit_id"], "tier": spec.tier,
            "subtype": spec.subtype, "cardinality": spec.cardinality, "target_ids": list(spec.target_ids),
            "category": _target_category(spec, scene), "program": spec.program.dumps(), "text": text,
            "backend": self.generator.name, "model": self.generator.model,
            "prompt_version": self.generator.prompt_version, "seed": seed, "rounds": rnd + 1,
            # `required`: the checks whose pass accepted the row (check.policy), i.e. what verified it
            "checks": json.dumps([r.to_json() | {"required": r.checker in required} for r in results]),
            "accepted": not failed,
            "reject_reason": "; ".join(f"{r.checker}: {r.reason}" for r in failed),
        }

    def dedup(self, rows: list[dict]) -> list[dict]:
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(rows):
            if r["accepted"]:
                groups.setdefault((r["image_id"], tuple(r["target_ids"]), r["tier"], r["cardinality"]), []).append(i)
        for idx in groups.values():
            keep, dropped = select_diverse([rows[i]["text"] for i in idx], self.cfg.dedup.threshold,
                                           self.cfg.dedup.max_per_target_tier, self.cfg.dedup.method)
            for local, why in dropped.items():
                r = rows[idx[local]]
                r["accepted"] = False
                r["reject_reason"] = f"dedup: {why.replace('candidate ', 'text ')}"
        return rows

    # -- one unit ------------------------------------------------------------------------
    def run(self, unit_id: str, images: pd.DataFrame, instances: pd.DataFrame) -> UnitResult:
        facts, relations = describe(images, instances, self.cfg.facts, load=self.load)
        self.bind(images, instances)
        scenes = self.scenes(images, facts, relations)
        specs = self.plan(scenes, unit_id)
        image_rows = {r["image_id"]: r for r in images.to_dict("records")}
        records = specs.to_dict("records")

        def one(s: dict) -> dict:
            return self.generate_and_check(SpecView.from_row(s), scenes[s["image_id"]], image_rows[s["image_id"]])

        n = self.cfg.generate.concurrency
        if n > 1 and len(records) > 1:
            # specs in flight together: the model server batches them (continuous batching);
            # rows keep the specs' order
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(max_workers=n, thread_name_prefix="spec") as pool:
                rows = list(pool.map(one, records))
        else:
            rows = [one(s) for s in records]
        rows = self.dedup(rows)
        # describe and plan return validated frames (Table.from_records), and so is this one
        return UnitResult(unit_id, facts, relations, specs, INSTRUCTIONS.from_records(rows), validated=True)

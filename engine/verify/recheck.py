"""Re-run the configured checkers on sampled instructions and report what changed.

The scenes are rebuilt from the release itself (each sample's image bytes and instance masks)
with the same pieces a build uses: `engine.scene.facts.describe` for facts and relations, and a
`UnitWorker` for the lexicon-aware scenes, the configured checkers and the per-tier choice of
which checks run and which must pass. A change means the stored check results no longer
reproduce: the code, the lexicon or the config moved since the release was built (or the
release was tampered with).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pandas as pd

from engine.sources import imageio
from engine.config import EngineConfig
from engine.generate.base import SpecView
from engine.language.programs import Program
from engine.verify.integrity import SampleData

URI_PREFIX = "release-sample://"


@dataclass(frozen=True)
class Change:
    item_id: str
    instruction_id: str
    checker: str          # a checker name, or "decision" for accepted/rejected
    stored: str
    now: str
    reason: str

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class RecheckResult:
    rechecked: int
    changes: list[Change]
    skipped: list[str]    # items that could not be rechecked, with why

    @property
    def changed_items(self) -> int:
        return len({c.item_id for c in self.changes})

    def to_json(self) -> dict:
        return {"rechecked": self.rechecked, "changed_items": self.changed_items,
                "changes": [c.to_json() for c in self.changes], "skipped": self.skipped}


def tables_from_samples(samples: list[SampleData]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, bytes]]:
    """Images and instances tables (the columns `describe` reads) from shard samples, and the
    image bytes under the pseudo-uri each images row names."""
    images, instances, pixels = [], [], {}
    for s in samples:
        img = s.meta["image"]
        uri = f"{URI_PREFIX}{s.shard}#{s.key}"
        pixels[uri] = s.image
        images.append({**img, "uri": uri})
        for i in s.meta["instances"]:
            x, y, w, h = i["bbox"]
            instances.append({
                "instance_id": i["instance_id"], "image_id": img["image_id"], "source_id": img["source_id"],
                "orig_id": i["orig_id"], "category_id": i["category_id"], "category": i["category"],
                "supercategory": i["supercategory"], "iscrowd": bool(i["iscrowd"]), "area": float(i["area"]),
                "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h, "rle": i["segmentation"]["counts"],
                "height": img["height"], "width": img["width"],
            })
    return pd.DataFrame(images), pd.DataFrame(instances), pixels


def _stored(checks_json: str) -> dict[str, str]:
    try:
        return {c["checker"]: c["verdict"] for c in json.loads(checks_json or "[]")}
    except (ValueError, KeyError, TypeError):
        return {}


def recheck(items: pd.DataFrame, samples: dict[tuple[str, str], SampleData], cfg: EngineConfig,
            accepted: bool = True) -> RecheckResult:
    """Re-run the checks of every item whose sample was read; compare with the stored results."""
    from engine.scene.facts import describe
    from engine.stages import UnitWorker

    usable, skipped = [], []
    for r in items.itertuples(index=False):
        s = samples.get((r.shard, r.sample_key)) if isinstance(r.shard, str) else None
        if s is None or s.meta is None or s.image is None:
            skipped.append(f"{r.item_id}: its image is not readable in this release")
        else:
            usable.append((r, s))
    if not usable:
        return RecheckResult(0, [], skipped)
    uniq = list({(s.shard, s.key): s for _, s in usable}.values())
    images, instances, pixels = tables_from_samples(uniq)

    def load(uri: str, size=None):
        return imageio.decode_rgb(pixels[uri], size)

    worker = UnitWorker(cfg, load=load)
    worker.bind(images, instances)
    facts, relations = describe(images, instances, cfg.facts, load=load)
    scenes = worker.scenes(images, facts, relations)
    changes: list[Change] = []
    for r, _ in usable:
        spec = SpecView(r.spec_id, r.image_id, r.tier, r.subtype, r.cardinality, tuple(r.target_ids),
                        Program.loads(r.program))
        scene = scenes[r.image_id]
        now = {}
        for name in worker.checks_for(spec):
            checker = worker.checkers.get(name)
            res = checker.check(r.text, spec, scene) if checker else None
            now[name] = (res.verdict, res.reason) if res else ("unverifiable", f"checker {name!r} is not configured")
        stored = _stored(r.checks)
        for name in sorted(set(now) | set(stored)):
            old, (new, why) = stored.get(name, "(not run)"), now.get(name, ("(not run)", ""))
            if old != new:
                changes.append(Change(r.item_id, r.instruction_id, name, old, new, why))
        required = worker.required_checks(spec)
        passes = all(now.get(n, ("unverifiable",))[0] == "pass" for n in required)
        was = accepted
        dedup = not accepted and str(getattr(r, "reject_reason", "")).startswith("dedup")
        if passes != was and not dedup:
            failing = [f"{n}: {now[n][1]}" for n in required if now.get(n, ("",))[0] != "pass"]
            changes.append(Change(r.item_id, r.instruction_id, "decision", "accepted" if was else "rejected",
                                  "accepted" if passes else "rejected", "; ".join(failing)))
    return RecheckResult(len(usable), changes, skipped)

"""`python -m engine.lexicon draft SOURCE`: a draft lexicon extension for a source's categories.

For every category a source uses that the lexicon (with the extensions the config names) does
not know, it writes an entry of the extension format (engine/data/lexicon.yaml's header):
- with generate.backend=template (the default), a skeleton: the readable noun and its inflect
  plural, the source's supercategory when it names a real group, and empty synonyms,
  appearance and affordances for a person to fill in;
- with generate.backend=openai, the configured OpenAI-compatible server proposes each entry
  (engine/prompts/lexicon_draft_v1.yaml). A proposal is validated exactly as a lexicon file is
  (phrase forms, no colour words, no phrase naming its own category); a rejected one becomes a
  skeleton with the reason written above it, so nothing unchecked reaches the file.
The file says it is a draft: a person reviews it, then names it in the config
(`lexicon.extend` or `sources.<id>.lexicon`).

    python -m engine.lexicon draft ../shared/data/custom/crystl_bottles/test -o bottles.lexicon.yaml
    python -m engine.lexicon draft SOURCE --set generate.backend=openai --set generate.base_url=http://host:8000/v1
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

import yaml

from engine.language import names
from engine.config import GenerateConfig, load_config
from engine.lexicon import (DEFAULT_PATH, CategorySpec, Lexicon, LexiconError, LexiconFile, _read, lexicon_for,
                            merge)

PROMPT_DIR = Path(__file__).resolve().parents[1] / "prompts"
DRAFT_PROMPT = "lexicon_draft_v1"
HEADER = """\
# DRAFT lexicon extension for source {source!r} ({n} categories the lexicon lacks), written by
# `python -m engine.lexicon draft` with the {backend} backend. Review every entry before use:
#   noun / plural  how text names the category ("closed glass bottle" rather than "glass bottle close")
#   synonyms       other nouns for exactly this category
#   supercategory  a broader noun that does not name it; complex text says "the <supercategory> ..."
#   appearance     words for how every member looks (no colours): a complex-tier state
#   affordances    keys of `affordances:` below (function / affordance / state phrases that find the
#                  category without naming it); each phrase singular "something ..."/"a ...", plural
#                  "<plural noun> ..."/"those ..."
# Then name this file in the build config: lexicon.extend: [this file] or sources.<id>.lexicon.
"""


@dataclass
class Draft:
    category: str
    entry: dict                        # a CategorySpec as plain data
    affordances: dict                  # key -> AffordanceSpec data
    supercategories: dict              # key -> SupercategorySpec data
    note: str = ""                     # why a model proposal was rejected, or what the model said


def source_categories(source: str, images: str | None = None, fmt: str | None = None) -> tuple[str, dict[str, str]]:
    """(source id, used category -> source supercategory), read through the source adapters."""
    from engine.sources.ingest import resolve_source
    from engine.sources import read_source
    spec = resolve_source(source, images, format=fmt)
    doc = read_source(spec).doc
    used = {a.get("category_id") for a in doc["annotations"] if isinstance(a, dict)}
    cats = {}
    for c in doc["categories"]:
        if isinstance(c, dict) and c.get("id") in used and isinstance(c.get("name"), str) \
                and not names.is_placeholder(c["name"]):
            cats[c["name"].strip()] = str(c.get("supercategory") or "")
    return spec.source_id, dict(sorted(cats.items()))


def skeleton(category: str, source_super: str, lexicon: Lexicon) -> Draft:
    noun = names.readable_noun(category)
    sup = lexicon.supercategory_for(category, source_super)
    return Draft(category, {"noun": noun, "plural": names.plural(noun), "synonyms": [],
                            "supercategory": sup or None, "appearance": [], "affordances": []}, {}, {})


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", names.readable_noun(text).lower()).strip("_") or "category"


def from_answer(category: str, answer: dict, source_super: str, lexicon: Lexicon) -> Draft:
    """A Draft from the model's JSON answer (shape per the prompt's schema)."""
    if not isinstance(answer, dict):
        raise LexiconError(f"the answer is not a JSON object: {str(answer)[:200]!r}")
    noun = str(answer.get("noun") or "").strip()
    if not noun:
        raise LexiconError("the answer has no noun")
    slug = _slug(category)
    sup_text = str(answer.get("supercategory") or "").strip()
    supers, sup_key = {}, lexicon.supercategory_for(category, source_super) or None
    if sup_text:
        sup_key = next((k for k, (sg, _) in lexicon.supercategories().items() if sg.lower() == sup_text.lower()), None)
        if sup_key is None:
            sup_key = f"{slug}_group"
            supers[sup_key] = {"singular": sup_text,
                               "plural": str(answer.get("supercategory_plural") or names.plural(sup_text)).strip()}
    affs = {}
    for k, item in enumerate(answer.get("knowledge") or [], 1):
        if not isinstance(item, dict):
            raise LexiconError(f"knowledge item {k} is not an object")
        affs[f"{slug}_{k}"] = {"type": item.get("type"), "singular": [str(item.get("singular", "")).strip()],
                               "plural": [str(item.get("plural", "")).strip()]}
    entry = {"noun": noun, "plural": str(answer.get("plural") or names.plural(noun)).strip(),
             "synonyms": [str(s).strip() for s in answer.get("synonyms") or [] if str(s).strip()],
             "supercategory": sup_key, "appearance": [str(w).strip() for w in answer.get("appearance") or []
                                                      if str(w).strip()][:3],
             "affordances": list(affs)}
    return Draft(category, entry, affs, supers)


def validate(drafts: list[Draft], base_files: list[str]) -> None:
    """Raise LexiconError unless the drafts load as an extension of the configured lexicon."""
    data = _read(DEFAULT_PATH)
    for f in base_files:
        data = merge(data, _read(Path(f)), f)
    merged = merge(data, to_file(drafts), "the draft")
    Lexicon(merged, "the draft")


def to_file(drafts: list[Draft]) -> LexiconFile:
    try:
        return LexiconFile(version=1,
                           supercategories={k: v for d in drafts for k, v in d.supercategories.items()},
                           affordances={k: v for d in drafts for k, v in d.affordances.items()},
                           categories={d.category: CategorySpec(**{k: v for k, v in d.entry.items() if v not in (None, [])})
                                       for d in drafts})
    except Exception as e:          # pydantic's ValidationError: a wrong type, an unknown field
        raise LexiconError(str(e).splitlines()[0] + ": " + " ".join(str(e).splitlines()[1:3])) from None


class ModelDrafter:
    """Asks an OpenAI-compatible server (generate.* settings) for one entry per category."""

    def __init__(self, cfg: GenerateConfig):
        from engine.generate.llm_client import ChatClient, structured_output
        raw = yaml.safe_load((PROMPT_DIR / f"{DRAFT_PROMPT}.yaml").read_text())
        self.prompt = raw
        self.cfg = cfg
        self.client = ChatClient.from_config(cfg)
        self.model = cfg.model or self.client.first_model()
        self.response = structured_output(cfg.structured_output, "lexicon_entry", raw["schema"])

    def ask(self, category: str, source_super: str, others: list[str]) -> dict:
        from engine.generate.llm_client import derive_seed, parse_json_answer
        user = Template(self.prompt["user"]).substitute(name=category, source_supercategory=source_super,
                                                        others=", ".join(others) or "none")
        body = {"model": self.model, "temperature": self.cfg.temperature, "max_tokens": max(self.cfg.max_tokens, 400),
                "seed": derive_seed(self.cfg.seed, "lexicon-draft", category),
                "messages": [{"role": "system", "content": self.prompt["system"]}, {"role": "user", "content": user}],
                **self.response}
        content = self.client.chat(body).get("content")
        answer = parse_json_answer(content)
        if answer is None:
            raise LexiconError(f"the answer is not JSON: {str(content)[:200]!r}")
        return answer


def draft(source_id: str, categories: dict[str, str], lexicon: Lexicon, base_files: list[str],
          drafter: ModelDrafter | None = None) -> list[Draft]:
    """One Draft per category the lexicon lacks (or knows only from its everyday-noun fallback,
    which has no kind facts): the model's when it validates, else a skeleton."""
    out: list[Draft] = []
    lacking = [c for c in categories if lexicon.entry(c) is None or lexicon.is_fallback(c)]
    for cat in lacking:
        d = skeleton(cat, categories[cat], lexicon)
        if drafter is not None:
            try:
                proposal = from_answer(cat, drafter.ask(cat, categories[cat], [c for c in lacking if c != cat]),
                                       categories[cat], lexicon)
                validate(out + [proposal], base_files)
                d = proposal
                d.note = "drafted by the model; validated"
            except LexiconError as e:
                d.note = f"model proposal rejected: {e}"
        out.append(d)
    return out


def render(drafts: list[Draft], source_id: str, backend: str) -> str:
    text = HEADER.format(source=source_id, n=len(drafts), backend=backend)
    body = {"version": 1, "supercategories": {}, "affordances": {}, "categories": {}}
    for d in drafts:
        body["supercategories"].update(d.supercategories)
        body["affordances"].update(d.affordances)
    text += yaml.safe_dump({k: body[k] for k in ("version", "supercategories", "affordances")}, sort_keys=False,
                           allow_unicode=True, width=120)
    text += "categories:\n"
    for d in drafts:
        if d.note:
            text += "".join(f"  # {line}\n" for line in d.note.splitlines())
        text += "  " + yaml.safe_dump({d.category: d.entry}, sort_keys=False, default_flow_style=None,
                                      allow_unicode=True, width=200).rstrip("\n").replace("\n", "\n  ") + "\n"
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.lexicon draft", description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="COCO json or folder, YOLO data.yaml or folder, LabelMe folder")
    ap.add_argument("--images", default=None, help="image folder (COCO), when not beside the json")
    ap.add_argument("--format", default=None, choices=["coco", "yolo_seg", "labelme"])
    ap.add_argument("-o", "--output", default=None, help="draft file (default: <source id>.lexicon.yaml)")
    ap.add_argument("--force", action="store_true", help="overwrite an existing draft file")
    ap.add_argument("--config", default=None, help="build config (generate.* picks the backend)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    from engine.sources.ingest import IngestError
    from engine.generate.llm_client import LLMServerError
    try:
        cfg = load_config(args.config, args.overrides)
        lexicon = lexicon_for(cfg)
        sid, cats = source_categories(args.source, args.images, args.format)
        out = Path(args.output or f"{sid}.lexicon.yaml")
        if out.exists() and not args.force:
            raise ValueError(f"{out} exists; pass --force to overwrite it")
        drafter = ModelDrafter(cfg.generate) if cfg.generate.backend == "openai" else None
        from engine.lexicon import extension_files
        drafts = draft(sid, cats, lexicon, extension_files(cfg), drafter)
        text = render(drafts, sid, cfg.generate.backend)
        out.write_text(text)
        validate(drafts, extension_files(cfg))
    except (IngestError, LexiconError, ValueError, LLMServerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    known = [c for c in cats if lexicon.entry(c) is not None]
    print(f"{out}: {len(drafts)} draft entries for {sid} ({len(known)} categories already in the lexicon: "
          f"{', '.join(known) or 'none'})")
    for d in drafts:
        print(f"  {d.category}: {d.note or 'skeleton to fill in'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
